//! The spectator page: a debate published on a [`Feed`] shown live in any
//! browser (`GET /live`, `?overlay=1` for an OBS browser source), its event
//! stream (`GET /live/events`, Server-Sent Events) and, when the host takes
//! them, audience questions (`POST /live/questions`).
//!
//! - The page, its script and its style are embedded in the binary (no CDN,
//!   no build step) and served under a strict Content-Security-Policy: the
//!   script writes everything with `textContent`, so a persona's words or a
//!   viewer's question can never become markup.
//! - Each viewer holds a [`crate::sim::live::Spectator`] (a cursor into the
//!   feed): a viewer that stops reading stops being polled by its
//!   connection and costs nothing more; nobody waits for it.
//! - An optional viewer token guards everything but the static script and
//!   style (which hold no data); it travels as `?token=` because
//!   `EventSource` cannot send headers.
//! - Served on the hardened accept loop of [`serve_router`] (header
//!   timeout, idle close, connection cap), which also tells a handler the
//!   client's address (questions are rate limited per address).

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::error::ApiError;
use crate::observe::http::{Limits, serve_router};
use crate::observe::metrics::ConnectionMetrics;
use crate::sim::live::{AskError, Feed};

/// The port `--live` listens on when given no address.
pub const DEFAULT_PORT: u16 = 7777;
/// Where a bare `--live` listens: this machine only.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_PORT);
/// How often an idle event stream sends a comment, so proxies keep it.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// The largest question request body, in bytes (a question is at most
/// [`crate::sim::live::MAX_QUESTION_CHARS`] characters).
pub const MAX_QUESTION_BODY: usize = 4 * 1024;
/// Connections served at once: each viewer keeps one open for its event
/// stream, so this is about the audience size one stream can take.
pub const MAX_CONNECTIONS: usize = 512;

/// Only our own script, style and event stream; nothing framed, nothing
/// posted by forms, no other origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE_HTML: &str = include_str!("live/page.html");
const PAGE_JS: &str = include_str!("live/page.js");
const PAGE_CSS: &str = include_str!("live/page.css");

/// What every route shares.
#[derive(Clone)]
struct Live {
    feed: Arc<Feed>,
    /// SHA-256 of the viewer token: compared digest to digest, so the
    /// comparison's time says nothing about the token, not even its length.
    token_digest: Option<[u8; 32]>,
    /// Ends every event stream when the server stops.
    stop: CancellationToken,
    viewers: Arc<AtomicUsize>,
}

/// The query parameters the routes read.
#[derive(Debug, Default, Deserialize)]
struct LiveQuery {
    token: Option<String>,
    last_event_id: Option<String>,
    overlay: Option<String>,
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Whether two digests are equal, in time that does not depend on where
/// they differ.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The live routes over `feed`; event streams end when `stop` fires.
fn router(
    feed: Arc<Feed>,
    token: Option<String>,
    stop: CancellationToken,
    viewers: Arc<AtomicUsize>,
) -> Router {
    let live = Live {
        feed,
        token_digest: token.as_deref().map(digest),
        stop,
        viewers,
    };
    let guarded = Router::new()
        .route("/live", get(page))
        .route("/live/events", get(events))
        .route("/live/config", get(config))
        .route("/live/questions", post(ask))
        .layer(axum::middleware::from_fn_with_state(
            live.clone(),
            require_token,
        ));
    Router::new()
        .route("/live/page.js", get(script))
        .route("/live/page.css", get(style))
        .merge(guarded)
        .with_state(live)
        .layer(axum::middleware::from_fn(security_headers))
}

/// The CSP and its companions on every response.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The address may hold the viewer token: never sent on to another site.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// 401 unless the request carries the viewer token (when there is one).
async fn require_token(State(live): State<Live>, request: Request, next: Next) -> Response {
    let Some(expected) = &live.token_digest else {
        return next.run(request).await;
    };
    let given = Query::<LiveQuery>::try_from_uri(request.uri())
        .ok()
        .and_then(|q| q.0.token);
    match given {
        Some(token) if same_digest(&digest(&token), expected) => next.run(request).await,
        given => {
            tracing::info!(target: "live", path = request.uri().path(), with_token = given.is_some(), "viewer refused: wrong or missing token");
            (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "This live stream needs its viewer token: open the full address the host shared (it ends in ?token=...).\n",
            )
                .into_response()
        }
    }
}

/// `GET /live`: the page; `?overlay=1` is the layout for a video overlay.
async fn page(State(live): State<Live>, Query(query): Query<LiveQuery>) -> Response {
    let overlay = matches!(query.overlay.as_deref(), Some("1" | "true" | "yes"));
    let html = PAGE_HTML
        .replace("{{mode}}", if overlay { "overlay" } else { "page" })
        .replace(
            "{{questions}}",
            if live.feed.takes_questions() {
                "on"
            } else {
                "off"
            },
        );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        PAGE_JS,
    )
        .into_response()
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        PAGE_CSS,
    )
        .into_response()
}

