//! One way for the API tests to make a request.

use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

/// `method path` on `base` with the key `key` (and `body` as JSON); the
/// status and the body as JSON, or as a string when it is not JSON.
pub async fn call(
    client: &Client,
    base: &str,
    key: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
