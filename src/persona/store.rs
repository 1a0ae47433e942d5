//! The persona store: where a panel lives, loading it with recovery from a
//! missing or corrupt file, and [`change`]: every change to a panel file is
//! lock, re-read, apply, atomic write (the previous file becomes the rolling
//! backup), unlock, so processes sharing one panel never lose each other's
//! changes. Applying changes off the UI thread is in [`super::writer`],
//! noticing other processes' changes in [`super::watch`], manual backups and
//! restore in [`super::backup`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    #[error("cannot lock {path}: {error}")]
    Lock { path: PathBuf, error: io::Error },
    /// Both files were bad at start; nothing is written until they are fixed.
    #[error("nothing was saved: {path} could not be loaded safely ({why}); fix or remove it first")]
    Blocked { path: PathBuf, why: String },
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
    pub paths: StorePaths,
    /// Both files were bad at start: nothing is written, so the user can
    /// still recover them by hand.
    pub writes_blocked: bool,
}

pub(super) enum FileState {
    Good(Vec<Persona>, String),
    Missing,
    Corrupt(PanelError),
}

pub(super) fn read_state(path: &Path) -> Result<FileState, StoreError> {
    match crate::atomic_file::read_to_string(path) {
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

/// Loads the panel, recovering from a missing or corrupt file. The writes
/// recovery needs (the restored main file, a first backup) are made under
/// the panel lock; a panel in a folder this user cannot write still loads.
pub fn load(paths: &StorePaths) -> Result<Loaded, StoreError> {
    // The common case needs no write, so no lock: a reader never waits.
    if let FileState::Good(personas, _) = read_state(&paths.main)?
        && paths.backup.exists()
    {
        return Ok(Loaded {
            personas,
            source: LoadSource::File,
            notices: Vec::new(),
            paths: paths.clone(),
            writes_blocked: false,
        });
    }
    let _lock = PanelLock::acquire(paths).ok();
    Ok(load_locked(paths)?.0)
}

/// [`load`] for a caller that holds the lock; also returns the main file's
/// text as it is now (empty when writes are blocked).
fn load_locked(paths: &StorePaths) -> Result<(Loaded, String), StoreError> {
    let main = read_state(&paths.main)?;
    let mut notices = Vec::new();
    let mut writes_blocked = false;
    let name = display_name(&paths.main);
    let backup_name = display_name(&paths.backup);
    let write_main = |panel: &[Persona]| -> Result<String, StoreError> {
        let text = panel_to_json(panel);
        write_beside(paths, &paths.main, &text)?;
        Ok(text)
    };

    let (personas, source, text) = match main {
        FileState::Good(panel, text) => {
            // Best effort: a read-only shared panel must still load.
            if !paths.backup.exists()
                && let Err(e) = write_beside(paths, &paths.backup, &text)
            {
                notices.push(format!("No backup yet, and it could not be created: {e}"));
            }
            (panel, LoadSource::File, text)
        }
        FileState::Missing => match read_state(&paths.backup)? {
            FileState::Good(panel, _) => {
                notices.push(format!(
                    "{name} was missing: restored {} personas from {backup_name}",
                    panel.len()
                ));
                let text = write_main(&panel)?;
                (panel, LoadSource::RestoredFromBackup, text)
            }
            FileState::Missing => {
                let panel = builtin_panel();
                let text = write_main(&panel)?;
                write_beside(paths, &paths.backup, &text)?;
                notices.push(format!(
                    "First run: wrote the built-in panel of {} personas to {}",
                    panel.len(),
                    paths.main.display()
                ));
                (panel, LoadSource::FirstRun, text)
            }
            FileState::Corrupt(e) => {
                writes_blocked = true;
                notices.push(format!(
                    "{name} is missing and {backup_name} is corrupt ({e}); showing the built-in panel and writing nothing"
                ));
                (
                    builtin_panel(),
                    LoadSource::BuiltinBecauseBothBad,
                    String::new(),
                )
            }
        },
        FileState::Corrupt(main_err) => match read_state(&paths.backup)? {
            FileState::Good(panel, _) => {
                let aside = corrupt_aside_path(&paths.main);
                fs::rename(&paths.main, &aside).map_err(|error| StoreError::Write {
                    path: aside.clone(),
                    error,
                })?;
                let text = write_main(&panel)?;
                notices.push(format!(
                    "{name} was corrupt ({main_err}): restored {} personas from {backup_name}; the corrupt file is kept as {}",
                    panel.len(),
                    aside.display()
                ));
                (panel, LoadSource::RestoredFromBackup, text)
            }
            other => {
                let why = match other {
                    FileState::Corrupt(e) => format!("{backup_name} is corrupt too ({e})"),
                    _ => format!("there is no {backup_name}"),
                };
                writes_blocked = true;
                notices.push(format!(
                    "{name} is corrupt ({main_err}) and {why}; showing the built-in panel and writing nothing. Fix or remove {} to start saving again",
                    paths.main.display()
                ));
                (
                    builtin_panel(),
                    LoadSource::BuiltinBecauseBothBad,
                    String::new(),
                )
            }
        },
    };
    let loaded = Loaded {
        personas,
        source,
        notices,
        paths: paths.clone(),
        writes_blocked,
    };
    Ok((loaded, text))
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

/// Writes a file that belongs with the panel (the panel itself, its
/// backups) atomically, keeping its mode, owner and group; a new one takes
/// the panel file's, so a team panel's backups are as shared as the panel.
pub fn write_beside(paths: &StorePaths, path: &Path, text: &str) -> Result<(), StoreError> {
    crate::atomic_file::write_keeping(path, text, &paths.main).map_err(|e| StoreError::Write {
        path: e.path,
        error: e.error,
    })
}

/// Makes the main file as it is now (`text`, read under the lock) the
/// rolling backup: a hard link to it renamed over the backup, so its bytes
/// are not written again (a 10k panel is 4.5 MB); where links cannot be
/// made, the text is written.
fn keep_as_backup(paths: &StorePaths, text: &str) -> Result<(), StoreError> {
    let linked = (|| -> io::Result<()> {
        let main = crate::atomic_file::resolve_links(&paths.main)?;
        let backup = crate::atomic_file::resolve_links(&paths.backup)?;
        let tmp = backup.with_file_name(format!(
            ".{}.link-{}",
            backup.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let _ = fs::remove_file(&tmp);
        fs::hard_link(&main, &tmp)?;
        fs::rename(&tmp, &backup).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
    })();
    match linked {
        Ok(()) => Ok(()),
        Err(_) => write_beside(paths, &paths.backup, text),
    }
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

/// How long a change waits for another process's change to finish.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// An exclusive advisory lock on `NAME.json.lock` beside the panel file
/// (beside its target, when the panel is a symlink, so every link to one
/// panel shares one lock). Released on drop, and by the OS when the process
/// dies, so a `kill -9` never leaves the panel locked.
#[derive(Debug)]
pub struct PanelLock {
    _file: fs::File,
}

impl PanelLock {
    /// Waits up to [`LOCK_WAIT`] for the lock.
    pub fn acquire(paths: &StorePaths) -> Result<PanelLock, StoreError> {
        let path = lock_path(&paths.main);
        let err = |error| StoreError::Lock {
            path: path.clone(),
            error,
        };
        let file = open_lock_file(&path, &paths.main).map_err(err)?;
        let deadline = Instant::now() + LOCK_WAIT;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(PanelLock { _file: file }),
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "another process has held it for {} s (a stopped persona-sim? `fg` it or end it)",
                            LOCK_WAIT.as_secs()
                        ),
                    )));
                }
                Err(fs::TryLockError::Error(e)) => return Err(err(e)),
            }
        }
    }
}

