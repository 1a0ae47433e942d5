//! The "export as" chooser (F4): Markdown or JSON, written to exports/.

use crossterm::event::KeyCode;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::{View, popup};
use crate::sim::export::ExportFormat;
use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::keymap::{Binding, ch, hinted, key};
use crate::tui::theme;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportMenu;

pub static BINDINGS: &[Binding] = &[
    hinted(
        &[ch('m'), key(KeyCode::Enter)],
        "m Enter",
        "export as Markdown (transcript + report)",
        ("m", "Markdown"),
        Action::Export(ExportFormat::Md),
    ),
    hinted(
        &[ch('j')],
        "j",
        "export as JSON (the session file)",
        ("j", "JSON"),
        Action::Export(ExportFormat::Json),
    ),
    hinted(
        &[key(KeyCode::Esc), ch('q'), key(KeyCode::F(4))],
        "Esc q F4",
        "close without exporting",
        ("Esc", "cancel"),
        Action::CloseOverlay,
    ),
];

impl View for ExportMenu {
    fn bindings(&self) -> &'static [Binding] {
        BINDINGS
    }

    fn draw(&self, frame: &mut Frame, area: Rect, _app: &App) {
        let area = popup(frame, area, 44, 5);
        let lines = vec![
            Line::from(vec![
                Span::styled(" m", theme::key()),
                Span::raw("  Markdown (transcript + report)"),
            ]),
            Line::from(vec![
                Span::styled(" j", theme::key()),
                Span::raw("  JSON (the session file)"),
            ]),
            Line::styled(" Esc cancels", theme::dim()),
        ];
        frame.render_widget(
            Paragraph::new(lines).block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(theme::key())
                    .title(" Export session "),
            ),
            area,
        );
    }
}
