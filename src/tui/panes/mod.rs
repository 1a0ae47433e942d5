//! The panes; each renders a piece of [`super::app::App`].

pub mod conversation;
pub mod editor;
pub mod help;
pub mod history;
pub mod manage;
pub mod model_offer;
pub mod personas;
pub mod report;
pub mod status;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::Clear;

/// Clears and returns a `width`×`height` box centred in `area`, for overlays.
pub fn popup(frame: &mut Frame, area: Rect, width: u16, height: u16) -> Rect {
    let rect = Rect {
        x: area.x + area.width.saturating_sub(width) / 2,
        y: area.y + area.height.saturating_sub(height) / 2,
        width: width.min(area.width),
        height: height.min(area.height),
    };
    frame.render_widget(Clear, rect);
    rect
}
