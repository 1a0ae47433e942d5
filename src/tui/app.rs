//! The TUI's state and its synchronous update function: test it without a
//! terminal.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use ratatui::style::{Color, Style};
use ratatui::widgets::{Block, Borders, ListState};
use ratatui_textarea::{TextArea, WrapMode};

use super::action::{Action, Effect, JobDone};
use super::panes::conversation::{ConversationView, Entry, EntryKind};
use super::persona_list::PanelUi;
use super::theme;
use super::views::Overlay;
use super::views::export_menu::ExportMenu;
use super::views::help::Help;
use super::views::history::History;
use crate::llm::{BackendInfo, Usage};
use crate::persona::Persona;
use crate::persona::autosave::SaveNotice;
use crate::services::HOW_TO_CONFIGURE;
use crate::sim::debate::{DebateConfig, Outcome, SimEvent};
use crate::sim::report::{Report, evidence, turn_list};
use crate::sim::session::{Session, SessionStatus};
use crate::text::truncate;

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

/// What a running task is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Debate,
    Report,
    FollowUp,
}

/// Which screen fills the main area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Debate,
    Report,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Idle,
    Running {
        phase: Phase,
        round: u32,
        rounds: u32,
        speaker: Option<String>,
        started: Instant,
    },
    Completed,
    Cancelled,
    Failed,
    /// Stopped at `--max-tokens-total`.
    BudgetReached,
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

pub(crate) fn new_editor() -> TextArea<'static> {
    let mut editor = TextArea::default();
    editor.set_wrap_mode(WrapMode::WordOrGlyph);
    editor.set_placeholder_text("Describe the feature to debate…");
    editor.set_placeholder_style(theme::dim());
    editor.set_cursor_line_style(Style::new());
    editor
}

/// "1 round", "2 rounds".
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Fields are `pub(crate)`: the views (one file per dialog) change them;
/// tests and other crates read them through the accessors below.
pub struct App {
    pub(crate) personas: Vec<Persona>,
    pub(crate) list: ListState,
    pub(crate) selected: HashSet<u32>,
    pub(crate) editor: TextArea<'static>,
    pub(crate) conversation: ConversationView,
    pub(crate) focus: Focus,
    pub(crate) run: RunState,
    pub(crate) usage: Usage,
    pub(crate) backend: Option<BackendInfo>,
    pub(crate) notice: Option<Notice>,
    /// Open dialogs, bottom first: the last one takes the keys and is
    /// drawn on top.
    pub(crate) overlays: Vec<Overlay>,
    /// Set while the local model is the backend and is not installed.
    pub(crate) missing_model: Option<PathBuf>,
    pub(crate) rounds: u32,
    pub(crate) max_tokens_per_turn: u32,
    pub(crate) max_tokens_total: Option<u32>,
    pub(crate) should_quit: bool,
    /// Something visible changed since the last frame.
    pub(crate) dirty: bool,
    /// The time as the loop last saw it: counters are drawn from this, not
    /// from the clock, so a frame is a function of the state.
    pub(crate) now: Instant,
    /// Conversation entry of each transcript turn of the running debate.
    turn_entries: Vec<usize>,
    /// The session on screen (running, finished or opened from history),
    /// kept in step with the runner's copy by the same events.
    pub(crate) session: Option<Session>,
    pub(crate) screen: Screen,
    /// The report's text as it streams in.
    pub(crate) report_draft: String,
    /// Selected concern, request or insight on the report screen (or the
    /// scroll offset of a plain-text report).
    pub(crate) report_selected: usize,
    pub(crate) panel: PanelUi,
    /// Personas created since the loop last counted them (metrics).
    pub(crate) created: usize,
}

/// A concern, request or insight on the report screen, with its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportItem {
    pub section: &'static str,
    pub text: String,
    pub detail: String,
    pub turns: Vec<usize>,
}

