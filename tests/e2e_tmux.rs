//! End to end: the real binary in a real terminal (tmux) against the mock
//! server: start, debate, scroll, quit, and the terminal is restored.
//! Uses $PERSONA_SIM_E2E_BIN when set (CI points it at the release build).

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::MockServer;
use support::tmux::Tmux;

/// CPU time (user + system, in clock ticks) of the app running in the pane.
fn app_cpu_ticks(tmux: &Tmux) -> Option<u64> {
    let pid = tmux.app_pid()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields[11].parse::<u64>().ok()? + fields[12].parse::<u64>().ok()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debate_in_a_real_terminal_then_quit_restores_it() {
    if !support::needs::tmux() {
        return;
    }
    let server = MockServer::persona_echo(Duration::from_millis(15)).await;
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "env -u OPENAI_API_KEY OPENAI_BASE_URL={url} PERSONA_SIM_DATA_DIR={data} TERM=xterm-256color {bin} --no-metrics; \
         echo EXIT=$?; stty -a | grep -o -- '-\\?icanon'; sleep 600",
        url = server.base_url,
        data = dir.path().display(),
        bin = support::binary::e2e_bin().display(),
    );
    let tmux = Tmux::start("main", 100, 30, &command);
    let wait = Duration::from_secs(20);

    // The blocking tmux calls run off the runtime so the mock keeps serving.
    let tmux = tokio::task::spawn_blocking(move || {
        tmux.wait_for("the persona list", wait, |s| {
            s.contains("Personas 0/14") && s.contains("Maria Lopez")
        });
        // Idle means idle: no redraws, no polling.
        std::thread::sleep(Duration::from_millis(300));
        let before = app_cpu_ticks(&tmux).expect("the app's pid and CPU time");
        std::thread::sleep(Duration::from_secs(2));
        let used = app_cpu_ticks(&tmux).unwrap() - before;
        eprintln!("idle CPU over 2 s: {used} ticks (1 tick = 10 ms)");
        assert!(used <= 1, "idle app used {used} ticks of CPU in 2 s");
        tmux.keys(&["Space", "j", "Space", "Tab"]);
        tmux.text("Offline mode for field workers");
        tmux.keys(&["F5"]);
        let screen = tmux.wait_for("a finished debate", wait, |s| s.contains("✓ finished"));
        assert!(screen.contains("Personas 2/14"), "{screen}");
        assert!(screen.contains("As Maria Lopez, I like it"), "{screen}");
        assert!(screen.contains("As Kwame Mensah, I like it"), "{screen}");
        assert!(screen.contains("openai · gpt-4o-mini"), "{screen}");
        assert!(
            !screen.contains("tokens 0 in"),
            "usage is counted: {screen}"
        );

        // Scroll back, then follow again.
        tmux.keys(&["PPage"]);
        tmux.wait_for("the scrolled marker", wait, |s| s.contains("↑ scrolled"));
        tmux.keys(&["Tab", "End"]);
        tmux.wait_for("following again", wait, |s| !s.contains("↑ scrolled"));

        // Help overlay, then quit from the conversation pane.
        tmux.keys(&["?"]);
        tmux.wait_for("the help overlay", wait, |s| {
            s.contains("Keys") && s.contains("Ctrl-Enter")
        });
        tmux.keys(&["Escape"]);
        tmux.wait_for("help closed", wait, |s| !s.contains("closes this help"));
        tmux.keys(&["q"]);
        let screen = tmux.wait_for("the shell after exit", wait, |s| s.contains("EXIT="));
        assert!(screen.contains("EXIT=0"), "{screen}");
        // Raw mode is off again (icanon, not -icanon) and the alternate
        // screen is gone (the UI's borders are not on the main screen).
        let screen = tmux.wait_for("stty output", wait, |s| s.contains("icanon"));
        assert!(screen.lines().any(|l| l.trim() == "icanon"), "{screen}");
        assert!(!screen.contains("Personas 2/14"), "{screen}");
        tmux
    })
    .await
    .unwrap();
    drop(tmux);
    assert!(server.requests().len() >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_terminal_gets_a_message_and_ctrl_c_quits() {
    if !support::needs::tmux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "env -u OPENAI_API_KEY -u OPENAI_BASE_URL PERSONA_SIM_DATA_DIR={data} {bin} --no-metrics; echo EXIT=$?; sleep 600",
        data = dir.path().display(),
        bin = support::binary::e2e_bin().display(),
    );
    let tmux = Tmux::start("small", 60, 20, &command);
    let wait = Duration::from_secs(20);
    tokio::task::spawn_blocking(move || {
        tmux.wait_for("the size message", wait, |s| {
            s.contains("Terminal too small") && s.contains("80×24")
        });
        // Grow the window: the panes appear. With no key and no model, the
        // app offers the offline model; declining leaves a hint, and F5
        // offers it again.
        Tmux::run(&["resize-window", "-t", &tmux.session, "-x", "90", "-y", "28"]);
        if cfg!(feature = "local") {
            tmux.wait_for("the model offer", wait, |s| {
                s.contains("Offline model") && s.contains("Download it to")
            });
            tmux.keys(&["n"]);
            tmux.wait_for("the fetch hint", wait, |s| {
                s.contains("persona-sim model fetch") && !s.contains("Download it to")
            });
        }
        tmux.wait_for("the panes", wait, |s| s.contains("Personas 0/14"));
        tmux.keys(&["a", "Tab"]);
        tmux.text("Anything");
        tmux.keys(&["F5"]);
        if cfg!(feature = "local") {
            tmux.wait_for("the offer again", wait, |s| s.contains("Download it to"));
            tmux.keys(&["Escape"]);
        } else {
            tmux.wait_for("the no-backend message", wait, |s| {
                s.contains("OPENAI_API_KEY") && s.contains("no backend")
            });
        }
        let screen = tmux.quit(wait);
        assert!(screen.contains("EXIT=0"), "{screen}");
    })
    .await
    .unwrap();
}

/// No key, no model: accept the offer, watch it download (from a local
/// mirror of the real model), then run a real debate on the embedded model.
#[cfg(feature = "local")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_model_is_fetched_from_the_tui_and_debates() {
    if !support::needs::tmux() {
        return;
    }
    // The installed model, served from 127.0.0.1 as a mirror.
    let Some(installed) = support::needs::model() else {
        return;
    };
    let mirror = support::download::serve(std::fs::read(&installed).unwrap(), false).await;
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "env -u OPENAI_API_KEY -u OPENAI_BASE_URL -u PERSONA_SIM_MODEL PERSONA_SIM_MODEL_URL={mirror} \
         PERSONA_SIM_DATA_DIR={data} {bin} --no-metrics --rounds 1; echo EXIT=$?; sleep 600",
        data = dir.path().display(),
        bin = support::binary::e2e_bin().display(),
    );
    let tmux = Tmux::start("local", 110, 32, &command);
    let wait = Duration::from_secs(30);
    tokio::task::spawn_blocking(move || {
        tmux.wait_for("the model offer", wait, |s| s.contains("Download it to"));
        tmux.keys(&["Enter"]);
        tmux.wait_for("the installed notice", wait, |s| {
            s.contains("Model installed")
        });
        let screen = tmux.screen();
        assert!(
            screen.contains("local · SmolLM2-135M-Instruct.Q4_1"),
            "{screen}"
        );
        tmux.keys(&["Space", "j", "Space", "Tab"]);
        tmux.text("A dark mode that follows the phone's schedule");
        tmux.keys(&["F5"]);
        let screen = tmux.wait_for("a finished local debate", Duration::from_secs(180), |s| {
            s.contains("✓ finished") || s.contains("stopped by an error")
        });
        assert!(screen.contains("✓ finished"), "{screen}");
        // The last speaker is on screen (the first may have scrolled away).
        assert!(screen.contains("Kwame Mensah · round 1"), "{screen}");
        assert!(!screen.contains(" 0 out"), "tokens are counted: {screen}");
        // The report may still be being written: quit answers the question.
        let screen = tmux.quit(wait);
        assert!(screen.contains("EXIT=0"), "{screen}");
    })
    .await
    .unwrap();
    let fetched = dir
        .path()
        .join("models")
        .join(persona_sim::llm::fetch::DEFAULT_MODEL_FILE);
    assert_eq!(
        persona_sim::llm::fetch::sha256_file(&fetched).unwrap(),
        persona_sim::llm::fetch::DEFAULT_MODEL_SHA256
    );
}

