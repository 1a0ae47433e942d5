//! The TUI driven end to end without a terminal: key events through the
//! keymap into `App::update`, sim events into `App::on_sim_event`, frames
//! rendered into ratatui's `TestBackend`.

use crossterm::event::KeyCode;
use ratatui::buffer::Buffer;

use persona_sim::persona::builtin_panel;
use persona_sim::sim::debate::{Outcome, SimEvent};
use persona_sim::tui::action::{Action, Effect};
use persona_sim::tui::app::{App, Focus, NoticeLevel, RunState};
use persona_sim::tui::keymap::help_sections;
use persona_sim::tui::theme::speaker_color;

// ---------------------------------------------------------------- helpers

mod support;
use support::tui::*;

/// Where the conversation block starts (its top-left corner), found from the
/// rendered title.
fn conversation_left(buf: &Buffer) -> u16 {
    let top = row_text(buf, 0, 0, buf.area.width);
    let byte = top
        .find("┌ Conversation")
        .expect("conversation block title on the first row");
    top[..byte].chars().count() as u16
}

/// Rows of the conversation pane (inside its borders, without the two
/// bottom lines), as (y, text, x of the first text column).
fn conversation_rows(buf: &Buffer) -> Vec<(u16, String, u16)> {
    let left = conversation_left(buf);
    let bottom = buf.area.height - 3; // bottom border row
    (1..bottom)
        .map(|y| (y, row_text(buf, y, left + 1, buf.area.width - 1), left + 1))
        .collect()
}

fn conversation_text(buf: &Buffer) -> String {
    conversation_rows(buf)
        .into_iter()
        .map(|(_, text, _)| text)
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------- starting

#[test]
fn selecting_personas_typing_a_feature_and_f5_starts_the_debate() {
    let mut app = new_app();
    assert_eq!(app.focus(), Focus::Personas);
    // a selects all, a again clears.
    press_code(&mut app, KeyCode::Char('a'));
    assert_eq!(app.selected().len(), app.personas().len());
    press_code(&mut app, KeyCode::Char('a'));
    assert!(app.selected().is_empty());
    // Space on Maria (1), j j, Space on Priya (3).
    press_code(&mut app, KeyCode::Char(' '));
    press_code(&mut app, KeyCode::Char('j'));
    press_code(&mut app, KeyCode::Char('j'));
    press_code(&mut app, KeyCode::Char(' '));
    assert_eq!(app.list_cursor(), Some(2));
    press_code(&mut app, KeyCode::Tab);
    assert_eq!(app.focus(), Focus::Editor);
    type_text(&mut app, "Offline mode\nSync when back online");
    assert_eq!(
        app.editor_lines(),
        ["Offline mode", "Sync when back online"]
    );

    let config = expect_start(press_code(&mut app, KeyCode::F(5)));
    assert_eq!(ids(&config), vec![1, 3]);
    assert_eq!(config.feature, "Offline mode\nSync when back online");
    assert_eq!(config.rounds, ROUNDS);
    assert_eq!(config.max_tokens_per_turn, MAX_TOKENS);
    assert!(matches!(
        *app.run_state(),
        RunState::Running {
            round: 1,
            rounds: ROUNDS,
            ..
        }
    ));
    // A second start while running does nothing.
    assert!(press_code(&mut app, KeyCode::F(5)).is_none());
}

#[test]
fn ctrl_r_and_ctrl_enter_also_start_the_debate() {
    // Ctrl-R, with every persona selected by `a`.
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char('a'));
    press_code(&mut app, KeyCode::Tab);
    type_text(&mut app, "Dark mode");
    let config = expect_start(press(&mut app, ctrl(KeyCode::Char('r'))));
    assert_eq!(ids(&config), (1..=14).collect::<Vec<u32>>());
    assert_eq!(config.feature, "Dark mode");
    assert_eq!(config.rounds, ROUNDS);
    // Ctrl-R did not type an 'r'.
    assert_eq!(app.editor_lines(), ["Dark mode"]);

    // Ctrl-Enter (kitty protocol) from inside the editor: starts, no newline.
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char('j'));
    press_code(&mut app, KeyCode::Char(' '));
    press_code(&mut app, KeyCode::Tab);
    type_text(&mut app, "Voice input");
    let config = expect_start(press(&mut app, ctrl(KeyCode::Enter)));
    assert_eq!(ids(&config), vec![2]);
    assert_eq!(config.feature, "Voice input");
    assert_eq!(app.editor_lines(), ["Voice input"]);
}

// ---------------------------------------------------------------- quitting

#[test]
fn q_types_in_the_editor_and_quits_elsewhere() {
    let mut app = new_app();
    press_code(&mut app, KeyCode::Tab);
    assert_eq!(app.focus(), Focus::Editor);
    type_text(&mut app, "quiet q");
    assert!(!app.should_quit(), "q in the editor is text");
    assert_eq!(app.editor_lines(), ["quiet q"]);

    // Persona list: q quits.
    let mut app = new_app();
    assert_eq!(app.focus(), Focus::Personas);
    assert!(press_code(&mut app, KeyCode::Char('q')).is_none());
    assert!(app.should_quit());

    // Conversation pane: q quits.
    let mut app = new_app();
    press_code(&mut app, KeyCode::BackTab);
    assert_eq!(app.focus(), Focus::Conversation);
    press_code(&mut app, KeyCode::Char('q'));
    assert!(app.should_quit());
}

#[test]
fn ctrl_c_quits_from_every_focus_and_the_help_overlay() {
    for focus_moves in 0..3 {
        let mut app = new_app();
        for _ in 0..focus_moves {
            press_code(&mut app, KeyCode::Tab);
        }
        assert!(press(&mut app, ctrl(KeyCode::Char('c'))).is_none());
        assert!(
            app.should_quit(),
            "Ctrl-C quits with focus {:?}",
            app.focus()
        );
        if app.focus() == Focus::Editor {
            assert_eq!(app.editor_lines(), [""], "Ctrl-C typed nothing");
        }
    }
    // With the help overlay open.
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char('?'));
    assert!(app.help_open());
    press(&mut app, ctrl(KeyCode::Char('c')));
    assert!(app.should_quit());

    // While a debate runs, quitting asks first; Ctrl-C again (or y)
    // quits and cancels it, n keeps it running.
    let mut app = new_app();
    start_debate(&mut app);
    assert!(press(&mut app, ctrl(KeyCode::Char('c'))).is_none());
    assert!(!app.should_quit(), "one stray Ctrl-C does not end a run");
    press_code(&mut app, KeyCode::Char('n'));
    assert!(!app.should_quit() && app.is_running());
    press_code(&mut app, KeyCode::BackTab);
    assert!(press_code(&mut app, KeyCode::Char('q')).is_none());
    assert!(!app.should_quit(), "q asks too");
    assert!(matches!(
        press(&mut app, ctrl(KeyCode::Char('c'))),
        Some(Effect::CancelDebate)
    ));
    assert!(app.should_quit());
    let mut app = new_app();
    start_debate(&mut app);
    press(&mut app, ctrl(KeyCode::Char('c')));
    assert!(matches!(
        press_code(&mut app, KeyCode::Char('y')),
        Some(Effect::CancelDebate)
    ));
    assert!(app.should_quit());
}

#[test]
fn a_too_small_terminal_takes_only_the_quit_keys() {
    let mut app = new_app();
    render(&mut app, 60, 15);
    assert!(app.too_small());
    // Tab then q used to move the hidden focus to the editor and type "q".
    assert!(press_code(&mut app, KeyCode::Tab).is_none());
    assert_eq!(app.focus(), Focus::Personas);
    press_code(&mut app, KeyCode::Char('x'));
    assert!(app.overlays().is_empty(), "no hidden dialog opened");
    // Big enough again: keys act.
    render(&mut app, 80, 24);
    assert!(!app.too_small());
    press_code(&mut app, KeyCode::Tab);
    assert_eq!(app.focus(), Focus::Editor);
    // A running debate is not asked about when the question cannot be
    // seen: q quits and cancels it.
    let mut app = new_app();
    start_debate(&mut app);
    render(&mut app, 60, 15);
    assert!(matches!(
        press_code(&mut app, KeyCode::Char('q')),
        Some(Effect::CancelDebate)
    ));
    assert!(app.should_quit());
}

// ---------------------------------------------------------------- refusals

#[test]
fn start_without_a_selection_is_refused_with_an_error_notice() {
    let mut app = new_app();
    press_code(&mut app, KeyCode::Tab);
    type_text(&mut app, "Offline mode");
    assert!(press_code(&mut app, KeyCode::F(5)).is_none());
    assert!(!app.is_running());
    assert_eq!(*app.run_state(), RunState::Idle);
    let notice = app.notice().cloned().expect("a notice");
    assert_eq!(notice.level, NoticeLevel::Error);
    assert!(
        notice.text.contains("Select at least one persona"),
        "{notice:?}"
    );
    assert_eq!(app.focus(), Focus::Personas, "focus goes where the fix is");

    let buf = render(&mut app, 120, 40);
    assert!(row_text(&buf, 38, 0, 120).contains("Select at least one persona"));

    // With nobody in the panel, selecting is not the fix: adding is.
    let mut app = App::new(Vec::new(), Some(backend()), ROUNDS, MAX_TOKENS);
    press_code(&mut app, KeyCode::Tab);
    type_text(&mut app, "Offline mode");
    assert!(press_code(&mut app, KeyCode::F(5)).is_none());
    let notice = app.notice().cloned().expect("a notice");
    assert!(notice.text.contains("The panel is empty"), "{notice:?}");
    assert!(notice.text.contains("n in the persona list"), "{notice:?}");
}

