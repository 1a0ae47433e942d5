//! What every request shares: the panel (cached, re-read when the file
//! changes), the API keys (likewise), and the services.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::api_keys::{KeyRecord, KeyStore};
use crate::llm::ChatBackend;
use crate::observe::metrics::Metrics;
use crate::persona::Persona;
use crate::persona::search::SearchIndex;
use crate::persona::store::{self, StorePaths};
use crate::persona::watch::{Signature, signature};

use super::error::ApiError;

/// The panel as read from the file, with what lookups need.
pub struct Panel {
    pub personas: Vec<Persona>,
    pub by_id: HashMap<u32, usize>,
    pub index: SearchIndex,
}

impl Panel {
    pub fn new(personas: Vec<Persona>) -> Panel {
        let by_id = personas
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id, i))
            .collect();
        let index = SearchIndex::new(&personas);
        Panel {
            personas,
            by_id,
            index,
        }
    }

    pub fn get(&self, id: u32) -> Option<&Persona> {
        self.by_id.get(&id).map(|&i| &self.personas[i])
    }
}

/// A file's parsed contents, read again only when the file changed (a stat
/// per request: microseconds; a 10k panel's parse: about 20 ms).
struct Cached<T> {
    path: PathBuf,
    current: Mutex<Option<(Option<Signature>, Arc<T>)>>,
}

impl<T> Cached<T> {
    fn new(path: PathBuf) -> Cached<T> {
        Cached {
            path,
            current: Mutex::new(None),
        }
    }

    /// The cached value, if the file has not changed since it was read.
    fn fresh(&self) -> Result<Arc<T>, Option<Signature>> {
        let now = signature(&self.path);
        let current = self.current.lock().expect("cache lock");
        match &*current {
            Some((seen, value)) if *seen == now && now.is_some() => Ok(value.clone()),
            _ => Err(now),
        }
    }

    fn store(&self, seen: Option<Signature>, value: T) -> Arc<T> {
        let value = Arc::new(value);
        *self.current.lock().expect("cache lock") = Some((seen, value.clone()));
        value
    }

    fn forget(&self) {
        *self.current.lock().expect("cache lock") = None;
    }
}

#[derive(Clone)]
pub struct ApiState {
    pub paths: StorePaths,
    pub sessions_dir: PathBuf,
    pub metrics: Option<Arc<Metrics>>,
    pub backend: Option<Arc<dyn ChatBackend>>,
    pub environment: String,
    panel: Arc<Cached<Panel>>,
    keys: Arc<Cached<Vec<KeyRecord>>>,
    key_store: KeyStore,
}

impl ApiState {
    pub fn new(
        paths: StorePaths,
        sessions_dir: PathBuf,
        key_store: KeyStore,
        backend: Option<Arc<dyn ChatBackend>>,
        metrics: Option<Arc<Metrics>>,
        environment: String,
    ) -> ApiState {
        ApiState {
            panel: Arc::new(Cached::new(paths.main.clone())),
            keys: Arc::new(Cached::new(key_store.path.clone())),
            paths,
            sessions_dir,
            metrics,
            backend,
            environment,
            key_store,
        }
    }

    /// The panel as it is on disk now (read again if another process, or
    /// this one, changed it).
    pub async fn panel(&self) -> Result<Arc<Panel>, ApiError> {
        let seen = match self.panel.fresh() {
            Ok(panel) => return Ok(panel),
            Err(seen) => seen,
        };
        let paths = self.paths.clone();
        let personas = tokio::task::spawn_blocking(move || store::load(&paths))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::unavailable)?
            .personas;
        Ok(self.panel.store(seen, Panel::new(personas)))
    }

    /// Starts the cache with a panel the caller has just loaded (`serve`
    /// loads it once before it listens, to recover or create it), so the
    /// first request does not parse it again (0.4 s for 100k personas).
    /// `seen` is the file's signature taken before that load: a change made
    /// since is read again on the next request.
    pub fn prime_panel(&self, seen: Option<Signature>, personas: Vec<Persona>) {
        self.panel.store(seen, Panel::new(personas));
    }

    /// Applies `op` under the panel lock (see `store::change`), off the
    /// async threads. The outer error is the store's, the inner the op's.
    pub async fn change<T, E>(
        &self,
        op: impl FnOnce(&mut Vec<Persona>) -> Result<T, E> + Send + 'static,
    ) -> Result<Result<store::Changed<T>, E>, ApiError>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let paths = self.paths.clone();
        let result = tokio::task::spawn_blocking(move || store::change(&paths, op))
            .await
            .map_err(ApiError::internal)?;
        // Read again on the next request: another process may have written
        // right after this change.
        self.panel.forget();
        result.map_err(|e| match e {
            store::StoreError::Lock { .. } => ApiError::unavailable(e),
            other => ApiError::internal(other),
        })
    }

    /// The active API keys as the key file says now.
    pub fn active_keys(&self) -> Arc<Vec<KeyRecord>> {
        match self.keys.fresh() {
            Ok(keys) => keys,
            Err(seen) => {
                let keys = self.key_store.active().unwrap_or_else(|e| {
                    tracing::error!(target: "api", error = %e, "API keys unreadable: every key is refused");
                    Vec::new()
                });
                self.keys.store(seen, keys)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_primed_panel_is_served_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let paths = StorePaths::for_file(dir.path().join("personas.json"));
        store::load(&paths).unwrap();
        let seen = signature(&paths.main);
        let loaded = store::load(&paths).unwrap();
        let n = loaded.personas.len();
        let state = ApiState::new(
            paths.clone(),
            dir.path().join("sessions"),
            KeyStore::in_dir(dir.path()),
            None,
            None,
            "test".into(),
        );
        // Primed with one persona fewer than the file: served as is while
        // the file is unchanged (no second parse).
        let mut primed = loaded.personas.clone();
        primed.pop();
        state.prime_panel(seen, primed);
        assert_eq!(state.panel().await.unwrap().personas.len(), n - 1);
        // Another writer changes the file: read again.
        store::change(&paths, |panel| {
            panel.truncate(n - 2);
            Ok::<_, ()>(())
        })
        .unwrap()
        .unwrap();
        assert_eq!(state.panel().await.unwrap().personas.len(), n - 2);
    }
}
