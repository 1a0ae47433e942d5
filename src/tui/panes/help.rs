//! The `?` overlay listing every key.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::tui::keymap::HELP;
use crate::tui::theme;

pub fn render(frame: &mut Frame, area: Rect) {
    let width = area.width.saturating_sub(4).min(86);
    let key_width = HELP
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    // Wrap descriptions here, under their column, so the popup's height
    // counts every row and no entry is cut off at the bottom.
    let indent = key_width + 3;
    let what_width = (width.saturating_sub(2) as usize)
        .saturating_sub(indent)
        .max(10);
    let mut lines: Vec<Line> = Vec::new();
    for (key, what) in HELP {
        for (i, piece) in textwrap::wrap(what, what_width).into_iter().enumerate() {
            let lead = if i == 0 {
                format!(" {key:<key_width$}  ")
            } else {
                " ".repeat(indent)
            };
            lines.push(Line::from(vec![
                Span::styled(lead, theme::key()),
                Span::raw(piece.into_owned()),
            ]));
        }
    }
    lines.push(Line::default());
    lines.push(Line::styled(" Esc, ? or F1 closes this help", theme::dim()));
    let height = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
    let popup = super::popup(frame, area, width, height);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Keys ")
                .border_style(theme::key()),
        ),
        popup,
    );
}
