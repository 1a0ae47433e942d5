//! Terminal events to actions. Which keys mean what depends on focus: in the
//! editor, letters are text; elsewhere some are commands.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind};

use super::action::Action;
use super::app::{App, Focus, OfferState};

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
    match key.code {
        KeyCode::F(5) => return Some(Action::StartDebate),
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

/// Every key, for the help overlay and the README. Keep in step with the
/// match arms above (a test checks the important ones).
pub const HELP: &[(&str, &str)] = &[
    (
        "F5 / Ctrl-R / Ctrl-Enter",
        "start the debate (Ctrl-Enter where the terminal reports it)",
    ),
    ("Esc", "cancel the running debate; close this help"),
    (
        "Tab / Shift-Tab",
        "move focus: personas → feature → conversation",
    ),
    ("↑↓ / j k", "personas: move · conversation: scroll a line"),
    ("Space / Enter", "personas: select or unselect"),
    ("a", "personas: select all / none"),
    (
        "Home End / g G",
        "first / last persona · top / follow the conversation",
    ),
    (
        "PgUp / PgDn",
        "scroll the conversation (anywhere); the stream keeps going",
    ),
    (
        "mouse wheel",
        "scroll the conversation (with --mouse, or terminals that send arrows)",
    ),
    ("paste", "goes into the feature editor"),
    ("? / F1", "this help (F1 in the editor)"),
    ("q / Ctrl-C", "quit (q outside the editor)"),
];
