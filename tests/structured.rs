//! Structured output against servers that do not take a JSON schema, a
//! report cut by the token limit, and server errors as one readable line;
//! all against the mock OpenAI-compatible server over real HTTP.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use persona_sim::llm::openai::OpenAiBackend;
use persona_sim::llm::{ChatBackend, ChatMessage, ChatRequest, JsonSchema, LlmError};
use persona_sim::persona::builtin_panel;
use persona_sim::sim::debate::{DebateConfig, SimEvent, Turn};
use persona_sim::sim::report::{ReportFormat, generate_report, report_markdown};
use persona_sim::sim::session::{Session, SessionStatus};
use persona_sim::sim::synth::{BatchResult, synthesize_batch, synthesize_one};
use support::{MockServer, Reply, format_type, is_report_request};

fn backend(server: &MockServer) -> Arc<dyn ChatBackend> {
    Arc::new(OpenAiBackend::new(support::openai_settings(
        &server.base_url,
        Duration::from_secs(10),
    )))
}

fn config() -> DebateConfig {
    DebateConfig {
        feature: "Offline mode for field workers".into(),
        personas: builtin_panel()[..2].to_vec(),
        rounds: 1,
        max_tokens_per_turn: 200,
        max_tokens_total: None,
    }
}

async fn debate_with_report(backend: Arc<dyn ChatBackend>) -> Session {
    let config = config();
    support::run_to_end(backend, &config).await
}

async fn batch(backend: Arc<dyn ChatBackend>, count: usize) -> BatchResult {
    let (tx, mut rx) = mpsc::channel(1024);
    let task = tokio::spawn(synthesize_batch(
        backend,
        "people who run small shops".into(),
        count,
        builtin_panel(),
        tx,
    ));
    while rx.recv().await.is_some() {}
    task.await.unwrap()
}

/// The response format of every structured request (report or persona),
/// in order.
fn structured_formats(server: &MockServer) -> Vec<String> {
    server
        .requests()
        .into_iter()
        .map(|r| r.body)
        .filter(|b| is_report_request(b) || is_persona_request(b))
        .map(|b| format_type(&b))
        .collect()
}

fn is_persona_request(body: &Value) -> bool {
    body["messages"][0]["content"]
        .as_str()
        .is_some_and(|s| s.contains("personas for product research"))
}

fn count(formats: &[String], kind: &str) -> usize {
    formats.iter().filter(|f| *f == kind).count()
}

/// The report and a batch of 5, on one backend (one session).
async fn report_and_batch_succeed(server: &MockServer) -> Vec<String> {
    let backend = backend(server);
    let session = debate_with_report(backend.clone()).await;
    assert_eq!(session.status, SessionStatus::Completed);
    assert!(session.report_error.is_none(), "{:?}", session.report_error);
    let report = session.report.as_ref().expect("a report");
    assert_eq!(report.format, ReportFormat::Structured, "{report:?}");
    assert_eq!(report.personas.len(), 2);
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    let result = batch(backend, 5).await;
    assert_eq!(result.accepted.len(), 5, "{:?}", result.failed);
    assert!(result.failed.is_empty());
    structured_formats(server)
}

