//! Generating personas with the LLM (i in the persona list): the brief and
//! count, then progress (the rest of the app stays usable), then, for a
//! batch, "add these?"; one persona opens in the form for review.

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Gauge, Paragraph, Wrap};

use super::persona_form::{FormMode, PersonaForm};
use super::{Overlay, Routed, View, hint_text, next_second, popup};
use crate::persona::ops::Change;
use crate::persona::{Persona, rules};
use crate::sim::synth::{Adapted, BatchResult, MAX_BATCH, SynthEvent};
use crate::text::truncate;
use crate::tui::action::{Action, Effect, FormKey, PanelAction};
use crate::tui::app::{App, Focus, NoticeLevel};
use crate::tui::keymap::{Binding, bind, ch, ctrl, hinted, key};
use crate::tui::theme;

/// The "generate personas" dialog and what follows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Generate {
    Asking {
        brief: String,
        count: String,
        /// 0: the brief, 1: the count.
        field: usize,
        error: Option<String>,
    },
    Running {
        count: usize,
        accepted: usize,
        failed: usize,
        retries: usize,
        last: String,
        started: Instant,
    },
    /// A batch finished: add the personas?
    Confirm {
        personas: Vec<Persona>,
        failed: Vec<(usize, String)>,
        /// How the batch adapted to a busy server, if it had to.
        adapted: Option<Adapted>,
    },
}

const fn synth_key(k: FormKey) -> Action {
    Action::Panel(PanelAction::Synth(k))
}

pub static ASKING: &[Binding] = &[
    hinted(
        &[
            key(KeyCode::Tab),
            key(KeyCode::BackTab),
            key(KeyCode::Down),
            key(KeyCode::Up),
        ],
        "Tab ↑↓",
        "switch between who and how many",
        ("Tab", "field"),
        synth_key(FormKey::Next),
    ),
    bind(
        &[key(KeyCode::Backspace)],
        "Backspace",
        "delete a character",
        synth_key(FormKey::Backspace),
    ),
    bind(
        &[ctrl('u')],
        "Ctrl-U",
        "clear the field",
        synth_key(FormKey::ClearField),
    ),
    hinted(
        &[key(KeyCode::Enter), ctrl('s')],
        "Enter",
        "generate (1: review it in the form; more: a varied batch, asked before adding)",
        ("Enter", "go"),
        synth_key(FormKey::Save),
    ),
    hinted(
        &[key(KeyCode::Esc)],
        "Esc",
        "cancel; while it runs, stop it (nothing is added)",
        ("Esc", "cancel"),
        synth_key(FormKey::Cancel),
    ),
];

/// While it runs only Esc is taken: the rest of the app stays usable.
static RUNNING: &[Binding] = &[hinted(
    &[key(KeyCode::Esc)],
    "Esc",
    "stop generating (nothing is added)",
    ("Esc", "stop generating"),
    synth_key(FormKey::Cancel),
)];

static CONFIRM: &[Binding] = &[
    hinted(
        &[ch('y'), key(KeyCode::Enter)],
        "y Enter",
        "add the generated personas",
        ("y", "add"),
        synth_key(FormKey::Yes),
    ),
    hinted(
        &[ch('n'), key(KeyCode::Esc)],
        "n Esc",
        "discard them",
        ("n", "discard"),
        synth_key(FormKey::No),
    ),
];

impl View for Generate {
    fn bindings(&self) -> &'static [Binding] {
        match self {
            Generate::Asking { .. } => ASKING,
            Generate::Running { .. } => RUNNING,
            Generate::Confirm { .. } => CONFIRM,
        }
    }

    fn modal(&self) -> bool {
        !matches!(self, Generate::Running { .. })
    }

    fn other_key(&self, key: &KeyEvent) -> Routed {
        match (self, key.code) {
            (Generate::Asking { .. }, KeyCode::Char(c))
                if !key.modifiers.contains(KeyModifiers::CONTROL) =>
            {
                Routed::Action(synth_key(FormKey::Char(c)))
            }
            _ => Routed::Swallow,
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        draw_generate(frame, area, self, app.now());
    }

    fn redraw_at(&self, now: Instant) -> Option<Instant> {
        match self {
            Generate::Running { started, .. } => Some(next_second(*started, now)),
            _ => None,
        }
    }
}

impl App {
    pub fn generate(&self) -> Option<&Generate> {
        self.overlays.iter().find_map(|o| match o {
            Overlay::Generate(g) => Some(g),
            _ => None,
        })
    }

    fn generate_mut(&mut self) -> Option<&mut Generate> {
        self.overlays.iter_mut().find_map(|o| match o {
            Overlay::Generate(g) => Some(g),
            _ => None,
        })
    }

    fn close_generate(&mut self) {
        self.overlays.retain(|o| !matches!(o, Overlay::Generate(_)));
    }

