//! What every request shares: the panel (cached, re-read when the file
//! changes), the API keys (likewise), and the services.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::api_keys::{KeyError, KeyRecord, Keys};
use crate::llm::ChatBackend;
use crate::observe::metrics::Metrics;
use crate::persona::Persona;
use crate::persona::panel_store::{LoadedPanel, PanelStore, PanelStoreError, Version};
use crate::persona::search::SearchIndex;
use crate::persona::store;
use crate::persona::watch::signature;

use super::error::ApiError;
use super::{debates, synthesis};

/// LLM calls in flight at once across the whole server (synthesis and
/// debates share them).
pub const MAX_LLM_CALLS: usize = 10;
/// Jobs and debates admitted and not yet finished; one more gets 503.
pub const MAX_PENDING: usize = 32;
/// How long keys read from a database are used before it is asked again.
pub const KEYS_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(2);
/// What a 503 for a full queue asks the client to wait, in seconds.
pub const RETRY_AFTER_SECS: u64 = 5;

/// A place in the work queue (a job or a debate), given back on drop.
pub struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The long-running work of the server: debates, synthesis jobs, and the
/// one gate every LLM call passes.
pub struct Work {
    pub llm_permits: Arc<Semaphore>,
    pub debates: debates::Registry,
    pub jobs: synthesis::Registry,
    pending: Arc<AtomicUsize>,
    /// Cancelled on shutdown: every debate's and job's token is a child.
    pub shutdown: CancellationToken,
    /// Rounds when a request names none, tokens per turn and for the
    /// whole debate, as the settings say.
    pub default_rounds: u32,
    pub max_tokens_per_turn: u32,
    pub max_tokens_total: Option<u32>,
    /// With `--live`: where debates are published for spectators.
    pub live: Option<Arc<super::live::Stage>>,
}

impl Work {
    fn new() -> Work {
        Work {
            llm_permits: Arc::new(Semaphore::new(MAX_LLM_CALLS)),
            debates: debates::Registry::default(),
            jobs: synthesis::Registry::default(),
            pending: Arc::new(AtomicUsize::new(0)),
            shutdown: CancellationToken::new(),
            default_rounds: crate::sim::debate::DEFAULT_ROUNDS,
            max_tokens_per_turn: crate::sim::debate::DEFAULT_MAX_TOKENS_PER_TURN,
            max_tokens_total: None,
            live: None,
        }
    }

    /// A place in the queue, or `None` when it is full (answer [`busy`]).
    pub fn admit(&self) -> Option<Admitted> {
        let taken = self
            .pending
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_PENDING).then_some(n + 1)
            });
        taken.ok().map(|_| Admitted(self.pending.clone()))
    }
}

/// The 503 (with `Retry-After`) for a full queue.
pub fn busy() -> Response {
    let mut response = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        format!("{MAX_PENDING} debates and synthesis jobs are waiting or running; try again later"),
    )
    .into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(RETRY_AFTER_SECS),
    );
    response
}

/// The panel as read from the file, with what lookups need.
pub struct Panel {
    pub personas: Vec<Persona>,
    pub by_id: HashMap<u32, usize>,
    pub index: SearchIndex,
    /// `/stats` as JSON, made on first use (5 ms at 10k), once per version
    /// of the file.
    pub stats_json: std::sync::OnceLock<axum::body::Bytes>,
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
            stats_json: std::sync::OnceLock::new(),
        }
    }

    pub fn get(&self, id: u32) -> Option<&Persona> {
        self.by_id.get(&id).map(|&i| &self.personas[i])
    }
}

/// A value read from a store, kept until the store's version changes (a
/// stat or one indexed row per request; a 10k panel's parse: about 20 ms).
struct Cached<T> {
    current: Mutex<Option<(Version, Arc<T>)>>,
}

impl<T> Cached<T> {
    fn new() -> Cached<T> {
        Cached {
            current: Mutex::new(None),
        }
    }

