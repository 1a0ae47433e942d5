//! The headless face, as a user runs it: the real binary, a real mock server.

mod support;

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use support::{MockServer, Reply};

use support::binary::{command, text};

/// The session file the one run in `data_dir` saved.
fn saved_session_file(data_dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(data_dir.join("sessions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a saved session")
}

/// The binary run to the end (see `support::binary::run`).
async fn run(data_dir: &std::path::Path, base_url: Option<&str>, args: &[&str]) -> Output {
    support::binary::run(command(data_dir, base_url, args)).await
}

#[tokio::test]
async fn simulate_streams_a_readable_transcript() {
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
            "2,5",
            "--rounds",
            "2",
        ],
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let headers: Vec<&str> = stdout.lines().filter(|l| l.starts_with("## ")).collect();
    assert_eq!(
        headers,
        vec![
            "## Kwame Mensah (Cocoa farmer and cooperative treasurer) · round 1",
            "## Aiko Tanaka (University student in design) · round 1",
            "## Kwame Mensah (Cocoa farmer and cooperative treasurer) · round 2",
            "## Aiko Tanaka (University student in design) · round 2",
        ]
    );
    assert!(stdout.contains("As Aiko Tanaka, I like it"));
    assert!(text(&out.stderr).contains("tokens:"));
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn simulate_jsonl_is_one_event_per_line() {
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let feature = dir.path().join("feature.txt");
    std::fs::write(&feature, "Dark mode\nwith a schedule").unwrap();
    let out = run(
        dir.path(),
        Some(&server.base_url),
        &[
            "simulate",
            "--feature-file",
            feature.to_str().unwrap(),
            "--personas",
            "1",
            "--rounds",
            "1",
            "--format",
            "jsonl",
        ],
    )
    .await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let events: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"debate_started"));
    assert_eq!(kinds.get(1), Some(&"turn_started"));
    assert_eq!(kinds.last(), Some(&"done"));
    assert_eq!(events.last().unwrap()["outcome"], "completed");
    assert!(kinds.contains(&"token") && kinds.contains(&"usage") && kinds.contains(&"turn_ended"));
    let user = server.requests()[0].body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(user.contains("Dark mode\nwith a schedule"));
}

