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
//! - [`middleware`]: the key check, the request log, the error shape,
//!   the HTTP metrics; [`limit`]: requests per second per key.
//! - [`docs`]: the OpenAPI document (`/openapi.json`) and its page (`/docs`).
//! - [`state`]: the cached panel and keys, the services.

pub mod debates;
pub mod docs;
pub mod error;
pub mod fields;
pub mod limit;
pub mod live;
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
use axum::routing::{MethodFilter, MethodRouter, get, on};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;

use crate::db::Db;
use crate::observe::http::{Limits, serve_router};
use crate::persona::panel_store::PanelStore;
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
    /// Requests per second per API key (bursts of twice that); 0: no limit.
    pub rate_limit: u32,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            cors_origins: Vec::new(),
            // A 10k-persona import is about 4.5 MB.
            max_body: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            rate_limit: limit::DEFAULT_RATE,
        }
    }
}

/// The two spellings of the persona routes' prefix: `/v1/personas` and
/// the seed's `/v1/persona` (an alias: same handlers; the OpenAPI document
/// describes `/v1/personas` once and says so).
pub const PERSONA_PREFIXES: [&str; 2] = ["/v1/personas", "/v1/persona"];

/// A persona route's handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonaRoute {
    List,
    Create,
    Search,
    Stats,
    Export,
    Import,
    Get,
    Patch,
    Delete,
}

/// The key-protected persona routes, (method, path after the prefix,
/// handler): the router is built from this list and the OpenAPI test
/// checks the document against it, so the two cannot drift apart.
pub const PERSONA_ROUTES: &[(&str, &str, PersonaRoute)] = &[
    ("GET", "", PersonaRoute::List),
    ("POST", "", PersonaRoute::Create),
    ("GET", "/search", PersonaRoute::Search),
    ("GET", "/stats", PersonaRoute::Stats),
    ("GET", "/export", PersonaRoute::Export),
    ("POST", "/import", PersonaRoute::Import),
    ("GET", "/{id}", PersonaRoute::Get),
    ("PATCH", "/{id}", PersonaRoute::Patch),
    ("DELETE", "/{id}", PersonaRoute::Delete),
];

/// The routes open without a key (health and metrics come from
/// [`crate::observe::http::router`]; the document and its page from
/// [`docs::routes`]).
pub const OPEN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
];

/// A synthesis or debate route's handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkRoute {
    Generate,
    GetJob,
    CancelJob,
    StartDebate,
    GetDebate,
    CancelDebate,
    /// The event stream: long-lived, so never under the request timeout.
    DebateEvents,
    Sessions,
}

/// The key-protected synthesis and debate routes, (method, full path,
/// handler): built into the router like [`PERSONA_ROUTES`], and checked
/// against the document by the same test.
pub const WORK_ROUTES: &[(&str, &str, WorkRoute)] = &[
    ("POST", "/v1/personas/generate", WorkRoute::Generate),
    ("POST", "/v1/persona/generate", WorkRoute::Generate),
    ("GET", "/v1/jobs/{id}", WorkRoute::GetJob),
    ("DELETE", "/v1/jobs/{id}", WorkRoute::CancelJob),
    ("POST", "/v1/debates", WorkRoute::StartDebate),
    ("GET", "/v1/debates/{id}", WorkRoute::GetDebate),
    ("DELETE", "/v1/debates/{id}", WorkRoute::CancelDebate),
    ("GET", "/v1/debates/{id}/events", WorkRoute::DebateEvents),
    ("GET", "/v1/sessions", WorkRoute::Sessions),
];

