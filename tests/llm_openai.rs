//! The real async-openai path against a mock OpenAI-compatible server.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use persona_sim::llm::openai::{OpenAiBackend, OpenAiSettings};
use persona_sim::persona::builtin_panel;
use persona_sim::sim::debate::{DebateConfig, Outcome, SimEvent, Transcript, run_debate};
use support::{MockServer, Reply};
use tokio::sync::mpsc;

fn backend(server: &MockServer, timeout: Duration) -> Arc<OpenAiBackend> {
    Arc::new(OpenAiBackend::new(OpenAiSettings {
        api_key: Some("sk-test-key".into()),
        base_url: server.base_url.clone(),
        model: "gpt-4o-mini".into(),
        temperature: 0.7,
        first_token_timeout: timeout,
        stall_timeout: timeout,
    }))
}

async fn debate(
    backend: Arc<OpenAiBackend>,
    personas: usize,
    rounds: u32,
) -> (Vec<SimEvent>, Transcript) {
    let (tx, mut rx) = mpsc::channel(16);
    let config = DebateConfig {
        feature: "Offline mode for field workers".into(),
        personas: builtin_panel()[..personas].to_vec(),
        rounds,
        max_tokens_per_turn: 200,
        max_tokens_total: None,
    };
    let task = tokio::spawn(run_debate(backend, config, tx));
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    (events, task.await.unwrap())
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

    // Event sequence: per turn Started, Tokens.., Usage, Ended; then Done.
    let mut expected_turn = 0;
    let mut i = 0;
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
            matches!(events[i], SimEvent::Usage { turn, prompt_tokens: 42, completion_tokens: 6 } if turn == expected_turn)
        );
        assert_eq!(
            events[i + 1],
            SimEvent::TurnEnded {
                turn: expected_turn
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
        assert_eq!(r.authorization.as_deref(), Some("Bearer sk-test-key"));
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

#[tokio::test]
async fn stall_mid_stream_times_out() {
    let server = MockServer::scripted(vec![Reply::Stall {
        pieces: support::split_words("Let me think"),
    }])
    .await;
    let started = Instant::now();
    let (events, transcript) = debate(backend(&server, Duration::from_millis(400)), 1, 1).await;
    let message = error_message(&events);
    assert!(message.contains("stalled"), "{message}");
    assert_eq!(transcript.turns[0].text, "Let me think");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn no_first_token_times_out() {
    let server = MockServer::scripted(vec![Reply::Stall { pieces: vec![] }]).await;
    let (events, _) = debate(backend(&server, Duration::from_millis(400)), 1, 1).await;
    let message = error_message(&events);
    assert!(message.contains("no reply from the model"), "{message}");
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
    assert_eq!(transcript.usage.total(), 0);
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
        base_url: format!("http://{addr}/v1"),
        model: "m".into(),
        temperature: 0.7,
        first_token_timeout: Duration::from_secs(10),
        stall_timeout: Duration::from_secs(10),
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
