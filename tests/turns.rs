//! Turns against the mock server, through the real binary: cut where the
//! model speaks for someone else, marked where they stop at the token
//! limit, capped on the client side, counted when the server sends no usage.

mod support;

use std::process::Output;

use serde_json::Value;
use support::binary::{command, text};
use support::{MockServer, Reply, echo_reply};

/// `simulate` with `args` (JSON lines unless `--format` is given) and the
/// session it wrote with `--out`.
async fn simulate(server: &MockServer, args: &[&str]) -> (Output, Value, String) {
    let (out, session, json, _dir) = simulate_in(server, args).await;
    (out, session, json)
}

/// [`simulate`], keeping the data directory.
async fn simulate_in(
    server: &MockServer,
    args: &[&str],
) -> (Output, Value, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.json");
    let mut all = vec!["simulate", "--feature", "Offline mode"];
    if !args.contains(&"--format") {
        all.extend(["--format", "jsonl"]);
    }
    all.extend(args);
    all.extend(["--out", out_file.to_str().unwrap()]);
    let out = support::binary::run(command(dir.path(), Some(&server.base_url), &all)).await;
    let session = std::fs::read_to_string(&out_file)
        .unwrap_or_else(|e| panic!("no --out file ({e}); stderr: {}", text(&out.stderr)));
    let session: Value = serde_json::from_str(&session).unwrap();
    let json = session.to_string();
    (out, session, json, dir)
}

fn events(out: &Output) -> Vec<Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn finish_reasons(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "turn_ended")
        .map(|e| e["finish_reason"].as_str().unwrap().to_string())
        .collect()
}

fn turn_texts(session: &Value) -> Vec<String> {
    session["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn labels_of_other_speakers_cut_turns_and_own_prefixes_are_dropped() {
    // Maria Lopez (1) and Kwame Mensah (2), two rounds.
    let server = MockServer::scripted(vec![
        // Opens as Kwame, so it is asked again; the second reply is hers.
        Reply::text("Kwame Mensah: I would never pay for this."),
        Reply::text("Maria Lopez: I would pay for this."),
        Reply::text("Good point about cost.\nMaria: I agree with you, Kwame."),
        Reply::text("Fine by me.\nLadafía: (from the back) no!"),
        Reply::text("Kwame Mensah: My own words. Note: prices matter."),
    ])
    .await;
    let (out, session, _) = simulate(&server, &["--personas", "1,2", "--rounds", "2"]).await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        turn_texts(&session),
        vec![
            "I would pay for this.",
            "Good point about cost.",
            "Fine by me.",
            "My own words. Note: prices matter."
        ]
    );
    let events = events(&out);
    assert_eq!(
        finish_reasons(&events),
        vec!["stop", "speaker_cut", "speaker_cut", "stop"]
    );
    // What was streamed is what was saved.
    let mut streamed = vec![String::new(); 4];
    for e in events.iter().filter(|e| e["event"] == "token") {
        streamed[e["turn"].as_u64().unwrap() as usize].push_str(e["text"].as_str().unwrap());
    }
    assert_eq!(streamed, turn_texts(&session));
    let turns = session["turns"].as_array().unwrap();
    assert_eq!(turns[0]["finish_reason"], "stop");
    assert_eq!(turns[3]["finish_reason"], "stop");
    // Cut turns (and the first, whose first reply was cut) keep their
    // counts (estimated: the stream was dropped before the server's
    // usage); the last one has the server's.
    for t in &turns[..3] {
        assert!(t["usage"]["prompt_tokens"].as_u64().unwrap() > 50, "{t}");
        assert_eq!(t["usage_estimated"], true, "{t}");
    }
    assert_eq!(turns[3]["usage"]["prompt_tokens"], 42);
    assert!(turns[3].get("usage_estimated").is_none());
    let total: u64 = turns
        .iter()
        .map(|t| {
            t["usage"]["prompt_tokens"].as_u64().unwrap()
                + t["usage"]["completion_tokens"].as_u64().unwrap()
        })
        .sum();
    let usage = &session["usage"];
    assert_eq!(
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap(),
        total
    );
}

#[tokio::test]
async fn a_reply_stopped_at_the_token_limit_is_marked_everywhere() {
    let cut = "I like it, but the price of the";
    let server = MockServer::scripted(vec![
        Reply::LengthStop {
            pieces: support::split_words(cut),
        },
        Reply::LengthStop {
            pieces: support::split_words(cut),
        },
    ])
    .await;
    let (out, session, _) = simulate(&server, &["--personas", "1", "--rounds", "1"]).await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(finish_reasons(&events(&out)), vec!["length"]);
    let turn = &session["turns"][0];
    assert_eq!(turn["finish_reason"], "length");
    assert_eq!(turn["text"], cut, "the text is kept as it was streamed");

    let (out, _, _) = simulate(
        &server,
        &["--personas", "1", "--rounds", "1", "--format", "text"],
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&format!("{cut} … (cut off)\n")), "{stdout}");
}