    /// Replaces the dialog's state in place (it keeps its place in the stack).
    fn set_generate(&mut self, state: Generate) {
        match self.generate_mut() {
            Some(g) => *g = state,
            None => self.open(Overlay::Generate(state)),
        }
    }

    /// `i`: open the dialog, unless a batch is already running.
    pub(crate) fn open_generate(&mut self) {
        if self.backend.is_none() || self.missing_model.is_some() {
            self.set_notice(NoticeLevel::Error, "No LLM backend to generate personas");
            return;
        }
        if matches!(self.generate(), Some(Generate::Running { .. })) {
            return;
        }
        self.open(Overlay::Generate(Generate::Asking {
            brief: String::new(),
            count: "1".into(),
            field: 0,
            error: None,
        }));
    }

    pub(crate) fn on_synth(&mut self, key: FormKey) -> Option<Effect> {
        match self.generate_mut()? {
            Generate::Asking {
                brief,
                count,
                field,
                error,
            } => match key {
                FormKey::Next | FormKey::Prev => *field = 1 - *field,
                FormKey::Char(c) if *field == 0 => brief.push(c),
                FormKey::Char(c) if c.is_ascii_digit() => count.push(c),
                FormKey::Char(_) => *error = Some("the count is a number".into()),
                FormKey::Backspace if *field == 0 => {
                    brief.pop();
                }
                FormKey::Backspace => {
                    count.pop();
                }
                FormKey::ClearField if *field == 0 => brief.clear(),
                FormKey::ClearField => count.clear(),
                FormKey::Cancel => self.close_generate(),
                FormKey::Save => {
                    let n: usize = count.trim().parse().unwrap_or(0);
                    if brief.trim().is_empty() {
                        *error = Some("describe who to generate".into());
                    } else if !(1..=MAX_BATCH).contains(&n) {
                        *error = Some(format!("the count must be 1 to {MAX_BATCH}"));
                    } else {
                        let brief = brief.trim().to_string();
                        self.set_generate(Generate::Running {
                            count: n,
                            accepted: 0,
                            failed: 0,
                            retries: 0,
                            last: String::new(),
                            started: self.now,
                        });
                        return Some(Effect::Synthesize {
                            brief,
                            count: n,
                            panel: self.personas.clone(),
                        });
                    }
                }
                _ => {}
            },
            Generate::Running { .. } => {
                if key == FormKey::Cancel {
                    self.close_generate();
                    self.set_notice(NoticeLevel::Info, "Generation cancelled");
                    return Some(Effect::CancelSynthesis);
                }
            }
            Generate::Confirm { personas, .. } => match key {
                FormKey::Yes | FormKey::Save => {
                    let added = std::mem::take(personas);
                    self.close_generate();
                    let n = added.len();
                    self.created += n;
                    // The panel may have changed meanwhile: taken ids are
                    // renumbered, here and again by the writer.
                    rules::merge(&mut self.personas, added.clone());
                    self.set_notice(NoticeLevel::Info, format!("Added {n} generated personas"));
                    return self.panel_changed(Change::Add(added));
                }
                FormKey::No | FormKey::Cancel => {
                    self.close_generate();
                    self.set_notice(NoticeLevel::Info, "Generated personas discarded");
                }
                _ => {}
            },
        }
        None
    }

    /// Progress of a running batch.
    pub fn on_synth_event(&mut self, event: SynthEvent) {
        self.dirty = true;
        if let Some(Generate::Running {
            accepted,
            failed,
            retries,
            last,
            ..
        }) = self.generate_mut()
        {
            match event {
                SynthEvent::Accepted { persona, .. } => {
                    *accepted += 1;
                    *last = format!("✓ {} · {}", persona.name, persona.occupation);
                }
                SynthEvent::Retrying { reason, .. } => {
                    *retries += 1;
                    *last = format!("↻ {reason}");
                }
                SynthEvent::Failed { index, reason } => {
                    *failed += 1;
                    *last = format!("✗ #{}: {reason}", index + 1);
                }
                SynthEvent::Slowed { at_a_time, reason } => {
                    *last = format!(
                        "↓ {reason}: now {at_a_time} request{} at a time",
                        if at_a_time == 1 { "" } else { "s" }
                    );
                }
            }
        }
    }

    /// One persona came back: show it in the form for review.
    pub fn on_synthesized(&mut self, result: Result<Persona, String>) {
        self.dirty = true;
        if !matches!(self.generate(), Some(Generate::Running { .. })) {
            return; // cancelled meanwhile
        }
        self.close_generate();
        match result {
            Ok(persona) => {
                self.open(Overlay::PersonaForm(PersonaForm::new(
                    FormMode::Review,
                    &persona,
                )));
                self.set_focus(Focus::Personas);
                self.set_notice(
                    NoticeLevel::Info,
                    "Review the generated persona: Enter saves it, Esc discards it",
                );
            }
            Err(e) => self.set_notice(NoticeLevel::Error, format!("Generation failed: {e}")),
        }
    }

