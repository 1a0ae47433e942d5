//! Dialogs, one file each: its state, its keys, how it draws and how it
//! changes. Open dialogs form one stack ([`Overlay`]s in `App`); key routing
//! and drawing both walk that stack, so what is on top is what takes keys.

pub mod confirm_delete;
pub mod confirm_quit;
pub mod export_menu;
pub mod generate;
pub mod help;
pub mod history;
pub mod model_offer;
pub mod moderate;
pub mod persona_form;
pub mod persona_reason;
pub mod stats;

use std::time::Instant;

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Clear;
use unicode_width::UnicodeWidthStr;

use super::action::Action;
use super::app::App;
use super::keymap::{Binding, lookup};
use super::theme;

/// What a view does with a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Routed {
    Action(Action),
    /// Taken, nothing to do (a modal view ignoring a key).
    Swallow,
    /// Not this view's: the view below (or the screen) gets it.
    Pass,
}

pub trait View {
    /// The keys this view answers now, for routing, the hints and the help.
    fn bindings(&self) -> &'static [Binding];
    /// Whether the view takes every key (a dialog) or only its bindings,
    /// leaving the screen below usable (a running batch). Key routing and
    /// the hint bar both read this.
    fn modal(&self) -> bool {
        true
    }
    /// A key no binding matched, on a modal view: typed text, or `Swallow`.
    fn other_key(&self, _key: &KeyEvent) -> Routed {
        Routed::Swallow
    }
    fn draw(&self, frame: &mut Frame, area: Rect, app: &App);
    /// When this view next changes by itself (a counter), so the loop
    /// redraws then and not before.
    fn redraw_at(&self, _now: Instant) -> Option<Instant> {
        None
    }
}

pub fn route(view: &dyn View, key: &KeyEvent) -> Routed {
    match lookup(view.bindings(), key) {
        Some(action) => Routed::Action(action),
        None if view.modal() => view.other_key(key),
        None => Routed::Pass,
    }
}

/// An open dialog.
#[derive(Debug, Clone)]
pub enum Overlay {
    Help(help::Help),
    History(history::History),
    ExportMenu(export_menu::ExportMenu),
    PersonaForm(persona_form::PersonaForm),
    ConfirmDelete(confirm_delete::ConfirmDelete),
    Stats(stats::Stats),
    Generate(generate::Generate),
    ModelOffer(model_offer::ModelOffer),
    Floor(moderate::Floor),
    Ask(moderate::Ask),
    Audience(moderate::Audience),
    ConfirmEnd(moderate::ConfirmEnd),
    ConfirmQuit(confirm_quit::ConfirmQuit),
    PersonaReason(persona_reason::PersonaReason),
}

impl Overlay {
    pub fn view(&self) -> &dyn View {
        match self {
            Overlay::Help(v) => v,
            Overlay::History(v) => v,
            Overlay::ExportMenu(v) => v,
            Overlay::PersonaForm(v) => v,
            Overlay::ConfirmDelete(v) => v,
            Overlay::Stats(v) => v,
            Overlay::Generate(v) => v,
            Overlay::ModelOffer(v) => v,
            Overlay::Floor(v) => v,
            Overlay::Ask(v) => v,
            Overlay::Audience(v) => v,
            Overlay::ConfirmEnd(v) => v,
            Overlay::ConfirmQuit(v) => v,
            Overlay::PersonaReason(v) => v,
        }
    }
}

/// Every dialog's keys, for the help and the README.
pub fn help_sections() -> Vec<(&'static str, &'static [Binding])> {
    vec![
        ("History (F2)", history::BROWSE),
        (
            "A persona in the report (p, Enter)",
            persona_reason::BINDINGS,
        ),
        ("Export (F4)", export_menu::BINDINGS),
        ("Persona form (n, e, c)", persona_form::EDITING),
        ("Generate personas (i)", generate::ASKING),
        ("Offline model offer", model_offer::ASKING),
        ("Give the floor (Ctrl-F)", moderate::FLOOR),
        ("Question to the panel (Ctrl-Q)", moderate::ASK),
        ("Audience questions (Ctrl-A)", moderate::AUDIENCE),
        ("End the debate (Ctrl-E)", moderate::CONFIRM_END),
        ("Delete persona (x)", confirm_delete::BINDINGS),
        (
            "Quit while a run goes on (q, Ctrl-C)",
            confirm_quit::BINDINGS,
        ),
        ("Help", help::BINDINGS),
    ]
}

/// Clears and returns a `width`×`height` box centred in `area`.
pub fn popup(frame: &mut Frame, area: Rect, width: u16, height: u16) -> Rect {
    let rect = Rect {
        x: area.x + area.width.saturating_sub(width) / 2,
        y: area.y + area.height.saturating_sub(height) / 2,
        width: width.min(area.width),
        height: height.min(area.height),
    };
    frame.render_widget(Clear, rect);
    // A wide character (CJK, emoji) starting just left of the box covers
    // the box's first column: the terminal would draw it over the left
    // border (ratatui skips the cell it covers). Blank the half left out.
    let buf = frame.buffer_mut();
    if rect.x > buf.area.x {
        for y in rect.top()..rect.bottom() {
            let cell = &mut buf[(rect.x - 1, y)];
            if cell.symbol().width() > 1 {
                cell.set_symbol(" ");
            }
        }
    }
    rect
}

/// "key what · key what" from the bindings' hints, for a dialog's border.
pub fn hint_text(bindings: &[Binding]) -> String {
    let parts: Vec<String> = bindings
        .iter()
        .filter_map(|b| b.hint.map(|(k, what)| format!("{k} {what}")))
        .collect();
    format!(" {} ", parts.join(" · "))
}

/// The same hints as a styled line for the hint bar.
pub fn hint_line(pairs: &[(&str, &str)]) -> Line<'static> {
    let mut spans = vec![Span::raw(" ")];
    for (key, what) in pairs {
        spans.push(Span::styled(key.to_string(), theme::key()));
        spans.push(Span::styled(format!(" {what}  "), theme::dim()));
    }
    Line::from(spans)
}

/// The next whole second after `started`, for "Ns" counters.
pub fn next_second(started: Instant, now: Instant) -> Instant {
    let elapsed = now.saturating_duration_since(started).as_secs();
    started + std::time::Duration::from_secs(elapsed + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::style::Style;
    use ratatui::widgets::{Block, Borders};

    #[test]
    fn a_popup_keeps_its_left_border_over_wide_characters() {
        // Both parities: one row's wide characters start on even columns,
        // the other's on odd ones, so one of them straddles the border.
        let mut terminal = Terminal::new(TestBackend::new(30, 4)).unwrap();
        terminal
            .draw(|frame| {
                let buf = frame.buffer_mut();
                buf.set_string(0, 1, "漢字漢字漢字漢字漢字漢字漢字", Style::default());
                buf.set_string(0, 2, "a漢字漢字漢字漢字漢字漢字漢字", Style::default());
                let rect = popup(frame, Rect::new(0, 0, 30, 4), 11, 4);
                frame.render_widget(Block::default().borders(Borders::ALL), rect);
            })
            .unwrap();
        let buf = terminal.backend().buffer();
        for y in 1..3 {
            assert_eq!(buf[(9, y)].symbol(), "│", "row {y}: {buf:?}");
        }
    }
}