#[test]
fn start_with_an_empty_feature_is_refused() {
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char(' '));
    assert!(press_code(&mut app, KeyCode::F(5)).is_none());
    assert!(!app.is_running());
    let notice = app.notice().cloned().expect("a notice");
    assert_eq!(notice.level, NoticeLevel::Error);
    assert!(notice.text.contains("feature"), "{notice:?}");
    assert_eq!(app.focus(), Focus::Editor);

    // Whitespace only counts as empty.
    type_text(&mut app, "  \n  ");
    assert!(press(&mut app, ctrl(KeyCode::Char('r'))).is_none());
    assert!(!app.is_running());
}

#[test]
fn start_without_a_backend_is_refused_and_explains_how_to_configure() {
    let mut app = App::new(builtin_panel(), None, ROUNDS, MAX_TOKENS);
    press_code(&mut app, KeyCode::Char(' '));
    press_code(&mut app, KeyCode::Tab);
    type_text(&mut app, "Offline mode");
    assert!(press_code(&mut app, KeyCode::F(5)).is_none());
    assert!(!app.is_running());
    assert_eq!(app.notice().map(|n| n.level), Some(NoticeLevel::Error));

    let buf = render(&mut app, 120, 40);
    // Only the conversation pane counts: the startup notice on the hint line
    // also names the variable.
    let pane = conversation_text(&buf);
    assert!(
        pane.contains("OPENAI_API_KEY"),
        "conversation pane:\n{pane}"
    );
    assert!(pane.contains("Cannot start"), "conversation pane:\n{pane}");
    assert!(status_line(&buf).contains("no backend"));
}

// ---------------------------------------------------------------- streaming

#[test]
fn streamed_turns_render_under_coloured_speaker_headers() {
    let mut app = new_app();
    let config = start_debate(&mut app);
    assert_eq!(ids(&config), vec![1, 3]);

    app.on_sim_event(turn_started(0, 1, 1));
    app.on_sim_event(token(0, "Offline mode "));
    app.on_sim_event(token(0, "would save my night shifts."));
    app.on_sim_event(SimEvent::TurnEnded {
        turn: 0,
        finish_reason: Default::default(),
        stance: None,
    });
    app.on_sim_event(SimEvent::Usage {
        turn: 0,
        prompt_tokens: 120,
        completion_tokens: 30,
        estimated: false,
    });
    app.on_sim_event(turn_started(1, 1, 3));
    app.on_sim_event(token(1, "Conflict resolution "));
    app.on_sim_event(token(1, "is the hard part."));
    app.on_sim_event(SimEvent::TurnEnded {
        turn: 1,
        finish_reason: Default::default(),
        stance: None,
    });
    app.on_sim_event(SimEvent::Usage {
        turn: 1,
        prompt_tokens: 150,
        completion_tokens: 40,
        estimated: false,
    });

    let buf = render(&mut app, 120, 40);
    let left = conversation_left(&buf);
    assert_eq!(left, 48, "left column is 2/5 of 120");
    let rows = conversation_rows(&buf);

    let mut header_rows = Vec::new();
    for (id, body) in [
        (1, "Offline mode would save my night shifts."),
        (3, "Conflict resolution is the hard part."),
    ] {
        let name = name_of(id);
        let (i, (y, header, x)) = rows
            .iter()
            .enumerate()
            .find(|(_, (_, text, _))| text.starts_with(&name))
            .unwrap_or_else(|| {
                panic!(
                    "no header for {name} in the conversation:\n{}",
                    screen(&buf)
                )
            });
        assert!(*x > left);
        assert!(header.contains("round 1"), "{header}");
        // The header cell carries the persona's colour.
        assert_eq!(buf[(*x, *y)].fg, speaker_color(id), "colour of {name}");
        assert_eq!(
            buf[(*x + name.chars().count() as u16 - 1, *y)].fg,
            speaker_color(id)
        );
        // The streamed text sits on the next line, indented.
        let (_, next, _) = &rows[i + 1];
        assert_eq!(next.trim_end(), format!("  {body}"), "text under {name}");
        header_rows.push(*y);
    }
    assert!(header_rows[0] < header_rows[1], "turns in order");
    assert_ne!(speaker_color(1), speaker_color(3));

    // Finished turns have no streaming cursor.
    assert!(!conversation_text(&buf).contains('▌'));

    let status = status_line(&buf);
    assert!(status.contains("openai · gpt-4o-mini"), "{status}");
    assert!(status.contains("round 1/2"), "{status}");
    assert!(status.contains("Priya Raman"), "{status}");
    assert!(status.contains("tokens 270 in · 70 out"), "{status}");
}

#[test]
fn esc_cancels_a_running_debate_and_keeps_the_partial_text() {
    let mut app = new_app();
    start_debate(&mut app);
    app.on_sim_event(turn_started(0, 1, 1));
    app.on_sim_event(token(0, "Half a "));
    app.on_sim_event(token(0, "thought"));
    let buf = render(&mut app, 120, 40);
    assert!(conversation_text(&buf).contains("Half a thought▌"));

    let effect = press_code(&mut app, KeyCode::Esc);
    assert!(
        matches!(effect, Some(Effect::CancelDebate)),
        "Esc while running cancels: {effect:?}"
    );
    assert_eq!(*app.run_state(), RunState::Cancelled);
    assert!(!app.is_running());

    let buf = render(&mut app, 120, 40);
    let pane = conversation_text(&buf);
    let header = pane
        .lines()
        .find(|l| l.starts_with("Maria Lopez"))
        .unwrap_or_else(|| panic!("no header:\n{pane}"));
    assert!(header.contains("(cut off)"), "{header}");
    assert!(pane.contains("  Half a thought"), "{pane}");
    assert!(!pane.contains('▌'), "no streaming cursor after a cancel");
    assert!(pane.contains("Debate cancelled"), "{pane}");
    assert!(status_line(&buf).contains("cancelled"));

    // A second Esc has nothing to cancel.
    assert!(press_code(&mut app, KeyCode::Esc).is_none());
    assert_eq!(*app.run_state(), RunState::Cancelled);
}

// ---------------------------------------------------------------- help

/// Every line of the help box, scrolled through from top to bottom (its
/// bottom title says "a–b of N").
fn whole_help(app: &mut App, width: u16, height: u16) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    loop {
        let buf = render(app, width, height);
        let inside =
            boxed_text(&buf, " Keys ").unwrap_or_else(|| panic!("no Keys box:\n{}", screen(&buf)));
        let bottom = lines(&buf)
            .into_iter()
            .find(|l| l.contains(" of ") && l.contains("scroll"))
            .expect("the help's position line");
        let nums: Vec<usize> = bottom
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        let (first, last, total) = (nums[0], nums[1], nums[2]);
        for (i, line) in inside.iter().enumerate() {
            if first + i > all.len() && first + i <= last {
                all.push(line.clone());
            }
        }
        if last >= total {
            return all;
        }
        press_code(app, KeyCode::PageDown);
    }
}

/// Every binding's keys and text appear in the help (wrapped lines joined).
fn assert_help_lists_every_binding(help: &[String]) {
    let flat = collapse_ws(&help.join(" "));
    for (title, bindings) in help_sections() {
        assert!(flat.contains(title), "help lacks the section {title:?}");
        for b in bindings {
            let entry = collapse_ws(&format!("{} {}", b.label, b.help));
            assert!(
                flat.contains(&entry),
                "help lacks {entry:?}:\n{}",
                help.join("\n")
            );
        }
    }
}

#[test]
fn question_mark_shows_every_key_and_esc_closes_it() {
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char('?'));
    assert!(app.help_open());
    let help = whole_help(&mut app, 120, 40);
    assert_help_lists_every_binding(&help);

    // While the overlay is open, keys do not reach the panes.
    press_code(&mut app, KeyCode::Char(' '));
    assert!(app.selected().is_empty());

    press_code(&mut app, KeyCode::Esc);
    assert!(!app.help_open());
    let buf = render(&mut app, 120, 40);
    assert!(boxed_text(&buf, " Keys ").is_none());
}

#[test]
fn help_fits_the_smallest_terminal_and_scrolls_to_every_key() {
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char('?'));
    let help = whole_help(&mut app, 80, 24);
    assert_help_lists_every_binding(&help);
    // F1 closes it from anywhere, as it opened it.
    press_code(&mut app, KeyCode::F(1));
    assert!(!app.help_open());
}

// ---------------------------------------------------------------- layout

#[test]
fn running_debate_at_80x24() {
    let mut app = new_app();
    start_debate(&mut app);
    app.on_sim_event(turn_started(0, 1, 1));
    app.on_sim_event(token(
        0,
        "As a nurse I chart on a tablet that loses signal in the basement wards. ",
    ));
    app.on_sim_event(token(0, "Offline mode would save me from re-typing notes."));
    app.on_sim_event(SimEvent::TurnEnded {
        turn: 0,
        finish_reason: Default::default(),
        stance: None,
    });
    app.on_sim_event(SimEvent::Usage {
        turn: 0,
        prompt_tokens: 210,
        completion_tokens: 35,
        estimated: false,
    });
    app.on_sim_event(turn_started(1, 1, 3));
    app.on_sim_event(token(1, "Sync conflicts are where this gets "));
    app.on_sim_event(token(1, "hard"));

    let buf = render(&mut app, 80, 24);
    let rows = lines(&buf);

    // Plain checks first: they say what broke better than a snapshot diff.
    assert!(rows[0].contains("Personas 2/14"), "{}", rows[0]);
    assert!(rows[0].contains("Conversation"), "{}", rows[0]);
    assert!(screen(&buf).contains("Feature"));
    assert!(screen(&buf).contains("Maria Lopez"));
    assert!(screen(&buf).contains("Priya Raman"));
    assert!(screen(&buf).contains("[x] "));
    let status = status_line(&buf);
    assert!(status.contains("openai · gpt-4o-mini"), "{status}");
    assert!(status.contains("debating · round 1/2"), "{status}");
    // At 80 columns the speaker is dropped so the token counts fit whole.
    assert!(status.contains("tokens 210 in · 35 out"), "{status}");
    assert!(rows[22].contains("Esc cancel"), "hints: {}", rows[22]);
    let pane = conversation_text(&buf);
    assert!(pane.contains("hard▌"), "streaming cursor:\n{pane}");

    // The app's clock is the loop's input, not the wall clock: the status
    // line's elapsed seconds are part of the snapshot.
    insta::assert_snapshot!("running_debate_80x24", rows.join("\n"));
}