#[tokio::test]
async fn a_server_that_ignores_max_tokens_is_capped_on_the_client() {
    // One 1 MB chunk, no usage, for every turn.
    let huge = "word ".repeat(200_000);
    let server = MockServer::start(Vec::new(), std::time::Duration::ZERO, move |_| {
        Reply::Stream {
            pieces: vec![huge.clone()],
            usage: None,
        }
    })
    .await;
    let (out, session, json) = simulate(&server, &["--personas", "1,2", "--rounds", "1"]).await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(finish_reasons(&events(&out)), vec!["length", "length"]);
    // 300 tokens a turn (the default) at about 4 characters a token, with
    // the estimate's slack (1.5x) left for the server's own limit.
    for t in session["turns"].as_array().unwrap() {
        let len = t["text"].as_str().unwrap().len();
        // 300 tokens by estimate, with the slack left for the server's own
        // limit: at most 1.5 × 1,200 characters, not a megabyte.
        assert!((1000..=1800).contains(&len), "turn of {len} chars");
        assert_eq!(t["finish_reason"], "length");
        assert!(t["usage"]["completion_tokens"].as_u64().unwrap() <= 450);
    }
    assert!(json.len() < 20_000, "session of {} bytes", json.len());
    // The next prompt carries the capped turn, not a megabyte.
    let second = server.requests()[1].body.to_string();
    assert!(second.len() < 10_000, "request of {} bytes", second.len());
}

#[tokio::test]
async fn without_usage_counts_are_estimated_marked_and_budgeted() {
    let server = MockServer::start(Vec::new(), std::time::Duration::ZERO, |body| {
        Reply::without_usage(echo_reply(body))
    })
    .await;
    let (out, session, _) = simulate(
        &server,
        &[
            "--personas",
            "1,2,3",
            "--rounds",
            "5",
            "--max-tokens-total",
            "1200",
        ],
    )
    .await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let events = events(&out);
    let usage: Vec<&Value> = events.iter().filter(|e| e["event"] == "usage").collect();
    assert!(!usage.is_empty());
    assert!(usage.iter().all(|e| e["estimated"] == true), "{usage:?}");
    assert_eq!(session["status"], "budget_reached");
    let turns = session["turns"].as_array().unwrap();
    assert!(turns.len() < 15, "the budget stopped the debate");
    assert!(
        turns
            .iter()
            .all(|t| t["usage_estimated"] == true && t["usage"]["prompt_tokens"].as_u64() > Some(0))
    );
    let total = session["usage"]["prompt_tokens"].as_u64().unwrap()
        + session["usage"]["completion_tokens"].as_u64().unwrap();
    assert!(total <= 1200, "{total} tokens used of 1200");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("tokens: ≈"), "{stderr}");
}

#[tokio::test]
async fn the_model_the_server_names_is_recorded() {
    // No --model: persona-sim asks for gpt-4o-mini; the server serves what
    // it has.
    let server = MockServer::scripted(vec![Reply::Served {
        model: "SmolLM2-360M-Instruct".into(),
        pieces: support::split_words("I like it."),
    }])
    .await;
    let (out, session, _) = simulate(&server, &["--personas", "1", "--rounds", "1"]).await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(server.requests()[0].body["model"], "gpt-4o-mini");
    assert_eq!(session["backend"]["model"], "SmolLM2-360M-Instruct");
    let models: Vec<Value> = events(&out)
        .into_iter()
        .filter(|e| e["event"] == "model")
        .map(|e| e["model"].clone())
        .collect();
    assert_eq!(models, vec!["SmolLM2-360M-Instruct"]);
    // A server that names the model asked for changes nothing.
    let server = MockServer::persona_echo(std::time::Duration::ZERO).await;
    let (out, session, _) = simulate(&server, &["--personas", "1", "--rounds", "1"]).await;
    assert_eq!(session["backend"]["model"], "gpt-4o-mini");
    assert!(!events(&out).iter().any(|e| e["event"] == "model"));
}