/// The report's selectable items: insights first (they are the point),
/// then concerns, then requests.
pub fn report_items(report: &Report) -> Vec<ReportItem> {
    let mut items = Vec::new();
    for (n, i) in report.insights.iter().enumerate() {
        let mut detail = Vec::new();
        if let Some(why) = &i.why {
            detail.push(format!("why: {why}"));
        }
        if let Some(helps) = &i.helps {
            detail.push(format!("helps: {helps}"));
        }
        if !i.turns.is_empty() {
            detail.push(turn_list(&i.turns));
        }
        items.push(ReportItem {
            section: "insight",
            text: format!("{}. {}", n + 1, i.change),
            detail: detail.join(" · "),
            turns: i.turns.clone(),
        });
    }
    for (section, points) in [("concern", &report.concerns), ("request", &report.requests)] {
        for p in points {
            items.push(ReportItem {
                section,
                text: p.text.clone(),
                detail: evidence(p.count, &p.personas, &p.turns),
                turns: p.turns.clone(),
            });
        }
    }
    items
}

impl App {
    pub fn new(
        personas: Vec<Persona>,
        backend: Option<BackendInfo>,
        rounds: u32,
        max_tokens_per_turn: u32,
    ) -> Self {
        let editor = new_editor();
        let count = personas.len();
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
            overlays: Vec::new(),
            missing_model: None,
            rounds,
            max_tokens_per_turn,
            max_tokens_total: None,
            should_quit: false,
            dirty: true,
            now: Instant::now(),
            turn_entries: Vec::new(),
            session: None,
            screen: Screen::Debate,
            report_draft: String::new(),
            report_selected: 0,
            panel: PanelUi::new(count),
            created: 0,
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

    pub fn is_running(&self) -> bool {
        matches!(self.run, RunState::Running { .. })
    }

    /// Opens a dialog on top of the others.
    pub(crate) fn open(&mut self, overlay: Overlay) {
        self.overlays.push(overlay);
        self.dirty = true;
    }

    /// Open dialogs, bottom first.
    pub fn overlays(&self) -> &[Overlay] {
        &self.overlays
    }

    /// The loop tells the app the time before each update and frame.
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    /// When the screen next changes by itself (an elapsed-seconds counter),
    /// so the loop redraws then; `None` on a screen that only changes on
    /// input.
    pub fn redraw_deadline(&self) -> Option<Instant> {
        let status = match &self.run {
            RunState::Running { started, .. } => {
                Some(super::views::next_second(*started, self.now))
            }
            _ => None,
        };
        self.overlays
            .iter()
            .filter_map(|o| o.view().redraw_at(self.now))
            .chain(status)
            .min()
    }

    pub fn focus(&self) -> Focus {
        self.focus
    }

    pub fn screen(&self) -> Screen {
        self.screen
    }

    pub fn run_state(&self) -> &RunState {
        &self.run
    }

    pub fn notice(&self) -> Option<&Notice> {
        self.notice.as_ref()
    }

    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    pub fn personas(&self) -> &[Persona] {
        &self.personas
    }

    /// Ids of the selected personas.
    pub fn selected(&self) -> &HashSet<u32> {
        &self.selected
    }

    pub fn should_quit(&self) -> bool {
        self.should_quit
    }

    pub fn conversation(&self) -> &ConversationView {
        &self.conversation
    }

    pub fn usage(&self) -> Usage {
        self.usage
    }

    pub fn backend(&self) -> Option<&BackendInfo> {
        self.backend.as_ref()
    }

    /// Selected item on the report screen (or scroll line of a plain one).
    pub fn report_selected(&self) -> usize {
        self.report_selected
    }

    /// Rows of the persona list: indices into `personas()` (the filter's
    /// matches).
    pub fn visible_rows(&self) -> &[usize] {
        &self.panel.visible
    }

    /// The filter text, when a filter is on.
    pub fn filter_text(&self) -> Option<&str> {
        self.panel.filter.as_ref().map(|f| f.text.as_str())
    }

    /// Takes the count of personas created since the last call (metrics).
    pub fn take_created(&mut self) -> usize {
        std::mem::take(&mut self.created)
    }

    pub fn set_max_tokens_total(&mut self, total: Option<u32>) {
        self.max_tokens_total = total;
    }

    /// The feature editor's lines.
    pub fn editor_lines(&self) -> &[String] {
        self.editor.lines()
    }

    /// Empties the feature editor.
    pub fn clear_feature(&mut self) {
        self.editor = new_editor();
        self.style_editor();
        self.dirty = true;
    }

    /// Replaces the persona selection (ids not in the panel are kept out).
    pub fn set_selection(&mut self, ids: &[u32]) {
        self.selected = ids
            .iter()
            .copied()
            .filter(|id| self.personas.iter().any(|p| p.id == *id))
            .collect();
        self.dirty = true;
    }

    /// The row under the cursor in the persona list.
    pub fn list_cursor(&self) -> Option<usize> {
        self.list.selected()
    }

    pub fn help_open(&self) -> bool {
        self.overlays.iter().any(|o| matches!(o, Overlay::Help(_)))
    }

    pub fn export_menu_open(&self) -> bool {
        self.overlays
            .iter()
            .any(|o| matches!(o, Overlay::ExportMenu(_)))
    }

    pub fn stats_open(&self) -> bool {
        self.overlays.iter().any(|o| matches!(o, Overlay::Stats(_)))
    }

    /// Personas created since the loop last counted them.
    pub fn created_count(&self) -> usize {
        self.created
    }

    /// Whether the screen changed since the last frame.
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// Clears the changed flag after a frame; returns what it was.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn mark_dirty(&mut self) {
        self.dirty = true;
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
            Action::ToggleHelp => {
                if matches!(self.overlays.last(), Some(Overlay::Help(_))) {
                    self.overlays.pop();
                } else {
                    self.overlays.retain(|o| !matches!(o, Overlay::Help(_)));
                    self.open(Overlay::Help(Help::default()));
                }
            }
            Action::HelpScroll(delta) => {
                let total = super::views::help::lines(80).len();
                if let Some(Overlay::Help(help)) = self.overlays.last_mut() {
                    help.scroll = help
                        .scroll
                        .saturating_add_signed(delta as isize)
                        .min(total.saturating_sub(1));
                }
            }
            Action::CloseOverlay => {
                self.overlays.pop();
            }
            Action::Escape => {
                if self.focus == Focus::Personas && self.panel.filter.is_some() {
                    return self.on_panel(super::action::PanelAction::FilterClear);
                } else if self.is_running() {
                    return self.cancel();
                } else if self.screen == Screen::Report {
                    self.screen = Screen::Debate;
                } else {
                    self.notice = None;
                }
            }
            Action::ToggleReport => {
                self.screen = match self.screen {
                    Screen::Debate => Screen::Report,
                    Screen::Report => Screen::Debate,
                };
            }
            Action::WriteReport => return self.write_report(),
            Action::FollowUp => return self.follow_up(),
            Action::ExportMenu => match &self.session {
                Some(_) => self.open(Overlay::ExportMenu(ExportMenu)),
                None => self.set_notice(
                    NoticeLevel::Error,
                    "Nothing to export yet: run a debate or open one from the history (F2)",
                ),
            },
            Action::Export(format) => {
                self.overlays
                    .retain(|o| !matches!(o, Overlay::ExportMenu(_)));
                if let Some(session) = &self.session {
                    return Some(Effect::Export(Box::new(session.clone()), format));
                }
            }
            Action::ReportUp => self.report_selected = self.report_selected.saturating_sub(1),
            Action::ReportDown => {
                let last = self.report_item_count().saturating_sub(1);
                self.report_selected = (self.report_selected + 1).min(last);
            }
            Action::ReportJump => self.jump_to_evidence(),
            Action::OpenHistory => {
                self.open(Overlay::History(History::default()));
                return Some(Effect::LoadHistory);
            }
            Action::History(action) => return self.on_history(action),
            Action::Panel(action) => return self.on_panel(action),
            Action::StartDebate => return self.start(),
            Action::ListUp => self.move_cursor(-1),
            Action::ListDown => self.move_cursor(1),
            Action::ListTop => self.list.select(self.panel.visible.first().map(|_| 0)),
            Action::ListBottom => self.list.select(self.panel.visible.len().checked_sub(1)),
            Action::ListToggle => {
                if let Some(id) = self.cursor_persona().map(|p| p.id)
                    && !self.selected.remove(&id)
                {
                    self.selected.insert(id);
                }
            }
            Action::ListToggleAll => {
                // All the visible ones (the filter's matches), or none of them.
                let visible: Vec<u32> = self
                    .panel
                    .visible
                    .iter()
                    .map(|&i| self.personas[i].id)
                    .collect();
                if visible.iter().all(|id| self.selected.contains(id)) {
                    for id in &visible {
                        self.selected.remove(id);
                    }
                } else {
                    self.selected.extend(visible);
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
            Action::AcceptModelFetch => return self.accept_model_fetch(),
            Action::DismissModelOffer => return self.dismiss_model_offer(),
        }
        None
    }

    pub(crate) fn set_focus(&mut self, focus: Focus) {
        self.focus = focus;
        self.style_editor();
    }

    fn move_cursor(&mut self, delta: isize) {
        if self.panel.visible.is_empty() {
            return;
        }
        let current = self.list.selected().unwrap_or(0) as isize;
        let next = (current + delta).clamp(0, self.panel.visible.len() as isize - 1);
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
            phase: Phase::Debate,
            round: 1,
            rounds: self.rounds,
            speaker: None,
            started: self.now,
        };
        self.session = None;
        self.report_draft.clear();
        self.report_selected = 0;
        self.screen = Screen::Debate;
        Some(Effect::StartDebate(DebateConfig {
            feature,
            personas,
            rounds: self.rounds,
            max_tokens_per_turn: self.max_tokens_per_turn,
            max_tokens_total: self.max_tokens_total,
        }))
    }

