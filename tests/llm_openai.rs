//! The real async-openai path against a mock OpenAI-compatible server.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use persona_sim::llm::openai::{OpenAiBackend, OpenAiSettings};
use persona_sim::persona::builtin_panel;
use persona_sim::sim::debate::{DebateConfig, Outcome, SimEvent, Transcript, run_debate};
use support::clock::ClockHold;
use support::{MockServer, Reply};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The timeouts under test, on tokio's paused clock.
const TIMEOUT: Duration = Duration::from_millis(400);
/// How long a stalling mock waits before it would finish the turn after all;
/// a working timeout fires long before.
const STALL: Duration = Duration::from_secs(3600);

fn backend(server: &MockServer, timeout: Duration) -> Arc<OpenAiBackend> {
    Arc::new(OpenAiBackend::new(support::openai_settings(
        &server.base_url,
        timeout,
    )))
}

type Running = (JoinHandle<Transcript>, mpsc::Receiver<SimEvent>);

fn start_debate(backend: Arc<OpenAiBackend>, personas: usize, rounds: u32) -> Running {
    let (tx, rx) = mpsc::channel(16);
    let config = DebateConfig {
        feature: "Offline mode for field workers".into(),
        personas: builtin_panel()[..personas].to_vec(),
        rounds,
        max_tokens_per_turn: 200,
        max_tokens_total: None,
    };
    (tokio::spawn(run_debate(backend, config, tx)), rx)
}

/// The remaining events, and the transcript once the debate has ended.
async fn finish((task, mut rx): Running) -> (Vec<SimEvent>, Transcript) {
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    (events, task.await.unwrap())
}

async fn debate(
    backend: Arc<OpenAiBackend>,
    personas: usize,
    rounds: u32,
) -> (Vec<SimEvent>, Transcript) {
    finish(start_debate(backend, personas, rounds)).await
}

