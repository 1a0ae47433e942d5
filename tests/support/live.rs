//! The live page's tests: a debate streamed from the mock server into a
//! [`Feed`], and a reader of `/live/events`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use persona_sim::llm::ChatBackend;
use persona_sim::llm::openai::OpenAiBackend;
use persona_sim::persona::builtin_panel;
use persona_sim::sim::debate::{DebateConfig, SimEvent};
use persona_sim::sim::live::Feed;
use persona_sim::sim::moderator::Chair;
use persona_sim::sim::session::{ReportPolicy, Session, run_session};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{MockServer, Reply, echo_reply};

/// A mock that answers in character and ends each reply with a stance
/// line (for, mixed or against by the speaker's name), so the stance
/// board has values.
pub async fn stance_mock(chunk_delay: Duration) -> MockServer {
    MockServer::start(Vec::new(), chunk_delay, stance_reply).await
}

/// The position the mock gives `name`.
pub fn mock_position(name: &str) -> &'static str {
    ["for", "mixed", "against"][name.len() % 3]
}

pub fn stance_reply(body: &Value) -> Reply {
    let system = body["messages"][0]["content"].as_str().unwrap_or("");
    let Some(name) = system
        .strip_prefix("You are ")
        .and_then(|s| s.split(',').next())
    else {
        return echo_reply(body);
    };
    let position = mock_position(name);
    let interest = 1 + name.len() % 10;
    Reply::text(&format!(
        "As {name}, I like the idea but worry about cost.\nSTANCE: {position}, interest {interest}/10"
    ))
}

/// A debate on the first `personas` of the built-in panel.
pub fn config(feature: &str, personas: usize, rounds: u32) -> DebateConfig {
    DebateConfig {
        feature: feature.into(),
        personas: builtin_panel()[..personas].to_vec(),
        rounds,
        max_tokens_per_turn: 200,
        max_tokens_total: None,
    }
}

/// Runs the debate against `server`, publishing every event to `feed` as
/// a face would; returns the events.
pub async fn run_into(feed: &Feed, server: &MockServer, config: &DebateConfig) -> Vec<SimEvent> {
    let backend: Arc<dyn ChatBackend> = Arc::new(OpenAiBackend::new(super::openai_settings(
        &server.base_url,
        Duration::from_secs(10),
    )));
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let session = Session::new(config, backend.info());
    let task = tokio::spawn(run_session(
        backend,
        session,
        ReportPolicy::Never,
        None,
        CancellationToken::new(),
        tx,
        Chair::absent(),
    ));
    let mut events = Vec::new();
    while let Some(event) = rx.recv().await {
        feed.publish(&event);
        events.push(event);
    }
    task.await.unwrap();
    events
}

/// A client that never goes through a proxy.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// One parsed SSE block: (id, JSON).
pub type Received = (u64, Value);

/// Reads `url` (an event stream) until an event satisfies `last`, or
/// `wait` passes: the (id, JSON) pairs received.
pub async fn read_events(
    client: &reqwest::Client,
    url: &str,
    last_event_id: Option<u64>,
    last: impl Fn(&Value) -> bool,
    wait: Duration,
) -> Vec<Received> {
    let mut request = client.get(url);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let mut response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "{url}");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut buffer = String::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(chunk) = tokio::time::timeout(left, response.chunk()).await else {
            return out;
        };
        let Some(chunk) = chunk.unwrap() else {
            return out;
        };
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut id = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().parse::<u64>().unwrap());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = Some(serde_json::from_str::<Value>(v.trim()).unwrap());
                }
            }
            if let (Some(id), Some(data)) = (id, data) {
                let end = last(&data);
                out.push((id, data));
                if end {
                    return out;
                }
            }
        }
    }
}

/// Whether the event ends the debate part (`done`).
pub fn is_done(e: &Value) -> bool {
    e["event"] == "done"
}

/// The event's kind (`turn_started`, `token`, ...).
pub fn kind(e: &Value) -> &str {
    e["event"].as_str().unwrap_or_default()
}
