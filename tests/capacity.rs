//! Servers with limits: one that serves one request at a time, one that
//! rate-limits, and ones whose context is small (they say so in their own
//! words, or send an empty stream; some say their size up front).

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use persona_sim::llm::openai::{OpenAiBackend, OpenAiSettings};
use persona_sim::llm::{ChatBackend, ChatMessage, ChatRequest, LlmError};
use persona_sim::persona::builtin_panel;
use persona_sim::sim::debate::{DebateConfig, Outcome, SimEvent, run_debate};
use persona_sim::sim::synth::{BatchResult, SynthEvent, synthesize_batch};
use serde_json::{Value, json};
use support::{MockServer, Reply, echo_reply};
use tokio::sync::mpsc;

fn settings(server: &MockServer) -> OpenAiSettings {
    support::openai_settings(&server.base_url, Duration::from_secs(10))
}

fn backend(server: &MockServer) -> Arc<dyn ChatBackend> {
    Arc::new(OpenAiBackend::new(settings(server)))
}

async fn batch(backend: Arc<dyn ChatBackend>, count: usize) -> (BatchResult, Vec<SynthEvent>) {
    let (tx, mut rx) = mpsc::channel(256);
    let task = tokio::spawn(synthesize_batch(
        backend,
        "people who run small shops".into(),
        count,
        builtin_panel(),
        tx,
    ));
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    (task.await.unwrap(), events)
}

#[tokio::test]
async fn a_single_slot_server_completes_a_batch_of_five() {
    let server = MockServer::single_slot(Duration::from_millis(5), echo_reply).await;
    let (result, events) = batch(backend(&server), 5).await;

    assert_eq!(result.accepted.len(), 5, "failed: {:?}", result.failed);
    assert!(result.failed.is_empty());
    let adapted = result.adapted.expect("the batch adapted");
    assert!(adapted.at_a_time <= 2, "{adapted:?}");
    assert!(adapted.retried >= 1, "{adapted:?}");
    let said = adapted.to_string();
    assert!(
        said.starts_with(&format!(
            "the server handled {} at a time; {} request",
            adapted.at_a_time, adapted.retried
        )),
        "{said}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SynthEvent::Slowed { reason, .. } if reason.contains("cut")))
    );
    // Retries of a cut stream are not the persona's attempts.
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, SynthEvent::Retrying { .. })),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_rate_limited_request_is_sent_again_with_fewer_in_flight() {
    // The first structured request to a new server goes once, unretried
    // (a format probe); a 429 there is sent again through async-openai's
    // retrying client (4 attempts): the fifth 429 reaches the batch.
    let busy = || Reply::Status {
        code: 429,
        body: r#"{"error":{"message":"Rate limit reached","type":"rate_limit_error"}}"#.into(),
    };
    let server = MockServer::start(vec![busy(); 5], Duration::ZERO, echo_reply).await;
    let (result, events) = batch(backend(&server), 1).await;

    assert_eq!(result.accepted.len(), 1, "failed: {:?}", result.failed);
    let adapted = result.adapted.expect("the batch adapted");
    assert_eq!(
        adapted.to_string(),
        "the server handled 5 at a time; 1 request was retried"
    );
    assert!(events.iter().any(
        |e| matches!(e, SynthEvent::Slowed { at_a_time: 5, reason } if reason.contains("429"))
    ));
    assert_eq!(server.requests().len(), 6);
}

#[tokio::test]
async fn a_busy_server_is_asked_again_until_it_answers() {
    // 503 from a server whose queue is full (Ollama), twice past the format
    // probe and async-openai's own retries (5 requests each): 10 -> 5 -> 2
    // at a time.
    let busy = || Reply::Status {
        code: 503,
        body: r#"{"error":"server busy, please try again.  maximum pending requests exceeded"}"#
            .into(),
    };
    let server = MockServer::start(vec![busy(); 10], Duration::ZERO, echo_reply).await;
    let (result, _) = batch(backend(&server), 1).await;
    assert_eq!(result.accepted.len(), 1, "failed: {:?}", result.failed);
    assert_eq!(
        result.adapted.map(|a| (a.at_a_time, a.retried)),
        Some((2, 2))
    );
}

#[tokio::test]
async fn a_cut_with_nothing_else_in_flight_is_not_retried() {
    // One persona, cut three times: each is an ordinary failure.
    let server = MockServer::scripted(vec![Reply::EndsEarly {
        pieces: vec!["{\"name\":".into()],
    }])
    .await;
    let (result, _) = batch(backend(&server), 1).await;
    assert!(result.accepted.is_empty());
    assert!(result.adapted.is_none());
    assert!(
        result.failed[0].1.contains("closed the stream"),
        "{:?}",
        result.failed
    );
    assert_eq!(server.requests().len(), 1);
}

