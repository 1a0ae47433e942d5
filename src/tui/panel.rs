//! Managing the panel from the TUI: the live filter, the persona form,
//! delete with confirmation and a one-step undo, duplicate, LLM synthesis
//! (one persona for review, or a batch), stats and manual backups. Every
//! change returns `Effect::SavePanel`, which goes to the autosaver.

use std::time::Instant;

use crate::persona::Persona;
use crate::persona::rules;
use crate::persona::search::{Query, SearchIndex};
use crate::sim::synth::{BatchResult, MAX_BATCH, SynthEvent};

use super::action::{Effect, PanelAction};
use super::app::{App, Focus, NoticeLevel};
use super::form::{FormMode, PersonaForm};

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub text: String,
    /// Keys go to the filter text.
    pub editing: bool,
}

/// The "generate personas" dialog and what follows it.
#[derive(Debug, Clone, PartialEq)]
pub enum SynthUi {
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
    },
}

#[derive(Debug, Default)]
pub struct PanelUi {
    pub filter: Option<Filter>,
    /// Indices into `App::personas` shown in the list (all when no filter).
    pub visible: Vec<usize>,
    index: Option<SearchIndex>,
    pub form: Option<PersonaForm>,
    /// Asking "delete this persona?" for this id.
    pub confirm_delete: Option<u32>,
    /// The last deleted persona and where it was, for `u`.
    pub undo: Option<(usize, Persona)>,
    pub show_stats: bool,
    pub synth: Option<SynthUi>,
}

impl PanelUi {
    pub fn new(count: usize) -> PanelUi {
        PanelUi {
            visible: (0..count).collect(),
            ..PanelUi::default()
        }
    }

    /// Whether an overlay of this module takes the keys.
    pub fn has_overlay(&self) -> bool {
        self.form.is_some()
            || self.confirm_delete.is_some()
            || self.show_stats
            || self.synth.is_some()
    }
}

impl App {
    /// The persona under the cursor (through the filter).
    pub fn cursor_persona(&self) -> Option<&Persona> {
        let row = self.list.selected()?;
        self.personas.get(*self.panel.visible.get(row)?)
    }

    /// Recomputes the visible rows after the panel or the filter changed.
    pub fn refilter(&mut self) {
        let keep = self.cursor_persona().map(|p| p.id);
        self.panel.visible = match &self.panel.filter {
            Some(f) if !f.text.trim().is_empty() => {
                let index = self
                    .panel
                    .index
                    .get_or_insert_with(|| SearchIndex::new(&self.personas));
                index.filter(&self.personas, &Query::parse(&f.text))
            }
            _ => (0..self.personas.len()).collect(),
        };
        let row = keep
            .and_then(|id| {
                self.panel
                    .visible
                    .iter()
                    .position(|&i| self.personas[i].id == id)
            })
            .unwrap_or(0);
        self.list
            .select((!self.panel.visible.is_empty()).then_some(row));
    }

    /// The panel changed: drop the search index, refilter, save.
    fn panel_changed(&mut self) -> Option<Effect> {
        self.panel.index = None;
        self.refilter();
        Some(Effect::SavePanel(self.personas.clone()))
    }