/// `GET /live/config`: what the page may offer (the ask box).
async fn config(State(live): State<Live>) -> Json<Value> {
    Json(json!({"questions": live.feed.takes_questions()}))
}

/// A viewer's event stream; counted while it is open.
struct Viewer {
    viewers: Arc<AtomicUsize>,
}

impl Viewer {
    fn join(viewers: Arc<AtomicUsize>) -> Viewer {
        let now = viewers.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(target: "live", viewers = now, "viewer joined");
        Viewer { viewers }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let now = self.viewers.fetch_sub(1, Ordering::Relaxed) - 1;
        tracing::debug!(target: "live", viewers = now, "viewer left");
    }
}

/// The event id to resume after: the `Last-Event-ID` header (what a
/// reconnecting `EventSource` sends), else `?last_event_id=`.
fn resume_after(headers: &HeaderMap, query: &LiveQuery) -> Result<Option<u64>, ApiError> {
    let given = match headers.get("last-event-id") {
        Some(value) => Some(value.to_str().unwrap_or("x").trim().to_string()),
        None => query.last_event_id.clone(),
    };
    match given.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text.parse::<u64>().map(Some).map_err(|_| {
            ApiError::bad_request("Last-Event-ID must be an event's id (a whole number)")
        }),
    }
}

/// `GET /live/events`: the current debate from its start (or after
/// `Last-Event-ID`), then live events; `id:` is the feed's event id,
/// `data:` the JSON event; a `heartbeat` comment every 15 s while idle.
async fn events(
    State(live): State<Live>,
    Query(query): Query<LiveQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let after = resume_after(&headers, &query)?;
    let spectator = live.feed.watch(after);
    let viewer = Viewer::join(live.viewers.clone());
    let batches =
        futures::stream::unfold((spectator, viewer), |(mut spectator, viewer)| async move {
            let batch = spectator.next_batch().await?;
            let events: Vec<Result<Event, Infallible>> = batch
                .into_iter()
                .map(|(id, line)| Ok(Event::default().id(id.to_string()).data(&*line)))
                .collect();
            Some((futures::stream::iter(events), (spectator, viewer)))
        });
    let stop = live.stop.clone();
    let stream = batches
        .flatten()
        .take_until(async move { stop.cancelled().await });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat")))
}

/// `POST /live/questions` `{"text": "..."}`: 202 `{"id": n}` once queued
/// for the moderator (nobody else sees it unless the moderator takes it).
async fn ask(State(live): State<Live>, request: Request) -> Result<Response, ApiError> {
    if !live.feed.takes_questions() {
        return Err(ApiError::not_found(
            "audience questions are off for this stream (the host did not start it with --live-questions)",
        ));
    }
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string());
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !is_json {
        // Also keeps other sites' plain forms out: a JSON post from another
        // origin needs a preflight, which this server never grants.
        return Err(ApiError::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    let body = axum::body::to_bytes(request.into_body(), MAX_QUESTION_BODY)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the request body is over {MAX_QUESTION_BODY} bytes; send {{\"text\": \"your question\"}}"),
            )
        })?;
    let value: Value = serde_json::from_slice(&body).map_err(|_| {
        ApiError::bad_request("the body must be JSON: {\"text\": \"your question\"}")
    })?;
    let Some(text) = value.get("text").and_then(Value::as_str) else {
        return Err(ApiError::invalid(
            "the question is not valid",
            vec![("text".into(), "is required and must be a string".into())],
        ));
    };
    match live.feed.ask(&client, text) {
        Ok(id) => {
            tracing::info!(target: "live", id, "audience question queued for the moderator");
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({"id": id, "status": "queued"})),
            )
                .into_response())
        }
        Err(e) => Err(refused(e)),
    }
}

