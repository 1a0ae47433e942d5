//! Where a runner saves sessions: files in `sessions/` (the TUI, the
//! headless commands, a one-machine server) or the database (several
//! servers share it).

use std::path::PathBuf;

use crate::db::{Db, DbError};

use super::{Session, SessionError, SessionLock, SessionStatus, SessionStore};

/// A line of a session list.
#[derive(Debug, Clone)]
pub struct Summary {
    pub id: String,
    pub status: SessionStatus,
    /// Whether a live process runs it (see [`Session::live`]).
    pub live: bool,
    pub created_at: String,
    pub feature: String,
    pub persona_names: Vec<String>,
}

impl Summary {
    fn of(session: &Session) -> Summary {
        Summary {
            id: session.id.clone(),
            status: session.status,
            live: session.live,
            created_at: session.created_at.clone(),
            feature: session.feature.clone(),
            persona_names: session.personas.iter().map(|p| p.name.clone()).collect(),
        }
    }
}

/// Why sessions could not be read: the database (wait and retry) or
/// anything else.
#[derive(Debug, thiserror::Error)]
pub enum SessionsError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("the session task failed: {0}")]
    Crashed(String),
}

#[derive(Clone)]
pub enum Sessions {
    Files(SessionStore),
    Postgres(Db),
}

impl From<SessionStore> for Sessions {
    fn from(store: SessionStore) -> Sessions {
        Sessions::Files(store)
    }
}

impl Sessions {
    /// Where session `id` is kept, for messages.
    pub fn place(&self, id: &str) -> PathBuf {
        match self {
            Sessions::Files(store) => store.path(id),
            Sessions::Postgres(db) => PathBuf::from(format!("postgres {}: session {id}", db.at())),
        }
    }

    /// Marks the session as run by this process (files only: in the
    /// database a running session is live while it keeps being saved).
    pub fn lock(&self, id: &str) -> Option<Result<SessionLock, super::SessionError>> {
        match self {
            Sessions::Files(store) => Some(store.lock(id)),
            Sessions::Postgres(_) => None,
        }
    }

    /// Saves `session` (files: atomically, off the async threads).
    pub async fn save(&self, session: Session) -> Result<(), String> {
        match self {
            Sessions::Files(store) => {
                let store = store.clone();
                match tokio::task::spawn_blocking(move || store.save(&session)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(format!("the save task failed: {e}")),
                }
            }
            Sessions::Postgres(db) => crate::db::sessions::save(db, &session)
                .await
                .map_err(|e: DbError| e.to_string()),
        }
    }
}

impl Sessions {
    /// The session with exactly this id, if there is one.
    pub async fn find_exact(&self, id: &str) -> Result<Option<Session>, SessionsError> {
        if !super::store::is_session_id(id) {
            return Ok(None);
        }
        match self {
            Sessions::Files(store) => {
                let store = store.clone();
                let wanted = id.to_string();
                let found = tokio::task::spawn_blocking(move || store.find(&wanted))
                    .await
                    .map_err(|e| SessionsError::Crashed(e.to_string()))?;
                match found {
                    Ok(session) if session.id == id => Ok(Some(session)),
                    Ok(_) | Err(SessionError::NotFound(_) | SessionError::Ambiguous(..)) => {
                        Ok(None)
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Sessions::Postgres(db) => Ok(crate::db::sessions::load(db, id).await?),
        }
    }

    /// Sessions newest first, `limit` from `offset`; how many there are;
    /// how many could not be read (files only).
    pub async fn page(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Summary>, usize, usize), SessionsError> {
        match self {
            Sessions::Files(store) => {
                let store = store.clone();
                let (list, unreadable) = tokio::task::spawn_blocking(move || store.list())
                    .await
                    .map_err(|e| SessionsError::Crashed(e.to_string()))?;
                let page = list
                    .iter()
                    .skip(offset)
                    .take(limit)
                    .map(Summary::of)
                    .collect();
                Ok((page, list.len(), unreadable.len()))
            }
            Sessions::Postgres(db) => {
                let (page, total) = crate::db::sessions::list(db, offset, limit).await?;
                Ok((page, total, 0))
            }
        }
    }
}
