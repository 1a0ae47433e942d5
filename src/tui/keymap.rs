//! Keys to actions, from one set of tables. Routing, the help overlay, the
//! hint bar and the README's key table are all read from these bindings, so
//! what the keys do and what the screen says they do cannot drift apart.
//!
//! Routing order: the keys that work everywhere ([`ALWAYS`]), then the
//! overlay stack from the top (a modal view swallows what it does not know),
//! then the screen below: [`SCREEN`] keys, then the focused pane's.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind};

use super::action::{Action, PanelAction};
use super::app::{App, Focus, Screen};
use super::views::{self, Routed};

/// Lines moved per mouse wheel notch.
const WHEEL_LINES: usize = 3;

/// One key with its modifiers (Shift is ignored for characters: `G` is `G`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

pub const fn key(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

pub const fn ch(c: char) -> Key {
    key(KeyCode::Char(c))
}

pub const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
    }
}

impl Key {
    fn matches(&self, event: &KeyEvent) -> bool {
        let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        self.code == event.code && self.ctrl == ctrl
    }
}

/// A key binding: what it does, and how it is described.
#[derive(Debug)]
pub struct Binding {
    pub keys: &'static [Key],
    /// The keys as the help shows them ("F5 / Ctrl-R").
    pub label: &'static str,
    /// What they do, for the help.
    pub help: &'static str,
    /// Key and word for the hint bar, when it earns a place there.
    pub hint: Option<(&'static str, &'static str)>,
    /// Whether the hint is shown now (e.g. "F3 report" only with a session).
    pub hint_when: fn(&App) -> bool,
    pub action: Action,
}

pub fn always(_: &App) -> bool {
    true
}

fn idle(app: &App) -> bool {
    !app.is_running()
}

fn off_stage(app: &App) -> bool {
    !in_stage(app)
}

/// Esc cancels a run, except on the stage, where it leaves the stage.
fn running_off_stage(app: &App) -> bool {
    app.is_running() && !in_stage(app)
}

fn idle_with_session(app: &App) -> bool {
    !app.is_running() && app.session().is_some()
}

fn not_idle_with_session(app: &App) -> bool {
    !idle_with_session(app)
}

/// The session on screen could not be saved and no run is writing it.
fn save_failed(app: &App) -> bool {
    !app.is_running() && app.session().is_some_and(|s| s.save_error.is_some())
}

/// The stage view is on screen.
pub fn in_stage(app: &App) -> bool {
    app.stage() && app.screen() == Screen::Debate
}

fn not_in_editor(app: &App) -> bool {
    app.focus() != Focus::Editor
}

fn in_editor(app: &App) -> bool {
    app.focus() == Focus::Editor
}

/// A binding shown in the help only.
pub const fn bind(
    keys: &'static [Key],
    label: &'static str,
    help: &'static str,
    action: Action,
) -> Binding {
    Binding {
        keys,
        label,
        help,
        hint: None,
        hint_when: always,
        action,
    }
}

/// A binding also shown in the hint bar.
pub const fn hinted(
    keys: &'static [Key],
    label: &'static str,
    help: &'static str,
    hint: (&'static str, &'static str),
    action: Action,
) -> Binding {
    Binding {
        keys,
        label,
        help,
        hint: Some(hint),
        hint_when: always,
        action,
    }
}

/// A binding whose hint shows only when `hint_when` says so.
pub const fn hinted_when(
    keys: &'static [Key],
    label: &'static str,
    help: &'static str,
    hint: (&'static str, &'static str),
    action: Action,
    hint_when: fn(&App) -> bool,
) -> Binding {
    Binding {
        keys,
        label,
        help,
        hint: Some(hint),
        hint_when,
        action,
    }
}

