//! One error shape for every failure: `{"error": {"code", "message",
//! "details"}}`, never a stack trace or an internal path.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable machine-readable word: `not_found`, `invalid`, …
    pub code: &'static str,
    pub message: String,
    pub details: Value,
    /// Seconds a client should wait before trying again (`Retry-After`).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
            retry_after: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> ApiError {
        self.details = details;
        self
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 422 with every problem and where it is (`[{path, message}]`).
    pub fn invalid(message: impl Into<String>, problems: Vec<(String, String)>) -> ApiError {
        let details: Vec<Value> = problems
            .into_iter()
            .map(|(path, message)| json!({"path": path, "message": message}))
            .collect();
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
            .with_details(Value::Array(details))
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required: Authorization: Bearer <key>",
        )
    }

    /// A failure of ours; the cause goes to the log, not to the client.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(target: "api", error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server could not complete the request; see its log",
        )
    }

    /// The panel store cannot be used now (locked too long, unreadable).
    pub fn unavailable(cause: impl std::fmt::Display) -> ApiError {
        tracing::warn!(target: "api", error = %cause, "store unavailable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the persona store is busy or unavailable; try again",
        )
    }

    /// The database is down, unreachable or not migrated yet: 503 with
    /// `Retry-After`; the reason goes to the log and to `/health`.
    pub fn database_unavailable(cause: impl std::fmt::Display) -> ApiError {
        tracing::warn!(target: "api", error = %cause, "database unavailable");
        let mut error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database is unavailable right now (GET /health says why); nothing was changed, try again shortly",
        );
        error.retry_after = Some(2);
        error
    }

    /// The code a bare status gets when no handler chose one.
    pub fn from_status(status: StatusCode) -> ApiError {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => ("not_found", "no such route"),
            StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method not allowed here"),
            StatusCode::PAYLOAD_TOO_LARGE => ("too_large", "the request body is too large"),
            StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "send JSON (Content-Type: application/json)",
            ),
            StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests; slow down"),
            s if s.is_client_error() => ("bad_request", "the request is not valid"),
            _ => ("internal", "the server could not complete the request"),
        };
        ApiError::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": {"code": self.code, "message": self.message}});
        if !self.details.is_null() {
            body["error"]["details"] = self.details;
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}
