//! The `sessions/` directory: save, list, find and delete session files,
//! and tell a live writer from a dead one.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::atomic_file::write as atomic_write;

use super::{SESSION_VERSION, Session, now};

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

    pub fn load_path(path: &Path) -> Result<Session, SessionError> {
        let err = |detail: String| SessionError::Read {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
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
        std::fs::remove_file(&path).map_err(|source| SessionError::Delete { path, source })
    }
}

#[cfg(target_os = "linux")]
pub(super) fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(not(target_os = "linux"))]
pub(super) fn process_alive(pid: u32) -> bool {
    // Without /proc we cannot tell; only our own process is surely alive.
    pid == std::process::id()
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
