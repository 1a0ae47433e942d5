//! End to end, live: the real TUI in tmux with `--live` and audience
//! questions; a debate of all 14 personas streams from the mock server to
//! 100 spectators over Server-Sent Events (and to one that connects and
//! never reads) while the moderator pauses, resumes and accepts an
//! audience question from the keyboard. Every spectator gets every event in
//! order; the keys keep answering; the app's memory stays bounded.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::MockServer;
use support::tmux::Tmux;

const VIEWERS: usize = 100;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// One spectator: reads `/live/events` until the debate's `done`; returns
/// the (id, event name) of everything it got.
async fn watch(client: reqwest::Client, url: String) -> Vec<(u64, String)> {
    let mut response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut buffer = String::new();
    let mut seen = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut id = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse::<u64>().ok();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = Some(v.trim().to_string());
                }
            }
            let (Some(id), Some(data)) = (id, data) else {
                continue; // a heartbeat comment
            };
            let event: Value = serde_json::from_str(&data).unwrap();
            let name = event["event"].as_str().unwrap().to_string();
            let done = name == "done";
            seen.push((id, name));
            if done {
                return seen;
            }
        }
    }
    panic!("the stream ended before the debate did: {seen:?}");
}

/// Milliseconds from sending `key` until the screen shows `check`.
fn key_latency(tmux: &Tmux, key: &str, check: impl Fn(&str) -> bool) -> f64 {
    let start = Instant::now();
    tmux.keys(&[key]);
    tmux.try_wait_for(Duration::from_secs(5), Duration::from_millis(1), check)
        .unwrap_or_else(|s| panic!("no answer to {key}:\n{s}"));
    start.elapsed().as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_debate_reaches_100_viewers_while_the_moderator_steers_it() {
    if !support::needs::tmux() {
        return;
    }
    let server = MockServer::persona_echo(Duration::from_millis(40)).await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "env -u OPENAI_API_KEY OPENAI_BASE_URL={url} PERSONA_SIM_DATA_DIR={data} TERM=xterm-256color {bin} \
         --no-metrics --rounds 1 --live 127.0.0.1:{port} --live-questions; echo EXIT=$?; sleep 600",
        url = server.base_url,
        data = dir.path().display(),
        bin = support::binary::e2e_bin().display(),
    );
    let tmux = Tmux::start("live", 120, 40, &command);
    let wait = Duration::from_secs(30);
    let tmux = tokio::task::spawn_blocking(move || {
        tmux.wait_for("the persona list and the live address", wait, |s| {
            s.contains("Personas 0/14") && s.contains(&format!("127.0.0.1:{port}/live"))
        });
        tmux
    })
    .await
    .unwrap();
    let pid = tmux.app_pid().expect("the app's pid");
    let rss_before = rss_kib(pid);
    let events = format!("http://127.0.0.1:{port}/live/events");
    let client = reqwest::Client::new();
    let viewers: Vec<_> = (0..VIEWERS)
        .map(|_| tokio::spawn(watch(client.clone(), events.clone())))
        .collect();
    // One who connects and never reads a byte.
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stalled,
        "GET /live/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();

    let started = Instant::now();
    let (tmux, mut latencies) = tokio::task::spawn_blocking(move || {
        tmux.keys(&["a", "Tab"]);
        tmux.text("Offline mode for field workers");
        tmux.keys(&["F5"]);
        tmux.wait_for("the first words", wait, |s| s.contains("As Maria Lopez"));
        // Pause and resume while tokens stream to 100 spectators.
        let mut latencies = Vec::new();
        for _ in 0..5 {
            latencies.push(key_latency(&tmux, "C-p", |s| s.contains("❚❚ paused")));
            latencies.push(key_latency(&tmux, "C-p", |s| !s.contains("❚❚ paused")));
        }
        (tmux, latencies)
    })
    .await
    .unwrap();

    // An audience question, accepted by the moderator.
    let asked = client
        .post(format!("http://127.0.0.1:{port}/live/questions"))
        .header("content-type", "application/json")
        .body(r#"{"text": "Does it work on the night shift?"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 202, "{:?}", asked.text().await);
    let tmux = tokio::task::spawn_blocking(move || {
        tmux.wait_for("the question waiting", wait, |s| {
            s.contains("Audience question waiting")
        });
        tmux.keys(&["C-a"]);
        tmux.wait_for("the audience queue", wait, |s| {
            s.contains("Does it work on the night shift?")
        });
        tmux.keys(&["Enter"]);
        tmux.wait_for("the end of the debate", Duration::from_secs(90), |s| {
            s.contains("✓ finished")
        });
        tmux
    })
    .await
    .unwrap();

    let mut streams = Vec::new();
    for viewer in viewers {
        streams.push(
            tokio::time::timeout(Duration::from_secs(60), viewer)
                .await
                .expect("every viewer reaches the end")
                .unwrap(),
        );
    }
    let elapsed = started.elapsed();
    let rss_after = rss_kib(pid);
    let first = &streams[0];
    assert_eq!(first[0].1, "debate_started");
    for (i, stream) in streams.iter().enumerate() {
        assert_eq!(stream, first, "viewer {i} saw something else");
        for pair in stream.windows(2) {
            assert_eq!(pair[1].0, pair[0].0 + 1, "viewer {i}: ids in order, no gap");
        }
    }
    let turns = first.iter().filter(|(_, e)| e == "turn_started").count();
    assert_eq!(turns, 14, "every persona spoke");
    let moderated = first.iter().filter(|(_, e)| e == "moderated").count();
    assert!(
        moderated >= 10,
        "pauses, resumes and the question: {moderated}"
    );
    latencies.sort_by(f64::total_cmp);
    let median = latencies[latencies.len() / 2];
    let max = latencies[latencies.len() - 1];
    eprintln!(
        "live: {VIEWERS} viewers (+1 stalled) got {} events each in {:.1} s; key→screen median {median:.1} ms, \
         max {max:.1} ms (tmux capture included); app RSS {rss_before} KiB before, {rss_after} KiB after",
        first.len(),
        elapsed.as_secs_f64()
    );
    // Generous for a loaded 2-core CI machine; the figures are printed.
    assert!(median < 100.0, "keys answered in {median:.1} ms (median)");
    assert!(
        rss_after < rss_before + 64 * 1024,
        "memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    drop(stalled);
    tokio::task::spawn_blocking(move || {
        tmux.quit(wait);
    })
    .await
    .unwrap();
}

/// `--stage` in a real terminal: the debate starts on the stage; the
/// stance board fills as personas finish; a moderator question typed with
/// Ctrl-Q shows as a moderator turn. With PERSONA_SIM_SCREENSHOTS set it
/// writes screenshots/stage.ansi and stage.txt (the README's picture).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stage_in_a_real_terminal_with_a_moderator_question() {
    if !support::needs::tmux() {
        return;
    }
    let server = support::live::stance_mock(Duration::from_millis(60)).await;
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "env -u OPENAI_API_KEY OPENAI_BASE_URL={url} PERSONA_SIM_DATA_DIR={data} TERM=xterm-256color {bin} \
         --no-metrics --rounds 2 --stage; echo EXIT=$?; sleep 600",
        url = server.base_url,
        data = dir.path().display(),
        bin = support::binary::e2e_bin().display(),
    );
    let tmux = Tmux::start("stage", 140, 40, &command);
    let wait = Duration::from_secs(30);
    let screen = tokio::task::spawn_blocking(move || {
        // --stage opens on the empty stage; F9 goes to pick, F5 comes back.
        tmux.wait_for("the empty stage", wait, |s| {
            s.contains("No debate on stage yet")
        });
        tmux.keys(&["F9"]);
        tmux.wait_for("the persona list", wait, |s| s.contains("Personas 0/14"));
        tmux.keys(&["Space", "j", "Space", "j", "Space", "j", "Space", "Tab"]);
        tmux.text("Offline mode for field workers: drafts sync when back online");
        tmux.keys(&["F5"]);
        tmux.wait_for("the stage with two stances", wait, |s| {
            s.contains("FEATURE") && s.contains("┌ Stances") && s.matches("/10").count() >= 2
        });
        tmux.keys(&["C-q"]);
        tmux.wait_for("the question box", wait, |s| {
            s.contains("Question to the panel")
        });
        tmux.text("Would this work on a cheap phone with no signal for a week?");
        tmux.keys(&["Enter"]);
        let screen = tmux.wait_for("the moderator's turn and a speaker", wait, |s| {
            s.contains("Moderator · round") && s.contains("▶ SPEAKING")
        });
        if std::env::var_os("PERSONA_SIM_SCREENSHOTS").is_some() {
            let ansi = Tmux::run(&["capture-pane", "-p", "-e", "-t", &tmux.session]);
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("screenshots");
            std::fs::write(dir.join("stage.ansi"), ansi).unwrap();
            std::fs::write(dir.join("stage.txt"), &screen).unwrap();
        }
        tmux.wait_for("the end", Duration::from_secs(60), |s| {
            s.contains("✓ finished")
        });
        let exit = tmux.quit(wait);
        assert!(exit.contains("EXIT=0"), "{exit}");
        screen
    })
    .await
    .unwrap();
    assert!(
        screen.contains("Would this work on a cheap phone with no signal for a week?"),
        "{screen}"
    );
    // Every later turn was asked the question.
    let asked = server
        .requests()
        .iter()
        .filter(|r| {
            r.body["messages"][1]["content"]
                .as_str()
                .is_some_and(|p| p.contains("The moderator asked: \"Would this work"))
        })
        .count();
    assert!(asked >= 1, "the next speakers were asked the question");
}