/// The error of one call with this much prompt.
async fn call_error(server: &MockServer, prompt_chars: usize) -> LlmError {
    let backend = backend(server);
    let request = ChatRequest::new(
        vec![
            ChatMessage::system("You are a tester."),
            ChatMessage::user("word ".repeat(prompt_chars / 5)),
        ],
        200,
    );
    let mut stream = backend.stream(request);
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            return e;
        }
    }
    panic!("the call succeeded");
}

#[tokio::test]
async fn overflow_errors_in_each_servers_words_say_the_prompt_is_too_long() {
    let bodies = [
        // llama.cpp server
        (
            json!({"error": {"code": 400, "type": "exceed_context_size_error",
                "message": "the request exceeds the available context size, try increasing it"}}),
            None,
        ),
        // vLLM (older versions: the message at the top level)
        (
            json!({"object": "error", "type": "BadRequestError", "code": 400,
                "message": "This model's maximum context length is 2048 tokens. However, you requested 3300 tokens (3100 in the messages, 200 in the completion). Please reduce the length of the messages or completion."}),
            Some(2048),
        ),
        // vLLM (newer versions) and OpenAI
        (
            json!({"error": {"type": "BadRequestError", "code": 400,
                "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens."}}),
            Some(4096),
        ),
        // llama-cpp-python
        (
            json!({"error": {"type": "invalid_request_error", "code": "context_length_exceeded",
                "message": "Requested tokens (3300) exceed context window of 2048"}}),
            Some(2048),
        ),
    ];
    for (body, context) in bodies {
        let server = MockServer::scripted(vec![Reply::Status {
            code: 400,
            body: body.to_string(),
        }])
        .await;
        let error = call_error(&server, 9_000).await;
        match &error {
            LlmError::ContextOverflow {
                prompt_tokens_estimate,
                context: said,
            } => {
                // Our estimate, or the server's own count where it gives one.
                assert!(
                    (2_900..3_200).contains(prompt_tokens_estimate)
                        || *prompt_tokens_estimate == 3_300,
                    "{error:?}"
                );
                assert_eq!(*said, context, "{body}");
            }
            other => panic!("{body}: {other:?}"),
        }
        let shown = error.to_string();
        assert!(
            shown.starts_with("the prompt is too long for this server's context ("),
            "{shown}"
        );
        assert!(shown.contains(" tokens"), "{shown}");
    }
}

#[tokio::test]
async fn an_empty_stream_after_a_long_prompt_is_an_overflow() {
    let empty = || Reply::EndsEarly { pieces: vec![] };
    let server = MockServer::scripted(vec![empty(), empty()]).await;
    // ~10k tokens: the server had no room.
    let error = call_error(&server, 30_000).await;
    assert!(
        matches!(error, LlmError::ContextOverflow { prompt_tokens_estimate, context: None }
            if prompt_tokens_estimate > 9_000),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("too long for this server's context")
    );
    // After a short prompt it is what it says.
    let error = call_error(&server, 500).await;
    assert_eq!(error, LlmError::EndedEarly);
}

/// A server with a 2,048-token context: a prompt over that (by the
/// estimate of 3 characters a token) gets llama.cpp's error.
fn small_context(body: &Value) -> Reply {
    let chars: usize = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap_or("").chars().count())
        .sum();
    if chars / 3 > 2_048 {
        return Reply::Status {
            code: 400,
            body: json!({"error": {"code": 400, "type": "exceed_context_size_error",
                "message": "the request exceeds the available context size, try increasing it"}})
            .to_string(),
        };
    }
    echo_reply(body)
}

/// A long feature: 12,000 characters.
fn long_feature() -> String {
    let mut feature = String::from("Offline mode for field workers. ");
    while feature.len() < 12_000 {
        feature.push_str(
            "Records sync when the connection returns, conflicts are shown side by side. ",
        );
    }
    feature.truncate(12_000);
    feature
}

async fn long_debate(backend: Arc<dyn ChatBackend>) -> Vec<SimEvent> {
    let (tx, mut rx) = mpsc::channel(64);
    let config = DebateConfig {
        feature: long_feature(),
        personas: builtin_panel()[..3].to_vec(),
        rounds: 2,
        max_tokens_per_turn: 200,
        max_tokens_total: None,
    };
    let task = tokio::spawn(run_debate(backend, config, tx));
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    task.await.unwrap();
    events
}

fn outcome(events: &[SimEvent]) -> &Outcome {
    events
        .iter()
        .find_map(|e| match e {
            SimEvent::Done { outcome } => Some(outcome),
            _ => None,
        })
        .expect("a Done event")
}