#[test]
fn below_80x24_shows_terminal_too_small_instead_of_the_panes() {
    for (w, h) in [(79, 24), (80, 23)] {
        let mut app = new_app();
        start_debate(&mut app);
        let text = screen(&render(&mut app, w, h));
        assert!(text.contains("Terminal too small"), "{w}x{h}:\n{text}");
        assert!(text.contains(&format!("{w}×{h}")), "{w}x{h}:\n{text}");
        for pane in ["Personas", "Feature", "Conversation", "gpt-4o-mini"] {
            assert!(!text.contains(pane), "{w}x{h} still shows {pane}:\n{text}");
        }
    }
    // At exactly the minimum the panes are back.
    let mut app = new_app();
    let text = screen(&render(&mut app, 80, 24));
    assert!(!text.contains("Terminal too small"));
    assert!(text.contains("Conversation"));
}

// ---------------------------------------------------------------- scrolling

#[test]
fn page_up_while_streaming_holds_the_view_and_end_or_page_down_follow_again() {
    let mut app = new_app();
    start_debate(&mut app);
    app.on_sim_event(turn_started(0, 1, 1));
    for i in 0..60 {
        app.on_sim_event(token(0, &format!("point {i:02} about offline mode\n")));
    }
    let buf = render(&mut app, 120, 40);
    let pane = conversation_text(&buf);
    assert!(app.conversation().is_following());
    assert!(
        pane.contains("point 59"),
        "following shows the tail:\n{pane}"
    );
    assert!(
        !pane.contains("point 00"),
        "the start is off screen:\n{pane}"
    );

    // PgUp from the editor, where focus is after starting: it works anywhere.
    assert_eq!(app.focus(), Focus::Editor);
    press_code(&mut app, KeyCode::PageUp);
    assert!(!app.conversation().is_following());
    let buf = render(&mut app, 120, 40);
    let first_line = conversation_rows(&buf)[0].1.clone();
    let top = app.conversation().top();
    assert!(row_text(&buf, 0, 48, 120).contains("scrolled"));
    assert!(!conversation_text(&buf).contains("point 59"));

    // More tokens arrive, some of them new lines: the view stays put.
    for i in 60..90 {
        app.on_sim_event(token(0, &format!("point {i:02} about offline mode\n")));
        let buf = render(&mut app, 120, 40);
        assert_eq!(conversation_rows(&buf)[0].1, first_line, "view jumped");
        assert_eq!(app.conversation().top(), top);
    }
    app.on_sim_event(token(0, "the last word"));

    // PageDown back to the bottom resumes following.
    for _ in 0..10 {
        press_code(&mut app, KeyCode::PageDown);
        render(&mut app, 120, 40);
    }
    assert!(app.conversation().is_following());
    let buf = render(&mut app, 120, 40);
    assert!(!row_text(&buf, 0, 48, 120).contains("scrolled"));
    assert!(conversation_text(&buf).contains("the last word▌"));

    // Again, this time End in the conversation pane follows.
    press_code(&mut app, KeyCode::PageUp);
    render(&mut app, 120, 40);
    assert!(!app.conversation().is_following());
    press_code(&mut app, KeyCode::Tab);
    assert_eq!(app.focus(), Focus::Conversation);
    press_code(&mut app, KeyCode::End);
    assert!(app.conversation().is_following());
    app.on_sim_event(token(0, ", really"));
    let buf = render(&mut app, 120, 40);
    assert!(conversation_text(&buf).contains("the last word, really▌"));

    app.on_sim_event(SimEvent::TurnEnded {
        turn: 0,
        finish_reason: Default::default(),
        stance: None,
    });
    app.on_sim_event(SimEvent::Done {
        outcome: Outcome::Completed,
    });
    assert_eq!(*app.run_state(), RunState::Completed);
}

// ---------------------------------------------------------------- paste

#[test]
fn bracketed_paste_goes_to_the_editor_as_lines_from_any_focus() {
    let mut app = new_app();
    assert_eq!(app.focus(), Focus::Personas);
    assert!(app.update(Action::Paste("line1\r\nline2".into())).is_none());
    assert_eq!(app.focus(), Focus::Editor);
    assert_eq!(app.editor_lines(), ["line1", "line2"]);
    assert!(
        app.selected().is_empty(),
        "nothing reached the persona list"
    );
    assert!(!app.should_quit());

    // A paste of lone \r from the conversation pane, appended at the cursor.
    press_code(&mut app, KeyCode::Tab);
    assert_eq!(app.focus(), Focus::Conversation);
    app.update(Action::Paste("\rline3".into()));
    assert_eq!(app.focus(), Focus::Editor);
    assert_eq!(app.editor_lines(), ["line1", "line2", "line3"]);
    assert_eq!(app.feature_text(), "line1\nline2\nline3");
}

// ---------------------------------------------------------------- report, history, exports

use persona_sim::sim::export::ExportFormat;
use persona_sim::sim::session::Session;
use persona_sim::tui::action::{HistoryAction, JobDone};
use persona_sim::tui::app::Screen;

#[test]
fn the_report_screen_shows_table_chart_and_jumps_to_the_cited_turn() {
    let mut app = new_app();
    app.open_session(finished_session("Offline mode"));
    assert_eq!(*app.run_state(), RunState::Completed);
    press_code(&mut app, KeyCode::F(3));
    assert_eq!(app.screen(), Screen::Report);
    let buf = render(&mut app, 80, 24);
    let text = screen(&buf);
    for needle in [
        "Feedback report",
        "Split panel.",
        "Maria Lopez",
        "9/10",
        "against",
        "Interest",
        "Cheaper plan",
    ] {
        assert!(text.contains(needle), "missing {needle:?}:\n{text}");
    }
    // Down moves to the concern; Enter shows turn 2 in the conversation.
    press_code(&mut app, KeyCode::Down);
    assert_eq!(app.report_selected(), 1);
    press_code(&mut app, KeyCode::Enter);
    assert_eq!(app.screen(), Screen::Debate);
    assert_eq!(app.focus(), Focus::Conversation);
    let notice = app.notice().unwrap();
    assert!(notice.text.contains("showing T2"), "{}", notice.text);
    let buf = render(&mut app, 80, 24);
    // Everything fits, so nothing scrolls: the cited turn's header is marked.
    let header_cell = |needle: &str| {
        (0..24)
            .find_map(|y| {
                let row = row_text(&buf, y, 0, 80);
                let x = row.find(needle)?;
                Some((row[..x].chars().count() as u16, y))
            })
            .unwrap_or_else(|| panic!("{needle} not on screen"))
    };
    let reversed = |cell: (u16, u16)| {
        buf[cell]
            .modifier
            .contains(ratatui::style::Modifier::REVERSED)
    };
    assert!(reversed(header_cell("Kwame Mensah · round")));
    assert!(!reversed(header_cell("Maria Lopez · round")));
    // F3 and Esc go back and forth.
    press_code(&mut app, KeyCode::F(3));
    press_code(&mut app, KeyCode::Esc);
    assert_eq!(app.screen(), Screen::Debate);
}

#[test]
fn report_events_stream_into_the_report_screen_then_settle() {
    let mut app = new_app();
    start_debate(&mut app);
    app.on_sim_event(turn_started(0, 1, 1));
    app.on_sim_event(token(0, "Fine."));
    app.on_sim_event(SimEvent::TurnEnded {
        turn: 0,
        finish_reason: Default::default(),
        stance: None,
    });
    app.on_sim_event(SimEvent::Done {
        outcome: Outcome::Completed,
    });
    app.on_sim_event(SimEvent::ReportStarted);
    assert!(app.is_running(), "writing the report counts as running");
    press_code(&mut app, KeyCode::F(3));
    app.on_sim_event(SimEvent::ReportToken {
        text: "{\"summary\": \"Half".into(),
    });
    let buf = render(&mut app, 100, 30);
    assert!(
        screen(&buf).contains("Writing the feedback report"),
        "{}",
        screen(&buf)
    );
    // Not the raw JSON: what the model is on, and how far it got.
    assert!(!screen(&buf).contains("{\"summary\": \"Half"));
    assert!(
        screen(&buf).contains("Now writing: summary"),
        "{}",
        screen(&buf)
    );
    // m shows the raw reply.
    press_code(&mut app, KeyCode::Char('m'));
    let buf = render(&mut app, 100, 30);
    assert!(
        screen(&buf).contains("{\"summary\": \"Half"),
        "{}",
        screen(&buf)
    );
    assert!(
        status_line(&buf).contains("writing the report"),
        "{}",
        status_line(&buf)
    );
    // Esc cancels the report, not the finished debate.
    let effect = press_code(&mut app, KeyCode::Esc);
    assert!(matches!(effect, Some(Effect::CancelDebate)));
    assert_eq!(*app.run_state(), RunState::Completed);
    assert!(app.notice().unwrap().text.contains("Report cancelled"));
}