/// Keys that work everywhere, over any dialog.
pub static ALWAYS: &[Binding] = &[
    hinted_when(
        &[key(KeyCode::F(1))],
        "F1",
        "this help, from anywhere",
        ("F1", "help"),
        Action::ToggleHelp,
        in_editor,
    ),
    hinted_when(
        &[ctrl('c')],
        "Ctrl-C",
        "quit (asks first while something runs, which is then saved as cancelled)",
        ("Ctrl-C", "quit"),
        Action::Quit,
        in_editor,
    ),
];

/// Keys of the main screens (debate and report), whatever the focus.
pub static SCREEN: &[Binding] = &[
    hinted_when(
        &[
            key(KeyCode::F(5)),
            ctrl('r'),
            Key {
                code: KeyCode::Enter,
                ctrl: true,
            },
        ],
        "F5 / Ctrl-R",
        "start the debate (also Ctrl-Enter where the terminal reports it)",
        ("F5", "start"),
        Action::StartDebate,
        idle,
    ),
    hinted_when(
        &[key(KeyCode::Esc)],
        "Esc",
        "leave the stage view; cancel a run; clear the filter; leave the report; clear the message",
        ("Esc", "cancel"),
        Action::Escape,
        running_off_stage,
    ),
    hinted_when(
        &[key(KeyCode::F(2))],
        "F2",
        "history of saved debates",
        ("F2", "history"),
        Action::OpenHistory,
        not_idle_with_session,
    ),
    hinted_when(
        &[key(KeyCode::F(3))],
        "F3",
        "report ⇄ debate screen",
        ("F3", "report"),
        Action::ToggleReport,
        idle_with_session,
    ),
    hinted_when(
        &[key(KeyCode::F(6))],
        "F6",
        "ask the selected personas the editor's text as a follow-up",
        ("F6", "ask"),
        Action::FollowUp,
        idle_with_session,
    ),
    hinted_when(
        &[key(KeyCode::F(4))],
        "F4",
        "export the session (Markdown or JSON)",
        ("F4", "export"),
        Action::ExportMenu,
        idle_with_session,
    ),
    bind(
        &[key(KeyCode::F(7))],
        "F7",
        "write (or rewrite) the feedback report",
        Action::WriteReport,
    ),
    hinted_when(
        &[key(KeyCode::F(8))],
        "F8",
        "save the session again after its save failed",
        ("F8", "save again"),
        Action::RetrySave,
        save_failed,
    ),
    hinted_when(
        &[key(KeyCode::F(9))],
        "F9",
        "stage view ⇄ debate screen: the conversation full screen, speaker and stances large",
        ("F9", "leave stage"),
        Action::ToggleStage,
        in_stage,
    ),
    hinted_when(
        &[key(KeyCode::Tab)],
        "Tab",
        "focus: personas → feature → conversation",
        ("Tab", "focus"),
        Action::FocusNext,
        off_stage,
    ),
    bind(
        &[key(KeyCode::BackTab)],
        "Shift-Tab",
        "focus backwards",
        Action::FocusPrev,
    ),
    bind(
        &[key(KeyCode::PageUp)],
        "PgUp",
        "scroll the conversation up a page (wheel with --mouse)",
        Action::PageUp,
    ),
    bind(
        &[key(KeyCode::PageDown)],
        "PgDn",
        "scroll the conversation down a page",
        Action::PageDown,
    ),
];

const QUIT: Binding = hinted_when(
    &[ch('q')],
    "q",
    "quit",
    ("q", "quit"),
    Action::Quit,
    not_in_editor,
);
const HELP: Binding = hinted_when(
    &[ch('?')],
    "?",
    "this help",
    ("?", "help"),
    Action::ToggleHelp,
    not_in_editor,
);

