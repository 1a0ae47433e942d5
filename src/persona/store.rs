//! The persona store: load with recovery, atomic saves with a backup, an
//! autosaver that does the disk work off the UI thread, manual timestamped
//! backups and restore, and the checks an import runs on every record.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{
    PanelError, Persona, TechProficiency, builtin_panel, panel_to_json, parse_panel, validate_panel,
};

/// Where a panel lives: the main file and its backup beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct StorePaths {
    pub main: PathBuf,
    pub backup: PathBuf,
}

impl StorePaths {
    /// `personas.json` is backed up as `personas_backup.json` (the seed's
    /// name); any other `NAME.json` as `NAME_backup.json`.
    pub fn for_file(main: impl Into<PathBuf>) -> Self {
        let main = main.into();
        let stem = main
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "personas".into());
        let backup = main.with_file_name(format!("{stem}_backup.json"));
        StorePaths { main, backup }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // The io errors are named `error`, not `source`, so an error chain
    // (`{:#}`) does not print the reason twice.
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: io::Error },
    #[error("cannot write {path}: {error}")]
    Write { path: PathBuf, error: io::Error },
    /// A file that should hold a panel does not.
    #[error("{path} is not a valid persona panel: {problem}")]
    Invalid { path: PathBuf, problem: PanelError },
}

/// Where the panel in memory came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadSource {
    /// The main file was good.
    File,
    /// There was no store yet; the built-in panel was used and will be written.
    FirstRun,
    /// The main file was missing or corrupt and the backup was good.
    RestoredFromBackup,
    /// Neither file could be used; the built-in panel is shown and nothing is
    /// written until the user saves on purpose.
    BuiltinBecauseBothBad,
}

#[derive(Debug)]
pub struct Loaded {
    pub personas: Vec<Persona>,
    pub source: LoadSource,
    /// Messages for the user (what was restored, what was kept aside).
    pub notices: Vec<String>,
    pub store: Store,
}

enum FileState {
    Good(Vec<Persona>, String),
    Missing,
    Corrupt(PanelError),
}

fn read_state(path: &Path) -> Result<FileState, StoreError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(match parse_panel(&text) {
            Ok(panel) => FileState::Good(panel, text),
            Err(e) => FileState::Corrupt(e),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(FileState::Missing),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(FileState::Corrupt(
            PanelError::Syntax("file is not valid UTF-8".into()),
        )),
        Err(error) => Err(StoreError::Read {
            path: path.to_path_buf(),
            error,
        }),
    }
}