    fn cancel(&mut self) -> Option<Effect> {
        let phase = match self.run {
            RunState::Running { phase, .. } => phase,
            _ => Phase::Debate,
        };
        self.finish_streaming_entry(true);
        let (entry, notice) = match phase {
            Phase::Debate => (
                "Debate cancelled. What was said stays above.",
                "Debate cancelled",
            ),
            Phase::Report => ("Report cancelled. F7 writes it again.", "Report cancelled"),
            Phase::FollowUp => ("Follow-up cancelled.", "Follow-up cancelled"),
        };
        self.run = match phase {
            Phase::Debate => RunState::Cancelled,
            _ => self.settled_state(),
        };
        self.conversation.push(Entry::new(EntryKind::Info, entry));
        self.set_notice(NoticeLevel::Info, notice);
        Some(Effect::CancelDebate)
    }

    /// How the session on screen ended, for the status bar after a report
    /// or a follow-up.
    fn settled_state(&self) -> RunState {
        match self.session.as_ref().map(|s| s.status) {
            Some(SessionStatus::Failed) => RunState::Failed,
            Some(SessionStatus::Cancelled) => RunState::Cancelled,
            Some(SessionStatus::BudgetReached) => RunState::BudgetReached,
            _ => RunState::Completed,
        }
    }

