//! The moderator's keys while a debate runs, and their dialogs: who gets
//! the floor, a question for the panel, the audience's questions (with
//! `--live-questions`) and "end now?". Each action goes to the running
//! debate as a [`Command`]; what it did comes back as a `moderated` event
//! (see `debate_run.rs`), so the screen shows what happened, not what was
//! asked.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::confirm_delete::draw_question;
use super::{Overlay, Routed, View, hint_text, popup};
use crate::sim::live::{AudienceQuestion, one_line};
use crate::sim::moderator::{Command, MAX_QUESTION_CHARS};
use crate::tui::action::{Action, Effect, FormKey, ModAction};
use crate::tui::app::{App, NoticeLevel, Phase, RunState};
use crate::tui::keymap::{Binding, bind, ch, ctrl, hinted, hinted_when, key};
use crate::tui::theme;

const fn moderate(action: ModAction) -> Action {
    Action::Moderate(action)
}

/// Whether a debate (not a report or a follow-up) is running.
pub fn moderating(app: &App) -> bool {
    matches!(
        app.run,
        RunState::Running {
            phase: Phase::Debate,
            ..
        }
    )
}

fn has_audience(app: &App) -> bool {
    !app.audience.is_empty()
}

/// Keys of a running debate, over every pane (the editor too: these Ctrl
/// keys are not the editor's while a debate runs).
pub static MODERATOR: &[Binding] = &[
    hinted_when(
        &[ctrl('p')],
        "Ctrl-P",
        "pause / resume the debate (after the current token)",
        ("^P", "pause"),
        moderate(ModAction::TogglePause),
        moderating,
    ),
    bind(
        &[ctrl('n')],
        "Ctrl-N",
        "skip the current speaker",
        moderate(ModAction::Skip),
    ),
    bind(
        &[ctrl('f')],
        "Ctrl-F",
        "give the floor to a persona: they speak next",
        moderate(ModAction::OpenFloor),
    ),
    bind(
        &[ctrl('q')],
        "Ctrl-Q",
        "put a question to the panel (every later turn sees it)",
        moderate(ModAction::OpenAsk),
    ),
    bind(
        &[ctrl('o')],
        "Ctrl-O",
        "one more round",
        moderate(ModAction::AddRound),
    ),
    bind(
        &[ctrl('d')],
        "Ctrl-D",
        "devil's advocate: one of the majority argues the case against it next",
        moderate(ModAction::DevilsAdvocate),
    ),
    bind(
        &[ctrl('e')],
        "Ctrl-E",
        "end the debate now and write the report",
        moderate(ModAction::AskEnd),
    ),
    hinted_when(
        &[ctrl('a')],
        "Ctrl-A",
        "the audience's questions (--live-questions): accept, edit or reject",
        ("^A", "audience"),
        moderate(ModAction::OpenAudience),
        has_audience,
    ),
];

/// Who speaks next: the debate's personas.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Floor {
    pub selected: usize,
}

pub static FLOOR: &[Binding] = &[
    bind(
        &[key(KeyCode::Up), ch('k')],
        "↑ k",
        "move up",
        moderate(ModAction::Up),
    ),
    bind(
        &[key(KeyCode::Down), ch('j')],
        "↓ j",
        "move down",
        moderate(ModAction::Down),
    ),
    hinted(
        &[key(KeyCode::Enter)],
        "Enter",
        "give them the floor: they speak next",
        ("Enter", "speaks next"),
        moderate(ModAction::Choose),
    ),
    hinted(
        &[key(KeyCode::Esc)],
        "Esc",
        "close",
        ("Esc", "close"),
        Action::CloseOverlay,
    ),
];

/// A question for the panel: typed, or an audience question being edited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ask {
    pub text: String,
    /// The audience question this came from.
    pub audience: Option<u64>,
}