    pub fn on_panel(&mut self, action: PanelAction) -> Option<Effect> {
        match action {
            PanelAction::FilterStart => {
                self.panel
                    .filter
                    .get_or_insert_with(Filter::default)
                    .editing = true;
            }
            PanelAction::FilterChar(c) => {
                if let Some(f) = &mut self.panel.filter {
                    f.text.push(c);
                }
                self.refilter();
            }
            PanelAction::FilterBackspace => {
                if let Some(f) = &mut self.panel.filter {
                    f.text.pop();
                }
                self.refilter();
            }
            PanelAction::FilterDone => {
                if let Some(f) = &mut self.panel.filter {
                    f.editing = false;
                    if f.text.trim().is_empty() {
                        self.panel.filter = None;
                    }
                }
            }
            PanelAction::FilterClear => {
                self.panel.filter = None;
                self.refilter();
            }
            PanelAction::New => {
                let blank = PersonaForm::blank(&self.personas);
                self.panel.form = Some(PersonaForm::new(FormMode::Add, &blank));
            }
            PanelAction::Edit => {
                if let Some(p) = self.cursor_persona() {
                    self.panel.form = Some(PersonaForm::new(FormMode::Edit, p));
                }
            }
            PanelAction::Duplicate => {
                if let Some(p) = self.cursor_persona() {
                    let mut copy = p.clone();
                    copy.id = rules::next_free_id(&self.personas);
                    copy.name = format!("{} (copy)", p.name);
                    let mut form = PersonaForm::new(FormMode::Add, &copy);
                    form.focus = 1;
                    self.panel.form = Some(form);
                }
            }
            PanelAction::Delete => {
                self.panel.confirm_delete = self.cursor_persona().map(|p| p.id);
            }
            PanelAction::CancelDelete => self.panel.confirm_delete = None,
            PanelAction::ConfirmDelete => {
                let id = self.panel.confirm_delete.take()?;
                let at = self.personas.iter().position(|p| p.id == id)?;
                let gone = self.personas.remove(at);
                self.selected.remove(&id);
                self.set_notice(
                    NoticeLevel::Info,
                    format!("Deleted #{} {}: u undoes", gone.id, gone.name),
                );
                self.panel.undo = Some((at, gone));
                return self.panel_changed();
            }
            PanelAction::Undo => {
                let Some((at, persona)) = self.panel.undo.take() else {
                    self.set_notice(NoticeLevel::Info, "Nothing to undo");
                    return None;
                };
                if self.personas.iter().any(|p| p.id == persona.id) {
                    self.set_notice(
                        NoticeLevel::Error,
                        format!("Cannot undo: id {} is taken again", persona.id),
                    );
                    return None;
                }
                let name = persona.name.clone();
                self.personas.insert(at.min(self.personas.len()), persona);
                self.set_notice(NoticeLevel::Info, format!("Restored {name}"));
                return self.panel_changed();
            }
            PanelAction::ToggleStats => self.panel.show_stats = !self.panel.show_stats,
            PanelAction::Generate => {
                if self.backend.is_none() || self.missing_model.is_some() {
                    self.set_notice(NoticeLevel::Error, "No LLM backend to generate personas");
                    return None;
                }
                if matches!(self.panel.synth, Some(SynthUi::Running { .. })) {
                    return None;
                }
                self.panel.synth = Some(SynthUi::Asking {
                    brief: String::new(),
                    count: "1".into(),
                    field: 0,
                    error: None,
                });
            }
            PanelAction::Backup => return Some(Effect::Backup),
            PanelAction::Form(key) => return self.on_form(key),
            PanelAction::Synth(key) => return self.on_synth(key),
        }
        None
    }

    fn on_form(&mut self, key: super::action::FormKey) -> Option<Effect> {
        use super::action::FormKey;
        let form = self.panel.form.as_mut()?;
        if form.confirm_discard {
            match key {
                FormKey::Yes => self.panel.form = None,
                FormKey::No | FormKey::Cancel => form.confirm_discard = false,
                _ => {}
            }
            return None;
        }
        match key {
            FormKey::Next => form.next(),
            FormKey::Prev => form.prev(),
            FormKey::Char(c) => form.type_char(c),
            FormKey::Backspace => form.backspace(),
            FormKey::ClearField => form.clear_field(),
            FormKey::Left => form.cycle(-1),
            FormKey::Right => form.cycle(1),
            FormKey::Cancel => {
                if form.changed() {
                    form.confirm_discard = true;
                } else {
                    self.panel.form = None;
                }
            }
            FormKey::Yes | FormKey::No => {}
            FormKey::Save => {
                let mode = form.mode;
                let editing = match mode {
                    FormMode::Edit => self.cursor_persona().map(|p| p.id),
                    _ => None,
                };
                let others: Vec<Persona> = self
                    .personas
                    .iter()
                    .filter(|p| Some(p.id) != editing)
                    .cloned()
                    .collect();
                let form = self.panel.form.as_mut()?;
                let Some(persona) = form.validate(&others) else {
                    self.set_notice(
                        NoticeLevel::Error,
                        "Not saved: fix the fields marked in red",
                    );
                    return None;
                };
                self.panel.form = None;
                let id = persona.id;
                let name = persona.name.clone();
                match editing.and_then(|old| self.personas.iter().position(|p| p.id == old)) {
                    Some(at) => {
                        let old = self.personas[at].id;
                        if old != id && self.selected.remove(&old) {
                            self.selected.insert(id);
                        }
                        self.personas[at] = persona;
                    }
                    None => self.personas.push(persona),
                }
                let verb = match mode {
                    FormMode::Edit => "Saved",
                    FormMode::Add => "Added",
                    FormMode::Review => "Added generated persona",
                };
                self.set_notice(NoticeLevel::Info, format!("{verb} #{id} {name}"));
                let effect = self.panel_changed();
                // Put the cursor on it (clearing a filter that hides it).
                if !self
                    .panel
                    .visible
                    .iter()
                    .any(|&i| self.personas[i].id == id)
                {
                    self.panel.filter = None;
                    self.refilter();
                }
                if let Some(row) = self
                    .panel
                    .visible
                    .iter()
                    .position(|&i| self.personas[i].id == id)
                {
                    self.list.select(Some(row));
                }
                if mode != FormMode::Edit {
                    self.created += 1;
                }
                return effect;
            }
        }
        None
    }