#[tokio::test]
async fn simulate_failure_exits_non_zero_with_the_reason() {
    let server = MockServer::scripted(vec![
        Reply::text("First turn is fine."),
        Reply::Cut {
            pieces: support::split_words("Second turn breaks"),
        },
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        Some(&server.base_url),
        &[
            "simulate",
            "--feature",
            "x",
            "--personas",
            "1,2",
            "--rounds",
            "1",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("First turn is fine."));
    assert!(text(&out.stdout).contains("Second turn breaks"));
    assert!(
        text(&out.stderr).contains("error: the connection broke"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let url = Some(server.base_url.as_str());

    let out = run(
        dir.path(),
        url,
        &["simulate", "--feature", "x", "--personas", "1,99"],
    )
    .await;
    // A flag value the run cannot use: 2, as for a flag clap rejects.
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no persona with id 99"),
        "{}",
        text(&out.stderr)
    );

    let out = run(dir.path(), url, &["simulate", "--feature", "   "]).await;
    assert!(text(&out.stderr).contains("feature text is empty"));

    let out = run(
        dir.path(),
        url,
        &["simulate", "--feature-file", "/nonexistent/f.txt"],
    )
    .await;
    assert!(text(&out.stderr).contains("cannot read the feature file /nonexistent/f.txt"));

    let out = run(dir.path(), url, &["simulate"]).await;
    assert_eq!(out.status.code(), Some(2), "clap usage error");

    let out = run(
        dir.path(),
        url,
        &["--rounds", "abc", "simulate", "--feature", "x"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--rounds"));

    let out = run(dir.path(), None, &["simulate", "--feature", "x"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("OPENAI_API_KEY"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn personas_list_prints_the_panel_and_reports_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), None, &["personas", "list"]).await;
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("ID  NAME"));
    assert_eq!(
        stdout.lines().count(),
        1 + persona_sim::persona::builtin_panel().len()
    );
    assert!(text(&out.stderr).contains("First run"));

    // Corrupt the store: the next run restores from the backup and says so.
    std::fs::write(dir.path().join("personas.json"), "{ broken").unwrap();
    let out = run(dir.path(), None, &["personas", "list"]).await;
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("restored 14 personas from personas_backup.json"),
        "{}",
        text(&out.stderr)
    );

    // An explicit file that is bad in one record names it.
    let file = dir.path().join("team.json");
    std::fs::write(&file, r#"[{"id":1,"name":"A","occupation":"B","location":"C","tech_proficiency":"Guru","behavioral_traits":[]}]"#).unwrap();
    std::fs::write(dir.path().join("team_backup.json"), "nope").unwrap();
    let out = run(
        dir.path(),
        None,
        &["--personas", file.to_str().unwrap(), "personas", "list"],
    )
    .await;
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("record 1 (id 1): field `tech_proficiency`"),
        "{stderr}"
    );
    assert!(stderr.contains("writing nothing"), "{stderr}");
}

#[tokio::test]
async fn log_file_gets_llm_lines_and_never_the_key() {
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
    assert!(out.status.success());
    let log = std::fs::read_to_string(dir.path().join("logs/app.log")).unwrap();
    assert!(
        log.contains("turn finished") && log.contains("latency_ms"),
        "{log}"
    );
    assert!(
        !log.contains("sk-cli-test"),
        "the API key leaked into the log"
    );
}

#[tokio::test]
async fn trace_logs_have_llm_call_latency_and_never_the_key_or_auth_header() {
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("custom/debate.log");
    let out = run(
        dir.path(),
        Some(&server.base_url),
        &[
            "--log-level",
            "trace",
            "--log-file",
            log_file.to_str().unwrap(),
            "simulate",
            "--feature",
            "x",
            "--personas",
            "1,2",
            "--rounds",
            "1",
            "--report",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = std::fs::read_to_string(&log_file).unwrap();
    let calls: Vec<&str> = log.lines().filter(|l| l.contains("llm call")).collect();
    assert_eq!(calls.len(), 3, "two turns and the report:\n{log}");
    for line in &calls {
        assert!(line.contains("latency_ms="), "{line}");
        assert!(line.contains(" INFO "), "{line}");
        assert!(line.contains(" llm:"), "component target: {line}");
    }
    assert!(calls.iter().any(|l| l.contains("generate_feedback_report")));
    assert!(
        log.contains(" session:") && log.contains(" debate:"),
        "{log}"
    );
    assert!(!log.contains("sk-cli-test"), "the API key leaked");
    assert!(
        !log.to_ascii_lowercase().contains("bearer"),
        "an Authorization header leaked"
    );
    // Nothing is printed over the terminal either.
    assert!(!text(&out.stderr).contains("TRACE"));
}

/// The core states facts; the command to type about them ("run
/// `persona-sim model fetch`") is the face's to add, so a second face (the
/// TUI, an HTTP API) never shows a CLI command it does not have.
#[test]
fn core_messages_name_no_cli_command() {
    fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for (n, line) in source.lines().enumerate() {
                let code = line.trim_start();
                if !code.starts_with("//") && code.contains("persona-sim ") {
                    found.push(format!("{}:{}: {}", path.display(), n + 1, code));
                }
            }
        }
    }
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for core in ["sim", "llm", "persona"] {
        walk(&src.join(core), &mut found);
    }
    assert!(
        found.is_empty(),
        "core code names a CLI command; say the fact there and add the hint in the face:\n{}",
        found.join("\n")
    );
}

/// A headless debate moderated by JSON lines on stdin: a bad line is named
/// on stderr and changes nothing; the question becomes a moderator turn
/// that the next speaker's prompt carries; `end` stops it and the session
/// records both.
#[tokio::test]
async fn simulate_jsonl_is_moderated_by_json_lines_on_stdin() {
    use std::io::{BufRead, BufReader, Write};
    let server = MockServer::persona_echo(Duration::from_millis(30)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(
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
            "--format",
            "jsonl",
        ],
    );
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let run = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut events: Vec<Value> = Vec::new();
        let mut sent = false;
        for line in lines.by_ref() {
            let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
            let first_token = event["event"] == "token" && !sent;
            events.push(event);
            if first_token {
                sent = true;
                let commands = [
                    r#"{"command": "dance"}"#,
                    r#"{"command": "floor", "persona_id": 9}"#,
                    r#"{"command": "ask", "text": "What if the\nsignal never returns?"}"#,
                    r#"{"command": "end"}"#,
                ];
                for c in commands {
                    writeln!(stdin, "{}", c.replace('\n', "\\n")).unwrap();
                }
                stdin.flush().unwrap();
            }
        }
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        (status, events, stderr)
    });
    let (status, events, stderr) = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the debate ends")
        .unwrap();
    assert!(status.success(), "stderr: {stderr}");
    assert!(stderr.contains("moderator: line 1 ignored"), "{stderr}");
    assert!(
        stderr.contains("moderator: line 2 ignored: persona 9 is not in this debate"),
        "{stderr}"
    );
    let moderated: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "moderated")
        .collect();
    assert_eq!(moderated.len(), 2, "{moderated:?}");
    assert_eq!(moderated[0]["action"], "ended");
    assert_eq!(moderated[1]["action"], "asked");
    assert_eq!(moderated[1]["text"], "What if the signal never returns?");
    let ended = events.iter().find(|e| e["event"] == "turn_ended").unwrap();
    assert_eq!(ended["finish_reason"], "ended");
    assert_eq!(events.last().unwrap()["outcome"], "completed");
    // Only the first speaker spoke: the debate ended during their turn.
    assert_eq!(server.requests().len(), 1);
    let file = saved_session_file(dir.path());
    let session: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let turns = session["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[1]["moderator"], true);
    let actions: Vec<&str> = session["moderation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["ended", "asked"]);
}

/// `eval` on a saved session: the table and the JSON agree with the
/// debate (the stance mock's positions are known), and a missing session
/// is a clear error.
#[tokio::test]
async fn eval_measures_a_saved_session() {
    let server = support::live::stance_mock(Duration::ZERO).await;
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
            "2",
            "--report",
        ],
    )
    .await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let file = saved_session_file(dir.path());
    let id = file.file_stem().unwrap().to_str().unwrap().to_string();
    let table = run(dir.path(), None, &["eval", &id[..12]]).await;
    assert!(table.status.success(), "stderr: {}", text(&table.stderr));
    let table = text(&table.stdout);
    assert!(table.starts_with("SESSION"), "{table}");
    assert!(table.contains(&id), "{table}");
    let json = run(
        dir.path(),
        None,
        &["eval", "--json", file.to_str().unwrap()],
    )
    .await;
    let figures: Value = serde_json::from_slice(&json.stdout).unwrap();
    let e = &figures[0];
    assert_eq!(e["session"], id.as_str());
    assert_eq!(e["turns"], 6);
    // Every persona says the same sentence but for their name: some copying.
    assert!(e["copy_rate"].as_f64().unwrap() > 0.0, "{e}");
    assert_eq!(e["stance_entropy"].as_array().unwrap().len(), 2);
    assert_eq!(e["self_address"], 0);
    let missing = run(dir.path(), None, &["eval", "20990101-000000"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("sessions list"),
        "{}",
        text(&missing.stderr)
    );
}

/// A session run with `--cache` repeats with no server at all: `sessions
/// rerun` answers every request from the cache and says the transcript is
/// the same; the session records its run manifest. Without `--cache`, or
/// for a request never cached, it says why.
#[tokio::test]
async fn a_cached_session_reruns_without_a_server() {
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_arg = cache.to_str().unwrap().to_string();
    let first = run(
        dir.path(),
        Some(&server.base_url),
        &[
            "simulate",
            "--feature",
            "Offline mode",
            "--personas",
            "1,2",
            "--rounds",
            "2",
            "--cache",
            &cache_arg,
        ],
    )
    .await;
    assert!(first.status.success(), "stderr: {}", text(&first.stderr));
    let asked = server.requests().len();
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), asked);
    drop(server);
    let file = saved_session_file(dir.path());
    let id = file.file_stem().unwrap().to_str().unwrap().to_string();
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let manifest = &saved["manifest"];
    assert_eq!(manifest["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["model"], "gpt-4o-mini");
    assert_eq!(manifest["rounds"], 2);
    let temperature = manifest["sampling"]["temperature"].as_f64().unwrap();
    assert!((temperature - 0.8).abs() < 1e-6, "{manifest}");
    assert_eq!(manifest["prompts"].as_str().unwrap().len(), 16);

    // No server now (and no key): every reply comes from the cache.
    let rerun = run(
        dir.path(),
        None,
        &["sessions", "rerun", &id, "--cache", &cache_arg],
    )
    .await;
    let stderr = text(&rerun.stderr);
    assert!(rerun.status.success(), "stderr: {stderr}");
    assert!(
        stderr.contains("the same transcript, turn for turn (4 turns)"),
        "{stderr}"
    );
    assert_eq!(text(&rerun.stdout), text(&first.stdout));

    let no_cache = run(dir.path(), None, &["sessions", "rerun", &id]).await;
    assert_eq!(no_cache.status.code(), Some(1));
    assert!(
        text(&no_cache.stderr).contains("give --cache DIR"),
        "{}",
        text(&no_cache.stderr)
    );
    let empty = dir.path().join("empty-cache");
    let missing = run(
        dir.path(),
        None,
        &["sessions", "rerun", &id, "--cache", empty.to_str().unwrap()],
    )
    .await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("not in the cache"),
        "{}",
        text(&missing.stderr)
    );
}

/// A panel that agrees: every reply is "for"; a devil's advocate (asked so
/// in its prompt) makes the case against, still saying "for" as its view.
fn all_for(body: &Value) -> Reply {
    let user = body["messages"][1]["content"].as_str().unwrap_or("");
    if user.contains("DEVIL'S ADVOCATE") {
        return Reply::text("The case against: a night of lost notes.\nSTANCE: for, interest 6/10");
    }
    Reply::text("Great idea, I agree with everyone.\nSTANCE: for, interest 8/10")
}

fn herding_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "simulate",
        "--feature",
        "Offline mode",
        "--personas",
        "1,2,3",
        "--rounds",
        "1",
    ];
    args.extend_from_slice(extra);
    args
}

