//! What the user asked for (Action) and what the loop must do (Effect).

use crossterm::event::KeyEvent;

use crate::persona::Persona;
use crate::persona::ops::Change;
use crate::persona::writer::Written;
use crate::sim::debate::DebateConfig;
use crate::sim::export::ExportFormat;
use crate::sim::session::Session;
use crate::sim::synth::{BatchResult, SynthEvent};

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// q or Ctrl-C: quits, after asking while something runs.
    Quit,
    /// Quits without asking (the answer to that question).
    QuitNow,
    FocusNext,
    FocusPrev,
    StartDebate,
    /// Esc on the main screens: leave the stage view, else clear the
    /// persona filter, else cancel a run, else leave the report screen,
    /// else clear the notice. (Dialogs
    /// bind Esc themselves.)
    Escape,
    ToggleHelp,
    /// Scroll the help by this many lines.
    HelpScroll(i32),
    /// Close the dialog on top.
    CloseOverlay,
    ListUp,
    ListDown,
    ListTop,
    ListBottom,
    ListToggle,
    ListToggleAll,
    ScrollUp(usize),
    ScrollDown(usize),
    PageUp,
    PageDown,
    ScrollTop,
    FollowTail,
    /// A key for the feature editor.
    Edit(KeyEvent),
    Paste(String),
    /// Something outside changed the screen (resize, focus gained).
    Redraw,
    /// Rendered Markdown ⇄ raw text (conversation and report).
    ToggleMarkdown,
    /// Copy to the clipboard (OSC 52): the turn in view, the whole
    /// transcript, the report.
    CopyTurn,
    CopyTranscript,
    CopyReport,
    /// The offer to download the local model: yes.
    AcceptModelFetch,
    /// No, or cancel a running download, or close the failure message.
    DismissModelOffer,
    /// Switch between the debate and the report screen.
    ToggleReport,
    /// Enter or leave the stage view of the debate screen.
    ToggleStage,
    /// Write (or rewrite) the report of the session on screen.
    WriteReport,
    /// Save the session on screen again, after its save failed.
    RetrySave,
    /// Ask the editor's text as a follow-up question.
    FollowUp,
    /// Open the "export as" chooser; then export in that format.
    ExportMenu,
    Export(ExportFormat),
    /// Report screen: move the selection, jump to the cited turns.
    ReportUp,
    ReportDown,
    ReportJump,
    /// Report screen: move between the persona table and the findings.
    ReportPersonas,
    /// Scroll the persona's reason and turns by this many lines.
    ReasonScroll(i32),
    OpenHistory,
    History(HistoryAction),
    /// Managing personas: filter, form, delete, generate, stats, backup.
    Panel(PanelAction),
    /// The moderator's keys and dialogs (see `views/moderate.rs`).
    Moderate(ModAction),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ModAction {
    TogglePause,
    Skip,
    AddRound,
    OpenFloor,
    OpenAsk,
    OpenAudience,
    /// A devil's-advocate turn next (the majority's most interested persona).
    DevilsAdvocate,
    /// Ask "end now?"; then confirm.
    AskEnd,
    ConfirmEnd,
    /// In the floor and audience lists.
    Up,
    Down,
    /// Give the floor to the selected persona; accept the audience question.
    Choose,
    /// Edit the selected audience question before asking it.
    Edit,
    Reject,
    /// A key in the question box.
    Key(FormKey),
}

#[derive(Debug, Clone, PartialEq)]
pub enum PanelAction {
    FilterStart,
    FilterChar(char),
    FilterBackspace,
    /// Enter: keep the filter, give the keys back to the list.
    FilterDone,
    FilterClear,
    New,
    Edit,
    Duplicate,
    Delete,
    ConfirmDelete,
    CancelDelete,
    Undo,
    ToggleStats,
    Generate,
    Backup,
    /// A key in the persona form.
    Form(FormKey),
    /// A key in the "generate personas" dialog.
    Synth(FormKey),
}

/// Keys of a form-like dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormKey {
    Next,
    Prev,
    Char(char),
    Backspace,
    ClearField,
    Left,
    Right,
    Save,
    Cancel,
    Yes,
    No,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HistoryAction {
    Up,
    Down,
    /// Show the session in the debate screen.
    Open,
    /// Load its feature and personas to run it again (after editing).
    Rerun,
    /// Ask to delete; then confirm or cancel.
    Delete,
    ConfirmDelete,
    CancelDelete,
    StartFilter,
    FilterChar(char),
    FilterBackspace,
    EndFilter,
    Close,
}

/// The background jobs' answers, back to the app.
#[derive(Debug, Clone)]
pub enum JobDone {
    History {
        sessions: Vec<Session>,
        errors: Vec<String>,
    },
    Exported(Result<std::path::PathBuf, String>),
    Deleted(Result<String, String>),
    /// One generated persona, for review.
    Synthesized(Result<Persona, String>),
    SynthProgress(SynthEvent),
    BatchDone(BatchResult),
    BackedUp(Result<std::path::PathBuf, String>),
    /// A session saved again from the TUI: its id, its file, and why the
    /// save failed if it did (naming the file).
    SessionSaved {
        id: String,
        path: std::path::PathBuf,
        result: Result<(), String>,
    },
}

/// News about the panel file, from the writer and the watcher.
#[derive(Debug, Clone)]
pub enum PanelMsg {
    /// One of this screen's changes was applied (or refused).
    Written(Box<Written>),
    /// The file changed on disk (another process, or this one's writes).
    Reloaded(Vec<Persona>),
}

#[derive(Debug, Clone)]
pub enum Effect {
    StartDebate(DebateConfig),
    /// Cancels whatever runs: debate, report or follow-up.
    CancelDebate,
    WriteReport(Box<Session>),
    /// Writes the session file (again), off the UI thread.
    SaveSession(Box<Session>),
    FollowUp {
        session: Box<Session>,
        question: String,
        persona_ids: Vec<u32>,
    },
    LoadHistory,
    DeleteSession(String),
    Export(Box<Session>, ExportFormat),
    /// The user changed the panel on screen: apply it to the panel file.
    ChangePanel(Box<Change>),
    Synthesize {
        brief: String,
        count: usize,
        panel: Vec<Persona>,
    },
    CancelSynthesis,
    /// A timestamped copy of the persona file.
    Backup,
    FetchModel(std::path::PathBuf),
    CancelFetch,
    /// A moderator command for the running debate.
    Moderate(crate::sim::moderator::Command),
}