    /// The runner has created the session for the debate just started.
    pub fn begin_session(&mut self, session: Session) {
        self.session = Some(session);
    }

    fn running(&mut self, phase: Phase) {
        self.run = RunState::Running {
            phase,
            round: 0,
            rounds: self.rounds,
            speaker: None,
            started: self.now,
        };
    }

    /// The session on screen, when the LLM may work on it now; otherwise
    /// says why not.
    fn idle_session(&mut self, no_session: &str) -> Option<Session> {
        if self.is_running() {
            self.set_notice(
                NoticeLevel::Info,
                "Wait for the run to finish (Esc cancels it)",
            );
            return None;
        }
        if self.backend.is_none() || self.missing_model.is_some() {
            self.set_notice(NoticeLevel::Error, "No LLM backend is ready");
            return None;
        }
        if self.session.is_none() {
            self.set_notice(NoticeLevel::Error, no_session.to_string());
        }
        self.session.clone()
    }

    fn write_report(&mut self) -> Option<Effect> {
        let session = self.idle_session("Run a debate first (or open one with F2)")?;
        if session.turns.iter().all(|t| t.text.trim().is_empty()) {
            self.set_notice(
                NoticeLevel::Error,
                "Nobody has spoken yet: nothing to report on",
            );
            return None;
        }
        self.running(Phase::Report);
        Some(Effect::WriteReport(Box::new(session)))
    }

