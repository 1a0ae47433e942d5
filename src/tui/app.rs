//! The TUI's state and its synchronous update function: test it without a
//! terminal.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use ratatui::style::Style;
use ratatui::widgets::{Block, Borders, ListState};
use ratatui_textarea::{TextArea, WrapMode};

use super::action::{Action, Effect, JobDone};
use super::panes::conversation::ConversationView;
use super::persona_list::PersonaList;
use super::theme;
use super::views::Overlay;
use super::views::confirm_quit::ConfirmQuit;
use super::views::export_menu::ExportMenu;
use super::views::help::Help;
use super::views::history::History;
use crate::llm::{BackendInfo, Usage};
use crate::persona::Persona;
use crate::sim::session::Session;

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
    /// The last frame was too small for the UI: only quitting keys work.
    pub(crate) too_small: bool,
    /// The time as the loop last saw it: counters are drawn from this, not
    /// from the clock, so a frame is a function of the state.
    pub(crate) now: Instant,
    /// Conversation entry of each transcript turn of the running debate.
    pub(crate) turn_entries: Vec<usize>,
    /// The session on screen (running, finished or opened from history),
    /// kept in step with the runner's copy by the same events.
    pub(crate) session: Option<Session>,
    pub(crate) screen: Screen,
    /// The debate screen shows the stage view: the conversation full
    /// screen, the speaker and the stances large.
    pub(crate) stage: bool,
    /// `--stage`: start in the stage view and enter it at each debate.
    pub(crate) stage_mode: bool,
    /// The report's text as it streams in.
    pub(crate) report_draft: String,
    /// Selected concern, request or insight on the report screen (or the
    /// scroll offset of a plain-text report).
    pub(crate) report_selected: usize,
    /// The report screen's arrows move in the persona table (else in the
    /// findings), and its selected row.
    pub(crate) report_on_personas: bool,
    pub(crate) report_persona: usize,
    /// The persona list pane: filter, visible rows, undo.
    pub(crate) persona_list: PersonaList,
    /// Personas created since the loop last counted them (metrics).
    pub(crate) created: usize,
    /// The moderator paused the running debate.
    pub(crate) paused: bool,
    /// Audience questions waiting for the moderator, oldest first.
    pub(crate) audience: Vec<crate::sim::live::AudienceQuestion>,
    /// Where `y` copies go, and the bytes waiting for the terminal.
    pub(crate) clipboard: super::clipboard::Clipboard,
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
            too_small: false,
            now: Instant::now(),
            turn_entries: Vec::new(),
            session: None,
            screen: Screen::Debate,
            stage: false,
            stage_mode: false,
            report_draft: String::new(),
            report_selected: 0,
            report_on_personas: false,
            report_persona: 0,
            persona_list: PersonaList::new(count),
            created: 0,
            paused: false,
            audience: Vec::new(),
            clipboard: Default::default(),
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

    /// Whether the debate screen shows the stage view (on the report
    /// screen it is kept for when the debate screen comes back).
    pub fn stage(&self) -> bool {
        self.stage
    }

    /// `--stage`: the stage view now, and again whenever a debate starts.
    pub fn set_stage_mode(&mut self, on: bool) {
        self.stage_mode = on;
        self.stage = on;
        self.dirty = true;
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
        &self.persona_list.visible
    }

    /// The filter text, when a filter is on.
    pub fn filter_text(&self) -> Option<&str> {
        self.persona_list.filter.as_ref().map(|f| f.text.as_str())
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

    /// The external editor exited: its text replaces the editor's.
    pub fn on_edited(&mut self, command: &str, result: Result<Option<String>, String>) {
        match result {
            Ok(Some(text)) => {
                self.set_feature_text(&text);
                self.set_focus(Focus::Editor);
            }
            Ok(None) => self.set_notice(
                NoticeLevel::Error,
                format!("The editor ({command}) exited with an error; the text is as it was."),
            ),
            Err(e) => self.set_notice(NoticeLevel::Error, e),
        }
        self.dirty = true;
    }

    /// Whether the last frame was too small to show the UI.
    pub fn too_small(&self) -> bool {
        self.too_small
    }

    /// Puts `text` in the feature editor, replacing what was there.
    pub fn set_feature_text(&mut self, text: &str) {
        self.editor = new_editor();
        self.editor.insert_str(text);
        self.style_editor();
        self.dirty = true;
    }

    /// Empties the feature editor.
    pub fn clear_feature(&mut self) {
        self.set_feature_text("");
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

    pub(crate) fn style_editor(&mut self) {
        let focused = self.focus == Focus::Editor;
        self.editor.set_block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme::border(focused))
                .title(" Feature "),
        );
        self.editor.set_cursor_style(if focused {
            theme::editor_cursor()
        } else {
            Style::new()
        });
    }

    pub fn update(&mut self, action: Action) -> Option<Effect> {
        self.dirty = true;
        match action {
            Action::Quit
                if self.is_running()
                    && !self.too_small
                    && !matches!(self.overlays.last(), Some(Overlay::ConfirmQuit(_))) =>
            {
                // A run is not thrown away by one stray key.
                self.open(Overlay::ConfirmQuit(ConfirmQuit));
            }
            Action::ExternalEditor => {
                let command = super::external_editor::editor_command(
                    |k| std::env::var(k).ok(),
                    super::external_editor::on_path,
                );
                match command {
                    Some(command) => {
                        return Some(Effect::EditExternally {
                            command,
                            text: self.feature_text(),
                        });
                    }
                    None => self.set_notice(
                        NoticeLevel::Error,
                        "No editor: set $EDITOR (or $VISUAL), or install nano or vi.",
                    ),
                }
            }
            Action::Quit | Action::QuitNow => {
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
                if self.stage && self.screen == Screen::Debate {
                    self.stage = false;
                } else if self.focus == Focus::Personas && self.persona_list.filter.is_some() {
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
            Action::ToggleStage => {
                // From the report screen, straight to the stage.
                self.stage = !self.stage || self.screen == Screen::Report;
                self.screen = Screen::Debate;
            }
            Action::WriteReport => return self.write_report(),
            Action::RetrySave => return self.retry_save(),
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
            Action::ReportUp if self.report_on_personas => {
                self.report_persona = self.report_persona.saturating_sub(1)
            }
            Action::ReportDown if self.report_on_personas => {
                let last = self.report_persona_count().saturating_sub(1);
                self.report_persona = (self.report_persona + 1).min(last);
            }
            Action::ReportPersonas => self.toggle_report_personas(),
            Action::ReasonScroll(delta) => self.scroll_reason(delta),
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
            Action::Moderate(action) => return self.on_moderate(action),
            Action::StartDebate => return self.start(),
            Action::ListUp => self.move_cursor(-1),
            Action::ListDown => self.move_cursor(1),
            Action::ListTop => self
                .list
                .select(self.persona_list.visible.first().map(|_| 0)),
            Action::ListBottom => self
                .list
                .select(self.persona_list.visible.len().checked_sub(1)),
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
                    .persona_list
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
            Action::Paste(_) if self.stage && self.screen == Screen::Debate => self.set_notice(
                NoticeLevel::Info,
                "The stage shows no editor: F9 leaves it, then paste",
            ),
            Action::Paste(text) => {
                self.set_focus(Focus::Editor);
                // Terminals send pasted newlines as \r.
                self.editor
                    .insert_str(text.replace("\r\n", "\n").replace('\r', "\n"));
            }
            Action::Redraw => {}
            Action::ToggleMarkdown => self.toggle_markdown(),
            Action::CopyTurn => self.copy_turn(),
            Action::CopyTranscript => self.copy_transcript(),
            Action::CopyReport => self.copy_report(),
            Action::AcceptModelFetch => return self.accept_model_fetch(),
            Action::DismissModelOffer => return self.dismiss_model_offer(),
        }
        None
    }

    pub(crate) fn set_focus(&mut self, focus: Focus) {
        self.focus = focus;
        self.style_editor();
    }

    pub(crate) fn move_cursor(&mut self, delta: isize) {
        if self.persona_list.visible.is_empty() {
            return;
        }
        let current = self.list.selected().unwrap_or(0) as isize;
        let next = (current + delta).clamp(0, self.persona_list.visible.len() as isize - 1);
        self.list.select(Some(next as usize));
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
            JobDone::SessionSaved { id, path, result } => self.on_session_saved(&id, &path, result),
        }
    }
}