/// Loads the panel, recovering from a missing or corrupt file. Writes that
/// recovery needs (the restored main file, a first backup) are done here, as
/// this runs once before the UI starts; later saves go through [`Autosaver`].
pub fn load(paths: &StorePaths) -> Result<Loaded, StoreError> {
    let main = read_state(&paths.main)?;
    let mut notices = Vec::new();
    let mut store = Store::new(paths.clone());
    let name = display_name(&paths.main);
    let backup_name = display_name(&paths.backup);

    let (personas, source) = match main {
        FileState::Good(panel, text) => {
            store.last_saved = Some(text.clone());
            // Best effort: a read-only shared panel must still load.
            if !paths.backup.exists()
                && let Err(e) = atomic_write(&paths.backup, &text)
            {
                notices.push(format!("No backup yet, and it could not be created: {e}"));
            }
            (panel, LoadSource::File)
        }
        FileState::Missing => match read_state(&paths.backup)? {
            FileState::Good(panel, _) => {
                notices.push(format!(
                    "{name} was missing: restored {} personas from {backup_name}",
                    panel.len()
                ));
                store.write_main_only(&panel)?;
                (panel, LoadSource::RestoredFromBackup)
            }
            FileState::Missing => {
                let panel = builtin_panel();
                store.write_main_only(&panel)?;
                atomic_write(&paths.backup, store.last_saved.as_deref().unwrap_or(""))?;
                notices.push(format!(
                    "First run: wrote the built-in panel of {} personas to {}",
                    panel.len(),
                    paths.main.display()
                ));
                (panel, LoadSource::FirstRun)
            }
            FileState::Corrupt(e) => {
                store.writes_blocked = true;
                notices.push(format!(
                    "{name} is missing and {backup_name} is corrupt ({e}); showing the built-in panel and writing nothing"
                ));
                (builtin_panel(), LoadSource::BuiltinBecauseBothBad)
            }
        },
        FileState::Corrupt(main_err) => match read_state(&paths.backup)? {
            FileState::Good(panel, _) => {
                let aside = corrupt_aside_path(&paths.main);
                fs::rename(&paths.main, &aside).map_err(|error| StoreError::Write {
                    path: aside.clone(),
                    error,
                })?;
                store.write_main_only(&panel)?;
                notices.push(format!(
                    "{name} was corrupt ({main_err}): restored {} personas from {backup_name}; the corrupt file is kept as {}",
                    panel.len(),
                    aside.display()
                ));
                (panel, LoadSource::RestoredFromBackup)
            }
            other => {
                let why = match other {
                    FileState::Corrupt(e) => format!("{backup_name} is corrupt too ({e})"),
                    _ => format!("there is no {backup_name}"),
                };
                store.writes_blocked = true;
                notices.push(format!(
                    "{name} is corrupt ({main_err}) and {why}; showing the built-in panel and writing nothing. Fix or remove {} to start saving again",
                    paths.main.display()
                ));
                (builtin_panel(), LoadSource::BuiltinBecauseBothBad)
            }
        },
    };
    Ok(Loaded {
        personas,
        source,
        notices,
        store,
    })
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn corrupt_aside_path(main: &Path) -> PathBuf {
    let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S");
    free_path(|n| PathBuf::from(format!("{}.corrupt-{stamp}{n}", main.display())))
}

/// The first of `name("")`, `name("-1")`, `name("-2")`, … that does not exist.
fn free_path(name: impl Fn(&str) -> PathBuf) -> PathBuf {
    let mut candidate = name("");
    let mut n = 1;
    while candidate.exists() {
        candidate = name(&format!("-{n}"));
        n += 1;
    }
    candidate
}

/// Writes the panel file atomically (see [`crate::atomic_file`]).
pub fn atomic_write(path: &Path, text: &str) -> Result<(), StoreError> {
    crate::atomic_file::write(path, text).map_err(|e| StoreError::Write {
        path: e.path,
        error: e.error,
    })
}

/// Saves a panel: the previous good file becomes the backup, then the new
/// panel replaces the main file. Both writes are atomic.
#[derive(Debug)]
pub struct Store {
    pub paths: StorePaths,
    last_saved: Option<String>,
    /// Set when both files were bad at start: nothing is written so the user
    /// can still recover them by hand.
    writes_blocked: bool,
}

impl Store {
    pub fn new(paths: StorePaths) -> Self {
        Store {
            paths,
            last_saved: None,
            writes_blocked: false,
        }
    }

    pub fn writes_blocked(&self) -> bool {
        self.writes_blocked
    }

    pub fn save(&mut self, personas: &[Persona]) -> Result<SaveResult, StoreError> {
        if self.writes_blocked {
            return Ok(SaveResult::Blocked);
        }
        let text = panel_to_json(personas);
        if self.last_saved.as_deref() == Some(text.as_str()) {
            return Ok(SaveResult::Unchanged);
        }
        if let Some(previous) = &self.last_saved {
            atomic_write(&self.paths.backup, previous)?;
        }
        atomic_write(&self.paths.main, &text)?;
        self.last_saved = Some(text);
        Ok(SaveResult::Saved)
    }

    fn write_main_only(&mut self, personas: &[Persona]) -> Result<(), StoreError> {
        let text = panel_to_json(personas);
        atomic_write(&self.paths.main, &text)?;
        self.last_saved = Some(text);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Manual backups and restore
// ---------------------------------------------------------------------------

/// The timestamp in manual backup and replaced-file names.
const STAMP: &str = "%Y%m%d-%H%M%S";

/// Reads a file that must hold a valid panel.
pub fn read_panel_file(path: &Path) -> Result<Vec<Persona>, StoreError> {
    read_panel_text(path).map(|(panel, _)| panel)
}

fn read_panel_text(path: &Path) -> Result<(Vec<Persona>, String), StoreError> {
    match read_state(path)? {
        FileState::Good(panel, text) => Ok((panel, text)),
        FileState::Missing => Err(StoreError::Read {
            path: path.to_path_buf(),
            error: io::Error::new(io::ErrorKind::NotFound, "no such file"),
        }),
        FileState::Corrupt(problem) => Err(StoreError::Invalid {
            path: path.to_path_buf(),
            problem,
        }),
    }
}

/// `personas` for `personas.json`: what the backup names start with.
fn stem(paths: &StorePaths) -> String {
    paths
        .main
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "personas".into())
}

/// The seed's "Manual Backup Trigger": copies the panel file, which must be
/// a valid panel, to `NAME_backup_YYYYMMDD-HHMMSS.json` beside it (with
/// `-1`, `-2`… when that name is taken) and returns the new file's path.
/// The rolling `NAME_backup.json` is not touched.
pub fn backup_now(paths: &StorePaths) -> Result<PathBuf, StoreError> {
    let (_, text) = read_panel_text(&paths.main)?;
    let stamp = chrono::Local::now().format(STAMP);
    let stem = stem(paths);
    let dest = free_path(|n| {
        paths
            .main
            .with_file_name(format!("{stem}_backup_{stamp}{n}.json"))
    });
    atomic_write(&dest, &text)?;
    tracing::info!(target: "store", path = %dest.display(), "manual backup written");
    Ok(dest)
}

/// The timestamped backups beside the panel file, newest first (by the time
/// in their names, then by their `-N` suffix).
pub fn timestamped_backups(paths: &StorePaths) -> Result<Vec<PathBuf>, StoreError> {
    let dir = paths
        .main
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(StoreError::Read {
                path: dir.to_path_buf(),
                error,
            });
        }
    };
    let prefix = format!("{}_backup_", stem(paths));
    let mut found: Vec<((String, u32), PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let key = backup_key(name.strip_prefix(&prefix)?.strip_suffix(".json")?)?;
            Some((key, e.path()))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(found.into_iter().map(|(_, path)| path).collect())
}

/// "20250102-030405" or "20250102-030405-2" → (stamp, n), for sorting.
fn backup_key(rest: &str) -> Option<(String, u32)> {
    let (stamp, n) = match rest.get(15..) {
        Some("") => (rest, 0),
        Some(suffix) => (&rest[..15], suffix.strip_prefix('-')?.parse().ok()?),
        None => return None,
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (date, time) = stamp.split_once('-')?;
    (date.len() == 8 && time.len() == 6 && digits(date) && digits(time))
        .then(|| (stamp.to_string(), n))
}

/// What `restore` restores when no file is named: the newest timestamped
/// backup, else the rolling backup; `None` when there is neither.
pub fn default_restore_source(paths: &StorePaths) -> Result<Option<PathBuf>, StoreError> {
    if let Some(newest) = timestamped_backups(paths)?.into_iter().next() {
        return Ok(Some(newest));
    }
    Ok(paths.backup.exists().then(|| paths.backup.clone()))
}

/// What [`restore_from`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreOutcome {
    /// Personas now in the panel file.
    pub restored: usize,
    /// How many personas the replaced file held; `None` when it was missing
    /// or not a valid panel.
    pub replaced: Option<usize>,
    /// Where the replaced file was kept (`NAME.json.replaced-<stamp>`);
    /// `None` when there was no panel file.
    pub kept_as: Option<PathBuf>,
}

/// Replaces the panel file with the panel in `from`, which must be valid
/// (nothing is touched otherwise). The replaced file is copied, byte for
/// byte even if corrupt, to `NAME.json.replaced-YYYYMMDD-HHMMSS` first; if it
/// was a valid panel it also becomes the rolling backup, as after any save,
/// so restoring the rolling backup twice swaps back. A [`Store`] or
/// [`Autosaver`] already holding the old panel does not know: reload after.
pub fn restore_from(paths: &StorePaths, from: &Path) -> Result<RestoreOutcome, StoreError> {
    let panel = read_panel_file(from)?;
    let current = read_state(&paths.main)?;
    let kept_as = if matches!(current, FileState::Missing) {
        None
    } else {
        let stamp = chrono::Local::now().format(STAMP);
        let aside =
            free_path(|n| PathBuf::from(format!("{}.replaced-{stamp}{n}", paths.main.display())));
        fs::copy(&paths.main, &aside).map_err(|error| StoreError::Write {
            path: aside.clone(),
            error,
        })?;
        Some(aside)
    };
    let replaced = match &current {
        FileState::Good(old, text) => {
            atomic_write(&paths.backup, text)?;
            Some(old.len())
        }
        _ => None,
    };
    atomic_write(&paths.main, &panel_to_json(&panel))?;
    tracing::info!(target: "store", from = %from.display(), count = panel.len(), "panel restored");
    Ok(RestoreOutcome {
        restored: panel.len(),
        replaced,
        kept_as,
    })
}

// ---------------------------------------------------------------------------
// Checking records for an import: every problem at once
// ---------------------------------------------------------------------------

/// The records of a JSON file: an array, or `{"personas": [...]}`; with
/// `allow_single`, also one persona object.
pub fn json_records(text: &str, allow_single: bool) -> Result<Vec<Value>, PanelError> {
    let value: Value = serde_json::from_str(text).map_err(|e| PanelError::Syntax(e.to_string()))?;
    match value {
        Value::Array(items) => Ok(items),
        Value::Object(mut map) => match map.remove("personas") {
            Some(Value::Array(items)) => Ok(items),
            Some(other) if allow_single => {
                map.insert("personas".into(), other);
                Ok(vec![Value::Object(map)])
            }
            None if allow_single => Ok(vec![Value::Object(map)]),
            _ => Err(PanelError::NotAList),
        },
        _ => Err(PanelError::NotAList),
    }
}

/// A CSV file that cannot be read as a panel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CSV line {line}: {reason}")]
pub struct CsvError {
    pub line: usize,
    pub reason: String,
}

/// The columns a panel CSV must have (`id` and `age` may be left out).
const CSV_REQUIRED: [&str; 5] = [
    "name",
    "occupation",
    "location",
    "tech_proficiency",
    "behavioral_traits",
];

/// The records of a CSV in the format of [`super::query::to_csv`]: a header
/// row, then one persona a row. Traits are split on ";"; an empty cell
/// leaves the field out; an extra column's cell that is a JSON array,
/// object, number, boolean or null is read as that (the export writes
/// non-string extras as JSON), anything else as text. The values are not
/// checked here: see [`check_records`].
pub fn csv_records(text: &str) -> Result<Vec<Value>, CsvError> {
    let rows = parse_csv(text)?;
    let Some((_, header)) = rows.first() else {
        return Err(CsvError {
            line: 1,
            reason: "the file is empty (expected a header row: id,name,occupation,…)".into(),
        });
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    let missing: Vec<&str> = CSV_REQUIRED
        .into_iter()
        .filter(|c| !header.iter().any(|h| h == c))
        .collect();
    if !missing.is_empty() {
        return Err(CsvError {
            line: 1,
            reason: format!(
                "the header has no {} column (expected id,name,occupation,location,tech_proficiency,behavioral_traits,age, then any extra fields)",
                missing.join(", ")
            ),
        });
    }
    if let Some(dup) = header
        .iter()
        .enumerate()
        .find(|(i, h)| header[..*i].contains(h))
    {
        return Err(CsvError {
            line: 1,
            reason: format!("the header has the column {:?} twice", dup.1),
        });
    }
    let mut records = Vec::with_capacity(rows.len() - 1);
    for (line, cells) in &rows[1..] {
        if cells.len() != header.len() {
            return Err(CsvError {
                line: *line,
                reason: format!(
                    "{} cells where the header has {} columns",
                    cells.len(),
                    header.len()
                ),
            });
        }
        let mut record = serde_json::Map::new();
        for (column, cell) in header.iter().zip(cells) {
            let text_column = matches!(
                column.as_str(),
                "name" | "occupation" | "location" | "tech_proficiency" | "behavioral_traits"
            );
            if cell.is_empty() && !text_column {
                continue;
            }
            let value = match column.as_str() {
                "name" | "occupation" | "location" | "tech_proficiency" => {
                    Value::String(cell.clone())
                }
                "behavioral_traits" => Value::Array(
                    cell.split(';')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(|t| Value::String(t.to_string()))
                        .collect(),
                ),
                "id" | "age" => match cell.trim().parse::<serde_json::Number>() {
                    Ok(n) => Value::Number(n),
                    Err(_) => Value::String(cell.clone()),
                },
                _ => match serde_json::from_str::<Value>(cell) {
                    Ok(Value::String(_)) | Err(_) => Value::String(cell.clone()),
                    Ok(value) => value,
                },
            };
            record.insert(column.clone(), value);
        }
        records.push(Value::Object(record));
    }
    Ok(records)
}

/// RFC 4180: rows of cells, each with the line it starts on. Quoted cells
/// may hold commas, newlines and doubled quotes; CRLF and LF both end a
/// row; blank lines and a UTF-8 byte order mark are skipped.
fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut cell = String::new();
    let mut line = 1;
    let mut row_line = 1;
    let mut chars = text.chars().peekable();
    // Whether the current cell was quoted (it then ends at its closing quote).
    let mut quoted_cell = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if cell.is_empty() && !quoted_cell => {
                quoted_cell = true;
                let start = line;
                loop {
                    match chars.next() {
                        None => {
                            return Err(CsvError {
                                line: start,
                                reason: "a quoted cell is not closed".into(),
                            });
                        }
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            cell.push('"');
                        }
                        Some('"') => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            cell.push(c);
                        }
                    }
                }
                if !matches!(chars.peek(), None | Some(',' | '\n' | '\r')) {
                    return Err(CsvError {
                        line,
                        reason: "text after a closing quote (a quote inside a quoted cell is written \"\")".into(),
                    });
                }
            }
            ',' => {
                row.push(std::mem::take(&mut cell));
                quoted_cell = false;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                if !(row.is_empty() && cell.is_empty() && !quoted_cell) {
                    row.push(std::mem::take(&mut cell));
                    rows.push((row_line, std::mem::take(&mut row)));
                }
                quoted_cell = false;
                line += 1;
                row_line = line;
            }
            c => cell.push(c),
        }
    }
    if !(row.is_empty() && cell.is_empty() && !quoted_cell) {
        row.push(cell);
        rows.push((row_line, row));
    }
    Ok(rows)
}