/// The files in `dir` whose names end in `suffix`.
fn files_ending(dir: &std::path::Path, suffix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect()
}

/// After a debate the report is written on its own: F3 shows it, Enter on an
/// insight jumps to the turn it cites, F4 exports the session as Markdown,
/// and F2 lists it in the history, where a delete can be declined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_jump_export_and_history_in_a_real_terminal() {
    if !support::needs::tmux() {
        return;
    }
    let server = MockServer::persona_echo(Duration::from_millis(5)).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let command = format!(
        "env -u OPENAI_API_KEY OPENAI_BASE_URL={url} PERSONA_SIM_DATA_DIR={data} TERM=xterm-256color {bin} --no-metrics; \
         echo EXIT=$?; sleep 600",
        url = server.base_url,
        data = data.display(),
        bin = support::binary::e2e_bin().display(),
    );
    let tmux = Tmux::start("report", 100, 30, &command);
    let wait = Duration::from_secs(30);

    // The blocking tmux calls run off the runtime so the mock keeps serving.
    let (tmux, data) = tokio::task::spawn_blocking(move || {
        tmux.wait_for("the persona list", wait, |s| {
            s.contains("Personas 0/14") && s.contains("Maria Lopez")
        });
        tmux.keys(&["Space", "j", "Space", "Tab"]);
        tmux.text("Offline mode for field workers");
        tmux.keys(&["F5"]);
        let screen = tmux.wait_for("the report", Duration::from_secs(60), |s| {
            s.contains("Feedback report ready") || s.contains("Report failed")
        });
        assert!(screen.contains("Feedback report ready"), "{screen}");
        assert!(screen.contains("Personas 2/14"), "{screen}");
        assert!(screen.contains(" in · "), "tokens in the status: {screen}");
        assert!(screen.contains("≈$"), "a cost for gpt-4o-mini: {screen}");

        // The report screen: stances, interest, insights.
        tmux.keys(&["F3"]);
        let screen = tmux.wait_for("the report screen", wait, |s| {
            s.contains("Feedback report · Offline mode for field workers")
        });
        assert!(screen.contains("completed"), "{screen}");
        assert!(screen.contains("Maria Lopez"), "{screen}");
        assert!(screen.contains("Kwame Mensah"), "{screen}");
        assert!(screen.contains("Interest"), "{screen}");
        assert!(screen.contains("Insights"), "{screen}");
        assert!(screen.contains("Offer a cheaper plan"), "{screen}");
        assert!(!screen.contains("Personas 2/14"), "{screen}");

        // Enter on the selected insight shows the turn it cites.
        tmux.keys(&["Enter"]);
        let screen = tmux.wait_for("the cited turn", wait, |s| s.contains("showing T"));
        assert!(
            screen.contains("Personas 2/14"),
            "the debate screen: {screen}"
        );
        assert!(!screen.contains("Feedback report ·"), "{screen}");
        assert!(screen.contains("Kwame Mensah · round 1"), "{screen}");
        assert!(
            screen.contains("↑ scrolled"),
            "no longer following: {screen}"
        );

        // Export as Markdown.
        tmux.keys(&["F4"]);
        tmux.wait_for("the export chooser", wait, |s| s.contains("Export session"));
        tmux.keys(&["m"]);
        let screen = tmux.wait_for("the export notice", wait, |s| s.contains("Exported to"));
        assert!(!screen.contains("Export session"), "{screen}");
        // The session is saved under its id and the export is named after it.
        let sessions = files_ending(&data.join("sessions"), ".json");
        assert_eq!(sessions.len(), 1, "one saved session: {sessions:?}");
        let id = sessions[0]
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let export = data.join("exports").join(format!("{id}.md"));
        let notice = format!("Exported to {}", export.display());
        // The whole path, unless a long $TMPDIR pushes it past the line.
        if notice.chars().count() < 98 {
            assert!(screen.contains(&notice), "{notice}: {screen}");
        }

        // The history holds the one session; declining a delete keeps it.
        tmux.keys(&["F2"]);
        let screen = tmux.wait_for("the history", wait, |s| {
            s.contains("History · 1 session ") && s.contains("completed")
        });
        assert!(screen.contains("Offline mode"), "{screen}");
        tmux.keys(&["d"]);
        tmux.wait_for("the delete question", wait, |s| {
            s.contains(&format!("Delete session {id}?")) && s.contains("y deletes · n keeps it")
        });
        tmux.keys(&["n"]);
        let screen = tmux.wait_for("the question gone", wait, |s| !s.contains("n keeps it"));
        assert!(screen.contains("History · 1 session "), "{screen}");
        tmux.keys(&["Escape"]);
        tmux.wait_for("the history closed", wait, |s| !s.contains("History ·"));
        tmux.keys(&["q"]);
        let screen = tmux.wait_for("exit", wait, |s| s.contains("EXIT="));
        assert!(screen.contains("EXIT=0"), "{screen}");
        (tmux, data)
    })
    .await
    .unwrap();
    drop(tmux);

    let sessions = files_ending(&data.join("sessions"), ".json");
    assert_eq!(sessions.len(), 1, "one session kept: {sessions:?}");
    let id = sessions[0]
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let export = data.join("exports").join(format!("{id}.md"));
    let markdown = std::fs::read_to_string(&export)
        .unwrap_or_else(|e| panic!("{} is readable: {e}", export.display()));
    assert!(markdown.contains("## Transcript"), "{markdown}");
    assert!(markdown.contains("## Feedback report"), "{markdown}");
    assert!(markdown.contains("Offer a cheaper plan"), "{markdown}");
    assert!(
        server
            .requests()
            .iter()
            .any(|r| support::is_report_request(&r.body)),
        "the report was asked for"
    );
}

