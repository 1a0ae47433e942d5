//! The small embedded HTTP server: `/metrics` (Prometheus text format),
//! `/healthz` (`OK`, seed 000) and `/health` (JSON, seed 002).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde_json::json;

use super::metrics::{HEARTBEAT_EVERY, Metrics};

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
    });
    if health.degraded {
        body["reasons"] = json!(health.reasons);
    }
    (StatusCode::OK, Json(body))
}

/// Binds and serves in the background; keeps the heartbeat fresh. An error
/// (the port is taken) is returned for the caller to report, never fatal.
pub async fn serve(
    metrics: Arc<Metrics>,
    addr: SocketAddr,
    environment: &str,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(metrics.clone(), environment);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(target: "metrics", error = %e, "metrics server stopped");
        }
    });
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
