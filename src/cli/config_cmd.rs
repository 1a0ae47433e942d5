//! `config path|show|init`: where the config file is, what every setting
//! resolves to and from where, and a commented template to start from.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::cli::args::{Cli, ConfigCommand};
use crate::config::{self, Environment, Settings};

use super::{UsageError, write_table};

/// The config file, or why there is none to name.
fn path(cli: &Cli, env: &Environment) -> anyhow::Result<PathBuf> {
    config::config_path(cli, env).ok_or_else(|| {
        UsageError(
            "no home directory, so no default config file: pass --config PATH or set PERSONA_SIM_CONFIG"
                .into(),
        )
        .into()
    })
}

pub fn run(
    command: &ConfigCommand,
    cli: &Cli,
    env: &Environment,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Path => writeln!(out, "{}", path(cli, env)?.display())?,
        ConfigCommand::Show => {
            let (settings, shown) = Settings::resolve_shown(cli, env)?;
            if let Some(file) = config::config_path(cli, env) {
                let state = if file.exists() {
                    ""
                } else {
                    " (not there: defaults)"
                };
                writeln!(out, "# config file: {}{state}", file.display())?;
            }
            let rows: Vec<[String; 3]> = shown
                .into_iter()
                .map(|s| [s.key.to_string(), s.value, s.source.to_string()])
                .collect();
            write_table(out, ["KEY", "VALUE", "SOURCE"], &rows)?;
            // Shown after the table, so the settings that led to it are seen.
            settings?;
        }
        ConfigCommand::Init { force } => {
            let file = path(cli, env)?;
            if file.exists() && !force {
                bail!(
                    "{} exists already; `persona-sim config init --force` overwrites it",
                    file.display()
                );
            }
            if let Some(folder) = file.parent().filter(|f| !f.as_os_str().is_empty()) {
                std::fs::create_dir_all(folder)
                    .with_context(|| format!("cannot create {}", folder.display()))?;
            }
            // Private: the file may come to hold a key.
            crate::atomic_file::write(&file, &config::template())
                .with_context(|| format!("cannot write {}", file.display()))?;
            eprintln!("wrote {}", file.display());
        }
    }
    Ok(())
}
