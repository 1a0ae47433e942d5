//! The TUI's state and its synchronous update function: test it without a
//! terminal.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use ratatui::style::{Color, Style};
use ratatui::widgets::{Block, Borders, ListState};
use ratatui_textarea::{TextArea, WrapMode};

use super::action::{Action, Effect};
use super::panes::conversation::{ConversationView, Entry, EntryKind};
use super::theme;
use crate::llm::fetch::FetchProgress;
use crate::llm::{BackendInfo, HOW_TO_CONFIGURE, Usage};
use crate::persona::Persona;
use crate::persona::store::SaveNotice;
use crate::sim::debate::{DebateConfig, Outcome, SimEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Personas,
    Editor,
    Conversation,
}

impl Focus {
    fn next(self) -> Focus {
        match self {
            Focus::Personas => Focus::Editor,
            Focus::Editor => Focus::Conversation,
            Focus::Conversation => Focus::Personas,
        }
    }
    fn prev(self) -> Focus {
        match self {
            Focus::Personas => Focus::Conversation,
            Focus::Editor => Focus::Personas,
            Focus::Conversation => Focus::Editor,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Idle,
    Running {
        round: u32,
        rounds: u32,
        speaker: Option<String>,
        started: Instant,
    },
    Completed,
    Cancelled,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeLevel {
    Info,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub level: NoticeLevel,
    pub text: String,
}

/// The offer to install the local model, and the download's progress.
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

/// "1 round", "2 rounds".
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

pub struct App {
    pub personas: Vec<Persona>,
    pub list: ListState,
    pub selected: HashSet<u32>,
    pub editor: TextArea<'static>,
    pub conversation: ConversationView,
    pub focus: Focus,
    pub run: RunState,
    pub usage: Usage,
    pub backend: Option<BackendInfo>,
    pub notice: Option<Notice>,
    pub show_help: bool,
    /// Set while the local model is the backend and is not installed.
    pub missing_model: Option<PathBuf>,
    pub model_offer: Option<ModelOffer>,
    pub rounds: u32,
    pub max_tokens_per_turn: u32,
    pub should_quit: bool,
    /// Something visible changed since the last frame.
    pub dirty: bool,
    /// Conversation entry of each transcript turn of the running debate.
    turn_entries: Vec<usize>,
}

impl App {
    pub fn new(
        personas: Vec<Persona>,
        backend: Option<BackendInfo>,
        rounds: u32,
        max_tokens_per_turn: u32,
    ) -> Self {
        let mut editor = TextArea::default();
        editor.set_wrap_mode(WrapMode::WordOrGlyph);
        editor.set_placeholder_text("Describe the feature to debate…");
        editor.set_placeholder_style(theme::dim());
        editor.set_cursor_line_style(Style::new());
        let mut list = ListState::default();
        if !personas.is_empty() {
            list.select(Some(0));
        }
        let mut app = App {
            personas,
            list,
            selected: HashSet::new(),
            editor,
            conversation: ConversationView::new(),
            focus: Focus::Personas,
            run: RunState::Idle,
            usage: Usage::default(),
            backend,
            notice: None,
            show_help: false,
            missing_model: None,
            model_offer: None,
            rounds,
            max_tokens_per_turn,
            should_quit: false,
            dirty: true,
            turn_entries: Vec::new(),
        };
        if app.backend.is_none() {
            app.set_notice(
                NoticeLevel::Info,
                "No LLM backend configured: the debate needs OPENAI_API_KEY or OPENAI_BASE_URL (F1 for keys)",
            );
        }
        app.style_editor();
        app
    }

    /// The local model is the backend but not installed: offer to fetch it.
    pub fn offer_model(&mut self, path: PathBuf) {
        self.missing_model = Some(path.clone());
        self.model_offer = Some(ModelOffer {
            path,
            state: OfferState::Asking,
        });
        self.dirty = true;
    }

    pub fn on_fetch_progress(&mut self, progress: FetchProgress) {
        let Some(ModelOffer {
            state:
                OfferState::Fetching {
                    source,
                    done,
                    total,
                    verifying,
                },
            ..
        }) = &mut self.model_offer
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
        self.dirty = true;
    }

    pub fn on_fetch_done(&mut self, result: Result<PathBuf, String>) {
        self.dirty = true;
        match result {
            Ok(path) => {
                self.missing_model = None;
                self.model_offer = None;
                self.set_notice(
                    NoticeLevel::Info,
                    format!("Model installed at {}: press F5 to start", path.display()),
                );
            }
            Err(e) => {
                if let Some(offer) = &mut self.model_offer {
                    offer.state = OfferState::Failed(e);
                }
            }
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.run, RunState::Running { .. })
    }

    pub fn set_notice(&mut self, level: NoticeLevel, text: impl Into<String>) {
        self.notice = Some(Notice {
            level,
            text: text.into(),
        });
        self.dirty = true;
    }

    pub fn feature_text(&self) -> String {
        self.editor.lines().join("\n")
    }

    /// Selected personas in panel order.
    pub fn selected_personas(&self) -> Vec<Persona> {
        self.personas
            .iter()
            .filter(|p| self.selected.contains(&p.id))
            .cloned()
            .collect()
    }

    fn style_editor(&mut self) {
        let focused = self.focus == Focus::Editor;
        self.editor.set_block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme::border(focused))
                .title(" Feature "),
        );
        self.editor.set_cursor_style(if focused {
            Style::new().bg(Color::Gray).fg(Color::Black)
        } else {
            Style::new()
        });
    }

    pub fn update(&mut self, action: Action) -> Option<Effect> {
        self.dirty = true;
        match action {
            Action::Quit => {
                self.should_quit = true;
                return self.is_running().then_some(Effect::CancelDebate);
            }
            Action::FocusNext => self.set_focus(self.focus.next()),
            Action::FocusPrev => self.set_focus(self.focus.prev()),
            Action::ToggleHelp => self.show_help = !self.show_help,
            Action::Escape => {
                if self.show_help {
                    self.show_help = false;
                } else if self.is_running() {
                    return self.cancel();
                } else {
                    self.notice = None;
                }
            }
            Action::StartDebate => return self.start(),
            Action::ListUp => self.move_cursor(-1),
            Action::ListDown => self.move_cursor(1),
            Action::ListTop => self.list.select(self.personas.first().map(|_| 0)),
            Action::ListBottom => self.list.select(self.personas.len().checked_sub(1)),
            Action::ListToggle => {
                if let Some(p) = self.list.selected().and_then(|i| self.personas.get(i)) {
                    if !self.selected.remove(&p.id) {
                        self.selected.insert(p.id);
                    }
                }
            }
            Action::ListToggleAll => {
                if self.selected.len() == self.personas.len() {
                    self.selected.clear();
                } else {
                    self.selected = self.personas.iter().map(|p| p.id).collect();
                }
            }
            Action::ScrollUp(n) => self.conversation.scroll_up(n),
            Action::ScrollDown(n) => self.conversation.scroll_down(n),
            Action::PageUp => self.conversation.page_up(),
            Action::PageDown => self.conversation.page_down(),
            Action::ScrollTop => self.conversation.scroll_to_top(),
            Action::FollowTail => self.conversation.follow_tail(),
            Action::Edit(key) => {
                self.editor.input(key);
            }
            Action::Paste(text) => {
                self.set_focus(Focus::Editor);
                // Terminals send pasted newlines as \r.
                self.editor
                    .insert_str(text.replace("\r\n", "\n").replace('\r', "\n"));
            }
            Action::Redraw => {}
            Action::AcceptModelFetch => {
                if let Some(offer) = &mut self.model_offer {
                    offer.state = OfferState::Fetching {
                        source: String::new(),
                        done: 0,
                        total: None,
                        verifying: false,
                    };
                    return Some(Effect::FetchModel(offer.path.clone()));
                }
            }
            Action::DismissModelOffer => {
                let was_fetching = matches!(
                    self.model_offer,
                    Some(ModelOffer {
                        state: OfferState::Fetching { .. },
                        ..
                    })
                );
                self.model_offer = None;
                self.set_notice(
                    NoticeLevel::Info,
                    "No local model: run `persona-sim model fetch`, or set OPENAI_API_KEY; F5 offers the download again",
                );
                if was_fetching {
                    return Some(Effect::CancelFetch);
                }
            }
        }
        None
    }

    fn set_focus(&mut self, focus: Focus) {
        self.focus = focus;
        self.style_editor();
    }

    fn move_cursor(&mut self, delta: isize) {
        if self.personas.is_empty() {
            return;
        }
        let current = self.list.selected().unwrap_or(0) as isize;
        let next = (current + delta).clamp(0, self.personas.len() as isize - 1);
        self.list.select(Some(next as usize));
    }

    fn start(&mut self) -> Option<Effect> {
        if self.is_running() {
            self.set_notice(
                NoticeLevel::Info,
                "A debate is already running: Esc cancels it",
            );
            return None;
        }
        if let Some(path) = self.missing_model.clone() {
            self.offer_model(path);
            return None;
        }
        if self.backend.is_none() {
            let text =
                format!("Cannot start: no LLM backend is configured. To fix: {HOW_TO_CONFIGURE}.");
            self.conversation
                .push(Entry::new(EntryKind::Error, text.clone()));
            self.conversation.follow_tail();
            self.set_notice(
                NoticeLevel::Error,
                "No LLM backend configured: see the conversation pane",
            );
            return None;
        }
        let personas = self.selected_personas();
        if personas.is_empty() {
            self.set_notice(
                NoticeLevel::Error,
                "Select at least one persona first (Space in the persona list, a for all)",
            );
            self.set_focus(Focus::Personas);
            return None;
        }
        let feature = self.feature_text();
        if feature.trim().is_empty() {
            self.set_notice(
                NoticeLevel::Error,
                "Describe the feature in the editor first",
            );
            self.set_focus(Focus::Editor);
            return None;
        }
        let first_line = feature.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        self.conversation.push(Entry::new(
            EntryKind::Info,
            format!(
                "── Debate: {} · {} · {} ──",
                first_line.trim(),
                plural(personas.len(), "persona"),
                plural(self.rounds as usize, "round")
            ),
        ));
        self.conversation.follow_tail();
        self.turn_entries.clear();
        self.usage = Usage::default();
        self.notice = None;
        self.run = RunState::Running {
            round: 1,
            rounds: self.rounds,
            speaker: None,
            started: Instant::now(),
        };
        Some(Effect::StartDebate(DebateConfig {
            feature,
            personas,
            rounds: self.rounds,
            max_tokens_per_turn: self.max_tokens_per_turn,
        }))
    }

    fn cancel(&mut self) -> Option<Effect> {
        self.finish_streaming_entry(true);
        self.run = RunState::Cancelled;
        self.conversation.push(Entry::new(
            EntryKind::Info,
            "Debate cancelled. What was said stays above.",
        ));
        self.set_notice(NoticeLevel::Info, "Debate cancelled");
        Some(Effect::CancelDebate)
    }

    /// Marks the entry that was streaming as finished (or cut off).
    fn finish_streaming_entry(&mut self, cut: bool) {
        if let Some(&index) = self.turn_entries.last() {
            self.conversation.update_kind(index, |kind| {
                if let EntryKind::Turn {
                    streaming, cut: c, ..
                } = kind
                    && *streaming
                {
                    *streaming = false;
                    *c = cut;
                }
            });
        }
    }

    pub fn on_sim_event(&mut self, event: SimEvent) {
        self.dirty = true;
        match event {
            SimEvent::TurnStarted {
                turn,
                round,
                persona_id,
                speaker,
            } => {
                let subtitle = self
                    .personas
                    .iter()
                    .find(|p| p.id == persona_id)
                    .map(|p| p.occupation.clone())
                    .unwrap_or_default();
                let index = self.conversation.push(Entry::new(
                    EntryKind::Turn {
                        speaker: speaker.clone(),
                        subtitle,
                        round,
                        color: theme::speaker_color(persona_id),
                        streaming: true,
                        cut: false,
                    },
                    "",
                ));
                debug_assert_eq!(turn, self.turn_entries.len());
                self.turn_entries.push(index);
                if let RunState::Running {
                    round: r,
                    speaker: s,
                    ..
                } = &mut self.run
                {
                    *r = round;
                    *s = Some(speaker);
                }
            }
            SimEvent::Token { turn, text } => {
                if let Some(&index) = self.turn_entries.get(turn) {
                    self.conversation.append_text(index, &text);
                }
            }
            SimEvent::TurnEnded { .. } => self.finish_streaming_entry(false),
            SimEvent::Usage {
                prompt_tokens,
                completion_tokens,
                ..
            } => {
                self.usage += Usage {
                    prompt_tokens,
                    completion_tokens,
                }
            }
            SimEvent::Error { message, .. } => {
                self.finish_streaming_entry(true);
                self.conversation
                    .push(Entry::new(EntryKind::Error, format!("Error: {message}")));
                self.set_notice(NoticeLevel::Error, format!("Debate stopped: {message}"));
            }
            SimEvent::Done { outcome } => {
                self.run = match outcome {
                    Outcome::Completed => RunState::Completed,
                    Outcome::Failed => RunState::Failed,
                };
                if outcome == Outcome::Completed {
                    self.set_notice(NoticeLevel::Info, "Debate finished");
                }
            }
        }
    }

    pub fn on_save_notice(&mut self, notice: SaveNotice) {
        match notice {
            SaveNotice::Saved { .. } => {}
            SaveNotice::Blocked => self.set_notice(
                NoticeLevel::Error,
                "Not saved: the persona files were corrupt at start (see the first message)",
            ),
            SaveNotice::Failed(e) => {
                self.set_notice(NoticeLevel::Error, format!("Save failed: {e}"))
            }
        }
    }
}
