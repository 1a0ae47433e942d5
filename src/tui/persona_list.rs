//! The persona list pane's state and commands: the live filter, delete with
//! a one-step undo, duplicate, and opening the persona dialogs (form,
//! stats, generate). A change shows at once and goes to the panel writer as
//! an `Effect::ChangePanel`; the writer's answer and the watcher's reloads
//! (other processes' changes) come back as a [`PanelMsg`], and the panel on
//! screen becomes the one on disk, keeping cursor, selection and filter.

use std::collections::{BTreeMap, HashSet};

use crate::persona::Persona;
use crate::persona::ops::{Applied, Change, PanelOpError};
use crate::persona::rules::{self, IdChoice};
use crate::persona::search::{Query, SearchIndex};
use crate::persona::writer::{WriteFailure, Written};

use super::action::{Effect, PanelAction, PanelMsg};
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
    /// Changes sent to the writer and not answered yet: reloads wait.
    pending_writes: usize,
    /// A reload came while changes were pending: read again after them.
    reload_missed: bool,
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
        self.refilter_keeping(keep, 0);
    }

    /// [`Self::refilter`], with the cursor on persona `keep` if still
    /// shown, else on row `fallback` (or the last).
    fn refilter_keeping(&mut self, keep: Option<u32>, fallback: usize) {
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
            .unwrap_or(fallback.min(self.persona_list.visible.len().saturating_sub(1)));
        self.list
            .select((!self.persona_list.visible.is_empty()).then_some(row));
    }

    /// The user changed the panel on screen: drop the search index,
    /// refilter, send the change to the writer.
    pub(crate) fn panel_changed(&mut self, change: Change) -> Option<Effect> {
        self.persona_list.index = None;
        self.refilter();
        self.persona_list.pending_writes += 1;
        Some(Effect::ChangePanel(Box::new(change)))
    }

    /// News from the panel writer or watcher. `true`: ask the watcher to
    /// read the file again (a reload was skipped while changes were pending).
    pub fn on_panel_msg(&mut self, msg: PanelMsg) -> bool {
        self.dirty = true;
        match msg {
            PanelMsg::Written(written) => {
                let list = &mut self.persona_list;
                list.pending_writes = list.pending_writes.saturating_sub(1);
                self.on_written(&written);
                if let Ok(Applied::Added(added)) = &written.result {
                    self.follow_renumbered(added);
                }
                if self.persona_list.pending_writes > 0 {
                    return false;
                }
                if let Some(panel) = written.panel {
                    self.adopt_panel(panel);
                }
                std::mem::take(&mut self.persona_list.reload_missed)
            }
            PanelMsg::Reloaded(panel) => {
                if self.persona_list.pending_writes > 0 {
                    self.persona_list.reload_missed = true;
                    return false;
                }
                if let Some(news) = describe_changes(&self.personas, &panel) {
                    self.set_notice(NoticeLevel::Info, news);
                }
                self.adopt_panel(panel);
                false
            }
        }
    }

    /// What the writer made of one change: only surprises are shown.
    fn on_written(&mut self, written: &Written) {
        for notice in &written.notices {
            self.set_notice(NoticeLevel::Info, notice.clone());
        }
        let text = match (&written.change, &written.result) {
            (_, Ok(Applied::Added(added))) => {
                let moved: Vec<String> = added
                    .iter()
                    .filter_map(|(p, choice)| match choice {
                        IdChoice::Renumbered { from, to } => Some(format!(
                            "#{to} {} (#{from} was taken by another process meanwhile)",
                            p.name
                        )),
                        _ => None,
                    })
                    .collect();
                if moved.is_empty() {
                    return;
                }
                (NoticeLevel::Info, format!("Added {}", moved.join(", ")))
            }
            (_, Ok(Applied::Edited { after, overwritten })) if !overwritten.is_empty() => (
                NoticeLevel::Info,
                format!(
                    "Saved #{} {}: your {} replaced a change another process made meanwhile",
                    after.id,
                    after.name,
                    overwritten.join(", ")
                ),
            ),
            (_, Ok(_)) => return,
            (
                Change::Edit { before, .. },
                Err(WriteFailure::Refused(PanelOpError::NoSuchId(_))),
            ) => (
                NoticeLevel::Error,
                format!(
                    "Not saved: #{} {} was deleted by another process",
                    before.id, before.name
                ),
            ),
            (Change::Reinsert { persona, .. }, Err(WriteFailure::Refused(e))) => (
                NoticeLevel::Error,
                format!("Cannot undo the delete of {}: {e}", persona.name),
            ),
            (_, Err(WriteFailure::Refused(e))) => (NoticeLevel::Error, format!("Not saved: {e}")),
            (_, Err(WriteFailure::Store(e))) => (NoticeLevel::Error, format!("Save failed: {e}")),
        };
        self.set_notice(text.0, text.1);
    }

    /// The writer gave an added persona another id (another process took
    /// its id meanwhile): renumber it on screen too, so the cursor and the
    /// selection stay on it.
    fn follow_renumbered(&mut self, added: &[(Persona, IdChoice)]) {
        for (persona, choice) in added {
            let IdChoice::Renumbered { from, to } = *choice else {
                continue;
            };
            if let Some(local) = self
                .personas
                .iter_mut()
                .find(|p| p.id == from && p.name == persona.name)
            {
                local.id = to;
                if self.selected.remove(&from) {
                    self.selected.insert(to);
                }
            }
        }
    }

    /// Shows `panel` (the file's) in place of the one on screen, keeping
    /// the cursor's persona, the selection that still exists and the filter.
    fn adopt_panel(&mut self, panel: Vec<Persona>) {
        if panel == self.personas {
            return;
        }
        let ids: HashSet<u32> = panel.iter().map(|p| p.id).collect();
        self.selected.retain(|id| ids.contains(id));
        // Taken before the panel changes: the rows point into the old one.
        let keep = self.cursor_persona().map(|p| p.id);
        let row = self.list.selected().unwrap_or(0);
        self.personas = panel;
        self.persona_list.index = None;
        self.refilter_keeping(keep, row);
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
                return self.panel_changed(Change::Remove(id));
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
                self.personas
                    .insert(at.min(self.personas.len()), persona.clone());
                self.set_notice(NoticeLevel::Info, format!("Restored {name}"));
                return self.panel_changed(Change::Reinsert { at, persona });
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

/// "#15 Ana added by another process", or for more than one change
/// "3 personas changed by another process (1 added, 2 edited)"; `None`
/// when nothing changed.
pub fn describe_changes(old: &[Persona], new: &[Persona]) -> Option<String> {
    let before: BTreeMap<u32, &Persona> = old.iter().map(|p| (p.id, p)).collect();
    let after: BTreeMap<u32, &Persona> = new.iter().map(|p| (p.id, p)).collect();
    let added: Vec<&Persona> = new.iter().filter(|p| !before.contains_key(&p.id)).collect();
    let deleted: Vec<&Persona> = old.iter().filter(|p| !after.contains_key(&p.id)).collect();
    let edited: Vec<(&Persona, &Persona)> = new
        .iter()
        .filter_map(|p| Some((*before.get(&p.id)?, p)))
        .filter(|(a, b)| a != b)
        .collect();
    let who = |p: &Persona| format!("#{} {}", p.id, p.name);
    let by = "by another process";
    Some(
        match (added.as_slice(), deleted.as_slice(), edited.as_slice()) {
            ([], [], []) => return None,
            ([p], [], []) => format!("{} added {by}", who(p)),
            ([], [p], []) => format!("{} deleted {by}", who(p)),
            ([], [], [(a, b)]) => {
                let fields = changed_fields(a, b);
                format!("{} changed {by} ({})", who(b), fields.join(", "))
            }
            _ => {
                let total = added.len() + deleted.len() + edited.len();
                let parts: Vec<String> = [
                    (added.len(), "added"),
                    (deleted.len(), "deleted"),
                    (edited.len(), "edited"),
                ]
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| format!("{n} {what}"))
                .collect();
                format!("{total} personas changed {by} ({})", parts.join(", "))
            }
        },
    )
}

/// The names of the fields that differ, as in the JSON file.
fn changed_fields(a: &Persona, b: &Persona) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(a), serde_json::to_value(b))
    else {
        return Vec::new();
    };
    let keys: std::collections::BTreeSet<&String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .collect();
    keys.into_iter().cloned().collect()
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
