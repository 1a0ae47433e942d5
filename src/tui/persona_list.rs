//! The persona list pane's state and commands: the live filter, delete with
//! a one-step undo, duplicate, and opening the persona dialogs (form,
//! stats, generate). Every change returns `Effect::SavePanel`, which goes to
//! the autosaver.

use crate::persona::Persona;
use crate::persona::rules;
use crate::persona::search::{Query, SearchIndex};

use super::action::{Effect, PanelAction};
use super::app::{App, NoticeLevel};
use super::views::Overlay;
use super::views::confirm_delete::ConfirmDelete;
use super::views::persona_form::{FormMode, PersonaForm};
use super::views::stats::Stats;

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub text: String,
    /// Keys go to the filter text.
    pub editing: bool,
}

#[derive(Debug, Default)]
pub struct PersonaList {
    pub filter: Option<Filter>,
    /// Indices into `App::personas` shown in the list (all when no filter).
    pub visible: Vec<usize>,
    index: Option<SearchIndex>,
    /// The last deleted persona and where it was, for `u`.
    pub undo: Option<(usize, Persona)>,
}

impl PersonaList {
    pub fn new(count: usize) -> PersonaList {
        PersonaList {
            visible: (0..count).collect(),
            ..PersonaList::default()
        }
    }
}

impl App {
    /// The persona under the cursor (through the filter).
    pub fn cursor_persona(&self) -> Option<&Persona> {
        let row = self.list.selected()?;
        self.personas.get(*self.persona_list.visible.get(row)?)
    }

    /// Recomputes the visible rows after the panel or the filter changed.
    pub fn refilter(&mut self) {
        let keep = self.cursor_persona().map(|p| p.id);
        self.persona_list.visible = match &self.persona_list.filter {
            Some(f) if !f.text.trim().is_empty() => {
                let index = self
                    .persona_list
                    .index
                    .get_or_insert_with(|| SearchIndex::new(&self.personas));
                index.filter(&self.personas, &Query::parse(&f.text))
            }
            _ => (0..self.personas.len()).collect(),
        };
        let row = keep
            .and_then(|id| {
                self.persona_list
                    .visible
                    .iter()
                    .position(|&i| self.personas[i].id == id)
            })
            .unwrap_or(0);
        self.list
            .select((!self.persona_list.visible.is_empty()).then_some(row));
    }

    /// The panel changed: drop the search index, refilter, save.
    pub(crate) fn panel_changed(&mut self) -> Option<Effect> {
        self.persona_list.index = None;
        self.refilter();
        Some(Effect::SavePanel(self.personas.clone()))
    }

    pub fn on_panel(&mut self, action: PanelAction) -> Option<Effect> {
        match action {
            PanelAction::FilterStart => {
                self.persona_list
                    .filter
                    .get_or_insert_with(Filter::default)
                    .editing = true;
            }
            PanelAction::FilterChar(c) => {
                if let Some(f) = &mut self.persona_list.filter {
                    f.text.push(c);
                }
                self.refilter();
            }
            PanelAction::FilterBackspace => {
                if let Some(f) = &mut self.persona_list.filter {
                    f.text.pop();
                }
                self.refilter();
            }
            PanelAction::FilterDone => {
                if let Some(f) = &mut self.persona_list.filter {
                    f.editing = false;
                    if f.text.trim().is_empty() {
                        self.persona_list.filter = None;
                    }
                }
            }
            PanelAction::FilterClear => {
                self.persona_list.filter = None;
                self.refilter();
            }
            PanelAction::New => {
                let blank = PersonaForm::blank(&self.personas);
                self.open(Overlay::PersonaForm(PersonaForm::new(
                    FormMode::Add,
                    &blank,
                )));
            }
            PanelAction::Edit => {
                if let Some(p) = self.cursor_persona() {
                    let form = PersonaForm::new(FormMode::Edit, p);
                    self.open(Overlay::PersonaForm(form));
                }
            }
            PanelAction::Duplicate => {
                if let Some(p) = self.cursor_persona() {
                    let mut copy = p.clone();
                    copy.id = rules::next_free_id(&self.personas);
                    copy.name = format!("{} (copy)", p.name);
                    let mut form = PersonaForm::new(FormMode::Add, &copy);
                    form.focus = 1;
                    self.open(Overlay::PersonaForm(form));
                }
            }
            PanelAction::Delete => {
                if let Some(id) = self.cursor_persona().map(|p| p.id) {
                    self.open(Overlay::ConfirmDelete(ConfirmDelete { id }));
                }
            }
            PanelAction::CancelDelete => {
                self.close_confirm_delete();
            }
            PanelAction::ConfirmDelete => {
                let id = self.close_confirm_delete()?;
                let at = self.personas.iter().position(|p| p.id == id)?;
                let gone = self.personas.remove(at);
                self.selected.remove(&id);
                self.set_notice(
                    NoticeLevel::Info,
                    format!("Deleted #{} {}: u undoes", gone.id, gone.name),
                );
                self.persona_list.undo = Some((at, gone));
                return self.panel_changed();
            }
            PanelAction::Undo => {
                let Some((at, persona)) = self.persona_list.undo.take() else {
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
            PanelAction::ToggleStats => self.open(Overlay::Stats(Stats)),
            PanelAction::Generate => self.open_generate(),
            PanelAction::Backup => return Some(Effect::Backup),
            PanelAction::Form(key) => return self.on_form(key),
            PanelAction::Synth(key) => return self.on_synth(key),
        }
        None
    }
}

impl App {
    /// Closes the delete question; the id it asked about.
    fn close_confirm_delete(&mut self) -> Option<u32> {
        let at = self
            .overlays
            .iter()
            .position(|o| matches!(o, Overlay::ConfirmDelete(_)))?;
        match self.overlays.remove(at) {
            Overlay::ConfirmDelete(c) => Some(c.id),
            _ => None,
        }
    }

    /// A filter is being typed: keys go to its text.
    pub fn filter_editing(&self) -> bool {
        self.focus == super::app::Focus::Personas
            && self.persona_list.filter.as_ref().is_some_and(|f| f.editing)
    }
}
