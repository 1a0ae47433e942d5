//! Lays the panes out, then the open dialogs bottom to top (the same stack
//! that routes keys); rendering is a function of the app state.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::app::{App, Focus, Screen};
use super::panes::{editor, personas, report, stage, status};
use super::theme;

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

pub fn draw(frame: &mut Frame, app: &mut App) {
    let area = frame.area();
    app.too_small = area.width < MIN_WIDTH || area.height < MIN_HEIGHT;
    if app.too_small {
        draw_too_small(frame, area);
        return;
    }
    let [main, hints, status_line] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    if app.screen == Screen::Report {
        report::render(frame, main, app);
    } else if app.stage {
        stage::render(frame, main, app);
    } else {
        draw_debate(frame, main, app);
    }
    status::render_hints(frame, hints, app);
    status::render_status(frame, status_line, app);
    for overlay in app.overlays() {
        overlay.view().draw(frame, area, app);
    }
}

fn draw_debate(frame: &mut Frame, main: Rect, app: &mut App) {
    let area = main;
    let left_width = (area.width * 2 / 5).clamp(34, 56);
    let [left, right] =
        Layout::horizontal([Constraint::Length(left_width), Constraint::Min(0)]).areas(main);
    let editor_height = (left.height / 3).clamp(6, 14);
    let [list_area, editor_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(editor_height)]).areas(left);

    personas::render(frame, list_area, app);
    editor::render(frame, editor_area, app);
    let focused = app.focus == Focus::Conversation;
    app.conversation.render(right, frame.buffer_mut(), focused);
}

fn draw_too_small(frame: &mut Frame, area: Rect) {
    let text = vec![
        Line::styled("Terminal too small", theme::error()),
        Line::raw(format!(
            "{}×{} — persona-sim needs at least {MIN_WIDTH}×{MIN_HEIGHT}.",
            area.width, area.height
        )),
        Line::raw(
            "Enlarge the window; nothing is lost. Until then keys do nothing, \
but q or Ctrl-C quits (a running debate is saved as cancelled).",
        ),
    ];
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}
