//! Moving a whole panel in and out: `personas export` (JSON or CSV, to
//! stdout or a file) and `personas import` (JSON or CSV, replacing or
//! merging, with taken ids renumbered).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, bail};

use super::{change, command_prefix, input_name, load, problem_report, read_input, shell_word};
use crate::cli::args::{ImportArgs, PanelExportArgs, PanelFormat};
use crate::config::Settings;
use crate::persona::import;
use crate::persona::rules::{self, IdChoice};
use crate::persona::store::StorePaths;
use crate::persona::{Persona, csv, panel_to_json};

pub(super) fn export(
    args: &PanelExportArgs,
    paths: &StorePaths,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let loaded = load(paths)?;
    let format = args
        .format
        .or_else(|| args.out.as_deref().and_then(PanelFormat::from_path))
        .unwrap_or(PanelFormat::Json);
    let text = match format {
        PanelFormat::Json => panel_to_json(&loaded.personas),
        PanelFormat::Csv => csv::to_csv(&loaded.personas),
    };
    match &args.out {
        Some(file) => {
            crate::atomic_file::write(file, &text)?;
            eprintln!(
                "wrote {} personas to {}",
                loaded.personas.len(),
                file.display()
            );
        }
        None => write!(out, "{text}")?,
    }
    Ok(())
}

/// JSON or CSV: by the extension, else by the first character.
fn import_format(path: &Path, text: &str) -> PanelFormat {
    PanelFormat::from_path(path).unwrap_or_else(|| {
        match text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .chars()
            .next()
        {
            Some('[' | '{') => PanelFormat::Json,
            _ => PanelFormat::Csv,
        }
    })
}

pub(super) fn import(
    args: &ImportArgs,
    paths: &StorePaths,
    settings: &Settings,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let name = input_name(&args.file);
    let text = read_input(&args.file)?;
    let records = match import_format(&args.file, &text) {
        PanelFormat::Json => import::json_records(&text, false).map_err(|e| anyhow!("{name}: {e}")),
        PanelFormat::Csv => csv::csv_records(&text).map_err(|e| anyhow!("{name}: {e}")),
    }?;
    if records.is_empty() {
        bail!("{name} holds no personas; nothing was imported");
    }
    let checked = import::check_records(&records);
    if !checked.problems.is_empty() {
        let valid = checked.valid.len();
        let invalid = checked.invalid_records().len();
        if !args.skip_invalid {
            let hint = if valid > 0 {
                format!(
                    "Fix them, or add --skip-invalid to import the {valid} valid record{}.",
                    if valid == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            };
            let heading = format!(
                "{name}: {invalid} of {} records are invalid; nothing was imported",
                checked.total
            );
            bail!("{}", problem_report(&heading, &checked, &hint));
        }
        let heading = format!(
            "skipping {invalid} invalid record{} of {} in {name}",
            if invalid == 1 { "" } else { "s" },
            checked.total
        );
        eprintln!("{}", problem_report(&heading, &checked, ""));
        if valid == 0 {
            bail!("{name} has no valid record; nothing was imported");
        }
    }
    let imported = checked.valid.len();
    let (indices, incoming): (Vec<usize>, Vec<Persona>) = checked
        .valid
        .into_iter()
        .map(|record| (record.index, record.persona))
        .unzip();
    // Merged into (or replacing) the panel as it is under the lock.
    let changed = change(paths, |panel| {
        let before = panel.len();
        if !args.merge {
            panel.clear();
        }
        let owners: HashMap<u32, String> = panel.iter().map(|p| (p.id, p.name.clone())).collect();
        let first_new = panel.len();
        let choices = rules::merge(panel, incoming);
        let mut notes = Vec::new();
        for ((index, choice), persona) in indices.iter().zip(choices).zip(&panel[first_new..]) {
            match choice {
                IdChoice::Kept => {}
                IdChoice::Assigned(id) => notes.push(format!(
                    "note: record {index} ({}) has no id: imported as #{id}",
                    persona.name
                )),
                IdChoice::Renumbered { from, to } => notes.push(format!(
                    "note: record {index} (id {from}): id {from} is taken by {}: imported as #{to}",
                    owners.get(&from).map_or("another persona", String::as_str)
                )),
            }
        }
        Ok((before, notes))
    })?;
    let (before, notes) = changed.value;
    for note in notes {
        eprintln!("{note}");
    }
    let panel = changed.panel;
    if args.merge {
        writeln!(
            out,
            "imported {imported} personas from {name}: the panel now has {}",
            panel.len()
        )?;
    } else if changed.saved {
        writeln!(
            out,
            "imported {imported} personas from {name}, replacing the panel of {before}"
        )?;
        let backup = paths.backup.display().to_string();
        eprintln!(
            "the replaced panel is kept in {backup}; `{} personas restore {}` brings it back",
            command_prefix(settings),
            shell_word(&backup)
        );
    } else {
        writeln!(
            out,
            "imported {imported} personas from {name}: the panel was already this; nothing changed"
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_format_follows_the_extension_then_the_content() {
        assert_eq!(import_format(Path::new("a.CSV"), "[]"), PanelFormat::Csv);
        assert_eq!(
            import_format(Path::new("a.json"), "id,name"),
            PanelFormat::Json
        );
        assert_eq!(import_format(Path::new("-"), "  [{}]"), PanelFormat::Json);
        assert_eq!(import_format(Path::new("-"), "id,name\n"), PanelFormat::Csv);
    }
}
