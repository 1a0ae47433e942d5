//! `serve --database-url` against a real PostgreSQL (a throwaway cluster,
//! support::postgres): the API answers exactly as on the panel file (one
//! suite of requests run against both stores), two servers on one database
//! lose no update, a database that goes away is a 503 and a degraded
//! /health until it is back, and `db` moves a panel in and out.
//!
//! Outside CI these skip with a message when no PostgreSQL server can be
//! started; in CI they fail instead.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use support::binary::command;
use support::postgres::PgCluster;
use support::serve::{Server, Start};

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A server and a client with its key.
struct Api {
    server: Server,
    client: Client,
}

impl Api {
    /// `serve` on the database at `url`, with its data folder `data` (no
    /// rate limit: the tests write as fast as they can).
    fn on_database(data: &Path, url: &str) -> Api {
        Api::on_database_with_llm(data, url, None)
    }

    /// The same, talking to the LLM server `llm`.
    fn on_database_with_llm(data: &Path, url: &str, llm: Option<&str>) -> Api {
        // Keys live in the database: one per server.
        let name = data.file_name().unwrap().to_str().unwrap().to_string();
        let server = Server::start_with(
            data,
            Start {
                llm,
                global: vec!["--database-url", url],
                flags: vec!["--rate-limit", "0"],
                key_name: &name,
                ..Start::default()
            },
        );
        Api {
            server,
            client: client(),
        }
    }