fn errors(events: &[SimEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            SimEvent::Error { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_long_feature_overflows_a_small_server_and_says_so() {
    let server = MockServer::start(Vec::new(), Duration::ZERO, small_context).await;
    let events = long_debate(backend(&server)).await;
    assert_eq!(*outcome(&events), Outcome::Failed);
    let errors = errors(&events);
    assert!(
        errors[0].contains("the prompt is too long for this server's context"),
        "{errors:?}"
    );
}

#[tokio::test]
async fn context_tokens_makes_the_debate_trim_to_fit() {
    let server = MockServer::start(Vec::new(), Duration::ZERO, small_context).await;
    let backend: Arc<dyn ChatBackend> = Arc::new(OpenAiBackend::new(OpenAiSettings {
        context_tokens: Some(2048),
        ..settings(&server)
    }));
    assert_eq!(backend.context_window(), Some(2048));
    let events = long_debate(backend).await;
    assert_eq!(
        *outcome(&events),
        Outcome::Completed,
        "{:?}",
        errors(&events)
    );
    let turns = events
        .iter()
        .filter(|e| matches!(e, SimEvent::TurnEnded { .. }))
        .count();
    assert_eq!(turns, 6);
    // Nothing asked of the server: the flag said it.
    assert!(server.requests().len() == 6);
}

#[tokio::test]
async fn the_context_is_discovered_from_the_models_list() {
    let models = json!({"object": "list", "data": [
        {"id": "other-model", "object": "model", "max_model_len": 32768},
        {"id": "gpt-4o-mini", "object": "model", "max_model_len": 2048}
    ]});
    let server = MockServer::describing(Some(models), None, small_context).await;
    let backend = backend(&server);
    assert_eq!(backend.context_window(), None, "not asked yet");
    assert_eq!(backend.discover_context().await, Some(2048));
    assert_eq!(backend.context_window(), Some(2048));
    // The debate plans around it: the long feature fits.
    let events = long_debate(backend).await;
    assert_eq!(
        *outcome(&events),
        Outcome::Completed,
        "{:?}",
        errors(&events)
    );
}

#[tokio::test]
async fn the_context_is_discovered_from_llama_cpp_props() {
    let props = json!({"default_generation_settings": {"n_ctx": 4096, "temperature": 0.8},
        "total_slots": 1});
    let server = MockServer::describing(None, Some(props), echo_reply).await;
    let backend = backend(&server);
    assert_eq!(backend.discover_context().await, Some(4096));
}

#[tokio::test]
async fn a_large_or_unknown_context_is_not_planned_around() {
    let models = json!({"data": [{"id": "gpt-4o-mini", "max_model_len": 131072}]});
    let server = MockServer::describing(Some(models), None, echo_reply).await;
    assert_eq!(backend(&server).discover_context().await, None);
    // Ollama: a models list without sizes, no /props.
    let models = json!({"data": [{"id": "llama3.2", "object": "model", "owned_by": "library"}]});
    let server = MockServer::describing(Some(models), None, echo_reply).await;
    assert_eq!(backend(&server).discover_context().await, None);
}

// --- the binary, as a user runs it ---

use support::binary::{command, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_says_how_it_adapted_to_a_single_slot_server() {
    let server = MockServer::single_slot(Duration::from_millis(5), echo_reply).await;
    let dir = tempfile::tempdir().unwrap();
    let out = support::binary::run(command(
        dir.path(),
        Some(&server.base_url),
        &[
            "personas",
            "generate",
            "--brief",
            "shop owners",
            "--count",
            "5",
            "--dry-run",
        ],
    ))
    .await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("5 of 5 generated (the server handled "),
        "{stderr}"
    );
    assert!(stderr.contains(" at a time; "), "{stderr}");
    assert!(stderr.contains("retried)"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_context_tokens_env_lets_a_long_feature_run_on_a_small_server() {
    let server = MockServer::start(Vec::new(), Duration::ZERO, small_context).await;
    let dir = tempfile::tempdir().unwrap();
    let feature = dir.path().join("feature.txt");
    std::fs::write(&feature, long_feature()).unwrap();
    let feature = feature.to_str().unwrap();
    let args = [
        "simulate",
        "--feature-file",
        feature,
        "--personas",
        "1,2",
        "--rounds",
        "1",
    ];
    let out = support::binary::run(command(dir.path(), Some(&server.base_url), &args)).await;
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("the prompt is too long for this server's context ("),
        "{stderr}"
    );
    let mut cmd = command(dir.path(), Some(&server.base_url), &args);
    cmd.env("PERSONA_SIM_CONTEXT_TOKENS", "2048");
    let out = support::binary::run(cmd).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("I like it but worry about cost"));
}
