//! Every view at 80×24, as an insta snapshot (status line included: the
//! app's clock is an input), plus the overlay-stack and redraw-deadline
//! behaviour the views share.

use std::time::Duration;

use crossterm::event::KeyCode;

use persona_sim::llm::fetch::FetchProgress;
use persona_sim::persona::builtin_panel;
use persona_sim::sim::report::ReportFormat;
use persona_sim::sim::session::Session;
use persona_sim::sim::synth::{BatchResult, SynthEvent};
use persona_sim::tui::action::{Effect, JobDone};
use persona_sim::tui::app::App;
use persona_sim::tui::views::Overlay;

mod support;
use support::tui::*;

fn snapshot(app: &mut App) -> String {
    screen(&render(app, 80, 24))
}

/// A saved session with fixed id and dates, so snapshots do not move.
fn fixed_session(feature: &str, id: &str, day: u32) -> Session {
    let mut s = finished_session(feature);
    s.id = id.into();
    s.created_at = format!("2026-03-{day:02}T10:30:00+00:00");
    s.updated_at = s.created_at.clone();
    s
}

fn top(app: &App) -> &'static str {
    match app.overlays().last() {
        None => "none",
        Some(Overlay::Help(_)) => "help",
        Some(Overlay::History(_)) => "history",
        Some(Overlay::ExportMenu(_)) => "export",
        Some(Overlay::PersonaForm(_)) => "form",
        Some(Overlay::ConfirmDelete(_)) => "confirm delete",
        Some(Overlay::Stats(_)) => "stats",
        Some(Overlay::Generate(_)) => "generate",
        Some(Overlay::ModelOffer(_)) => "model offer",
        Some(Overlay::Floor(_)) => "floor",
        Some(Overlay::Ask(_)) => "ask",
        Some(Overlay::Audience(_)) => "audience",
        Some(Overlay::ConfirmEnd(_)) => "confirm end",
        Some(Overlay::ConfirmQuit(_)) => "confirm quit",
        Some(Overlay::PersonaReason(_)) => "persona reason",
    }
}

#[test]
fn main_screen_idle() {
    let mut app = new_app();
    insta::assert_snapshot!(snapshot(&mut app));
}

#[test]
fn help() {
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char('?'));
    insta::assert_snapshot!(snapshot(&mut app));
}

#[test]
fn history_and_its_delete_question() {
    let mut app = new_app();
    assert!(matches!(
        press_code(&mut app, KeyCode::F(2)),
        Some(Effect::LoadHistory)
    ));
    insta::assert_snapshot!("history_loading", snapshot(&mut app));
    app.on_loaded(JobDone::History {
        sessions: vec![
            fixed_session("Dark mode for the dashboard", "20260302-103000-aaaa", 2),
            fixed_session("Offline mode", "20260301-103000-bbbb", 1),
        ],
        errors: vec![],
    });
    insta::assert_snapshot!("history", snapshot(&mut app));
    press_code(&mut app, KeyCode::Char('d'));
    insta::assert_snapshot!("history_confirm_delete", snapshot(&mut app));
}

#[test]
fn export_menu() {
    let mut app = new_app();
    app.open_session(fixed_session("Offline mode", "20260301-103000-bbbb", 1));
    press_code(&mut app, KeyCode::F(4));
    assert_eq!(top(&app), "export");
    insta::assert_snapshot!(snapshot(&mut app));
}

#[test]
fn persona_form_with_an_error_then_the_discard_question() {
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char('n'));
    press_code(&mut app, KeyCode::Enter); // empty name: refused
    insta::assert_snapshot!("form_with_error", snapshot(&mut app));
    type_text(&mut app, "Ana");
    press_code(&mut app, KeyCode::Esc);
    insta::assert_snapshot!("form_discard", snapshot(&mut app));
}

#[test]
fn confirm_delete() {
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char('x'));
    assert_eq!(top(&app), "confirm delete");
    insta::assert_snapshot!(snapshot(&mut app));
}

#[test]
fn stats() {
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char('s'));
    insta::assert_snapshot!(snapshot(&mut app));
}