    fn follow_up(&mut self) -> Option<Effect> {
        let session =
            self.idle_session("Follow-ups continue a debate: run one first (or open one with F2)")?;
        let question = self.feature_text().trim().to_string();
        if question.is_empty() {
            self.set_notice(
                NoticeLevel::Error,
                "Type the follow-up question in the editor, then F6",
            );
            self.set_focus(Focus::Editor);
            return None;
        }
        let took_part = |id: &u32| session.personas.iter().any(|p| p.id == *id);
        let mut ids: Vec<u32> = session
            .personas
            .iter()
            .map(|p| p.id)
            .filter(|id| self.selected.contains(id))
            .collect();
        if ids.is_empty()
            && let Some(p) = self.cursor_persona()
            && took_part(&p.id)
        {
            ids.push(p.id);
        }
        if ids.is_empty() {
            self.set_notice(
                NoticeLevel::Error,
                "Select who to ask (Space): personas who took part in this debate",
            );
            self.set_focus(Focus::Personas);
            return None;
        }
        let session = Box::new(session);
        let names: Vec<&str> = session
            .personas
            .iter()
            .filter(|p| ids.contains(&p.id))
            .map(|p| p.name.as_str())
            .collect();
        self.conversation.push(Entry::new(
            EntryKind::Info,
            format!("── Follow-up to {}: {} ──", names.join(", "), question),
        ));
        self.conversation.follow_tail();
        self.screen = Screen::Debate;
        self.editor = new_editor();
        self.style_editor();
        self.running(Phase::FollowUp);
        Some(Effect::FollowUp {
            session,
            question,
            persona_ids: ids,
        })
    }

    fn report_item_count(&self) -> usize {
        match self.session.as_ref().and_then(|s| s.report.as_ref()) {
            // A plain-text report scrolls by line, to its last line.
            Some(report) if report.text.is_some() => {
                report.text.as_deref().map_or(0, |t| t.lines().count())
            }
            Some(report) => report_items(report).len(),
            None => 0,
        }
    }

    /// Shows the first turn the selected report item cites.
    fn jump_to_evidence(&mut self) {
        let Some(report) = self.session.as_ref().and_then(|s| s.report.as_ref()) else {
            return;
        };
        let Some(item) = report_items(report).into_iter().nth(self.report_selected) else {
            return;
        };
        let Some(&turn) = item.turns.first() else {
            self.set_notice(NoticeLevel::Info, "This item cites no turns");
            return;
        };
        // Turns are numbered from 1; a hand-edited file may say 0.
        let Some(&entry) = turn.checked_sub(1).and_then(|i| self.turn_entries.get(i)) else {
            self.set_notice(NoticeLevel::Error, format!("Turn T{turn} is not on screen"));
            return;
        };
        self.conversation.jump_to(entry);
        self.screen = Screen::Debate;
        self.set_focus(Focus::Conversation);
        self.set_notice(
            NoticeLevel::Info,
            format!(
                "{} ({}): showing {}; F3 back to the report",
                item.section,
                truncate(&item.text, 40),
                turn_list(&item.turns)
            ),
        );
    }