#[test]
fn history_lists_searches_opens_reruns_and_deletes_with_confirmation() {
    let mut app = new_app();
    assert!(matches!(
        press_code(&mut app, KeyCode::F(2)),
        Some(Effect::LoadHistory)
    ));
    let buf = render(&mut app, 80, 24);
    assert!(screen(&buf).contains("Loading"));
    let older = finished_session("Dark mode");
    let mut newer = finished_session("Offline mode\nsecond line");
    newer.id = format!("{}-z", newer.id);
    app.on_loaded(JobDone::History {
        sessions: vec![newer.clone(), older.clone()],
        errors: vec!["cannot read session x.json".into()],
    });
    let buf = render(&mut app, 80, 24);
    let text = screen(&buf);
    assert!(text.contains("History · 2 sessions"), "{text}");
    assert!(
        text.contains("Offline mode") && text.contains("Dark mode"),
        "{text}"
    );
    assert!(text.contains("completed"), "{text}");
    assert!(
        text.contains("1 session file(s) could not be read"),
        "{text}"
    );

    // Search: "/" then words; keys go to the search, not the panes.
    press_code(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "dark");
    press_code(&mut app, KeyCode::Enter);
    let visible: Vec<String> = app
        .history()
        .as_ref()
        .unwrap()
        .visible()
        .iter()
        .map(|s| s.feature.clone())
        .collect();
    assert_eq!(visible, ["Dark mode"]);

    // d asks; n keeps; d then y deletes.
    press_code(&mut app, KeyCode::Char('d'));
    assert!(screen(&render(&mut app, 80, 24)).contains("y deletes"));
    assert!(press_code(&mut app, KeyCode::Char('n')).is_none());
    press_code(&mut app, KeyCode::Char('d'));
    match press_code(&mut app, KeyCode::Char('y')) {
        Some(Effect::DeleteSession(id)) => assert_eq!(id, older.id),
        other => panic!("expected a delete, got {other:?}"),
    }
    app.on_loaded(JobDone::Deleted(Ok(older.id.clone())));
    assert!(app.history().unwrap().visible().is_empty());

    // Clear the search; r loads the feature and personas for a re-run.
    press_code(&mut app, KeyCode::Char('/'));
    for _ in 0..4 {
        app.update(Action::History(HistoryAction::FilterBackspace));
    }
    press_code(&mut app, KeyCode::Esc);
    press_code(&mut app, KeyCode::Char('r'));
    assert!(app.history().is_none());
    assert_eq!(app.editor_lines(), ["Offline mode", "second line"]);
    assert_eq!(app.focus(), Focus::Editor);
    let mut selected: Vec<u32> = app.selected().iter().copied().collect();
    selected.sort();
    assert_eq!(selected, [1, 2]);
    let config = expect_start(press_code(&mut app, KeyCode::F(5)));
    assert_eq!(config.feature, "Offline mode\nsecond line");

    // Enter opens a session: its turns are on screen.
    let mut app = new_app();
    press_code(&mut app, KeyCode::F(2));
    app.on_loaded(JobDone::History {
        sessions: vec![newer],
        errors: vec![],
    });
    press_code(&mut app, KeyCode::Enter);
    assert!(app.history().is_none());
    let pane = conversation_text(&render(&mut app, 100, 30));
    assert!(pane.contains("Turn 1 text from Maria Lopez."), "{pane}");
    assert!(pane.contains("Turn 2 text from Kwame Mensah."), "{pane}");
}

#[test]
fn export_and_follow_up_keys_produce_their_effects() {
    let mut app = new_app();
    // Nothing to export or follow up before a debate.
    assert!(press_code(&mut app, KeyCode::F(4)).is_none());
    assert!(!app.export_menu_open());
    assert_eq!(app.notice().unwrap().level, NoticeLevel::Error);
    assert!(press_code(&mut app, KeyCode::F(6)).is_none());

    app.open_session(finished_session("Offline mode"));
    press_code(&mut app, KeyCode::F(4));
    assert!(app.export_menu_open());
    assert!(screen(&render(&mut app, 80, 24)).contains("Export session"));
    match press_code(&mut app, KeyCode::Char('j')) {
        Some(Effect::Export(session, ExportFormat::Json)) => {
            assert_eq!(session.feature, "Offline mode")
        }
        other => panic!("expected a JSON export, got {other:?}"),
    }
    app.on_loaded(JobDone::Exported(Ok("/tmp/x/exports/s.json".into())));
    assert!(status_line(&render(&mut app, 80, 24)).contains("openai"));
    assert!(screen(&render(&mut app, 80, 24)).contains("Exported to /tmp/x/exports/s.json"));

    // F6 asks the selected personas who took part the editor's text.
    press_code(&mut app, KeyCode::Tab);
    app.clear_feature();
    type_text(&mut app, "Would you pay for it?");
    app.set_selection(&[2, 9]); // not in this session: not asked
    match press_code(&mut app, KeyCode::F(6)) {
        Some(Effect::FollowUp {
            question,
            persona_ids,
            ..
        }) => {
            assert_eq!(question, "Would you pay for it?");
            assert_eq!(persona_ids, [2]);
        }
        other => panic!("expected a follow-up, got {other:?}"),
    }
    assert!(app.is_running());
    assert!(
        app.editor_lines().concat().is_empty(),
        "the question was sent"
    );
    app.on_sim_event(SimEvent::TurnStarted {
        turn: 2,
        round: 2,
        persona_id: 2,
        speaker: name_of(2),
        question: Some("Would you pay for it?".into()),
    });
    app.on_sim_event(token(2, "Only after harvest."));
    app.on_sim_event(SimEvent::TurnEnded {
        turn: 2,
        finish_reason: Default::default(),
        stance: None,
    });
    app.on_sim_event(SimEvent::Done {
        outcome: Outcome::Completed,
    });
    assert_eq!(*app.run_state(), RunState::Completed);
    let pane = conversation_text(&render(&mut app, 100, 30));
    assert!(pane.contains("asked: Would you pay for it?"), "{pane}");
    assert!(pane.contains("Only after harvest."), "{pane}");
    assert_eq!(app.session().unwrap().turns.len(), 3);
}

// ---------------------------------------------------------------- managing the panel

use persona_sim::sim::synth::{BatchResult, SynthEvent};

fn expect_change(effect: Option<Effect>) -> persona_sim::persona::ops::Change {
    match effect {
        Some(Effect::ChangePanel(change)) => *change,
        other => panic!("expected ChangePanel, got {other:?}"),
    }
}

fn type_keys(app: &mut App, text: &str) {
    for c in text.chars() {
        press_code(app, KeyCode::Char(c));
    }
}

#[test]
fn slash_filters_live_and_a_selects_only_what_is_shown() {
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char('/'));
    type_keys(&mut app, "prof:low");
    let shown = app.visible_rows().len();
    assert!(shown > 0 && shown < 14, "{shown}");
    let buf = render(&mut app, 100, 30);
    assert!(screen(&buf).contains("/prof:low▌"), "{}", screen(&buf));
    assert!(screen(&buf).contains(&format!("{shown} shown")));
    // While typing, letters go to the filter, not to commands.
    assert!(!app.should_quit());
    press_code(&mut app, KeyCode::Enter);
    press_code(&mut app, KeyCode::Char('a'));
    assert_eq!(app.selected().len(), shown);
    assert!(app.selected().iter().all(|id| {
        app.personas()
            .iter()
            .find(|p| p.id == *id)
            .unwrap()
            .tech_proficiency
            == persona_sim::persona::TechProficiency::Low
    }));
    // Esc clears the filter; the selection stays.
    press_code(&mut app, KeyCode::Esc);
    assert!(app.filter_text().is_none());
    assert_eq!(app.visible_rows().len(), 14);
    assert_eq!(app.selected().len(), shown);
    // Two words are AND-ed.
    press_code(&mut app, KeyCode::Char('/'));
    type_keys(&mut app, "nurse madrid");
    assert_eq!(app.visible_rows().len(), 1);
    assert_eq!(app.cursor_persona().unwrap().name, "Maria Lopez");
}

#[test]
fn adding_a_persona_refuses_invalid_input_then_saves() {
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char('n'));
    assert!(app.form().is_some());
    // Enter on the blank form: refused, with the reason beside the field.
    assert!(press_code(&mut app, KeyCode::Enter).is_none());
    let buf = render(&mut app, 100, 30);
    assert!(screen(&buf).contains("New persona"), "{}", screen(&buf));
    assert!(
        screen(&buf).contains("must not be empty"),
        "{}",
        screen(&buf)
    );
    type_keys(&mut app, "Wanjiru Kamau");
    press_code(&mut app, KeyCode::Tab);
    type_keys(&mut app, "Retired farmer");
    press_code(&mut app, KeyCode::Tab);
    type_keys(&mut app, "Nyeri, Kenya");
    press_code(&mut app, KeyCode::Tab);
    press_code(&mut app, KeyCode::Left); // Medium → Low
    press_code(&mut app, KeyCode::Tab);
    type_keys(&mut app, "distrusts banks; saves cash");
    press_code(&mut app, KeyCode::Tab);
    type_keys(&mut app, "x"); // age: digits only
    assert!(screen(&render(&mut app, 100, 30)).contains("digits only"));
    type_keys(&mut app, "67");
    expect_change(press_code(&mut app, KeyCode::Enter));
    let panel = app.personas().to_vec();
    assert!(app.form().is_none());
    assert_eq!(panel.len(), 15);
    let added = panel.last().unwrap();
    assert_eq!(
        (added.id, added.name.as_str(), added.age),
        (15, "Wanjiru Kamau", Some(67))
    );
    assert_eq!(
        added.tech_proficiency,
        persona_sim::persona::TechProficiency::Low
    );
    assert_eq!(app.cursor_persona().unwrap().id, 15, "the cursor is on it");
    assert_eq!(app.created_count(), 1);
}