/// Every (method, path) the router serves: the open routes, the persona
/// routes under both prefixes, then the synthesis and debate routes.
pub fn routes() -> Vec<(&'static str, String)> {
    let mut all: Vec<(&'static str, String)> = OPEN_ROUTES
        .iter()
        .map(|(method, path)| (*method, path.to_string()))
        .collect();
    for base in PERSONA_PREFIXES {
        for (method, path, _) in PERSONA_ROUTES {
            all.push((*method, format!("{base}{path}")));
        }
    }
    for (method, path, _) in WORK_ROUTES {
        all.push((*method, path.to_string()));
    }
    all
}

fn method_filter(method: &str) -> MethodFilter {
    Method::from_bytes(method.as_bytes())
        .ok()
        .and_then(|m| MethodFilter::try_from(m).ok())
        .expect("the route lists name standard methods")
}

fn persona_handler(method: &str, route: PersonaRoute) -> MethodRouter<ApiState> {
    let filter = method_filter(method);
    match route {
        PersonaRoute::List => on(filter, personas::list),
        PersonaRoute::Create => on(filter, personas::create),
        PersonaRoute::Search => on(filter, personas::search),
        PersonaRoute::Stats => on(filter, personas::stats),
        PersonaRoute::Export => on(filter, personas::export),
        PersonaRoute::Import => on(filter, personas::import),
        PersonaRoute::Get => on(filter, personas::get),
        PersonaRoute::Patch => on(filter, personas::patch),
        PersonaRoute::Delete => on(filter, personas::delete),
    }
}

fn work_handler(method: &str, route: WorkRoute) -> MethodRouter<ApiState> {
    let filter = method_filter(method);
    match route {
        WorkRoute::Generate => on(filter, synthesis::generate),
        WorkRoute::GetJob => on(filter, synthesis::job),
        WorkRoute::CancelJob => on(filter, synthesis::cancel_job),
        WorkRoute::StartDebate => on(filter, debates::start),
        WorkRoute::GetDebate => on(filter, debates::session),
        WorkRoute::CancelDebate => on(filter, debates::cancel),
        WorkRoute::DebateEvents => on(filter, debates::events),
        WorkRoute::Sessions => on(filter, debates::sessions),
    }
}

/// The synthesis and debate routes: the event streams when `streams`,
/// the others (answered at once) when not.
fn work_routes(streams: bool) -> Router<ApiState> {
    let mut router = Router::new();
    for (method, path, route) in WORK_ROUTES {
        if (*route == WorkRoute::DebateEvents) == streams {
            router = router.route(path, work_handler(method, *route));
        }
    }
    router
}

/// The routes that need a key and answer at once, for both spellings of
/// the persona prefix; the rate limit applies after the key check, per
/// key.
fn api_routes(state: &ApiState, limiter: Option<limit::KeyLimiter>) -> Router<ApiState> {
    let mut router = Router::new();
    for base in PERSONA_PREFIXES {
        for (method, path, route) in PERSONA_ROUTES {
            router = router.route(&format!("{base}{path}"), persona_handler(method, *route));
        }
    }
    with_key(router.merge(work_routes(false)), state, limiter)
}

/// The key check (and the key's name for the log) around `router`, then
/// the key's rate limit.
fn with_key(
    router: Router<ApiState>,
    state: &ApiState,
    limiter: Option<limit::KeyLimiter>,
) -> Router<ApiState> {
    router
        .layer(axum::middleware::from_fn_with_state(
            limiter,
            limit::rate_limit,
        ))
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
    }
    .merge(docs::routes());
    let metrics = state.metrics.clone();
    let limiter = limit::KeyLimiter::per_second(options.rate_limit);
    let mut api = api_routes(&state, limiter.clone())
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            options.request_timeout,
        ))
        // Event streams last as long as their debate: no timeout.
        .merge(with_key(work_routes(true), &state, limiter))
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
        .layer(axum::middleware::from_fn(middleware::log_and_shape))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            middleware::record_http,
        )))
}

/// Whether `addr` is reachable only from this machine.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Serves until SIGTERM or Ctrl-C.
pub async fn run(state: ApiState, options: ServeOptions) -> anyhow::Result<()> {
    if let PanelStore::Postgres(panel) = &state.panel_store {
        let db = panel.db().clone();
        // Migrated before the key check below can read the keys; a
        // database that is down does not stop the server (keep_database
        // goes on trying).
        let ready = match db.check().await {
            Ok(()) => db.migrate().await,
            Err(e) => Err(e),
        };
        match ready {
            Ok(applied) if !applied.is_empty() => {
                eprintln!("migrated the database at {}: applied {applied:?}", db.at());
            }
            Ok(_) => {}
            Err(e) => eprintln!(
                "note: {e}; serving anyway: /v1 answers 503 and /health says degraded until it answers"
            ),
        }
        tokio::spawn(keep_database(state.clone(), db));
    }
    // Unreadable keys (a database that is down) skip the check: every /v1
    // route answers 503 until they can be read.
    if let Ok(keys) = state.active_keys().await {
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
        "persona-sim API on http://{bound} (docs: http://{bound}/docs; /openapi.json, /healthz, /health, /metrics open)"
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

/// How often the server checks that its database answers.
const DATABASE_CHECK_EVERY: Duration = Duration::from_secs(2);

/// Migrates the database as soon as it answers (it may be down when the
/// server starts), then checks every [`DATABASE_CHECK_EVERY`] that it still
/// does, so `/health` says `degraded` with the reason while it does not and
/// recovers by itself when it is back. Requests meanwhile answer 503 at
/// once (see [`Db::check`]).
async fn keep_database(state: ApiState, db: Db) {
    state.set_store_problem(Some(format!("connecting to the database at {}", db.at())));
    let mut migrated = false;
    // Whether the last check failed, so each change is logged once.
    let mut down = None;
    let mut tick = tokio::time::interval(DATABASE_CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.work.shutdown.cancelled() => return,
        }
        let mut result = db.check().await;
        if result.is_ok() && !migrated {
            result = db.migrate().await.map(|applied| {
                if !applied.is_empty() {
                    tracing::info!(target: "store", ?applied, at = db.at(), "database migrated");
                }
                migrated = true;
            });
        }
        match result {
            Ok(()) => {
                if down != Some(false) {
                    tracing::info!(target: "store", at = db.at(), "database ready");
                }
                down = Some(false);
                state.set_store_problem(None);
            }
            Err(e) => {
                if down != Some(true) {
                    tracing::error!(target: "store", error = %e, "database check failed");
                }
                down = Some(true);
                state.set_store_problem(Some(e.to_string()));
            }
        }
    }
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
