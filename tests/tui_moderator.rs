//! The moderator's keys in the TUI: each action from its key to the
//! command the debate gets, and the screen once the debate says it
//! happened, at 80x24 and 200x50 on the stage view (snapshots); a session
//! with moderator turns reopens from the history.

use crossterm::event::KeyCode;

use persona_sim::sim::debate::{Moderation, Outcome, SimEvent, TurnFinish};
use persona_sim::sim::live::AudienceQuestion;
use persona_sim::sim::moderator::Command;
use persona_sim::sim::session::Session;
use persona_sim::sim::stance::{Position, Stance};
use persona_sim::tui::action::Effect;
use persona_sim::tui::app::App;

mod support;
use support::tui::*;

/// Maria and Priya debating, Maria speaking in round 1, on the stage.
fn on_stage() -> App {
    let mut app = new_app();
    let config = start_debate(&mut app);
    app.begin_session(Session::new(&config, backend()));
    app.on_sim_event(turn_started(0, 1, 1));
    app.on_sim_event(token(0, "Offline charting would save me an hour a shift."));
    press_code(&mut app, KeyCode::F(9));
    assert!(app.stage());
    app
}

fn command(effect: Option<Effect>) -> Command {
    match effect {
        Some(Effect::Moderate(command)) => command,
        other => panic!("expected a moderator command, got {other:?}"),
    }
}

fn ctrl_key(app: &mut App, c: char) -> Option<Effect> {
    press(app, ctrl(KeyCode::Char(c)))
}

/// Snapshots the screen at both sizes under `name`.
fn snap_both(app: &mut App, name: &str) {
    for (w, h) in [(80, 24), (200, 50)] {
        let text = lines(&render(app, w, h)).join("\n");
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), text);
    }
}

#[test]
fn ctrl_p_pauses_and_resumes() {
    let mut app = on_stage();
    assert_eq!(command(ctrl_key(&mut app, 'p')), Command::Pause);
    app.on_sim_event(SimEvent::Moderated(Moderation::Paused));
    let status = status_line(&render(&mut app, 80, 24));
    assert!(status.contains("paused"), "{status}");
    snap_both(&mut app, "moderator_paused");
    // While paused the same key resumes.
    assert_eq!(command(ctrl_key(&mut app, 'p')), Command::Resume);
    app.on_sim_event(SimEvent::Moderated(Moderation::Resumed));
    assert!(!status_line(&render(&mut app, 80, 24)).contains("paused"));
}

#[test]
fn ctrl_n_skips_the_speaker() {
    let mut app = on_stage();
    assert_eq!(command(ctrl_key(&mut app, 'n')), Command::Skip);
    app.on_sim_event(SimEvent::Moderated(Moderation::Skipped { turn: 0 }));
    app.on_sim_event(SimEvent::TurnEnded {
        turn: 0,
        finish_reason: TurnFinish::Skipped,
        stance: None,
    });
    app.on_sim_event(turn_started(1, 1, 3));
    let text = screen(&render(&mut app, 80, 24));
    assert!(text.contains("Moderator skipped Maria Lopez"), "{text}");
    snap_both(&mut app, "moderator_skipped");
}

#[test]
fn ctrl_f_gives_the_floor_to_a_chosen_persona() {
    let mut app = on_stage();
    assert!(ctrl_key(&mut app, 'f').is_none());
    let picker = screen(&render(&mut app, 80, 24));
    assert!(picker.contains("Who speaks next?"), "{picker}");
    snap_both(&mut app, "moderator_floor_picker");
    press_code(&mut app, KeyCode::Down);
    assert_eq!(
        command(press_code(&mut app, KeyCode::Enter)),
        Command::Floor { persona_id: 3 }
    );
    assert!(app.overlays().is_empty());
    app.on_sim_event(SimEvent::Moderated(Moderation::Floor {
        persona_id: 3,
        speaker: name_of(3),
    }));
    let text = screen(&render(&mut app, 80, 24));
    assert!(
        text.contains(&format!("Moderator gives the floor to {}", name_of(3))),
        "{text}"
    );
}

