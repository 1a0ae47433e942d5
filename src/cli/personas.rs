//! `persona-sim personas …`: the panel from the command line. Results go to
//! stdout, notes and progress to stderr. Every change is checked first
//! (every problem reported at once, nothing changed when there is one), then
//! saved through the store: atomically, with the panel before it kept as
//! the rolling backup (`personas_backup.json`).

use std::collections::HashMap;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;
use tokio::sync::mpsc;
use unicode_width::UnicodeWidthStr;

use super::{EXIT_INTERRUPTED, write_table};
use crate::cli::args::{
    AddArgs, EditArgs, GenerateArgs, ImportArgs, PanelExportArgs, PanelFormat, PersonasCommand,
    RestoreArgs,
};
use crate::config::Settings;
use crate::llm::ChatBackend;
use crate::persona::import::{self, CheckedRecords};
use crate::persona::ops::{self, PanelOpError, Updated};
use crate::persona::rules::{self, IdChoice};
use crate::persona::search::{self, Query};
use crate::persona::stats::{self, Count, PanelStats};
use crate::persona::store::{self, Loaded, SaveResult, Store, StorePaths, atomic_write};
use crate::persona::{PanelError, Persona, backup, csv, panel_to_json, validate_panel};
use crate::sim::synth::{self, SynthEvent};
use crate::text::truncate;

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
        PersonasCommand::Show { id } => {
            let loaded = load(paths)?;
            let persona = &loaded.personas[position(&loaded.personas, *id, "")?];
            writeln!(out, "{}", serde_json::to_string_pretty(persona)?)?;
        }
        PersonasCommand::Add(args) => add(args, paths, out)?,
        PersonasCommand::Edit(args) => edit(args, paths, out)?,
        PersonasCommand::Rm { ids } => rm(ids, paths, settings, out)?,
        PersonasCommand::Generate(args) => {
            return generate(args, paths, settings, backend, out).await;
        }
        PersonasCommand::Search { words } => {
            let loaded = load(paths)?;
            let text = query_text(words);
            let found: Vec<Persona> = search::filter(&loaded.personas, &Query::parse(&text))
                .into_iter()
                .map(|i| loaded.personas[i].clone())
                .collect();
            if found.is_empty() {
                eprintln!("no persona matches {text:?} (of {})", loaded.personas.len());
            } else {
                table(&found, out)?;
            }
        }
        PersonasCommand::Stats { json } => {
            let stats = stats::stats(&load(paths)?.personas);
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&stats)?)?;
            } else {
                write!(out, "{}", stats_text(&stats))?;
            }
        }
        PersonasCommand::Export(args) => export(args, paths, out)?,
        PersonasCommand::Import(args) => import(args, paths, settings, out)?,
        PersonasCommand::Backup => {
            let loaded = load(paths)?;
            let path = backup::backup_now(paths)?;
            writeln!(out, "{}", path.display())?;
            eprintln!(
                "backed up {} personas; `{} personas restore {}` puts them back",
                loaded.personas.len(),
                command_prefix(settings),
                shell_word(&path.display().to_string())
            );
        }
        PersonasCommand::Restore(args) => restore(args, paths, out)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `personas list`: an aligned table.
pub fn table(panel: &[Persona], out: &mut impl Write) -> io::Result<()> {
    let rows: Vec<[String; 5]> = panel
        .iter()
        .map(|p| {
            [
                p.id.to_string(),
                p.name.clone(),
                p.occupation.clone(),
                p.location.clone(),
                p.tech_proficiency.to_string(),
            ]
        })
        .collect();
    write_table(out, ["ID", "NAME", "OCCUPATION", "LOCATION", "TECH"], &rows)
}

/// Loads the panel and prints the store's notices (recovery, first run).
fn load(paths: &StorePaths) -> anyhow::Result<Loaded> {
    let loaded = store::load(paths)?;
    for notice in &loaded.notices {
        eprintln!("note: {notice}");
    }
    Ok(loaded)
}