/// The TUI serves /healthz and /metrics on the port it is given; a port that
/// is already taken (another user on a shared server) is reported and the
/// app carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tui_serves_metrics_and_survives_a_taken_port() {
    if !support::needs::tmux() {
        return;
    }
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let command = |port: u16, name: &str| {
        format!(
            "env -u OPENAI_API_KEY OPENAI_BASE_URL={url} PERSONA_SIM_DATA_DIR={data}/{name} {bin} --metrics-port {port}; \
             echo EXIT=$?; sleep 600",
            url = server.base_url,
            data = dir.path().display(),
            bin = support::binary::e2e_bin().display(),
        )
    };
    let wait = Duration::from_secs(20);
    let first = Tmux::start("metrics", 100, 30, &command(port, "a"));
    let first = tokio::task::spawn_blocking(move || {
        first.wait_for("the persona list", wait, |s| s.contains("Personas 0/14"));
        first
    })
    .await
    .unwrap();
    let get = |path: &'static str| async move {
        let response = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    assert_eq!(get("/healthz").await, (200, "OK".to_string()));
    let (_, metrics) = get("/metrics").await;
    assert!(metrics.contains("app_personas 14"), "{metrics}");
    assert!(metrics.contains("app_heartbeat "), "{metrics}");
    let (_, health) = get("/health").await;
    assert!(health.contains("\"status\":\"healthy\""), "{health}");

    // A second instance on the same port: told, and still usable.
    let second = Tmux::start("metrics-taken", 100, 30, &command(port, "b"));
    tokio::task::spawn_blocking(move || {
        let screen = second.wait_for("the port-in-use notice", wait, |s| {
            s.contains("Metrics off: cannot listen on")
        });
        assert!(screen.contains(&format!("127.0.0.1:{port}")), "{screen}");
        second.keys(&["Space"]);
        second.wait_for("a selection", wait, |s| s.contains("Personas 1/14"));
        second.keys(&["q"]);
        second.wait_for("a clean exit", wait, |s| s.contains("EXIT=0"));
        first.keys(&["q"]);
        first.wait_for("a clean exit", wait, |s| s.contains("EXIT=0"));
    })
    .await
    .unwrap();
}