/// `--devils-advocate auto`: the herding round is followed by one
/// devil's-advocate turn, announced in the JSON lines and kept in the
/// session file.
#[tokio::test]
async fn simulate_runs_a_devils_advocate_when_the_panel_herds() {
    let server = MockServer::start(Vec::new(), Duration::ZERO, all_for).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        Some(&server.base_url),
        &herding_args(&["--format", "jsonl", "--devils-advocate", "auto"]),
    )
    .await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let events: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let herding: Vec<&Value> = events.iter().filter(|e| e["event"] == "herding").collect();
    assert_eq!(herding.len(), 1, "{events:?}");
    assert_eq!(
        herding[0],
        &serde_json::json!({"event": "herding", "round": 1, "position": "for", "count": 3, "known": 3, "share": 1.0})
    );
    let devil: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "devils_advocate")
        .collect();
    assert_eq!(devil.len(), 1, "{events:?}");
    assert_eq!(devil[0]["turn"], 3);
    assert_eq!(devil[0]["against"], "for");
    assert_eq!(devil[0]["auto"], true);
    // The majority's most interested (all 8/10): the first speaker.
    assert_eq!(devil[0]["persona_id"], 1);
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    let asked = |i: usize| requests[i].body["messages"][1]["content"].to_string();
    assert!(asked(3).contains("DEVIL'S ADVOCATE"), "{}", asked(3));
    assert!((0..3).all(|i| !asked(i).contains("DEVIL'S ADVOCATE")));
    // The session records it: the marked turn, the alarm, the note.
    let file = saved_session_file(dir.path());
    let session: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let marked: Vec<bool> = session["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["devils_advocate"].as_bool().unwrap_or(false))
        .collect();
    assert_eq!(marked, [false, false, false, true]);
    assert_eq!(session["herding"][0]["round"], 1);
    assert_eq!(session["moderation"][0]["action"], "devils_advocate");
}

