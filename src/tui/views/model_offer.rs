//! The offer to download the local model, then the download's progress
//! (shown at start, or on F5, when the local model is the backend and is
//! not installed).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Gauge, Paragraph, Wrap};

use std::path::PathBuf;

use crossterm::event::KeyCode;

use super::{Overlay, View, popup};
use crate::llm::fetch::{DEFAULT_MODEL_BYTES, DEFAULT_MODEL_NAME, FetchProgress};
use crate::tui::action::{Action, Effect};
use crate::tui::app::{App, NoticeLevel};
use crate::tui::keymap::{Binding, ch, hinted, key};
use crate::tui::theme;

#[derive(Debug, Clone, PartialEq)]
pub struct ModelOffer {
    pub path: PathBuf,
    pub state: OfferState,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OfferState {
    Asking,
    Fetching {
        source: String,
        done: u64,
        total: Option<u64>,
        verifying: bool,
    },
    Failed(String),
}

pub static ASKING: &[Binding] = &[
    hinted(
        &[key(KeyCode::Enter), ch('y')],
        "Enter y",
        "download the offline model",
        ("Enter/y", "download"),
        Action::AcceptModelFetch,
    ),
    hinted(
        &[key(KeyCode::Esc), ch('n')],
        "Esc n",
        "not now (F5 offers it again)",
        ("Esc/n", "not now"),
        Action::DismissModelOffer,
    ),
];

static FETCHING: &[Binding] = &[hinted(
    &[key(KeyCode::Esc)],
    "Esc",
    "cancel the download",
    ("Esc", "cancel"),
    Action::DismissModelOffer,
)];

static FAILED: &[Binding] = &[hinted(
    &[key(KeyCode::Esc), key(KeyCode::Enter)],
    "Esc Enter",
    "close",
    ("Enter/Esc", "close"),
    Action::DismissModelOffer,
)];

impl View for ModelOffer {
    fn bindings(&self) -> &'static [Binding] {
        match self.state {
            OfferState::Asking => ASKING,
            OfferState::Fetching { .. } => FETCHING,
            OfferState::Failed(_) => FAILED,
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect, _app: &App) {
        draw_offer(frame, area, self);
    }
}

impl App {
    /// The local model is the backend but not installed: offer to fetch it.
    pub fn offer_model(&mut self, path: PathBuf) {
        self.missing_model = Some(path.clone());
        self.open(Overlay::ModelOffer(ModelOffer {
            path,
            state: OfferState::Asking,
        }));
    }

    fn model_offer_mut(&mut self) -> Option<&mut ModelOffer> {
        self.overlays.iter_mut().find_map(|o| match o {
            Overlay::ModelOffer(m) => Some(m),
            _ => None,
        })
    }

    pub(crate) fn accept_model_fetch(&mut self) -> Option<Effect> {
        let offer = self.model_offer_mut()?;
        offer.state = OfferState::Fetching {
            source: String::new(),
            done: 0,
            total: None,
            verifying: false,
        };
        Some(Effect::FetchModel(offer.path.clone()))
    }

    pub(crate) fn dismiss_model_offer(&mut self) -> Option<Effect> {
        let was_fetching = matches!(
            self.model_offer_mut(),
            Some(ModelOffer {
                state: OfferState::Fetching { .. },
                ..
            })
        );
        self.overlays
            .retain(|o| !matches!(o, Overlay::ModelOffer(_)));
        self.set_notice(
            NoticeLevel::Info,
            "No local model: run `persona-sim model fetch`, or set OPENAI_API_KEY; F5 offers the download again",
        );
        was_fetching.then_some(Effect::CancelFetch)
    }

    pub fn on_fetch_progress(&mut self, progress: FetchProgress) {
        self.dirty = true;
        let Some(ModelOffer {
            state:
                OfferState::Fetching {
                    source,
                    done,
                    total,
                    verifying,
                },
            ..
        }) = self.model_offer_mut()
        else {
            return;
        };
        match progress {
            FetchProgress::Source(s) => {
                *source = s;
                *done = 0;
                *total = None;
            }
            FetchProgress::Bytes { done: d, total: t } => {
                *done = d;
                *total = t;
            }
            FetchProgress::Verifying => *verifying = true,
        }
    }

    pub fn on_fetch_done(&mut self, result: Result<PathBuf, String>) {
        self.dirty = true;
        match result {
            Ok(path) => {
                self.missing_model = None;
                self.overlays
                    .retain(|o| !matches!(o, Overlay::ModelOffer(_)));
                self.set_notice(
                    NoticeLevel::Info,
                    format!("Model installed at {}: press F5 to start", path.display()),
                );
            }
            Err(e) => {
                if let Some(offer) = self.model_offer_mut() {
                    offer.state = OfferState::Failed(e);
                }
            }
        }
    }
}

fn draw_offer(frame: &mut Frame, area: Rect, offer: &ModelOffer) {
    let width = area.width.saturating_sub(6).min(76);
    let height = 12.min(area.height.saturating_sub(2));
    let popup = popup(frame, area, width, height);
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
            super::hint_text(ASKING),
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
            super::hint_text(FETCHING),
        ),
        OfferState::Failed(error) => (
            vec![
                Line::styled(
                    "The download failed; nothing was installed.",
                    theme::error(),
                ),
                Line::raw(error.clone()),
            ],
            super::hint_text(FAILED),
        ),
    };
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), text_area);
    if let OfferState::Fetching { done, total, .. } = &offer.state {
        let total = total.unwrap_or(DEFAULT_MODEL_BYTES).max(1);
        let ratio = (*done as f64 / total as f64).clamp(0.0, 1.0);
        frame.render_widget(
            Gauge::default()
                .gauge_style(theme::gauge())
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
