//! The `sessions/` directory: save, list, find and delete session files,
//! and tell a live writer from a dead one: a process running a session
//! holds an exclusive advisory lock on `sessions/.<id>.lock` ([`SessionLock`]),
//! which the OS releases however the process ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::atomic_file::write as atomic_write;

use super::{SESSION_VERSION, Session, SessionStatus, now};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("no session matches {0:?}")]
    NotFound(String),
    #[error("{0:?} matches more than one session: {1}")]
    Ambiguous(String, String),
    #[error("cannot read session {path}: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error(
        "cannot read session {path}: it has format version {found}, and this build reads versions up to {supported} (a newer release wrote it)"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(transparent)]
    Write(#[from] crate::atomic_file::WriteError),
    #[error("cannot delete {path}: {source}")]
    Delete {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Another process runs this session (it holds its lock).
    #[error("session {0} is being run by another process")]
    Busy(String),
    #[error("cannot lock session {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not the shape of a session id: letters, digits, `-` and `_` only, so
    /// an id can never name a file outside the sessions folder.
    #[error("{0:?} is not a session id (ids look like 20260301-103000-ab12)")]
    BadId(String),
}

/// Whether `id` can be a session id: 1 to 64 ASCII letters, digits, `-`
/// or `_` (no path separator, no `..`).
pub fn is_session_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn checked(id: &str) -> Result<&str, SessionError> {
    if is_session_id(id) {
        Ok(id)
    } else {
        Err(SessionError::BadId(id.to_string()))
    }
}

/// The `sessions/` directory.
#[derive(Debug, Clone)]
pub struct SessionStore {
    pub dir: PathBuf,
}

impl SessionStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SessionStore { dir: dir.into() }
    }

    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// `.<id>.lock` beside the session file: a dot file, never a `.json`,
    /// so it is never listed as a session.
    fn lock_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!(".{id}.lock"))
    }

    /// Marks the session as run by this process until the lock is dropped
    /// (or the process ends, however it ends: the OS releases the lock).
    /// The lock file is created mode 0600; [`SessionError::Busy`] when
    /// another process holds it.
    pub fn lock(&self, id: &str) -> Result<SessionLock, SessionError> {
        let path = self.lock_path(checked(id)?);
        let err = |source| SessionError::Lock {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(err)?;
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(err)?;
        match file.try_lock() {
            Ok(()) => Ok(SessionLock { file, path }),
            Err(TryLockError::WouldBlock) => Err(SessionError::Busy(id.to_string())),
            Err(TryLockError::Error(e)) => Err(err(e)),
        }
    }

    /// Whether some process (this one included) holds the session's lock.
    /// A missing lock file, or one we can lock, means nobody runs it; our
    /// probe lock is released at once.
    pub fn is_locked(&self, id: &str) -> bool {
        if !is_session_id(id) {
            return false;
        }
        let Ok(file) = File::open(self.lock_path(id)) else {
            return false;
        };
        match file.try_lock() {
            Ok(()) => false,
            Err(TryLockError::WouldBlock) => true,
            Err(TryLockError::Error(e)) => {
                tracing::debug!(target: "session", %id, error = %e, "cannot probe the session lock");
                false
            }
        }
    }

    /// Writes the session atomically (temp file, fsync, rename).
    pub fn save(&self, session: &Session) -> Result<PathBuf, SessionError> {
        checked(&session.id)?;
        let mut session = session.clone();
        session.updated_at = now();
        // Whatever version it was read as, it is written in this build's.
        session.version = SESSION_VERSION;
        let path = self.path(&session.id);
        let mut text = serde_json::to_string_pretty(&session).expect("sessions serialise");
        text.push('\n');
        atomic_write(&path, &text)?;
        Ok(path)
    }

    /// Reads a session file; a running one is live only while some process
    /// holds its lock in the same folder.
    pub fn load_path(path: &Path) -> Result<Session, SessionError> {
        let mut session = Self::read_path(path)?;
        session.live = session.status == SessionStatus::Running
            && path
                .parent()
                .is_some_and(|dir| SessionStore::new(dir).is_locked(&session.id));
        Ok(session)
    }

    fn read_path(path: &Path) -> Result<Session, SessionError> {
        let err = |detail: String| SessionError::Read {
            path: path.to_path_buf(),
            detail,
        };
        let text = crate::atomic_file::read_to_string(path).map_err(|e| err(e.to_string()))?;
        // The version first, so a newer format is reported as such and not
        // as whatever field this build fails to parse.
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        if let Ok(Versioned { version }) = serde_json::from_str(&text)
            && version > SESSION_VERSION
        {
            return Err(SessionError::TooNew {
                path: path.to_path_buf(),
                found: version,
                supported: SESSION_VERSION,
            });
        }
        serde_json::from_str(&text).map_err(|e| err(e.to_string()))
    }

    /// Every session, newest first, and the files that could not be read.
    pub fn list(&self) -> (Vec<Session>, Vec<SessionError>) {
        let mut sessions = Vec::new();
        let mut errors = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return (sessions, errors);
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !name.ends_with(".json") || name.starts_with('.') {
                continue;
            }
            match Self::load_path(&path) {
                Ok(s) => sessions.push(s),
                Err(e) => errors.push(e),
            }
        }
        sessions.sort_by(|a, b| b.id.cmp(&a.id));
        (sessions, errors)
    }

    /// The session with this id, or the only one starting with it.
    pub fn find(&self, id_or_prefix: &str) -> Result<Session, SessionError> {
        let exact = self.path(checked(id_or_prefix)?);
        if exact.exists() {
            return Self::load_path(&exact);
        }
        let (sessions, _) = self.list();
        let matches: Vec<Session> = sessions
            .into_iter()
            .filter(|s| !id_or_prefix.is_empty() && s.id.starts_with(id_or_prefix))
            .collect();
        match matches.len() {
            0 => Err(SessionError::NotFound(id_or_prefix.into())),
            1 => Ok(matches.into_iter().next().expect("one match")),
            _ => Err(SessionError::Ambiguous(
                id_or_prefix.into(),
                matches
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    pub fn delete(&self, id: &str) -> Result<(), SessionError> {
        let path = self.path(checked(id)?);
        std::fs::remove_file(&path).map_err(|source| SessionError::Delete { path, source })?;
        // A lock file left by a killed run goes with its session.
        if !self.is_locked(id) {
            let _ = std::fs::remove_file(self.lock_path(id));
        }
        Ok(())
    }
}

/// A session being run by this process: the exclusive lock on its lock
/// file. Dropping it removes the file and releases the lock.
#[derive(Debug)]
pub struct SessionLock {
    file: File,
    path: PathBuf,
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        // Removed while still locked, so no one sees a free lock file of a
        // session that is still marked running by this run's last save.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::session::tests::{config, info};

    #[test]
    fn ids_that_would_leave_the_sessions_folder_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path().join("sessions"));
        let panel = dir.path().join("personas.json");
        std::fs::write(&panel, "[]").unwrap();
        std::fs::create_dir_all(&store.dir).unwrap();
        for id in [
            "../personas",
            "..",
            "a/b",
            "/etc/passwd",
            "",
            "x\\y",
            "a.json",
        ] {
            assert!(
                matches!(store.delete(id), Err(SessionError::BadId(_))),
                "delete {id:?}"
            );
            assert!(
                matches!(store.find(id), Err(SessionError::BadId(_))),
                "find {id:?}"
            );
        }
        assert!(panel.exists(), "the panel beside sessions/ is untouched");
        let mut s = Session::new(&config(), info());
        s.id = "../escape".into();
        assert!(matches!(store.save(&s), Err(SessionError::BadId(_))));
        assert!(!dir.path().join("escape.json").exists());
        assert!(is_session_id("20260301-103000-ab12"));
        assert!(is_session_id(&Session::new(&config(), info()).id));
    }

    #[test]
    fn store_round_trips_lists_newest_first_finds_by_prefix_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path().join("sessions"));
        let mut a = Session::new(&config(), info());
        a.id = "20260101-000000-aaaa".into();
        let mut b = a.clone();
        b.id = "20260202-000000-bbbb".into();
        store.save(&a).unwrap();
        store.save(&b).unwrap();
        std::fs::write(store.dir.join("broken.json"), "{").unwrap();
        let (list, errors) = store.list();
        assert_eq!(
            list.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["20260202-000000-bbbb", "20260101-000000-aaaa"]
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(store.find("202601").unwrap().id, a.id);
        assert!(matches!(
            store.find("2026"),
            Err(SessionError::Ambiguous(..))
        ));
        assert!(matches!(store.find("1999"), Err(SessionError::NotFound(_))));
        store.delete(&a.id).unwrap();
        assert!(store.find(&a.id).is_err());
    }

    /// A session saved as running, with a pid that is alive (ours): only
    /// its lock says whether it runs.
    fn running_session(store: &SessionStore) -> Session {
        let mut s = Session::new(&config(), info());
        s.pid = Some(std::process::id());
        store.save(&s).unwrap();
        s
    }

    fn label(store: &SessionStore, id: &str) -> &'static str {
        store.find(id).unwrap().status_label()
    }

    #[test]
    fn a_running_session_is_running_only_while_its_lock_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path().join("sessions"));
        let s = running_session(&store);
        // Its pid is alive (this test), yet nothing holds the lock.
        assert_eq!(label(&store, &s.id), "incomplete");

        // Held by another thread of this process (another open file).
        let lock = store.lock(&s.id).unwrap();
        let lock_file = store.dir.join(format!(".{}.lock", s.id));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&lock_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (release, released) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            let _lock = lock;
            let _ = released.recv();
        });
        assert_eq!(label(&store, &s.id), "running");
        let (list, errors) = store.list();
        assert_eq!(list.len(), 1, "the lock file is not a session");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(list[0].status_label(), "running");
        assert!(matches!(store.lock(&s.id), Err(SessionError::Busy(_))));

        // The run ends: the lock is released and its file removed.
        release.send(()).unwrap();
        holder.join().unwrap();
        assert!(!lock_file.exists());
        assert_eq!(label(&store, &s.id), "incomplete");

        // A lock file nobody holds (left by a killed run) changes nothing,
        // and goes with its session.
        std::fs::write(&lock_file, "").unwrap();
        assert_eq!(label(&store, &s.id), "incomplete");
        assert!(matches!(store.lock("../x"), Err(SessionError::BadId(_))));
        assert!(!store.is_locked("../x"));
        store.delete(&s.id).unwrap();
        assert!(!lock_file.exists());
    }

    /// The child of [`killing_the_process_that_runs_a_session_frees_it`]:
    /// takes the lock named by the environment, says so, and sleeps
    /// (bounded) until killed. Does nothing when run on its own.
    #[test]
    #[ignore = "run as a child process by the kill -9 test"]
    fn lock_holder_child() {
        let (Some(dir), Some(id)) = (
            std::env::var_os("PERSONA_SIM_TEST_LOCK_DIR"),
            std::env::var("PERSONA_SIM_TEST_LOCK_ID").ok(),
        ) else {
            return;
        };
        let _lock = SessionStore::new(dir).lock(&id).unwrap();
        println!("LOCKED");
        std::thread::sleep(std::time::Duration::from_secs(30));
    }

    #[cfg(unix)]
    #[test]
    fn killing_the_process_that_runs_a_session_frees_it() {
        use std::io::BufRead;
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path().join("sessions"));
        let s = running_session(&store);
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sim::session::store::tests::lock_holder_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("PERSONA_SIM_TEST_LOCK_DIR", &store.dir)
            .env("PERSONA_SIM_TEST_LOCK_ID", &s.id)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("LOCKED") {
                    let _ = tx.send(());
                }
            }
        });
        let locked = rx.recv_timeout(Duration::from_secs(20));
        if locked.is_err() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child never took the lock");
        }
        assert_eq!(label(&store, &s.id), "running");
        child.kill().unwrap(); // SIGKILL: no destructor runs
        child.wait().unwrap();
        assert!(
            store.dir.join(format!(".{}.lock", s.id)).exists(),
            "a killed run leaves its lock file"
        );
        assert_eq!(label(&store, &s.id), "incomplete");
        // And the next run can take it.
        drop(store.lock(&s.id).unwrap());
    }

    #[test]
    fn a_newer_format_is_refused_by_name_and_older_or_equal_ones_load() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path());
        let mut s = Session::new(&config(), info());
        let path = store.save(&s).unwrap();
        assert_eq!(SessionStore::load_path(&path).unwrap().id, s.id);
        s.version = 0;
        std::fs::write(&path, serde_json::to_string(&s).unwrap()).unwrap();
        let old = SessionStore::load_path(&path).unwrap();
        assert_eq!(old.version, 0);
        store.save(&old).unwrap();
        let saved = SessionStore::load_path(&path).unwrap();
        assert_eq!(
            saved.version, SESSION_VERSION,
            "saved in this build's format"
        );
        // A newer build may also have changed fields: still named as too new.
        let mut value = serde_json::to_value(&s).unwrap();
        value["version"] = (SESSION_VERSION + 1).into();
        value["turns"] = "a new shape".into();
        std::fs::write(&path, value.to_string()).unwrap();
        let err = SessionStore::load_path(&path).unwrap_err();
        assert!(
            matches!(err, SessionError::TooNew { found, supported, .. }
                if found == SESSION_VERSION + 1 && supported == SESSION_VERSION),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&path.display().to_string())
                && text.contains(&format!("version {}", SESSION_VERSION + 1))
                && text.contains(&format!("up to {SESSION_VERSION}")),
            "{text}"
        );
        assert_eq!(store.list().1.len(), 1, "list reports it with the others");
    }
}