/// Text output prints the alarm and the devil's-advocate header (auto is
/// `simulate`'s default); `off` keeps the alarm and runs none.
#[tokio::test]
async fn simulate_text_shows_the_alarm_and_off_runs_no_devils_advocate() {
    let server = MockServer::start(Vec::new(), Duration::ZERO, all_for).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), Some(&server.base_url), &herding_args(&[])).await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("[Herding after round 1: 3 of 3 for (100%)]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("(devil's advocate: argues against \"for\", on herding)\nThe case against"),
        "{stdout}"
    );
    let off = run(
        dir.path(),
        Some(&server.base_url),
        &herding_args(&["--devils-advocate", "off"]),
    )
    .await;
    assert!(off.status.success(), "stderr: {}", text(&off.stderr));
    let stdout = text(&off.stdout);
    assert!(stdout.contains("[Herding after round 1"), "{stdout}");
    assert!(!stdout.contains("devil's advocate"), "{stdout}");
    assert_eq!(server.requests().len(), 4 + 3);
}

#[tokio::test]
async fn a_herding_threshold_outside_half_to_one_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        None,
        &herding_args(&["--herding-threshold", "2"]),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--herding-threshold"), "{stderr}");
    assert!(stderr.contains("2 is outside 0.5..=1.0"), "{stderr}");
    let out = run(
        dir.path(),
        None,
        &herding_args(&["--devils-advocate", "often"]),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("[possible values: auto, off]"), "{stderr}");
}