#[test]
fn editing_saves_and_esc_asks_before_discarding_changes() {
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char('e'));
    let form = app.form().unwrap();
    assert_eq!(form.fields[1].value, "Maria Lopez");
    press_code(&mut app, KeyCode::Tab); // occupation
    press(&mut app, ctrl(KeyCode::Char('u')));
    type_keys(&mut app, "Charge nurse");
    // Esc with changes asks; n keeps editing.
    press_code(&mut app, KeyCode::Esc);
    assert!(app.form().unwrap().confirm_discard);
    assert!(screen(&render(&mut app, 100, 30)).contains("Discard your changes?"));
    press_code(&mut app, KeyCode::Char('n'));
    expect_change(press_code(&mut app, KeyCode::Enter));
    let panel = app.personas().to_vec();
    assert_eq!(panel[0].occupation, "Charge nurse");
    assert_eq!(panel.len(), 14);
    assert_eq!(app.created_count(), 0, "an edit creates nothing");
    // A duplicate id is refused.
    press_code(&mut app, KeyCode::Char('e'));
    press_code(&mut app, KeyCode::BackTab); // id
    press(&mut app, ctrl(KeyCode::Char('u')));
    type_keys(&mut app, "2");
    assert!(press_code(&mut app, KeyCode::Enter).is_none());
    assert!(screen(&render(&mut app, 100, 30)).contains("duplicate id: #2"));
    press_code(&mut app, KeyCode::Esc);
    press_code(&mut app, KeyCode::Char('y'));
    assert!(app.form().is_none());
    assert_eq!(app.personas()[0].id, 1);
}

#[test]
fn delete_asks_then_u_undoes_and_c_duplicates() {
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char(' ')); // select Maria
    press_code(&mut app, KeyCode::Char('x'));
    assert!(screen(&render(&mut app, 100, 30)).contains("Delete #1 Maria Lopez?"));
    assert!(press_code(&mut app, KeyCode::Char('n')).is_none());
    assert_eq!(app.personas().len(), 14);
    press_code(&mut app, KeyCode::Char('x'));
    expect_change(press_code(&mut app, KeyCode::Char('y')));
    let panel = app.personas().to_vec();
    assert_eq!(panel.len(), 13);
    assert!(!app.selected().contains(&1));
    assert!(app.notice().unwrap().text.contains("u undoes"));
    expect_change(press_code(&mut app, KeyCode::Char('u')));
    let panel = app.personas().to_vec();
    assert_eq!(panel[0].name, "Maria Lopez");
    assert_eq!(panel.len(), 14);
    assert!(
        press_code(&mut app, KeyCode::Char('u')).is_none(),
        "one step only"
    );
    // c opens the form on a copy with the next id.
    press_code(&mut app, KeyCode::Char('c'));
    let form = app.form().unwrap();
    assert_eq!(form.fields[0].value, "15");
    assert_eq!(form.fields[1].value, "Maria Lopez (copy)");
    expect_change(press_code(&mut app, KeyCode::Enter));
    let panel = app.personas().to_vec();
    assert_eq!(panel.len(), 15);
    assert_eq!(panel[14].occupation, panel[0].occupation);
}

#[test]
fn stats_show_the_panel_at_a_glance() {
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char('s'));
    for (w, h) in [(80, 24), (120, 40)] {
        let text = screen(&render(&mut app, w, h));
        for needle in [
            "Panel stats · 14 personas",
            "Tech proficiency",
            "Countries",
            "Occupations",
            "Common traits",
            "countries ·",
        ] {
            assert!(
                text.contains(needle),
                "missing {needle:?} at {w}x{h}:\n{text}"
            );
        }
    }
    press_code(&mut app, KeyCode::Esc);
    assert!(!app.stats_open());
}

#[test]
fn generating_one_persona_opens_it_for_review_and_a_batch_asks_before_adding() {
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char('i'));
    type_keys(&mut app, "retired farmer in Kenya");
    match press_code(&mut app, KeyCode::Enter) {
        Some(Effect::Synthesize {
            brief,
            count,
            panel,
        }) => {
            assert_eq!(
                (brief.as_str(), count, panel.len()),
                ("retired farmer in Kenya", 1, 14)
            );
        }
        other => panic!("expected Synthesize, got {other:?}"),
    }
    assert!(screen(&render(&mut app, 100, 30)).contains("Generating"));
    let mut generated = builtin_panel()[1].clone();
    generated.id = 15;
    generated.name = "Wanjiru Kamau".into();
    app.on_synthesized(Ok(generated));
    let form = app.form().expect("the review form");
    assert_eq!(form.fields[1].value, "Wanjiru Kamau");
    assert!(screen(&render(&mut app, 100, 30)).contains("Generated persona: review"));
    expect_change(press_code(&mut app, KeyCode::Enter));
    let panel = app.personas().to_vec();
    assert_eq!(panel.len(), 15);

    // A batch of 3: progress, then the question.
    press_code(&mut app, KeyCode::Char('i'));
    type_keys(&mut app, "shop owners");
    press_code(&mut app, KeyCode::Tab);
    press_code(&mut app, KeyCode::Backspace);
    type_keys(&mut app, "3");
    assert!(matches!(
        press_code(&mut app, KeyCode::Enter),
        Some(Effect::Synthesize { count: 3, .. })
    ));
    let mut made = Vec::new();
    for i in 0..2u32 {
        let mut p = builtin_panel()[2].clone();
        p.id = 16 + i;
        p.name = format!("Shop Owner {i}");
        made.push(p.clone());
        app.on_synth_event(SynthEvent::Accepted {
            index: i as usize,
            persona: p,
        });
    }
    app.on_synth_event(SynthEvent::Failed {
        index: 2,
        reason: "gave up after 3 tries".into(),
    });
    let text = screen(&render(&mut app, 100, 30));
    assert!(
        text.contains("3 of 3") && text.contains("2 kept · 1 failed"),
        "{text}"
    );
    app.on_batch_done(BatchResult {
        accepted: made,
        failed: vec![(2, "gave up after 3 tries".into())],
        adapted: None,
    });
    let text = screen(&render(&mut app, 100, 30));
    assert!(text.contains("Add these 2 personas?"), "{text}");
    assert!(text.contains("Shop Owner 1"), "{text}");
    expect_change(press_code(&mut app, KeyCode::Char('y')));
    let panel = app.personas().to_vec();
    assert_eq!(panel.len(), 17);
    assert_eq!(app.created_count(), 3);
}

#[test]
fn history_will_not_open_or_delete_over_a_running_debate() {
    let mut app = new_app();
    let config = start_debate(&mut app);
    let running = Session::new(&config, backend());
    app.begin_session(running.clone());
    press_code(&mut app, KeyCode::F(2));
    app.on_loaded(JobDone::History {
        sessions: vec![running, finished_session("Older")],
        errors: vec![],
    });
    // The running session is first: it cannot be deleted.
    press_code(&mut app, KeyCode::Char('d'));
    assert!(app.history().unwrap().confirm_delete.is_none());
    assert!(app.notice().unwrap().text.contains("cancel it first"));
    // Nor can another session replace the one streaming.
    press_code(&mut app, KeyCode::Down);
    press_code(&mut app, KeyCode::Enter);
    assert!(app.history().is_some());
    assert!(app.notice().unwrap().text.contains("Wait for the run"));
    assert_eq!(app.session().unwrap().feature, config.feature);
    // The older one can still be deleted.
    press_code(&mut app, KeyCode::Char('d'));
    assert!(app.history().unwrap().confirm_delete.is_some());
}

// ---------------------------------------------------------------- a panel shared with other processes

use persona_sim::persona::Persona;
use persona_sim::persona::ops::{Applied, Change, PanelOpError};
use persona_sim::persona::rules::IdChoice;
use persona_sim::persona::writer::{WriteFailure, Written};
use persona_sim::tui::action::PanelMsg;

fn written(change: Change, result: Result<Applied, WriteFailure>, panel: Vec<Persona>) -> PanelMsg {
    PanelMsg::Written(Box::new(Written {
        change,
        result,
        panel: Some(panel),
        notices: Vec::new(),
    }))
}

#[test]
fn another_processs_changes_show_keeping_cursor_selection_and_filter() {
    let mut app = new_app();
    // Cursor on Priya (3), Kwame (2) selected.
    press_code(&mut app, KeyCode::Char('j'));
    press_code(&mut app, KeyCode::Char(' '));
    press_code(&mut app, KeyCode::Char('j'));
    assert_eq!(app.cursor_persona().unwrap().id, 3);
    let mut disk = builtin_panel();
    disk.remove(0); // Maria deleted elsewhere
    let mut zoe = disk[0].clone();
    zoe.id = 40;
    zoe.name = "Zoe Added".into();
    disk.push(zoe);
    assert!(!app.on_panel_msg(PanelMsg::Reloaded(disk.clone())));
    assert_eq!(app.personas(), disk.as_slice());
    assert_eq!(
        app.cursor_persona().unwrap().id,
        3,
        "the cursor stays on Priya"
    );
    assert!(app.selected().contains(&2));
    assert_eq!(
        app.notice().unwrap().text,
        "2 personas changed by another process (1 added, 1 deleted)"
    );
    // An edit elsewhere names the fields; the filter stays.
    press_code(&mut app, KeyCode::Char('/'));
    type_keys(&mut app, "Priya");
    press_code(&mut app, KeyCode::Enter);
    disk.iter_mut().find(|p| p.id == 3).unwrap().occupation = "CTO".into();
    app.on_panel_msg(PanelMsg::Reloaded(disk.clone()));
    assert_eq!(app.filter_text(), Some("Priya"));
    assert_eq!(app.visible_rows().len(), 1);
    assert_eq!(app.cursor_persona().unwrap().occupation, "CTO");
    assert_eq!(
        app.notice().unwrap().text,
        "#3 Priya Raman changed by another process (occupation)"
    );
    // The same panel again says nothing new.
    app.set_notice(NoticeLevel::Info, "quiet");
    app.on_panel_msg(PanelMsg::Reloaded(disk));
    assert_eq!(app.notice().unwrap().text, "quiet");
}

