//! The history overlay (F2): saved sessions with search, open, re-run and
//! delete.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, Paragraph};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::widgets::ListState;

use super::{Routed, View, hint_text, popup};
use crate::sim::session::{Session, session_matches};
use crate::text::truncate;
use crate::tui::action::{Action, Effect, HistoryAction};
use crate::tui::app::{App, Focus, NoticeLevel, Screen};
use crate::tui::keymap::{Binding, bind, ch, hinted, key};
use crate::tui::theme;

/// The history overlay: saved sessions, a search, a delete confirmation.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Newest first; `None` while loading.
    pub sessions: Option<Vec<Session>>,
    /// Files that could not be read.
    pub errors: Vec<String>,
    pub filter: String,
    pub filtering: bool,
    pub list: ListState,
    /// Asking "delete this session?" for this id.
    pub confirm_delete: Option<String>,
}

impl History {
    /// Sessions matching the search, newest first.
    pub fn visible(&self) -> Vec<&Session> {
        self.sessions
            .iter()
            .flatten()
            .filter(|s| session_matches(s, &self.filter))
            .collect()
    }

    pub fn selected(&self) -> Option<&Session> {
        let index = self.list.selected()?;
        self.visible().get(index).copied()
    }

    pub fn clamp(&mut self) {
        let n = self.visible().len();
        let sel = self.list.selected().unwrap_or(0);
        self.list
            .select(if n == 0 { None } else { Some(sel.min(n - 1)) });
    }
}

pub static BROWSE: &[Binding] = &[
    hinted(
        &[key(KeyCode::Up), ch('k')],
        "↑ k",
        "move up",
        ("↑↓", "move"),
        Action::History(HistoryAction::Up),
    ),
    bind(
        &[key(KeyCode::Down), ch('j')],
        "↓ j",
        "move down",
        Action::History(HistoryAction::Down),
    ),
    hinted(
        &[key(KeyCode::Enter)],
        "Enter",
        "open the session in the debate screen",
        ("Enter", "open"),
        Action::History(HistoryAction::Open),
    ),
    hinted(
        &[ch('r')],
        "r",
        "re-run: load its feature and personas into the editor",
        ("r", "re-run"),
        Action::History(HistoryAction::Rerun),
    ),
    hinted(
        &[ch('d'), key(KeyCode::Delete)],
        "d Del",
        "delete the session (asks first)",
        ("d", "delete"),
        Action::History(HistoryAction::Delete),
    ),
    hinted(
        &[ch('/')],
        "/",
        "search by feature, persona, status or date",
        ("/", "search"),
        Action::History(HistoryAction::StartFilter),
    ),
    hinted(
        &[key(KeyCode::Esc), ch('q'), key(KeyCode::F(2))],
        "Esc q F2",
        "close the history",
        ("Esc", "close"),
        Action::History(HistoryAction::Close),
    ),
];

static FILTERING: &[Binding] = &[
    bind(
        &[key(KeyCode::Up)],
        "↑",
        "move up",
        Action::History(HistoryAction::Up),
    ),
    bind(
        &[key(KeyCode::Down)],
        "↓",
        "move down",
        Action::History(HistoryAction::Down),
    ),
    hinted(
        &[key(KeyCode::Enter), key(KeyCode::Esc)],
        "Enter Esc",
        "end the search",
        ("Enter", "done"),
        Action::History(HistoryAction::EndFilter),
    ),
    bind(
        &[key(KeyCode::Backspace)],
        "Backspace",
        "delete a character",
        Action::History(HistoryAction::FilterBackspace),
    ),
];

static CONFIRM: &[Binding] = &[
    hinted(
        &[ch('y')],
        "y",
        "delete the session",
        ("y", "delete"),
        Action::History(HistoryAction::ConfirmDelete),
    ),
    hinted(
        &[ch('n'), key(KeyCode::Esc)],
        "n Esc",
        "keep it",
        ("n", "keep"),
        Action::History(HistoryAction::CancelDelete),
    ),
];

impl View for History {
    fn bindings(&self) -> &'static [Binding] {
        if self.confirm_delete.is_some() {
            CONFIRM
        } else if self.filtering {
            FILTERING
        } else {
            BROWSE
        }
    }

    fn other_key(&self, key: &KeyEvent) -> Routed {
        match key.code {
            KeyCode::Char(c)
                if self.filtering
                    && self.confirm_delete.is_none()
                    && !key.modifiers.contains(KeyModifiers::CONTROL) =>
            {
                Routed::Action(Action::History(HistoryAction::FilterChar(c)))
            }
            _ => Routed::Swallow,
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect, _app: &App) {
        draw_history(frame, area, self);
    }
}

impl App {
    pub fn history(&self) -> Option<&History> {
        self.overlays.iter().find_map(|o| match o {
            super::Overlay::History(h) => Some(h),
            _ => None,
        })
    }

    pub(crate) fn history_mut(&mut self) -> Option<&mut History> {
        self.overlays.iter_mut().find_map(|o| match o {
            super::Overlay::History(h) => Some(h),
            _ => None,
        })
    }

    fn close_history(&mut self) {
        self.overlays
            .retain(|o| !matches!(o, super::Overlay::History(_)));
    }