#[test]
fn ctrl_q_puts_a_question_that_shows_as_a_moderator_turn() {
    let mut app = on_stage();
    assert!(ctrl_key(&mut app, 'q').is_none());
    for c in "What if the signal never comes back?".chars() {
        press_code(&mut app, KeyCode::Char(c));
    }
    snap_both(&mut app, "moderator_question_box");
    assert_eq!(
        command(press_code(&mut app, KeyCode::Enter)),
        Command::Ask {
            text: "What if the signal never comes back?".into(),
            audience: false
        }
    );
    app.on_sim_event(SimEvent::TurnEnded {
        turn: 0,
        finish_reason: TurnFinish::Stop,
        stance: Stance::new(Position::For, 9),
    });
    app.on_sim_event(SimEvent::Moderated(Moderation::Asked {
        turn: 1,
        text: "What if the signal never comes back?".into(),
        audience: false,
    }));
    app.on_sim_event(turn_started(2, 1, 3));
    let text = screen(&render(&mut app, 200, 50));
    assert!(text.contains("Moderator"), "{text}");
    assert!(
        text.contains("What if the signal never comes back?"),
        "{text}"
    );
    snap_both(&mut app, "moderator_question_asked");
}

#[test]
fn an_empty_question_is_refused_with_a_notice() {
    let mut app = on_stage();
    ctrl_key(&mut app, 'q');
    press_code(&mut app, KeyCode::Char(' '));
    assert!(press_code(&mut app, KeyCode::Enter).is_none());
    let text = screen(&render(&mut app, 80, 24));
    assert!(text.contains("the question is empty"), "{text}");
}

#[test]
fn ctrl_o_adds_a_round() {
    let mut app = on_stage();
    assert_eq!(command(ctrl_key(&mut app, 'o')), Command::AddRound);
    app.on_sim_event(SimEvent::Moderated(Moderation::RoundAdded { rounds: 3 }));
    let text = screen(&render(&mut app, 80, 24));
    assert!(text.contains("Moderator added a round: 3 rounds"), "{text}");
    assert!(text.contains("Round 1/3"), "{text}");
    snap_both(&mut app, "moderator_round_added");
}

#[test]
fn ctrl_e_asks_first_then_ends_and_the_report_follows() {
    let mut app = on_stage();
    assert!(ctrl_key(&mut app, 'e').is_none());
    snap_both(&mut app, "moderator_end_confirm");
    // "n" goes on debating.
    assert!(press_code(&mut app, KeyCode::Char('n')).is_none());
    assert!(app.overlays().is_empty());
    ctrl_key(&mut app, 'e');
    assert_eq!(
        command(press_code(&mut app, KeyCode::Char('y'))),
        Command::End
    );
    app.on_sim_event(SimEvent::Moderated(Moderation::Ended));
    app.on_sim_event(SimEvent::TurnEnded {
        turn: 0,
        finish_reason: TurnFinish::Ended,
        stance: None,
    });
    app.on_sim_event(SimEvent::Done {
        outcome: Outcome::Completed,
    });
    app.on_sim_event(SimEvent::ReportStarted);
    let text = screen(&render(&mut app, 80, 24));
    assert!(text.contains("Moderator ended the debate"), "{text}");
    snap_both(&mut app, "moderator_ended");
}

#[test]
fn audience_questions_wait_for_the_moderator_who_accepts_edits_or_rejects() {
    let mut app = on_stage();
    // Without questions, Ctrl-A opens an empty queue: nothing to send.
    app.on_audience_question(AudienceQuestion {
        id: 1,
        text: "Does it work on the night shift?".into(),
    });
    app.on_audience_question(AudienceQuestion {
        id: 2,
        text: "<script>alert(1)</script> \u{1b}[2J".into(),
    });
    app.on_audience_question(AudienceQuestion {
        id: 3,
        text: "Price?".into(),
    });
    assert!(ctrl_key(&mut app, 'a').is_none());
    snap_both(&mut app, "moderator_audience_queue");
    // Accept the first: it goes to the panel as an audience question.
    assert_eq!(
        command(press_code(&mut app, KeyCode::Enter)),
        Command::Ask {
            text: "Does it work on the night shift?".into(),
            audience: true
        }
    );
    assert_eq!(app.audience().len(), 2);
    // Reject the second: it is gone, nothing is sent.
    assert!(press_code(&mut app, KeyCode::Char('x')).is_none());
    assert_eq!(app.audience().len(), 1);
    // Edit the third, then ask it.
    assert!(press_code(&mut app, KeyCode::Char('e')).is_none());
    for c in " And per seat?".chars() {
        press_code(&mut app, KeyCode::Char(c));
    }
    assert_eq!(
        command(press_code(&mut app, KeyCode::Enter)),
        Command::Ask {
            text: "Price? And per seat?".into(),
            audience: true
        }
    );
    assert!(app.audience().is_empty());
    assert!(app.overlays().is_empty());
}