#[test]
fn reloads_wait_for_this_screens_own_writes_and_renumbering_is_followed() {
    let mut app = new_app();
    // Add a persona through the form: shown at once, written later.
    press_code(&mut app, KeyCode::Char('n'));
    type_keys(&mut app, "Newt");
    for field in ["Tester", "Lab"] {
        press_code(&mut app, KeyCode::Tab);
        type_keys(&mut app, field);
    }
    let change = expect_change(press_code(&mut app, KeyCode::Enter));
    let Change::Add(added) = &change else {
        panic!("{change:?}")
    };
    assert_eq!(added[0].id, 15);
    assert_eq!(app.cursor_persona().unwrap().name, "Newt");
    // A reload from before the write must not take Newt away…
    assert!(!app.on_panel_msg(PanelMsg::Reloaded(builtin_panel())));
    assert!(app.personas().iter().any(|p| p.name == "Newt"));
    // …and the writer says another process took 15: Newt is #16.
    let mut disk = builtin_panel();
    let mut theirs = disk[0].clone();
    theirs.id = 15;
    theirs.name = "Theirs".into();
    disk.push(theirs);
    let mut newt = added[0].clone();
    newt.id = 16;
    disk.push(newt.clone());
    let poke = app.on_panel_msg(written(
        change,
        Ok(Applied::Added(vec![(
            newt,
            IdChoice::Renumbered { from: 15, to: 16 },
        )])),
        disk.clone(),
    ));
    assert!(poke, "the skipped reload is read again");
    assert_eq!(app.personas(), disk.as_slice());
    let cursor = app.cursor_persona().unwrap();
    assert_eq!((cursor.id, cursor.name.as_str()), (16, "Newt"));
    assert_eq!(
        app.notice().unwrap().text,
        "Added #16 Newt (#15 was taken by another process meanwhile)"
    );
}

#[test]
fn an_edit_of_a_persona_deleted_elsewhere_says_so_and_does_not_bring_it_back() {
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char('e'));
    press(&mut app, ctrl(KeyCode::Char('u')));
    type_keys(&mut app, "Maria Renamed");
    let change = expect_change(press_code(&mut app, KeyCode::Enter));
    let Change::Edit { before, after } = &change else {
        panic!("{change:?}")
    };
    assert_eq!(before.name, "Maria Lopez", "the form's first values");
    assert_eq!(after.name, "Maria Renamed");
    let disk: Vec<Persona> = builtin_panel().into_iter().skip(1).collect();
    app.on_panel_msg(written(
        change,
        Err(WriteFailure::Refused(PanelOpError::NoSuchId(1))),
        disk.clone(),
    ));
    assert_eq!(app.personas(), disk.as_slice(), "not brought back");
    let notice = app.notice().unwrap();
    assert_eq!(notice.level, NoticeLevel::Error);
    assert_eq!(
        notice.text,
        "Not saved: #1 Maria Lopez was deleted by another process"
    );
}

// ------------------------------------------------------ failed session saves

/// The F8 effect's session.
fn expect_session_save(effect: Option<Effect>) -> Session {
    match effect {
        Some(Effect::SaveSession(session)) => *session,
        other => panic!("expected SaveSession, got {other:?}"),
    }
}

/// A session file that cannot be written is an error on screen, naming the
/// file and the reason, never "finished"; F8 writes the session kept in
/// memory again (here through a real store whose `sessions` is a file, then
/// a folder again).
#[test]
fn a_failed_session_save_is_shown_and_f8_saves_it_again() {
    use persona_sim::sim::session::{SessionStore, save_failure_text};
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path().join("sessions"));
    // A file where the folder should be: creating it fails, even for root.
    std::fs::write(&store.dir, "not a folder").unwrap();

    let mut app = new_app();
    let config = start_debate(&mut app);
    let session = Session::new(&config, backend());
    let path = store.path(&session.id);
    let reason = store.save(&session).unwrap_err().to_string();
    app.begin_session(session.clone());
    app.on_sim_event(turn_started(0, 1, 1));
    app.on_sim_event(token(0, "Worth it."));
    // The runner says so before the event whose save failed.
    let failed = SimEvent::SessionSaveFailed {
        path: path.clone(),
        message: reason.clone(),
    };
    app.on_sim_event(failed.clone());
    app.on_sim_event(SimEvent::TurnEnded {
        turn: 0,
        finish_reason: Default::default(),
        stance: None,
    });
    app.on_sim_event(failed.clone());
    app.on_sim_event(SimEvent::Done {
        outcome: Outcome::Completed,
    });
    assert_eq!(*app.run_state(), RunState::Completed);

    let notice = app.notice().unwrap().clone();
    assert_eq!(notice.level, NoticeLevel::Error, "{notice:?}");
    let shown = path.display().to_string();
    assert!(notice.text.contains(&shown), "names the file: {notice:?}");
    assert!(notice.text.contains(&reason), "the reason: {notice:?}");
    assert!(notice.text.contains("F8"), "how to retry: {notice:?}");
    let buf = render(&mut app, 120, 40);
    let screen = screen(&buf);
    assert!(
        status_line(&buf).contains("not saved"),
        "{}",
        status_line(&buf)
    );
    assert!(!screen.contains("finished"), "{screen}");
    assert!(!screen.contains("saved to"), "{screen}");
    assert_eq!(
        conversation_text(&buf).matches("Session not saved").count(),
        1,
        "said once in the conversation, not per failed save"
    );

    // F8 while the folder is still a file: the error stays.
    let retry = expect_session_save(press_code(&mut app, KeyCode::F(8)));
    assert_eq!(retry.id, session.id);
    assert_eq!(retry.turns.len(), 1);
    assert_eq!(retry.turns[0].text, "Worth it.");
    let result = store
        .save(&retry)
        .map(|_| ())
        .map_err(|e| save_failure_text(&path, &e.to_string()));
    app.on_loaded(JobDone::SessionSaved {
        id: retry.id.clone(),
        path: path.clone(),
        result,
    });
    assert_eq!(app.notice().unwrap().level, NoticeLevel::Error);
    assert!(app.notice().unwrap().text.contains(&shown));
    assert!(status_line(&render(&mut app, 120, 40)).contains("not saved"));

    // Writable again: F8 saves it, and now it may say so.
    std::fs::remove_file(&store.dir).unwrap();
    let retry = expect_session_save(press_code(&mut app, KeyCode::F(8)));
    let result = store.save(&retry).map(|_| ()).map_err(|e| e.to_string());
    assert!(result.is_ok(), "{result:?}");
    app.on_loaded(JobDone::SessionSaved {
        id: retry.id.clone(),
        path: path.clone(),
        result,
    });
    let notice = app.notice().unwrap();
    assert_eq!(notice.level, NoticeLevel::Info);
    assert!(
        notice.text.contains(&format!("Session saved to {shown}")),
        "{notice:?}"
    );
    assert!(app.session().unwrap().save_error.is_none());
    let buf = render(&mut app, 120, 40);
    assert!(
        status_line(&buf).contains("✓ finished"),
        "{}",
        status_line(&buf)
    );
    let saved = SessionStore::load_path(&path).unwrap();
    assert_eq!(saved.turns[0].text, "Worth it.");
    assert_eq!(
        saved.status,
        persona_sim::sim::session::SessionStatus::Completed
    );

    // Nothing left to retry.
    assert!(press_code(&mut app, KeyCode::F(8)).is_none());
    assert!(app.notice().unwrap().text.contains("last save worked"));
}

/// F8 does nothing over a running debate (the runner saves after each
/// turn) and says so; the hint bar offers F8 only when a save failed.
#[test]
fn f8_waits_for_the_run_and_is_hinted_only_after_a_failed_save() {
    let mut app = new_app();
    let config = start_debate(&mut app);
    app.begin_session(Session::new(&config, backend()));
    app.on_sim_event(SimEvent::SessionSaveFailed {
        path: "/nowhere/s.json".into(),
        message: "disk full".into(),
    });
    assert!(
        app.notice()
            .unwrap()
            .text
            .contains("/nowhere/s.json: disk full")
    );
    assert!(press_code(&mut app, KeyCode::F(8)).is_none());
    assert!(app.notice().unwrap().text.contains("once it ends"));
    // A later save that works clears it.
    app.on_sim_event(SimEvent::SessionSaved {
        path: "/nowhere/s.json".into(),
    });
    assert!(app.session().unwrap().save_error.is_none());
    app.on_sim_event(SimEvent::Done {
        outcome: Outcome::Cancelled,
    });
    press_code(&mut app, KeyCode::Esc);
    assert!(app.notice().is_none());
    let hints = status_hints(&mut app);
    assert!(!hints.contains("F8"), "{hints}");
    app.on_sim_event(SimEvent::SessionSaveFailed {
        path: "/nowhere/s.json".into(),
        message: "disk full".into(),
    });
    press_code(&mut app, KeyCode::Esc);
    let hints = status_hints(&mut app);
    assert!(hints.contains("F8 save again"), "{hints}");
}