pub static ASK: &[Binding] = &[
    hinted(
        &[key(KeyCode::Enter)],
        "Enter",
        "put the question to the panel",
        ("Enter", "ask"),
        moderate(ModAction::Key(FormKey::Save)),
    ),
    bind(
        &[key(KeyCode::Backspace)],
        "Backspace",
        "delete a character",
        moderate(ModAction::Key(FormKey::Backspace)),
    ),
    hinted(
        &[key(KeyCode::Esc)],
        "Esc",
        "close without asking",
        ("Esc", "cancel"),
        Action::CloseOverlay,
    ),
];

/// The audience's questions, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Audience {
    pub selected: usize,
}

pub static AUDIENCE: &[Binding] = &[
    bind(
        &[key(KeyCode::Up), ch('k')],
        "↑ k",
        "move up",
        moderate(ModAction::Up),
    ),
    bind(
        &[key(KeyCode::Down), ch('j')],
        "↓ j",
        "move down",
        moderate(ModAction::Down),
    ),
    hinted(
        &[key(KeyCode::Enter), ch('a')],
        "Enter a",
        "accept: the question goes to the panel as the moderator's",
        ("Enter", "accept"),
        moderate(ModAction::Choose),
    ),
    hinted(
        &[ch('e')],
        "e",
        "edit it, then ask it",
        ("e", "edit"),
        moderate(ModAction::Edit),
    ),
    hinted(
        &[ch('x'), key(KeyCode::Delete)],
        "x Del",
        "reject it: nobody sees it",
        ("x", "reject"),
        moderate(ModAction::Reject),
    ),
    hinted(
        &[key(KeyCode::Esc)],
        "Esc",
        "close (the questions wait)",
        ("Esc", "close"),
        Action::CloseOverlay,
    ),
];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfirmEnd;

pub static CONFIRM_END: &[Binding] = &[
    hinted(
        &[ch('y'), key(KeyCode::Enter)],
        "y Enter",
        "end now; the report follows",
        ("y", "end"),
        moderate(ModAction::ConfirmEnd),
    ),
    hinted(
        &[ch('n'), key(KeyCode::Esc)],
        "n Esc",
        "go on debating",
        ("n", "go on"),
        Action::CloseOverlay,
    ),
];

impl View for Floor {
    fn bindings(&self) -> &'static [Binding] {
        FLOOR
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        let personas = debate_personas(app);
        let height = (personas.len() as u16 + 2).min(area.height);
        let area = popup(frame, area, 52, height);
        let lines: Vec<Line> = personas
            .iter()
            .enumerate()
            .map(|(i, (id, name))| {
                let marker = if i == self.selected { "▶ " } else { "  " };
                let style = ratatui::style::Style::new().fg(theme::speaker_color(*id));
                let style = if i == self.selected {
                    style.add_modifier(Modifier::REVERSED)
                } else {
                    style
                };
                Line::from(vec![Span::raw(marker), Span::styled(name.clone(), style)])
            })
            .collect();
        frame.render_widget(
            Paragraph::new(lines).block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(theme::key())
                    .title(" Who speaks next? ")
                    .title_bottom(hint_text(FLOOR)),
            ),
            area,
        );
    }
}

impl View for Ask {
    fn bindings(&self) -> &'static [Binding] {
        ASK
    }

    fn other_key(&self, key: &KeyEvent) -> Routed {
        match key.code {
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                Routed::Action(moderate(ModAction::Key(FormKey::Char(c))))
            }
            _ => Routed::Swallow,
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect, _app: &App) {
        let width = area.width.saturating_sub(8).clamp(20, 90);
        let area = popup(frame, area, width, 6);
        let title = match self.audience {
            Some(_) => " Audience question (edit, then Enter) ",
            None => " Question to the panel ",
        };
        let count = format!(" {}/{MAX_QUESTION_CHARS} ", self.text.chars().count());
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::raw(self.text.clone()),
                Span::styled("▏", theme::key()),
            ]))
            .wrap(Wrap { trim: false })
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(theme::key())
                    .title(title)
                    .title_bottom(Line::from(hint_text(ASK)))
                    .title_bottom(Line::from(count).right_aligned()),
            ),
            area,
        );
    }
}

