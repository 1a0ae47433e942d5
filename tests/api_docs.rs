//! The API's document and its guards: every route the router serves is in
//! the OpenAPI document (and the router answers every route its list
//! names), the document and `/docs` are open and `/docs` loads nothing from
//! the internet, the mirror schemas match what the core types serialise,
//! the per-key rate limit, and the HTTP metrics by route pattern. The
//! server runs in-process on 127.0.0.1:0.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use persona_sim::api_keys::KeyStore;
use persona_sim::observe::http::{Limits, serve_router};
use persona_sim::observe::metrics::Metrics;
use persona_sim::persona::store::{self, StorePaths};
use persona_sim::persona::{BUILTIN_PANEL_JSON, parse_panel, stats};
use persona_sim::serve::state::ApiState;
use persona_sim::serve::{self, PERSONA_PREFIXES, ServeOptions};
use serde_json::Value;

struct Server {
    base: String,
    keys: Vec<String>,
    _dir: tempfile::TempDir,
}

/// A server on 127.0.0.1:0 over a copy of the built-in panel, with two keys.
async fn start(rate_limit: u32) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let paths = StorePaths::for_file(dir.path().join("personas.json"));
    store::load(&paths).unwrap();
    let key_store = KeyStore::in_dir(dir.path());
    let keys = vec![
        key_store.create("alice").unwrap(),
        key_store.create("bob").unwrap(),
    ];
    let metrics = Arc::new(Metrics::new());
    let state = ApiState::new(
        persona_sim::persona::panel_store::PanelStore::File(paths),
        dir.path().join("sessions"),
        persona_sim::api_keys::Keys::File(key_store),
        None,
        Some(metrics.clone()),
        "test".into(),
    );
    let options = ServeOptions {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        rate_limit,
        ..ServeOptions::default()
    };
    let app = serve::router(state, &options).unwrap();
    let listener = tokio::net::TcpListener::bind(options.bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_router(
        listener,
        app,
        Limits::default(),
        metrics.connections(),
    ));
    Server {
        base: format!("http://{addr}"),
        keys,
        _dir: dir,
    }
}

async fn send(
    server: &Server,
    method: &str,
    path: &str,
    key: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let client = reqwest::Client::new();
    let mut request = client.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{}{path}", server.base),
    );
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    if method == "POST" || method == "PATCH" {
        request = request
            .header("content-type", "application/json")
            .body("{}");
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

fn document() -> Value {
    serde_json::from_str(serve::docs::openapi_json()).unwrap()
}

/// (METHOD, path) of every operation in the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            found.insert((method.to_uppercase(), path.clone()));
        }
    }
    found
}

