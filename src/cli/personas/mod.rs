//! `persona-sim personas …`: the panel from the command line. Results go to
//! stdout, notes and progress to stderr. Every change is checked first
//! (every problem reported at once, nothing changed when there is one), then
//! made through the store's locked change: the panel is re-read under the
//! lock, the change applied to it as it is, and saved atomically, with the
//! panel before it kept as the rolling backup (`personas_backup.json`).
//! Another process changing the same panel at the same time loses nothing.
//!
//! One file per idea: `show.rs` (list, show, search, stats), `edit.rs`
//! (add, edit, rm), `generate.rs`, `transfer.rs` (export, import) and
//! `backup.rs` (backup, restore). Here: the dispatch and what they share (loading and
//! saving the panel, naming a missing id, reading an input file, the
//! commands printed back to the user).

mod backup;
mod edit;
mod generate;
mod show;
mod transfer;

use std::io::{self, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow};

use crate::cli::args::PersonasCommand;
use crate::config::Settings;
use crate::llm::ChatBackend;
use crate::persona::import::CheckedRecords;
use crate::persona::store::{self, Changed, Loaded, StorePaths};
use crate::persona::{Persona, validate_panel};

pub use show::{stats_text, table};

/// Runs one `personas` subcommand. `backend` is only used by `generate`.
pub async fn run(
    command: &PersonasCommand,
    paths: &StorePaths,
    settings: &Settings,
    backend: Option<Arc<dyn ChatBackend>>,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    match command {
        PersonasCommand::List => table(&load(paths)?.personas, out)?,
        PersonasCommand::Show { id } => show::show(*id, paths, out)?,
        PersonasCommand::Add(args) => edit::add(args, paths, out)?,
        PersonasCommand::Edit(args) => edit::edit(args, paths, out)?,
        PersonasCommand::Rm { ids } => edit::rm(ids, paths, settings, out)?,
        PersonasCommand::Generate(args) => {
            return generate::generate(args, paths, settings, backend, out).await;
        }
        PersonasCommand::Search { words } => show::search(words, paths, out)?,
        PersonasCommand::Stats { json } => show::stats(*json, paths, out)?,
        PersonasCommand::Export(args) => transfer::export(args, paths, out)?,
        PersonasCommand::Import(args) => transfer::import(args, paths, settings, out)?,
        PersonasCommand::Backup => backup::backup(paths, settings, out)?,
        PersonasCommand::Restore(args) => backup::restore(args, paths, out)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads the panel and prints the store's notices (recovery, first run).
fn load(paths: &StorePaths) -> anyhow::Result<Loaded> {
    let loaded = store::load(paths)?;
    for notice in &loaded.notices {
        eprintln!("note: {notice}");
    }
    Ok(loaded)
}

/// Applies `op` to the panel as it is on disk, under the panel lock (see
/// [`store::change`]); the changed panel must be valid. Prints what loading
/// repaired first.
fn change<T>(
    paths: &StorePaths,
    op: impl FnOnce(&mut Vec<Persona>) -> anyhow::Result<T>,
) -> anyhow::Result<Changed<T>> {
    let changed = store::change(paths, |panel| {
        let value = op(panel)?;
        validate_panel(panel).context("the changed panel is not valid; nothing was saved")?;
        anyhow::Ok(value)
    })??;
    for notice in &changed.notices {
        eprintln!("note: {notice}");
    }
    Ok(changed)
}

/// Where persona `id` is, or an error naming the ids there are.
fn position(panel: &[Persona], id: u32, consequence: &str) -> anyhow::Result<usize> {
    panel
        .iter()
        .position(|p| p.id == id)
        .ok_or_else(|| missing_id(panel, id, consequence))
}

/// "no persona with id 9 (ids: 1-14; …)" and what that means.
fn missing_id(panel: &[Persona], id: u32, consequence: &str) -> anyhow::Error {
    anyhow!(
        "no persona with id {id} (ids: {}; see `persona-sim personas list`){consequence}",
        id_ranges(panel)
    )
}

/// "1-14, 20, 22-23".
fn id_ranges(panel: &[Persona]) -> String {
    let mut ids: Vec<u32> = panel.iter().map(|p| p.id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return "none, the panel is empty".into();
    }
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let start = ids[i];
        // Sorted and without duplicates, so `ids[i] + 1` cannot overflow
        // while a next id exists.
        while i + 1 < ids.len() && ids[i + 1] == ids[i] + 1 {
            i += 1;
        }
        parts.push(if start == ids[i] {
            start.to_string()
        } else {
            format!("{start}-{}", ids[i])
        });
        i += 1;
    }
    parts.join(", ")
}

fn input_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "stdin".into()
    } else {
        path.display().to_string()
    }
}

/// A file's text, or stdin's for "-".
fn read_input(path: &Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        io::stdin()
            .read_to_string(&mut text)
            .context("cannot read stdin")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// A heading, then the problems, one a line, then what to do.
fn problem_report(heading: &str, checked: &CheckedRecords, hint: &str) -> String {
    let mut text = format!("{heading}:");
    for problem in &checked.problems {
        text.push_str(&format!("\n  {problem}"));
    }
    if !hint.is_empty() {
        text.push('\n');
        text.push_str(hint);
    }
    text
}

/// `persona-sim`, plus `--personas PATH` when the panel is not the default
/// one, so a printed command acts on the same file.
fn command_prefix(settings: &Settings) -> String {
    if settings.personas_path == settings.data_dir.join("personas.json") {
        "persona-sim".into()
    } else {
        format!(
            "persona-sim --personas {}",
            shell_word(&settings.personas_path.display().to_string())
        )
    }
}

/// `s` as one shell word (single-quoted unless it is plain).
fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:=@%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::builtin_panel;

    fn with_ids(ids: &[u32]) -> Vec<Persona> {
        let template = builtin_panel().remove(0);
        ids.iter()
            .map(|&id| Persona {
                id,
                ..template.clone()
            })
            .collect()
    }

    #[test]
    fn id_ranges_compress_runs() {
        assert_eq!(id_ranges(&with_ids(&[3, 1, 2, 7, 9, 10])), "1-3, 7, 9-10");
        assert_eq!(id_ranges(&with_ids(&[5])), "5");
        assert_eq!(id_ranges(&[]), "none, the panel is empty");
        assert_eq!(
            id_ranges(&with_ids(&[u32::MAX - 1, u32::MAX])),
            format!("{}-{}", u32::MAX - 1, u32::MAX)
        );
        let err = position(&with_ids(&[1, 2]), 9, "; nothing was changed")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "no persona with id 9 (ids: 1-2; see `persona-sim personas list`); nothing was changed"
        );
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word("/tmp/a_b.json"), "/tmp/a_b.json");
        assert_eq!(shell_word("/tmp/my panel.json"), "'/tmp/my panel.json'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
