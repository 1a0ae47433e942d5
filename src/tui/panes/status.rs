//! The bottom two lines: a notice or key hints, then backend · state · tokens.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use crate::sim::session::{mark_estimated, usage_text};
use crate::tui::app::{App, Focus, NoticeLevel, Phase, RunState};
use crate::tui::keymap;
use crate::tui::theme;
use crate::tui::views::hint_line;

pub fn render_hints(frame: &mut Frame, area: Rect, app: &App) {
    let line = match &app.notice {
        Some(notice) => {
            let style = match notice.level {
                NoticeLevel::Info => theme::notice(),
                NoticeLevel::Error => theme::error(),
            };
            Line::from(Span::styled(format!(" {}", notice.text), style))
        }
        None => hints(app),
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// The hints of the top dialog, else of the screen and focused pane: read
/// from the key bindings, so they say what the keys do.
fn hints(app: &App) -> Line<'static> {
    let tables = match app.overlays().last() {
        Some(top) => {
            let view = top.view();
            let mut tables = vec![view.bindings()];
            // A view that leaves the screen usable (a running batch): its
            // keys, then the screen's.
            if !view.modal() {
                tables.extend(keymap::screen_tables(app));
            }
            tables
        }
        None => keymap::screen_tables(app),
    };
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for binding in tables.into_iter().flatten() {
        if let Some(hint) = binding.hint
            && (binding.hint_when)(app)
            && !pairs.contains(&hint)
        {
            pairs.push(hint);
        }
    }
    if app.focus() == Focus::Editor && app.overlays().is_empty() && !keymap::in_stage(app) {
        let at = pairs
            .iter()
            .position(|p| p.0 == "Tab")
            .unwrap_or(pairs.len());
        pairs.insert(at, ("type", "feature"));
    }
    hint_line(&pairs)
}

pub fn render_status(frame: &mut Frame, area: Rect, app: &App) {
    let backend = match &app.backend {
        Some(info) => Span::styled(format!(" {info} "), theme::badge()),
        None => Span::styled(" no backend ", theme::badge_error()),
    };
    // Fit the line to the width: drop the speaker first, then shorten tokens.
    let width = area.width as usize;
    let (kind, model) = app
        .backend
        .as_ref()
        .map(|b| (b.kind, b.model.as_str()))
        .unwrap_or(("", ""));
    // "≈" when some counts are estimates (a server that sends no usage).
    let estimated = app.session.as_ref().is_some_and(|s| s.usage_estimated());
    let approx = if estimated { "≈" } else { "" };
    let usage = usage_text(kind, model, app.usage);
    let usage = if estimated {
        mark_estimated(&usage)
    } else {
        usage
    };
    let with_cost = format!(" tokens {usage} ");
    let tokens_long = format!(
        " tokens {approx}{} in · {approx}{} out ",
        app.usage.prompt_tokens, app.usage.completion_tokens
    );
    let tokens_short = format!(
        " {approx}{}↑ {approx}{}↓ tok ",
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
        Paragraph::new(Line::from(vec![backend, state, tokens])).style(theme::status_bar()),
        area,
    );
}

fn state_text(app: &App, with_speaker: bool) -> (String, Style) {
    // Never "finished" while the session file is not written.
    if !app.is_running() && app.session.as_ref().is_some_and(|s| s.save_error.is_some()) {
        return (" ✗ not saved · F8 ".into(), theme::error());
    }
    match &app.run {
        RunState::Idle => (" idle ".into(), theme::dim()),
        RunState::Running {
            phase: Phase::Report,
            started,
            ..
        } => (
            format!(
                " ● writing the report · {}s ",
                app.now().saturating_duration_since(*started).as_secs()
            ),
            theme::good(),
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
                format!(
                    " ● follow-up{speaker} · {}s ",
                    app.now().saturating_duration_since(*started).as_secs()
                ),
                theme::good(),
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
            let seconds = app.now().saturating_duration_since(*started).as_secs();
            if app.paused {
                return (
                    format!(" ❚❚ paused · round {round}/{rounds}{speaker} · Ctrl-P resumes "),
                    theme::paused(),
                );
            }
            (
                format!(" ● debating · round {round}/{rounds}{speaker} · {seconds}s "),
                theme::good(),
            )
        }
        RunState::Completed => (" ✓ finished ".into(), theme::good()),
        RunState::Cancelled => (" cancelled ".into(), theme::warn()),
        RunState::Failed => (" ✗ stopped by an error ".into(), theme::error()),
        RunState::BudgetReached => (" ■ token budget reached ".into(), theme::warn()),
    }
}