#[test]
fn moderator_keys_are_the_editors_when_no_debate_runs() {
    let mut app = new_app();
    press_code(&mut app, KeyCode::Tab);
    type_text(&mut app, "ab");
    // Ctrl-P is the editor's "up" here: no command, no dialog.
    assert!(!matches!(
        ctrl_key(&mut app, 'p'),
        Some(Effect::Moderate(_))
    ));
    assert!(ctrl_key(&mut app, 'q').is_none());
    assert!(app.overlays().is_empty());
}

#[test]
fn a_session_with_moderator_turns_reopens_from_the_history() {
    let mut app = on_stage();
    app.on_sim_event(SimEvent::TurnEnded {
        turn: 0,
        finish_reason: TurnFinish::Skipped,
        stance: None,
    });
    app.on_sim_event(SimEvent::Moderated(Moderation::Skipped { turn: 0 }));
    app.on_sim_event(SimEvent::Moderated(Moderation::Asked {
        turn: 1,
        text: "Night shifts?".into(),
        audience: true,
    }));
    app.on_sim_event(SimEvent::Done {
        outcome: Outcome::Completed,
    });
    let session = app.session().cloned().expect("the session on screen");
    assert!(session.turns[1].moderator);
    assert_eq!(session.moderation.len(), 2);
    // Through the file format and back, then opened as from the history.
    let json = serde_json::to_string(&session).unwrap();
    let reread: Session = serde_json::from_str(&json).unwrap();
    assert_eq!(reread.moderation, session.moderation);
    let mut fresh = new_app();
    fresh.open_session(reread);
    let text = screen(&render(&mut fresh, 200, 50));
    assert!(text.contains("Moderator"), "{text}");
    assert!(text.contains("audience question"), "{text}");
    assert!(text.contains("Night shifts?"), "{text}");
}

#[test]
fn a_herding_alarm_offers_ctrl_d_which_asks_for_a_devils_advocate() {
    let mut app = on_stage();
    app.on_sim_event(SimEvent::TurnEnded {
        turn: 0,
        finish_reason: TurnFinish::Stop,
        stance: Stance::new(Position::For, 7),
    });
    app.on_sim_event(SimEvent::Herding {
        round: 1,
        position: Position::For,
        count: 4,
        known: 5,
        share: 0.8,
    });
    let text = screen(&render(&mut app, 200, 50));
    assert!(
        text.contains("Herding after round 1: 4 of 5 for (80%) · Ctrl-D asks a devil's advocate"),
        "{text}"
    );
    assert_eq!(
        command(ctrl_key(&mut app, 'd')),
        Command::DevilsAdvocate { persona_id: None }
    );
    // The debate says who: the turn is marked as a role.
    app.on_sim_event(turn_started(1, 1, 3));
    app.on_sim_event(SimEvent::Moderated(Moderation::DevilsAdvocate {
        turn: 1,
        persona_id: 3,
        speaker: name_of(3),
        against: Some(Position::For),
        auto: false,
    }));
    app.on_sim_event(token(1, "Offline sync will lose a night of notes."));
    let text = screen(&render(&mut app, 200, 50));
    assert!(text.contains("devil's advocate"), "{text}");
    assert!(
        text.contains(&format!(
            "Devil's advocate: {} argues against \"for\"",
            name_of(3)
        )),
        "{text}"
    );
    snap_both(&mut app, "moderator_devils_advocate");
    let session = app.session().unwrap();
    assert!(session.turns[1].devils_advocate);
    assert_eq!(session.herding.len(), 1);
}