/// The persona list (focus on it).
pub static PERSONAS: &[Binding] = &[
    bind(
        &[key(KeyCode::Up), ch('k')],
        "↑ k",
        "move up",
        Action::ListUp,
    ),
    bind(
        &[key(KeyCode::Down), ch('j')],
        "↓ j",
        "move down",
        Action::ListDown,
    ),
    bind(
        &[key(KeyCode::Home), ch('g')],
        "Home g",
        "first persona",
        Action::ListTop,
    ),
    bind(
        &[key(KeyCode::End), ch('G')],
        "End G",
        "last persona",
        Action::ListBottom,
    ),
    hinted(
        &[ch(' '), key(KeyCode::Enter)],
        "Space Enter",
        "select the persona (or unselect)",
        ("Space", "select"),
        Action::ListToggle,
    ),
    hinted(
        &[ch('a')],
        "a",
        "select all shown (or none)",
        ("a", "all"),
        Action::ListToggleAll,
    ),
    hinted(
        &[ch('/')],
        "/",
        "filter: words, prof:high, loc:kenya, \"quoted phrase\"",
        ("/", "filter"),
        Action::Panel(PanelAction::FilterStart),
    ),
    bind(
        &[ch('n')],
        "n",
        "new persona",
        Action::Panel(PanelAction::New),
    ),
    bind(
        &[ch('e')],
        "e",
        "edit persona",
        Action::Panel(PanelAction::Edit),
    ),
    bind(
        &[ch('c')],
        "c",
        "copy persona into a new one",
        Action::Panel(PanelAction::Duplicate),
    ),
    bind(
        &[ch('x'), key(KeyCode::Delete)],
        "x Del",
        "delete persona (asks first)",
        Action::Panel(PanelAction::Delete),
    ),
    bind(
        &[ch('u')],
        "u",
        "undo the last delete",
        Action::Panel(PanelAction::Undo),
    ),
    bind(
        &[ch('s')],
        "s",
        "panel statistics",
        Action::Panel(PanelAction::ToggleStats),
    ),
    bind(
        &[ch('i')],
        "i",
        "generate personas with the LLM",
        Action::Panel(PanelAction::Generate),
    ),
    bind(
        &[ch('B')],
        "B",
        "back up the panel file now",
        Action::Panel(PanelAction::Backup),
    ),
    QUIT,
    HELP,
];

/// While a filter is typed in the persona list (other keys are its text).
pub static FILTER: &[Binding] = &[
    hinted(
        &[key(KeyCode::Enter)],
        "Enter",
        "keep the filter, back to the list",
        ("Enter", "keep"),
        Action::Panel(PanelAction::FilterDone),
    ),
    hinted(
        &[key(KeyCode::Esc)],
        "Esc",
        "clear the filter",
        ("Esc", "clear"),
        Action::Panel(PanelAction::FilterClear),
    ),
    bind(
        &[key(KeyCode::Backspace)],
        "Backspace",
        "delete a character",
        Action::Panel(PanelAction::FilterBackspace),
    ),
    bind(&[key(KeyCode::Up)], "↑", "move up", Action::ListUp),
    bind(&[key(KeyCode::Down)], "↓", "move down", Action::ListDown),
];

// The conversation's scroll keys, shared by its pane and the stage.
const SCROLL_UP: Binding = hinted(
    &[key(KeyCode::Up), ch('k')],
    "↑ k",
    "scroll up a line",
    ("↑↓", "scroll"),
    Action::ScrollUp(1),
);
const SCROLL_DOWN: Binding = bind(
    &[key(KeyCode::Down), ch('j')],
    "↓ j",
    "scroll down a line",
    Action::ScrollDown(1),
);
const SCROLL_TOP: Binding = bind(
    &[key(KeyCode::Home), ch('g')],
    "Home g",
    "top of the conversation",
    Action::ScrollTop,
);
const FOLLOW_TAIL: Binding = bind(
    &[key(KeyCode::End), ch('G')],
    "End G",
    "follow the newest text again",
    Action::FollowTail,
);

