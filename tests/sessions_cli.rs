//! Sessions and exports from the headless face: the real binary, a real
//! mock server, and a real kill in the middle of a debate.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::MockServer;
use support::binary::{command, text};

/// Runs the binary to the end (see `support::binary::run`).
async fn run(data_dir: &std::path::Path, base_url: Option<&str>, args: &[&str]) -> Output {
    support::binary::run(command(data_dir, base_url, args)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_with_report_writes_markdown_and_json_and_lists_the_session() {
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("out/debate.md");
    let out = run(
        dir.path(),
        Some(&server.base_url),
        &[
            "simulate",
            "--feature",
            "Dark mode for night shifts",
            "--personas",
            "1,2",
            "--rounds",
            "1",
            "--report",
            "--out",
            md.to_str().unwrap(),
        ],
    )
    .await;
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(stdout.contains("## Feedback report"), "{stdout}");
    assert!(stdout.contains("Offer a cheaper plan"), "{stdout}");
    assert!(
        stderr.contains("session ") && stderr.contains(" saved: "),
        "{stderr}"
    );
    assert!(stderr.contains("≈$"), "cost for gpt-4o-mini: {stderr}");
    let written = std::fs::read_to_string(&md).unwrap();
    for needle in [
        "# Persona debate: Dark mode for night shifts",
        "### T1 · Maria Lopez",
        "### T2 · Kwame Mensah",
        "## Feedback report",
        "### Actionable insights",
        "1. **Offer a cheaper plan.**",
    ] {
        assert!(written.contains(needle), "missing {needle:?} in\n{written}");
    }

    let list = run(dir.path(), None, &["sessions", "list"]).await;
    let listing = text(&list.stdout);
    assert!(list.status.success(), "{}", text(&list.stderr));
    let row = listing.lines().nth(1).expect("one session row");
    assert!(row.contains("completed"), "{listing}");
    assert!(row.contains("2 personas, 2 turns"), "{listing}");
    assert!(row.contains("Dark mode for night shifts"), "{listing}");
    let id = row.split_whitespace().next().unwrap().to_string();

    let json_path = dir.path().join("s.json");
    let export = run(
        dir.path(),
        None,
        &[
            "sessions",
            "export",
            &id[..12],
            "--format",
            "json",
            "--out",
            json_path.to_str().unwrap(),
        ],
    )
    .await;
    assert!(export.status.success(), "{}", text(&export.stderr));
    let session: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(session["id"], id.as_str());
    assert_eq!(session["status"], "completed");
    assert_eq!(session["turns"].as_array().unwrap().len(), 2);
    assert!(session["report"]["insights"][0]["change"].is_string());
    assert!(session["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    let search = run(
        dir.path(),
        None,
        &["sessions", "list", "--search", "kwame dark"],
    )
    .await;
    assert_eq!(text(&search.stdout).lines().count(), 2);
    let none = run(
        dir.path(),
        None,
        &["sessions", "list", "--search", "nothing-like-this"],
    )
    .await;
    assert!(text(&none.stderr).contains("no sessions"));

    let bad = run(dir.path(), None, &["sessions", "show", "1999"]).await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("no session matches \"1999\"")
            && text(&bad.stderr).contains("see `persona-sim sessions list`"),
        "{}",
        text(&bad.stderr)
    );
    // A session file from a newer release is named, with both versions,
    // and listing skips it with a note.
    let mut newer = session.clone();
    newer["id"] = "29990101-000000-ffff".into();
    newer["version"] = 99.into();
    let newer_path = dir.path().join("sessions/29990101-000000-ffff.json");
    std::fs::write(&newer_path, newer.to_string()).unwrap();
    let bad = run(
        dir.path(),
        None,
        &["sessions", "show", "29990101-000000-ffff"],
    )
    .await;
    assert_eq!(bad.status.code(), Some(1));
    let stderr = text(&bad.stderr);
    assert!(
        stderr.contains(&newer_path.display().to_string()) && stderr.contains("format version 99"),
        "{stderr}"
    );
    let list = run(dir.path(), None, &["sessions", "list"]).await;
    assert!(list.status.success());
    assert!(
        text(&list.stderr).contains("note: skipped") && text(&list.stderr).contains("version 99"),
        "{}",
        text(&list.stderr)
    );
    assert_eq!(
        text(&list.stdout).lines().count(),
        2,
        "the readable one still listed"
    );
    let bad = run(
        dir.path(),
        None,
        &["simulate", "--feature", "x", "--out", "a.pdf"],
    )
    .await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains(".md or .json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_debate_keeps_its_finished_turns_and_shows_as_incomplete() {
    // Slow chunks: a turn takes about a second.
    let server = MockServer::persona_echo(Duration::from_millis(60)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(
        dir.path(),
        Some(&server.base_url),
        &[
            "simulate",
            "--feature",
            "Offline mode",
            "--personas",
            "1,2,3",
            "--rounds",
            "2",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Kill it once the third turn has started: two turns are finished.
    let saw_third = tokio::task::spawn_blocking(move || {
        let mut headers = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line.starts_with("## ") {
                headers += 1;
                if headers == 3 {
                    return true;
                }
            }
        }
        false
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    assert!(
        tokio::time::timeout_at(deadline.into(), saw_third)
            .await
            .unwrap()
            .unwrap(),
        "the third turn never started"
    );
    // Alive, it holds the session's lock: another process lists it running.
    let list = run(dir.path(), None, &["sessions", "list"]).await;
    let listing = text(&list.stdout);
    assert!(
        listing
            .lines()
            .nth(1)
            .is_some_and(|row| row.contains("running")),
        "{listing}"
    );
    child.kill().unwrap(); // SIGKILL: no chance to tidy up
    child.wait().unwrap();

    let list = run(dir.path(), None, &["sessions", "list"]).await;
    let listing = text(&list.stdout);
    let row = listing
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("no session listed:\n{listing}"));
    assert!(row.contains("incomplete"), "{listing}");
    assert!(row.contains("3 personas, 2 turns"), "{listing}");
    let id = row.split_whitespace().next().unwrap();

    let show = run(dir.path(), None, &["sessions", "show", id]).await;
    let md = text(&show.stdout);
    assert!(show.status.success(), "{}", text(&show.stderr));
    assert!(md.contains("- Status: incomplete"), "{md}");
    assert!(md.contains("### T1 · Maria Lopez"), "{md}");
    assert!(
        md.contains("As Maria Lopez, I like it but worry about cost."),
        "{md}"
    );
    assert!(md.contains("### T2 · Kwame Mensah"), "{md}");
    assert!(md.contains("As Kwame Mensah, I like it"), "{md}");
    assert!(!md.contains("cut off"), "finished turns are intact: {md}");
    // The session file is valid JSON: the kill never left a torn write.
    // The lock file stays (nothing ran to remove it), released by the OS.
    let mut files: Vec<_> = std::fs::read_dir(dir.path().join("sessions"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [format!(".{id}.lock"), format!("{id}.json")],
        "no temp files left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_budget_stops_the_headless_debate_with_a_partial_report() {
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        Some(&server.base_url),
        &[
            "simulate",
            "--feature",
            "Offline mode",
            "--personas",
            "1,2,3",
            "--rounds",
            "3",
            "--max-tokens-total",
            "300",
            "--report",
            "--format",
            "jsonl",
        ],
    )
    .await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("stopped at the token budget (--max-tokens-total 300)"),
        "{stderr}"
    );
    let events: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let turns = events
        .iter()
        .filter(|e| e["event"] == "turn_started")
        .count();
    assert!((1..9).contains(&turns), "{turns} turns");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "done" && e["outcome"] == "budget_reached")
    );
    let ready = events
        .iter()
        .find(|e| e["event"] == "report_ready")
        .expect("a report after the budget stop");
    assert_eq!(ready["report"]["partial"], true);
    let list = run(dir.path(), None, &["sessions", "list"]).await;
    assert!(text(&list.stdout).contains("budget reached"));
    let id = text(&list.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let show = run(dir.path(), None, &["sessions", "show", &id]).await;
    assert!(text(&show.stdout).contains("Partial report: the debate did not finish"));
}

/// `sessions rm|show|export` take session ids only: a path that would reach
/// the panel, its backup or any other file is refused and nothing is
/// deleted or read.
#[tokio::test]
async fn session_commands_refuse_ids_that_leave_the_sessions_folder() {
    let dir = tempfile::tempdir().unwrap();
    // A first run writes the panel into the data dir.
    let list = run(dir.path(), None, &["personas", "list"]).await;
    assert!(list.status.success(), "{}", text(&list.stderr));
    let panel = dir.path().join("personas.json");
    assert!(panel.exists());
    std::fs::create_dir_all(dir.path().join("sessions")).unwrap();
    for args in [
        &["sessions", "rm", "../personas"][..],
        &["sessions", "rm", "../personas_backup"],
        &["sessions", "show", "../personas"],
        &["sessions", "export", "../personas", "--format", "json"],
    ] {
        let out = run(dir.path(), None, args).await;
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(
            text(&out.stderr).contains("is not a session id"),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stdout).is_empty(), "{args:?} printed a file");
    }
    assert!(panel.exists(), "the panel is still there");
}

/// A session that cannot be written (here `sessions` is a file, not a
/// folder) is never reported as saved: the error is said and the exit code
/// is 1; the transcript still reaches stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_cannot_be_saved_is_an_error_not_a_success() {
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sessions"), "not a folder").unwrap();
    let out = run(
        dir.path(),
        Some(&server.base_url),
        &[
            "simulate",
            "--feature",
            "Offline mode",
            "--personas",
            "1",
            "--rounds",
            "1",
        ],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("the session was not saved"), "{stderr}");
    assert!(
        !stderr.lines().any(|l| l.starts_with("session ")),
        "no 'session … saved' line: {stderr}"
    );
    assert!(!text(&out.stdout).is_empty(), "the debate itself was shown");
}

/// The failed save is an event in `jsonl`, naming the file, when it
/// happens (a face can say so at once, not only at the end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_session_save_is_a_jsonl_event_naming_the_file() {
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sessions"), "not a folder").unwrap();
    let out = run(
        dir.path(),
        Some(&server.base_url),
        &[
            "simulate",
            "--feature",
            "Offline mode",
            "--personas",
            "1",
            "--rounds",
            "1",
            "--format",
            "jsonl",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let events: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "session_save_failed")
        .collect();
    // At the start, after the turn, at the end.
    assert_eq!(failed.len(), 3, "{events:?}");
    let path = failed[0]["path"].as_str().unwrap();
    assert!(
        path.starts_with(&dir.path().join("sessions").display().to_string())
            && path.ends_with(".json"),
        "{path}"
    );
    assert!(
        failed[0]["message"].as_str().unwrap().contains(path),
        "{:?}",
        failed[0]
    );
    assert!(!events.iter().any(|e| e["event"] == "session_saved"));
}

/// `sessions rm` with a prefix (or an id that is not there) says, once,
/// that it takes a full id, and names the session the prefix starts.
#[tokio::test]
async fn sessions_rm_with_a_prefix_asks_for_the_full_id_once() {
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        Some(&server.base_url),
        &[
            "simulate",
            "--feature",
            "x",
            "--personas",
            "1",
            "--rounds",
            "1",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = std::fs::read_dir(dir.path().join("sessions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let id = file.file_stem().unwrap().to_str().unwrap().to_string();
    let out = run(dir.path(), None, &["sessions", "rm", &id[..8]]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("full id") && stderr.contains(&id),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one message: {stderr}");
    assert!(!stderr.contains("os error"), "{stderr}");
    assert!(file.exists());
    let out = run(dir.path(), None, &["sessions", "rm", &id]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!file.exists());
}
