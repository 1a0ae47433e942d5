//! Terminal events to actions. Which keys mean what depends on focus: in the
//! editor, letters are text; elsewhere some are commands.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind};

use super::action::{Action, FormKey, HistoryAction, PanelAction};
use super::app::{App, Focus, History, OfferState, Screen};
use super::panel::SynthUi;
use crate::sim::export::ExportFormat;

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
    if let Some(action) = map_panel_overlay(app, key) {
        return action;
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
            KeyCode::Char('/') => Some(Action::Panel(PanelAction::FilterStart)),
            KeyCode::Char('n') => Some(Action::Panel(PanelAction::New)),
            KeyCode::Char('e') => Some(Action::Panel(PanelAction::Edit)),
            KeyCode::Char('c') => Some(Action::Panel(PanelAction::Duplicate)),
            KeyCode::Char('x') | KeyCode::Delete => Some(Action::Panel(PanelAction::Delete)),
            KeyCode::Char('u') => Some(Action::Panel(PanelAction::Undo)),
            KeyCode::Char('s') => Some(Action::Panel(PanelAction::ToggleStats)),
            KeyCode::Char('i') => Some(Action::Panel(PanelAction::Generate)),
            KeyCode::Char('B') => Some(Action::Panel(PanelAction::Backup)),
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

/// Keys for the persona overlays (form, delete, stats, generate) and the
/// filter being typed. `Some(None)` swallows a key.
fn map_panel_overlay(app: &App, key: KeyEvent) -> Option<Option<Action>> {
    let panel = &app.panel;
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let form_key = |confirming: bool| -> Option<FormKey> {
        Some(match key.code {
            KeyCode::Char('y') if confirming => FormKey::Yes,
            KeyCode::Char('n') if confirming => FormKey::No,
            KeyCode::Esc => FormKey::Cancel,
            _ if confirming => return None,
            KeyCode::Char('s') if ctrl => FormKey::Save,
            KeyCode::Char('u') if ctrl => FormKey::ClearField,
            KeyCode::Enter => FormKey::Save,
            KeyCode::Tab | KeyCode::Down => FormKey::Next,
            KeyCode::BackTab | KeyCode::Up => FormKey::Prev,
            KeyCode::Left => FormKey::Left,
            KeyCode::Right => FormKey::Right,
            KeyCode::Backspace => FormKey::Backspace,
            KeyCode::Char(c) if !ctrl => FormKey::Char(c),
            _ => return None,
        })
    };
    if let Some(form) = &panel.form {
        let action = form_key(form.confirm_discard).map(|k| Action::Panel(PanelAction::Form(k)));
        return Some(action);
    }
    if panel.confirm_delete.is_some() {
        return Some(match key.code {
            KeyCode::Char('y') => Some(Action::Panel(PanelAction::ConfirmDelete)),
            KeyCode::Char('n') | KeyCode::Esc => Some(Action::Panel(PanelAction::CancelDelete)),
            _ => None,
        });
    }
    if panel.show_stats {
        return Some(match key.code {
            KeyCode::Esc | KeyCode::Char('s') | KeyCode::Char('q') | KeyCode::Enter => {
                Some(Action::Panel(PanelAction::ToggleStats))
            }
            _ => None,
        });
    }
    if let Some(synth) = &panel.synth {
        let confirming = matches!(synth, SynthUi::Confirm { .. });
        let running = matches!(synth, SynthUi::Running { .. });
        if running {
            // Only Esc (cancel) while it runs; the rest of the app is usable.
            return (key.code == KeyCode::Esc)
                .then_some(Some(Action::Panel(PanelAction::Synth(FormKey::Cancel))));
        }
        let key = match (confirming, key.code) {
            (true, KeyCode::Enter) => Some(FormKey::Yes),
            _ => form_key(confirming),
        };
        return Some(key.map(|k| Action::Panel(PanelAction::Synth(k))));
    }
    if app.focus == Focus::Personas
        && let Some(filter) = &panel.filter
        && filter.editing
        && !ctrl
    {
        return match key.code {
            KeyCode::Enter => Some(Some(Action::Panel(PanelAction::FilterDone))),
            KeyCode::Esc => Some(Some(Action::Panel(PanelAction::FilterClear))),
            KeyCode::Backspace => Some(Some(Action::Panel(PanelAction::FilterBackspace))),
            KeyCode::Char(c) => Some(Some(Action::Panel(PanelAction::FilterChar(c)))),
            KeyCode::Up => Some(Some(Action::ListUp)),
            KeyCode::Down => Some(Some(Action::ListDown)),
            _ => None,
        };
    }
    if app.focus == Focus::Personas && key.code == KeyCode::Esc && panel.filter.is_some() {
        return Some(Some(Action::Panel(PanelAction::FilterClear)));
    }
    None
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
    ("Esc", "cancel a run; close a view; clear the filter"),
    (
        "Tab / Shift-Tab",
        "focus: personas → feature → conversation",
    ),
    (
        "↑↓ j k · g G",
        "move or scroll · first / last, top / follow",
    ),
    ("Space Enter · a", "select a persona · all shown (or none)"),
    (
        "/ · s",
        "personas: filter (nurse low, prof:high, loc:kenya) · stats",
    ),
    ("n e c x u", "personas: new · edit · copy · delete · undo"),
    (
        "i · B",
        "generate personas with the LLM · back up the panel",
    ),
    (
        "PgUp PgDn · wheel",
        "scroll the conversation (wheel: --mouse)",
    ),
    ("paste", "goes into the feature editor"),
    ("F2", "history: Enter open · r re-run · d delete · / search"),
    ("F3", "report ⇄ debate; ↑↓ pick, Enter shows cited turns"),
    ("F4", "export the session: m Markdown · j JSON"),
    (
        "F6 · F7",
        "ask the selected a follow-up · rewrite the report",
    ),
    ("? / F1", "this help (F1 in the editor)"),
    ("q / Ctrl-C", "quit (q outside the editor)"),
];
