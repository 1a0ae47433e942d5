//! `persona-sim completions SHELL` and `persona-sim man`: both generated
//! from the clap command itself, so they list every subcommand and option
//! the binary has, and need no settings, data directory or runtime.

use std::io::{self, Write};

use clap::CommandFactory as _;
use clap_complete::Shell;

use super::args::Cli;

/// The binary's name as the shells and `man` see it.
const BIN_NAME: &str = "persona-sim";

/// The completion script for `shell`. Generated from the full command, not
/// [`super::args::command`]: there the global options are hidden under each
/// subcommand (for a short `--help`), and hidden options are not completed.
pub fn write_completions(shell: Shell, out: &mut impl Write) -> io::Result<()> {
    let mut script = Vec::new();
    // clap_complete panics on a failed write; a buffer cannot fail, and the
    // write to stdout below reports a closed pipe as an error.
    clap_complete::generate(shell, &mut Cli::command(), BIN_NAME, &mut script);
    if shell == Shell::Bash {
        script = fix_bash_subcommand_states(&script);
    }
    out.write_all(&script)?;
    out.flush()
}

/// clap_complete's bash script (4.6.11) walks the words into a state named
/// `persona__sim__subcmd__simulate`, but spells the matching case arm
/// `persona__subcmd__sim__subcmd__simulate` (the hyphen of a binary's name
/// escaped twice; clap issue 6421), so nothing completed after a
/// subcommand. The arms are respelled the way the walk spells the state.
fn fix_bash_subcommand_states(script: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(script)
        .replace("persona__subcmd__sim", "persona__sim")
        .into_bytes()
}

/// The man page (roff), section 1, with every option and the subcommands.
pub fn write_man_page(out: &mut impl Write) -> io::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    out.write_all(&page)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completions(shell: Shell) -> String {
        let mut out = Vec::new();
        write_completions(shell, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_shell_completes_subcommands_and_global_options() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::PowerShell] {
            let script = completions(shell);
            // fish names a flag without its dashes (`-l rounds`).
            for word in [
                "simulate",
                "sessions",
                "completions",
                "rounds",
                "temperature",
            ] {
                assert!(script.contains(word), "{shell}: no {word}");
            }
        }
        // Global options complete after a subcommand too (bash lists the
        // options per subcommand).
        let bash = completions(Shell::Bash);
        let simulate = bash
            .split("persona__sim__subcmd__simulate)")
            .nth(1)
            .expect("a bash case for simulate");
        let simulate = &simulate[..simulate.find(";;").unwrap()];
        assert!(
            simulate.contains("--feature") && simulate.contains("--rounds"),
            "{simulate}"
        );
    }

    #[test]
    fn the_man_page_is_roff_for_the_binary() {
        let mut out = Vec::new();
        write_man_page(&mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(
            page.lines().any(|l| l.starts_with(".TH persona-sim 1")),
            "{page}"
        );
        assert!(page.contains(".SH NAME\npersona\\-sim"), "{page}");
        assert!(page.contains("\\-\\-temperature"), "{page}");
        assert!(page.contains("simulate"), "{page}");
    }
}