#[test]
fn every_route_is_documented_and_every_documented_route_is_served() {
    let doc = document();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    // The alias prefix is documented once, under /v1/personas.
    let [main, alias] = PERSONA_PREFIXES;
    let served: BTreeSet<(String, String)> = serve::routes()
        .into_iter()
        .map(|(method, path)| {
            let path = match path.strip_prefix(alias) {
                Some(rest) if !path.starts_with(main) => format!("{main}{rest}"),
                _ => path,
            };
            (method.to_string(), path)
        })
        .collect();
    let documented = documented(&doc);
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served, not in the document: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "in the document, not served: {unserved:?}"
    );
    assert!(
        doc["info"]["description"].as_str().unwrap().contains(alias),
        "the description names the alias"
    );
    // Operation ids are unique (clients generated from the document).
    let ids: Vec<&str> = documented
        .iter()
        .map(|(method, path)| {
            doc["paths"][path][method.to_lowercase()]["operationId"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ids.len(),
        "{ids:?}"
    );
    // Every key route asks for the bearer scheme, the open ones for none.
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for (method, path) in &documented {
        let security = &doc["paths"][path][method.to_lowercase()]["security"];
        if path.starts_with("/v1/") {
            assert_eq!(
                security[0]["bearer"],
                serde_json::json!([]),
                "{method} {path}"
            );
        } else {
            assert!(security.is_null(), "{method} {path} needs no key");
        }
    }
}

#[test]
fn the_work_routes_document_their_answers() {
    let doc = document();
    let op = |method: &str, path: &str| doc["paths"][path][method].clone();
    let statuses = |op: &Value| -> BTreeSet<String> {
        op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let set =
        |codes: &[&str]| -> BTreeSet<String> { codes.iter().map(|c| c.to_string()).collect() };
    let generate = op("post", "/v1/personas/generate");
    assert_eq!(
        statuses(&generate),
        set(&[
            "200", "201", "202", "400", "401", "422", "429", "502", "503"
        ])
    );
    let start = op("post", "/v1/debates");
    assert_eq!(
        statuses(&start),
        set(&["202", "400", "401", "422", "429", "503"])
    );
    for op in [&generate, &start] {
        assert!(op["responses"]["202"]["headers"]["Location"].is_object());
        assert!(op["responses"]["503"]["headers"]["Retry-After"].is_object());
        let busy = op["responses"]["503"]["description"].as_str().unwrap();
        assert!(
            busy.contains("busy") && busy.contains("no_backend"),
            "{busy}"
        );
    }
    assert_eq!(
        statuses(&op("delete", "/v1/debates/{id}")),
        set(&["200", "401", "404", "409", "429", "503"])
    );
    let events = op("get", "/v1/debates/{id}/events");
    assert!(events["responses"]["200"]["content"]["text/event-stream"].is_object());
    assert!(
        events["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "Last-Event-ID" && p["in"] == "header")
    );
}

#[tokio::test]
async fn the_router_answers_every_route_in_its_list() {
    let server = start(0).await;
    let key = server.keys[0].as_str();
    for (method, path) in serve::routes() {
        let path = path.replace("{id}", "999999");
        let (status, _, body) = send(&server, method, &path, Some(key)).await;
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert!(
            !body.contains("no such route"),
            "{method} {path} is not routed: {status} {body}"
        );
    }
}

#[tokio::test]
async fn the_document_and_docs_page_are_open_and_load_nothing_from_outside() {
    let server = start(0).await;
    let (status, headers, body) = send(&server, "GET", "/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc, document());

    let (status, headers, page) = send(&server, "GET", "/docs", None).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.contains("/openapi.json"),
        "the page reads the document"
    );
    // No script, style sheet, font or image from another host: every
    // src/href is relative, nothing is imported.
    let lower = page.to_lowercase();
    for attr in ["src=", "href="] {
        for (at, _) in lower.match_indices(attr) {
            let value = lower[at + attr.len()..].trim_start_matches(['"', '\'']);
            assert!(
                value.starts_with('/') || value.starts_with('#'),
                "non-local {attr} at {}",
                &page[at..(at + 80).min(page.len())]
            );
        }
    }
    for banned in ["@import", "url(http", "//cdn", "<link "] {
        assert!(!lower.contains(banned), "the page uses {banned}");
    }
    assert!(!lower.contains("<script src"), "scripts are inline");
    // The page's policy forbids other origins even if one slipped in.
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
}

#[test]
fn the_mirror_schemas_match_what_the_core_types_serialise() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let properties = |name: &str| -> BTreeSet<String> {
        schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {name}"))
            .keys()
            .cloned()
            .collect()
    };
    let panel = parse_panel(BUILTIN_PANEL_JSON).unwrap();
    let with_age = panel.iter().find(|p| p.age.is_some()).unwrap().clone();
    let mut with_age = with_age;
    with_age.extra.clear();
    let keys = |v: Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(
        properties("Persona"),
        keys(serde_json::to_value(&with_age).unwrap())
    );
    let stats = serde_json::to_value(stats::stats(&panel)).unwrap();
    assert_eq!(properties("PanelStats"), keys(stats.clone()));
    assert_eq!(properties("Diversity"), keys(stats["diversity"].clone()));
    assert_eq!(
        properties("Count"),
        keys(stats["by_proficiency"][0].clone())
    );
    assert_eq!(
        schemas["TechProficiency"]["enum"],
        serde_json::json!(["Low", "Medium", "High"])
    );
}

#[test]
fn the_job_and_session_mirrors_match_what_the_real_types_serialise() {
    use persona_sim::llm::BackendInfo;
    use persona_sim::serve::synthesis::{Failure, JobStatus, JobView, Progress};
    use persona_sim::sim::debate::DebateConfig;
    use persona_sim::sim::session::Session;

    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let properties = |name: &str| -> BTreeSet<String> {
        schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {name}"))
            .keys()
            .cloned()
            .collect()
    };
    let keys = |v: &Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    let panel = parse_panel(BUILTIN_PANEL_JSON).unwrap();

    // A job with every field set (`error` is left out when there is none).
    let job = JobView {
        id: "0123456789abcdef".into(),
        status: JobStatus::Running,
        brief: "nurses".into(),
        dry_run: false,
        created: "2026-01-01T00:00:00+00:00".into(),
        progress: Progress { done: 1, total: 3 },
        results: vec![panel[0].clone()],
        failures: vec![Failure {
            index: 1,
            reason: "no".into(),
        }],
        error: Some("stopped".into()),
    };
    let job = serde_json::to_value(&job).unwrap();
    assert_eq!(properties("Job"), keys(&job));
    assert_eq!(properties("Progress"), keys(&job["progress"]));
    assert_eq!(properties("Failure"), keys(&job["failures"][0]));
    let statuses: Vec<Value> = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Done,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ]
    .iter()
    .map(|s| serde_json::to_value(s).unwrap())
    .collect();
    assert_eq!(schemas["JobStatus"]["enum"], Value::Array(statuses));

    // A new session writes every field but the optional ones.
    let config = DebateConfig {
        feature: "dark mode".into(),
        personas: panel[..2].to_vec(),
        rounds: 1,
        max_tokens_per_turn: 100,
        max_tokens_total: None,
    };
    let info = BackendInfo {
        kind: "test",
        model: "m".into(),
        endpoint: "memory".into(),
    };
    let session = serde_json::to_value(Session::new(&config, info)).unwrap();
    let written = keys(&session);
    let documented = properties("Session");
    assert!(
        written.is_subset(&documented),
        "not in the mirror: {:?}",
        written.difference(&documented).collect::<Vec<_>>()
    );
    let optional: BTreeSet<String> = [
        "report",
        "report_error",
        "error",
        "pid",
        "manifest",
        "moderation",
        "herding",
    ]
    .map(String::from)
    .into();
    let missing: BTreeSet<String> = documented.difference(&written).cloned().collect();
    assert!(missing.is_subset(&optional), "never written: {missing:?}");
    let required: BTreeSet<String> = schemas["Session"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(required.is_subset(&written), "{required:?}");
}

#[tokio::test]
async fn the_sessions_page_matches_its_mirror() {
    let server = start(0).await;
    let key = server.keys[0].as_str();
    let (status, _, body) = send(&server, "GET", "/v1/sessions", Some(key)).await;
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    let doc = document();
    let mirror: BTreeSet<String> = doc["components"]["schemas"]["SessionPage"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let served: BTreeSet<String> = page.as_object().unwrap().keys().cloned().collect();
    assert_eq!(mirror, served);
}

#[tokio::test]
async fn a_burst_over_the_limit_gets_429_with_retry_after_and_other_keys_do_not() {
    // 5 per second per key: bursts of 10.
    let server = start(5).await;
    let (alice, bob) = (server.keys[0].as_str(), server.keys[1].as_str());
    let started = Instant::now();
    let mut ok = 0;
    let mut limited = None;
    for _ in 0..40 {
        let (status, headers, body) = send(&server, "GET", "/v1/personas/1", Some(alice)).await;
        match status {
            200 => ok += 1,
            429 => {
                limited = Some((headers, body));
                break;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let elapsed = started.elapsed();
    let (headers, body) = limited.expect("a burst of 40 is limited");
    // The burst, plus what refilled meanwhile.
    let allowed = 10 + (elapsed.as_secs_f64() * 5.0).ceil() as usize;
    assert!((10..=allowed).contains(&ok), "{ok} allowed in {elapsed:?}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert_eq!(headers["content-type"], "application/json");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "rate_limited");
    // Another key has its own bucket.
    for _ in 0..5 {
        let (status, _, body) = send(&server, "GET", "/v1/personas/1", Some(bob)).await;
        assert_eq!(status, 200, "{body}");
    }
    // And alice gets in again once Retry-After has passed.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let (status, _, _) = send(&server, "GET", "/v1/personas/1", Some(alice)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn http_metrics_are_labelled_by_route_pattern() {
    let server = start(0).await;
    let key = server.keys[0].as_str();
    let (_, _, before) = send(&server, "GET", "/metrics", None).await;
    assert!(
        before.contains(
            r#"app_http_requests_total{method="GET",route="/v1/personas",status="200"} 0"#
        ),
        "known series from the first scrape:\n{before}"
    );
    for id in [1, 2, 3] {
        send(&server, "GET", &format!("/v1/personas/{id}"), Some(key)).await;
    }
    send(&server, "GET", "/v1/personas/999999", Some(key)).await;
    send(&server, "GET", "/v1/personas", None).await;
    // (Without a key an unknown path answers 401: the key layer wraps the
    // fallback too.)
    send(&server, "GET", "/no/such/thing", Some(key)).await;
    let (_, _, text) = send(&server, "GET", "/metrics", None).await;
    for needle in [
        r#"app_http_requests_total{method="GET",route="/v1/personas/{id}",status="200"} 3"#,
        r#"app_http_requests_total{method="GET",route="/v1/personas/{id}",status="404"} 1"#,
        r#"app_http_requests_total{method="GET",route="/v1/personas",status="401"} 1"#,
        r#"app_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"app_http_request_duration_seconds_count{method="GET",route="/v1/personas/{id}"} 4"#,
    ] {
        assert!(text.contains(needle), "missing {needle}\n{text}");
    }
    assert!(
        !text.contains("route=\"/v1/personas/1\""),
        "raw paths are never labels"
    );
}
