//! The metrics server's accept loop under clients that hold connections:
//! each limit of `observe::http::Limits`, on short settings, against raw
//! sockets on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use persona_sim::observe::http::{Limits, router, serve_router};
use persona_sim::observe::metrics::{ConnectionMetrics, Metrics};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LONG: Duration = Duration::from_secs(60);

async fn start(app: Router, limits: Limits) -> (SocketAddr, ConnectionMetrics) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counters = ConnectionMetrics::detached();
    tokio::spawn(serve_router(listener, app, limits, counters.clone()));
    (addr, counters)
}

fn app() -> Router {
    router(Arc::new(Metrics::new()), "test")
}

/// Reads until the server closes the connection (EOF or reset); what it
/// sent and how long that took. Fails after `within`.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + within),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => panic!(
                "still open after {within:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

async fn healthz(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    read_to_close(&mut stream, Duration::from_secs(5)).await.0
}

/// Waits until `check` holds, polling; fails after 5 s.
async fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_connection_that_sends_no_whole_request_head_is_closed() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: LONG,
        max_connections: 8,
    };
    let (addr, counters) = start(app(), limits).await;
    let started = Instant::now();
    // Silent.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // Half a head (a slowloris).
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    read_to_close(&mut silent, Duration::from_secs(5)).await;
    let silent_after = started.elapsed();
    read_to_close(&mut slow, Duration::from_secs(5)).await;
    let slow_after = started.elapsed();
    eprintln!("silent closed after {silent_after:?}, half a head after {slow_after:?}");
    assert!(
        silent_after >= Duration::from_millis(250),
        "{silent_after:?}"
    );
    assert!(slow_after >= Duration::from_millis(250), "{slow_after:?}");
    assert!(slow_after < Duration::from_secs(3), "{slow_after:?}");
    until("both connections released", || counters.open.get() == 0).await;
    assert!(healthz(addr).await.ends_with("OK"));
}

#[tokio::test]
async fn a_kept_alive_connection_with_nothing_in_flight_is_closed_when_idle() {
    let limits = Limits {
        header_read_timeout: LONG,
        idle_timeout: Duration::from_millis(300),
        max_connections: 8,
    };
    let (addr, counters) = start(app(), limits).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("content-length: 2"), "not chunked: {head}");
    // Kept alive, then idle.
    let (rest, after) = read_to_close(&mut stream, Duration::from_secs(5)).await;
    eprintln!("idle keep-alive connection closed after {after:?}");
    assert_eq!(rest, "");
    assert!(after >= Duration::from_millis(250), "{after:?}");
    until("the connection released", || counters.open.get() == 0).await;
}

#[tokio::test]
async fn a_request_in_flight_outlives_the_idle_timeout() {
    let limits = Limits {
        header_read_timeout: LONG,
        idle_timeout: Duration::from_millis(200),
        max_connections: 8,
    };
    let slow = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(700)).await;
            "done"
        }),
    );
    let (addr, _) = start(slow, limits).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The test's runtime runs on this thread: its CPU time is the server's
    // while it waits (a watchdog re-armed in the past would spin it).
    let cpu_before = thread_cpu();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let (response, _) = read_to_close(&mut stream, Duration::from_secs(5)).await;
    let cpu = thread_cpu() - cpu_before;
    eprintln!("CPU while a 700 ms request was in flight: {cpu:?}");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("done"), "{response}");
    assert!(cpu < Duration::from_millis(200), "{cpu:?}");
}

/// CPU time of the calling thread (zero where libc is not a dependency).
#[cfg(not(unix))]
fn thread_cpu() -> Duration {
    Duration::ZERO
}

/// CPU time of the calling thread.
#[cfg(unix)]
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the struct we own.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) },
        0
    );
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[tokio::test]
async fn connections_beyond_the_cap_are_shed_at_once() {
    let limits = Limits {
        header_read_timeout: LONG,
        idle_timeout: LONG,
        max_connections: 3,
    };
    let (addr, counters) = start(app(), limits).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    until("three connections served", || counters.open.get() == 3).await;
    for i in 1..=5 {
        let mut extra = TcpStream::connect(addr).await.unwrap();
        let (said, after) = read_to_close(&mut extra, Duration::from_secs(2)).await;
        assert!(said.starts_with("HTTP/1.1 503"), "{said:?}");
        assert!(after < Duration::from_secs(1), "shed at once: {after:?}");
        assert_eq!(counters.shed.get(), i);
    }
    assert_eq!(counters.open.get(), 3);
    // A slot frees when a client leaves.
    drop(held.pop());
    until("a slot freed", || counters.open.get() == 2).await;
    assert!(healthz(addr).await.ends_with("OK"));
    assert_eq!(counters.shed.get(), 5);
}

#[tokio::test]
async fn the_counters_are_scraped_from_the_first_request() {
    let metrics = Arc::new(Metrics::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_router(
        listener,
        router(metrics.clone(), "test"),
        Limits::default(),
        metrics.connections(),
    ));
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let (text, _) = read_to_close(&mut stream, Duration::from_secs(5)).await;
    assert!(text.contains("app_http_connections_shed_total 0"), "{text}");
    // The scrape's own connection.
    assert!(text.contains("app_http_connections_open 1"), "{text}");
}

/// The server of [`out_of_descriptors_the_accept_loop_backs_off`], run as a
/// child process: with a soft limit of 24 open files it serves on
/// 127.0.0.1, prints the port, and stops by itself after 20 s. Does
/// nothing when run on its own.
#[cfg(target_os = "linux")]
#[test]
#[ignore = "run as a child process by the accept back-off test"]
fn emfile_server_child() {
    if std::env::var_os("PERSONA_SIM_TEST_EMFILE").is_none() {
        return;
    }
    let limit = libc::rlimit {
        rlim_cur: 24,
        rlim_max: 24,
    };
    // SAFETY: setrlimit reads the struct we own.
    assert_eq!(
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) },
        0,
        "{}",
        std::io::Error::last_os_error()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("PORT {}", listener.local_addr().unwrap().port());
        let limits = Limits {
            header_read_timeout: LONG,
            idle_timeout: LONG,
            max_connections: 1000,
        };
        let serving = serve_router(listener, app(), limits, ConnectionMetrics::detached());
        let _ = tokio::time::timeout(Duration::from_secs(20), serving).await;
    });
}

/// CPU time (user + system) of a process, in clock ticks (10 ms).
#[cfg(target_os = "linux")]
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A server out of file descriptors cannot accept the connections waiting
/// in its backlog, and each accept fails at once (EMFILE): it must wait
/// between tries, not spin a core.
#[cfg(target_os = "linux")]
#[test]
fn out_of_descriptors_the_accept_loop_backs_off() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "emfile_server_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PERSONA_SIM_TEST_EMFILE", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(port) = line.split("PORT ").nth(1) {
                let _ = tx.send(port.trim().parse::<u16>().unwrap());
            }
        }
    });
    let Ok(port) = rx.recv_timeout(Duration::from_secs(20)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the child server never started");
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut held = Vec::new();
    let mut failed = 0;
    while held.len() < 100 && failed < 5 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(stream) => held.push(stream),
            Err(_) => failed += 1,
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid) - before;
    let _ = child.kill();
    let _ = child.wait();
    eprintln!(
        "{} connections waiting; the server out of descriptors used {used} ticks of CPU in 2 s",
        held.len()
    );
    assert!(held.len() > 30, "only {} connected", held.len());
    assert!(used <= 20, "the accept loop spins: {used} ticks in 2 s");
}