    pub(crate) fn on_history(&mut self, action: HistoryAction) -> Option<Effect> {
        let running = self.is_running();
        let current = self.session.as_ref().map(|s| s.id.clone());
        let history = self.history_mut()?;
        match action {
            HistoryAction::Up => {
                let sel = history.list.selected().unwrap_or(0);
                history.list.select(Some(sel.saturating_sub(1)));
            }
            HistoryAction::Down => {
                let sel = history.list.selected().map_or(0, |s| s + 1);
                history.list.select(Some(sel));
                history.clamp();
            }
            HistoryAction::Open if running => {
                self.set_notice(
                    NoticeLevel::Info,
                    "Wait for the run to finish (Esc cancels it), then open a session",
                );
            }
            HistoryAction::Open => {
                if let Some(session) = history.selected().cloned() {
                    self.close_history();
                    let id = session.id.clone();
                    self.open_session(session);
                    self.set_notice(
                        NoticeLevel::Info,
                        format!("Opened session {id}: F3 report · F6 follow-up · F4 export"),
                    );
                }
            }
            HistoryAction::Rerun => {
                if let Some(session) = history.selected().cloned() {
                    self.close_history();
                    self.load_inputs_of(&session);
                    let missing: Vec<&str> = session
                        .personas
                        .iter()
                        .filter(|p| !self.personas.iter().any(|q| q.id == p.id))
                        .map(|p| p.name.as_str())
                        .collect();
                    let note = if missing.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} no longer in the panel)", missing.join(", "))
                    };
                    self.set_focus(Focus::Editor);
                    self.screen = Screen::Debate;
                    self.set_notice(
                        NoticeLevel::Info,
                        format!("Feature and personas loaded{note}: edit if you like, then F5"),
                    );
                }
            }
            HistoryAction::Delete => {
                let id = history.selected().map(|s| s.id.clone());
                if running && id.is_some() && id == current {
                    self.set_notice(
                        NoticeLevel::Info,
                        "That session is running: cancel it first",
                    );
                } else {
                    history.confirm_delete = id;
                }
            }
            HistoryAction::CancelDelete => history.confirm_delete = None,
            HistoryAction::ConfirmDelete => {
                if let Some(id) = history.confirm_delete.take() {
                    return Some(Effect::DeleteSession(id));
                }
            }
            HistoryAction::StartFilter => history.filtering = true,
            HistoryAction::FilterChar(c) => {
                history.filter.push(c);
                history.list.select(Some(0));
                history.clamp();
            }
            HistoryAction::FilterBackspace => {
                history.filter.pop();
                history.clamp();
            }
            HistoryAction::EndFilter => history.filtering = false,
            HistoryAction::Close => self.close_history(),
        }
        None
    }
}

fn draw_history(frame: &mut Frame, area: Rect, history: &History) {
    let width = area.width.saturating_sub(4);
    let height = area.height.saturating_sub(2);
    let popup = popup(frame, area, width, height);
    let count = history.sessions.as_ref().map_or(0, Vec::len);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::key())
        .title(format!(
            " History · {count} session{} ",
            if count == 1 { "" } else { "s" }
        ))
        .title_bottom(Line::styled(hint_text(history.bindings()), theme::dim()));
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let [search_area, list_area, foot_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(inner);

    let search = if history.filtering {
        Line::from(vec![
            Span::styled("/", theme::key()),
            Span::raw(history.filter.clone()),
            Span::styled("▌", theme::key()),
        ])
    } else if history.filter.is_empty() {
        Line::styled("/ to search (feature, persona, status, date)", theme::dim())
    } else {
        Line::from(vec![
            Span::styled("search: ", theme::dim()),
            Span::raw(history.filter.clone()),
        ])
    };
    frame.render_widget(Paragraph::new(search), search_area);

    let Some(_) = &history.sessions else {
        frame.render_widget(Paragraph::new("Loading…").style(theme::dim()), list_area);
        return;
    };
    let row_width = list_area.width.saturating_sub(2) as usize;
    let items: Vec<ListItem> = history
        .visible()
        .iter()
        .map(|s| {
            let date = s
                .created_at
                .get(..16)
                .unwrap_or(&s.created_at)
                .replace('T', " ");
            let status = s.status_label();
            let status_style = match status {
                "completed" => theme::good(),
                "failed" | "incomplete" => theme::error(),
                _ => theme::warn(),
            };
            let panel = format!("{}p", s.personas.len());
            let fixed = date.len() + 15 + panel.len() + 3;
            let names: Vec<&str> = s
                .personas
                .iter()
                .map(|p| p.name.split_whitespace().next().unwrap_or(&p.name))
                .collect();
            let feature = truncate(
                s.first_line(),
                row_width.saturating_sub(fixed).max(8) * 3 / 5,
            );
            let people = truncate(
                &names.join(", "),
                row_width.saturating_sub(fixed + feature.chars().count() + 3),
            );
            ListItem::new(Line::from(vec![
                Span::styled(format!("{date} "), theme::dim()),
                Span::styled(format!("{status:<15}"), status_style),
                Span::styled(format!("{panel} "), theme::dim()),
                Span::raw(feature),
                Span::styled(format!(" · {people}"), theme::dim()),
            ]))
        })
        .collect();
    if items.is_empty() {
        let text = if count == 0 {
            "No saved sessions yet: every debate is saved here as it runs."
        } else {
            "No session matches the search."
        };
        frame.render_widget(Paragraph::new(text).style(theme::dim()), list_area);
    } else {
        frame.render_stateful_widget(
            List::new(items)
                .highlight_symbol("▶ ")
                .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
            list_area,
            // Drawing is a function of the state: a copy scrolls to the selection.
            &mut history.list.clone(),
        );
    }
    let foot = match (&history.confirm_delete, history.errors.len()) {
        (Some(id), _) => Line::styled(
            format!("Delete session {id}? y deletes · n keeps it"),
            theme::error(),
        ),
        (None, 0) => Line::default(),
        (None, n) => Line::styled(
            format!("{n} session file(s) could not be read and are not listed (see the log)"),
            theme::error(),
        ),
    };
    frame.render_widget(Paragraph::new(foot), foot_area);
}
