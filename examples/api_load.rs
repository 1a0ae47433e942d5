//! Load benchmark of the Persona API (not a test): a server on
//! 127.0.0.1:0 in this process (its own 2-thread runtime, as `serve` has
//! on a 2-core machine) over a generated 10k-persona panel, and a client
//! on its own thread holding 1, 16 or 64 HTTP/1.1 keep-alive connections
//! (hyper, one request in flight per connection), each case bounded to
//! `SECONDS` and `MAX_REQUESTS`. Then the time from nothing to the first
//! answered request with a 100k-persona panel.
//!
//!     CARGO_TARGET_DIR=... cargo run --release --no-default-features --example api_load
//!
//! With `API_LOAD_DATABASE_URL=postgres://...` (an empty database of its
//! own: the benchmark replaces its panel) the server runs on Postgres
//! instead of the panel file, as `serve --database-url` does.
//!
//! Client and server share the machine's cores, so the numbers are a
//! floor for the server alone. No rate limit (`rate_limit: 0`), no log
//! subscriber (the real `serve` also writes one log line per request).

#[path = "../benches/support/panel.rs"]
#[allow(dead_code)]
mod panel;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use persona_sim::api_keys::{KeyStore, Keys};
use persona_sim::db::Db;
use persona_sim::db::panel::PgPanel;
use persona_sim::observe::http::{Limits, serve_router};
use persona_sim::observe::metrics::Metrics;
use persona_sim::persona::panel_store::PanelStore;
use persona_sim::persona::store::{self, StorePaths};
use persona_sim::serve::state::ApiState;
use persona_sim::serve::{self, ServeOptions};
use tokio::net::TcpStream;

/// Longest one case runs.
const SECONDS: f64 = 3.0;
/// Most requests one case makes (a bound even on a very fast machine).
const MAX_REQUESTS: usize = 2_000_000;
const CONNECTIONS: [usize; 3] = [1, 16, 64];
const PANEL: usize = 10_000;
const BIG_PANEL: usize = 100_000;

struct Server {
    addr: SocketAddr,
    key: String,
    metrics: Arc<Metrics>,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn write_panel(dir: &std::path::Path, n: usize) -> StorePaths {
    let paths = StorePaths::for_file(dir.join("personas.json"));
    let text = serde_json::to_string_pretty(&panel::panel(n)).expect("panel serialises");
    std::fs::write(&paths.main, text).expect("panel written");
    paths
}

/// What `serve` does at start (load the panel once and keep it for the
/// first request, build the state and router, listen), on a runtime of
/// its own.
fn start_server(dir: tempfile::TempDir, paths: StorePaths) -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("server runtime");
    let (panel_store, keys) = match database_url() {
        Some(url) => {
            let _context = runtime.enter();
            let db = Db::new(&url).expect("database URL");
            let personas = store::read_panel_file(&paths.main).expect("panel file");
            let panel = Arc::new(PgPanel::new(db.clone()));
            runtime.block_on(async {
                db.migrate().await.expect("migrations");
                panel
                    .change(move |p| {
                        *p = personas;
                        Ok::<_, ()>(())
                    })
                    .await
                    .expect("panel imported")
                    .expect("panel imported");
            });
            (PanelStore::Postgres(panel), Keys::Postgres(db))
        }
        None => (
            PanelStore::File(paths),
            Keys::File(KeyStore::in_dir(dir.path())),
        ),
    };
    let loaded = runtime.block_on(panel_store.load()).expect("panel loads");
    let key = runtime
        .block_on(keys.create(&format!(
            "load{}",
            std::process::id() ^ loaded.personas.len() as u32
        )))
        .expect("key");
    let metrics = Arc::new(Metrics::new());
    let state = ApiState::new(
        panel_store,
        dir.path().join("sessions"),
        keys,
        None,
        Some(metrics.clone()),
        "bench".into(),
    );
    state.prime_panel(loaded);
    let options = ServeOptions {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        rate_limit: 0,
        ..ServeOptions::default()
    };
    let app = serve::router(state, &options).expect("router");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(options.bind))
        .expect("listen");
    let addr = listener.local_addr().expect("address");
    // `serve`'s own limits: at most 64 connections at once.
    runtime.spawn(serve_router(
        listener,
        app,
        Limits::default(),
        metrics.connections(),
    ));
    Server {
        addr,
        key,
        metrics,
        _runtime: runtime,
        _dir: dir,
    }
}

/// The database the benchmark runs on, if any (see the module doc).
fn database_url() -> Option<String> {
    std::env::var("API_LOAD_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Sender {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    sender
}

/// One request (a POST of a new persona for the path [`CREATE`]); the
/// status and the body's length.
async fn call(sender: &mut Sender, addr: SocketAddr, key: &str, path: &str) -> (u16, usize) {
    sender.ready().await.expect("connection ready");
    let (method, body) = if path == CREATE {
        let persona = r#"{"name": "Load Test", "occupation": "Tester", "location": "Oslo, Norway", "tech_proficiency": "Medium", "behavioral_traits": ["busy"]}"#;
        ("POST", Bytes::from_static(persona.as_bytes()))
    } else {
        ("GET", Bytes::new())
    };
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Full::new(body))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, body.len())
}

struct Outcome {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u32>,
}