#[tokio::test]
async fn a_server_that_answers_json_schema_with_a_500_gets_json_object_at_once() {
    let server = MockServer::rejecting_json_schema().await;
    let formats = report_and_batch_succeed(&server).await;
    // The schema was sent once, not retried three times, and never again.
    assert_eq!(formats[0], "json_schema");
    assert_eq!(count(&formats, "json_schema"), 1, "{formats:?}");
    assert_eq!(count(&formats, "json_object"), 6, "{formats:?}");
    // The schema travels in the prompt instead.
    let asked = server.requests();
    let report = asked
        .iter()
        .map(|r| &r.body)
        .filter(|b| is_report_request(b))
        .nth(1)
        .unwrap();
    let system = report["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("JSON schema"), "{system}");
    assert!(system.contains("\"insights\""), "{system}");
    // And in `response_format`, which llama-cpp-python enforces.
    assert_eq!(report["response_format"]["schema"]["type"], "object");
}

#[tokio::test]
async fn a_server_that_takes_no_format_at_all_gets_plain_text_with_the_schema() {
    let server = MockServer::rejecting_every_format().await;
    let formats = report_and_batch_succeed(&server).await;
    assert_eq!(&formats[..3], ["json_schema", "json_object", "json_object"]);
    assert_eq!(count(&formats, "json_schema"), 1, "{formats:?}");
    assert_eq!(count(&formats, "json_object"), 2, "{formats:?}");
    assert_eq!(count(&formats, "text"), 6, "{formats:?}");
}

#[tokio::test]
async fn a_server_that_takes_only_json_object_is_asked_the_schema_once() {
    let server = MockServer::json_object_only().await;
    let formats = report_and_batch_succeed(&server).await;
    assert_eq!(count(&formats, "json_schema"), 1, "{formats:?}");
    // One json_object with the schema key (refused), then six without.
    assert_eq!(count(&formats, "json_object"), 7, "{formats:?}");
    let with_key = server
        .requests()
        .iter()
        .filter(|r| r.body["response_format"].get("schema").is_some())
        .count();
    assert_eq!(with_key, 1);
}

#[tokio::test]
async fn a_batch_on_a_new_server_probes_the_schema_once_not_per_request() {
    let server = MockServer::rejecting_json_schema().await;
    let result = batch(backend(&server), 5).await;
    assert_eq!(result.accepted.len(), 5, "{:?}", result.failed);
    let formats = structured_formats(&server);
    assert_eq!(count(&formats, "json_schema"), 1, "{formats:?}");
    assert_eq!(count(&formats, "json_object"), 5, "{formats:?}");
}

#[tokio::test]
async fn a_server_that_takes_the_schema_keeps_getting_it() {
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let formats = report_and_batch_succeed(&server).await;
    assert_eq!(count(&formats, "json_schema"), 6, "{formats:?}");
}

#[tokio::test]
async fn a_busy_server_is_retried_in_the_same_format_not_downgraded() {
    let server = MockServer::start(
        vec![Reply::Status {
            code: 503,
            body: r#"{"error":{"message":"Loading model"}}"#.into(),
        }],
        Duration::ZERO,
        support::echo_reply,
    )
    .await;
    let persona = synthesize_one(&*backend(&server), "a shop owner", &builtin_panel())
        .await
        .unwrap();
    assert!(persona.name.starts_with("Mock Person"));
    let formats = structured_formats(&server);
    assert_eq!(formats, ["json_schema", "json_schema"]);
}

#[tokio::test]
async fn validation_errors_surface_at_once_without_a_downgrade() {
    for (code, body, expected) in [
        (
            401,
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#,
            "answered HTTP 401: Incorrect API key provided",
        ),
        (
            404,
            r#"{"error":{"message":"The model `gpt-9` does not exist"}}"#,
            "answered HTTP 404: The model `gpt-9` does not exist",
        ),
    ] {
        let server = MockServer::start(Vec::new(), Duration::ZERO, move |_| Reply::Status {
            code,
            body: body.into(),
        })
        .await;
        let error = synthesize_one(&*backend(&server), "a shop owner", &builtin_panel())
            .await
            .unwrap_err();
        assert!(error.contains(expected), "{error}");
        assert_eq!(server.requests().len(), 1, "HTTP {code} is not retried");
    }
}

fn turns() -> Vec<Turn> {
    builtin_panel()[..2]
        .iter()
        .map(|p| {
            let mut turn = Turn::new(p, 1);
            turn.text = "I like it but worry about cost.".into();
            turn.complete = true;
            turn
        })
        .collect()
}

#[tokio::test]
async fn a_report_cut_by_the_token_limit_is_partial_and_keeps_the_raw_text() {
    let raw =
        r#"{"summary": "Two personas discussed offline mode; both", "personas": [{"name": "Maria"#;
    let server = MockServer::scripted(vec![Reply::finished(raw, "length")]).await;
    let (tx, mut rx) = mpsc::channel(1024);
    let report = generate_report(&*backend(&server), "Offline mode", &turns(), &tx)
        .await
        .expect("a report");
    drop(tx);
    assert!(report.partial);
    assert_eq!(report.format, ReportFormat::PlainText);
    assert_eq!(report.text.as_deref(), Some(raw));
    assert!(
        report.notes[0].contains("ran out of room"),
        "{:?}",
        report.notes
    );
    assert!(
        !report.notes.iter().any(|n| n.contains("listed no")),
        "{:?}",
        report.notes
    );
    assert_eq!(report.usage.unwrap().completion_tokens, 19);
    let md = report_markdown(&report);
    assert!(md.contains("ran out of room"), "{md}");
    assert!(md.contains("Two personas discussed"), "{md}");
    let mut ready = None;
    while let Some(event) = rx.recv().await {
        if let SimEvent::ReportReady { report } = event {
            ready = Some(report);
        }
    }
    assert!(ready.expect("ReportReady").partial);
}

#[tokio::test]
async fn a_finished_report_that_holds_nothing_is_not_a_complete_one() {
    let server = MockServer::scripted(vec![Reply::text("{}")]).await;
    let (tx, mut rx) = mpsc::channel(1024);
    // Not a report at all: it fails (the face offers to retry), never
    // "completed" with nothing in it.
    let report = generate_report(&*backend(&server), "Offline mode", &turns(), &tx).await;
    assert!(report.is_none());
    drop(tx);
    let mut failed = None;
    while let Some(event) = rx.recv().await {
        if let SimEvent::ReportFailed { message } = event {
            failed = Some(message);
        }
    }
    let message = failed.expect("a report_failed event");
    assert!(
        message.contains("no summary and no usable finding"),
        "{message}"
    );
}

/// The error of a plain (unstructured) request answered with `reply`.
async fn error_for(reply: Reply) -> (String, MockServer) {
    let server = MockServer::start(Vec::new(), Duration::ZERO, move |_| reply.clone()).await;
    let backend = backend(&server);
    let mut stream = backend.stream(ChatRequest::new(vec![ChatMessage::user("hi")], 10));
    let error: LlmError = loop {
        match stream.next().await {
            Some(Err(e)) => break e,
            Some(Ok(_)) => continue,
            None => panic!("no error"),
        }
    };
    (error.to_string(), server)
}

fn host(server: &MockServer) -> String {
    server
        .base_url
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_string()
}

#[tokio::test]
async fn server_errors_read_as_one_line_with_status_message_and_server() {
    let (line, server) = error_for(Reply::Status {
        code: 500,
        body: r#"{"error":{"message":"CUDA out of memory","type":"server_error"}}"#.into(),
    })
    .await;
    assert_eq!(
        line,
        format!(
            "the server at {} answered HTTP 500: CUDA out of memory",
            host(&server)
        )
    );

    let (line, _) = error_for(Reply::pydantic_500()).await;
    assert!(
        line.ends_with(
            "answered HTTP 500: Input should be 'text' or 'json_object' (body.response_format.type)"
        ),
        "{line}"
    );
    assert!(!line.contains('{'), "{line}");

    let (line, _) = error_for(Reply::Raw {
        status: 502,
        content_type: "text/html".into(),
        body: "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>"
            .into(),
    })
    .await;
    assert!(
        line.ends_with("answered HTTP 502: 502 Bad Gateway"),
        "{line}"
    );

    let (line, _) = error_for(Reply::Raw {
        status: 500,
        content_type: "text/plain".into(),
        body: "Traceback (most recent call last):\n  File \"/opt/venv/lib/python3.11/site-packages/llama_cpp/server/app.py\", line 301, in create_chat_completion\n    raise ValueError(msg)\nValueError: Requested tokens (4100) exceed context window of 2048\n".into(),
    })
    .await;
    // A traceback that says the prompt did not fit is read as that, with
    // the server's own numbers.
    assert_eq!(
        line, "the prompt is too long for this server's context (4100 tokens; it holds 2048)",
        "{line}"
    );
    assert!(
        !line.contains("site-packages") && !line.contains('\n'),
        "{line}"
    );

    let (line, server) = error_for(Reply::Status {
        code: 401,
        body: r#"{"error":{"message":"Incorrect API key provided: sk-test","type":"invalid_request_error","code":"invalid_api_key"}}"#.into(),
    })
    .await;
    assert_eq!(
        line,
        format!(
            "the server at {} answered HTTP 401: Incorrect API key provided: sk-test",
            host(&server)
        )
    );

    let (line, _) = error_for(Reply::Status {
        code: 422,
        body: format!(r#"{{"detail":"{}"}}"#, "x".repeat(500)),
    })
    .await;
    assert!(line.ends_with('…') && line.chars().count() < 300, "{line}");
}

#[tokio::test]
async fn a_schema_request_to_an_unknown_server_is_not_retried_on_a_format_500() {
    let server = MockServer::rejecting_every_format().await;
    let backend = backend(&server);
    let mut request = ChatRequest::new(vec![ChatMessage::user("hi")], 10);
    request.json_schema = Some(JsonSchema {
        name: "x".into(),
        schema: serde_json::json!({"type": "object"}),
    });
    let mut stream = backend.stream(request);
    while let Some(item) = stream.next().await {
        item.unwrap();
    }
    let formats: Vec<String> = server
        .requests()
        .iter()
        .map(|r| format_type(&r.body))
        .collect();
    assert_eq!(
        formats,
        ["json_schema", "json_object", "json_object", "text"]
    );
}

/// A key the server refuses, or a server out of quota, fails in every
/// format: one request (the retrying client may repeat a 429 with
/// backoff, but always with the schema), never a walk down the formats.
#[tokio::test]
async fn an_auth_or_quota_error_is_not_taken_for_a_rejected_format() {
    for code in [401, 429] {
        let server = MockServer::start(Vec::new(), Duration::ZERO, move |_| Reply::Status {
            code,
            body: r#"{"error":{"message":"no","type":"invalid_request_error"}}"#.into(),
        })
        .await;
        let started = std::time::Instant::now();
        let error = synthesize_one(&*backend(&server), "a shop owner", &builtin_panel())
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains(&format!("HTTP {code}")),
            "{error}"
        );
        let formats = structured_formats(&server);
        eprintln!(
            "HTTP {code}: {} requests in {:?}: {formats:?}",
            formats.len(),
            started.elapsed()
        );
        assert!(
            formats.iter().all(|f| f == "json_schema"),
            "{code}: {formats:?}"
        );
        if code == 401 {
            assert_eq!(formats.len(), 1, "{formats:?}");
        }
    }
}
