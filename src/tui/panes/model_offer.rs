//! The offer to download the local model, then the download's progress.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Gauge, Paragraph, Wrap};

use crate::llm::fetch::{DEFAULT_MODEL_BYTES, DEFAULT_MODEL_NAME};
use crate::tui::app::{ModelOffer, OfferState};
use crate::tui::theme;

pub fn render(frame: &mut Frame, area: Rect, offer: &ModelOffer) {
    let width = area.width.saturating_sub(6).min(76);
    let height = 12.min(area.height.saturating_sub(2));
    let popup = super::popup(frame, area, width, height);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::key())
        .title(" Offline model ");
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let [text_area, gauge_area, keys_area] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    let (text, keys) = match &offer.state {
        OfferState::Asking => (
            vec![
                Line::raw(format!(
                    "No API key is set, so persona-sim runs on a small embedded model, {DEFAULT_MODEL_NAME} ({} MB). It is not installed yet.",
                    DEFAULT_MODEL_BYTES / 1_000_000
                )),
                Line::raw(""),
                Line::raw(format!("Download it to {}?", offer.path.display())),
                Line::styled(
                    "Or set OPENAI_API_KEY / OPENAI_BASE_URL and restart.",
                    theme::dim(),
                ),
            ],
            "Enter/y download · Esc/n not now",
        ),
        OfferState::Fetching {
            source, verifying, ..
        } => (
            vec![
                Line::raw(if *verifying {
                    "Verifying SHA-256…".to_string()
                } else {
                    "Downloading…".to_string()
                }),
                Line::styled(format!("from {source}"), theme::dim()),
            ],
            "Esc cancel",
        ),
        OfferState::Failed(error) => (
            vec![
                Line::styled(
                    "The download failed; nothing was installed.",
                    theme::error(),
                ),
                Line::raw(error.clone()),
            ],
            "Enter/Esc close",
        ),
    };
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), text_area);
    if let OfferState::Fetching { done, total, .. } = &offer.state {
        let total = total.unwrap_or(DEFAULT_MODEL_BYTES).max(1);
        let ratio = (*done as f64 / total as f64).clamp(0.0, 1.0);
        frame.render_widget(
            Gauge::default()
                .gauge_style(Style::new().fg(Color::Cyan))
                .ratio(ratio)
                .label(format!(
                    "{:.1} / {:.1} MB",
                    *done as f64 / 1e6,
                    total as f64 / 1e6
                )),
            gauge_area,
        );
    }
    frame.render_widget(Line::from(Span::styled(keys, theme::key())), keys_area);
}