/// The text streamed so far.
fn spoken(events: &[SimEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            SimEvent::Token { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn error_message(events: &[SimEvent]) -> String {
    events
        .iter()
        .find_map(|e| match e {
            SimEvent::Error { message, .. } => Some(message.clone()),
            _ => None,
        })
        .expect("an error event")
}

fn outcome(events: &[SimEvent]) -> Outcome {
    match events.last() {
        Some(SimEvent::Done { outcome }) => *outcome,
        other => panic!("last event is not Done: {other:?}"),
    }
}

#[tokio::test]
async fn three_personas_two_rounds_end_to_end() {
    let texts: Vec<String> = (0..6)
        .map(|i| format!("Reply number {i} from the panel."))
        .collect();
    let server = MockServer::scripted(texts.iter().map(|t| Reply::text(t)).collect()).await;
    let (events, transcript) = debate(backend(&server, Duration::from_secs(10)), 3, 2).await;

    // Event sequence: the debate's opening, per turn Started, Tokens..,
    // Usage, Ended; then Done.
    match &events[0] {
        SimEvent::DebateStarted {
            rounds, personas, ..
        } => {
            assert_eq!(*rounds, 2);
            assert_eq!(personas.len(), 3);
        }
        other => panic!("expected DebateStarted, got {other:?}"),
    }
    let mut expected_turn = 0;
    let mut i = 1;
    while i < events.len() - 1 {
        match &events[i] {
            SimEvent::TurnStarted {
                turn,
                round,
                persona_id,
                ..
            } => {
                assert_eq!(*turn, expected_turn);
                assert_eq!(*round, 1 + expected_turn as u32 / 3);
                assert_eq!(*persona_id, 1 + expected_turn as u32 % 3);
            }
            other => panic!("expected TurnStarted {expected_turn}, got {other:?}"),
        }
        i += 1;
        let mut text = String::new();
        while let SimEvent::Token { turn, text: t } = &events[i] {
            assert_eq!(*turn, expected_turn);
            text.push_str(t);
            i += 1;
        }
        assert_eq!(text, texts[expected_turn]);
        assert!(
            matches!(events[i], SimEvent::Usage { turn, prompt_tokens: 42, completion_tokens: 6, estimated: false } if turn == expected_turn)
        );
        assert_eq!(
            events[i + 1],
            SimEvent::TurnEnded {
                turn: expected_turn,
                finish_reason: Default::default(),
                stance: None,
            }
        );
        i += 2;
        expected_turn += 1;
    }
    assert_eq!(expected_turn, 6);
    assert_eq!(outcome(&events), Outcome::Completed);

    let spoken: Vec<&str> = transcript.turns.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(spoken, texts.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(transcript.turns.iter().all(|t| t.complete));
    assert_eq!(transcript.usage.prompt_tokens, 6 * 42);

    // What went over the wire: the standard protocol, and each persona saw
    // the transcript so far.
    let requests = server.requests();
    assert_eq!(requests.len(), 6);
    let panel = builtin_panel();
    for (n, r) in requests.iter().enumerate() {
        assert_eq!(r.authorization.as_deref(), Some("Bearer sk-test"));
        assert_eq!(r.body["model"], "gpt-4o-mini");
        assert_eq!(r.body["stream"], true);
        assert_eq!(r.body["stream_options"]["include_usage"], true);
        assert_eq!(r.body["messages"][0]["role"], "system");
        let system = r.body["messages"][0]["content"].as_str().unwrap();
        assert!(system.contains(&panel[n % 3].name), "{system}");
        let user = r.body["messages"][1]["content"].as_str().unwrap();
        assert!(user.contains("Offline mode for field workers"));
        for earlier in &texts[..n] {
            assert!(
                user.contains(earlier.as_str()),
                "request {n} lacks {earlier:?}"
            );
        }
        if n < 5 {
            assert!(!user.contains(&texts[n]));
        }
    }
}

#[tokio::test]
async fn rate_limit_then_success_is_retried() {
    let server = MockServer::scripted(vec![
        Reply::Status {
            code: 429,
            body: r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":null}}"#.into(),
        },
        Reply::text("Fine after a retry."),
    ])
    .await;
    let (events, transcript) = debate(backend(&server, Duration::from_secs(10)), 1, 1).await;
    assert_eq!(outcome(&events), Outcome::Completed);
    assert_eq!(transcript.turns[0].text, "Fine after a retry.");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn server_error_after_retries_is_reported_and_the_transcript_kept() {
    let error = Reply::Status {
        code: 500,
        body: r#"{"error":{"message":"model overloaded","type":"server_error","param":null,"code":null}}"#.into(),
    };
    let mut queue = vec![Reply::text("I spoke first.")];
    queue.extend(std::iter::repeat_n(error, 4));
    let server = MockServer::scripted(queue).await;
    let (events, transcript) = debate(backend(&server, Duration::from_secs(10)), 2, 1).await;
    let message = error_message(&events);
    assert!(
        message.contains("HTTP 500") && message.contains("model overloaded"),
        "{message}"
    );
    assert_eq!(outcome(&events), Outcome::Failed);
    assert_eq!(transcript.turns[0].text, "I spoke first.");
    assert!(transcript.turns[0].complete);
    assert!(!transcript.turns[1].complete);
    // One first try and three retries with backoff.
    assert_eq!(server.requests().len(), 1 + 4);
}

#[tokio::test]
async fn non_json_error_body_is_still_readable() {
    let server = MockServer::scripted(vec![Reply::Status {
        code: 400,
        body: "<html>Bad Gateway Config</html>".into(),
    }])
    .await;
    let (events, _) = debate(backend(&server, Duration::from_secs(10)), 1, 1).await;
    let message = error_message(&events);
    assert!(message.contains("Bad Gateway Config"), "{message}");
}

#[tokio::test]
async fn error_bodies_with_integer_codes_are_read() {
    // vLLM and others send `"code": 400`, which async-openai's own error type rejects.
    let server = MockServer::scripted(vec![Reply::Status {
        code: 400,
        body: r#"{"object":"error","error":{"message":"max_tokens is too large","type":"BadRequestError","code":400}}"#.into(),
    }])
    .await;
    let (events, _) = debate(backend(&server, Duration::from_secs(10)), 1, 1).await;
    let message = error_message(&events);
    assert!(message.contains("max_tokens is too large"), "{message}");
    assert!(!message.contains("mid-stream"), "{message}");
}

#[tokio::test]
async fn stream_cut_mid_message_keeps_the_partial_turn() {
    let server = MockServer::scripted(vec![
        Reply::text("Complete first turn."),
        Reply::Cut {
            pieces: support::split_words("I was about to"),
        },
    ])
    .await;
    let (events, transcript) = debate(backend(&server, Duration::from_secs(10)), 2, 1).await;
    let message = error_message(&events);
    assert!(message.contains("connection broke"), "{message}");
    assert_eq!(transcript.turns[1].text, "I was about to");
    assert!(!transcript.turns[1].complete);
    assert_eq!(outcome(&events), Outcome::Failed);
}

#[tokio::test]
async fn malformed_chunk_is_a_clear_error() {
    let server = MockServer::scripted(vec![Reply::Malformed {
        pieces: support::split_words("Half a"),
    }])
    .await;
    let (events, transcript) = debate(backend(&server, Duration::from_secs(10)), 1, 1).await;
    let message = error_message(&events);
    assert!(message.contains("malformed chunk"), "{message}");
    assert_eq!(transcript.turns[0].text, "Half a");
}

// The two timeout tests run on tokio's paused clock, so they take no real
// time and cannot flake on a loaded machine: every timer involved (the
// backend's first-token and stall timeouts, reqwest's connect timeout, the
// mock's stall) is a `tokio::time` timer. They stay deterministic against the
// real loopback mock because a `ClockHold` freezes virtual time while bytes
// are on the wire (see tests/support/clock.rs) and is released only once
// nothing is in flight; the next thing to happen is then the earliest timer,
// the timeout under test, at an exact virtual instant.

#[tokio::test(start_paused = true)]
async fn stall_mid_stream_times_out() {
    let server = MockServer::scripted(vec![Reply::Stall {
        pieces: support::split_words("Let me think"),
        stall: STALL,
    }])
    .await;
    let hold = ClockHold::new();
    let started = tokio::time::Instant::now();
    let (task, mut rx) = start_debate(backend(&server, TIMEOUT), 1, 1);
    // Every piece has arrived (with no virtual time passed) before the clock
    // may run.
    let mut events = Vec::new();
    while spoken(&events) != "Let me think" {
        events.push(rx.recv().await.expect("the pieces arrive before the end"));
    }
    hold.release().await;
    let (rest, transcript) = finish((task, rx)).await;
    let waited = started.elapsed();
    events.extend(rest);
    let message = error_message(&events);
    assert!(message.contains("stalled"), "{message}");
    assert_eq!(transcript.turns[0].text, "Let me think");
    assert!(!transcript.turns[0].complete);
    // The stall timer starts at the last token, so it fires TIMEOUT later
    // in virtual time: not early, and long before the mock would go on.
    assert!(
        waited >= TIMEOUT && waited < 2 * TIMEOUT && waited < STALL,
        "stalled after {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn no_first_token_times_out() {
    let server = MockServer::scripted(vec![Reply::Stall {
        pieces: vec![],
        stall: STALL,
    }])
    .await;
    let hold = ClockHold::new();
    let started = tokio::time::Instant::now();
    let running = start_debate(backend(&server, TIMEOUT), 1, 1);
    // The request is in, the headers and a keep-alive are out, no token
    // will follow. Whether or not the client has read the headers yet, its
    // first-token budget began at virtual 0, and its connection is up (so
    // reqwest's connect timeout, as long, is out of the race).
    server.stalling(1).await;
    hold.release().await;
    let (events, transcript) = finish(running).await;
    let waited = started.elapsed();
    let message = error_message(&events);
    assert!(message.contains("no reply from the model"), "{message}");
    assert_eq!(transcript.turns[0].text, "");
    assert_eq!(outcome(&events), Outcome::Failed);
    assert!(
        waited >= TIMEOUT && waited < 2 * TIMEOUT && waited < STALL,
        "gave up after {waited:?}"
    );
}

#[tokio::test]
async fn lenient_servers_without_done_or_usage_are_accepted() {
    let server = MockServer::scripted(vec![Reply::NoDone {
        pieces: support::split_words("No done marker here."),
    }])
    .await;
    let (events, transcript) = debate(backend(&server, Duration::from_secs(10)), 1, 1).await;
    assert_eq!(outcome(&events), Outcome::Completed);
    assert_eq!(transcript.turns[0].text, "No done marker here.");
    // No usage from the server: the turn is counted by estimate.
    assert!(transcript.turns[0].usage_estimated);
    assert_eq!(transcript.turns[0].usage.unwrap().completion_tokens, 5);
}

#[tokio::test]
async fn clean_close_without_finish_reason_is_an_error() {
    let server = MockServer::scripted(vec![Reply::EndsEarly {
        pieces: support::split_words("Cut short"),
    }])
    .await;
    let (events, transcript) = debate(backend(&server, Duration::from_secs(10)), 1, 1).await;
    assert!(error_message(&events).contains("closed the stream before"));
    assert_eq!(transcript.turns[0].text, "Cut short");
}

#[tokio::test]
async fn unreachable_server_names_the_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let backend = Arc::new(OpenAiBackend::new(OpenAiSettings {
        api_key: None,
        ..support::openai_settings(&format!("http://{addr}/v1"), Duration::from_secs(10))
    }));
    let (events, _) = debate(backend, 1, 1).await;
    let message = error_message(&events);
    assert!(
        message.contains("cannot reach") && message.contains(&addr.to_string()),
        "{message}"
    );
}

#[tokio::test]
async fn cancelling_mid_stream_drops_the_request() {
    let server = MockServer::scripted(vec![Reply::Stall {
        pieces: support::split_words("Slow words"),
        stall: STALL,
    }])
    .await;
    let (tx, mut rx) = mpsc::channel(16);
    let config = DebateConfig {
        feature: "x".into(),
        personas: builtin_panel()[..1].to_vec(),
        rounds: 1,
        max_tokens_per_turn: 50,
        max_tokens_total: None,
    };
    let task = tokio::spawn(run_debate(
        backend(&server, Duration::from_secs(30)),
        config,
        tx,
    ));
    // Wait until tokens flow, then cancel.
    loop {
        if let Some(SimEvent::Token { .. }) = rx.recv().await {
            break;
        }
    }
    let started = Instant::now();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(started.elapsed() < Duration::from_secs(1));
}