/// Counts what the app in the pane has open: its pid and open descriptors.
fn app_open_fds(tmux: &Tmux) -> Option<(u32, usize)> {
    let pid = tmux.app_pid()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((pid, fds))
}

/// 500 idle connections to the metrics port of a TUI limited to 128 open
/// files (the limit that used to starve it at 129): the app keeps
/// answering keys, runs a debate (LLM calls and session saves need
/// descriptors), and `/healthz` answers again once the idle ones are shed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_to_the_metrics_port_never_starve_the_tui() {
    const IDLE: usize = 500;
    if !support::needs::tmux() {
        return;
    }
    let server = MockServer::persona_echo(Duration::from_millis(5)).await;
    let dir = tempfile::tempdir().unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let command = format!(
        "ulimit -n 128 && env -u OPENAI_API_KEY OPENAI_BASE_URL={url} PERSONA_SIM_DATA_DIR={data} \
         TERM=xterm-256color {bin} --metrics-port {port} --rounds 1; echo EXIT=$?; sleep 600",
        url = server.base_url,
        data = dir.path().display(),
        bin = support::binary::e2e_bin().display(),
    );
    let tmux = Tmux::start("idle-conns", 100, 30, &command);
    let wait = Duration::from_secs(20);
    // A new connection per request: a kept-alive one would hold a slot and
    // answer whatever happens to the others.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let get = |path: &'static str| {
        let client = client.clone();
        async move {
            let response = client
                .get(format!("http://127.0.0.1:{port}{path}"))
                .send()
                .await
                .ok()?;
            Some((response.status().as_u16(), response.text().await.ok()?))
        }
    };
    let tmux = tokio::task::spawn_blocking(move || {
        tmux.wait_for("the persona list", wait, |s| s.contains("Personas 0/14"));
        tmux
    })
    .await
    .unwrap();
    assert_eq!(get("/healthz").await, Some((200, "OK".to_string())));

    // The idle clients: connected, silent.
    let opened = Instant::now();
    let idle = tokio::task::spawn_blocking(move || {
        // A server that stops accepting fills its backlog and connects time
        // out: give up after a few, the app is checked either way.
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut held = Vec::new();
        let mut failed = 0;
        while held.len() < IDLE && failed < 5 {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                Ok(stream) => held.push(stream),
                Err(_) => failed += 1,
            }
        }
        held
    })
    .await
    .unwrap();
    let connected = idle.len();
    eprintln!(
        "{connected} of {IDLE} idle connections opened in {:?}",
        opened.elapsed()
    );

    // The app answers keys and runs a debate while they are held.
    let (tmux, fds) = tokio::task::spawn_blocking(move || {
        let mut most = 0;
        for _ in 0..3 {
            tmux.keys(&["F1"]);
            tmux.wait_for("the help overlay", wait, |s| s.contains("┌ Keys"));
            most = most.max(app_open_fds(&tmux).map_or(0, |(_, n)| n));
            tmux.keys(&["Escape"]);
            tmux.wait_for("help closed", wait, |s| !s.contains("┌ Keys"));
        }
        tmux.keys(&["Space", "j", "Space", "Tab"]);
        tmux.text("Offline mode for field workers");
        tmux.keys(&["F5"]);
        let screen = tmux.wait_for("a finished debate", wait, |s| {
            s.contains("✓ finished") || s.contains("error")
        });
        assert!(screen.contains("✓ finished"), "{screen}");
        most = most.max(app_open_fds(&tmux).map_or(0, |(_, n)| n));
        (tmux, most)
    })
    .await
    .unwrap();
    eprintln!(
        "the app held at most {fds} descriptors with {IDLE} idle clients ({:?} after they connected)",
        opened.elapsed()
    );
    assert!(fds < 128, "{fds} descriptors");
    let saved: Vec<_> = std::fs::read_dir(dir.path().join("sessions"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .collect();
    assert_eq!(saved.len(), 1, "the session was saved");

    // Still held by the clients, shed or timed out by the server:
    // /healthz answers within the header-read timeout and then some.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if get("/healthz").await == Some((200, "OK".to_string())) {
            break;
        }
        assert!(Instant::now() < deadline, "/healthz never answered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "/healthz answers {:?} after the idle clients connected",
        opened.elapsed()
    );
    let (_, metrics) = get("/metrics").await.expect("a scrape");
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in\n{metrics}"))
    };
    let shed = value("app_http_connections_shed_total");
    let open = value("app_http_connections_open");
    eprintln!("shed {shed}, open {open}");
    assert_eq!(connected, IDLE, "every idle client could connect");
    assert!(shed >= (IDLE - 64) as f64, "{shed} shed");
    assert!(open <= 64.0, "{open} open");
    drop(idle);

    tokio::task::spawn_blocking(move || {
        tmux.keys(&["Tab", "q"]);
        let screen = tmux.wait_for("a clean exit", wait, |s| s.contains("EXIT="));
        assert!(screen.contains("EXIT=0"), "{screen}");
    })
    .await
    .unwrap();
}

