//! Helpers for driving the TUI without a terminal: keys through the keymap
//! into `App::update`, frames into ratatui's `TestBackend`, and reading the
//! rendered text back. Used by tests/tui.rs and tests/tui_views.rs.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

use persona_sim::llm::BackendInfo;
use persona_sim::persona::builtin_panel;
use persona_sim::sim::debate::{DebateConfig, Outcome, SimEvent};
use persona_sim::sim::report::parse_report;
use persona_sim::sim::session::Session;
use persona_sim::tui::action::Effect;
use persona_sim::tui::app::App;
use persona_sim::tui::keymap::map_key;
use persona_sim::tui::ui;

pub const ROUNDS: u32 = 2;
pub const MAX_TOKENS: u32 = 300;

pub fn backend() -> BackendInfo {
    BackendInfo {
        kind: "openai",
        model: "gpt-4o-mini".into(),
        endpoint: "http://127.0.0.1:1/v1".into(),
    }
}

pub fn new_app() -> App {
    App::new(builtin_panel(), Some(backend()), ROUNDS, MAX_TOKENS)
}

pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

pub fn ctrl(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::CONTROL)
}

/// Maps a key like the event loop does and applies it.
pub fn press(app: &mut App, key: KeyEvent) -> Option<Effect> {
    let action = map_key(app, key)?;
    app.update(action)
}

pub fn press_code(app: &mut App, code: KeyCode) -> Option<Effect> {
    press(app, key(code))
}

/// Types text key by key; '\n' is Enter.
pub fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        let code = if c == '\n' {
            KeyCode::Enter
        } else {
            KeyCode::Char(c)
        };
        assert!(
            press_code(app, code).is_none(),
            "typing {c:?} must not trigger an effect"
        );
    }
}

pub fn expect_start(effect: Option<Effect>) -> DebateConfig {
    match effect {
        Some(Effect::StartDebate(config)) => config,
        Some(other) => panic!("expected StartDebate, got {other:?}"),
        None => panic!("expected StartDebate, got no effect"),
    }
}

pub fn ids(config: &DebateConfig) -> Vec<u32> {
    config.personas.iter().map(|p| p.id).collect()
}

pub fn name_of(id: u32) -> String {
    builtin_panel()
        .into_iter()
        .find(|p| p.id == id)
        .expect("persona id in the built-in panel")
        .name
}

/// Selects Maria (1) and Priya (3), types a feature, and starts.
pub fn start_debate(app: &mut App) -> DebateConfig {
    press_code(app, KeyCode::Char(' '));
    press_code(app, KeyCode::Char('j'));
    press_code(app, KeyCode::Char('j'));
    press_code(app, KeyCode::Char(' '));
    press_code(app, KeyCode::Tab);
    type_text(app, "Offline mode for the app");
    let config = expect_start(press_code(app, KeyCode::F(5)));
    assert!(app.is_running());
    config
}

pub fn turn_started(turn: usize, round: u32, persona_id: u32) -> SimEvent {
    SimEvent::TurnStarted {
        turn,
        round,
        persona_id,
        speaker: name_of(persona_id),
        question: None,
    }
}

pub fn token(turn: usize, text: &str) -> SimEvent {
    SimEvent::Token {
        turn,
        text: text.into(),
    }
}

pub fn render(app: &mut App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| ui::draw(f, app)).unwrap();
    terminal.backend().buffer().clone()
}

/// Text of row `y` between columns `x0..x1`.
pub fn row_text(buf: &Buffer, y: u16, x0: u16, x1: u16) -> String {
    (x0..x1).map(|x| buf[(x, y)].symbol()).collect()
}

pub fn lines(buf: &Buffer) -> Vec<String> {
    let area = buf.area;
    (area.y..area.bottom())
        .map(|y| row_text(buf, y, area.x, area.right()))
        .collect()
}

pub fn screen(buf: &Buffer) -> String {
    lines(buf).join("\n")
}

pub fn status_line(buf: &Buffer) -> String {
    row_text(buf, buf.area.height - 1, 0, buf.area.width)
}

pub fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The inside of the bordered box whose top border carries `title`.
pub fn boxed_text(buf: &Buffer, title: &str) -> Option<Vec<String>> {
    let rows = lines(buf);
    let (y0, top) = rows
        .iter()
        .enumerate()
        .find(|(_, r)| r.contains(&format!("┌{title}")))?;
    let top_chars: Vec<char> = top.chars().collect();
    let x0 = top.split(&format!("┌{title}")).next()?.chars().count();
    let x1 = (x0 + 1..top_chars.len()).find(|&x| top_chars[x] == '┐')?;
    let y1 = (y0 + 1..rows.len()).find(|&y| rows[y].chars().nth(x0) == Some('└'))?;
    Some(
        (y0 + 1..y1)
            .map(|y| row_text(buf, y as u16, x0 as u16 + 1, x1 as u16))
            .collect(),
    )
}

/// A finished two-persona session with a report citing both turns.
pub fn finished_session(feature: &str) -> Session {
    let panel = builtin_panel();
    let config = DebateConfig {
        feature: feature.into(),
        personas: panel[..2].to_vec(),
        rounds: 1,
        max_tokens_per_turn: MAX_TOKENS,
        max_tokens_total: None,
    };
    let mut session = Session::new(&config, backend());
    for (i, p) in panel[..2].iter().enumerate() {
        session.apply(&SimEvent::TurnStarted {
            turn: i,
            round: 1,
            persona_id: p.id,
            speaker: p.name.clone(),
            question: None,
        });
        session.apply(&token(i, &format!("Turn {} text from {}.", i + 1, p.name)));
        session.apply(&SimEvent::TurnEnded {
            turn: i,
            finish_reason: Default::default(),
            stance: None,
        });
    }
    session.apply(&SimEvent::Done {
        outcome: Outcome::Completed,
    });
    let report = parse_report(
        r#"{"summary":"Split panel.","personas":[
            {"name":"Maria Lopez","stance":"for","interest":9,"reason":"Saves time."},
            {"name":"Kwame Mensah","stance":"against","interest":2,"reason":"Costs too much."}],
          "concerns":[{"text":"Price","count":1,"personas":["Kwame Mensah"],"turns":[2]}],
          "requests":[],
          "insights":[{"change":"Cheaper plan","why":"price","helps":"farmers","priority":1,"turns":[2]}]}"#,
        2,
    );
    session.apply(&SimEvent::ReportReady {
        report: Box::new(report),
    });
    session
}
