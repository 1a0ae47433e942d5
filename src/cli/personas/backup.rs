//! Snapshots of the panel: `personas backup` (a timestamped copy) and
//! `personas restore` (which asks first unless `--yes`, and refuses when
//! stdin is not a terminal).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};

use super::{command_prefix, load, shell_word};
use crate::cli::args::RestoreArgs;
use crate::config::Settings;
use crate::persona::backup;
use crate::persona::store::{self, StorePaths};

/// `personas backup`: prints the new file's path, and on stderr how to
/// restore it.
pub(super) fn backup(
    paths: &StorePaths,
    settings: &Settings,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let loaded = load(paths)?;
    let path = backup::backup_now(paths)?;
    writeln!(out, "{}", path.display())?;
    eprintln!(
        "backed up {} personas; `{} personas restore {}` puts them back",
        loaded.personas.len(),
        command_prefix(settings),
        shell_word(&path.display().to_string())
    );
    Ok(())
}

pub(super) fn restore(
    args: &RestoreArgs,
    paths: &StorePaths,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let from: PathBuf = match &args.file {
        Some(file) => file.clone(),
        None => backup::default_restore_source(paths)?.ok_or_else(|| {
            anyhow!(
                "no backup to restore: there is no {} or timestamped backup beside {}; make one with `persona-sim personas backup`",
                paths.backup.display(),
                paths.main.display()
            )
        })?,
    };
    let incoming = store::read_panel_file(&from)?;
    let current = match store::read_panel_file(&paths.main) {
        Ok(panel) => format!("{} personas", panel.len()),
        Err(_) if !paths.main.exists() => {
            format!("no panel (there is no {})", paths.main.display())
        }
        Err(_) => format!("the unreadable {}", paths.main.display()),
    };
    let question = format!(
        "Replace {current} with {} from {}?",
        incoming.len(),
        from.display()
    );
    if !args.yes {
        if !io::stdin().is_terminal() {
            bail!(
                "not restoring without confirmation: {question} stdin is not a terminal, so run it again with --yes to confirm"
            );
        }
        eprint!("{question} [y/N] ");
        io::stderr().flush()?;
        let mut answer = String::new();
        io::stdin()
            .read_line(&mut answer)
            .context("cannot read the answer")?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            bail!("restore cancelled; nothing was changed");
        }
    }
    let outcome = backup::restore_from(paths, &from)?;
    writeln!(
        out,
        "restored {} personas from {}",
        outcome.restored,
        from.display()
    )?;
    if let Some(kept) = &outcome.kept_as {
        let what = match outcome.replaced {
            Some(n) => format!("the replaced panel ({n} personas)"),
            None => "the replaced file".into(),
        };
        writeln!(out, "{what} is kept as {}", kept.display())?;
    }
    Ok(())
}
