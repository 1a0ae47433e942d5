//! The bottom two lines: a notice or key hints, then backend · state · tokens.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use crate::sim::session::usage_text;
use crate::tui::app::{App, Focus, NoticeLevel, Phase, RunState, Screen};
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
    if app.screen == Screen::Report {
        pairs.extend([
            ("F3", "debate"),
            ("↑↓", "pick"),
            ("Enter", "turns"),
            ("F4", "export"),
        ]);
        return hint_line(pairs);
    }
    if app.session.is_some() && !app.is_running() {
        pairs.extend([("F3", "report"), ("F6", "ask"), ("F4", "export")]);
    } else {
        pairs.push(("F2", "history"));
    }
    match app.focus {
        Focus::Personas => pairs.extend([("Space", "select"), ("a", "all")]),
        Focus::Editor => pairs.push(("type", "feature")),
        Focus::Conversation => pairs.extend([("↑↓", "scroll"), ("End", "follow")]),
    }
    pairs.push(("Tab", "focus"));
    if app.focus == Focus::Editor {
        pairs.extend([("F1", "help"), ("Ctrl-C", "quit")]);
    } else {
        pairs.extend([("?", "help"), ("q", "quit")]);
    }
    hint_line(pairs)
}

fn hint_line(pairs: Vec<(&str, &str)>) -> Line<'static> {
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
    // Fit the line to the width: drop the speaker first, then shorten tokens.
    let width = area.width as usize;
    let (kind, model) = app
        .backend
        .as_ref()
        .map(|b| (b.kind, b.model.as_str()))
        .unwrap_or(("", ""));
    let with_cost = format!(" tokens {} ", usage_text(kind, model, app.usage));
    let tokens_long = format!(
        " tokens {} in · {} out ",
        app.usage.prompt_tokens, app.usage.completion_tokens
    );
    let tokens_short = format!(
        " {}↑ {}↓ tok ",
        app.usage.prompt_tokens, app.usage.completion_tokens
    );
    let full_state = state_text(app, true);
    let short_state = state_text(app, false);
    // The first that fits: drop the speaker first, then the cost, then
    // shorten the token counts.
    let candidates = [
        (&full_state, &with_cost),
        (&short_state, &with_cost),
        (&short_state, &tokens_long),
        (&short_state, &tokens_short),
    ];
    let ((state_text, state_style), tokens) = candidates
        .into_iter()
        .find(|((state, _), tokens)| backend.width() + state.width() + tokens.width() <= width)
        .unwrap_or(candidates[3]);
    let (state_text, state_style, tokens) = (state_text.clone(), *state_style, tokens.clone());
    let state = Span::styled(state_text, state_style);
    let tokens = Span::styled(tokens, theme::dim());
    frame.render_widget(
        Paragraph::new(Line::from(vec![backend, state, tokens]))
            .style(Style::new().bg(Color::Black)),
        area,
    );
}

fn state_text(app: &App, with_speaker: bool) -> (String, Style) {
    match &app.run {
        RunState::Idle => (" idle ".into(), theme::dim()),
        RunState::Running {
            phase: Phase::Report,
            started,
            ..
        } => (
            format!(" ● writing the report · {}s ", started.elapsed().as_secs()),
            Style::new().fg(Color::LightGreen),
        ),
        RunState::Running {
            phase: Phase::FollowUp,
            speaker,
            started,
            ..
        } => {
            let speaker = match speaker {
                Some(s) if with_speaker => format!(" · {s}"),
                _ => String::new(),
            };
            (
                format!(" ● follow-up{speaker} · {}s ", started.elapsed().as_secs()),
                Style::new().fg(Color::LightGreen),
            )
        }
        RunState::Running {
            round,
            rounds,
            speaker,
            started,
            ..
        } => {
            let speaker = match speaker {
                Some(s) if with_speaker => format!(" · {s}"),
                _ => String::new(),
            };
            (
                format!(
                    " ● debating · round {round}/{rounds}{speaker} · {}s ",
                    started.elapsed().as_secs()
                ),
                Style::new().fg(Color::LightGreen),
            )
        }
        RunState::Completed => (" ✓ finished ".into(), Style::new().fg(Color::LightGreen)),
        RunState::Cancelled => (" cancelled ".into(), Style::new().fg(Color::Yellow)),
        RunState::Failed => (" ✗ stopped by an error ".into(), theme::error()),
        RunState::BudgetReached => (
            " ■ token budget reached ".into(),
            Style::new().fg(Color::Yellow),
        ),
    }
}