/// Opens "generate", asks for a batch of 3 and returns when it runs.
fn start_batch(app: &mut App) {
    press_code(app, KeyCode::Char('i'));
    type_text(app, "retired farmers");
    press_code(app, KeyCode::Tab);
    press_code(app, KeyCode::Backspace);
    type_text(app, "3");
    assert!(matches!(
        press_code(app, KeyCode::Enter),
        Some(Effect::Synthesize { count: 3, .. })
    ));
}

#[test]
fn generate_asking_running_and_confirm() {
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char('i'));
    type_text(&mut app, "retired farmers");
    insta::assert_snapshot!("generate_asking", snapshot(&mut app));
    press_code(&mut app, KeyCode::Esc);
    assert_eq!(top(&app), "none");

    start_batch(&mut app);
    let mut persona = builtin_panel()[0].clone();
    persona.id = 15;
    app.on_synth_event(SynthEvent::Accepted {
        index: 0,
        persona: persona.clone(),
    });
    app.set_now(app.now() + Duration::from_millis(2300));
    insta::assert_snapshot!("generate_running", snapshot(&mut app));
    app.on_batch_done(BatchResult {
        accepted: vec![persona],
        failed: vec![(1, "not valid JSON".into())],
        adapted: None,
    });
    insta::assert_snapshot!("generate_confirm", snapshot(&mut app));
}

