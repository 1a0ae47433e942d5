//! The feature editor (ratatui-textarea; its block shows focus).

use ratatui::Frame;
use ratatui::layout::Rect;

use crate::tui::app::App;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    frame.render_widget(&app.editor, area);
}
