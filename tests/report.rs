//! The feedback report, sessions, follow-ups and the token budget, against
//! the mock OpenAI-compatible server over real HTTP; every report is also
//! rendered on ratatui's TestBackend.

mod support;

use persona_sim::sim::moderator::Chair;
use std::sync::Arc;
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use persona_sim::llm::openai::OpenAiBackend;
use persona_sim::llm::{BackendInfo, ChatBackend};
use persona_sim::persona::builtin_panel;
use persona_sim::sim::debate::{DebateConfig, SimEvent};
use persona_sim::sim::report::{ReportFormat, Stance};
use persona_sim::sim::session::{
    ReportPolicy, Session, SessionStatus, SessionStore, run_followup, run_session, session_markdown,
};
use persona_sim::tui::action::Action;
use persona_sim::tui::app::{App, Screen};
use persona_sim::tui::ui;
use support::{MockServer, Reply, is_report_request, report_json};

fn backend(server: &MockServer) -> Arc<dyn ChatBackend> {
    Arc::new(OpenAiBackend::new(support::openai_settings(
        &server.base_url,
        Duration::from_secs(5),
    )))
}

fn config(personas: usize, rounds: u32) -> DebateConfig {
    DebateConfig {
        feature: "Offline mode for field workers\nSync later".into(),
        personas: builtin_panel()[..personas].to_vec(),
        rounds,
        max_tokens_per_turn: 200,
        max_tokens_total: None,
    }
}

/// Runs a debate and its report as a saved session; returns the session,
/// every event, and the store.
async fn run(
    server: &MockServer,
    config: DebateConfig,
    dir: &std::path::Path,
) -> (Session, Vec<SimEvent>, SessionStore) {
    let backend = backend(server);
    let store = SessionStore::new(dir.join("sessions"));
    let (tx, mut rx) = mpsc::channel(1024);
    let session = Session::new(&config, backend.info());
    let task = tokio::spawn(run_session(
        backend,
        session,
        ReportPolicy::Auto,
        Some(store.clone().into()),
        CancellationToken::new(),
        tx,
        Chair::absent(),
    ));
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    (task.await.unwrap(), events, store)
}

/// The report screen, drawn at the given size, as text.
fn render_report(session: &Session, width: u16, height: u16) -> String {
    let info = BackendInfo {
        kind: "openai",
        model: "gpt-4o-mini".into(),
        endpoint: "http://mock/v1".into(),
    };
    let mut app = App::new(builtin_panel(), Some(info), 2, 300);
    app.open_session(session.clone());
    app.update(Action::ToggleReport);
    assert_eq!(app.screen(), Screen::Report);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| ui::draw(f, &mut app)).unwrap();
    let buf = terminal.backend().buffer().clone();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn report_requests(server: &MockServer) -> Vec<Value> {
    server
        .requests()
        .into_iter()
        .map(|r| r.body)
        .filter(is_report_request)
        .collect()
}