/// A session file that cannot be written (here `sessions` is a regular
/// file, which stops root too) is an error in the TUI naming the file, never
/// "✓ finished"; once the folder can be made, F8 saves the session the app
/// kept in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_session_save_is_shown_and_f8_saves_it_again() {
    if !support::needs::tmux() {
        return;
    }
    let server = MockServer::persona_echo(Duration::from_millis(2)).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let sessions = data.join("sessions");
    std::fs::write(&sessions, "not a folder").unwrap();
    let command = format!(
        "env -u OPENAI_API_KEY OPENAI_BASE_URL={url} PERSONA_SIM_DATA_DIR={data} TERM=xterm-256color {bin} --no-metrics --rounds 1; \
         echo EXIT=$?; sleep 600",
        url = server.base_url,
        data = data.display(),
        bin = support::binary::e2e_bin().display(),
    );
    let tmux = Tmux::start("unsaved", 180, 30, &command);
    let wait = Duration::from_secs(30);
    let sessions_dir = sessions.clone();
    let tmux = tokio::task::spawn_blocking(move || {
        tmux.wait_for("the persona list", wait, |s| s.contains("Personas 0/14"));
        tmux.keys(&["Space", "j", "Space", "Tab"]);
        tmux.text("Offline mode for field workers");
        tmux.keys(&["F5"]);
        // The debate and its report run to the end, unsaved.
        let screen = tmux.wait_for("the end, unsaved", Duration::from_secs(60), |s| {
            s.contains("✗ not saved · F8")
        });
        let shown = sessions_dir.display().to_string();
        assert!(
            screen.contains(&format!("Session not saved: cannot write {shown}/")),
            "the notice names the file: {screen}"
        );
        assert!(screen.contains("F8 saves it again"), "{screen}");
        assert!(!screen.contains("finished"), "{screen}");
        assert!(screen.contains("As Kwame Mensah, I like it"), "{screen}");

        // Still a file: F8 fails again and says so.
        tmux.keys(&["Tab", "F8"]);
        std::thread::sleep(Duration::from_millis(500));
        let screen = tmux.screen();
        assert!(screen.contains("Session not saved"), "{screen}");
        assert!(screen.contains("✗ not saved · F8"), "{screen}");

        std::fs::remove_file(&sessions_dir).unwrap();
        tmux.keys(&["F8"]);
        let screen = tmux.wait_for("the saved notice", wait, |s| {
            s.contains(&format!("Session saved to {shown}/"))
        });
        assert!(screen.contains("✓ finished"), "{screen}");
        assert!(!screen.contains("not saved ·"), "{screen}");
        let screen = tmux.quit(wait);
        assert!(screen.contains("EXIT=0"), "{screen}");
        tmux
    })
    .await
    .unwrap();
    drop(tmux);
    let files = files_ending(&sessions, ".json");
    assert_eq!(files.len(), 1, "{files:?}");
    let saved = persona_sim::sim::session::SessionStore::load_path(&files[0]).unwrap();
    assert_eq!(
        saved.status,
        persona_sim::sim::session::SessionStatus::Completed
    );
    assert_eq!(saved.turns.len(), 2);
    assert!(saved.turns.iter().all(|t| t.complete));
    assert!(saved.report.is_some(), "the report is in the file too");
}

