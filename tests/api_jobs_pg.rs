//! Synthesis jobs across servers: two real `persona-sim serve` processes on
//! one fresh Postgres database (and one data folder, for the API key), as
//! behind a load balancer. A job started on one is polled to the end on the
//! other, and a job cancelled on the server that does not run it stops on
//! the one that does. With the database down, a job this server does not
//! know is a 503. Skipped (the harness prints "skipped") when no Postgres
//! server can be started outside CI.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::MockServer;
use support::postgres::PgCluster;
use support::serve::{Server, Start};

/// Longest any one wait in these tests may take.
const WAIT: Duration = Duration::from_secs(60);

/// One server of the pair, called with its own key (keys live in the
/// database, so each server's key works on both).
struct Api {
    server: Server,
    key: String,
    client: reqwest::Client,
}

impl Api {
    /// `serve` on `database` with the data folder `own` and the LLM server
    /// `llm`; its key is named after `own`.
    fn start(own: &Path, database: &str, llm: &str) -> Api {
        let name = own.file_name().unwrap().to_str().unwrap().to_string();
        let start = Start {
            llm: Some(llm),
            global: vec!["--database-url", database],
            key_name: &name,
            ..Start::default()
        };
        let server = Server::start_with(own, start);
        Api {
            key: server.key.clone(),
            server,
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (base, key) = (&self.server.base, &self.key);
        let call = support::http::call(&self.client, base, key, method, path, body.as_ref());
        let (status, body) = tokio::time::timeout(WAIT, call).await.expect("an answer");
        (status.as_u16(), body)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Answers 200 to an authenticated request once the database is
    /// migrated (the server migrates in the background on start).
    async fn ready(&self) {
        let started = Instant::now();
        loop {
            let (code, body) = self.get("/v1/personas?limit=1").await;
            if code == 200 {
                return;
            }
            assert!(started.elapsed() < WAIT, "never ready: {code} {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls job `id` until its status is not queued or running.
    async fn until_finished(&self, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let (code, view) = self.get(&format!("/v1/jobs/{id}")).await;
            assert_eq!(code, 200, "{view}");
            if !["queued", "running"].contains(&view["status"].as_str().unwrap()) {
                return view;
            }
            assert!(started.elapsed() < WAIT, "job {id} did not finish: {view}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn total(&self) -> u64 {
        let (code, list) = self.get("/v1/personas?limit=1").await;
        assert_eq!(code, 200, "{list}");
        list["total"].as_u64().unwrap()
    }
}

/// Two servers on a fresh database of the shared cluster, and their data
/// folders.
struct Pair {
    a: Api,
    b: Api,
    _dirs: [tempfile::TempDir; 2],
}

fn pair(cluster: &PgCluster, llm: &str) -> Pair {
    let database = cluster.fresh_database();
    let dirs = [(); 2].map(|_| tempfile::tempdir().unwrap());
    let a = Api::start(dirs[0].path(), &database, llm);
    let b = Api::start(dirs[1].path(), &database, llm);
    Pair { a, b, _dirs: dirs }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_started_on_one_server_is_seen_to_the_end_on_the_other() {
    let Some(cluster) = PgCluster::shared() else {
        return;
    };
    let mock = MockServer::persona_echo(Duration::ZERO).await;
    let Pair { a, b, _dirs } = pair(cluster, &mock.base_url);
    a.ready().await;
    b.ready().await;
    let before = a.total().await;

    let (code, started) = a
        .post(
            "/v1/personas/generate",
            json!({"brief": "ferry captains", "count": 4}),
        )
        .await;
    assert_eq!(code, 202, "{started}");
    let id = started["job_id"].as_str().unwrap();
    // Known to the other server as soon as the client knows it.
    let (code, early) = b.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(code, 200, "{early}");
    assert_eq!(early["id"], id);
    assert_eq!(early["brief"], "ferry captains");

    let view = b.until_finished(id).await;
    assert_eq!(view["status"], "done", "{view}");
    assert_eq!(view["progress"], json!({"done": 4, "total": 4}));
    let results = view["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "{view}");
    // The same answer from the server that ran it.
    let (code, local) = a.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(code, 200);
    assert_eq!(local, view);
    // The personas it saved, on both servers.
    for persona in results {
        for api in [&a, &b] {
            let (code, got) = api.get(&format!("/v1/personas/{}", persona["id"])).await;
            assert_eq!(code, 200, "{got}");
            assert_eq!(got["name"], persona["name"]);
        }
    }
    assert_eq!(b.total().await, before + 4);

    // A job neither server knows.
    let (code, e) = b.get("/v1/jobs/0123456789abcdef").await;
    assert_eq!(code, 404, "{e}");
    let (code, e) = b.delete("/v1/jobs/0123456789abcdef").await;
    assert_eq!(code, 404, "{e}");
    // Cancelling a finished job on the other server changes nothing.
    let (code, after) = b.delete(&format!("/v1/jobs/{id}")).await;
    assert_eq!(code, 200, "{after}");
    assert_eq!(after["status"], "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cancelled_on_the_other_server_stops() {
    let Some(cluster) = PgCluster::shared() else {
        return;
    };
    // About 2 s per persona (40 pieces, 50 ms each): 10 at a time of 40.
    let mock = MockServer::persona_echo(Duration::from_millis(50)).await;
    let Pair { a, b, _dirs } = pair(cluster, &mock.base_url);
    a.ready().await;
    b.ready().await;

    let (code, started) = a
        .post(
            "/v1/personas/generate",
            json!({"brief": "lighthouse keepers", "count": 40}),
        )
        .await;
    assert_eq!(code, 202, "{started}");
    let id = started["job_id"].as_str().unwrap();
    let path = format!("/v1/jobs/{id}");
    // Running on A (B sees it through the database).
    let began = Instant::now();
    loop {
        let (code, view) = b.get(&path).await;
        assert_eq!(code, 200, "{view}");
        if view["status"] == "running" {
            break;
        }
        assert!(began.elapsed() < WAIT, "{view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let asked = Instant::now();
    let (code, answer) = b.delete(&path).await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["id"], id);
    eprintln!(
        "DELETE on B answered {} after {:?}",
        answer["status"],
        asked.elapsed()
    );
    let on_a = a.until_finished(id).await;
    assert_eq!(on_a["status"], "cancelled", "{on_a}");
    let stopped_after = asked.elapsed();
    eprintln!("cancelled on A {stopped_after:?} after the DELETE on B");
    assert!(stopped_after < Duration::from_secs(5), "{stopped_after:?}");
    let on_b = b.until_finished(id).await;
    assert_eq!(on_b["status"], "cancelled", "{on_b}");
    let done = on_a["progress"]["done"].as_u64().unwrap();
    assert!(done < 40, "the job stopped before the end: {on_a}");

    // Nothing more is saved once it is cancelled.
    let saved = a.total().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(a.total().await, saved);
    assert_eq!(b.total().await, saved);
    let (_, later) = b.get(&path).await;
    assert_eq!(later, on_a, "the last write is the cancelled job");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_down_a_job_elsewhere_is_a_503() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let mock = MockServer::persona_echo(Duration::ZERO).await;
    let database = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &database, &mock.base_url);
    api.ready().await;
    let (code, started) = api
        .post("/v1/personas/generate", json!({"brief": "x", "count": 2}))
        .await;
    assert_eq!(code, 202, "{started}");
    let id = started["job_id"].as_str().unwrap();
    api.until_finished(id).await;

    cluster.stop();
    let (code, e) = api.get("/v1/jobs/0123456789abcdef").await;
    assert_eq!(code, 503, "{e}");
    assert_eq!(e["error"]["code"], "database_unavailable", "{e}");
    let (code, e) = api.delete("/v1/jobs/0123456789abcdef").await;
    assert_eq!(code, 503, "{e}");
    assert_eq!(e["error"]["code"], "database_unavailable", "{e}");
    // This server's own job still answers from memory.
    let (code, view) = api.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(code, 200, "{view}");
}