    /// The cached value, if it was read at version `now`.
    fn fresh(&self, now: &Version) -> Option<Arc<T>> {
        let current = self.current.lock().expect("cache lock");
        match &*current {
            Some((seen, value)) if seen == now && now.is_known() => Some(value.clone()),
            _ => None,
        }
    }

    /// The value last read, whatever its version.
    fn last(&self) -> Option<Arc<T>> {
        let current = self.current.lock().expect("cache lock");
        current.as_ref().map(|(_, value)| value.clone())
    }

    fn store(&self, seen: Version, value: T) -> Arc<T> {
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
    pub panel_store: PanelStore,
    pub sessions_dir: PathBuf,
    pub metrics: Option<Arc<Metrics>>,
    pub backend: Option<Arc<dyn ChatBackend>>,
    pub environment: String,
    pub work: Arc<Work>,
    /// What the LLM routes answer when there is no backend.
    no_backend: String,
    panel: Arc<Cached<Panel>>,
    keys: Arc<Cached<Vec<KeyRecord>>>,
    key_source: Keys,
    /// When the state was made: the clock of the database keys' freshness.
    started: std::time::Instant,
}

impl ApiState {
    pub fn new(
        panel_store: PanelStore,
        sessions_dir: PathBuf,
        key_source: Keys,
        backend: Option<Arc<dyn ChatBackend>>,
        metrics: Option<Arc<Metrics>>,
        environment: String,
    ) -> ApiState {
        ApiState {
            panel: Arc::new(Cached::new()),
            keys: Arc::new(Cached::new()),
            panel_store,
            sessions_dir,
            metrics,
            backend,
            environment,
            key_source,
            started: std::time::Instant::now(),
            work: Arc::new(Work::new()),
            no_backend: "no LLM backend is configured: start the server with OPENAI_API_KEY (and \
                         OPENAI_BASE_URL for another OpenAI-compatible server) set"
                .into(),
        }
    }

    /// The rounds and token limits debates run with (from the settings).
    pub fn with_debate_settings(
        mut self,
        rounds: u32,
        per_turn: u32,
        total: Option<u32>,
    ) -> ApiState {
        let work = Arc::get_mut(&mut self.work).expect("set before the state is shared");
        work.default_rounds = rounds;
        work.max_tokens_per_turn = per_turn;
        work.max_tokens_total = total;
        self
    }

    /// Publishes debates (one at a time) to `feed`, the live page's.
    pub fn with_live_feed(mut self, feed: Arc<crate::sim::live::Feed>) -> ApiState {
        let work = Arc::get_mut(&mut self.work).expect("set before the state is shared");
        work.live = Some(Arc::new(super::live::Stage::new(feed)));
        self
    }

    /// Why there is no backend (a local model not installed, say), for the
    /// LLM routes' 503; `None` keeps the default reason.
    pub fn with_no_backend_reason(mut self, reason: Option<String>) -> ApiState {
        if let Some(reason) = reason {
            self.no_backend = reason;
        }
        self
    }

