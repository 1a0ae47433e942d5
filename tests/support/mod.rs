//! Helpers shared by the integration tests: each test file says
//! `mod support;` and uses what it needs.
//!
//! - the mock OpenAI-compatible server (`mock.rs`, re-exported here; the
//!   `mock_server` example builds that one file on its own),
//! - the real binary run as a user would (`binary`),
//! - what a test needs from the machine, skipped outside CI and required in
//!   it (`needs`),
//! - paused-clock tests against real sockets (`clock`),
//! - a model download server (`download`),
//! - driving the TUI on ratatui's `TestBackend` (`tui`),
//! - the real binary under tmux (`tmux`),
//! - the real `persona-sim serve` with a key (`serve`), and one way to
//!   call it (`http`),
//! - a throwaway PostgreSQL server (`postgres`).
#![allow(dead_code)]

mod mock;

pub mod binary;
pub mod clock;
pub mod download;
pub mod http;
pub mod live;
pub mod needs;
pub mod postgres;
pub mod serve;
pub mod tmux;
pub mod tui;

use persona_sim::sim::moderator::Chair;
use std::time::Duration;

use persona_sim::llm::openai::OpenAiSettings;

/// The OpenAI backend's settings for `base_url` (a mock server): model
/// gpt-4o-mini, key `sk-test`, both timeouts `timeout`.
pub fn openai_settings(base_url: &str, timeout: Duration) -> OpenAiSettings {
    OpenAiSettings {
        api_key: Some("sk-test".into()),
        base_url: base_url.into(),
        model: "gpt-4o-mini".into(),
        temperature: 0.8,
        first_token_timeout: timeout,
        stall_timeout: timeout,
        context_tokens: None,
        seed: None,
    }
}

/// A whole session (debate, then the report) with no store, its events
/// drained; the finished session.
pub async fn run_to_end(
    backend: std::sync::Arc<dyn persona_sim::llm::ChatBackend>,
    config: &persona_sim::sim::debate::DebateConfig,
) -> persona_sim::sim::session::Session {
    use persona_sim::sim::session::{ReportPolicy, Session, run_session};
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let session = Session::new(config, backend.info());
    let task = tokio::spawn(run_session(
        backend,
        session,
        ReportPolicy::Auto,
        None,
        tokio_util::sync::CancellationToken::new(),
        tx,
        Chair::absent(),
    ));
    while rx.recv().await.is_some() {}
    task.await.unwrap()
}

// Unused in the test files that need no mock server.
#[allow(unused_imports)]
pub use mock::*;