/// A record that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRecord {
    /// 1-based position in the file.
    pub index: usize,
    /// The persona; its `id` is 0 when the record had none.
    pub persona: Persona,
}

/// Every record of an import, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckedRecords {
    pub valid: Vec<ValidRecord>,
    /// Every problem, in record order; a record may have several. Each is a
    /// [`PanelError::Record`]: "record N (id X): field `f`: reason".
    pub problems: Vec<PanelError>,
    /// How many records there were.
    pub total: usize,
}

impl CheckedRecords {
    /// The 1-based positions of the records with a problem.
    pub fn invalid_records(&self) -> Vec<usize> {
        let mut indices: Vec<usize> = self
            .problems
            .iter()
            .filter_map(|p| match p {
                PanelError::Record { index, .. } => Some(*index),
                _ => None,
            })
            .collect();
        indices.dedup();
        indices
    }
}

/// Checks every record and reports every problem, where [`parse_panel`]
/// stops at the first. The rules are [`validate_panel`]'s: the field types
/// (serde, field by field), non-empty name, occupation and location, their
/// lengths, at most 20 traits, no empty trait, age 1..=120, positive ids,
/// unique within the file. One difference: the id may be left out (the
/// persona then has id 0, for the caller to assign).
pub fn check_records(records: &[Value]) -> CheckedRecords {
    let mut checked = CheckedRecords {
        total: records.len(),
        ..Default::default()
    };
    let mut first_with_id: HashMap<u64, usize> = HashMap::new();
    for (i, record) in records.iter().enumerate() {
        let index = i + 1;
        let id = record.get("id").and_then(Value::as_u64);
        let fail = |field: &str, reason: String| PanelError::Record {
            index,
            id,
            field: field.to_string(),
            reason,
        };
        let mut problems: Vec<PanelError> = match check_record(record) {
            Ok(persona) => {
                checked.valid.push(ValidRecord { index, persona });
                Vec::new()
            }
            Err(problems) => problems
                .into_iter()
                .map(|(field, reason)| fail(&field, reason))
                .collect(),
        };
        if let Some(id) = id.filter(|&id| id > 0) {
            match first_with_id.get(&id) {
                Some(first) => problems.push(fail(
                    "id",
                    format!("duplicate id {id} (record {first} has it too)"),
                )),
                None => {
                    first_with_id.insert(id, index);
                }
            }
        }
        if !problems.is_empty() {
            checked.valid.retain(|v| v.index != index);
            checked.problems.extend(problems);
        }
    }
    checked
}