#[tokio::test]
async fn a_well_formed_json_report_is_read_saved_and_rendered() {
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let (session, events, store) = run(&server, config(3, 1), dir.path()).await;

    assert_eq!(session.status, SessionStatus::Completed);
    let report = session.report.as_ref().expect("a report");
    assert_eq!(report.format, ReportFormat::Structured);
    assert!(!report.partial);
    assert_eq!(report.personas.len(), 3);
    assert_eq!(report.personas[2].stance, Some(Stance::Against));
    assert_eq!(report.personas[0].interest, Some(8));
    assert_eq!(report.concerns[0].turns, vec![1, 2, 3]);
    assert_eq!(report.insights[0].change, "Offer a cheaper plan");
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SimEvent::ReportToken { .. }))
    );
    // Tokens of the turns and of the report add up in the session.
    let turn_tokens: u32 = session.turns.iter().map(|t| t.usage.unwrap().total()).sum();
    assert!(session.usage.total() > turn_tokens);
    assert!(report.usage.is_some());

    // What was asked: the schema, strict, and the numbered transcript.
    let asked = report_requests(&server);
    assert_eq!(asked.len(), 1);
    let format = &asked[0]["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["name"], "feedback_report");
    assert_eq!(format["json_schema"]["strict"], true);
    let prompt = asked[0]["messages"][1]["content"].as_str().unwrap();
    assert!(prompt.contains("[T3] "), "{prompt}");

    // The file on disk is the same session, report included.
    let saved = store.find(&session.id).unwrap();
    assert_eq!(saved.report, session.report);
    assert_eq!(saved.status, SessionStatus::Completed);

    let screen = render_report(&session, 120, 40);
    for needle in [
        "Feedback report",
        "Personas",
        "Interest 1–10",
        "Offer a cheaper plan",
        "against",
        "8/10",
        "3 personas discussed",
    ] {
        assert!(screen.contains(needle), "missing {needle:?}:\n{screen}");
    }
    let small = render_report(&session, 80, 24);
    assert!(small.contains("Feedback report"), "{small}");
    assert!(small.contains("insight"), "{small}");
}