/// The hint line (second to last row) at 120×40.
fn status_hints(app: &mut App) -> String {
    let buf = render(app, 120, 40);
    row_text(&buf, buf.area.height - 2, 0, buf.area.width)
}

// ---------------------------------------------------------------- stage view

/// A debate in round 2 on the stage: Maria said she is for it (8/10),
/// Priya's turn had no stance line, Maria is speaking again.
fn debate_on_stage() -> App {
    use persona_sim::sim::session::Session;
    use persona_sim::sim::stance::{Position, Stance};
    let mut app = new_app();
    let config = start_debate(&mut app);
    app.begin_session(Session::new(&config, backend()));
    app.on_sim_event(turn_started(0, 1, 1));
    app.on_sim_event(token(
        0,
        "As a nurse I chart on a tablet that loses signal in the basement wards.",
    ));
    app.on_sim_event(SimEvent::TurnEnded {
        turn: 0,
        finish_reason: Default::default(),
        stance: Stance::new(Position::For, 8),
    });
    app.on_sim_event(turn_started(1, 1, 3));
    app.on_sim_event(token(1, "Sync conflicts are where this gets hard."));
    app.on_sim_event(SimEvent::TurnEnded {
        turn: 1,
        finish_reason: Default::default(),
        stance: None,
    });
    app.on_sim_event(turn_started(2, 2, 1));
    app.on_sim_event(token(2, "Then keep the last version and show me"));
    press_code(&mut app, KeyCode::F(9));
    assert!(app.stage());
    app
}

#[test]
fn f9_toggles_the_stage_view_and_esc_leaves_it_without_cancelling() {
    let mut app = new_app();
    assert!(!app.stage());
    press_code(&mut app, KeyCode::F(9));
    assert!(app.stage());
    // Before any debate the stage says how to set one up.
    let text = screen(&render(&mut app, 80, 24));
    assert!(text.contains("No debate on stage yet"), "{text}");
    press_code(&mut app, KeyCode::F(9));
    assert!(!app.stage());

    let mut app = debate_on_stage();
    // Keys of the hidden panes do nothing on the stage: j scrolls, space
    // does not select, and q still quits.
    let selected = app.selected().clone();
    press_code(&mut app, KeyCode::Char(' '));
    assert_eq!(app.selected(), &selected);
    // A paste does not go to the hidden editor.
    app.update(Action::Paste("typed elsewhere".into()));
    assert!(!app.editor_lines().join("\n").contains("typed elsewhere"));
    // Esc leaves the stage; the debate goes on.
    assert!(press_code(&mut app, KeyCode::Esc).is_none());
    assert!(!app.stage());
    assert!(app.is_running());
    // Off the stage, Esc cancels as before.
    assert!(matches!(
        press_code(&mut app, KeyCode::Esc),
        Some(Effect::CancelDebate)
    ));
    // From the report screen F9 goes straight to the stage.
    let mut app = new_app();
    app.open_session(finished_session("Dark mode"));
    press_code(&mut app, KeyCode::F(3));
    press_code(&mut app, KeyCode::F(9));
    assert!(app.stage());
    assert_eq!(app.screen(), persona_sim::tui::app::Screen::Debate);
}

#[test]
fn stage_mode_starts_on_the_stage_and_returns_to_it_at_each_debate() {
    let mut app = new_app();
    app.set_stage_mode(true);
    assert!(app.stage());
    press_code(&mut app, KeyCode::F(9));
    assert!(!app.stage());
    start_debate(&mut app);
    assert!(app.stage(), "a debate started with --stage goes on stage");

    // A finished debate on the stage asks for no redraw by itself.
    let mut app = new_app();
    app.set_stage_mode(true);
    app.open_session(finished_session("Dark mode"));
    let text = screen(&render(&mut app, 80, 24));
    assert!(
        text.contains("LAST TURN") && text.contains("Kwame Mensah"),
        "{text}"
    );
    assert!(text.contains("Round 1/1 · turn 2/2"), "{text}");
    assert_eq!(app.redraw_deadline(), None);
}

#[test]
fn stage_view_at_80x24() {
    let mut app = debate_on_stage();
    let buf = render(&mut app, 80, 24);
    let rows = lines(&buf);
    assert!(rows[0].contains("FEATURE") && rows[0].contains("Offline mode for the app"));
    assert!(rows[1].contains("SPEAKING") && rows[1].contains("Maria Lopez"));
    assert!(rows[1].contains("Round 2/2 · turn 3/4"), "{}", rows[1]);
    let text = screen(&buf);
    assert!(text.contains("▲ for 8/10"), "{text}");
    assert!(text.contains("Priya ? unknown"), "{text}");
    assert!(text.contains("show me▌"), "{text}");
    assert!(rows[22].contains("F9 leave stage"), "{}", rows[22]);
    insta::assert_snapshot!("stage_view_80x24", rows.join("\n"));
}

#[test]
fn stage_view_at_200x50() {
    let mut app = debate_on_stage();
    let buf = render(&mut app, 200, 50);
    let rows = lines(&buf);
    let text = screen(&buf);
    assert!(text.contains("┌ On stage"), "{text}");
    assert!(text.contains("┌ Stances"), "{text}");
    assert!(text.contains("■■■■■■■■□□ 8/10"), "{text}");
    assert!(text.contains("? unknown"), "{text}");
    insta::assert_snapshot!("stage_view_200x50", rows.join("\n"));
}

/// NO_COLOR: crossterm drops every colour, so the speaker and the stances
/// must stand out by modifiers and words alone.
#[test]
fn stage_view_reads_without_colour() {
    use ratatui::style::Modifier;
    let mut app = debate_on_stage();
    for (w, h) in [(80, 24), (200, 50)] {
        let buf = render(&mut app, w, h);
        let rows = lines(&buf);
        let (y, row) = rows
            .iter()
            .enumerate()
            .find(|(_, r)| r.contains("SPEAKING"))
            .expect("speaker header");
        let x = row[..row.find("Maria Lopez").unwrap()].chars().count() as u16;
        let cell = &buf[(x, y as u16)];
        assert!(
            cell.modifier.contains(Modifier::BOLD | Modifier::REVERSED),
            "{w}x{h}: the speaker's name is bold and reversed, not only coloured"
        );
        let text = screen(&buf);
        assert!(
            text.contains("▲ for") && text.contains("? unknown"),
            "{text}"
        );
    }
}

#[test]
fn the_stance_strip_counts_who_does_not_fit_at_80_columns() {
    use persona_sim::sim::session::Session;
    let mut app = new_app();
    press_code(&mut app, KeyCode::Char('a'));
    press_code(&mut app, KeyCode::Tab);
    type_text(&mut app, "Dark mode");
    let config = expect_start(press_code(&mut app, KeyCode::F(5)));
    app.begin_session(Session::new(&config, backend()));
    app.on_sim_event(turn_started(0, 1, 1));
    press_code(&mut app, KeyCode::F(9));
    let rows = lines(&render(&mut app, 80, 24));
    let strip: Vec<&String> = rows[3..6]
        .iter()
        .filter(|r| r.contains("not yet"))
        .collect();
    assert_eq!(strip.len(), 3, "{rows:#?}");
    assert!(strip[2].trim_end().ends_with("more"), "{rows:#?}");
    assert!(rows[6].starts_with("┌ Conversation"), "{rows:#?}");
}

// ------------------------------------------ Markdown, clipboard, themes

mod look {
    use super::*;
    use persona_sim::sim::export::session_markdown;
    use persona_sim::tui::clipboard::{ClipboardEnv, Multiplexer, osc52};
    use persona_sim::tui::terminal::draw_frame;
    use persona_sim::tui::theme::{self, Theme, ThemeName};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::style::{Color, Modifier};