    /// The backend behind the server-wide gate of [`MAX_LLM_CALLS`], or a
    /// 503 saying why there is none.
    pub fn gated_backend(&self) -> Result<Arc<dyn ChatBackend>, ApiError> {
        let backend = self.backend.clone().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_backend",
                self.no_backend.clone(),
            )
        })?;
        Ok(Arc::new(crate::llm::gated::Gated::new(
            backend,
            self.work.llm_permits.clone(),
        )))
    }

    /// The panel as it is in its store now (read again if another
    /// process, or this one, changed it).
    pub async fn panel(&self) -> Result<Arc<Panel>, ApiError> {
        let now = self
            .panel_store
            .version()
            .await
            .map_err(|e| self.store_failed(e))?;
        if matches!(now, Version::Postgres(_)) {
            self.set_store_problem(None);
        }
        if let Some(panel) = self.panel.fresh(&now) {
            return Ok(panel);
        }
        let loaded = self
            .panel_store
            .load()
            .await
            .map_err(|e| self.store_failed(e))?;
        self.set_store_problem(loaded.write_problem);
        Ok(self
            .panel
            .store(loaded.version, Panel::new(loaded.personas)))
    }

    /// Starts the cache with a panel the caller has just loaded (`serve`
    /// loads it once before it listens, to recover or create it), so the
    /// first request does not read it again (0.4 s for 100k personas).
    /// A change made since is read again on the next request.
    pub fn prime_panel(&self, loaded: LoadedPanel) {
        self.panel
            .store(loaded.version, Panel::new(loaded.personas));
    }

    /// Applies `op` as one step of the panel's store (see
    /// [`PanelStore::change`]). The outer error is the store's, the inner
    /// the op's.
    pub async fn change<T, E>(
        &self,
        op: impl FnOnce(&mut Vec<Persona>) -> Result<T, E> + Send + 'static,
    ) -> Result<Result<store::Changed<T>, E>, ApiError>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let result = self.panel_store.change(op).await;
        // Read again on the next request: another process may have written
        // right after this change.
        self.panel.forget();
        match result {
            Ok(changed) => {
                self.set_store_problem(None);
                Ok(changed)
            }
            Err(e) => Err(self.store_failed(e)),
        }
    }

    /// What `/health` says about the store (`None`: nothing wrong).
    pub fn set_store_problem(&self, problem: Option<String>) {
        if let Some(metrics) = &self.metrics {
            metrics.set_store_problem(problem);
        }
    }

    /// A store failure as the answer to give (503 when waiting may help),
    /// and what `/health` says until the store answers again.
    pub fn store_failed(&self, e: PanelStoreError) -> ApiError {
        self.set_store_problem(Some(e.to_string()));
        if matches!(&e, PanelStoreError::Db(db) if db.is_unavailable()) {
            ApiError::database_unavailable(e)
        } else if e.is_unavailable() {
            ApiError::unavailable(e)
        } else {
            ApiError::internal(e)
        }
    }

    /// The active API keys as their store says now: the key file is read
    /// again when it changed; the database is asked at most every
    /// [`KEYS_FRESH_FOR`] (so a revocation on another server counts
    /// within that time). While the database is down the keys last read
    /// stand (no key can be revoked meanwhile: revoking writes to it), so
    /// what needs no database (a debate's event stream, a job this server
    /// runs) goes on; with none read yet, a 503, not a 401 that would blame
    /// the key.
    pub async fn active_keys(&self) -> Result<Arc<Vec<KeyRecord>>, ApiError> {
        let seen = match &self.key_source {
            Keys::File(store) => Version::File(signature(&store.path)),
            Keys::Postgres(_) => {
                let age = self.started.elapsed().as_millis() / KEYS_FRESH_FOR.as_millis();
                Version::Postgres(age as i64)
            }
        };
        if let Some(keys) = self.keys.fresh(&seen) {
            return Ok(keys);
        }
        match self.key_source.active().await {
            Ok(keys) => Ok(self.keys.store(seen, keys)),
            Err(KeyError::Db(e)) => match self.keys.last() {
                Some(keys) => Ok(keys),
                None => Err(ApiError::database_unavailable(e)),
            },
            Err(e) => {
                tracing::error!(target: "api", error = %e, "API keys unreadable: every key is refused");
                Ok(self.keys.store(seen, Vec::new()))
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
        let paths = store::StorePaths::for_file(dir.path().join("personas.json"));
        let panel_store = PanelStore::File(paths.clone());
        panel_store.load().await.unwrap();
        let mut loaded = panel_store.load().await.unwrap();
        let n = loaded.personas.len();
        let state = ApiState::new(
            panel_store,
            dir.path().join("sessions"),
            Keys::File(crate::api_keys::KeyStore::in_dir(dir.path())),
            None,
            None,
            "test".into(),
        );
        // Primed with one persona fewer than the file: served as is while
        // the file is unchanged (no second parse).
        loaded.personas.pop();
        state.prime_panel(loaded);
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