impl View for Audience {
    fn bindings(&self) -> &'static [Binding] {
        AUDIENCE
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        let width = area.width.saturating_sub(8).clamp(20, 100);
        let height = (app.audience.len() as u16 * 2 + 2).clamp(4, area.height);
        let area = popup(frame, area, width, height);
        let mut lines = Vec::new();
        if app.audience.is_empty() {
            lines.push(Line::styled(" No questions waiting", theme::dim()));
        }
        for (i, q) in app.audience.iter().enumerate() {
            let style = if i == self.selected {
                theme::key().add_modifier(Modifier::REVERSED)
            } else {
                theme::key()
            };
            lines.push(Line::from(vec![
                Span::styled(format!(" #{} ", q.id), style),
                // The text is one line of plain characters (see Feed::ask):
                // no escape sequence reaches the terminal.
                Span::raw(format!(" {}", q.text)),
            ]));
        }
        frame.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(theme::key())
                    .title(format!(
                        " Audience questions: {} waiting ",
                        app.audience.len()
                    ))
                    .title_bottom(hint_text(AUDIENCE)),
            ),
            area,
        );
    }
}

impl View for ConfirmEnd {
    fn bindings(&self) -> &'static [Binding] {
        CONFIRM_END
    }

    fn draw(&self, frame: &mut Frame, area: Rect, _app: &App) {
        draw_question(
            frame,
            area,
            " End the debate ",
            "End the debate now and write the report? y ends · n goes on",
        );
    }
}

/// The running debate's personas (id, name), in speaking order.
fn debate_personas(app: &App) -> Vec<(u32, String)> {
    app.session
        .as_ref()
        .map(|s| s.personas.iter().map(|p| (p.id, p.name.clone())).collect())
        .unwrap_or_default()
}

impl App {
    /// An audience question arrived (from the live page).
    pub fn on_audience_question(&mut self, mut question: AudienceQuestion) {
        // Already plain (Feed::ask), and made so again: nothing a viewer
        // typed can move the cursor or restyle the terminal.
        question.text = one_line(&question.text);
        self.audience.push(question);
        self.dirty = true;
        let waiting = self.audience.len();
        self.set_notice(
            NoticeLevel::Info,
            format!("Audience question waiting ({waiting}): Ctrl-A to accept, edit or reject"),
        );
    }

    /// Audience questions waiting for the moderator.
    pub fn audience(&self) -> &[AudienceQuestion] {
        &self.audience
    }

    pub(crate) fn on_moderate(&mut self, action: ModAction) -> Option<Effect> {
        let top = self.overlays.last().cloned();
        match (action, top) {
            (ModAction::Up, Some(Overlay::Floor(_))) => self.move_in_floor(-1),
            (ModAction::Down, Some(Overlay::Floor(_))) => self.move_in_floor(1),
            (ModAction::Up, Some(Overlay::Audience(_))) => self.move_in_audience(-1),
            (ModAction::Down, Some(Overlay::Audience(_))) => self.move_in_audience(1),
            (ModAction::Choose, Some(Overlay::Floor(floor))) => {
                self.overlays.pop();
                let id = debate_personas(self).get(floor.selected)?.0;
                return self.command(Command::Floor { persona_id: id });
            }
            (ModAction::Choose, Some(Overlay::Audience(audience))) => {
                let question = self.audience.get(audience.selected)?.clone();
                let effect = self.command(Command::Ask {
                    text: question.text,
                    audience: true,
                })?;
                self.take_audience(question.id);
                return Some(effect);
            }
            (ModAction::Edit, Some(Overlay::Audience(audience))) => {
                let question = self.audience.get(audience.selected)?.clone();
                self.open(Overlay::Ask(Ask {
                    text: question.text,
                    audience: Some(question.id),
                }));
            }
            (ModAction::Reject, Some(Overlay::Audience(audience))) => {
                let id = self.audience.get(audience.selected)?.id;
                self.take_audience(id);
                self.set_notice(
                    NoticeLevel::Info,
                    format!("Audience question #{id} rejected"),
                );
            }
            (ModAction::Key(key), Some(Overlay::Ask(ask))) => return self.ask_key(key, ask),
            (ModAction::ConfirmEnd, _) => {
                self.overlays
                    .retain(|o| !matches!(o, Overlay::ConfirmEnd(_)));
                return self.command(Command::End);
            }
            (ModAction::TogglePause, _) => {
                let command = if self.paused {
                    Command::Resume
                } else {
                    Command::Pause
                };
                return self.command(command);
            }
            (ModAction::Skip, _) => return self.command(Command::Skip),
            (ModAction::AddRound, _) => return self.command(Command::AddRound),
            (ModAction::DevilsAdvocate, _) => {
                return self.command(Command::DevilsAdvocate { persona_id: None });
            }
            (ModAction::OpenFloor, _) if self.can_moderate() => {
                self.open(Overlay::Floor(Floor::default()))
            }
            (ModAction::OpenAsk, _) if self.can_moderate() => {
                self.open(Overlay::Ask(Ask::default()))
            }
            (ModAction::AskEnd, _) if self.can_moderate() => {
                self.open(Overlay::ConfirmEnd(ConfirmEnd))
            }
            (ModAction::OpenAudience, _) => self.open(Overlay::Audience(Audience::default())),
            _ => {}
        }
        None
    }