/// Two debate turns, then this as the report.
async fn with_report_reply(reply: &str) -> (MockServer, Session) {
    let server = MockServer::scripted(vec![
        Reply::text("I need it in the basement wards."),
        Reply::text("Sync conflicts worry me."),
        Reply::text(reply),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (session, _, _) = run(&server, config(2, 1), dir.path()).await;
    (server, session)
}

#[tokio::test]
async fn a_report_in_a_code_fence_after_a_think_block_is_found() {
    let body = json!({"messages": [{"content": ""}, {"content":
        "[T1] Maria Lopez: a\n[T2] Kwame Mensah: b\n"}]});
    let json = report_json(&body).to_string();
    let reply = format!(
        "<think>The user wants {{json}}. Let me think.</think>\nSure! Here is the report:\n```json\n{json}\n```\nHope it helps."
    );
    let (_, session) = with_report_reply(&reply).await;
    let report = session.report.as_ref().unwrap();
    assert_eq!(report.format, ReportFormat::Structured);
    assert_eq!(
        report.personas[0].name.as_deref(),
        Some("Maria Lopez"),
        "{report:?}"
    );
    assert_eq!(report.insights[0].turns, vec![2]);
    let screen = render_report(&session, 100, 30);
    assert!(screen.contains("Offer a cheaper plan"), "{screen}");
}

#[tokio::test]
async fn missing_fields_are_shown_as_missing_not_invented() {
    let reply = r#"{"personas":[{"name":"Maria Lopez","stance":"for"},{"name":"Kwame Mensah","interest":4}],
        "insights":[{"change":"Ship offline drafts first","turns":[1,7]}]}"#;
    let (_, session) = with_report_reply(reply).await;
    let report = session.report.as_ref().unwrap();
    assert_eq!(report.summary, None);
    assert_eq!(report.personas[0].interest, None);
    assert_eq!(report.personas[1].stance, None);
    assert_eq!(report.insights[0].why, None);
    assert_eq!(report.insights[0].turns, vec![1]);
    let notes = report.notes.join(" | ");
    assert!(notes.contains("no summary"), "{notes}");
    assert!(notes.contains("no concerns"), "{notes}");
    assert!(notes.contains("T7"), "{notes}");

    let screen = render_report(&session, 120, 40);
    assert!(screen.contains("(not given)"), "{screen}");
    assert!(screen.contains("Ship offline drafts first"), "{screen}");
    let maria = screen
        .lines()
        .find(|l| l.contains("Maria Lopez") && l.contains("for"))
        .unwrap_or_else(|| panic!("no row for Maria:\n{screen}"));
    assert!(maria.contains('—'), "missing interest shows as —: {maria}");
    assert!(!maria.contains("/10"), "{maria}");
    let md = session_markdown(&session);
    assert!(md.contains("| Maria Lopez | for | *(not given)* |"), "{md}");
}

#[tokio::test]
async fn a_non_json_report_is_shown_as_text_with_a_notice() {
    let (_, session) =
        with_report_reply("Overall the panel liked offline mode but feared sync conflicts.").await;
    let report = session.report.as_ref().unwrap();
    assert_eq!(report.format, ReportFormat::PlainText);
    assert!(report.notes[0].contains("not JSON"));
    let screen = render_report(&session, 80, 24);
    assert!(screen.contains("not JSON"), "{screen}");
    assert!(screen.contains("feared sync conflicts"), "{screen}");
}

#[tokio::test]
async fn a_server_that_rejects_json_schema_gets_asked_again_without_it() {
    let server = MockServer::start(
        vec![
            Reply::text("Yes please."),
            Reply::Status {
                code: 400,
                body: r#"{"error":{"message":"response_format json_schema is not supported"}}"#
                    .into(),
            },
        ],
        Duration::ZERO,
        support::echo_reply,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (session, _, _) = run(&server, config(1, 1), dir.path()).await;
    let report = session.report.as_ref().expect("a report after the retry");
    assert_eq!(report.format, ReportFormat::Structured);
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    let asked: Vec<Value> = server.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(asked.len(), 3);
    assert_eq!(asked[1]["response_format"]["type"], "json_schema");
    // Asked again as a JSON object, the schema written into the prompt.
    assert_eq!(asked[2]["response_format"]["type"], "json_object");
    let system = asked[2]["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("feedback_report"), "{system}");
}

#[tokio::test]
async fn the_token_budget_stops_the_debate_cleanly_with_a_partial_report() {
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(3, 2);
    config.max_tokens_total = Some(300);
    let (session, events, store) = run(&server, config, dir.path()).await;
    assert_eq!(session.status, SessionStatus::BudgetReached);
    assert!(
        (1..6).contains(&session.turns.len()),
        "stopped early: {} turns",
        session.turns.len()
    );
    assert!(session.turns.iter().all(|t| t.complete));
    let spent: u32 = session.turns.iter().map(|t| t.usage.unwrap().total()).sum();
    assert!(spent <= 300, "{spent}");
    let report = session.report.as_ref().expect("a partial report");
    assert!(report.partial);
    assert!(events.iter().any(|e| matches!(
        e,
        SimEvent::Done {
            outcome: persona_sim::sim::debate::Outcome::BudgetReached
        }
    )));
    assert_eq!(
        store.find(&session.id).unwrap().status_label(),
        "budget reached"
    );
    let screen = render_report(&session, 100, 30);
    assert!(screen.contains("Partial report"), "{screen}");
}

#[tokio::test]
async fn a_follow_up_continues_the_same_session() {
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let (session, _, store) = run(&server, config(2, 1), dir.path()).await;
    let before = session.turns.len();
    let (tx, mut rx) = mpsc::channel(256);
    let asked_id = session.personas[1].id;
    let task = tokio::spawn(run_followup(
        backend(&server),
        session,
        "Would you pay 5 euros a month for it?".into(),
        vec![asked_id],
        Some(store.clone().into()),
        CancellationToken::new(),
        tx,
    ));
    while rx.recv().await.is_some() {}
    let session = task.await.unwrap();
    assert_eq!(session.turns.len(), before + 1);
    let answer = session.turns.last().unwrap();
    assert_eq!(answer.persona_id, asked_id);
    assert_eq!(
        answer.question.as_deref(),
        Some("Would you pay 5 euros a month for it?")
    );
    assert!(answer.complete && !answer.text.is_empty());
    // The debate's status and report stay; the file has the new turn.
    assert_eq!(session.status, SessionStatus::Completed);
    let saved = store.find(&session.id).unwrap();
    assert_eq!(saved.turns.len(), before + 1);
    assert!(saved.report.is_some());
    // The persona saw the whole debate and the question.
    let last = server.requests().last().unwrap().body.clone();
    let prompt = last["messages"][1]["content"].as_str().unwrap();
    assert!(prompt.contains("Would you pay 5 euros"), "{prompt}");
    assert!(prompt.contains(&session.turns[0].text), "{prompt}");
    assert!(
        session_markdown(&session).contains("follow-up: “Would you pay 5 euros a month for it?”")
    );
}

#[tokio::test]
async fn cancelling_mid_turn_saves_what_was_said_as_cancelled() {
    let server = MockServer::persona_echo(Duration::from_millis(40)).await;
    let dir = tempfile::tempdir().unwrap();
    let backend = backend(&server);
    let store = SessionStore::new(dir.path().join("sessions"));
    let (tx, mut rx) = mpsc::channel(256);
    let cancel = CancellationToken::new();
    let session = Session::new(&config(2, 1), backend.info());
    let task = tokio::spawn(run_session(
        backend,
        session,
        ReportPolicy::Auto,
        Some(store.clone().into()),
        cancel.clone(),
        tx,
        Chair::absent(),
    ));
    // Cancel after the second turn has started streaming.
    let mut tokens_in_second = 0;
    while let Some(e) = rx.recv().await {
        if let SimEvent::Token { turn: 1, .. } = e {
            tokens_in_second += 1;
            if tokens_in_second == 3 {
                cancel.cancel();
            }
        }
    }
    let session = task.await.unwrap();
    assert_eq!(session.status, SessionStatus::Cancelled);
    assert!(session.report.is_none(), "no report after a cancel");
    let saved = store.find(&session.id).unwrap();
    assert_eq!(saved.status, SessionStatus::Cancelled);
    assert_eq!(saved.turns.len(), 2);
    assert!(saved.turns[0].complete);
    assert!(!saved.turns[1].complete);
    assert!(!saved.turns[1].text.is_empty());
}

#[test]
fn markdown_export_golden() {
    let panel = builtin_panel();
    let config = DebateConfig {
        feature: "Offline mode for field workers\nDrafts sync when back online.".into(),
        personas: panel[..2].to_vec(),
        rounds: 1,
        max_tokens_per_turn: 300,
        max_tokens_total: None,
    };
    let info = BackendInfo {
        kind: "openai",
        model: "gpt-4o-mini".into(),
        endpoint: "https://api.openai.com/v1".into(),
    };
    let mut session = Session::new(&config, info);
    session.id = "20261124-101500-beef".into();
    session.created_at = "2026-11-24T10:15:00+00:00".into();
    session.pid = None;
    let replies = [
        "I chart on a tablet that drops signal in the basement. Offline drafts would save me retyping.",
        "My co-op has one phone. If sync fails we lose the harvest records, so | test it well.",
    ];
    for (i, (p, text)) in panel[..2].iter().zip(replies).enumerate() {
        session.apply(&SimEvent::TurnStarted {
            turn: i,
            round: 1,
            persona_id: p.id,
            speaker: p.name.clone(),
            question: None,
        });
        session.apply(&SimEvent::Token {
            turn: i,
            text: text.into(),
        });
        session.apply(&SimEvent::Usage {
            turn: i,
            prompt_tokens: 400 + i as u32,
            completion_tokens: 60,
            estimated: false,
        });
        session.apply(&SimEvent::TurnEnded {
            turn: i,
            finish_reason: Default::default(),
            stance: None,
        });
    }
    session.apply(&SimEvent::Done {
        outcome: persona_sim::sim::debate::Outcome::Completed,
    });
    let body = json!({"messages": [{"content": ""}, {"content":
        "[T1] Maria Lopez: a\n[T2] Kwame Mensah: b\n"}]});
    let report = persona_sim::sim::report::parse_report(&report_json(&body).to_string(), 2);
    session.apply(&SimEvent::ReportReady {
        report: Box::new(report),
    });
    insta::assert_snapshot!("session_markdown", session_markdown(&session));
}

/// A debate whose report (crafted) names someone who took no part, leaves a
/// participant out, and cites turns by other personas and a turn that does
/// not exist: the saved report has one row per participant, the strays
/// are gone, and the notes and the evaluation say what was dropped.
#[tokio::test]
async fn the_report_is_checked_against_the_debate() {
    let crafted = json!({
        "summary": "Two of them worry about cost.",
        "personas": [
            {"name": "Maria Lopez", "stance": "for", "interest": 8, "reason": "Saves time."},
            {"name": "mock insight about onboarding", "stance": "for", "interest": 5, "reason": "?"}
        ],
        "concerns": [
            {"text": "Cost", "count": 1, "personas": ["Kwame Mensah"], "turns": [1, 2]}
        ],
        "requests": [],
        "insights": [
            {"change": "A cheaper tier", "why": "cost", "helps": "co-ops", "priority": 1, "turns": [2, 9]}
        ]
    })
    .to_string();
    let server = MockServer::start(Vec::new(), Duration::ZERO, move |body| {
        if is_report_request(body) {
            Reply::text(&crafted)
        } else {
            support::echo_reply(body)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (session, _, _) = run(&server, config(2, 1), dir.path()).await;
    let report = session.report.as_ref().expect("a report");
    let names: Vec<&str> = report
        .personas
        .iter()
        .map(|p| p.name.as_deref().unwrap())
        .collect();
    assert_eq!(names, vec!["Maria Lopez", "Kwame Mensah"]);
    assert_eq!(report.personas[1].stance, None, "Kwame: not given");
    // Turn 1 is Maria's: not evidence of Kwame's concern.
    assert_eq!(report.concerns[0].turns, vec![2]);
    assert_eq!(report.insights[0].turns, vec![2]);
    let notes = report.notes.join("\n");
    assert!(notes.contains("mock insight about onboarding"), "{notes}");
    assert!(notes.contains("no stance for Kwame Mensah"), "{notes}");
    assert!(notes.contains("T1 (concern “Cost”)"), "{notes}");
    assert!(notes.contains("T9"), "{notes}");
    let eval = persona_sim::sim::eval::evaluate(&session);
    // 2 kept of 4 the model wrote (T1 and T9 dropped).
    assert_eq!(eval.citation_validity, Some(0.5));
    assert_eq!(eval.uncited_items, Some(0));
    let md = session_markdown(&session);
    assert!(md.contains("| Kwame Mensah | *(not given)* |"), "{md}");
}

/// A report of blank rows (what a small model wrote at its token cap) is a
/// failed report: `simulate --report` exits 1 and says so.
#[tokio::test]
async fn a_report_with_nothing_usable_fails_headless() {
    let server = MockServer::start(Vec::new(), Duration::ZERO, |body| {
        if is_report_request(body) {
            Reply::text(
                r#"{"summary": "", "personas": [{"name": "Maria Lopez"}, {"name": "—"}], "concerns": [], "requests": [], "insights": []}"#,
            )
        } else {
            support::echo_reply(body)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = support::binary::run(support::binary::command(
        dir.path(),
        Some(&server.base_url),
        &[
            "simulate",
            "--feature",
            "Offline mode",
            "--personas",
            "1,2",
            "--rounds",
            "1",
            "--report",
        ],
    ))
    .await;
    let stderr = support::binary::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the feedback report failed"), "{stderr}");
    assert!(
        stderr.contains("no summary and no usable finding"),
        "{stderr}"
    );
    // The session says the report failed; it never holds an empty one.
    let store = SessionStore::new(dir.path().join("sessions"));
    let (sessions, _) = store.list();
    assert!(sessions[0].report.is_none());
    assert!(sessions[0].report_error.is_some());
}