#[tokio::test]
async fn out_json_has_the_time_of_the_last_save() {
    // Slow enough that the run spans more than a second.
    let server = MockServer::persona_echo(std::time::Duration::from_millis(120)).await;
    let (out, session, _, _dir) = simulate_in(&server, &["--personas", "1", "--rounds", "1"]).await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let saved = stderr
        .lines()
        .find_map(|l| l.split(" saved: ").nth(1))
        .expect("the session path");
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(saved.trim()).unwrap_or_else(|_| panic!("{saved}")),
    )
    .unwrap();
    assert_eq!(session["status"], "completed");
    assert_eq!(session["updated_at"], file["updated_at"]);
    assert_ne!(session["updated_at"], session["created_at"]);
}

#[test]
fn the_tui_marks_cut_off_turns_and_estimated_counts() {
    use persona_sim::sim::debate::{SimEvent, TurnFinish};
    use persona_sim::sim::session::Session;
    use support::tui::*;

    let mut app = new_app();
    let config = start_debate(&mut app);
    app.begin_session(Session::new(&config, backend()));
    app.on_sim_event(turn_started(0, 1, 1));
    app.on_sim_event(token(0, "I like it, but the price of the"));
    app.on_sim_event(SimEvent::Usage {
        turn: 0,
        prompt_tokens: 300,
        completion_tokens: 75,
        estimated: true,
    });
    app.on_sim_event(SimEvent::TurnEnded {
        turn: 0,
        finish_reason: TurnFinish::Length,
        stance: None,
    });
    app.on_sim_event(turn_started(1, 1, 3));
    app.on_sim_event(token(1, "Fine."));
    app.on_sim_event(SimEvent::TurnEnded {
        turn: 1,
        finish_reason: TurnFinish::SpeakerCut,
        stance: None,
    });
    let buf = render(&mut app, 120, 40);
    let text = screen(&buf);
    assert!(
        text.contains("I like it, but the price of the … (cut off)"),
        "{text}"
    );
    assert!(text.contains("≈300↑ ≈75↓"), "{text}");
    // A speaker cut is an ordinary end: no mark.
    assert!(!text.contains("Fine. …"), "{text}");
    let status = status_line(&buf);
    assert!(status.contains("≈300 in · ≈75 out"), "{status}");
}

#[tokio::test]
async fn a_turn_ends_with_its_stance_read_out_of_the_text_and_sent_on_turn_ended() {
    let server = MockServer::scripted(vec![
        // The marker split inside its keyword and its numbers.
        Reply::Stream {
            pieces: [
                "I would use it.",
                "\n\nST",
                "ANCE: fo",
                "r, interest 7",
                "/10",
            ]
            .map(String::from)
            .to_vec(),
            usage: Some((42, 12)),
        },
        // No stance line (prose that mentions one is text): unknown.
        Reply::text("My stance: it is too expensive.\nStance matters."),
        // A line that does not read: taken out, unknown.
        Reply::text("Not sure.\nSTANCE: for|mixed|against, interest N/10"),
    ])
    .await;
    let (out, session, _) = simulate(&server, &["--personas", "1,2,3", "--rounds", "1"]).await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let events = events(&out);
    let ended: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "turn_ended")
        .collect();
    assert_eq!(
        ended[0]["stance"],
        serde_json::json!({"position": "for", "interest": 7})
    );
    // Unknown is an explicit null on the event.
    for e in &ended[1..] {
        assert!(e.get("stance").is_some_and(Value::is_null), "{e}");
    }
    let mut streamed = vec![String::new(); 3];
    for e in events.iter().filter(|e| e["event"] == "token") {
        let piece = e["text"].as_str().unwrap();
        assert!(!piece.contains("STANCE"), "{e}");
        streamed[e["turn"].as_u64().unwrap() as usize].push_str(piece);
    }
    assert_eq!(
        streamed,
        vec![
            "I would use it.",
            "My stance: it is too expensive.\nStance matters.",
            "Not sure."
        ]
    );
    assert_eq!(streamed, turn_texts(&session));
    let turns = session["turns"].as_array().unwrap();
    assert_eq!(
        turns[0]["stance"],
        serde_json::json!({"position": "for", "interest": 7})
    );
    // Unknown is absent from the session file.
    assert!(turns[1].get("stance").is_none() && turns[2].get("stance").is_none());
    // Every persona is asked for the line, and the next speakers never see it.
    let requests = server.requests();
    let system = requests[0].body["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("STANCE: for|mixed|against, interest N/10"),
        "{system}"
    );
    let later = requests[2].body["messages"][1]["content"].as_str().unwrap();
    assert!(
        later.contains("I would use it.") && !later.contains("STANCE: for,"),
        "{later}"
    );
}