/// `DIR/NAME.json.lock` for the file `path` names (links followed).
pub fn lock_path(main: &Path) -> PathBuf {
    let target = crate::atomic_file::resolve_links(main).unwrap_or_else(|_| main.to_path_buf());
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "personas.json".into());
    target.with_file_name(format!("{name}.lock"))
}

/// Opens (creating with the panel's mode) the lock file; read-only when
/// another user created it: a read-only handle locks as well.
fn open_lock_file(path: &Path, main: &Path) -> io::Result<fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::atomic_file::create_private_dir(dir)?;
    }
    match fs::OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => return Ok(file),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return fs::File::open(path);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // A new lock file: made beside the panel with its mode, so the team
    // can open it too.
    crate::atomic_file::write_keeping(path, "", main).map_err(|e| e.error)?;
    fs::OpenOptions::new().read(true).write(true).open(path)
}

/// Why changes to this panel cannot be saved, if they cannot: both files
/// were bad at start, or its folder is not writable by this user (asked of
/// the OS; no probe file is made).
pub fn write_problem(loaded: &Loaded) -> Option<String> {
    if loaded.writes_blocked {
        return Some(format!(
            "{} could not be loaded safely, so saving is blocked",
            loaded.paths.main.display()
        ));
    }
    let target = crate::atomic_file::resolve_links(&loaded.paths.main).ok()?;
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty())?;
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: a valid C string; access only reads the permissions.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
            let e = io::Error::last_os_error();
            return Some(format!("{}: {e}", dir.display()));
        }
    }
    None
}