/// The conversation (focus on it).
pub static CONVERSATION: &[Binding] = &[
    SCROLL_UP,
    SCROLL_DOWN,
    SCROLL_TOP,
    // Hinted in the pane; the stage's hint bar has no room for it.
    hinted(
        &[key(KeyCode::End), ch('G')],
        "End G",
        "follow the newest text again",
        ("End", "follow"),
        Action::FollowTail,
    ),
    hinted(
        &[ch('y')],
        "y",
        "copy a turn to the clipboard (OSC 52): the one jumped to from the report while in view, else the one at the bottom of the view",
        ("y", "copy"),
        Action::CopyTurn,
    ),
    bind(
        &[ch('Y')],
        "Y",
        "copy the whole transcript as Markdown (as the export writes it)",
        Action::CopyTranscript,
    ),
    hinted(
        &[ch('m')],
        "m",
        "Markdown rendered ⇄ raw text (replies and the report)",
        ("m", "raw/md"),
        Action::ToggleMarkdown,
    ),
    QUIT,
    HELP,
];

/// The stage view (F9, --stage): the conversation's keys, whatever the
/// focus; the panes it hides take none.
pub static STAGE: &[Binding] = &[SCROLL_UP, SCROLL_DOWN, SCROLL_TOP, FOLLOW_TAIL, QUIT, HELP];

/// The feature editor: every other key edits the text (paste goes here too).
pub static EDITOR: &[Binding] = &[];

/// The report screen (F3).
pub static REPORT: &[Binding] = &[
    hinted(
        &[key(KeyCode::Up), ch('k')],
        "↑ k",
        "previous persona, insight, concern or request (scroll a plain report)",
        ("↑↓", "pick"),
        Action::ReportUp,
    ),
    bind(
        &[key(KeyCode::Down), ch('j')],
        "↓ j",
        "next one",
        Action::ReportDown,
    ),
    // Said in the table's title, so it takes no room in the hint bar.
    bind(
        &[ch('p')],
        "p",
        "the persona table ⇄ the findings",
        Action::ReportPersonas,
    ),
    hinted(
        &[key(KeyCode::Enter)],
        "Enter",
        "a finding: show the turns it cites; a persona: their full reason and their turns",
        ("Enter", "open"),
        Action::ReportJump,
    ),
    hinted(
        &[ch('y')],
        "y",
        "copy the report as Markdown to the clipboard (OSC 52)",
        ("y", "copy"),
        Action::CopyReport,
    ),
    bind(
        &[ch('m')],
        "m",
        "Markdown rendered ⇄ raw text (replies and the report)",
        Action::ToggleMarkdown,
    ),
    QUIT,
    HELP,
];

/// Terminal events to actions.
pub fn map_event(app: &App, event: Event) -> Option<Action> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => map_key(app, key),
        Event::Paste(text) => Some(Action::Paste(text)),
        Event::Mouse(m) => match m.kind {
            MouseEventKind::ScrollUp => Some(Action::ScrollUp(WHEEL_LINES)),
            MouseEventKind::ScrollDown => Some(Action::ScrollDown(WHEEL_LINES)),
            _ => None,
        },
        Event::Resize(..) | Event::FocusGained => Some(Action::Redraw),
        _ => None,
    }
}

/// The first binding in `table` that `key` matches.
pub fn lookup(table: &[Binding], key: &KeyEvent) -> Option<Action> {
    table
        .iter()
        .find(|b| b.keys.iter().any(|k| k.matches(key)))
        .map(|b| b.action.clone())
}

