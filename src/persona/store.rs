//! The persona store: load with recovery, atomic saves with a backup, and an
//! autosaver that does the disk work off the UI thread.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

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
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
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
        Err(source) => Err(StoreError::Read {
            path: path.to_path_buf(),
            source,
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
                fs::rename(&paths.main, &aside).map_err(|source| StoreError::Write {
                    path: aside.clone(),
                    source,
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
    let mut candidate = PathBuf::from(format!("{}.corrupt-{stamp}", main.display()));
    let mut n = 1;
    while candidate.exists() {
        candidate = PathBuf::from(format!("{}.corrupt-{stamp}-{n}", main.display()));
        n += 1;
    }
    candidate
}

/// Writes `text` to `path` so that a reader (or a crash) sees either the old
/// file or the new one, never a truncated one: unique temp file in the same
/// directory, fsync, rename, fsync the directory.
pub fn atomic_write(path: &Path, text: &str) -> Result<(), StoreError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let err = |source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        display_name(path),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        #[cfg(unix)]
        fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
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
}
