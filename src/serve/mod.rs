//! The HTTP face: `persona-sim serve`, the Persona API of the operations
//! guide over the same core as the TUI and the CLI. JSON in and out, one
//! error shape, API keys, one log line per request, on the hardened accept
//! loop of [`crate::observe::http::serve_router`].
//!
//! - [`personas`]: list, get, create, patch, delete, search, stats,
//!   export, import (`/v1/personas…`, and the seed's `/v1/persona…`).
//! - [`synthesis`]: personas written by the model, one or a job of many.
//! - [`debates`]: debates run in the background, their event streams,
//!   the saved sessions.
//! - [`middleware`]: the key check, the request log, the error shape.
//! - [`state`]: the cached panel and keys, the services.

pub mod debates;
pub mod error;
pub mod middleware;
pub mod personas;
pub mod state;
pub mod synthesis;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use axum::routing::get;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;

use crate::observe::http::{Limits, serve_router};
use state::ApiState;

/// What `serve` is told by its flags.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub bind: SocketAddr,
    /// Origins a browser page may call the API from; none by default.
    pub cors_origins: Vec<String>,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Longest a plain request may take (event streams are exempt).
    pub request_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            cors_origins: Vec::new(),
            // A 10k-persona import is about 4.5 MB.
            max_body: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The routes that need a key, for both spellings of the prefix.
fn api_routes(state: &ApiState) -> Router<ApiState> {
    let mut router = Router::new();
    for base in ["/v1/personas", "/v1/persona"] {
        router = router
            .route(base, get(personas::list).post(personas::create))
            .route(&format!("{base}/search"), get(personas::search))
            .route(&format!("{base}/stats"), get(personas::stats))
            .route(&format!("{base}/export"), get(personas::export))
            .route(
                &format!("{base}/import"),
                axum::routing::post(personas::import),
            )
            .route(
                &format!("{base}/{{id}}"),
                get(personas::get)
                    .patch(personas::patch)
                    .delete(personas::delete),
            );
    }
    with_key(
        router.merge(synthesis::routes()).merge(debates::routes()),
        state,
    )
}

/// The key check (and the key's name for the log) around `router`.
fn with_key(router: Router<ApiState>, state: &ApiState) -> Router<ApiState> {
    router
        .layer(axum::middleware::from_fn(middleware::key_to_response))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::require_key,
        ))
}

/// The whole API: health and metrics (no key), the key-protected routes,
/// and the layers every request goes through.
pub fn router(state: ApiState, options: &ServeOptions) -> anyhow::Result<Router> {
    let open = match &state.metrics {
        Some(metrics) => crate::observe::http::router(metrics.clone(), &state.environment),
        None => Router::new().route("/healthz", get(|| async { "OK" })),
    };
    let mut api = api_routes(&state)
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            options.request_timeout,
        ))
        // Event streams last as long as their debate: no timeout.
        .merge(with_key(debates::stream_routes(), &state))
        .with_state(state);
    if !options.cors_origins.is_empty() {
        let origins = options
            .cors_origins
            .iter()
            .map(|o| HeaderValue::from_str(o).with_context(|| format!("bad --cors-origin {o:?}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        api = api.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .max_age(Duration::from_secs(600)),
        );
    }
    let max_body = options.max_body;
    Ok(open
        .merge(api)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(move |request, next| {
            middleware::refuse_announced_too_large(max_body, request, next)
        }))
        .layer(axum::middleware::from_fn(middleware::log_and_shape)))
}

/// Whether `addr` is reachable only from this machine.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Serves until SIGTERM or Ctrl-C.
pub async fn run(state: ApiState, options: ServeOptions) -> anyhow::Result<()> {
    let keys = state.active_keys();
    if !is_loopback(&options.bind) && keys.is_empty() {
        bail!(
            "refusing to serve on {} with no API key: anyone on the network could use it. \
             Make a key first (`persona-sim keys create --name NAME`), or bind 127.0.0.1",
            options.bind
        );
    }
    if keys.is_empty() {
        eprintln!(
            "note: no API key exists yet, so every /v1 route answers 401; make one with `persona-sim keys create --name NAME`"
        );
    }
    let app = router(state.clone(), &options)?;
    let listener = tokio::net::TcpListener::bind(options.bind)
        .await
        .with_context(|| format!("cannot listen on {}", options.bind))?;
    let bound = listener.local_addr()?;
    let counters = state
        .metrics
        .as_ref()
        .map(|m| m.connections())
        .context("serve needs the metrics registry")?;
    tracing::info!(target: "api", %bound, "serving the Persona API");
    eprintln!(
        "persona-sim API on http://{bound} (docs: GET /v1/personas with a key; /healthz, /health, /metrics open)"
    );
    tokio::select! {
        _ = serve_router(listener, app, Limits::default(), counters) => {}
        _ = shutdown_signal() => {
            tracing::info!(target: "api", "shutting down");
            eprintln!("shutting down");
        }
    }
    // Running debates are cancelled and given a moment to save, as the
    // TUI does on quit; jobs are cancelled (what they saved stays).
    state.work.shutdown.cancel();
    let unsaved = state.work.debates.cancel_all(debates::SAVE_WAIT).await;
    if unsaved > 0 {
        tracing::warn!(target: "api", unsaved, "debates not saved before shutdown");
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
