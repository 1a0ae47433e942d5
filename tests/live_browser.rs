//! The live page in a real browser: headless Chromium opens `/live` after
//! a debate streamed from the mock server, and the DOM its script built
//! from the event stream is checked (the words, the stance board, an
//! audience question that tries to be markup). Skipped without chromium
//! outside CI; required in CI (`.ci/run` installs it).

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use persona_sim::serve::live::{self, LiveServer};
use persona_sim::sim::debate::{Moderation, SimEvent};
use persona_sim::sim::live::{Feed, QuestionQueue};
use support::live::{client, config, mock_position, run_into, stance_mock};

const PROBES: [&str; 2] = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"];

fn chromium() -> Option<std::path::PathBuf> {
    support::needs::tool("chromium", "apt-get install chromium (.ci/run does)")
}

/// A feed with a finished debate of the first `personas` and `questions`,
/// asked through the page's POST and put by the moderator as audience
/// questions.
async fn streamed_debate(
    personas: usize,
    questions: &[&str],
) -> (LiveServer, Arc<Feed>, QuestionQueue) {
    let (feed, mut queue) = Feed::with_questions();
    let feed = Arc::new(feed);
    let server = live::start("127.0.0.1:0".parse().unwrap(), feed.clone(), None)
        .await
        .unwrap();
    let mock = stance_mock(Duration::ZERO).await;
    let events = run_into(
        &feed,
        &mock,
        &config("Offline mode for field workers", personas, 1),
    )
    .await;
    let turns = events
        .iter()
        .filter(|e| matches!(e, SimEvent::TurnStarted { .. }))
        .count();
    let http = client();
    for (i, probe) in questions.iter().enumerate() {
        let response = http
            .post(format!("http://{}/live/questions", server.addr()))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "text": probe }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
        let question = queue.try_next().unwrap();
        // What the moderator does on accepting it.
        feed.publish(&SimEvent::Moderated(Moderation::Asked {
            turn: turns + i,
            text: question.text,
            audience: true,
        }));
    }
    (server, feed, queue)
}

