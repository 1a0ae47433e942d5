//! The Persona API over real HTTP against the real binary
//! (`persona-sim serve --bind 127.0.0.1:0`): keys, the persona routes,
//! the error shape, limits, CORS, a 10k export streamed, and the API and
//! other processes working on one panel at once.

mod support;

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use support::binary::command;
use support::serve::{Server, create_key};

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

struct Api {
    server: Server,
    client: Client,
}

impl Api {
    fn start(extra: &[&str]) -> (Api, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), extra);
        (
            Api {
                server,
                client: client(),
            },
            dir,
        )
    }

    /// A request with the server's key; the status and the body as JSON
    /// (or as a string when it is not JSON).
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (base, key) = (&self.server.base, &self.server.key);
        support::http::call(&self.client, base, key, method, path, body.as_ref()).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }
}

/// The one error shape, with this code.
fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

fn new_persona(name: &str) -> Value {
    json!({"name": name, "occupation": "Nurse", "location": "Accra, Ghana",
           "tech_proficiency": "Low", "behavioral_traits": ["careful"]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_missing_wrong_and_revoked_are_refused_alike() {
    let (api, _dir) = Api::start(&[]);
    let url = format!("{}/v1/personas", api.server.base);
    let plain = api.client.get(&url).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::UNAUTHORIZED);
    let missing: Value = serde_json::from_str(&plain.text().await.unwrap()).unwrap();
    assert_error(&missing, "unauthorized");
    let wrong = api
        .client
        .get(&url)
        .bearer_auth("psk_0000")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong: Value = serde_json::from_str(&wrong.text().await.unwrap()).unwrap();
    assert_eq!(wrong, missing, "no hint which part was wrong");
    // The open routes need no key.
    for open in ["/healthz", "/health", "/metrics"] {
        let r = api
            .client
            .get(format!("{}{open}", api.server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{open}");
    }
    assert_eq!(api.get("/v1/personas").await.0, StatusCode::OK);
    // Revoked while the server runs: refused at once.
    let out = command(&api.server.data, None, &["keys", "revoke", "test"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let (status, body) = api.get("/v1/personas").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, missing);
    // The key never reaches the log.
    let logs = std::fs::read_dir(api.server.data.join("logs")).unwrap();
    for log in logs {
        let text = std::fs::read_to_string(log.unwrap().path()).unwrap();
        assert!(!text.contains(&api.server.key), "the key is in the log");
        assert!(
            text.contains("key=test") || text.contains("key=\"test\""),
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personas_are_listed_got_created_patched_and_deleted() {
    let (api, _dir) = Api::start(&[]);
    let (status, page) = api.get("/v1/personas?limit=5&offset=10").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 14);
    assert_eq!(page["items"].as_array().unwrap().len(), 4);
    assert_eq!(page["next_offset"], Value::Null);
    let (_, low) = api.get("/v1/personas?proficiency=low&sort=-name").await;
    let names: Vec<&str> = low["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.len() >= 2 && names.windows(2).all(|w| w[0] >= w[1]),
        "{names:?}"
    );
    assert_error(&api.get("/v1/personas?sort=height").await.1, "bad_request");

    // The seed's path works too.
    let (status, maria) = api.get("/v1/persona/1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(maria["name"], "Maria Lopez");
    let (status, body) = api.get("/v1/personas/999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");

    let (status, created) = api
        .call(Method::POST, "/v1/personas", Some(new_persona("Ama Owusu")))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["id"], 15);
    let (status, patched) = api
        .call(
            Method::PATCH,
            "/v1/personas/15",
            Some(
                json!({"occupation": "Midwife", "behavioral_traits": ["calm", "exact"], "age": 41}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["occupation"], "Midwife");
    assert_eq!(patched["behavioral_traits"], json!(["calm", "exact"]));
    assert_eq!(patched["age"], 41);
    assert_eq!(api.get("/v1/personas/15").await.1, patched);

    let (status, found) = api.get("/v1/personas/search?q=midwife%20loc:accra").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["total"], 1, "{found}");
    let (_, stats) = api.get("/v1/personas/stats").await;
    assert_eq!(stats["total"], 15, "{stats}");

    let (status, _) = api.call(Method::DELETE, "/v1/personas/15", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api.call(Method::DELETE, "/v1/personas/15", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_every_problem_with_its_path_and_changes_nothing() {
    let (api, _dir) = Api::start(&["--max-body-mb", "1"]);
    let bad = json!({"name": "", "occupation": "x", "location": "y",
                     "tech_proficiency": "Expert", "behavioral_traits": []});
    let (status, body) = api.call(Method::POST, "/v1/personas", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_error(&body, "invalid");
    let paths: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"tech_proficiency"), "{body}");

    let (status, body) = api
        .call(
            Method::PATCH,
            "/v1/personas/1",
            Some(json!({"age": "old", "name": " "})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["error"]["details"].as_array().unwrap().len(),
        2,
        "{body}"
    );
    assert_eq!(api.get("/v1/personas/1").await.1["name"], "Maria Lopez");

    let records = json!([new_persona("Ok One"), {"name": "No rest"}, new_persona("Ok Two")]);
    let (status, body) = api
        .call(Method::POST, "/v1/personas/import", Some(records))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let first = body["error"]["details"][0]["path"].as_str().unwrap();
    assert!(first.starts_with("[1]."), "{body}");
    assert_eq!(
        api.get("/v1/personas").await.1["total"],
        14,
        "all or nothing"
    );

    // Refused on its Content-Length, before the body is read: a raw
    // request that announces 2 MB and sends none of it gets the answer.
    let (status, body) = too_large(&api).await;
    assert_eq!(status, 413);
    assert_error(&body, "too_large");
    let (status, body) = api.get("/v1/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
    let response = api
        .client
        .post(format!("{}/v1/personas", api.server.base))
        .bearer_auth(&api.server.key)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

/// POST /v1/personas announcing a 2 MB body and sending none: the status
/// and the JSON body of the answer.
async fn too_large(api: &Api) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = api.server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/personas HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        api.server.key,
        2 << 20
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || String::from_utf8_lossy(&answer).contains("}}") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "answered without the body");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // The body may come chunked: take the JSON object inside.
    let json = &body[body.find('{').unwrap_or(0)..=body.rfind('}').unwrap_or(0)];
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_the_listed_origins() {
    let (api, _dir) = Api::start(&["--cors-origin", "https://tools.example.com"]);
    let preflight = |origin: &'static str| {
        api.client
            .request(Method::OPTIONS, format!("{}/v1/personas", api.server.base))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://tools.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://tools.example.com"
    );
    let refused = preflight("https://evil.example.net").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_personas_import_and_export_as_streamed_csv() {
    let (api, _dir) = Api::start(&["--rate-limit", "0"]);
    let records: Vec<Value> = (0..10_000)
        .map(|i| new_persona(&format!("Bulk {i:05}")))
        .collect();
    let (status, body) = api
        .call(
            Method::POST,
            "/v1/personas/import?mode=replace",
            Some(Value::Array(records)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 10_000);
    let response = api
        .client
        .get(format!("{}/v1/personas/export?format=csv", api.server.base))
        .bearer_auth(&api.server.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers().get("content-length").is_none(),
        "streamed (chunked), not built whole first"
    );
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 10_001, "a header and one line per persona");
    assert!(lines[0].starts_with("id,name"), "{}", lines[0]);
    assert!(lines[10_000].contains("Bulk 09999"));
    let (_, json_export) = api.get("/v1/personas/export?format=json").await;
    assert_eq!(json_export.as_array().unwrap().len(), 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_and_the_cli_change_one_panel_at_once_and_lose_nothing() {
    let (api, _dir) = Api::start(&["--rate-limit", "0"]);
    let data = api.server.data.clone();
    let cli = std::thread::spawn(move || {
        for i in 0..40 {
            let mut child = command(&data, None, &["personas", "add", "--json", "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            use std::io::Write;
            let record = new_persona(&format!("Cli {i:02}")).to_string();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(record.as_bytes())
                .unwrap();
            assert!(child.wait().unwrap().success());
        }
    });
    for i in 0..40 {
        let (status, body) = api
            .call(
                Method::POST,
                "/v1/personas",
                Some(new_persona(&format!("Api {i:02}"))),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    cli.join().unwrap();
    let (_, page) = api.get("/v1/personas?limit=1000").await;
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(page["total"], 14 + 80);
    for i in 0..40 {
        assert!(names.contains(&format!("Api {i:02}").as_str()));
        assert!(names.contains(&format!("Cli {i:02}").as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_writes_leaves_a_valid_panel() {
    let (mut api, _dir) = Api::start(&["--rate-limit", "0"]);
    let base = api.server.base.clone();
    let key = api.server.key.clone();
    let writer = tokio::spawn(async move {
        let client = client();
        let mut acknowledged = Vec::new();
        for i in 0..500 {
            let sent = client
                .post(format!("{base}/v1/personas"))
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body(new_persona(&format!("Kill {i:03}")).to_string())
                .send()
                .await;
            match sent {
                Ok(r) if r.status() == StatusCode::CREATED => acknowledged.push(i),
                _ => break,
            }
        }
        acknowledged
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    api.server.kill();
    let acknowledged = writer.await.unwrap();
    assert!(
        !acknowledged.is_empty() && acknowledged.len() < 500,
        "killed mid-run"
    );
    let panel = std::fs::read_to_string(api.server.data.join("personas.json")).unwrap();
    let panel = persona_sim::persona::parse_panel(&panel).expect("a valid panel");
    for i in acknowledged {
        let name = format!("Kill {i:03}");
        assert!(
            panel.iter().any(|p| p.name == name),
            "acknowledged {name} lost"
        );
    }
}

#[test]
fn a_non_loopback_bind_is_refused_while_no_key_exists() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path(), None, &["serve", "--bind", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no API key") && stderr.contains("keys create"),
        "{stderr}"
    );
    // With a key it starts (and is stopped at once).
    create_key(dir.path(), "ops");
    let mut child = command(dir.path(), None, &["serve", "--bind", "0.0.0.0:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "still serving");
    child.kill().unwrap();
    child.wait().unwrap();
}