    /// `serve` on the panel file `panel`.
    fn on_file(data: &Path, panel: &Path) -> Api {
        Api {
            server: Server::start_on_panel(data, panel, &["--rate-limit", "0"]),
            client: client(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let (base, key) = (&self.server.base, &self.server.key);
        support::http::call(&self.client, base, key, method, path, body).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    async fn health(&self) -> Value {
        let r = self
            .client
            .get(format!("{}/health", self.server.base))
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }
}

/// A varied panel: every proficiency, countries and occupations repeated,
/// ages and no ages, and a field this build does not know (kept as is).
fn test_panel(n: u32) -> Value {
    let occupations = [
        "Nurse",
        "Teacher",
        "Software engineer",
        "Farmer",
        "Pilot",
        "Chef",
    ];
    let places = [
        "Accra, Ghana",
        "Lima, Peru",
        "Osaka, Japan",
        "Madrid, Spain",
        "Nairobi, Kenya",
    ];
    let levels = ["Low", "Medium", "High"];
    let traits = [
        "careful",
        "impatient",
        "loves spreadsheets",
        "privacy-minded",
    ];
    let personas: Vec<Value> = (1..=n)
        .map(|i| {
            let i = i as usize;
            let mut p = json!({
                "id": i,
                "name": format!("Person {:03} {}", (i * 37) % 101, ["Ana", "Bo", "Chi"][i % 3]),
                "occupation": occupations[i % occupations.len()],
                "location": places[(i / 2) % places.len()],
                "tech_proficiency": levels[i % 3],
                "behavioral_traits": [traits[i % 4], traits[(i + 1) % 4]],
            });
            if !i.is_multiple_of(4) {
                p["age"] = json!(20 + (i * 7) % 50);
            }
            if i.is_multiple_of(10) {
                p["favourite_tool"] = json!({"name": "abacus", "since": i});
            }
            p
        })
        .collect();
    Value::Array(personas)
}

fn db_command(data: &Path, url: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--database-url", url, "db"];
    all.extend_from_slice(args);
    command(data, None, &all).output().unwrap()
}

/// Writes [`test_panel`]`(n)` to `dir/panel.json` and imports it into the
/// database at `url`; the file's path.
fn import_test_panel(dir: &Path, url: &str, n: u32) -> std::path::PathBuf {
    let panel_file = dir.join("panel.json");
    std::fs::write(&panel_file, test_panel(n).to_string()).unwrap();
    let imported = db_command(dir, url, &["import-panel", panel_file.to_str().unwrap()]);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    panel_file
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_alike_on_the_file_and_on_postgres() {
    let Some(cluster) = PgCluster::shared() else {
        return;
    };
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let panel_file = import_test_panel(dir.path(), &url, 120);
    let file_data = dir.path().join("file");
    let pg_data = dir.path().join("pg");
    let file = Api::on_file(&file_data, &panel_file);
    let pg = Api::on_database(&pg_data, &url);

    // The same requests, reads and writes (good and bad), in the same
    // order: every answer the same, status and body.
    let reads = [
        "/v1/personas?limit=1000",
        "/v1/personas?limit=7&offset=30",
        "/v1/personas?sort=-name&limit=20",
        "/v1/personas?sort=age&limit=1000",
        "/v1/personas?proficiency=high&location=kenya",
        "/v1/personas?occupation=ENGINEER&sort=-id",
        "/v1/personas/search?q=prof:low%20loc:peru",
        "/v1/personas/search?q=%22loves%20spreadsheets%22%20pilot",
        "/v1/personas/search?q=ana",
        "/v1/personas/stats",
        "/v1/personas/5",
        "/v1/personas/10",
        "/v1/personas/999",
        "/v1/personas/export",
        "/v1/personas?sort=height",
    ];
    let writes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/v1/personas".into(),
            Some(
                json!({"name": "Zed Alpha", "occupation": "DBA", "location": "Oslo, Norway",
                        "tech_proficiency": "High", "behavioral_traits": ["careful"]}),
            ),
        ),
        (
            Method::POST,
            "/v1/personas".into(),
            Some(
                json!({"id": 7, "name": "Taken", "occupation": "x", "location": "y",
                        "tech_proficiency": "Low", "behavioral_traits": ["a"]}),
            ),
        ),
        (
            Method::POST,
            "/v1/personas".into(),
            Some(json!({"name": "", "occupation": "x", "location": "y",
                        "tech_proficiency": "Extreme", "behavioral_traits": []})),
        ),
        (
            Method::PATCH,
            "/v1/personas/12".into(),
            Some(json!({"occupation": "Astronaut", "age": 44})),
        ),
        (
            Method::PATCH,
            "/v1/personas/13".into(),
            Some(json!({"tech_proficiency": "Extreme"})),
        ),
        (Method::DELETE, "/v1/personas/20".into(), None),
        (Method::DELETE, "/v1/personas/20".into(), None),
        (
            Method::POST,
            "/v1/personas/import".into(),
            Some(
                json!([{"id": 3, "name": "Imported Three", "occupation": "Baker",
                         "location": "Lyon, France", "tech_proficiency": "Medium",
                         "behavioral_traits": ["early riser"]},
                        {"name": "Imported New", "occupation": "Baker",
                         "location": "Lyon, France", "tech_proficiency": "Low",
                         "behavioral_traits": ["early riser"], "age": 51}]),
            ),
        ),
    ];
    let mut compared = 0;
    for round in 0..2 {
        for path in reads {
            let (a, b) = (file.get(path).await, pg.get(path).await);
            assert_eq!(
                a, b,
                "GET {path} (round {round}) differs between the file and Postgres"
            );
            compared += 1;
        }
        if round == 0 {
            for (method, path, body) in &writes {
                let a = file.call(method.clone(), path, body.as_ref()).await;
                let b = pg.call(method.clone(), path, body.as_ref()).await;
                assert_eq!(
                    a, b,
                    "{method} {path} differs between the file and Postgres"
                );
                compared += 1;
            }
        }
    }
    // The writes did something: the panel changed, and both agree on it.
    let (_, list) = pg.get("/v1/personas?limit=1000").await;
    assert_eq!(list["total"], 122, "{}", list["total"]);
    let (_, twelve) = pg.get("/v1/personas/12").await;
    assert_eq!(twelve["occupation"], "Astronaut");
    // The unknown field survived the round trip through jsonb.
    let (_, ten) = pg.get("/v1/personas/10").await;
    assert_eq!(
        ten["favourite_tool"],
        json!({"name": "abacus", "since": 10})
    );
    // And the database's export is the file, byte for byte.
    let exported = db_command(dir.path(), &url, &["export-panel"]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let on_disk = std::fs::read_to_string(&panel_file).unwrap();
    assert_eq!(
        text(&exported.stdout),
        on_disk,
        "export-panel == the panel file"
    );
    eprintln!("{compared} answers compared, all the same");
}

/// Concurrent writers on two servers: every acknowledged create, edit and
/// delete is there at the end, on both servers, with no id twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_lose_no_update() {
    let Some(cluster) = PgCluster::shared() else {
        return;
    };
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let a = Api::on_database(&dir.path().join("a"), &url);
    let b = Api::on_database(&dir.path().join("b"), &url);
    let servers = std::sync::Arc::new([a, b]);
    const WRITERS: usize = 8;
    const OPS: usize = 150;
    let deadline = Instant::now() + Duration::from_secs(45);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let servers = servers.clone();
        tasks.push(tokio::spawn(async move {
            // (id, expected occupation) of what this writer created and
            // kept, and the ids it deleted.
            let mut kept: Vec<(u64, String)> = Vec::new();
            let mut deleted = Vec::new();
            let mut latencies = Vec::new();
            for op in 0..OPS {
                if Instant::now() > deadline {
                    break;
                }
                let api = &servers[(w + op) % 2];
                let t = Instant::now();
                match op % 4 {
                    // Edit the last persona this writer made (made on the
                    // other server, as often as not).
                    2 if !kept.is_empty() => {
                        let (id, _) = kept.last().unwrap().clone();
                        let occupation = format!("edited w{w} op{op}");
                        let (status, body) = api
                            .call(
                                Method::PATCH,
                                &format!("/v1/personas/{id}"),
                                Some(&json!({"occupation": occupation})),
                            )
                            .await;
                        assert_eq!(status, StatusCode::OK, "{body}");
                        kept.last_mut().unwrap().1 = occupation;
                    }
                    3 if kept.len() > 1 => {
                        let (id, _) = kept.remove(0);
                        let (status, body) = api
                            .call(Method::DELETE, &format!("/v1/personas/{id}"), None)
                            .await;
                        assert!(status.is_success(), "{status} {body}");
                        deleted.push(id);
                    }
                    _ => {
                        let occupation = format!("made w{w} op{op}");
                        let (status, body) = api
                            .call(
                                Method::POST,
                                "/v1/personas",
                                Some(&json!({"name": format!("Writer {w} #{op}"),
                                    "occupation": occupation, "location": "Oslo, Norway",
                                    "tech_proficiency": "Medium", "behavioral_traits": ["busy"]})),
                            )
                            .await;
                        assert_eq!(status, StatusCode::CREATED, "{body}");
                        kept.push((body["id"].as_u64().unwrap(), occupation));
                    }
                }
                latencies.push(t.elapsed());
            }
            (kept, deleted, latencies)
        }));
    }
    let mut kept = Vec::new();
    let mut deleted = Vec::new();
    let mut latencies = Vec::new();
    for task in tasks {
        let (k, d, l) = task.await.unwrap();
        kept.extend(k);
        deleted.extend(d);
        latencies.extend(l);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    eprintln!(
        "{} writes from {WRITERS} writers on 2 servers in {:.1} s: {:.0}/s, p50 {:?}, p99 {:?}",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        p(0.5),
        p(0.99)
    );
    for api in servers.iter() {
        let (status, list) = api.get("/v1/personas?limit=1000").await;
        assert_eq!(status, StatusCode::OK);
        let items = list["items"].as_array().unwrap();
        let mut ids: Vec<u64> = items.iter().map(|p| p["id"].as_u64().unwrap()).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "no id twice");
        for (id, occupation) in &kept {
            let found = items.iter().find(|p| p["id"] == *id);
            let found = found.unwrap_or_else(|| panic!("acknowledged persona {id} is missing"));
            assert_eq!(
                found["occupation"],
                occupation.as_str(),
                "persona {id}'s last edit"
            );
        }
        for id in &deleted {
            assert!(
                !items.iter().any(|p| p["id"] == *id),
                "deleted persona {id} is back"
            );
        }
        assert_eq!(n, kept.len(), "nothing but what the writers kept");
    }
}

/// A debate run by one server is saved in the database as it goes: another
/// server reads the session (turns and report) and lists it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debate_run_on_one_server_is_read_on_another() {
    let Some(cluster) = PgCluster::shared() else {
        return;
    };
    let mock = support::MockServer::persona_echo(Duration::ZERO).await;
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    import_test_panel(dir.path(), &url, 3);
    let a = Api::on_database_with_llm(&dir.path().join("a"), &url, Some(&mock.base_url));
    let b = Api::on_database(&dir.path().join("b"), &url);
    let request =
        json!({"feature": "Offline mode", "persona_ids": [2, 1], "rounds": 2, "report": true});
    let (status, started) = a.call(Method::POST, "/v1/debates", Some(&request)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    let t = Instant::now();
    let on_b = loop {
        let (status, session) = b.get(&format!("/v1/debates/{id}")).await;
        // The report is written after the debate completes.
        if status == StatusCode::OK && session["report"].is_object() {
            break session;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "{status} {session}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(on_b["status"], "completed", "{on_b}");
    let turns = on_b["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 4, "{on_b}");
    assert!(
        turns
            .iter()
            .all(|t| !t["text"].as_str().unwrap().is_empty())
    );
    assert!(on_b["report"].is_object(), "{on_b}");
    assert_eq!(
        a.get(&format!("/v1/debates/{id}")).await.1,
        on_b,
        "both read one session"
    );
    let (_, list) = b.get("/v1/sessions").await;
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert_eq!(list["items"][0]["status"], "completed");
    assert_eq!(list["items"][0]["personas"].as_array().unwrap().len(), 2);
    // Only the server running a debate can cancel it.
    let (status, _) = b
        .call(Method::DELETE, &format!("/v1/debates/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_is_a_503_until_it_is_back() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let api = Api::on_database(dir.path(), &url);
    let persona = |name: &str| {
        json!({"name": name, "occupation": "Nurse", "location": "Accra, Ghana",
               "tech_proficiency": "Low", "behavioral_traits": ["careful"]})
    };
    let (status, before) = api
        .call(Method::POST, "/v1/personas", Some(&persona("Before")))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{before}");
    assert_eq!(
        api.health().await["status"],
        "degraded",
        "no LLM here, so degraded anyway"
    );
    assert_eq!(api.health().await["checks"]["store"]["ok"], true);

    cluster.stop();
    // /health names the database within a few seconds.
    let t = Instant::now();
    let health = loop {
        let health = api.health().await;
        if health["checks"]["store"]["ok"] == false {
            break health;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{health}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let problem = health["checks"]["store"]["problem"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(problem.contains("database"), "{problem}");
    eprintln!("down noticed in {:?}: {problem}", t.elapsed());
    // Every store request is a 503 that says so, with Retry-After.
    let response = api
        .client
        .post(format!("{}/v1/personas", api.server.base))
        .bearer_auth(&api.server.key)
        .header("content-type", "application/json")
        .body(persona("During").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "database_unavailable", "{body}");
    let (status, body) = api.get("/v1/personas").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");

    cluster.start_again();
    let t = Instant::now();
    loop {
        let health = api.health().await;
        if health["checks"]["store"]["ok"] == true {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{health}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("back noticed in {:?}", t.elapsed());
    let (status, after) = api
        .call(Method::POST, "/v1/personas", Some(&persona("After")))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{after}");
    let (_, list) = api.get("/v1/personas?limit=1000").await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Before") && names.contains(&"After"),
        "{names:?}"
    );
    assert!(!names.contains(&"During"), "the refused write was not made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_before_its_database_serves_once_it_answers() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let url = cluster.fresh_database();
    cluster.stop();
    let dir = tempfile::tempdir().unwrap();
    // The key goes in the key file: the database is down. The server
    // itself must start anyway.
    let key = support::serve::create_key(dir.path(), "test");
    let mut cmd = command(
        dir.path(),
        None,
        &["--database-url", &url, "serve", "--bind", "127.0.0.1:0"],
    );
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut base = None;
    let mut said = Vec::new();
    while base.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("serve starts");
        if let Some(rest) = line.split("API on http://").nth(1) {
            base = rest
                .split_whitespace()
                .next()
                .map(|a| format!("http://{a}"));
        }
        said.push(line);
    }
    let base = base.unwrap();
    assert!(
        said.iter()
            .any(|l| l.contains("unavailable") && l.contains("serving anyway")),
        "{said:?}"
    );
    let http = client();
    let health: Value = http
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["checks"]["store"]["ok"], false, "{health}");
    let r = http
        .get(format!("{base}/v1/personas"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);

    cluster.start_again();
    let t = Instant::now();
    loop {
        let health: Value = http
            .get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if health["checks"]["store"]["ok"] == true {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{health}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Migrated on its own; keys now live in the database, so make one
    // there and use it.
    let out = command(
        dir.path(),
        None,
        &["--database-url", &url, "keys", "create", "--name", "late"],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = text(&out.stdout).trim().to_string();
    let t = Instant::now();
    loop {
        let r = http
            .get(format!("{base}/v1/personas"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["total"], 0, "a new database's panel is empty: {body}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{}", r.status());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `db ARGS` on `url` and checks how it ended (`code`) and that what
/// it printed (stdout and stderr) contains `wanted`; what it printed.
fn expect_db(data: &Path, url: &str, args: &[&str], code: i32, wanted: &str) -> String {
    let out = db_command(data, url, args);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(code), "db {args:?}: {said}");
    assert!(said.contains(wanted), "db {args:?}: {said}");
    said
}

#[test]
fn db_commands_check_first_and_change_nothing_on_bad_input() {
    let Some(cluster) = PgCluster::shared() else {
        return;
    };
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // A new database: status says what is pending, and fails.
    expect_db(data, &url, &["status"], 1, "pending");
    expect_db(data, &url, &["migrate"], 0, "applied 0001");
    expect_db(data, &url, &["migrate"], 0, "up to date");

    let panel = data.join("panel.json");
    std::fs::write(&panel, test_panel(10).to_string()).unwrap();
    let panel = panel.to_str().unwrap();
    let bad = data.join("bad.json");
    std::fs::write(&bad, r#"[{"id": 1, "name": "No fields"}]"#).unwrap();
    expect_db(
        data,
        &url,
        &["import-panel", bad.to_str().unwrap()],
        1,
        "bad.json",
    );
    expect_db(data, &url, &["import-panel", panel], 0, "imported 10");
    // Into a database that has a panel: refused unless told how.
    expect_db(data, &url, &["import-panel", panel], 1, "--replace");
    expect_db(
        data,
        &url,
        &["import-panel", "--merge", panel],
        0,
        "it has 20 now",
    );
    expect_db(
        data,
        &url,
        &["import-panel", "--replace", panel],
        0,
        "it has 10 now",
    );
    expect_db(data, &url, &["status"], 0, "10 personas");
    // Out to a file: the same panel.
    let out_file = data.join("out.json");
    let args = ["export-panel", "--out", out_file.to_str().unwrap()];
    expect_db(data, &url, &args, 0, "exported 10 personas");
    let back: Value = serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(back, test_panel(10));

    // A bad URL, and a database that is not there: clear errors, quickly.
    let bad_url = "postgres://u:secret@127.0.0.1:notaport/x";
    let said = expect_db(data, bad_url, &["status"], 1, "not a valid database URL");
    assert!(!said.contains("secret"), "{said}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let nobody = format!("postgres://u@127.0.0.1:{port}/x");
    expect_db(data, &nobody, &["status"], 1, "unavailable");
    assert!(t.elapsed() < Duration::from_secs(15));
    // `db` without a database says how to give one.
    let out = command(data, None, &["db", "status"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("DATABASE_URL"),
        "{}",
        text(&out.stderr)
    );
}