/// A field serde checks on its own: name, whether it is required, and a
/// valid stand-in for when it is not.
type RecordField = (&'static str, bool, fn() -> Value);

const RECORD_FIELDS: [RecordField; 7] = [
    ("id", false, || Value::from(1)),
    ("name", true, || Value::from("n")),
    ("occupation", true, || Value::from("o")),
    ("location", true, || Value::from("l")),
    ("tech_proficiency", true, || Value::from("Low")),
    ("behavioral_traits", true, || Value::Array(Vec::new())),
    ("age", false, || Value::Null),
];

/// Why serde rejects `value` as field `key`, if it does.
fn field_error(key: &str, value: &Value) -> Option<String> {
    fn check<T: DeserializeOwned>(value: &Value) -> Option<String> {
        T::deserialize(value).err().map(|e| e.to_string())
    }
    match key {
        "id" => check::<u32>(value),
        "tech_proficiency" => check::<TechProficiency>(value),
        "behavioral_traits" => check::<Vec<String>>(value),
        "age" => check::<Option<u32>>(value),
        _ => check::<String>(value),
    }
}

/// A record as a persona (id 0 when it has none), or every problem it has
/// as (field, reason), in field order. A field serde rejects is replaced by
/// a valid stand-in, so the rules still check all the others.
fn check_record(record: &Value) -> Result<Persona, Vec<(String, String)>> {
    let Some(map) = record.as_object() else {
        return Err(vec![(
            ".".into(),
            format!("expected a persona object, found {}", json_kind(record)),
        )]);
    };
    let mut problems: Vec<(String, String)> = Vec::new();
    let mut patched = map.clone();
    for (key, required, stand_in) in RECORD_FIELDS {
        let problem = match map.get(key) {
            None if required => Some(format!("missing field `{key}`")),
            None => None,
            Some(value) => field_error(key, value),
        };
        if let Some(reason) = problem {
            problems.push((key.into(), reason));
            patched.insert(key.into(), stand_in());
        }
    }
    let has_id = map.contains_key("id");
    if !has_id {
        patched.insert("id".into(), Value::from(1));
    }
    let mut persona = match Persona::deserialize(Value::Object(patched)) {
        Ok(persona) => persona,
        Err(e) => {
            problems.push((".".into(), e.to_string()));
            return Err(problems);
        }
    };
    problems.extend(persona_problems(&persona));
    let order = |field: &str| {
        RECORD_FIELDS
            .iter()
            .position(|(key, _, _)| *key == field)
            .unwrap_or(RECORD_FIELDS.len())
    };
    problems.sort_by_key(|(field, _)| order(field));
    if !problems.is_empty() {
        return Err(problems);
    }
    if !has_id {
        persona.id = 0;
    }
    Ok(persona)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Every rule of [`validate_panel`] this persona breaks, as (field, reason).
/// Each field is checked on its own by validating a persona that is valid
/// apart from that field, so the rules and their wording stay
/// `validate_panel`'s own.
pub fn persona_problems(p: &Persona) -> Vec<(String, String)> {
    let base = Persona {
        id: 1,
        name: "n".into(),
        occupation: "o".into(),
        location: "l".into(),
        tech_proficiency: p.tech_proficiency,
        behavioral_traits: Vec::new(),
        age: None,
        extra: BTreeMap::new(),
    };
    let probes = [
        Persona {
            id: p.id,
            ..base.clone()
        },
        Persona {
            name: p.name.clone(),
            ..base.clone()
        },
        Persona {
            occupation: p.occupation.clone(),
            ..base.clone()
        },
        Persona {
            location: p.location.clone(),
            ..base.clone()
        },
        Persona {
            behavioral_traits: p.behavioral_traits.clone(),
            ..base.clone()
        },
        Persona { age: p.age, ..base },
    ];
    probes
        .iter()
        .filter_map(|probe| match validate_panel(std::slice::from_ref(probe)) {
            Err(PanelError::Record { field, reason, .. }) => Some((field, reason)),
            _ => None,
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveResult {
    Saved,
    Unchanged,
    Blocked,
}

/// What the autosaver tells the UI after each save.
#[derive(Debug, Clone, PartialEq)]
pub enum SaveNotice {
    Saved { path: PathBuf, count: usize },
    Blocked,
    Failed(String),
}

/// Saves panels on a background thread. Snapshots sent faster than the disk
/// keeps up are coalesced: only the newest is written.
pub struct Autosaver {
    tx: Option<std_mpsc::Sender<Vec<Persona>>>,
    thread: Option<JoinHandle<()>>,
}

impl Autosaver {
    pub fn spawn(mut store: Store, notify: impl Fn(SaveNotice) + Send + 'static) -> Self {
        let (tx, rx) = std_mpsc::channel::<Vec<Persona>>();
        let thread = std::thread::Builder::new()
            .name("persona-autosave".into())
            .spawn(move || {
                while let Ok(mut panel) = rx.recv() {
                    while let Ok(newer) = rx.try_recv() {
                        panel = newer;
                    }
                    let notice = match store.save(&panel) {
                        Ok(SaveResult::Saved) => {
                            tracing::info!(target: "store", count = panel.len(), "personas saved");
                            SaveNotice::Saved {
                                path: store.paths.main.clone(),
                                count: panel.len(),
                            }
                        }
                        Ok(SaveResult::Unchanged) => continue,
                        Ok(SaveResult::Blocked) => SaveNotice::Blocked,
                        Err(e) => {
                            tracing::error!(target: "store", error = %e, "save failed");
                            SaveNotice::Failed(e.to_string())
                        }
                    };
                    notify(notice);
                }
            })
            .expect("spawn autosave thread");
        Autosaver {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Queues a snapshot for saving; returns at once.
    pub fn save(&self, personas: Vec<Persona>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(personas);
        }
    }

    /// Finishes queued saves and stops the thread.
    pub fn shutdown(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Autosaver {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::TechProficiency;
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};

    fn panel(n: u32) -> Vec<Persona> {
        (1..=n)
            .map(|id| Persona {
                id,
                name: format!("Person {id}"),
                occupation: "Tester".into(),
                location: "Lisbon, Portugal".into(),
                tech_proficiency: TechProficiency::Medium,
                behavioral_traits: vec!["curious".into(); id as usize % 5],
                age: Some(30),
                extra: Default::default(),
            })
            .collect()
    }

    fn paths(dir: &tempfile::TempDir) -> StorePaths {
        StorePaths::for_file(dir.path().join("personas.json"))
    }

    #[test]
    fn backup_name_follows_the_seed() {
        let p = StorePaths::for_file("/x/personas.json");
        assert_eq!(p.backup, PathBuf::from("/x/personas_backup.json"));
        let p = StorePaths::for_file("/x/team.json");
        assert_eq!(p.backup, PathBuf::from("/x/team_backup.json"));
    }

    #[test]
    fn first_run_writes_builtin_panel_and_backup() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = load(&paths(&dir)).unwrap();
        assert_eq!(loaded.source, LoadSource::FirstRun);
        assert_eq!(loaded.personas, builtin_panel());
        let on_disk = parse_panel(&fs::read_to_string(dir.path().join("personas.json")).unwrap());
        assert_eq!(on_disk.unwrap(), builtin_panel());
        assert!(dir.path().join("personas_backup.json").exists());
    }

    #[test]
    fn round_trip_and_previous_version_becomes_backup() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = load(&paths(&dir)).unwrap().store;
        assert_eq!(store.save(&panel(3)).unwrap(), SaveResult::Saved);
        assert_eq!(store.save(&panel(3)).unwrap(), SaveResult::Unchanged);
        assert_eq!(store.save(&panel(5)).unwrap(), SaveResult::Saved);
        let loaded = load(&paths(&dir)).unwrap();
        assert_eq!(loaded.source, LoadSource::File);
        assert_eq!(loaded.personas, panel(5));
        let backup = fs::read_to_string(dir.path().join("personas_backup.json")).unwrap();
        assert_eq!(parse_panel(&backup).unwrap(), panel(3));
    }

    #[test]
    fn corrupt_file_is_restored_from_backup_and_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        atomic_write(&p.backup, &panel_to_json(&panel(4))).unwrap();
        fs::write(&p.main, "[{\"id\": 1, \"name\": ").unwrap();
        let loaded = load(&p).unwrap();
        assert_eq!(loaded.source, LoadSource::RestoredFromBackup);
        assert_eq!(loaded.personas, panel(4));
        assert!(
            loaded.notices[0].contains("corrupt"),
            "{:?}",
            loaded.notices
        );
        let aside: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("personas.json.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(
            fs::read_to_string(dir.path().join(&aside[0])).unwrap(),
            "[{\"id\": 1, \"name\": "
        );
        assert!(loaded.notices[0].contains(&aside[0]));
        assert_eq!(
            parse_panel(&fs::read_to_string(&p.main).unwrap()).unwrap(),
            panel(4)
        );
    }

    #[test]
    fn missing_file_is_restored_from_backup() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        atomic_write(&p.backup, &panel_to_json(&panel(2))).unwrap();
        let loaded = load(&p).unwrap();
        assert_eq!(loaded.source, LoadSource::RestoredFromBackup);
        assert_eq!(loaded.personas, panel(2));
        assert!(loaded.notices[0].contains("missing"));
    }

    #[test]
    fn both_corrupt_starts_from_builtin_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        fs::write(&p.main, "not json").unwrap();
        fs::write(&p.backup, "{\"personas\": 3}").unwrap();
        let loaded = load(&p).unwrap();
        assert_eq!(loaded.source, LoadSource::BuiltinBecauseBothBad);
        assert_eq!(loaded.personas, builtin_panel());
        assert!(
            loaded.notices[0].contains("corrupt too"),
            "{:?}",
            loaded.notices
        );
        let mut store = loaded.store;
        assert_eq!(store.save(&panel(1)).unwrap(), SaveResult::Blocked);
        assert_eq!(fs::read_to_string(&p.main).unwrap(), "not json");
        assert_eq!(fs::read_to_string(&p.backup).unwrap(), "{\"personas\": 3}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn unreadable_path_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be cannot be read as a file.
        fs::create_dir(dir.path().join("personas.json")).unwrap();
        let err = load(&paths(&dir)).unwrap_err().to_string();
        assert!(
            err.contains("cannot read") && err.contains("personas.json"),
            "{err}"
        );
    }

    #[test]
    fn concurrent_saves_never_leave_a_truncated_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        atomic_write(&p.main, &panel_to_json(&panel(1))).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (main, stop) = (p.main.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) {
                    let text = fs::read_to_string(&main).unwrap();
                    parse_panel(&text).expect("never a partial file");
                    reads += 1;
                }
                reads
            })
        };
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let p = p.clone();
                std::thread::spawn(move || {
                    let mut store = Store::new(p);
                    for i in 0..50 {
                        store.save(&panel(1 + (w * 50 + i) % 40)).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        let leftovers = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp-")
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn autosaver_saves_off_thread_and_reports() {
        let dir = tempfile::tempdir().unwrap();
        let store = load(&paths(&dir)).unwrap().store;
        let notices = Arc::new(Mutex::new(Vec::new()));
        let sink = notices.clone();
        let saver = Autosaver::spawn(store, move |n| sink.lock().unwrap().push(n));
        for n in 1..=20 {
            saver.save(panel(n));
        }
        saver.shutdown();
        let on_disk = parse_panel(&fs::read_to_string(dir.path().join("personas.json")).unwrap());
        assert_eq!(on_disk.unwrap(), panel(20), "the newest snapshot wins");
        let notices = notices.lock().unwrap();
        assert!(!notices.is_empty() && notices.len() <= 20);
        assert!(matches!(
            notices.last().unwrap(),
            SaveNotice::Saved { count: 20, .. }
        ));
    }

    fn names_in(dir: &tempfile::TempDir) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn manual_backups_are_timestamped_copies_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        let mut store = load(&p).unwrap().store;
        store.save(&panel(3)).unwrap();
        let first = backup_now(&p).unwrap();
        let second = backup_now(&p).unwrap();
        assert_ne!(first, second);
        for path in [&first, &second] {
            assert_eq!(path.parent(), Some(dir.path()));
            assert_eq!(
                fs::read_to_string(path).unwrap(),
                fs::read_to_string(&p.main).unwrap()
            );
        }
        let name = first.file_name().unwrap().to_string_lossy().into_owned();
        let rest = name
            .strip_prefix("personas_backup_")
            .and_then(|r| r.strip_suffix(".json"))
            .unwrap();
        assert!(backup_key(rest).is_some(), "{name}");
        // The rolling backup is not touched.
        assert_eq!(
            parse_panel(&fs::read_to_string(&p.backup).unwrap()).unwrap(),
            builtin_panel()
        );
        let listed = timestamped_backups(&p).unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.contains(&first) && listed.contains(&second));
    }

    #[test]
    fn backups_sort_newest_first_and_ignore_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = StorePaths::for_file(dir.path().join("team.json"));
        for name in [
            "team_backup_20240101-000000.json",
            "team_backup_20250101-000000-2.json",
            "team_backup_20250101-000000.json",
            "team_backup_20250101-000000-10.json",
            "team_backup.json",
            "team_backup_2025.json",
            "team_backup_20250101-00000x.json",
            "personas_backup_20990101-000000.json",
            "team_backup_20260101-000000.json.tmp",
        ] {
            fs::write(dir.path().join(name), "[]").unwrap();
        }
        let names: Vec<String> = timestamped_backups(&p)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "team_backup_20250101-000000-10.json",
                "team_backup_20250101-000000-2.json",
                "team_backup_20250101-000000.json",
                "team_backup_20240101-000000.json",
            ]
        );
        assert_eq!(
            default_restore_source(&p).unwrap(),
            Some(dir.path().join("team_backup_20250101-000000-10.json"))
        );
    }

    #[test]
    fn the_default_restore_source_falls_back_to_the_rolling_backup() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        assert_eq!(default_restore_source(&p).unwrap(), None);
        let missing = StorePaths::for_file(dir.path().join("no/such/dir/personas.json"));
        assert_eq!(default_restore_source(&missing).unwrap(), None);
        fs::write(&p.backup, "[]").unwrap();
        assert_eq!(default_restore_source(&p).unwrap(), Some(p.backup.clone()));
    }

    #[test]
    fn backup_of_a_missing_or_corrupt_panel_is_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        let err = backup_now(&p).unwrap_err().to_string();
        assert!(
            err.contains("personas.json") && err.contains("no such file"),
            "{err}"
        );
        fs::write(&p.main, "[{").unwrap();
        let err = backup_now(&p).unwrap_err().to_string();
        assert!(
            err.contains("personas.json is not a valid persona panel"),
            "{err}"
        );
        assert_eq!(names_in(&dir), ["personas.json"]);
    }

    #[test]
    fn restore_keeps_the_replaced_file_and_makes_it_the_backup() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        let mut store = load(&p).unwrap().store;
        store.save(&panel(3)).unwrap();
        let old_text = fs::read_to_string(&p.main).unwrap();
        let source = dir.path().join("elsewhere.json");
        fs::write(
            &source,
            format!("{{\"personas\": {}}}", panel_to_json(&panel(5))),
        )
        .unwrap();
        let outcome = restore_from(&p, &source).unwrap();
        assert_eq!((outcome.restored, outcome.replaced), (5, Some(3)));
        let kept = outcome.kept_as.unwrap();
        assert!(
            kept.to_string_lossy().contains("personas.json.replaced-"),
            "{kept:?}"
        );
        assert_eq!(fs::read_to_string(&kept).unwrap(), old_text);
        assert_eq!(fs::read_to_string(&p.backup).unwrap(), old_text);
        assert_eq!(
            fs::read_to_string(&p.main).unwrap(),
            panel_to_json(&panel(5))
        );
        let loaded = load(&p).unwrap();
        assert_eq!(
            (loaded.source, loaded.personas),
            (LoadSource::File, panel(5))
        );
        // Restoring the rolling backup swaps back.
        restore_from(&p, &p.backup).unwrap();
        assert_eq!(read_panel_file(&p.main).unwrap(), panel(3));
        assert_eq!(read_panel_file(&p.backup).unwrap(), panel(5));
    }

    #[test]
    fn restore_from_an_invalid_file_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        atomic_write(&p.main, &panel_to_json(&panel(2))).unwrap();
        let bad = dir.path().join("bad.json");
        fs::write(&bad, r#"[{"id": 1, "name": ""}]"#).unwrap();
        let err = restore_from(&p, &bad).unwrap_err().to_string();
        assert!(
            err.contains("bad.json is not a valid persona panel") && err.contains("record 1"),
            "{err}"
        );
        let err = restore_from(&p, &dir.path().join("gone.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("gone.json"), "{err}");
        assert_eq!(names_in(&dir), ["bad.json", "personas.json"]);
    }

    #[test]
    fn restore_over_a_corrupt_or_missing_panel() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        let source = dir.path().join("good.json");
        fs::write(&source, panel_to_json(&panel(2))).unwrap();
        let outcome = restore_from(&p, &source).unwrap();
        assert_eq!(
            outcome,
            RestoreOutcome {
                restored: 2,
                replaced: None,
                kept_as: None
            }
        );
        fs::write(&p.main, "garbage").unwrap();
        let outcome = restore_from(&p, &source).unwrap();
        assert_eq!(outcome.replaced, None);
        assert_eq!(
            fs::read_to_string(outcome.kept_as.unwrap()).unwrap(),
            "garbage"
        );
        assert!(
            !p.backup.exists(),
            "a corrupt file never becomes the backup"
        );
        assert_eq!(read_panel_file(&p.main).unwrap(), panel(2));
    }

    // -- import checks --------------------------------------------------------

    fn record(id: u32) -> Value {
        serde_json::to_value(&panel(id)[id as usize - 1]).unwrap()
    }

    fn problems_of(checked: &CheckedRecords) -> Vec<String> {
        checked.problems.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn every_problem_of_every_record_is_reported() {
        let mut bad_name = record(2);
        bad_name["name"] = Value::from(" ");
        bad_name["tech_proficiency"] = Value::from("Expert");
        bad_name["age"] = Value::from(0);
        let mut no_id = record(4);
        no_id.as_object_mut().unwrap().remove("id");
        let records = vec![
            record(1),
            bad_name,
            serde_json::json!({"id": 3, "behavioral_traits": "x"}),
            no_id,
            record(1),
            Value::from("Ana"),
        ];
        let checked = check_records(&records);
        assert_eq!(checked.total, 6);
        assert_eq!(checked.invalid_records(), [2, 3, 5, 6]);
        let valid: Vec<(usize, u32)> = checked
            .valid
            .iter()
            .map(|v| (v.index, v.persona.id))
            .collect();
        assert_eq!(valid, [(1, 1), (4, 0)], "a record without an id is fine");
        assert_eq!(
            problems_of(&checked),
            [
                "record 2 (id 2): field `name`: must not be empty",
                "record 2 (id 2): field `tech_proficiency`: unknown variant `Expert`, expected one of `Low`, `Medium`, `High`",
                "record 2 (id 2): field `age`: 0 is not a plausible age",
                "record 3 (id 3): field `name`: missing field `name`",
                "record 3 (id 3): field `occupation`: missing field `occupation`",
                "record 3 (id 3): field `location`: missing field `location`",
                "record 3 (id 3): field `tech_proficiency`: missing field `tech_proficiency`",
                "record 3 (id 3): field `behavioral_traits`: invalid type: string \"x\", expected a sequence",
                "record 5 (id 1): field `id`: duplicate id 1 (record 1 has it too)",
                "record 6: field `.`: expected a persona object, found a string",
            ]
        );
    }

    #[test]
    fn the_rules_are_validate_panels_own() {
        let ok = panel(1).remove(0);
        let variants: Vec<Persona> = vec![
            ok.clone(),
            Persona {
                id: 0,
                ..ok.clone()
            },
            Persona {
                name: "".into(),
                ..ok.clone()
            },
            Persona {
                name: "x".repeat(81),
                ..ok.clone()
            },
            Persona {
                name: "é".repeat(80),
                ..ok.clone()
            },
            Persona {
                occupation: " \t".into(),
                ..ok.clone()
            },
            Persona {
                location: "y".repeat(161),
                ..ok.clone()
            },
            Persona {
                behavioral_traits: vec!["t".into(); 21],
                ..ok.clone()
            },
            Persona {
                behavioral_traits: vec!["t".into(); 20],
                ..ok.clone()
            },
            Persona {
                behavioral_traits: vec!["a".into(), " ".into()],
                ..ok.clone()
            },
            Persona {
                age: Some(0),
                ..ok.clone()
            },
            Persona {
                age: Some(121),
                ..ok.clone()
            },
            Persona {
                age: Some(120),
                ..ok.clone()
            },
            Persona {
                age: None,
                ..ok.clone()
            },
            Persona {
                name: "".into(),
                age: Some(500),
                ..ok.clone()
            },
        ];
        for p in &variants {
            let problems = persona_problems(p);
            match validate_panel(std::slice::from_ref(p)) {
                Ok(()) => assert!(problems.is_empty(), "{p:?}: {problems:?}"),
                Err(PanelError::Record { field, reason, .. }) => {
                    assert_eq!(problems.first(), Some(&(field, reason)), "{p:?}")
                }
                Err(other) => panic!("{other}"),
            }
        }
        assert_eq!(persona_problems(variants.last().unwrap()).len(), 2);
    }

    #[test]
    fn json_records_accept_the_panel_shapes() {
        assert_eq!(json_records("[]", false).unwrap(), Vec::<Value>::new());
        assert_eq!(
            json_records(r#"{"personas": [1]}"#, false).unwrap(),
            [Value::from(1)]
        );
        assert_eq!(
            json_records(r#"{"name": "A"}"#, false),
            Err(PanelError::NotAList)
        );
        assert_eq!(
            json_records(r#"{"name": "A"}"#, true).unwrap(),
            [serde_json::json!({"name": "A"})]
        );
        assert_eq!(json_records("3", true), Err(PanelError::NotAList));
        assert!(matches!(
            json_records("[", true),
            Err(PanelError::Syntax(_))
        ));
    }

    #[test]
    fn csv_cells_follow_rfc_4180() {
        let rows = parse_csv("\u{feff}a,\"b,\"\"c\"\"\nd\",\r\n\n\"\",x\n").unwrap();
        assert_eq!(
            rows,
            [
                (1, vec!["a".to_string(), "b,\"c\"\nd".into(), "".into()]),
                (4, vec!["".to_string(), "x".into()]),
            ]
        );
        assert_eq!(
            parse_csv("a,b").unwrap(),
            [(1, vec!["a".to_string(), "b".into()])]
        );
        assert_eq!(parse_csv("").unwrap(), []);
        let err = parse_csv("a\n\"open,\nstill open").unwrap_err();
        assert_eq!(
            (err.line, err.reason.as_str()),
            (2, "a quoted cell is not closed")
        );
        let err = parse_csv("\"a\"b,c").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.reason.contains("after a closing quote"), "{err}");
    }

    #[test]
    fn the_csv_export_reads_back_as_the_same_panel() {
        let mut tricky = panel(3);
        tricky[0].name = "Ana \"Nana\" Silva, Jr.\nof Porto".into();
        tricky[0].occupation = "Nurse, night shift".into();
        tricky[1].age = None;
        tricky[1].behavioral_traits = Vec::new();
        tricky[2]
            .extra
            .insert("bio".into(), Value::from("Sings; \"loudly\""));
        tricky[2]
            .extra
            .insert("goals".into(), serde_json::json!(["a", "b, c"]));
        tricky[2].extra.insert("score".into(), Value::from(7));
        let checked = check_records(&csv_records(&super::super::query::to_csv(&tricky)).unwrap());
        assert!(checked.problems.is_empty(), "{:?}", checked.problems);
        let back: Vec<Persona> = checked.valid.into_iter().map(|v| v.persona).collect();
        assert_eq!(back, tricky);
    }

    #[test]
    fn csv_problems_name_the_line_and_column() {
        let err = csv_records("id,name,occupation\n1,a,b\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(
            err.to_string()
                .contains("no location, tech_proficiency, behavioral_traits column"),
            "{err}"
        );
        let header = "id,name,occupation,location,tech_proficiency,behavioral_traits,age";
        let err = csv_records(&format!("{header}\n1,a,b,c,Low,x,3\n2,a,b\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CSV line 3: 3 cells where the header has 7 columns"
        );
        let err = csv_records(&format!("{header},name\n")).unwrap_err();
        assert!(err.reason.contains("\"name\" twice"), "{err}");
        assert!(csv_records("").is_err());
        // Values are checked by check_records, with every problem.
        let records = csv_records(&format!("{header}\nx,,b,c,low,,abc\n,A,b,c,Low,,\n")).unwrap();
        let checked = check_records(&records);
        assert_eq!(
            problems_of(&checked),
            [
                "record 1: field `id`: invalid type: string \"x\", expected u32",
                "record 1: field `name`: must not be empty",
                "record 1: field `tech_proficiency`: unknown variant `low`, expected one of `Low`, `Medium`, `High`",
                "record 1: field `age`: invalid type: string \"abc\", expected u32",
            ]
        );
        assert_eq!(checked.valid.len(), 1);
        assert_eq!(checked.valid[0].persona.id, 0);
    }
}