/// `connections` connections, each sending `path(i)` back to back until
/// the time or request budget is spent.
fn run_case(server: &Server, connections: usize, path: fn(usize) -> String) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let addr = server.addr;
    let key = server.key.clone();
    // The previous case's connections closed on the server's side too
    // (64 is serve's cap: one more would be shed).
    let waited = Instant::now();
    while server.metrics.http_connections_open.get() > 0
        && waited.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    runtime.block_on(async move {
        let mut senders = Vec::new();
        for _ in 0..connections {
            senders.push(connect(addr).await);
        }
        // Warm up: one request per connection (and the panel cache).
        for sender in &mut senders {
            call(sender, addr, &key, &path(0)).await;
        }
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(SECONDS);
        let budget = MAX_REQUESTS / connections;
        let mut tasks = Vec::new();
        for (c, mut sender) in senders.into_iter().enumerate() {
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(1 << 16);
                let mut errors = 0;
                let mut i = c * 7919;
                while latencies.len() < budget && Instant::now() < deadline {
                    i += 1;
                    let t = Instant::now();
                    let (status, _) = call(&mut sender, addr, &key, &path(i)).await;
                    latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    if !(200..300).contains(&status) {
                        errors += 1;
                    }
                }
                (latencies, errors)
            }));
        }
        let mut latencies_us = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (l, e) = task.await.expect("client task");
            latencies_us.extend(l);
            errors += e;
        }
        let elapsed = started.elapsed();
        latencies_us.sort_unstable();
        Outcome {
            requests: latencies_us.len(),
            errors,
            elapsed,
            latencies_us,
        }
    })
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at] as f64 / 1000.0
}

/// The path of a case's i-th request.
type PathFn = fn(usize) -> String;

fn get_path(i: usize) -> String {
    // Spread over the whole panel (a multiplicative hash of i).
    format!("/v1/personas/{}", (i * 2_654_435_761) % PANEL + 1)
}
fn list_path(i: usize) -> String {
    format!("/v1/personas?limit=20&offset={}", (i * 20) % (PANEL - 20))
}
fn search_path(i: usize) -> String {
    const QUERIES: [&str; 4] = [
        "nurse%20prof:high",
        "loc:ghana%20farmer",
        "reliability",
        "%22banking%20apps%22%20prof:low",
    ];
    format!(
        "/v1/personas/search?q={}&limit=20",
        QUERIES[i % QUERIES.len()]
    )
}
fn stats_path(_: usize) -> String {
    "/v1/personas/stats".into()
}
/// The path that is a POST: one new persona per request.
const CREATE: &str = "/v1/personas";
fn create_path(_: usize) -> String {
    CREATE.into()
}

fn main() {
    let cases: [(&str, PathFn); 5] = [
        ("get by id", get_path),
        ("list limit=20", list_path),
        ("search limit=20", search_path),
        ("stats", stats_path),
        ("create", create_path),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let paths = write_panel(dir.path(), PANEL);
    let server = start_server(dir, paths);
    println!(
        "Persona API on {}, {PANEL} personas, server on {} (2 worker threads), client on 1 thread, {SECONDS} s per case\n",
        if database_url().is_some() {
            "Postgres"
        } else {
            "the panel file"
        },
        server.addr
    );
    println!("| request | connections | requests/s | p50 ms | p99 ms | max ms | non-200 |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    // API_LOAD_CASE=list (a part of a case's name) runs only that case, at
    // 16 connections, and skips the start-up (for a profiler).
    let only = std::env::var("API_LOAD_CASE").ok();
    for (name, path) in cases {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let connections: &[usize] = if only.is_some() { &[16] } else { &CONNECTIONS };
        for &connections in connections {
            let o = run_case(&server, connections, path);
            println!(
                "| {name} | {connections} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
                o.requests as f64 / o.elapsed.as_secs_f64(),
                percentile(&o.latencies_us, 0.50),
                percentile(&o.latencies_us, 0.99),
                percentile(&o.latencies_us, 1.0),
                o.errors,
            );
        }
    }
    drop(server);
    // Start-up is measured on the file: with a database the server starts
    // before it reads the panel.
    if only.is_some() || database_url().is_some() {
        return;
    }

    // Start-up with a big panel: from nothing (the file on disk) to the
    // first answered request, as `serve` does it: load (and recover) the
    // panel, keep it (with its search index) for the first request, build
    // the state and router, listen.
    let dir = tempfile::tempdir().expect("temp dir");
    let paths = write_panel(dir.path(), BIG_PANEL);
    let size = std::fs::metadata(&paths.main).map(|m| m.len()).unwrap_or(0);
    let started = Instant::now();
    let server = start_server(dir, paths);
    let listening = started.elapsed();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let (addr, key) = (server.addr, server.key.clone());
    let (first, second) = runtime.block_on(async move {
        let mut sender = connect(addr).await;
        let (status, _) = call(&mut sender, addr, &key, "/v1/personas/1").await;
        assert_eq!(status, 200);
        let first = started.elapsed();
        let t = Instant::now();
        call(&mut sender, addr, &key, "/v1/personas/2").await;
        (first, t.elapsed())
    });
    println!(
        "\nStart-up, {BIG_PANEL} personas ({:.1} MB): listening after {:.0} ms, first answer after {:.0} ms; the next get takes {:.2} ms",
        size as f64 / 1e6,
        listening.as_secs_f64() * 1000.0,
        first.as_secs_f64() * 1000.0,
        second.as_secs_f64() * 1000.0,
    );
}