#[tokio::test]
async fn seed_is_sent_to_the_server_only_when_given() {
    for (seed, expected) in [(Some("7"), Some(7)), (None, None)] {
        let server = MockServer::persona_echo(Duration::ZERO).await;
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "simulate",
            "--feature",
            "Offline mode",
            "--personas",
            "1,2",
            "--rounds",
            "1",
        ];
        if let Some(seed) = seed {
            args.extend(["--seed", seed]);
        }
        let out = run(dir.path(), Some(&server.base_url), &args).await;
        assert!(out.status.success(), "stderr: {}", text(&out.stderr));
        let requests = server.requests();
        // Every call (one per turn) carries the same seed.
        assert!(requests.len() >= 2, "{} requests", requests.len());
        for r in &requests {
            match expected {
                Some(n) => assert_eq!(r.body["seed"], n, "{}", r.body),
                None => assert!(r.body.get("seed").is_none(), "{}", r.body),
            }
        }
    }
}

/// Values clap accepts but the run cannot use exit 2 (as a flag clap
/// rejects does), saying what was wrong, before any server is asked.
#[tokio::test]
async fn bad_values_after_parsing_exit_2_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            &["simulate", "--feature", "x", "--personas", "0"][..],
            "no persona with id 0",
        ),
        (
            &["simulate", "--feature", "x", "--personas", "999999"],
            "no persona with id 999999",
        ),
        (
            &["simulate", "--feature", "x", "--personas", "1,1"],
            "listed twice",
        ),
        (&["simulate", "--feature", ""], "feature text is empty"),
        (&["simulate", "--feature", "   "], "feature text is empty"),
        (
            &["--base-url", "http://[::1", "simulate", "--feature", "x"],
            "http://[::1",
        ),
        (
            &["--base-url", "   ", "simulate", "--feature", "x"],
            "the URL is empty",
        ),
        (
            &[
                "--personas-file",
                "/no/such/folder/team.json",
                "personas",
                "list",
            ],
            "/no/such/folder does not exist",
        ),
    ] {
        let out = run(dir.path(), None, args).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert!(
        !std::path::Path::new("/no/such/folder").exists(),
        "no panel was made for the missing folder"
    );
}

#[tokio::test]
async fn an_empty_panel_says_how_to_add_personas() {
    let dir = tempfile::tempdir().unwrap();
    let panel = dir.path().join("empty.json");
    std::fs::write(&panel, "[]").unwrap();
    let out = run(
        dir.path(),
        None,
        &[
            "--personas",
            panel.to_str().unwrap(),
            "simulate",
            "--feature",
            "x",
        ],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("personas add") && stderr.contains("personas generate"),
        "{stderr}"
    );
    assert!(!stderr.contains("select at least one persona"), "{stderr}");
}