/// Saves through the store; `false` when the panel on disk was already this.
fn save(store: &mut Store, panel: &[Persona]) -> anyhow::Result<bool> {
    validate_panel(panel).context("the changed panel is not valid; nothing was saved")?;
    match store.save(panel)? {
        SaveResult::Saved => Ok(true),
        SaveResult::Unchanged => Ok(false),
        SaveResult::Blocked => bail!(
            "nothing was saved: {} could not be loaded safely (see the note above); fix or remove it first",
            store.paths.main.display()
        ),
    }
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

// ---------------------------------------------------------------------------
// add, edit, rm
// ---------------------------------------------------------------------------

fn add(args: &AddArgs, paths: &StorePaths, out: &mut impl Write) -> anyhow::Result<()> {
    let mut loaded = load(paths)?;
    let name = input_name(&args.file);
    let records =
        import::json_records(&read_input(&args.file)?, true).map_err(|e| anyhow!("{name}: {e}"))?;
    if records.is_empty() {
        bail!("{name} holds no personas; nothing was added");
    }
    let mut checked = import::check_records(&records);
    let owners: HashMap<u32, &Persona> = loaded.personas.iter().map(|p| (p.id, p)).collect();
    for (i, record) in records.iter().enumerate() {
        let Some(id) = record.get("id").and_then(Value::as_u64) else {
            continue;
        };
        if let Some(owner) = u32::try_from(id).ok().and_then(|id| owners.get(&id)) {
            checked.problems.push(PanelError::Record {
                index: i + 1,
                id: Some(id),
                field: "id".into(),
                reason: format!(
                    "id {id} is taken by #{id} {} (leave the id out to get the next free one)",
                    owner.name
                ),
            });
        }
    }
    if !checked.problems.is_empty() {
        // By record; a taken id first, as the id comes first in a record.
        checked.problems.sort_by_key(|p| match p {
            PanelError::Record { index, field, .. } => (*index, field != "id"),
            _ => (0, true),
        });
        let heading = format!(
            "{name}: {} of {} records are invalid; nothing was added",
            checked.invalid_records().len(),
            checked.total
        );
        bail!("{}", problem_report(&heading, &checked, ""));
    }
    let mut panel = loaded.personas.clone();
    let first_new = panel.len();
    // Taken ids were refused above: only records without an id get one.
    rules::merge(
        &mut panel,
        checked.valid.into_iter().map(|r| r.persona).collect(),
    );
    save(&mut loaded.store, &panel)?;
    for p in &panel[first_new..] {
        writeln!(out, "added #{} {}", p.id, p.name)?;
    }
    Ok(())
}

/// A field value, for "before → after" lines.
fn shown(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "(none)".into(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            let items: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            format!("{:?}", items.join("; "))
        }
        Some(other) => other.to_string(),
    }
}

/// A persona's field as JSON, for showing what changed.
fn field_value(persona: &Persona, field: &str) -> Option<Value> {
    serde_json::to_value(persona).ok()?.get(field).cloned()
}

fn edit(args: &EditArgs, paths: &StorePaths, out: &mut impl Write) -> anyhow::Result<()> {
    let mut loaded = load(paths)?;
    let at = position(&loaded.personas, args.id, "; nothing was changed")?;
    let mut panel = loaded.personas.clone();
    let Updated {
        before,
        after,
        fields,
    } = match ops::update(&mut panel, args.id, &args.set) {
        Ok(updated) => updated,
        Err(PanelOpError::Invalid(problems)) => {
            let before = &loaded.personas[at];
            let lines: Vec<String> = problems
                .iter()
                .map(|problem| format!("\n  {problem}"))
                .collect();
            bail!(
                "persona #{} {} was not changed:{}",
                before.id,
                before.name,
                lines.concat()
            );
        }
        Err(other) => return Err(other.into()),
    };
    if !save(&mut loaded.store, &panel)? {
        writeln!(out, "#{} {}: nothing changed", after.id, after.name)?;
        return Ok(());
    }
    writeln!(out, "edited #{} {}", after.id, after.name)?;
    for field in fields {
        let (old, new) = (field_value(&before, &field), field_value(&after, &field));
        if old != new {
            writeln!(
                out,
                "  {field}: {} → {}",
                shown(old.as_ref()),
                shown(new.as_ref())
            )?;
        }
    }
    Ok(())
}

