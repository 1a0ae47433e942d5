//! "Delete this persona?" (x in the persona list); u undoes it afterwards.

use crossterm::event::KeyCode;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use unicode_width::UnicodeWidthStr;

use super::{View, popup};
use crate::tui::action::{Action, PanelAction};
use crate::tui::app::App;
use crate::tui::keymap::{Binding, ch, hinted, key};
use crate::tui::theme;

#[derive(Debug, Clone, PartialEq)]
pub struct ConfirmDelete {
    pub id: u32,
}

pub static BINDINGS: &[Binding] = &[
    hinted(
        &[ch('y')],
        "y",
        "delete it",
        ("y", "delete"),
        Action::Panel(PanelAction::ConfirmDelete),
    ),
    hinted(
        &[ch('n'), key(KeyCode::Esc)],
        "n Esc",
        "keep it",
        ("n", "keep"),
        Action::Panel(PanelAction::CancelDelete),
    ),
];

/// A question in a small box: one line when it fits, wrapped when the
/// screen is narrower (measured in cells, so wide names are not cut).
pub fn draw_question(frame: &mut Frame, area: Rect, title: &str, text: &str) {
    let text = format!(" {text}");
    let cells = UnicodeWidthStr::width(text.as_str()) as u16;
    let width = (cells + 3).min(area.width.saturating_sub(4)).max(3);
    let inner = width.saturating_sub(2).max(1);
    // Wrapping at words may take a line more than the cells need.
    let lines = if cells <= inner {
        1
    } else {
        cells.div_ceil(inner) + 1
    };
    let height = lines + 2;
    let area = popup(frame, area, width, height);
    frame.render_widget(
        Paragraph::new(Line::styled(text, theme::error()))
            .wrap(Wrap { trim: false })
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(theme::key())
                    .title(title.to_string()),
            ),
        area,
    );
}

impl View for ConfirmDelete {
    fn bindings(&self) -> &'static [Binding] {
        BINDINGS
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        let name = app
            .personas()
            .iter()
            .find(|p| p.id == self.id)
            .map(|p| p.name.as_str())
            .unwrap_or("?");
        draw_question(
            frame,
            area,
            " Delete persona ",
            &format!(
                "Delete #{} {name}? y deletes (u undoes it) · n keeps",
                self.id
            ),
        );
    }
}
