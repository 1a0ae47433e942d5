//! The small embedded HTTP server: `/metrics` (Prometheus text format),
//! `/healthz` (`OK`, seed 000) and `/health` (JSON, seed 002), served by
//! [`serve_router`]: an accept loop that no client can starve of file
//! descriptors (see [`Limits`]).

use std::convert::Infallible;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::metrics::{ConnectionMetrics, HEARTBEAT_EVERY, Metrics};

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    environment: String,
}

pub fn router(metrics: Arc<Metrics>, environment: &str) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "OK" }))
        .route("/health", get(health))
        .with_state(AppState {
            metrics,
            environment: environment.to_string(),
        })
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        state.metrics.render(),
    )
}

/// `healthy`, or `degraded` with the reasons. Always 200: a degraded app
/// still serves (liveness is `/healthz`); the body says what is wrong.
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let health = state.metrics.health();
    let mut body = json!({
        "status": if health.degraded { "degraded" } else { "healthy" },
        "service": "persona-sim",
        "environment": state.environment,
        "version": env!("CARGO_PKG_VERSION"),
        "checks": {
            "store": check(&health.store),
            "llm_backend": check(&health.backend),
        },
    });
    if health.degraded {
        body["reasons"] = json!(health.reasons);
    }
    (StatusCode::OK, Json(body))
}

/// `{"ok": true}`, or `{"ok": false, "problem": "..."}`.
fn check(problem: &Option<String>) -> serde_json::Value {
    match problem {
        None => json!({"ok": true}),
        Some(p) => json!({"ok": false, "problem": p}),
    }
}

/// Binds and serves in the background with the default [`Limits`]; keeps
/// the heartbeat fresh. An error (the port is taken) is returned for the
/// caller to report, never fatal.
pub async fn serve(
    metrics: Arc<Metrics>,
    addr: SocketAddr,
    environment: &str,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(metrics.clone(), environment);
    tokio::spawn(serve_router(
        listener,
        app,
        Limits::default(),
        metrics.connections(),
    ));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            tick.tick().await;
            metrics.beat();
        }
    });
    tracing::info!(target: "metrics", %bound, "serving /metrics, /healthz and /health");
    Ok(bound)
}

/// What one client may hold of the server. Any local user can connect to
/// the port, so none of these may be unbounded: each open connection is a
/// file descriptor of the app, which also needs descriptors to call the
/// LLM, save sessions and export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A connection that has not sent a whole request head this long after
    /// it is ready for one is closed (hyper's `header_read_timeout`).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight that has moved no byte for
    /// this long is closed.
    pub idle_timeout: Duration,
    /// Connections served at once; one more is accepted and closed at once
    /// (shed), so waiting clients never pile up descriptors.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(15),
            max_connections: 64,
        }
    }
}

/// How long the accept loop waits after an accept error that is not about
/// one connection (EMFILE, ENFILE, ENOBUFS...): retrying at once would spin
/// a core while no descriptor is free.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one log line per this long for repeated accept errors.
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

/// What a shed connection is told before it is closed (written only if the
/// socket takes it at once; never waited for).
const SHED_RESPONSE: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// Serves `router` on `listener` within `limits` until the task is
/// dropped: the hardened accept loop of every face that serves HTTP.
/// `counters` counts shed connections and the open ones.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    counters: ConnectionMetrics,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut last_error_log: Option<Instant> = None;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok((stream, peer)) => (stream, peer),
            Err(e) => {
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionAborted
                        | ErrorKind::ConnectionReset
                        | ErrorKind::Interrupted
                ) {
                    // About that one connection only.
                    continue;
                }
                if last_error_log.is_none_or(|at| at.elapsed() >= ACCEPT_ERROR_LOG_EVERY) {
                    tracing::warn!(target: "metrics", error = %e, "accept failed; backing off");
                    last_error_log = Some(Instant::now());
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            counters.shed.inc();
            let _ = stream.try_write(SHED_RESPONSE);
            drop(stream);
            continue;
        };
        counters.open.inc();
        let router = router.clone();
        let open = counters.open.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, router, limits).await;
            open.dec();
            drop(slot);
        });
    }
}

/// Serves one connection until the client closes it, it breaks a limit,
/// or it stays idle past `limits.idle_timeout`. Each request carries the
/// client's address as axum's `ConnectInfo` (the /live page rate limits
/// audience questions by it).
async fn serve_connection(stream: TcpStream, peer: SocketAddr, router: Router, limits: Limits) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let service_activity = activity.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let guard = InFlight::enter(service_activity.clone());
        let mut router = router.clone();
        async move {
            let response = tower::Service::call(&mut router, request).await?;
            // In flight until the body is written (or dropped).
            Ok::<_, Infallible>(response.map(|inner| Body::new(Guarded { inner, guard })))
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut deadline = activity.last() + limits.idle_timeout;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(target: "metrics", error = %e, "connection ended");
                }
                return;
            }
            _ = tokio::time::sleep_until(deadline) => {
                let now = tokio::time::Instant::now();
                let idle_until = activity.last() + limits.idle_timeout;
                if activity.in_flight() > 0 {
                    // Look again later (a deadline in the past would spin).
                    deadline = now + limits.idle_timeout;
                } else if idle_until <= now {
                    tracing::debug!(target: "metrics", "idle connection closed");
                    return;
                } else {
                    deadline = idle_until;
                }
            }
        }
    }
}

/// When a connection last moved a byte or finished a request, and how many
/// of its requests are in flight.
struct Activity {
    start: tokio::time::Instant,
    /// Milliseconds after `start`.
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: tokio::time::Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn last(&self) -> tokio::time::Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// A request in flight on its connection, until dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(activity: Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request in flight until it is done.
struct Guarded {
    inner: Body,
    guard: InFlight,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if polled.is_ready() {
            self.guard.0.touch();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, noting each byte moved in its connection's [`Activity`].
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