fn rm(
    ids: &[u32],
    paths: &StorePaths,
    settings: &Settings,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut loaded = load(paths)?;
    let mut panel = loaded.personas.clone();
    let gone = match ops::remove(&mut panel, ids) {
        Ok(gone) => gone,
        Err(PanelOpError::NoSuchId(id)) => {
            return Err(missing_id(&loaded.personas, id, "; nothing was deleted"));
        }
        Err(other) => return Err(other.into()),
    };
    save(&mut loaded.store, &panel)?;
    for p in gone {
        writeln!(
            out,
            "deleted #{} {} ({}, {})",
            p.id, p.name, p.occupation, p.location
        )?;
    }
    let backup = paths.backup.display().to_string();
    eprintln!(
        "the panel before is kept in {backup}; `{} personas restore {}` brings it back",
        command_prefix(settings),
        shell_word(&backup)
    );
    Ok(())
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

// ---------------------------------------------------------------------------
// generate
// ---------------------------------------------------------------------------

async fn generate(
    args: &GenerateArgs,
    paths: &StorePaths,
    settings: &Settings,
    backend: Option<Arc<dyn ChatBackend>>,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let mut loaded = load(paths)?;
    let brief = args.brief.trim();
    if brief.is_empty() {
        bail!(
            "the brief is empty: say who to create, e.g. --brief \"retired farmers in Kenya who distrust banking apps\""
        );
    }
    let backend = super::ready_backend(backend, settings)?;
    if !args.dry_run && loaded.store.writes_blocked() {
        bail!(
            "nothing would be saved: {} could not be loaded safely (see the note above); fix or remove it first, or use --dry-run",
            paths.main.display()
        );
    }
    let count = args.count as usize;
    let info = backend.info();
    eprintln!(
        "generating {count} persona{} with {} ({})…",
        if count == 1 { "" } else { "s" },
        info.model,
        info.kind
    );
    let mut accepted: Vec<Persona> = Vec::new();
    let mut failed: Vec<(usize, String)> = Vec::new();
    let mut interrupted = false;
    if count == 1 {
        tokio::select! {
            result = synth::synthesize_one(&*backend, brief, &loaded.personas) => {
                let event = match &result {
                    Ok(persona) => SynthEvent::Accepted { index: 0, persona: persona.clone() },
                    Err(reason) => SynthEvent::Failed { index: 0, reason: reason.clone() },
                };
                progress(&event, 1);
                match result {
                    Ok(persona) => accepted.push(persona),
                    Err(reason) => failed.push((0, reason)),
                }
            }
            _ = tokio::signal::ctrl_c() => interrupted = true,
        }
    } else {
        let (tx, mut rx) = mpsc::channel(64);
        let task = tokio::spawn(synth::synthesize_batch(
            backend,
            brief.to_string(),
            count,
            loaded.personas.clone(),
            tx,
        ));
        loop {
            tokio::select! {
                event = rx.recv() => {
                    let Some(event) = event else { break };
                    progress(&event, count);
                    match event {
                        SynthEvent::Accepted { persona, .. } => accepted.push(persona),
                        SynthEvent::Failed { index, reason } => failed.push((index, reason)),
                        SynthEvent::Retrying { .. } => {}
                    }
                }
                _ = tokio::signal::ctrl_c() => {
                    interrupted = true;
                    task.abort();
                    break;
                }
            }
        }
        if !interrupted {
            let result = task.await.context("the generation task failed")?;
            (accepted, failed) = (result.accepted, result.failed);
        }
    }
    failed.sort_by_key(|(index, _)| *index);
    let failures: Vec<String> = failed
        .iter()
        .map(|(index, reason)| format!("#{}: {}", index + 1, reason.trim_end_matches('.')))
        .collect();
    let mut summary = format!("{} of {count} generated", accepted.len());
    if !failed.is_empty() {
        summary.push_str(&format!(
            "; {} failed: {}",
            failed.len(),
            failures.join("; ")
        ));
    }
    if accepted.is_empty() {
        if interrupted {
            eprintln!("interrupted: {summary}; nothing was saved");
            return Ok(ExitCode::from(EXIT_INTERRUPTED));
        }
        bail!("{summary}; nothing was saved");
    }
    accepted.sort_by_key(|p| p.id);
    table(&accepted, out)?;
    out.flush()?;
    if args.dry_run {
        eprintln!("{summary} (dry run: nothing was saved)");
    } else {
        let mut panel = loaded.personas.clone();
        panel.extend(accepted.iter().cloned());
        save(&mut loaded.store, &panel)?;
        eprintln!(
            "{summary}; saved to {} (the panel now has {})",
            paths.main.display(),
            panel.len()
        );
    }
    if interrupted {
        eprintln!("interrupted: the personas accepted so far are kept");
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    Ok(ExitCode::SUCCESS)
}

/// One progress line on stderr.
fn progress(event: &SynthEvent, count: usize) {
    eprintln!("{}", progress_line(event, count));
}

fn progress_line(event: &SynthEvent, count: usize) -> String {
    match event {
        SynthEvent::Accepted { index, persona } => format!(
            "[{}/{count}] accepted #{} {} ({}, {})",
            index + 1,
            persona.id,
            persona.name,
            persona.occupation,
            persona.location
        ),
        SynthEvent::Retrying {
            index,
            attempt,
            reason,
        } => format!(
            "[{}/{count}] try {attempt} of {} rejected, retrying: {reason}",
            index + 1,
            synth::MAX_ATTEMPTS
        ),
        SynthEvent::Failed { index, reason } => {
            format!("[{}/{count}] failed: {reason}", index + 1)
        }
    }
}

// ---------------------------------------------------------------------------
// search, stats
// ---------------------------------------------------------------------------

/// The words of `search` as one query, as if typed into the TUI's search
/// box: `search nurse low` and `search "nurse low"` are the same query; a
/// phrase is written with its own quotes (`search '"ICU nurse"'`).
fn query_text(words: &[String]) -> String {
    words.join(" ")
}

const BAR_WIDTH: usize = 20;
const LABEL_WIDTH: usize = 28;
/// Rows shown per list in the text stats.
const TOP: usize = 10;

/// `personas stats`: readable text with small bars.
pub fn stats_text(stats: &PanelStats) -> String {
    let mut text = format!(
        "{} persona{}\n",
        stats.total,
        if stats.total == 1 { "" } else { "s" }
    );
    if stats.total == 0 {
        return text;
    }
    // Bars are shares of the panel; `distinct` is how many labels there are
    // in all (`rows` may be cut already).
    let total = stats.total;
    let section = |text: &mut String, title: String, rows: &[Count], distinct: usize| {
        text.push_str(&format!("\n{title}\n"));
        let shown = &rows[..rows.len().min(TOP)];
        let width = shown
            .iter()
            .map(|c| truncate(&c.name, LABEL_WIDTH).width())
            .max()
            .unwrap_or(0);
        for row in shown {
            let label = truncate(&row.name, LABEL_WIDTH);
            let pad = " ".repeat(width - label.width());
            text.push_str(&format!(
                "  {label}{pad}  {} {:>3}  {:>3.0}%\n",
                bar(row.count, total),
                row.count,
                row.count as f64 * 100.0 / total as f64
            ));
        }
        if distinct > shown.len() {
            text.push_str(&format!("  … {} more\n", distinct - shown.len()));
        }
    };
    section(
        &mut text,
        "Tech proficiency".into(),
        &stats.by_proficiency,
        stats.by_proficiency.len(),
    );
    section(
        &mut text,
        format!("Countries ({})", stats.by_country.len()),
        &stats.by_country,
        stats.by_country.len(),
    );
    section(
        &mut text,
        format!("Occupations ({})", stats.by_occupation.len()),
        &stats.by_occupation,
        stats.by_occupation.len(),
    );
    section(
        &mut text,
        format!("Traits ({} distinct)", stats.distinct_traits),
        &stats.top_traits,
        stats.distinct_traits,
    );
    match &stats.ages {
        Some(ages) => {
            let title = if ages.unknown > 0 {
                format!("Ages ({} without an age)", ages.unknown)
            } else {
                "Ages".into()
            };
            section(&mut text, title, &ages.buckets, ages.buckets.len());
        }
        None => text.push_str("\nAges: none given\n"),
    }
    let d = &stats.diversity;
    text.push_str(&format!(
        "\nDiversity\n  {} countries, {} occupations, proficiency evenness {:.2} (0 = all one level, 1 = equal thirds)\n",
        d.countries, d.occupations, d.proficiency_evenness
    ));
    text
}

/// `count` of `total` as a bar of [`BAR_WIDTH`] cells (at least one cell
/// when `count` is not 0).
fn bar(count: usize, total: usize) -> String {
    let filled = (count * BAR_WIDTH + total / 2)
        .checked_div(total)
        .unwrap_or(0)
        .clamp(usize::from(count > 0 && total > 0), BAR_WIDTH);
    format!("{}{}", "█".repeat(filled), "·".repeat(BAR_WIDTH - filled))
}

// ---------------------------------------------------------------------------
// export, import
// ---------------------------------------------------------------------------

fn export(args: &PanelExportArgs, paths: &StorePaths, out: &mut impl Write) -> anyhow::Result<()> {
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
            atomic_write(file, &text)?;
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

fn import(
    args: &ImportArgs,
    paths: &StorePaths,
    settings: &Settings,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut loaded = load(paths)?;
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
    let before = loaded.personas.len();
    let mut panel: Vec<Persona> = if args.merge {
        loaded.personas.clone()
    } else {
        Vec::new()
    };
    let owners: HashMap<u32, String> = panel.iter().map(|p| (p.id, p.name.clone())).collect();
    let imported = checked.valid.len();
    let (indices, incoming): (Vec<usize>, Vec<Persona>) = checked
        .valid
        .into_iter()
        .map(|record| (record.index, record.persona))
        .unzip();
    let first_new = panel.len();
    let choices = rules::merge(&mut panel, incoming);
    for ((index, choice), persona) in indices.iter().zip(choices).zip(&panel[first_new..]) {
        match choice {
            IdChoice::Kept => {}
            IdChoice::Assigned(id) => {
                eprintln!(
                    "note: record {index} ({}) has no id: imported as #{id}",
                    persona.name
                );
            }
            IdChoice::Renumbered { from, to } => eprintln!(
                "note: record {index} (id {from}): id {from} is taken by {}: imported as #{to}",
                owners.get(&from).map_or("another persona", String::as_str)
            ),
        }
    }
    let changed = save(&mut loaded.store, &panel)?;
    if args.merge {
        writeln!(
            out,
            "imported {imported} personas from {name}: the panel now has {}",
            panel.len()
        )?;
    } else if changed {
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

// ---------------------------------------------------------------------------
// restore
// ---------------------------------------------------------------------------

fn restore(args: &RestoreArgs, paths: &StorePaths, out: &mut impl Write) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::builtin_panel;
    use crate::persona::stats::stats;
    use std::collections::HashSet;

    #[test]
    fn list_is_an_aligned_table() {
        let mut out = Vec::new();
        table(&builtin_panel()[..2], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID  NAME"));
        let col = lines[0].find("OCCUPATION").unwrap();
        assert_eq!(&lines[1][col..col + 3], "ICU");
    }

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
    fn changed_values_are_shown_readably() {
        assert_eq!(shown(None), "(none)");
        assert_eq!(shown(Some(&Value::from("Ana"))), "\"Ana\"");
        assert_eq!(shown(Some(&serde_json::json!(["a", "b"]))), "\"a; b\"");
        assert_eq!(shown(Some(&Value::from(41))), "41");
    }

    #[test]
    fn search_words_are_one_query() {
        let words = |w: &[&str]| query_text(&w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(words(&["nurse", "low"]), "nurse low");
        assert_eq!(words(&["nurse low"]), "nurse low");
        assert_eq!(words(&["\"ICU nurse\"", "prof:m"]), "\"ICU nurse\" prof:m");
        let panel = builtin_panel();
        let found = |text: &str| search::filter(&panel, &Query::parse(text)).len();
        assert_eq!(found(&words(&["\"ICU nurse\""])), 1);
        assert_eq!(
            found(&words(&["\"nurse ICU\""])),
            0,
            "a phrase keeps its order"
        );
    }

    #[test]
    fn stats_text_has_bars_and_every_section() {
        let text = stats_text(&stats(&builtin_panel()));
        assert!(text.starts_with("14 personas\n"), "{text}");
        for title in [
            "Tech proficiency",
            "Countries (",
            "Occupations (",
            "Traits (",
            "Ages",
            "Diversity",
        ] {
            assert!(text.contains(&format!("\n{title}")), "{title}: {text}");
        }
        let low = text
            .lines()
            .find(|l| l.trim_start().starts_with("Low "))
            .unwrap();
        assert!(low.contains('█') && low.contains('%'), "{low}");
        // Rows of a section line their bars up.
        let levels: Vec<&str> = text
            .lines()
            .filter(|l| {
                ["  Low ", "  Medium ", "  High "]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .collect();
        assert_eq!(levels.len(), 3);
        let columns: HashSet<usize> = levels.iter().map(|l| l.find(['█', '·']).unwrap()).collect();
        assert_eq!(columns.len(), 1, "{levels:?}");
        assert_eq!(stats_text(&stats(&[])), "0 personas\n");
    }

    #[test]
    fn bars_and_labels_fit() {
        assert_eq!(bar(0, 4), "·".repeat(BAR_WIDTH));
        assert_eq!(bar(4, 4), "█".repeat(BAR_WIDTH));
        assert_eq!(bar(1, 1000).chars().filter(|&c| c == '█').count(), 1);
        assert_eq!(
            bar(1, 2).chars().filter(|&c| c == '█').count(),
            BAR_WIDTH / 2
        );
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate("東京都の看護師と医師", 9);
        assert!(cut.width() <= 9 && cut.ends_with('…'), "{cut}");
    }

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

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word("/tmp/a_b.json"), "/tmp/a_b.json");
        assert_eq!(shell_word("/tmp/my panel.json"), "'/tmp/my panel.json'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    #[test]
    fn progress_lines_say_which_and_what() {
        let persona = Persona {
            id: 15,
            ..builtin_panel().remove(0)
        };
        let line = progress_line(&SynthEvent::Accepted { index: 1, persona }, 3);
        assert_eq!(
            line,
            "[2/3] accepted #15 Maria Lopez (ICU nurse, Madrid, Spain)"
        );
        let line = progress_line(
            &SynthEvent::Retrying {
                index: 0,
                attempt: 1,
                reason: "no JSON".into(),
            },
            3,
        );
        assert_eq!(line, "[1/3] try 1 of 3 rejected, retrying: no JSON");
        let line = progress_line(
            &SynthEvent::Failed {
                index: 2,
                reason: "gave up".into(),
            },
            3,
        );
        assert_eq!(line, "[3/3] failed: gave up");
    }
}
