//! The persona store: where a panel lives, loading it with recovery from a
//! missing or corrupt file, and atomic saves that keep the previous good
//! file as the rolling backup. Saving off the UI thread is in
//! [`super::autosave`], manual backups and restore in [`super::backup`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{PanelError, Persona, builtin_panel, panel_to_json, parse_panel};

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

pub(super) enum FileState {
    Good(Vec<Persona>, String),
    Missing,
    Corrupt(PanelError),
}

pub(super) fn read_state(path: &Path) -> Result<FileState, StoreError> {
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
/// this runs once before the UI starts; later saves go through [`super::autosave::Autosaver`].
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
pub(super) fn free_path(name: impl Fn(&str) -> PathBuf) -> PathBuf {
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

/// Reads a file that must hold a valid panel.
pub fn read_panel_file(path: &Path) -> Result<Vec<Persona>, StoreError> {
    read_panel_text(path).map(|(panel, _)| panel)
}

pub(super) fn read_panel_text(path: &Path) -> Result<(Vec<Persona>, String), StoreError> {
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

/// What [`Store::save`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveResult {
    Saved,
    Unchanged,
    Blocked,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::testing::panel;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

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
    fn a_file_saved_with_a_byte_order_mark_loads_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        let text = format!("\u{feff}{}", panel_to_json(&panel(3)));
        fs::write(&p.main, &text).unwrap();
        let loaded = load(&p).unwrap();
        assert_eq!(loaded.source, LoadSource::File);
        assert_eq!(loaded.personas, panel(3));
        assert!(loaded.notices.is_empty(), "{:?}", loaded.notices);
        assert_eq!(
            fs::read_to_string(&p.main).unwrap(),
            text,
            "not moved aside"
        );
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
}