    /// A frame as the real loop draws it (the theme's last pass included).
    fn frame(app: &mut App, width: u16, height: u16) -> Buffer {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| draw_frame(f, app)).unwrap();
        terminal.backend().buffer().clone()
    }

    /// A debate with one finished Markdown turn and one still streaming,
    /// the focus on the conversation.
    fn markdown_debate() -> App {
        let mut app = new_app();
        start_debate(&mut app);
        app.on_sim_event(turn_started(0, 1, 1));
        for piece in [
            "## Verdict\n",
            "I **like** it, with *care*:\n\n",
            "- works `offline`\n- syncs later\n\n",
            "1. one\n2. two\n3. three\n4. four\n5. five\n6. six\n7. seven\n8. eight\n\n",
            "| Risk | Level |\n|---|---|\n| conflicts | high |\n",
        ] {
            app.on_sim_event(token(0, piece));
        }
        app.on_sim_event(SimEvent::TurnEnded {
            turn: 0,
            finish_reason: Default::default(),
            stance: None,
        });
        app.on_sim_event(turn_started(1, 1, 3));
        // Half a construct, as it streams: the ** is not closed yet.
        app.on_sim_event(token(1, "I **strongly dis"));
        press_code(&mut app, KeyCode::Tab);
        assert_eq!(app.focus(), Focus::Conversation);
        app
    }

    fn find_cell(buf: &Buffer, word: &str) -> (u16, u16) {
        for y in 0..buf.area.height {
            let row = row_text(buf, y, 0, buf.area.width);
            if let Some(byte) = row.find(word) {
                return (row[..byte].chars().count() as u16, y);
            }
        }
        panic!("{word:?} not on screen:\n{}", screen(buf));
    }

    #[test]
    fn replies_render_as_markdown_and_m_shows_the_raw_text() {
        let mut app = markdown_debate();
        let buf = frame(&mut app, 100, 30);
        let text = conversation_text(&buf);
        insta::assert_snapshot!("markdown_turns", text);
        assert!(!text.contains("## Verdict") && !text.contains("**like**"));
        let (x, y) = find_cell(&buf, "like it");
        assert!(buf[(x, y)].modifier.contains(Modifier::BOLD));
        let (x, y) = find_cell(&buf, "care");
        assert!(buf[(x, y)].modifier.contains(Modifier::ITALIC));
        assert!(text.contains("• works offline"), "{text}");
        assert!(text.contains("conflicts │ high"), "{text}");
        // Streaming, half a construct: shown as typed, with the caret.
        assert!(text.contains("I **strongly dis▌"), "{text}");

        press_code(&mut app, KeyCode::Char('m'));
        let raw = conversation_text(&frame(&mut app, 100, 30));
        assert!(
            raw.contains("## Verdict") && raw.contains("I **like** it"),
            "{raw}"
        );
        press_code(&mut app, KeyCode::Char('m'));
        let again = conversation_text(&frame(&mut app, 100, 30));
        assert_eq!(again, text);
    }

    #[test]
    fn y_copies_the_turn_at_the_bottom_and_big_y_the_transcript() {
        let mut app = markdown_debate();
        app.on_sim_event(token(1, "agree**."));
        app.on_sim_event(SimEvent::TurnEnded {
            turn: 1,
            finish_reason: Default::default(),
            stance: None,
        });
        frame(&mut app, 100, 30);
        assert!(app.take_clipboard().is_none());
        assert!(press_code(&mut app, KeyCode::Char('y')).is_none());
        let bytes = app.take_clipboard().expect("y queues a copy");
        let turn = "I **strongly disagree**.";
        assert_eq!(bytes, osc52(turn, Multiplexer::None));
        assert_eq!(
            bytes,
            b"\x1b]52;c;SSAqKnN0cm9uZ2x5IGRpc2FncmVlKiou\x07".to_vec()
        );
        let notice = app.notice().expect("a notice").text.clone();
        assert!(
            notice.contains("Copied Priya Raman's turn: 24 characters (OSC 52"),
            "{notice}"
        );
        assert!(app.take_clipboard().is_none(), "written once");

        // Inside tmux the same copy goes through its passthrough.
        app.set_clipboard_env(ClipboardEnv::Osc52(Multiplexer::Tmux));
        press_code(&mut app, KeyCode::Char('y'));
        assert_eq!(
            app.take_clipboard().unwrap(),
            b"\x1bPtmux;\x1b\x1b]52;c;SSAqKnN0cm9uZ2x5IGRpc2FncmVlKiou\x07\x1b\\".to_vec()
        );

        // Scrolled to the top, y takes the turn at the bottom of the view.
        app.set_clipboard_env(ClipboardEnv::Osc52(Multiplexer::None));
        press_code(&mut app, KeyCode::Home);
        frame(&mut app, 100, 24);
        press_code(&mut app, KeyCode::Char('y'));
        let notice = app.notice().unwrap().text.clone();
        let first = String::from_utf8(app.take_clipboard().expect(&notice)).unwrap();
        assert!(notice.contains("Maria Lopez's turn"), "{notice} {first:?}");

        // Y: the session on screen, as the Markdown export writes it.
        app.open_session(finished_session("Offline **mode**"));
        while app.focus() != Focus::Conversation {
            press_code(&mut app, KeyCode::Tab);
        }
        press_code(&mut app, KeyCode::Char('Y'));
        let transcript = session_markdown(app.session().unwrap());
        assert_eq!(
            app.take_clipboard().unwrap(),
            osc52(&transcript, Multiplexer::None)
        );
        assert!(transcript.contains("Offline **mode**"), "{transcript}");
        assert!(app.notice().unwrap().text.contains("Copied the transcript"));
    }

    #[test]
    fn y_after_a_jump_from_the_report_copies_the_turn_jumped_to() {
        let mut session = finished_session("Offline mode");
        session.report.as_mut().unwrap().insights[0].turns = vec![1];
        let mut app = new_app();
        app.open_session(session);
        press_code(&mut app, KeyCode::F(3));
        press_code(&mut app, KeyCode::Enter);
        assert_eq!(app.focus(), Focus::Conversation);
        frame(&mut app, 100, 30);
        press_code(&mut app, KeyCode::Char('y'));
        assert_eq!(
            app.take_clipboard().unwrap(),
            osc52("Turn 1 text from Maria Lopez.", Multiplexer::None)
        );
        let notice = app.notice().unwrap().text.clone();
        assert!(notice.contains("Maria Lopez's turn"), "{notice}");
    }

    #[test]
    fn a_copy_that_cannot_work_says_why_and_sends_nothing() {
        let mut app = markdown_debate();
        frame(&mut app, 100, 30);
        app.set_clipboard_env(ClipboardEnv::detect(|name| {
            (name == "TERM").then(|| "dumb".to_string())
        }));
        press_code(&mut app, KeyCode::Char('y'));
        assert!(app.take_clipboard().is_none());
        let notice = app.notice().unwrap();
        assert_eq!(notice.level, NoticeLevel::Error);
        assert!(notice.text.contains("TERM=dumb"), "{}", notice.text);

        app.set_clipboard_env(ClipboardEnv::Osc52(Multiplexer::None));
        app.on_sim_event(token(1, &"long words ".repeat(10_000)));
        frame(&mut app, 100, 30);
        press_code(&mut app, KeyCode::Char('y'));
        assert!(app.take_clipboard().is_none());
        let notice = app.notice().unwrap();
        assert!(
            notice.text.contains("more than terminals take"),
            "{}",
            notice.text
        );
    }

    #[test]
    fn report_screen_y_copies_the_report_as_markdown() {
        let mut app = new_app();
        app.open_session(finished_session("Offline mode"));
        press_code(&mut app, KeyCode::F(3));
        press_code(&mut app, KeyCode::Char('y'));
        let report = app.session().unwrap().report.clone().unwrap();
        let expected = persona_sim::sim::report::report_markdown(&report);
        assert_eq!(
            app.take_clipboard().unwrap(),
            osc52(&expected, Multiplexer::None)
        );
        assert!(app.notice().unwrap().text.contains("Copied the report"));
    }

    #[test]
    fn while_the_report_is_written_the_screen_shows_progress_not_json() {
        let mut app = new_app();
        start_debate(&mut app);
        app.on_sim_event(turn_started(0, 1, 1));
        app.on_sim_event(token(0, "Fine."));
        app.on_sim_event(SimEvent::TurnEnded {
            turn: 0,
            finish_reason: Default::default(),
            stance: None,
        });
        app.on_sim_event(SimEvent::Done {
            outcome: Outcome::Completed,
        });
        app.on_sim_event(SimEvent::ReportStarted);
        app.on_sim_event(SimEvent::ReportToken {
            text: r#"{"summary":"Most like it.","personas":[{"name":"Maria"#.into(),
        });
        press_code(&mut app, KeyCode::F(3));
        let buf = frame(&mut app, 80, 24);
        let text = screen(&buf);
        assert!(text.contains("writing the report…"), "{text}");
        assert!(!text.contains("· completed"), "{text}");
        assert!(text.contains("53 characters received"), "{text}");
        assert!(text.contains("Now writing: personas"), "{text}");
        assert!(text.contains("Done: summary"), "{text}");
        assert!(!text.contains("{\"summary\""), "no raw JSON: {text}");
    }

    #[test]
    fn no_color_keeps_reverse_video_and_bold_without_any_colour() {
        theme::use_on_this_thread(Theme {
            name: ThemeName::Dark,
            no_color: true,
        });
        let mut app = markdown_debate();
        // The persona list focused: its cursor is reverse video.
        press_code(&mut app, KeyCode::Tab);
        let buf = frame(&mut app, 100, 30);
        theme::use_on_this_thread(Theme::DEFAULT);
        for cell in &buf.content {
            assert_eq!((cell.fg, cell.bg), (Color::Reset, Color::Reset), "{cell:?}");
        }
        let (x, y) = find_cell(&buf, "Priya Raman");
        assert!(
            buf[(x, y)].modifier.contains(Modifier::REVERSED),
            "the list cursor stays visible"
        );
        let (x, y) = find_cell(&buf, "┌ Personas");
        assert!(
            buf[(x, y)].modifier.contains(Modifier::BOLD),
            "focused pane"
        );
        let (x, y) = find_cell(&buf, "like it");
        assert!(
            buf[(x, y)].modifier.contains(Modifier::BOLD),
            "Markdown bold"
        );
        insta::assert_snapshot!("no_color_main_screen", screen(&buf));
    }

    #[test]
    fn light_theme_draws_no_colour_unreadable_on_white() {
        theme::use_on_this_thread(Theme {
            name: ThemeName::Light,
            no_color: false,
        });
        let mut app = markdown_debate();
        let buf = frame(&mut app, 100, 30);
        let header = find_cell(&buf, "Maria Lopez · round");
        let maria = speaker_color(1);
        theme::use_on_this_thread(Theme::DEFAULT);
        let unreadable = [
            Color::Yellow,
            Color::LightYellow,
            Color::LightCyan,
            Color::White,
        ];
        // On the terminal's own (white) background.
        for cell in buf.content.iter().filter(|c| c.bg == Color::Reset) {
            assert!(!unreadable.contains(&cell.fg), "{cell:?}");
        }
        assert_eq!(buf[header].fg, maria);
        assert_ne!(maria, speaker_color(1), "the dark theme's colour differs");
    }
}
