//! The composition root's parts: settings, metrics and the LLM backend,
//! built once in `main.rs` and handed to the face that runs. Faces never
//! build these themselves.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::Settings;
use anyhow::Context;

use crate::llm::cache::CachedBackend;
use crate::llm::{BackendInfo, ChatBackend};
use crate::observe::instrument::Instrumented;
use crate::observe::metrics::Metrics;
use crate::sim::session::Session;

/// The message shown when no backend can run.
pub const HOW_TO_CONFIGURE: &str = "set OPENAI_API_KEY for OpenAI, or pick a provider \
(--provider anthropic|gemini|openrouter with its key, or ollama|lmstudio|vllm), or \
OPENAI_BASE_URL for any OpenAI-compatible server (llama.cpp server: http://localhost:8080/v1), \
or install the offline model with `persona-sim model fetch` (in a build with the `local` \
feature); then restart";

pub struct Services {
    pub settings: Settings,
    /// The registry a long-running face serves on `/metrics`; `None` for
    /// short-lived commands, which only log their LLM calls.
    pub metrics: Option<Arc<Metrics>>,
    /// The configured backend, logged (and measured when there are
    /// metrics); `None` when nothing is configured.
    pub backend: Option<Arc<dyn ChatBackend>>,
}

impl Services {
    /// `with_metrics`: the face serves metrics (the TUI), so LLM calls are
    /// counted. The local model is loaded on first use, so this never blocks.
    pub fn new(settings: Settings, with_metrics: bool) -> Services {
        let metrics = with_metrics.then(|| Arc::new(Metrics::new()));
        let backend = settings
            .backend
            .build()
            .map(|b| Instrumented::wrap(b, metrics.clone(), settings.slow_call))
            // Outside the instrument: a reply from the cache is no LLM call.
            .map(|b| match &settings.cache_dir {
                Some(dir) => Arc::new(CachedBackend::new(b, dir)) as Arc<dyn ChatBackend>,
                None => b,
            });
        Services {
            settings,
            metrics,
            backend,
        }
    }

    /// The backend that repeats `session` from the response cache, with no
    /// server: as the session's backend and sampling did, so the keys are
    /// the ones its replies were kept under.
    pub fn replay_backend(&self, session: &Session) -> anyhow::Result<Arc<dyn ChatBackend>> {
        let dir = self.settings.cache_dir.as_deref().context(
            "a rerun answers from the response cache: give --cache DIR, the folder the first run cached its replies in",
        )?;
        let manifest = session.manifest.as_ref().with_context(|| {
            format!(
                "session {} has no run manifest (it was recorded by an older persona-sim), so it cannot be rerun",
                session.id
            )
        })?;
        let kind = match session.backend.kind.as_str() {
            "openai" => "openai",
            "local" => "local",
            other => anyhow::bail!("session {} ran on an unknown backend {other:?}", session.id),
        };
        let info = BackendInfo {
            kind,
            model: manifest.model.clone(),
            endpoint: session.backend.endpoint.clone(),
        };
        Ok(Arc::new(CachedBackend::offline(
            info,
            manifest.sampling,
            manifest.context,
            dir,
        )))
    }

    /// Starts `/metrics`, `/healthz` and `/health` when configured. On
    /// failure, the app keeps running and the user is told why.
    pub async fn start_metrics_server(&self) -> Result<Option<SocketAddr>, String> {
        let (Some(metrics), Some(addr)) = (&self.metrics, self.settings.metrics_addr) else {
            return Ok(None);
        };
        match crate::observe::http::serve(metrics.clone(), addr, &self.settings.environment).await {
            Ok(bound) => Ok(Some(bound)),
            Err(e) => {
                tracing::warn!(target: "metrics", %addr, error = %e, "metrics server not started");
                Err(format!(
                    "Metrics off: cannot listen on {addr}: {e} (another persona-sim? --metrics-port N or --no-metrics)"
                ))
            }
        }
    }
}
