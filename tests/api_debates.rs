//! Debates and synthesis over HTTP, against the real binary
//! (`persona-sim serve --bind 127.0.0.1:0`) and the mock OpenAI server:
//! the event stream says what `simulate --format jsonl` prints, resumes
//! with `Last-Event-ID`, a debate can be cancelled, a batch of syntheses
//! never has more than 10 LLM calls in flight, and bad input is a 422.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::binary::{command, run, text};
use support::serve::{Server, Start};
use support::{MockServer, Reply, echo_reply};

/// Longest any one wait in these tests may take.
const WAIT: Duration = Duration::from_secs(60);

/// An API to call: `persona-sim serve` on a free loopback port with one
/// API key (killed when dropped), or a server the test runs in-process.
struct Api {
    server: Option<Server>,
    base: String,
    key: String,
    client: reqwest::Client,
}

impl Api {
    async fn start(data_dir: &Path, mock: &str) -> Api {
        let start = Start {
            llm: Some(mock),
            ..Start::default()
        };
        Api::over(Server::start_with(data_dir, start))
    }

    fn over(server: Server) -> Api {
        Api {
            base: server.base.clone(),
            key: server.key.clone(),
            server: Some(server),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    fn server(&mut self) -> &mut Server {
        self.server.as_mut().expect("a persona-sim serve process")
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .timeout(WAIT)
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.req(method, path);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = req.send().await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// Asserts that `value`'s fields are those of the OpenAPI document's
    /// schema `name` (every field written is described; every field
    /// described but not written is optional there).
    async fn assert_matches_schema(&self, name: &str, value: &Value) {
        let (code, doc) = self.get("/openapi.json").await;
        assert_eq!(code, 200);
        let schema = &doc["components"]["schemas"][name];
        let described: std::collections::BTreeSet<&str> = schema["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {name}"))
            .keys()
            .map(String::as_str)
            .collect();
        let written: std::collections::BTreeSet<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert!(
            written.is_subset(&described),
            "{name}: not described: {:?}",
            written.difference(&described).collect::<Vec<_>>()
        );
        for required in schema["required"].as_array().into_iter().flatten() {
            let field = required.as_str().unwrap();
            assert!(written.contains(field), "{name}: {field} not written");
        }
    }

    /// Reads a debate's event stream (from `last_id` + 1 when given) until
    /// it ends or `stop_after` events came: (id, JSON) pairs.
    async fn events(
        &self,
        id: &str,
        last_id: Option<usize>,
        stop_after: Option<usize>,
    ) -> Vec<(usize, Value)> {
        let mut req = self.req(reqwest::Method::GET, &format!("/v1/debates/{id}/events"));
        if let Some(last) = last_id {
            req = req.header("last-event-id", last.to_string());
        }
        let mut response = req.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let mut buffer = String::new();
        let mut out = Vec::new();
        let started = Instant::now();
        while started.elapsed() < WAIT {
            let Some(chunk) = response.chunk().await.unwrap() else {
                break;
            };
            buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let mut event_id = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        event_id = Some(v.trim().parse::<usize>().unwrap());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data = Some(serde_json::from_str::<Value>(v.trim()).unwrap());
                    }
                }
                if let (Some(i), Some(d)) = (event_id, data) {
                    out.push((i, d));
                    if stop_after.is_some_and(|n| out.len() >= n) {
                        return out;
                    }
                }
            }
        }
        out
    }
}

/// The event's kind (`turn_started`, `token`, `done`, …).
fn kind(e: &Value) -> String {
    e["event"].as_str().unwrap_or_default().to_string()
}

