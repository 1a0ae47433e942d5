//! Metrics and health over real HTTP: the app's own server on an ephemeral
//! port, a debate against the mock OpenAI server, then `/metrics` scraped
//! and parsed line by line.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use persona_sim::llm::ChatBackend;
use persona_sim::llm::openai::OpenAiBackend;
use persona_sim::observe::http::serve;
use persona_sim::observe::instrument::Instrumented;
use persona_sim::observe::metrics::Metrics;
use persona_sim::persona::builtin_panel;
use persona_sim::sim::debate::DebateConfig;
use persona_sim::sim::session::Session;
use support::{MockServer, Reply};

fn backend(base_url: &str, metrics: &Arc<Metrics>) -> Arc<dyn ChatBackend> {
    let inner = Arc::new(OpenAiBackend::new(support::openai_settings(
        base_url,
        Duration::from_secs(5),
    )));
    Instrumented::wrap(inner, Some(metrics.clone()), Duration::from_secs(20))
}

async fn debate(backend: Arc<dyn ChatBackend>, personas: usize) -> Session {
    let config = DebateConfig {
        feature: "Offline mode".into(),
        personas: builtin_panel()[..personas].to_vec(),
        rounds: 1,
        max_tokens_per_turn: 100,
        max_tokens_total: None,
    };
    support::run_to_end(backend, &config).await
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// A strict reader of the Prometheus text format: every sample line is
/// `name{labels} value`; labels are sorted into the key so lookups do not
/// depend on their order.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let key = match series.split_once('{') {
            None => series.to_string(),
            Some((name, labels)) => {
                let labels = labels
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let mut pairs: Vec<&str> = labels.split(',').collect();
                for pair in &pairs {
                    let (k, v) = pair
                        .split_once('=')
                        .unwrap_or_else(|| panic!("bad label: {line}"));
                    assert!(
                        k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                        "{line}"
                    );
                    assert!(v.starts_with('"') && v.ends_with('"'), "{line}");
                }
                pairs.sort_unstable();
                format!("{name}{{{}}}", pairs.join(","))
            }
        };
        assert!(
            samples.insert(key.clone(), value).is_none(),
            "duplicate series {key}"
        );
    }
    samples
}

fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("no series {key}; have {:#?}", samples.keys()))
}

#[tokio::test]
async fn a_debate_moves_the_counters_histograms_and_tokens_by_the_right_amounts() {
    let metrics = Arc::new(Metrics::new());
    let addr = serve(metrics.clone(), "127.0.0.1:0".parse().unwrap(), "test")
        .await
        .unwrap();
    let before = parse(&get(addr, "/metrics").await.1);
    assert!(
        value(&before, "app_heartbeat") > 1.7e9,
        "heartbeat is unix time"
    );
    // Every known series is there from the first scrape, at 0.
    for status in ["success", "error"] {
        let series =
            format!("app_requests_total{{endpoint=\"generate_response\",status=\"{status}\"}}");
        assert_eq!(before.get(&series), Some(&0.0), "{series}");
    }

    let server = MockServer::persona_echo(Duration::ZERO).await;
    let session = debate(backend(&server.base_url, &metrics), 3).await;
    assert!(session.report.is_some());

    let (status, text) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    let after = parse(&text);
    let turn_ok = "app_requests_total{endpoint=\"generate_response\",status=\"success\"}";
    let report_ok = "app_requests_total{endpoint=\"generate_feedback_report\",status=\"success\"}";
    assert_eq!(value(&after, turn_ok), 3.0);
    assert_eq!(value(&after, report_ok), 1.0);
    assert_eq!(
        value(
            &after,
            "app_response_time_seconds_count{endpoint=\"generate_response\"}"
        ),
        3.0
    );
    assert_eq!(
        value(
            &after,
            "app_response_time_seconds_bucket{endpoint=\"generate_response\",le=\"+Inf\"}"
        ),
        3.0
    );
    assert!(
        value(
            &after,
            "app_response_time_seconds_sum{endpoint=\"generate_response\"}"
        ) > 0.0
    );
    // The mock reports 42 prompt tokens per call (3 turns + 1 report).
    let tokens_in =
        "app_llm_tokens_total{backend=\"openai\",direction=\"in\",model=\"gpt-4o-mini\"}";
    assert_eq!(value(&after, tokens_in), 4.0 * 42.0);
    let out_expected = session.usage.completion_tokens as f64;
    let tokens_out =
        "app_llm_tokens_total{backend=\"openai\",direction=\"out\",model=\"gpt-4o-mini\"}";
    assert_eq!(value(&after, tokens_out), out_expected);
    assert_eq!(
        value(
            &after,
            "app_llm_time_to_first_token_seconds_count{backend=\"openai\",model=\"gpt-4o-mini\"}"
        ),
        4.0
    );

    // A failing call is counted as an error.
    let failing = MockServer::scripted(vec![Reply::Status {
        code: 500,
        body: r#"{"error":{"message":"boom"}}"#.into(),
    }])
    .await;
    debate(backend(&failing.base_url, &metrics), 1).await;
    let after_error = parse(&get(addr, "/metrics").await.1);
    assert_eq!(
        value(
            &after_error,
            "app_requests_total{endpoint=\"generate_response\",status=\"error\"}"
        ),
        1.0
    );
    assert_eq!(value(&after_error, turn_ok), 3.0);
}

#[tokio::test]
async fn health_endpoints_report_healthy_then_degraded_then_healthy_again() {
    let metrics = Arc::new(Metrics::new());
    let addr = serve(metrics.clone(), "127.0.0.1:0".parse().unwrap(), "staging")
        .await
        .unwrap();
    assert_eq!(get(addr, "/healthz").await, (200, "OK".to_string()));
    let (status, body) = get(addr, "/health").await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "healthy");
    assert_eq!(json["service"], "persona-sim");
    assert_eq!(json["environment"], "staging");
    assert!(json.get("reasons").is_none());

    // A backend nobody listens on: the last call could not reach it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    debate(backend(&url, &metrics), 1).await;
    let json: serde_json::Value = serde_json::from_str(&get(addr, "/health").await.1).unwrap();
    assert_eq!(json["status"], "degraded");
    let reasons = json["reasons"].to_string();
    assert!(reasons.contains("backend unreachable"), "{reasons}");
    metrics.set_store_problem(Some("read-only file system".into()));
    let json: serde_json::Value = serde_json::from_str(&get(addr, "/health").await.1).unwrap();
    assert_eq!(json["reasons"].as_array().unwrap().len(), 2, "{json}");
    assert!(json["reasons"].to_string().contains("store not writable"));

    // The next call that gets through clears the backend problem.
    metrics.set_store_problem(None);
    let server = MockServer::persona_echo(Duration::ZERO).await;
    debate(backend(&server.base_url, &metrics), 1).await;
    let json: serde_json::Value = serde_json::from_str(&get(addr, "/health").await.1).unwrap();
    assert_eq!(json["status"], "healthy", "{json}");
    // Still up for the load balancer throughout.
    assert_eq!(get(addr, "/healthz").await.0, 200);
}

#[tokio::test]
async fn a_taken_port_is_an_error_to_report_not_a_crash() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let err = serve(Arc::new(Metrics::new()), addr, "test")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
}