#[test]
fn report_screen_structured_and_plain() {
    let mut app = new_app();
    app.open_session(fixed_session("Offline mode", "20260301-103000-bbbb", 1));
    press_code(&mut app, KeyCode::F(3));
    insta::assert_snapshot!("report_structured", snapshot(&mut app));

    // A plain-text report scrolls, and stops at its last line.
    let mut session = fixed_session("Offline mode", "20260301-103000-bbbb", 1);
    let report = session.report.as_mut().unwrap();
    report.format = ReportFormat::PlainText;
    report.text = Some(
        (1..=5)
            .map(|n| format!("Line {n}."))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let mut app = new_app();
    app.open_session(session);
    press_code(&mut app, KeyCode::F(3));
    for _ in 0..20 {
        press_code(&mut app, KeyCode::Down);
    }
    assert!(app.report_selected() <= 5, "{}", app.report_selected());
    let text = snapshot(&mut app);
    assert!(text.contains("Line 5."), "{text}");
    insta::assert_snapshot!("report_plain_scrolled_to_the_end", text);
}

#[test]
fn model_offer_asking_fetching_failed() {
    let mut app = new_app();
    app.offer_model("/models/SmolLM2-135M-Instruct.Q4_1.gguf".into());
    insta::assert_snapshot!("model_offer_asking", snapshot(&mut app));
    assert!(matches!(
        press_code(&mut app, KeyCode::Enter),
        Some(Effect::FetchModel(_))
    ));
    app.on_fetch_progress(FetchProgress::Source(
        "http://127.0.0.1:9/model.gguf".into(),
    ));
    app.on_fetch_progress(FetchProgress::Bytes {
        done: 49_000_000,
        total: Some(98_362_432),
    });
    insta::assert_snapshot!("model_offer_fetching", snapshot(&mut app));
    app.on_fetch_done(Err("checksum mismatch".into()));
    insta::assert_snapshot!("model_offer_failed", snapshot(&mut app));
}

#[test]
fn too_small() {
    let mut app = new_app();
    insta::assert_snapshot!(screen(&render(&mut app, 60, 20)));
}

#[test]
fn history_opened_while_generating_is_on_top_and_esc_closes_it_first() {
    let mut app = new_app();
    start_batch(&mut app);
    assert_eq!(top(&app), "generate");
    // The batch leaves the app usable: F2 opens the history above it.
    press_code(&mut app, KeyCode::F(2));
    assert_eq!(top(&app), "history");
    let text = snapshot(&mut app);
    assert!(text.contains("History"), "{text}");
    assert!(
        !text.contains("Generating"),
        "the history covers the progress box:\n{text}"
    );
    // Esc closes what is on top (the history); the batch keeps running.
    assert!(press_code(&mut app, KeyCode::Esc).is_none());
    assert_eq!(top(&app), "generate");
    assert!(snapshot(&mut app).contains("Generating"));
    // The next Esc stops the batch.
    assert!(matches!(
        press_code(&mut app, KeyCode::Esc),
        Some(Effect::CancelSynthesis)
    ));
    assert_eq!(top(&app), "none");
}

#[test]
fn counters_ask_for_a_redraw_each_second_and_an_idle_screen_for_none() {
    let mut app = new_app();
    assert_eq!(app.redraw_deadline(), None, "idle: no timer at all");
    start_batch(&mut app);
    let started = app.now();
    assert_eq!(
        app.redraw_deadline(),
        Some(started + Duration::from_secs(1))
    );
    app.set_now(started + Duration::from_millis(4200));
    assert_eq!(
        app.redraw_deadline(),
        Some(started + Duration::from_secs(5))
    );
    assert!(snapshot(&mut app).contains("· 4s"));
    press_code(&mut app, KeyCode::Esc);
    assert_eq!(app.redraw_deadline(), None, "nothing left to count");
}

#[test]
fn a_cited_turn_zero_in_a_hand_edited_session_is_refused_not_a_crash() {
    let mut session = fixed_session("Offline mode", "20260301-103000-bbbb", 1);
    session.report.as_mut().unwrap().insights[0].turns = vec![0];
    let mut app = new_app();
    app.open_session(session);
    press_code(&mut app, KeyCode::F(3));
    press_code(&mut app, KeyCode::Enter);
    let notice = app.notice().expect("a notice");
    assert!(
        notice.text.contains("T0 is not on screen"),
        "{}",
        notice.text
    );
}

#[test]
fn readme_key_table_is_generated_from_the_bindings() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (start, end) = ("<!-- keys:start -->\n", "<!-- keys:end -->");
    let a = readme
        .find(start)
        .expect("README has the keys:start marker")
        + start.len();
    let b = readme.find(end).expect("README has the keys:end marker");
    let generated = persona_sim::tui::keymap::markdown_keys();
    if std::env::var_os("UPDATE_README_KEYS").is_some() {
        let updated = format!("{}{}{}", &readme[..a], generated, &readme[b..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(
        readme[a..b],
        generated,
        "README's key table is out of date: run UPDATE_README_KEYS=1 cargo test --test tui_views readme"
    );
}

/// A 14-persona report at 80x24: the persona table scrolls to every
/// participant, the selected one's reason wraps, and Enter opens their
/// full reason with their own turns.
#[test]
fn every_participant_of_a_big_report_can_be_read() {
    use persona_sim::sim::debate::{DebateConfig, Outcome, SimEvent};
    use persona_sim::sim::report::parse_report;
    use persona_sim::sim::stance::{Position, Stance};
    let panel = persona_sim::persona::builtin_panel();
    assert!(panel.len() >= 14);
    let config = DebateConfig {
        feature: "Offline mode".into(),
        personas: panel[..14].to_vec(),
        rounds: 1,
        max_tokens_per_turn: 100,
        max_tokens_total: None,
    };
    let mut session = Session::new(&config, backend());
    session.id = "20260301-103000-cccc".into();
    session.created_at = "2026-03-01T10:30:00+00:00".into();
    for (i, p) in panel[..14].iter().enumerate() {
        session.apply(&SimEvent::TurnStarted {
            turn: i,
            round: 1,
            persona_id: p.id,
            speaker: p.name.clone(),
            question: None,
        });
        session.apply(&token(i, &format!("Turn {} from {}.", i + 1, p.name)));
        session.apply(&SimEvent::TurnEnded {
            turn: i,
            finish_reason: Default::default(),
            stance: Stance::new(Position::Mixed, 5),
        });
    }
    session.apply(&SimEvent::Done {
        outcome: Outcome::Completed,
    });
    let rows: Vec<String> = panel[..14]
        .iter()
        .map(|p| {
            format!(
                r#"{{"name":"{}","stance":"mixed","interest":5,"reason":"{} has a long reason that goes on about connectivity, price and training for the whole team before it ends."}}"#,
                p.name, p.name
            )
        })
        .collect();
    let reply = format!(
        r#"{{"summary":"Mixed.","personas":[{}],"concerns":[],"requests":[],"insights":[{{"change":"Pilot","why":"risk","helps":"all","priority":1,"turns":[1]}}]}}"#,
        rows.join(",")
    );
    let mut report = parse_report(&reply, 14);
    persona_sim::sim::report::check_against(&mut report, &session.turns);
    session.apply(&SimEvent::ReportReady {
        report: Box::new(report),
    });
    let last = panel[13].name.clone();
    let mut app = new_app();
    app.open_session(session);
    press_code(&mut app, KeyCode::F(3));
    let first = snapshot(&mut app);
    assert!(!first.contains(&last), "{first}");
    // p moves the arrows into the table; the last row scrolls into view.
    press_code(&mut app, KeyCode::Char('p'));
    for _ in 0..20 {
        press_code(&mut app, KeyCode::Down);
    }
    let text = snapshot(&mut app);
    assert!(text.contains(&last), "{text}");
    let unboxed: String = text
        .lines()
        .map(|l| l.trim_matches('│').trim())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        unboxed.contains("for the whole team before it ends."),
        "the selected reason wraps in full: {text}"
    );
    insta::assert_snapshot!("report_personas_scrolled_to_the_last", text);
    press_code(&mut app, KeyCode::Enter);
    assert_eq!(top(&app), "persona reason");
    let text = snapshot(&mut app);
    assert!(text.contains("Their turns"), "{text}");
    assert!(text.contains("T14 · round 1"), "{text}");
    assert!(text.contains(&format!("Turn 14 from {last}.")), "{text}");
    insta::assert_snapshot!("report_persona_reason", text);
    press_code(&mut app, KeyCode::Esc);
    assert_eq!(top(&app), "none");
}

/// A popup over wide characters (CJK persona names) keeps its left border:
/// a wide character starting just left of the box would cover it.
#[test]
fn popup_over_cjk_names_keeps_its_left_border() {
    let mut panel = builtin_panel();
    for (i, p) in panel.iter_mut().enumerate() {
        // Every other name one column further right: one of two adjacent
        // rows has a character straddling any column.
        let shift = if i % 2 == 1 { "A" } else { "" };
        p.name = format!("{shift}王小明李华张伟刘洋陈静杨帆");
    }
    let mut app = App::new(panel, Some(backend()), ROUNDS, MAX_TOKENS);
    press_code(&mut app, KeyCode::Char('x'));
    assert_eq!(top(&app), "confirm delete");
    // Wide enough that the question fits on one line (a name of wide
    // characters counts double) and the box starts over the names.
    let buf = render(&mut app, 110, 24);
    let rows = lines(&buf);
    let (y0, row) = rows
        .iter()
        .enumerate()
        .find(|(_, r)| r.contains("┌ Delete persona"))
        .unwrap_or_else(|| panic!("no popup top:\n{}", screen(&buf)));
    let x0 = row[..row.find("┌ Delete persona").unwrap()].chars().count() as u16;
    let y0 = y0 as u16;
    assert!(
        x0 > 2 && x0 < 30,
        "the popup's left edge lies over the names"
    );
    assert_eq!(buf[(x0, y0 + 1)].symbol(), "│", "\n{}", screen(&buf));
    assert_eq!(buf[(x0, y0 + 2)].symbol(), "└", "\n{}", screen(&buf));
    insta::assert_snapshot!("popup_over_cjk_names", screen(&buf));
}

/// A question wider than the screen wraps instead of being cut ("…· n kee"):
/// the keys are always readable.
#[test]
fn a_long_question_wraps_and_keeps_its_keys() {
    let mut panel = builtin_panel();
    panel[0].name = "王小明李华张伟刘洋陈静杨帆".into();
    let mut app = App::new(panel, Some(backend()), ROUNDS, MAX_TOKENS);
    press_code(&mut app, KeyCode::Char('x'));
    let text = screen(&render(&mut app, 80, 24));
    assert!(text.contains("n keeps"), "{text}");
    assert!(text.contains("y deletes"), "{text}");
}
