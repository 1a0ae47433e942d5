//! "Delete this persona?" (x in the persona list); u undoes it afterwards.

use crossterm::event::KeyCode;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};

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

/// A one-line question in a small box.
pub fn draw_question(frame: &mut Frame, area: Rect, title: &str, text: &str) {
    let width = (text.chars().count() as u16 + 4).min(area.width.saturating_sub(4));
    let area = popup(frame, area, width, 3);
    frame.render_widget(
        Paragraph::new(Line::styled(format!(" {text}"), theme::error())).block(
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