/// Runs chromium headless on `url` with `args`; what it wrote to stdout.
/// Its stdout is a file, not a pipe: chromium's helper processes inherit
/// it and may keep a pipe open after the browser exits.
///
/// With `server`: chromium's virtual time stands still while a request is
/// open, and the page's event stream never ends, so once the page is
/// watching (and has had a moment to draw what it read) the server is
/// stopped: the stream ends, virtual time runs out, the DOM is written.
async fn run_chromium(
    binary: &Path,
    args: &[String],
    url: &str,
    server: Option<LiveServer>,
) -> String {
    let scratch = tempfile::tempdir().unwrap();
    let out_path = scratch.path().join("stdout");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut command = tokio::process::Command::new(binary);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-proxy-server",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            scratch.path().join("profile").display()
        ))
        .args(args)
        .arg(url)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    if let Some(server) = server {
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.viewers() == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(server.viewers() > 0, "the page opened its event stream");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.shutdown();
    }
    let status = tokio::time::timeout(Duration::from_secs(90), child.wait())
        .await
        .expect("chromium finishes within 90 s")
        .unwrap();
    assert!(status.success(), "chromium failed: {status:?}");
    std::fs::read_to_string(&out_path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_streamed_debate_the_stances_and_questions_as_text() {
    let Some(chromium) = chromium() else {
        return;
    };
    let (server, _feed, _queue) = streamed_debate(3, &PROBES).await;
    let url = format!("http://{}/live", server.addr());
    let dom = run_chromium(
        &chromium,
        &["--virtual-time-budget=2000".into(), "--dump-dom".into()],
        &url,
        Some(server),
    )
    .await;
    assert!(dom.contains("Offline mode for field workers"), "{dom}");
    assert!(
        dom.contains("I like the idea but worry about cost."),
        "streamed words: {dom}"
    );
    assert!(
        !dom.contains("STANCE:"),
        "the stance line is read, not shown"
    );
    let panel = persona_sim::persona::builtin_panel();
    let board = &dom[dom.find(r#"id="board""#).expect("the stance board")..];
    for persona in &panel[..3] {
        let row = &board[board
            .find(&persona.name)
            .unwrap_or_else(|| panic!("{} on the board: {board}", persona.name))..];
        let row = &row[..row.find("</li>").unwrap()];
        let position = mock_position(&persona.name);
        assert!(
            row.contains(&format!("stance-{position}\">{position}<")),
            "{row}"
        );
        let interest = 1 + persona.name.len() % 10;
        assert!(row.contains(&format!("{interest}/10")), "{row}");
    }
    // The probes are text: escaped in the serialized DOM, no element made.
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{dom}"
    );
    assert!(dom.contains("&lt;img src=x onerror=alert(1)&gt;"), "{dom}");
    assert!(!dom.contains("<img"), "no injected image element");
    assert_eq!(
        dom.matches("<script").count(),
        1,
        "only the page's own script"
    );
    assert!(dom.contains(">audience<"), "marked as an audience question");
    assert!(dom.contains("ended: completed"), "the end is shown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_says_when_the_token_is_missing() {
    let Some(chromium) = chromium() else {
        return;
    };
    let feed = Arc::new(Feed::new());
    feed.publish(&SimEvent::DebateStarted {
        feature: "Token-gated feature".into(),
        rounds: 1,
        personas: Vec::new(),
    });
    let server = live::start("127.0.0.1:0".parse().unwrap(), feed, Some("tok".into()))
        .await
        .unwrap();
    let url = format!("http://{}/live", server.addr());
    let dom = run_chromium(&chromium, &["--dump-dom".into()], &url, None).await;
    assert!(dom.contains("needs its viewer token"), "{dom}");
    assert!(!dom.contains("Token-gated feature"));
    let with_token = server.url(Some("tok"));
    let dom = run_chromium(
        &chromium,
        &["--virtual-time-budget=2000".into(), "--dump-dom".into()],
        &with_token,
        Some(server),
    )
    .await;
    assert!(
        dom.contains("Token-gated feature"),
        "the page passes ?token= on to its event stream: {dom}"
    );
}

/// Writes `screenshots/live-page.png` and `screenshots/live-overlay.png`
/// from a streamed debate: `cargo test --test live_browser -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes the README's screenshots"]
async fn screenshots_of_the_page_and_the_overlay() {
    let Some(chromium) = chromium() else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("screenshots");
    for (name, query, extra) in [
        ("live-page.png", "", None),
        (
            "live-overlay.png",
            "?overlay=1",
            Some("--default-background-color=00000000"),
        ),
    ] {
        let (server, _feed, _queue) = streamed_debate(
            4,
            &["Would this work on a cheap Android phone with no signal for a week?"],
        )
        .await;
        let url = format!("http://{}/live{query}", server.addr());
        let path = dir.join(name);
        let mut args = vec![
            "--virtual-time-budget=2000".to_string(),
            "--window-size=1280,800".to_string(),
            format!("--screenshot={}", path.display()),
        ];
        args.extend(extra.map(str::to_string));
        run_chromium(&chromium, &args, &url, Some(server)).await;
        assert!(
            std::fs::metadata(&path).unwrap().len() > 10_000,
            "{name} written"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_round_progress_a_pause_and_the_speaker_mid_turn() {
    let Some(chromium) = chromium() else {
        return;
    };
    let feed = Arc::new(Feed::new());
    let panel = persona_sim::persona::builtin_panel();
    feed.publish(&SimEvent::DebateStarted {
        feature: "Paused feature".into(),
        rounds: 1,
        personas: panel[..2].iter().map(Into::into).collect(),
    });
    feed.publish(&SimEvent::TurnStarted {
        turn: 0,
        round: 1,
        persona_id: panel[1].id,
        speaker: panel[1].name.clone(),
        question: None,
    });
    feed.publish(&SimEvent::Token {
        turn: 0,
        text: "Half a thought".into(),
    });
    feed.publish(&SimEvent::Moderated(Moderation::RoundAdded { rounds: 2 }));
    feed.publish(&SimEvent::Moderated(Moderation::Paused));
    let server = live::start("127.0.0.1:0".parse().unwrap(), feed, None)
        .await
        .unwrap();
    let url = format!("http://{}/live", server.addr());
    let dom = run_chromium(
        &chromium,
        &["--virtual-time-budget=2000".into(), "--dump-dom".into()],
        &url,
        Some(server),
    )
    .await;
    assert!(
        dom.contains(r#"class="badge state-paused">paused<"#),
        "{dom}"
    );
    assert!(dom.contains("Round 1 of 2"), "{dom}");
    assert!(dom.contains(r#"class="turn speaking""#), "{dom}");
    assert!(dom.contains("Half a thought"));
    assert!(
        dom.contains(&panel[1].occupation),
        "the speaker's occupation"
    );
    assert!(dom.contains(&panel[1].location), "and location");
    let board = &dom[dom.find(r#"id="board""#).unwrap()..];
    assert_eq!(
        board.matches("stance-unknown\">unknown<").count(),
        2,
        "no stance yet: unknown"
    );
}