pub fn map_key(app: &App, key: KeyEvent) -> Option<Action> {
    if app.too_small() {
        // Nothing else is on screen to act on.
        let quits = ctrl('c').matches(&key) || ch('q').matches(&key);
        return quits.then_some(Action::QuitNow);
    }
    if let Some(action) = lookup(ALWAYS, &key) {
        return Some(action);
    }
    for overlay in app.overlays().iter().rev() {
        match views::route(overlay.view(), &key) {
            Routed::Action(action) => return Some(action),
            Routed::Swallow => return None,
            Routed::Pass => {}
        }
    }
    // The moderator's Ctrl keys come before any pane's, the editor's too.
    if views::moderate::moderating(app)
        && let Some(action) = lookup(views::moderate::MODERATOR, &key)
    {
        return Some(action);
    }
    if in_stage(app) {
        return lookup(SCREEN, &key).or_else(|| lookup(STAGE, &key));
    }
    if app.filter_editing() {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        return match lookup(FILTER, &key) {
            Some(action) => Some(action),
            None => match key.code {
                KeyCode::Char(c) if !ctrl => Some(Action::Panel(PanelAction::FilterChar(c))),
                _ => None,
            },
        };
    }
    if let Some(action) = lookup(SCREEN, &key) {
        return Some(action);
    }
    match app.screen() {
        Screen::Report => lookup(REPORT, &key),
        Screen::Debate => match app.focus() {
            Focus::Personas => lookup(PERSONAS, &key),
            Focus::Conversation => lookup(CONVERSATION, &key),
            Focus::Editor => Some(Action::Edit(key)),
        },
    }
}

/// The bindings in force for the screen below the overlays.
pub fn screen_tables(app: &App) -> Vec<&'static [Binding]> {
    let moderator: &[&'static [Binding]] = if views::moderate::moderating(app) {
        &[views::moderate::MODERATOR]
    } else {
        &[]
    };
    if in_stage(app) {
        return [&[SCREEN, STAGE], moderator, &[ALWAYS]].concat();
    }
    let pane: &'static [Binding] = match (app.screen(), app.focus()) {
        (Screen::Report, _) => REPORT,
        (Screen::Debate, _) if app.filter_editing() => return vec![FILTER],
        (Screen::Debate, Focus::Personas) => PERSONAS,
        (Screen::Debate, Focus::Conversation) => CONVERSATION,
        (Screen::Debate, Focus::Editor) => EDITOR,
    };
    [&[SCREEN, pane], moderator, &[ALWAYS]].concat()
}

/// Every key, grouped by where it works: for the help and the README.
pub fn help_sections() -> Vec<(&'static str, &'static [Binding])> {
    let mut sections = vec![
        ("Everywhere", ALWAYS),
        ("Main screens", SCREEN),
        ("Persona list", PERSONAS),
        ("Persona filter (/): typing filters", FILTER),
        ("Conversation", CONVERSATION),
        ("Stage view (F9, --stage)", STAGE),
        (
            "Moderator (while a debate runs, on any pane)",
            views::moderate::MODERATOR,
        ),
        ("Report screen (F3)", REPORT),
    ];
    sections.extend(views::help_sections());
    sections
}

/// The key table for the README, generated from the bindings.
pub fn markdown_keys() -> String {
    let mut out = String::new();
    for (title, bindings) in help_sections() {
        out.push_str(&format!(
            "\n**{title}**\n\n| Keys | What they do |\n|---|---|\n"
        ));
        for b in bindings.iter().filter(|b| !b.label.is_empty()) {
            out.push_str(&format!("| {} | {} |\n", b.label, b.help));
        }
    }
    out.push_str(
        "\nIn the feature editor every other key edits the text; a paste goes there from any pane.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_is_bound_twice_in_one_table() {
        for (title, table) in help_sections() {
            let mut seen: Vec<Key> = Vec::new();
            for b in table {
                for k in b.keys {
                    assert!(!seen.contains(k), "{title}: {k:?} bound twice");
                    seen.push(*k);
                }
            }
        }
    }

    #[test]
    fn every_binding_is_described() {
        for (title, table) in help_sections() {
            for b in table {
                assert!(!b.label.is_empty() && !b.help.is_empty(), "{title}: {b:?}");
                assert!(!b.keys.is_empty(), "{title}: {} has no key", b.label);
            }
        }
    }
}