/// The status and code a refused question answers with.
fn refused(e: AskError) -> ApiError {
    let (status, code) = match e {
        AskError::Off => (StatusCode::NOT_FOUND, "not_found"),
        AskError::Empty | AskError::TooLong(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        AskError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        AskError::QueueFull => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
    };
    tracing::debug!(target: "live", code, "audience question refused");
    let mut error = ApiError::new(status, code, e.to_string());
    error.retry_after = e
        .retry_after()
        .map(|s| u32::try_from(s).unwrap_or(u32::MAX));
    error
}

/// `serve`'s debates on the live page: one at a time, so two debates never
/// interleave on the feed. A debate that starts while another is shown
/// runs as usual, unpublished.
pub struct Stage {
    feed: Arc<Feed>,
    taken: std::sync::atomic::AtomicBool,
}

impl Stage {
    pub fn new(feed: Arc<Feed>) -> Stage {
        Stage {
            feed,
            taken: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The stage for one debate, if no other holds it.
    pub fn take(self: &Arc<Self>) -> Option<OnStage> {
        self.taken
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| OnStage(self.clone()))
    }
}

/// A debate holding the [`Stage`]; released when dropped.
pub struct OnStage(Arc<Stage>);

impl OnStage {
    pub fn publish(&self, event: &crate::sim::debate::SimEvent) {
        self.0.feed.publish(event);
    }
}

impl Drop for OnStage {
    fn drop(&mut self) {
        self.0.taken.store(false, Ordering::Release);
    }
}

/// The spectator server; stops (and ends every event stream) when dropped.
pub struct LiveServer {
    addr: SocketAddr,
    stop: CancellationToken,
    viewers: Arc<AtomicUsize>,
    accept: tokio::task::JoinHandle<()>,
}

impl LiveServer {
    /// Where it listens (the real port when asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's address to share, with the token when there is one; an
    /// unspecified address (0.0.0.0) is shown as this machine's loopback.
    pub fn url(&self, token: Option<&str>) -> String {
        page_url(self.addr, token)
    }

    /// Event streams open now (a face may show "N watching").
    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }

    /// Stops serving and ends every event stream (as dropping it does).
    pub fn shutdown(self) {}
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        self.stop.cancel();
        self.accept.abort();
    }
}

/// `http://ADDR/live`, with `?token=` (percent-encoded) when given.
pub fn page_url(addr: SocketAddr, token: Option<&str>) -> String {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            SocketAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        });
    }
    match token {
        Some(token) => format!("http://{addr}/live?token={}", percent_encode(token)),
        None => format!("http://{addr}/live"),
    }
}

/// Everything but unreserved URL characters as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Binds `addr` and serves the live routes over `feed` in the background.
/// An error (the port is taken) is the caller's to report.
pub async fn start(
    addr: SocketAddr,
    feed: Arc<Feed>,
    token: Option<String>,
) -> std::io::Result<LiveServer> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let stop = CancellationToken::new();
    let viewers = Arc::new(AtomicUsize::new(0));
    let app = router(feed, token, stop.clone(), viewers.clone());
    let limits = Limits {
        max_connections: MAX_CONNECTIONS,
        ..Limits::default()
    };
    let accept = tokio::spawn(serve_router(
        listener,
        app,
        limits,
        ConnectionMetrics::detached(),
    ));
    tracing::info!(target: "live", %bound, "serving the live page");
    Ok(LiveServer {
        addr: bound,
        stop,
        viewers,
        accept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_compare_equal_only_when_the_tokens_are_equal() {
        assert!(same_digest(&digest("s3cret"), &digest("s3cret")));
        assert!(!same_digest(&digest("s3cret"), &digest("s3cre")));
        assert!(!same_digest(&digest(""), &digest("s3cret")));
    }

    #[test]
    fn the_page_url_carries_an_encoded_token_and_never_0_0_0_0() {
        let addr: SocketAddr = "0.0.0.0:7777".parse().unwrap();
        assert_eq!(page_url(addr, None), "http://127.0.0.1:7777/live");
        assert_eq!(
            page_url(DEFAULT_ADDR, Some("a b&c")),
            "http://127.0.0.1:7777/live?token=a%20b%26c"
        );
    }

    #[test]
    fn the_embedded_page_loads_nothing_from_elsewhere() {
        for text in [PAGE_HTML, PAGE_JS, PAGE_CSS] {
            assert!(!text.contains("http://") && !text.contains("https://"));
            assert!(!text.contains("innerHTML") && !text.contains("insertAdjacentHTML"));
        }
    }
}
