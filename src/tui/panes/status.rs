//! The bottom two lines: a notice or key hints, then backend · state · tokens.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::{App, Focus, NoticeLevel, RunState};
use crate::tui::theme;

pub fn render_hints(frame: &mut Frame, area: Rect, app: &App) {
    let line = match &app.notice {
        Some(notice) => {
            let style = match notice.level {
                NoticeLevel::Info => Style::new().fg(Color::LightCyan),
                NoticeLevel::Error => theme::error(),
            };
            Line::from(Span::styled(format!(" {}", notice.text), style))
        }
        None => hints(app),
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn hints(app: &App) -> Line<'static> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    if app.is_running() {
        pairs.push(("Esc", "cancel"));
    } else {
        pairs.push(("F5", "start"));
    }
    match app.focus {
        Focus::Personas => pairs.extend([("Space", "select"), ("a", "all")]),
        Focus::Editor => pairs.push(("type", "feature")),
        Focus::Conversation => pairs.extend([("↑↓", "scroll"), ("End", "follow")]),
    }
    pairs.extend([("Tab", "focus"), ("PgUp/Dn", "scroll")]);
    if app.focus == Focus::Editor {
        pairs.extend([("F1", "help"), ("Ctrl-C", "quit")]);
    } else {
        pairs.extend([("?", "help"), ("q", "quit")]);
    }
    let mut spans = vec![Span::raw(" ")];
    for (key, what) in pairs {
        spans.push(Span::styled(key.to_string(), theme::key()));
        spans.push(Span::styled(format!(" {what}  "), theme::dim()));
    }
    Line::from(spans)
}

pub fn render_status(frame: &mut Frame, area: Rect, app: &App) {
    let backend = match &app.backend {
        Some(info) => Span::styled(
            format!(" {info} "),
            Style::new()
                .bg(Color::Blue)
                .fg(Color::White)
                .add_modifier(Modifier::BOLD),
        ),
        None => Span::styled(
            " no backend ",
            Style::new()
                .bg(Color::Red)
                .fg(Color::White)
                .add_modifier(Modifier::BOLD),
        ),
    };
    let state = match &app.run {
        RunState::Idle => Span::styled(" idle ", theme::dim()),
        RunState::Running {
            round,
            rounds,
            speaker,
            started,
        } => Span::styled(
            format!(
                " ● debating · round {round}/{rounds}{} · {}s ",
                speaker
                    .as_ref()
                    .map(|s| format!(" · {s}"))
                    .unwrap_or_default(),
                started.elapsed().as_secs()
            ),
            Style::new().fg(Color::LightGreen),
        ),
        RunState::Completed => Span::styled(" ✓ finished ", Style::new().fg(Color::LightGreen)),
        RunState::Cancelled => Span::styled(" cancelled ", Style::new().fg(Color::Yellow)),
        RunState::Failed => Span::styled(" ✗ stopped by an error ", theme::error()),
    };
    let tokens = Span::styled(
        format!(
            " tokens {} in · {} out ",
            app.usage.prompt_tokens, app.usage.completion_tokens
        ),
        theme::dim(),
    );
    frame.render_widget(
        Paragraph::new(Line::from(vec![backend, state, tokens]))
            .style(Style::new().bg(Color::Black)),
        area,
    );
}