    /// A batch finished: ask before adding.
    pub fn on_batch_done(&mut self, result: BatchResult) {
        self.dirty = true;
        if !matches!(self.generate(), Some(Generate::Running { .. })) {
            return;
        }
        if result.accepted.is_empty() {
            self.close_generate();
            let why = result
                .failed
                .first()
                .map(|(_, r)| r.as_str())
                .unwrap_or("no result");
            let adapted = result
                .adapted
                .map(|a| format!(" ({a})"))
                .unwrap_or_default();
            self.set_notice(
                NoticeLevel::Error,
                format!("No persona generated: {why}{adapted}"),
            );
            return;
        }
        self.set_generate(Generate::Confirm {
            personas: result.accepted,
            failed: result.failed,
            adapted: result.adapted,
        });
    }
}

fn draw_generate(frame: &mut Frame, area: Rect, synth: &Generate, now: Instant) {
    let width = area.width.saturating_sub(8).min(84);
    let block = |title: &str| {
        Block::default()
            .borders(Borders::ALL)
            .border_style(theme::key())
            .title(title.to_string())
    };
    match synth {
        Generate::Asking {
            brief,
            count,
            field,
            error,
        } => {
            let popup = popup(frame, area, width, 8);
            let cursor = |i: usize| if *field == i { "▌" } else { "" };
            let style = |i: usize| {
                if *field == i {
                    theme::key()
                } else {
                    theme::dim()
                }
            };
            let mut lines = vec![
                Line::from(vec![
                    Span::styled(" Who    ", style(0)),
                    Span::raw(truncate(brief, width as usize - 12)),
                    Span::styled(cursor(0), theme::key()),
                ]),
                Line::from(vec![
                    Span::styled(" How many ", style(1)),
                    Span::raw(count.clone()),
                    Span::styled(cursor(1), theme::key()),
                    Span::styled("  (1: review it first; more: a varied batch)", theme::dim()),
                ]),
                Line::default(),
            ];
            if let Some(e) = error {
                lines.push(Line::styled(format!(" {e}"), theme::error()));
            }
            lines.push(Line::styled(
                " e.g. \"retired farmer in Kenya who distrusts banking apps\"",
                theme::dim(),
            ));
            lines.push(Line::styled(hint_text(ASKING), theme::dim()));
            frame.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(block(" Generate personas with the LLM ")),
                popup,
            );
        }
        Generate::Running {
            count,
            accepted,
            failed,
            retries,
            last,
            started,
        } => {
            let popup = popup(frame, area, width, 7);
            let inner = block(" Generating ").inner(popup);
            frame.render_widget(block(" Generating "), popup);
            let [gauge, text] =
                Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
            let done = accepted + failed;
            frame.render_widget(
                Gauge::default()
                    .ratio((done as f64 / (*count).max(1) as f64).min(1.0))
                    .label(format!("{done} of {count}"))
                    .gauge_style(theme::good()),
                gauge,
            );
            frame.render_widget(
                Paragraph::new(vec![
                    Line::raw(format!(
                        " {accepted} kept · {failed} failed · {retries} retried · {}s",
                        now.saturating_duration_since(*started).as_secs()
                    )),
                    Line::styled(
                        format!(" {}", truncate(last, width as usize - 4)),
                        theme::dim(),
                    ),
                    Line::styled(" Esc cancels (nothing is added)", theme::dim()),
                ]),
                text,
            );
        }
        Generate::Confirm {
            personas,
            failed,
            adapted,
        } => {
            let mut lines: Vec<Line> = personas
                .iter()
                .take(12)
                .map(|p| {
                    Line::raw(truncate(
                        &format!(
                            " #{} {} · {} · {} · {}",
                            p.id, p.name, p.occupation, p.location, p.tech_proficiency
                        ),
                        width as usize - 2,
                    ))
                })
                .collect();
            if personas.len() > 12 {
                lines.push(Line::styled(
                    format!(" … and {} more", personas.len() - 12),
                    theme::dim(),
                ));
            }
            for (index, reason) in failed.iter().take(3) {
                lines.push(Line::styled(
                    truncate(&format!(" ✗ #{}: {reason}", index + 1), width as usize - 2),
                    theme::error(),
                ));
            }
            if let Some(adapted) = adapted {
                lines.push(Line::styled(
                    truncate(&format!(" ↓ {adapted}"), width as usize - 2),
                    theme::dim(),
                ));
            }
            lines.push(Line::default());
            lines.push(Line::styled(
                format!(
                    " Add {}? y/Enter adds · n discards ({} failed)",
                    if personas.len() == 1 {
                        "this persona".to_string()
                    } else {
                        format!("these {} personas", personas.len())
                    },
                    failed.len()
                ),
                theme::key(),
            ));
            let height = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
            let popup = popup(frame, area, width, height);
            frame.render_widget(
                Paragraph::new(lines).block(block(" Generated personas ")),
                popup,
            );
        }
    }
}
