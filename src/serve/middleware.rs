//! What wraps every route: the API key check, one log line per request,
//! and errors in the one JSON shape even when axum or a layer made them.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::observe::metrics::Metrics;

use super::error::ApiError;
use super::state::ApiState;

/// The name of the key a request came with (in the request's extensions).
#[derive(Debug, Clone)]
pub struct KeyName(pub String);

/// `Authorization: Bearer KEY` with an active key, else 401 (the same
/// answer whether the header is missing, malformed or the key wrong).
pub async fn require_key(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Response {
    let key = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let active = match state.active_keys().await {
        Ok(active) => active,
        Err(e) => return e.into_response(),
    };
    let name = key.and_then(|key| crate::api_keys::check(&active, key));
    let Some(name) = name else {
        return ApiError::unauthorized().into_response();
    };
    request.extensions_mut().insert(KeyName(name));
    next.run(request).await
}

/// One line per request: method, route, status, latency, request id and
/// key name (never the key). A request id the client sent is kept (if it
/// is short and printable), else one is made; it is returned in
/// `x-request-id`. An error response that is not JSON (axum's own 404,
/// 405, 413, a timeout) is given the one error shape.
pub async fn log_and_shape(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(String::from)
        .unwrap_or_else(new_request_id);
    let mut response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let headers = response.headers().clone();
        response = ApiError::from_status(status).into_response();
        for name in [header::RETRY_AFTER, header::ALLOW] {
            if let Some(value) = headers.get(&name) {
                response.headers_mut().insert(name, value.clone());
            }
        }
    }
    let key = response
        .extensions()
        .get::<KeyName>()
        .map(|k| k.0.clone())
        .unwrap_or_else(|| "-".into());
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        target: "api",
        %method,
        route,
        status = status.as_u16(),
        latency_ms = format!("{millis:.2}"),
        request_id = %id,
        key,
        "request"
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Counts every request in `app_http_requests_total{route,method,status}`
/// and times it in `app_http_request_duration_seconds{route,method}`, by
/// the matched route pattern (`/v1/personas/{id}`, never the raw path), or
/// `unmatched`. Outside every other layer, so 401, 429 and 404 count too.
pub async fn record_http(
    State(metrics): State<Option<Arc<Metrics>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(metrics) = metrics else {
        return next.run(request).await;
    };
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let response = next.run(request).await;
    metrics.http_request(
        route.as_deref().unwrap_or("unmatched"),
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Copies the key name into the response, so the log line (outside the
/// auth layer) can name it.
pub async fn key_to_response(request: Request, next: Next) -> Response {
    let key = request.extensions().get::<KeyName>().cloned();
    let mut response = next.run(request).await;
    if let Some(key) = key {
        response.extensions_mut().insert(key);
    }
    response
}

/// A body announced (Content-Length) larger than `max` is refused at once
/// with 413, before a byte of it is read; one sent without a length is cut
/// at `max` by axum's body limit.
pub async fn refuse_announced_too_large(max: usize, request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > max as u64) {
        return ApiError::from_status(axum::http::StatusCode::PAYLOAD_TOO_LARGE).into_response();
    }
    next.run(request).await
}

fn new_request_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return "unknown".into();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
