//! Where a shared panel lives: the panel file (one machine; the default) or
//! Postgres (several servers). Both run the same core operations, each as
//! one step no other writer interleaves with, and both say which version
//! of the panel a reader has, so a server can keep a parsed copy until it
//! changes.

use std::sync::Arc;

use super::Persona;
use super::store::{self, Changed, StoreError, StorePaths};
use super::watch::{Signature, signature};
use crate::db::DbError;
use crate::db::panel::PgPanel;

#[derive(Clone)]
pub enum PanelStore {
    File(StorePaths),
    Postgres(Arc<PgPanel>),
}

/// Which state of the panel a copy is of.
#[derive(Debug, Clone, PartialEq)]
pub enum Version {
    /// The file's size, mtime and inode (`None`: no file).
    File(Option<Signature>),
    /// The panel table's version counter.
    Postgres(i64),
}

impl Version {
    /// Whether a copy read at this version may be reused: a file that is
    /// missing has no version to compare.
    pub fn is_known(&self) -> bool {
        !matches!(self, Version::File(None))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PanelStoreError {
    #[error(transparent)]
    File(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] DbError),
    /// The operation panicked (a bug); nothing was written.
    #[error("the panel operation failed: {0}")]
    Crashed(String),
}

impl PanelStoreError {
    /// Whether waiting may help: a held lock, a database that is down.
    pub fn is_unavailable(&self) -> bool {
        match self {
            PanelStoreError::File(e) => matches!(e, StoreError::Lock { .. }),
            PanelStoreError::Db(e) => e.is_unavailable(),
            PanelStoreError::Crashed(_) => false,
        }
    }
}

/// A panel as loaded, with what loading found and repaired.
pub struct LoadedPanel {
    pub version: Version,
    pub personas: Vec<Persona>,
    pub notices: Vec<String>,
    /// Why changes are refused until someone fixes the store, if they are.
    pub write_problem: Option<String>,
}

impl PanelStore {
    /// Where the panel is, for messages: a path, or `host:port/database`.
    pub fn describe(&self) -> String {
        match self {
            PanelStore::File(paths) => paths.main.display().to_string(),
            PanelStore::Postgres(panel) => format!("postgres {}", panel.db().at()),
        }
    }

    /// The version of the panel now (a stat, or one indexed row).
    pub async fn version(&self) -> Result<Version, PanelStoreError> {
        match self {
            PanelStore::File(paths) => Ok(Version::File(signature(&paths.main))),
            PanelStore::Postgres(panel) => Ok(Version::Postgres(panel.version().await?)),
        }
    }

    /// The panel now. The file store recovers a missing or corrupt file
    /// as the TUI does (off the async threads).
    pub async fn load(&self) -> Result<LoadedPanel, PanelStoreError> {
        match self {
            PanelStore::File(paths) => {
                let paths = paths.clone();
                tokio::task::spawn_blocking(move || {
                    // Taken before reading: a change made meanwhile makes
                    // the next reader read again.
                    let seen = signature(&paths.main);
                    let loaded = store::load(&paths)?;
                    Ok(LoadedPanel {
                        version: Version::File(seen),
                        write_problem: store::write_problem(&loaded),
                        notices: loaded.notices,
                        personas: loaded.personas,
                    })
                })
                .await
                .map_err(|e| PanelStoreError::Crashed(e.to_string()))?
            }
            PanelStore::Postgres(panel) => {
                let (version, personas) = panel.load().await?;
                Ok(LoadedPanel {
                    version: Version::Postgres(version),
                    personas,
                    notices: Vec::new(),
                    write_problem: None,
                })
            }
        }
    }

    /// Applies `op` as one step (see [`store::change`] and [`PgPanel::change`]):
    /// the outer error is the store's, the inner `op`'s refusal.
    pub async fn change<T, E>(
        &self,
        op: impl FnOnce(&mut Vec<Persona>) -> Result<T, E> + Send + 'static,
    ) -> Result<Result<Changed<T>, E>, PanelStoreError>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        match self {
            PanelStore::File(paths) => {
                let paths = paths.clone();
                let changed = tokio::task::spawn_blocking(move || store::change(&paths, op))
                    .await
                    .map_err(|e| PanelStoreError::Crashed(e.to_string()))??;
                Ok(changed)
            }
            PanelStore::Postgres(panel) => Ok(panel.change(op).await?.map(|(changed, _)| changed)),
        }
    }
}