/// The feature being written is still there after a quit and a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_draft_survives_a_restart() {
    if !support::needs::tmux() {
        return;
    }
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let run = format!(
        "env -u OPENAI_API_KEY OPENAI_BASE_URL={url} PERSONA_SIM_DATA_DIR={data} TERM=xterm-256color {bin} --no-metrics",
        url = server.base_url,
        data = dir.path().display(),
        bin = support::binary::e2e_bin().display(),
    );
    let command = format!("{run}; echo FIRST=$?; {run}; echo EXIT=$?; sleep 600");
    let tmux = Tmux::start("draft", 100, 30, &command);
    let wait = Duration::from_secs(20);
    let data = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        tmux.wait_for("the persona list", wait, |s| s.contains("Personas 0/14"));
        tmux.keys(&["Tab"]);
        tmux.text("Offline mode, half written");
        tmux.wait_for("the text", wait, |s| {
            s.contains("Offline mode, half written")
        });
        tmux.keys(&["C-c"]);
        tmux.wait_for("the second start", wait, |s| {
            !s.contains("FIRST=") && s.contains("Personas 0/14")
        });
        let screen = tmux.wait_for("the draft", wait, |s| {
            s.contains("Offline mode, half written")
        });
        assert!(!screen.contains("Describe the feature"), "{screen}");
        assert_eq!(
            std::fs::read_to_string(data.join("draft.txt")).unwrap(),
            "Offline mode, half written"
        );
        // Emptied, the draft leaves no file behind.
        tmux.keys(&["Tab", "C-a", "C-k"]);
        tmux.wait_for("an empty editor", wait, |s| {
            s.contains("Describe the feature")
        });
        let screen = tmux.quit(wait);
        assert!(screen.contains("EXIT=0"), "{screen}");
        assert!(!data.join("draft.txt").exists());
    })
    .await
    .unwrap();
}
