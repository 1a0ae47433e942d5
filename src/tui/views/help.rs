//! The help overlay (`?`, F1): every key, generated from the bindings, by
//! where it works. Scrolls when it does not fit.

use crossterm::event::KeyCode;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::{View, popup};
use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::keymap::{Binding, bind, ch, help_sections, hinted, key};
use crate::tui::theme;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Help {
    /// First line shown.
    pub scroll: usize,
}

pub static BINDINGS: &[Binding] = &[
    hinted(
        &[key(KeyCode::Esc), ch('q'), ch('?'), key(KeyCode::Enter)],
        "Esc q ? Enter",
        "close the help",
        ("Esc", "close"),
        Action::ToggleHelp,
    ),
    hinted(
        &[key(KeyCode::Up), ch('k')],
        "↑ k",
        "scroll the help up",
        ("↑↓", "scroll"),
        Action::HelpScroll(-1),
    ),
    bind(
        &[key(KeyCode::Down), ch('j')],
        "↓ j",
        "scroll down",
        Action::HelpScroll(1),
    ),
    bind(
        &[key(KeyCode::PageUp)],
        "PgUp",
        "page up",
        Action::HelpScroll(-10),
    ),
    bind(
        &[key(KeyCode::PageDown)],
        "PgDn",
        "page down",
        Action::HelpScroll(10),
    ),
];

/// Every line of the help at `width` columns (descriptions wrapped under
/// their column).
pub fn lines(width: usize) -> Vec<Line<'static>> {
    let sections = help_sections();
    let key_width = sections
        .iter()
        .flat_map(|(_, b)| b.iter())
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(0)
        .min(16);
    let indent = key_width + 3;
    let what_width = width.saturating_sub(indent).max(10);
    let mut lines = Vec::new();
    for (title, bindings) in sections {
        if bindings.is_empty() {
            continue;
        }
        lines.push(Line::styled(format!(" {title}"), theme::info()));
        for b in bindings {
            for (i, piece) in textwrap::wrap(b.help, what_width).into_iter().enumerate() {
                let lead = if i == 0 {
                    format!(" {:<key_width$}  ", b.label)
                } else {
                    " ".repeat(indent)
                };
                lines.push(Line::from(vec![
                    Span::styled(lead, theme::key()),
                    Span::raw(piece.into_owned()),
                ]));
            }
        }
    }
    lines.push(Line::styled(
        " In the feature editor every other key edits the text; a paste goes there from any pane.",
        theme::dim(),
    ));
    lines
}

impl View for Help {
    fn bindings(&self) -> &'static [Binding] {
        BINDINGS
    }

    fn draw(&self, frame: &mut Frame, area: Rect, _app: &App) {
        let width = area.width.saturating_sub(4).min(90);
        let height = area.height.saturating_sub(2);
        let all = lines(width.saturating_sub(2) as usize);
        let rows = height.saturating_sub(2) as usize;
        let top = self.scroll.min(all.len().saturating_sub(rows));
        let shown = format!(
            " {}–{} of {} · ↑↓ PgUp PgDn scroll · Esc closes ",
            top + 1,
            (top + rows).min(all.len()),
            all.len()
        );
        let area = popup(frame, area, width, height);
        frame.render_widget(
            Paragraph::new(all.into_iter().skip(top).take(rows).collect::<Vec<_>>()).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" Keys ")
                    .title_bottom(Line::styled(shown, theme::dim()))
                    .border_style(theme::key()),
            ),
            area,
        );
    }
}