/// What [`change`] did.
#[derive(Debug)]
pub struct Changed<T> {
    /// What the operation returned.
    pub value: T,
    /// The panel as it is now in its store (shared with the store's own
    /// copy where it keeps one, so returning it costs no copy).
    pub panel: std::sync::Arc<Vec<Persona>>,
    /// `false` when the operation left the panel as it was.
    pub saved: bool,
    /// What loading found and repaired first (a restored file, a first run).
    pub notices: Vec<String>,
}

/// Changes the panel file as one step no other process can interleave
/// with: lock, read the file as it is now (recovering it as [`load`]
/// would), apply `op`, write atomically (the file before becomes the
/// rolling backup), unlock. `op` refusing (its `Err`) writes nothing and is
/// the inner error; a file that cannot be read, locked or written is the
/// outer one.
pub fn change<T, E>(
    paths: &StorePaths,
    op: impl FnOnce(&mut Vec<Persona>) -> Result<T, E>,
) -> Result<Result<Changed<T>, E>, StoreError> {
    let _lock = PanelLock::acquire(paths)?;
    let (loaded, before) = load_locked(paths)?;
    if loaded.writes_blocked {
        return Err(StoreError::Blocked {
            path: paths.main.clone(),
            why: loaded.notices.join("; "),
        });
    }
    let mut panel = loaded.personas;
    let value = match op(&mut panel) {
        Ok(value) => value,
        Err(refused) => return Ok(Err(refused)),
    };
    let text = panel_to_json(&panel);
    let saved = text != before;
    if saved {
        keep_as_backup(paths, &before)?;
        write_beside(paths, &paths.main, &text)?;
        tracing::info!(target: "store", count = panel.len(), "personas saved");
    }
    Ok(Ok(Changed {
        value,
        panel: std::sync::Arc::new(panel),
        saved,
        notices: loaded.notices,
    }))
}

#[cfg(test)]
pub(crate) mod tests {
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

    /// Replaces the whole panel through [`change`].
    pub(crate) fn put(p: &StorePaths, personas: Vec<Persona>) -> Changed<()> {
        change(p, |panel| {
            *panel = personas;
            Ok::<_, ()>(())
        })
        .unwrap()
        .unwrap()
    }

    #[test]
    fn round_trip_and_previous_version_becomes_backup() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        load(&p).unwrap();
        assert!(put(&p, panel(3)).saved);
        assert!(!put(&p, panel(3)).saved);
        assert!(put(&p, panel(5)).saved);
        let loaded = load(&p).unwrap();
        assert_eq!(loaded.source, LoadSource::File);
        assert_eq!(loaded.personas, panel(5));
        let backup = fs::read_to_string(dir.path().join("personas_backup.json")).unwrap();
        assert_eq!(parse_panel(&backup).unwrap(), panel(3));
    }

    #[test]
    fn a_refused_change_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        put(&p, panel(2));
        let before = fs::read_to_string(&p.main).unwrap();
        let refused = change(&p, |panel| {
            panel.clear();
            Err::<(), _>("no")
        })
        .unwrap();
        assert_eq!(refused.unwrap_err(), "no");
        assert_eq!(fs::read_to_string(&p.main).unwrap(), before);
    }

    #[test]
    fn changes_from_many_threads_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        put(&p, Vec::new());
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let mut new = panel(1).remove(0);
                        new.id = 0;
                        new.name = format!("w{w}-{i}");
                        change(&p, |panel| crate::persona::ops::add(panel, new))
                            .unwrap()
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let loaded = load(&p).unwrap();
        assert_eq!(loaded.personas.len(), 100, "every change is there");
        let mut ids: Vec<u32> = loaded.personas.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 100, "ids are unique");
    }

    #[test]
    fn a_held_lock_makes_a_change_wait_not_fail() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        put(&p, panel(1));
        let lock = PanelLock::acquire(&p).unwrap();
        let p2 = p.clone();
        let waiter = std::thread::spawn(move || put(&p2, panel(2)).saved);
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(load(&p).unwrap().personas.len(), 1, "not yet");
        drop(lock);
        assert!(waiter.join().unwrap());
        assert_eq!(load(&p).unwrap().personas.len(), 2);
        assert!(dir.path().join("personas.json.lock").exists());
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
        write_beside(&p, &p.backup, &panel_to_json(&panel(4))).unwrap();
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
        write_beside(&p, &p.backup, &panel_to_json(&panel(2))).unwrap();
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
        let err = change(&p, |_| Ok::<_, ()>(())).unwrap_err().to_string();
        assert!(err.starts_with("nothing was saved"), "{err}");
        assert_eq!(fs::read_to_string(&p.main).unwrap(), "not json");
        assert_eq!(fs::read_to_string(&p.backup).unwrap(), "{\"personas\": 3}");
        // Only the lock file is new.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 3);
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
        put(&p, panel(1));
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
                    for i in 0..50 {
                        put(&p, panel(1 + (w * 50 + i) % 40));
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