async fn wait_for_status(api: &Api, id: &str, wanted: &[&str]) -> Value {
    let started = Instant::now();
    loop {
        let (code, session) = api.get(&format!("/v1/debates/{id}")).await;
        if code == 200 && wanted.contains(&session["status"].as_str().unwrap_or("")) {
            return session;
        }
        assert!(started.elapsed() < WAIT, "{id} never reached {wanted:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_says_what_simulate_jsonl_prints_and_resumes() {
    let mock = MockServer::persona_echo(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let feature = "Offline mode for the field app";
    // The CLI first, on the same mock and the same panel.
    let cli = run(command(
        dir.path(),
        Some(&mock.base_url),
        &[
            "--rounds",
            "2",
            "simulate",
            "--feature",
            feature,
            "--personas",
            "2,1",
            "--format",
            "jsonl",
            "--report",
        ],
    ))
    .await;
    assert!(cli.status.success(), "{}", text(&cli.stderr));
    let printed: Vec<Value> = text(&cli.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    let api = Api::start(dir.path(), &mock.base_url).await;
    let (code, started) = api
        .post(
            "/v1/debates",
            json!({"feature": feature, "persona_ids": [2, 1], "rounds": 2, "report": true}),
        )
        .await;
    assert_eq!(code, 202, "{started}");
    api.assert_matches_schema("DebateStarted", &started).await;
    let id = started["id"].as_str().unwrap().to_string();
    let streamed = api.events(&id, None, None).await;
    let ids: Vec<usize> = streamed.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        ids,
        (0..streamed.len()).collect::<Vec<_>>(),
        "ids 0, 1, 2, …"
    );
    let streamed: Vec<Value> = streamed.into_iter().map(|(_, e)| e).collect();
    // Event for event, field for field: no field differs between the faces
    // (events carry no session id or time), and the mock's pieces arrive
    // as the same token events on both.
    assert_eq!(streamed, printed);
    assert!(streamed.iter().any(|e| kind(e) == "report_ready"));
    assert_eq!(kind(streamed.last().unwrap()), "report_ready");

    // The session is saved as the CLI's is.
    let session = wait_for_status(&api, &id, &["completed"]).await;
    api.assert_matches_schema("Session", &session).await;
    assert_eq!(session["turns"].as_array().unwrap().len(), 4);
    assert!(session["report"].is_object());
    assert!(
        dir.path()
            .join("sessions")
            .join(format!("{id}.json"))
            .exists()
    );

    // A reader that joins late, or comes back with Last-Event-ID, gets the
    // rest with no repeat and no gap.
    let first = api.events(&id, None, Some(5)).await;
    assert_eq!(
        first.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    let rest = api.events(&id, Some(4), None).await;
    assert_eq!(rest.first().unwrap().0, 5);
    let resumed: Vec<Value> = first.into_iter().chain(rest).map(|(_, e)| e).collect();
    assert_eq!(resumed, streamed);

    // Listed among the sessions, with the CLI's.
    let (code, list) = api.get("/v1/sessions?limit=10").await;
    assert_eq!(code, 200);
    assert_eq!(list["total"], 2);
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(item["status"], "completed");
    assert_eq!(item["feature"], feature);
    assert_eq!(item["personas"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_mid_debate_resumes_without_repeats_or_gaps() {
    let mock = MockServer::persona_echo(Duration::from_millis(15)).await;
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &mock.base_url).await;
    let (code, started) = api
        .post(
            "/v1/debates",
            json!({"feature": "Shared calendars", "persona_ids": [1, 2, 3], "rounds": 1}),
        )
        .await;
    assert_eq!(code, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    // Dropped mid-turn, while the debate is still running.
    let first = api.events(&id, None, Some(6)).await;
    let last = first.last().unwrap().0;
    let rest = api.events(&id, Some(last), None).await;
    let all: Vec<(usize, Value)> = first.into_iter().chain(rest).collect();
    assert_eq!(
        all.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (0..all.len()).collect::<Vec<_>>()
    );
    assert_eq!(kind(&all.last().unwrap().1), "done");
    // The same as one reader from the start.
    let whole = api.events(&id, None, None).await;
    assert_eq!(whole, all);
    let session = wait_for_status(&api, &id, &["completed"]).await;
    assert_eq!(session["turns"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_cancels_a_running_debate_and_the_session_says_cancelled() {
    let mock = MockServer::persona_echo(Duration::from_millis(100)).await;
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &mock.base_url).await;
    let (code, started) = api
        .post(
            "/v1/debates",
            json!({"feature": "Voice notes", "persona_ids": [1, 2], "rounds": 3}),
        )
        .await;
    assert_eq!(code, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    // Something was said.
    api.events(&id, None, Some(3)).await;
    let (code, session) = api
        .send(reqwest::Method::DELETE, &format!("/v1/debates/{id}"), None)
        .await;
    assert_eq!(code, 200, "{session}");
    assert_eq!(session["status"], "cancelled");
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("sessions").join(format!("{id}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["status"], "cancelled");
    assert!(saved["turns"].as_array().unwrap().len() < 6);
    // The stream ends with the cancellation.
    let events = api.events(&id, None, None).await;
    assert_eq!(
        events.last().unwrap().1,
        json!({"event": "done", "outcome": "cancelled"})
    );
    // Nothing left to cancel.
    let (code, again) = api
        .send(reqwest::Method::DELETE, &format!("/v1/debates/{id}"), None)
        .await;
    assert_eq!(code, 409, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthesis_jobs_never_have_more_than_ten_calls_in_flight() {
    // Slow enough that calls overlap: 10 pieces of 20 ms a reply.
    let mock = MockServer::start(Vec::new(), Duration::from_millis(20), echo_reply).await;
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &mock.base_url).await;
    let (_, before) = api.get("/v1/personas?limit=1000").await;
    let before = before["total"].as_u64().unwrap();

    // One persona at once: a dry run is not saved, a real one is.
    let (code, dry) = api
        .post(
            "/v1/personas/generate",
            json!({"brief": "night-shift nurses", "dry_run": true}),
        )
        .await;
    assert_eq!(code, 200, "{dry}");
    assert!(dry["name"].as_str().unwrap().starts_with("Mock Person"));
    let (code, one) = api
        .post(
            "/v1/persona/generate",
            json!({"brief": "night-shift nurses"}),
        )
        .await;
    assert_eq!(code, 201, "{one}");
    let (code, got) = api.get(&format!("/v1/personas/{}", one["id"])).await;
    assert_eq!(code, 200);
    assert_eq!(got["name"], one["name"]);

    // Two jobs at once (25 and 15): each batch alone would run 10 calls,
    // together 20 without the server-wide gate.
    let (code, a) = api
        .post(
            "/v1/personas/generate",
            json!({"brief": "small farmers", "count": 25}),
        )
        .await;
    assert_eq!(code, 202, "{a}");
    api.assert_matches_schema("JobStarted", &a).await;
    let (code, b) = api
        .post(
            "/v1/personas/generate",
            json!({"brief": "bus drivers", "count": 15}),
        )
        .await;
    assert_eq!(code, 202, "{b}");
    let mut results = 0;
    for (job, total) in [(&a, 25), (&b, 15)] {
        let id = job["job_id"].as_str().unwrap();
        let started = Instant::now();
        let view = loop {
            let (code, view) = api.get(&format!("/v1/jobs/{id}")).await;
            assert_eq!(code, 200, "{view}");
            assert!(
                ["queued", "running", "done", "failed"].contains(&view["status"].as_str().unwrap())
            );
            if ["done", "failed"].contains(&view["status"].as_str().unwrap()) {
                break view;
            }
            assert!(started.elapsed() < WAIT, "job {id} did not finish: {view}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(view["status"], "done", "{view}");
        assert_eq!(view["progress"]["total"], total);
        assert_eq!(view["progress"]["done"], total);
        let saved = view["results"].as_array().unwrap().len();
        let failed = view["failures"].as_array().unwrap().len();
        assert_eq!(saved + failed, total, "{view}");
        for f in view["failures"].as_array().unwrap() {
            assert!(f["reason"].as_str().is_some_and(|r| !r.is_empty()), "{f}");
        }
        assert_eq!(saved, total, "the mock writes only valid personas: {view}");
        results += saved;
    }
    let most = mock.max_in_flight();
    eprintln!("most LLM calls in flight: {most}");
    assert!(most <= 10, "{most} calls were in flight at once");
    assert!(most >= 8, "the jobs overlapped: {most}");
    let (_, after) = api.get("/v1/personas?limit=1000").await;
    assert_eq!(
        after["total"].as_u64().unwrap(),
        before + 1 + results as u64
    );
    let ids: std::collections::HashSet<u64> = after["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids.len() as u64,
        after["total"].as_u64().unwrap(),
        "ids are unique"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_422_with_field_paths_and_no_backend_is_503() {
    let mock = MockServer::scripted(vec![Reply::text("unused")]).await;
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &mock.base_url).await;
    let (code, e) = api
        .post(
            "/v1/debates",
            json!({"feature": "  ", "persona_ids": [1, 999, 1], "rounds": 11}),
        )
        .await;
    assert_eq!(code, 422, "{e}");
    assert_eq!(e["error"]["code"], "invalid");
    let problems: Vec<(String, String)> = e["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_string(),
                p["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        ["feature", "persona_ids[1]", "persona_ids[2]", "rounds"]
    );
    assert!(problems[1].1.contains("999"), "{problems:?}");
    let (code, e) = api
        .post(
            "/v1/debates",
            json!({"feature": "x", "persona_ids": [], "rounds": 0}),
        )
        .await;
    assert_eq!(code, 422, "{e}");
    let (code, e) = api
        .post("/v1/personas/generate", json!({"brief": "", "count": 101}))
        .await;
    assert_eq!(code, 422, "{e}");
    let paths: Vec<&str> = e["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["brief", "count"]);
    // Nothing reached the model, and nothing was saved.
    assert!(mock.requests().is_empty());
    let (_, list) = api.get("/v1/sessions").await;
    assert_eq!(list["total"], 0);
    // No key, no debate.
    let response = api
        .client
        .get(format!("{}/v1/sessions", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let (code, _) = api.get("/v1/debates/20260101-000000-beef").await;
    assert_eq!(code, 404);
    let (code, _) = api.get("/v1/jobs/nope").await;
    assert_eq!(code, 404);
    drop(api);

    // With no backend configured: 503 saying so. No key, no server, and
    // (in a build with the embedded model) no model: no backend.
    let dir = tempfile::tempdir().unwrap();
    let missing_model = dir.path().join("not-installed.gguf");
    let start = Start {
        env: vec![("PERSONA_SIM_MODEL", missing_model.as_os_str())],
        ..Start::default()
    };
    let api = Api::over(Server::start_with(dir.path(), start));
    for (path, body) in [
        ("/v1/debates", json!({"feature": "x", "persona_ids": [1]})),
        ("/v1/personas/generate", json!({"brief": "x"})),
    ] {
        let (code, e) = api.post(path, body).await;
        assert_eq!(code, 503, "{e}");
        assert_eq!(e["error"]["code"], "no_backend", "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_saves_running_debates_as_cancelled() {
    let mock = MockServer::persona_echo(Duration::from_millis(100)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut api = Api::start(dir.path(), &mock.base_url).await;
    let mut ids = Vec::new();
    for feature in ["Dark mode", "Bulk export"] {
        let (code, started) = api
            .post(
                "/v1/debates",
                json!({"feature": feature, "persona_ids": [1, 2], "rounds": 3}),
            )
            .await;
        assert_eq!(code, 202, "{started}");
        ids.push(started["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        api.events(id, None, Some(2)).await;
    }
    // A synthesis job is running too: it is cancelled, not waited for.
    let (code, job) = api
        .post(
            "/v1/personas/generate",
            json!({"brief": "couriers", "count": 30}),
        )
        .await;
    assert_eq!(code, 202, "{job}");
    let pid = api.server().pid().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let exited = loop {
        if let Some(status) = api.server().try_wait() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "serve did not exit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exited.success(), "{exited:?}");
    eprintln!("exited {:?} after SIGTERM", started.elapsed());
    for id in &ids {
        let saved: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("sessions").join(format!("{id}.json")))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(saved["status"], "cancelled", "{id}");
        assert!(
            !dir.path()
                .join("sessions")
                .join(format!(".{id}.lock"))
                .exists()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_32_waiting_debates_and_jobs_the_answer_is_503_with_retry_after() {
    // Each piece takes a second: nothing finishes while the queue fills.
    let mock = MockServer::persona_echo(Duration::from_secs(1)).await;
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &mock.base_url).await;
    for n in 0..31 {
        let (code, started) = api
            .post(
                "/v1/debates",
                json!({"feature": format!("feature {n}"), "persona_ids": [1], "rounds": 1}),
            )
            .await;
        assert_eq!(code, 202, "{n}: {started}");
    }
    let (code, job) = api
        .post(
            "/v1/personas/generate",
            json!({"brief": "teachers", "count": 5}),
        )
        .await;
    assert_eq!(code, 202, "{job}");
    let response = api
        .req(reqwest::Method::POST, "/v1/debates")
        .header("content-type", "application/json")
        .body(json!({"feature": "one too many", "persona_ids": [1]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let e: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(e["error"]["code"], "busy");
    let (code, e) = api
        .post(
            "/v1/personas/generate",
            json!({"brief": "teachers", "count": 2}),
        )
        .await;
    assert_eq!(code, 503, "{e}");
    assert!(mock.max_in_flight() <= 10);
}

/// In process, with a request timeout of 300 ms: a debate's event stream
/// lasts seconds and is not cut. (The stream routes sit outside the
/// timeout layer; moving them under it still passes, since that layer
/// times only the response head, so this guards the behaviour, not where
/// the route is registered.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_outlive_the_request_timeout() {
    use persona_sim::api_keys::KeyStore;
    use persona_sim::persona::store::{self, StorePaths};
    use persona_sim::serve::{ServeOptions, router, state::ApiState};

    let mock = MockServer::persona_echo(Duration::from_millis(60)).await;
    let dir = tempfile::tempdir().unwrap();
    let paths = StorePaths::for_file(dir.path().join("personas.json"));
    store::load(&paths).unwrap();
    let keys = KeyStore::in_dir(dir.path());
    let key = keys.create("t").unwrap();
    let backend = std::sync::Arc::new(persona_sim::llm::openai::OpenAiBackend::new(
        support::openai_settings(&mock.base_url, Duration::from_secs(10)),
    ));
    let state = ApiState::new(
        persona_sim::persona::panel_store::PanelStore::File(paths),
        dir.path().join("sessions"),
        persona_sim::api_keys::Keys::File(keys),
        Some(backend),
        None,
        "test".into(),
    );
    let options = ServeOptions {
        request_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    };
    let app = router(state, &options).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let api = Api {
        server: None,
        base: format!("http://{addr}"),
        key,
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
    };
    let (code, started) = api
        .post(
            "/v1/debates",
            json!({"feature": "Slow replies", "persona_ids": [1, 2], "rounds": 1}),
        )
        .await;
    assert_eq!(code, 202, "{started}");
    let id = started["id"].as_str().unwrap();
    let began = Instant::now();
    let events = api.events(id, None, None).await;
    let took = began.elapsed();
    assert!(took > Duration::from_secs(1), "{took:?}");
    assert_eq!(
        events.last().unwrap().1,
        json!({"event": "done", "outcome": "completed"})
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_reports_the_personas_it_could_not_write_and_why() {
    // Persona 3 of the batch never comes back as JSON.
    let mock = MockServer::start(Vec::new(), Duration::ZERO, |body| {
        if support::batch_index(body) == Some(3) {
            Reply::text("Sorry, I cannot help with that.")
        } else {
            echo_reply(body)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &mock.base_url).await;
    let (code, job) = api
        .post(
            "/v1/personas/generate",
            json!({"brief": "pharmacists", "count": 5, "dry_run": true}),
        )
        .await;
    assert_eq!(code, 202, "{job}");
    let id = job["job_id"].as_str().unwrap();
    let started = Instant::now();
    let view = loop {
        let (_, view) = api.get(&format!("/v1/jobs/{id}")).await;
        if view["status"] != "queued" && view["status"] != "running" {
            break view;
        }
        assert!(started.elapsed() < WAIT, "{view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(view["status"], "done", "{view}");
    assert_eq!(view["progress"], json!({"done": 5, "total": 5}));
    assert_eq!(view["results"].as_array().unwrap().len(), 4);
    let failures = view["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{view}");
    assert_eq!(failures[0]["index"], 2);
    let reason = failures[0]["reason"].as_str().unwrap();
    assert!(reason.contains("gave up after 3 tries"), "{reason}");
    // A dry run saves nothing.
    let (_, list) = api.get("/v1/personas?limit=1000").await;
    assert!(
        !list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"].as_str().unwrap().starts_with("Mock Person"))
    );
}

/// While the model is silent, the stream sends a heartbeat comment every
/// 15 s (this test waits for the first one: about 15 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_debate_stream_gets_heartbeats() {
    let mock = MockServer::start(
        vec![Reply::Stall {
            pieces: vec!["Hmm".into()],
            stall: Duration::from_secs(25),
        }],
        Duration::ZERO,
        echo_reply,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &mock.base_url).await;
    let (code, started) = api
        .post(
            "/v1/debates",
            json!({"feature": "Quiet", "persona_ids": [1], "rounds": 1}),
        )
        .await;
    assert_eq!(code, 202, "{started}");
    let id = started["id"].as_str().unwrap();
    let mut response = api
        .req(reqwest::Method::GET, &format!("/v1/debates/{id}/events"))
        .send()
        .await
        .unwrap();
    let began = Instant::now();
    let mut seen = String::new();
    while began.elapsed() < Duration::from_secs(20) && !seen.contains(": heartbeat") {
        match tokio::time::timeout(Duration::from_secs(20), response.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(std::str::from_utf8(&chunk).unwrap()),
            other => panic!("the stream ended or stalled: {other:?}; so far: {seen}"),
        }
    }
    let waited = began.elapsed();
    eprintln!("first heartbeat after {waited:?}");
    assert!(
        seen.contains("\n: heartbeat\n") || seen.starts_with(": heartbeat"),
        "{seen}"
    );
    assert!(waited >= Duration::from_secs(14), "{waited:?}");
    let (code, _) = api
        .send(reqwest::Method::DELETE, &format!("/v1/debates/{id}"), None)
        .await;
    assert_eq!(code, 200);
}
