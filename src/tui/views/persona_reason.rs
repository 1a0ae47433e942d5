//! One participant of the report (Enter on the report's persona table):
//! their stance and full reason as the report gives them, then every turn
//! they spoke, numbered as the report cites them, with the stance each
//! turn stated.

use crossterm::event::KeyCode;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::{View, hint_text, popup};
use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::keymap::{Binding, bind, ch, hinted, key};
use crate::tui::theme;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersonaReason {
    /// The row of the report's persona table.
    pub row: usize,
    pub scroll: u16,
}

pub static BINDINGS: &[Binding] = &[
    hinted(
        &[key(KeyCode::Up), ch('k')],
        "↑ k",
        "scroll up",
        ("↑↓", "scroll"),
        Action::ReasonScroll(-1),
    ),
    bind(
        &[key(KeyCode::Down), ch('j')],
        "↓ j",
        "scroll down",
        Action::ReasonScroll(1),
    ),
    bind(
        &[key(KeyCode::PageUp)],
        "PgUp",
        "scroll up a page",
        Action::ReasonScroll(-10),
    ),
    bind(
        &[key(KeyCode::PageDown)],
        "PgDn",
        "scroll down a page",
        Action::ReasonScroll(10),
    ),
    hinted(
        &[key(KeyCode::Esc), key(KeyCode::Enter), ch('q')],
        "Esc Enter q",
        "close",
        ("Esc", "close"),
        Action::CloseOverlay,
    ),
];

/// The dialog's text: stance, reason, then the persona's turns.
pub fn lines(app: &App, row: usize) -> Vec<Line<'static>> {
    let Some(session) = app.session() else {
        return Vec::new();
    };
    let Some(verdict) = session.report.as_ref().and_then(|r| r.personas.get(row)) else {
        return vec![Line::styled("No such row in the report", theme::dim())];
    };
    let not_given = || "not given".to_string();
    let mut lines = vec![
        Line::from(vec![
            Span::styled("Stance (report): ", theme::dim()),
            Span::raw(
                verdict
                    .stance
                    .map_or_else(not_given, |s| s.label().to_string()),
            ),
            Span::styled("   Interest: ", theme::dim()),
            Span::raw(
                verdict
                    .interest
                    .map_or_else(not_given, |i| format!("{i}/10")),
            ),
        ]),
        Line::default(),
        Line::styled("Reason", Style::new().add_modifier(Modifier::BOLD)),
        Line::raw(verdict.reason.clone().unwrap_or_else(not_given)),
        Line::default(),
        Line::styled("Their turns", Style::new().add_modifier(Modifier::BOLD)),
    ];
    let id = verdict.persona_id;
    let name = verdict.name.as_deref();
    let mut any = false;
    for (i, turn) in session.turns.iter().enumerate() {
        let theirs = !turn.moderator
            && match id {
                Some(id) => turn.persona_id == id,
                None => Some(turn.speaker.as_str()) == name,
            };
        if !theirs {
            continue;
        }
        any = true;
        let stance = turn
            .stance
            .map_or("stance unknown".to_string(), |s| format!("stated: {s}"));
        lines.push(Line::from(vec![
            Span::styled(
                format!("T{} · round {}", i + 1, turn.round),
                Style::new()
                    .fg(theme::speaker_color(turn.persona_id))
                    .add_modifier(Modifier::BOLD),
            ),
            Span::styled(format!(" · {stance}"), theme::dim()),
        ]));
        lines.push(Line::raw(turn.text.trim().to_string()));
        lines.push(Line::default());
    }
    if !any {
        lines.push(Line::styled(
            "They did not speak in this debate.",
            theme::dim(),
        ));
    }
    lines
}

impl View for PersonaReason {
    fn bindings(&self) -> &'static [Binding] {
        BINDINGS
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        let width = area.width.saturating_sub(6).max(20);
        let height = area.height.saturating_sub(2).max(6);
        let area = popup(frame, area, width, height);
        let name = app
            .session()
            .and_then(|s| s.report.as_ref())
            .and_then(|r| r.personas.get(self.row))
            .and_then(|p| p.name.clone())
            .unwrap_or_default();
        frame.render_widget(
            Paragraph::new(lines(app, self.row))
                .wrap(Wrap { trim: false })
                .scroll((self.scroll, 0))
                .block(
                    Block::default()
                        .borders(Borders::ALL)
                        .border_style(theme::key())
                        .title(format!(" {name} "))
                        .title_bottom(hint_text(BINDINGS)),
                ),
            area,
        );
    }
}
