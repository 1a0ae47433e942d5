//! Terminal events to actions. Which keys mean what depends on focus: in the
//! editor, letters are text; elsewhere some are commands.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind};

use super::action::{Action, HistoryAction};
use super::app::{App, Focus, History, OfferState, Screen};
use crate::config::ExportFormat;

/// Lines moved per mouse wheel notch.
const WHEEL_LINES: usize = 3;

pub fn map_event(app: &App, event: Event) -> Option<Action> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => map_key(app, key),
        Event::Paste(text) => Some(Action::Paste(text)),
        Event::Mouse(m) => match m.kind {
            MouseEventKind::ScrollUp => Some(Action::ScrollUp(WHEEL_LINES)),
            MouseEventKind::ScrollDown => Some(Action::ScrollDown(WHEEL_LINES)),
            _ => None,
        },
        Event::Resize(..) | Event::FocusGained => Some(Action::Redraw),
        _ => None,
    }
}

pub fn map_key(app: &App, key: KeyEvent) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    // Keys that mean the same everywhere.
    match key.code {
        KeyCode::Char('c') if ctrl => return Some(Action::Quit),
        KeyCode::F(1) => return Some(Action::ToggleHelp),
        _ => {}
    }
    if let Some(offer) = &app.model_offer {
        return match (&offer.state, key.code) {
            (OfferState::Asking, KeyCode::Enter | KeyCode::Char('y')) => {
                Some(Action::AcceptModelFetch)
            }
            (OfferState::Asking, KeyCode::Esc | KeyCode::Char('n')) => {
                Some(Action::DismissModelOffer)
            }
            (OfferState::Fetching { .. }, KeyCode::Esc) => Some(Action::DismissModelOffer),
            (OfferState::Failed(_), KeyCode::Esc | KeyCode::Enter) => {
                Some(Action::DismissModelOffer)
            }
            _ => None,
        };
    }
    if app.show_help {
        return match key.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('?') | KeyCode::Enter => {
                Some(Action::ToggleHelp)
            }
            _ => None,
        };
    }
    if app.export_menu {
        return match key.code {
            KeyCode::Char('m') | KeyCode::Enter => Some(Action::Export(ExportFormat::Md)),
            KeyCode::Char('j') => Some(Action::Export(ExportFormat::Json)),
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::F(4) => Some(Action::Escape),
            _ => None,
        };
    }
    if let Some(history) = &app.history {
        return map_history_key(history, key).map(Action::History);
    }
    match key.code {
        KeyCode::F(5) => return Some(Action::StartDebate),
        KeyCode::F(2) => return Some(Action::OpenHistory),
        KeyCode::F(3) => return Some(Action::ToggleReport),
        KeyCode::F(4) => return Some(Action::ExportMenu),
        KeyCode::F(6) => return Some(Action::FollowUp),
        KeyCode::F(7) => return Some(Action::WriteReport),
        KeyCode::Char('r') if ctrl => return Some(Action::StartDebate),
        // Reported only by terminals with the kitty keyboard protocol.
        KeyCode::Enter if ctrl => return Some(Action::StartDebate),
        KeyCode::Esc => return Some(Action::Escape),
        KeyCode::Tab => return Some(Action::FocusNext),
        KeyCode::BackTab => return Some(Action::FocusPrev),
        KeyCode::PageUp => return Some(Action::PageUp),
        KeyCode::PageDown => return Some(Action::PageDown),
        _ => {}
    }
    if app.screen == Screen::Report {
        return match key.code {
            KeyCode::Up | KeyCode::Char('k') => Some(Action::ReportUp),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::ReportDown),
            KeyCode::Enter => Some(Action::ReportJump),
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Char('?') => Some(Action::ToggleHelp),
            _ => None,
        };
    }
    match app.focus {
        Focus::Editor => Some(Action::Edit(key)),
        Focus::Personas => match key.code {
            KeyCode::Up | KeyCode::Char('k') => Some(Action::ListUp),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::ListDown),
            KeyCode::Home | KeyCode::Char('g') => Some(Action::ListTop),
            KeyCode::End | KeyCode::Char('G') => Some(Action::ListBottom),
            KeyCode::Char(' ') | KeyCode::Enter => Some(Action::ListToggle),
            KeyCode::Char('a') => Some(Action::ListToggleAll),
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Char('?') => Some(Action::ToggleHelp),
            _ => None,
        },
        Focus::Conversation => match key.code {
            KeyCode::Up | KeyCode::Char('k') => Some(Action::ScrollUp(1)),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::ScrollDown(1)),
            KeyCode::Home | KeyCode::Char('g') => Some(Action::ScrollTop),
            KeyCode::End | KeyCode::Char('G') => Some(Action::FollowTail),
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Char('?') => Some(Action::ToggleHelp),
            _ => None,
        },
    }
}

fn map_history_key(history: &History, key: KeyEvent) -> Option<HistoryAction> {
    if history.confirm_delete.is_some() {
        return match key.code {
            KeyCode::Char('y') => Some(HistoryAction::ConfirmDelete),
            KeyCode::Char('n') | KeyCode::Esc => Some(HistoryAction::CancelDelete),
            _ => None,
        };
    }
    match key.code {
        KeyCode::Up => return Some(HistoryAction::Up),
        KeyCode::Down => return Some(HistoryAction::Down),
        _ => {}
    }
    if history.filtering {
        return match key.code {
            KeyCode::Enter | KeyCode::Esc => Some(HistoryAction::EndFilter),
            KeyCode::Backspace => Some(HistoryAction::FilterBackspace),
            KeyCode::Char(c) => Some(HistoryAction::FilterChar(c)),
            _ => None,
        };
    }
    match key.code {
        KeyCode::Char('k') => Some(HistoryAction::Up),
        KeyCode::Char('j') => Some(HistoryAction::Down),
        KeyCode::Enter => Some(HistoryAction::Open),
        KeyCode::Char('r') => Some(HistoryAction::Rerun),
        KeyCode::Char('d') | KeyCode::Delete => Some(HistoryAction::Delete),
        KeyCode::Char('/') => Some(HistoryAction::StartFilter),
        KeyCode::Esc | KeyCode::Char('q') | KeyCode::F(2) => Some(HistoryAction::Close),
        _ => None,
    }
}

/// Every key, for the help overlay and the README. Keep in step with the
/// match arms above (a test checks the important ones).
pub const HELP: &[(&str, &str)] = &[
    (
        "F5 / Ctrl-R",
        "start the debate (also Ctrl-Enter where reported)",
    ),
    ("Esc", "cancel the debate or report; close a view"),
    (
        "Tab / Shift-Tab",
        "focus: personas → feature → conversation",
    ),
    ("↑↓ / j k", "personas: move · conversation: scroll a line"),
    ("Space / Enter", "personas: select or unselect"),
    ("a", "personas: select all / none"),
    (
        "Home End / g G",
        "first / last persona · top / follow the talk",
    ),
    ("PgUp / PgDn", "scroll the conversation from anywhere"),
    (
        "mouse wheel",
        "scroll (with --mouse, or terminals sending arrows)",
    ),
    ("paste", "goes into the feature editor"),
    ("F2", "history: Enter open · r re-run · d delete · / search"),
    ("F3", "report ⇄ debate; ↑↓ pick, Enter shows cited turns"),
    ("F4", "export the session: m Markdown · j JSON"),
    ("F6", "ask the selected personas the editor's text"),
    ("F7", "write the report again"),
    ("? / F1", "this help (F1 in the editor)"),
    ("q / Ctrl-C", "quit (q outside the editor)"),
];
