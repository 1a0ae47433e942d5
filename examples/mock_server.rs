//! Runs the test suite's mock OpenAI-compatible server, for trying the TUI
//! without a key: `cargo run --example mock_server -- 8089`, then
//! `OPENAI_BASE_URL=http://127.0.0.1:8089/v1 persona-sim`.
//! It binds to a free port unless one is given; only 127.0.0.1.

#[path = "../tests/support/mock.rs"]
mod support;

use std::time::Duration;

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let server = support::MockServer::persona_echo_on(port, Duration::from_millis(40)).await;
    println!("{}", server.base_url);
    std::future::pending::<()>().await;
}
