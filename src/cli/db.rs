//! `persona-sim db …`: the Postgres store's schema, and moving a panel
//! between a file and the database.

use std::io::Write;

use anyhow::{Context, bail};

use crate::cli::args::DbCommand;
use crate::db::Db;
use crate::db::panel::PgPanel;
use crate::persona::{panel_to_json, rules, store};

pub async fn run(
    command: &DbCommand,
    db: &Db,
    out: &mut impl Write,
) -> anyhow::Result<std::process::ExitCode> {
    // A fresh connection first: a database that refuses is known at once
    // (the pool would wait for a connection for 5 s).
    db.check().await?;
    match command {
        DbCommand::Migrate => {
            let applied = db.migrate().await?;
            if applied.is_empty() {
                writeln!(out, "{}: up to date", db.at())?;
            } else {
                let versions: Vec<String> = applied.iter().map(|v| format!("{v:04}")).collect();
                writeln!(out, "{}: applied {}", db.at(), versions.join(", "))?;
            }
        }
        DbCommand::Status => {
            let states = db.status().await?;
            let mut pending = 0;
            for m in &states {
                let state = match (&m.applied_on, m.changed) {
                    (Some(_), true) => "applied, but this build's file differs".to_string(),
                    (Some(on), false) => format!("applied {}", on.format("%Y-%m-%d %H:%M:%S UTC")),
                    (None, _) => {
                        pending += 1;
                        "pending".into()
                    }
                };
                writeln!(out, "{:04}\t{}\t{state}", m.version, m.description)?;
            }
            if pending > 0 {
                writeln!(
                    out,
                    "{}: {pending} pending; `persona-sim db migrate` applies them (serve does on start)",
                    db.at()
                )?;
                return Ok(std::process::ExitCode::from(1));
            }
            let (version, personas) = PgPanel::new(db.clone()).load().await?;
            writeln!(
                out,
                "{}: up to date; {} personas (panel version {version})",
                db.at(),
                personas.len()
            )?;
        }
        DbCommand::ImportPanel {
            file,
            replace,
            merge,
        } => {
            let incoming = store::read_panel_file(file)?;
            db.migrate().await?;
            let count = incoming.len();
            let (replace, merge) = (*replace, *merge);
            let changed = PgPanel::new(db.clone())
                .change(move |panel| {
                    if !panel.is_empty() && !replace && !merge {
                        return Err(panel.len());
                    }
                    if replace {
                        panel.clear();
                    }
                    Ok(rules::merge(panel, incoming))
                })
                .await?;
            let (changed, _) = match changed {
                Ok(changed) => changed,
                Err(existing) => bail!(
                    "the database at {} has {existing} personas already; nothing was imported. \
                     Pass --replace to replace them, or --merge to add to them",
                    db.at()
                ),
            };
            let renumbered: Vec<String> = changed
                .value
                .iter()
                .filter_map(|c| match c {
                    rules::IdChoice::Renumbered { from, to } => Some(format!("{from}→{to}")),
                    _ => None,
                })
                .collect();
            writeln!(
                out,
                "imported {count} personas from {} into {} (it has {} now)",
                file.display(),
                db.at(),
                changed.panel.len()
            )?;
            if !renumbered.is_empty() {
                writeln!(out, "ids taken, so renumbered: {}", renumbered.join(", "))?;
            }
        }
        DbCommand::ExportPanel { out: path } => {
            let (_, personas) = PgPanel::new(db.clone()).load().await?;
            let text = panel_to_json(&personas);
            match path {
                Some(path) => {
                    crate::atomic_file::write_keeping(path, &text, path)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!(
                        "exported {} personas from {} to {}",
                        personas.len(),
                        db.at(),
                        path.display()
                    );
                }
                None => out.write_all(text.as_bytes())?,
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