    /// Whether moderator commands can go anywhere now; says why not.
    fn can_moderate(&mut self) -> bool {
        if moderating(self) {
            return true;
        }
        self.set_notice(
            NoticeLevel::Error,
            "The moderator's keys work while a debate runs (F5 starts one)",
        );
        false
    }

    fn command(&mut self, command: Command) -> Option<Effect> {
        if !self.can_moderate() {
            return None;
        }
        let personas = self
            .session
            .as_ref()
            .map(|s| s.personas.clone())
            .unwrap_or_default();
        if let Some(problem) = command.problem(&personas) {
            self.set_notice(NoticeLevel::Error, format!("Not sent: {problem}"));
            return None;
        }
        Some(Effect::Moderate(command))
    }

    fn ask_key(&mut self, key: FormKey, ask: Ask) -> Option<Effect> {
        let Some(Overlay::Ask(open)) = self.overlays.last_mut() else {
            return None;
        };
        match key {
            FormKey::Char(c) if open.text.chars().count() < MAX_QUESTION_CHARS => open.text.push(c),
            FormKey::Char(_) => self.set_notice(
                NoticeLevel::Error,
                format!("A question has at most {MAX_QUESTION_CHARS} characters"),
            ),
            FormKey::Backspace => {
                open.text.pop();
            }
            FormKey::Save => {
                let effect = self.command(Command::Ask {
                    text: ask.text,
                    audience: ask.audience.is_some(),
                })?;
                self.overlays.retain(|o| !matches!(o, Overlay::Ask(_)));
                if let Some(id) = ask.audience {
                    self.take_audience(id);
                }
                return Some(effect);
            }
            _ => {}
        }
        None
    }

    /// Takes an audience question out of the queue (accepted or rejected).
    fn take_audience(&mut self, id: u64) {
        self.audience.retain(|q| q.id != id);
        if let Some(Overlay::Audience(open)) = self.overlays.last_mut() {
            open.selected = open.selected.min(self.audience.len().saturating_sub(1));
        }
        if self.audience.is_empty() {
            self.overlays.retain(|o| !matches!(o, Overlay::Audience(_)));
        }
    }

    fn move_in_floor(&mut self, delta: isize) {
        let count = debate_personas(self).len();
        if let Some(Overlay::Floor(open)) = self.overlays.last_mut() {
            open.selected = step(open.selected, delta, count);
        }
    }

    fn move_in_audience(&mut self, delta: isize) {
        let count = self.audience.len();
        if let Some(Overlay::Audience(open)) = self.overlays.last_mut() {
            open.selected = step(open.selected, delta, count);
        }
    }
}

fn step(at: usize, delta: isize, count: usize) -> usize {
    at.saturating_add_signed(delta).min(count.saturating_sub(1))
}