    /// Shows a saved session in the debate screen, as if it just ran.
    pub fn open_session(&mut self, session: Session) {
        self.conversation.clear();
        self.turn_entries.clear();
        self.conversation.push(Entry::new(
            EntryKind::Info,
            format!(
                "── Session {} · {} · {} · {} ──",
                session.id,
                session.first_line(),
                plural(session.personas.len(), "persona"),
                session.status_label()
            ),
        ));
        for turn in &session.turns {
            let index = self.conversation.push(Entry::new(
                EntryKind::Turn {
                    speaker: turn.speaker.clone(),
                    subtitle: self.subtitle(&session, turn.persona_id, turn.question.as_deref()),
                    round: turn.round,
                    color: theme::speaker_color(turn.persona_id),
                    streaming: false,
                    cut: !turn.complete,
                    tokens: turn.usage,
                },
                turn.text.clone(),
            ));
            self.turn_entries.push(index);
        }
        if let Some(error) = &session.error {
            self.conversation
                .push(Entry::new(EntryKind::Error, format!("Error: {error}")));
        }
        self.conversation.scroll_to_top();
        self.editor = new_editor();
        self.editor.insert_str(&session.feature);
        self.style_editor();
        self.selected = session
            .personas
            .iter()
            .map(|p| p.id)
            .filter(|id| self.personas.iter().any(|p| p.id == *id))
            .collect();
        self.usage = session.usage;
        self.report_draft.clear();
        self.report_selected = 0;
        self.session = Some(session);
        self.run = self.settled_state();
        self.screen = Screen::Debate;
    }

    fn subtitle(&self, session: &Session, persona_id: u32, question: Option<&str>) -> String {
        if let Some(q) = question {
            return format!("asked: {q}");
        }
        session
            .personas
            .iter()
            .chain(&self.personas)
            .find(|p| p.id == persona_id)
            .map(|p| p.occupation.clone())
            .unwrap_or_default()
    }