    fn on_synth(&mut self, key: super::action::FormKey) -> Option<Effect> {
        use super::action::FormKey;
        match self.panel.synth.as_mut()? {
            SynthUi::Asking {
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
                FormKey::Cancel => self.panel.synth = None,
                FormKey::Save => {
                    let n: usize = count.trim().parse().unwrap_or(0);
                    if brief.trim().is_empty() {
                        *error = Some("describe who to generate".into());
                    } else if !(1..=MAX_BATCH).contains(&n) {
                        *error = Some(format!("the count must be 1 to {MAX_BATCH}"));
                    } else {
                        let brief = brief.trim().to_string();
                        self.panel.synth = Some(SynthUi::Running {
                            count: n,
                            accepted: 0,
                            failed: 0,
                            retries: 0,
                            last: String::new(),
                            started: Instant::now(),
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
            SynthUi::Running { .. } => {
                if key == FormKey::Cancel {
                    self.panel.synth = None;
                    self.set_notice(NoticeLevel::Info, "Generation cancelled");
                    return Some(Effect::CancelSynthesis);
                }
            }
            SynthUi::Confirm { personas, .. } => match key {
                FormKey::Yes | FormKey::Save => {
                    let added = std::mem::take(personas);
                    self.panel.synth = None;
                    let n = added.len();
                    self.created += n;
                    // The panel may have changed meanwhile: taken ids are renumbered.
                    rules::merge(&mut self.personas, added);
                    self.set_notice(NoticeLevel::Info, format!("Added {n} generated personas"));
                    return self.panel_changed();
                }
                FormKey::No | FormKey::Cancel => {
                    self.panel.synth = None;
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
        if let Some(SynthUi::Running {
            accepted,
            failed,
            retries,
            last,
            ..
        }) = &mut self.panel.synth
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
            }
        }
    }

    /// One persona came back: show it in the form for review.
    pub fn on_synthesized(&mut self, result: Result<Persona, String>) {
        self.dirty = true;
        if !matches!(self.panel.synth, Some(SynthUi::Running { .. })) {
            return; // cancelled meanwhile
        }
        self.panel.synth = None;
        match result {
            Ok(persona) => {
                self.panel.form = Some(PersonaForm::new(FormMode::Review, &persona));
                self.set_focus_personas();
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
        if !matches!(self.panel.synth, Some(SynthUi::Running { .. })) {
            return;
        }
        if result.accepted.is_empty() {
            self.panel.synth = None;
            let why = result
                .failed
                .first()
                .map(|(_, r)| r.as_str())
                .unwrap_or("no result");
            self.set_notice(NoticeLevel::Error, format!("No persona generated: {why}"));
            return;
        }
        self.panel.synth = Some(SynthUi::Confirm {
            personas: result.accepted,
            failed: result.failed,
        });
    }

    fn set_focus_personas(&mut self) {
        self.set_focus(Focus::Personas);
    }
}