    /// A background job finished.
    pub fn on_loaded(&mut self, loaded: JobDone) {
        self.dirty = true;
        match loaded {
            JobDone::History { sessions, errors } => {
                if let Some(history) = self.history_mut() {
                    history.sessions = Some(sessions);
                    history.errors = errors;
                    if history.list.selected().is_none() {
                        history.list.select(Some(0));
                    }
                    history.clamp();
                }
            }
            JobDone::Exported(Ok(path)) => {
                self.set_notice(NoticeLevel::Info, format!("Exported to {}", path.display()))
            }
            JobDone::Exported(Err(e)) => {
                self.set_notice(NoticeLevel::Error, format!("Export failed: {e}"))
            }
            JobDone::Deleted(Ok(id)) => {
                if let Some(history) = self.history_mut()
                    && let Some(sessions) = &mut history.sessions
                {
                    sessions.retain(|s| s.id != id);
                    history.clamp();
                }
                if self.session.as_ref().is_some_and(|s| s.id == id) && !self.is_running() {
                    self.session = None;
                }
                self.set_notice(NoticeLevel::Info, format!("Deleted session {id}"));
            }
            JobDone::Deleted(Err(e)) => {
                self.set_notice(NoticeLevel::Error, format!("Delete failed: {e}"))
            }
            JobDone::Synthesized(result) => self.on_synthesized(result),
            JobDone::SynthProgress(event) => self.on_synth_event(event),
            JobDone::BatchDone(result) => self.on_batch_done(result),
            JobDone::BackedUp(Ok(path)) => self.set_notice(
                NoticeLevel::Info,
                format!("Backed up to {}", path.display()),
            ),
            JobDone::BackedUp(Err(e)) => {
                self.set_notice(NoticeLevel::Error, format!("Backup failed: {e}"))
            }
        }
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
        if let Some(session) = &mut self.session {
            session.apply(&event);
        }
        // Report tokens change only the report screen.
        self.dirty |=
            !matches!(event, SimEvent::ReportToken { .. }) || self.screen == Screen::Report;
        match event {
            SimEvent::TurnStarted {
                turn,
                round,
                persona_id,
                speaker,
                question,
            } => {
                let subtitle = match &question {
                    Some(q) => format!("asked: {q}"),
                    None => self
                        .personas
                        .iter()
                        .find(|p| p.id == persona_id)
                        .map(|p| p.occupation.clone())
                        .unwrap_or_default(),
                };
                let index = self.conversation.push(Entry::new(
                    EntryKind::Turn {
                        speaker: speaker.clone(),
                        subtitle,
                        round,
                        color: theme::speaker_color(persona_id),
                        streaming: true,
                        cut: false,
                        tokens: None,
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
                turn,
                prompt_tokens,
                completion_tokens,
            } => {
                let usage = Usage {
                    prompt_tokens,
                    completion_tokens,
                };
                self.usage += usage;
                if let Some(&index) = self.turn_entries.get(turn) {
                    self.conversation.update_kind(index, |kind| {
                        if let EntryKind::Turn { tokens, .. } = kind {
                            *tokens.get_or_insert_default() += usage;
                        }
                    });
                }
            }
            SimEvent::Error { message, .. } => {
                self.finish_streaming_entry(true);
                self.conversation
                    .push(Entry::new(EntryKind::Error, format!("Error: {message}")));
                self.set_notice(NoticeLevel::Error, format!("Debate stopped: {message}"));
            }
            SimEvent::Done { outcome } => {
                let phase = match self.run {
                    RunState::Running { phase, .. } => phase,
                    _ => Phase::Debate,
                };
                self.run = match (phase, outcome) {
                    (Phase::FollowUp, _) => self.settled_state(),
                    (_, Outcome::Completed) => RunState::Completed,
                    (_, Outcome::Failed) => RunState::Failed,
                    (_, Outcome::Cancelled) => RunState::Cancelled,
                    (_, Outcome::BudgetReached) => RunState::BudgetReached,
                };
                match (phase, outcome) {
                    (Phase::FollowUp, Outcome::Completed) => self.set_notice(
                        NoticeLevel::Info,
                        "Follow-up answered: saved with the session",
                    ),
                    (_, Outcome::Completed) => {
                        self.set_notice(NoticeLevel::Info, "Debate finished")
                    }
                    (_, Outcome::BudgetReached) => {
                        self.finish_streaming_entry(true);
                        self.conversation.push(Entry::new(
                            EntryKind::Info,
                            "Token budget reached (--max-tokens-total): the debate stopped here.",
                        ));
                        self.set_notice(
                            NoticeLevel::Info,
                            "Token budget reached: the debate stopped",
                        )
                    }
                    _ => {}
                }
            }
            SimEvent::ReportStarted => {
                self.running(Phase::Report);
                self.report_draft.clear();
                self.report_selected = 0;
                self.conversation.push(Entry::new(
                    EntryKind::Info,
                    "Writing the feedback report… (F3 to watch)",
                ));
                self.set_notice(
                    NoticeLevel::Info,
                    "Writing the feedback report: F3 to watch",
                );
            }
            SimEvent::ReportToken { text } => self.report_draft.push_str(&text),
            SimEvent::ReportUsage {
                prompt_tokens,
                completion_tokens,
            } => {
                self.usage += Usage {
                    prompt_tokens,
                    completion_tokens,
                }
            }
            SimEvent::ReportReady { report } => {
                self.run = self.settled_state();
                let notes = if report.notes.is_empty() {
                    String::new()
                } else {
                    format!(" ({} note(s))", report.notes.len())
                };
                self.conversation.push(Entry::new(
                    EntryKind::Info,
                    format!("Feedback report ready{notes}: F3 shows it, F4 exports it."),
                ));
                self.set_notice(NoticeLevel::Info, "Report ready: F3 shows it");
            }
            SimEvent::ReportFailed { message } => {
                self.run = self.settled_state();
                self.conversation.push(Entry::new(
                    EntryKind::Error,
                    format!("Report failed: {message}"),
                ));
                self.set_notice(
                    NoticeLevel::Error,
                    format!("Report failed: {message} (F7 retries)"),
                );
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
