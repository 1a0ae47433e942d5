//! The persona form: add, edit, or review a generated persona. Every seed
//! field, traits as a "; "-separated list, proficiency as a choice, and the
//! optional age, bio, goals and frustrations the debate prompts use. It is
//! validated as a whole on save, with the reason beside each bad field;
//! nothing is saved until it is valid.

use std::collections::BTreeMap;

use serde_json::Value;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::{Overlay, Routed, View, hint_text, popup};
use crate::persona::ops::Change;
use crate::persona::rules;
use crate::persona::{Persona, TechProficiency};
use crate::text::truncate;
use crate::tui::action::{Action, Effect, FormKey, PanelAction};
use crate::tui::app::{App, NoticeLevel};
use crate::tui::keymap::{Binding, bind, ch, ctrl, hinted, key};
use crate::tui::theme;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormMode {
    Add,
    Edit,
    /// A persona the LLM generated, shown for review before it is saved.
    Review,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Number,
    Choice,
    /// Values separated by ";".
    List,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub key: &'static str,
    pub label: &'static str,
    pub kind: FieldKind,
    pub value: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PersonaForm {
    pub mode: FormMode,
    pub fields: Vec<Field>,
    pub focus: usize,
    /// Asking "discard your changes?".
    pub confirm_discard: bool,
    /// The id being edited (its own id does not count as a duplicate).
    editing: Option<u32>,
    /// Extra fields the form does not show, kept as they were.
    other_extra: BTreeMap<String, Value>,
    initial: Vec<String>,
}

fn extra_text(p: &Persona, key: &str) -> String {
    match p.extra.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

impl PersonaForm {
    /// A form holding `persona` (for Add, a blank one with the next id).
    pub fn new(mode: FormMode, persona: &Persona) -> PersonaForm {
        let field = |key, label, kind, value: String| Field {
            key,
            label,
            kind,
            value,
            error: None,
        };
        let fields = vec![
            field("id", "Id", FieldKind::Number, persona.id.to_string()),
            field("name", "Name", FieldKind::Text, persona.name.clone()),
            field(
                "occupation",
                "Occupation",
                FieldKind::Text,
                persona.occupation.clone(),
            ),
            field(
                "location",
                "Location",
                FieldKind::Text,
                persona.location.clone(),
            ),
            field(
                "tech_proficiency",
                "Tech",
                FieldKind::Choice,
                persona.tech_proficiency.to_string(),
            ),
            field(
                "behavioral_traits",
                "Traits",
                FieldKind::List,
                persona.behavioral_traits.join("; "),
            ),
            field(
                "age",
                "Age",
                FieldKind::Number,
                persona.age.map(|a| a.to_string()).unwrap_or_default(),
            ),
            field("bio", "Bio", FieldKind::Text, extra_text(persona, "bio")),
            field(
                "goals",
                "Goals",
                FieldKind::List,
                extra_text(persona, "goals"),
            ),
            field(
                "frustrations",
                "Frustrations",
                FieldKind::List,
                extra_text(persona, "frustrations"),
            ),
        ];
        let mut other_extra = persona.extra.clone();
        for key in ["bio", "goals", "frustrations"] {
            other_extra.remove(key);
        }
        let initial = fields.iter().map(|f| f.value.clone()).collect();
        PersonaForm {
            mode,
            fields,
            // The name: the id is rarely what you came to change.
            focus: 1,
            confirm_discard: false,
            editing: (mode == FormMode::Edit).then_some(persona.id),
            other_extra,
            initial,
        }
    }

    /// A blank persona with the next free id, for Add.
    pub fn blank(panel: &[Persona]) -> Persona {
        Persona {
            id: rules::next_free_id(panel),
            name: String::new(),
            occupation: String::new(),
            location: String::new(),
            tech_proficiency: TechProficiency::Medium,
            behavioral_traits: Vec::new(),
            age: None,
            extra: BTreeMap::new(),
        }
    }

    /// The persona as the form showed it when opened (its first values
    /// read back), `None` if those were not valid.
    pub fn opened_as(&self) -> Option<Persona> {
        let mut first = self.clone();
        for (field, value) in first.fields.iter_mut().zip(&self.initial) {
            field.value = value.clone();
        }
        first.validate(&[])
    }

    /// A new persona keeps the id the form proposed only while it is free:
    /// if another process took it meanwhile (and the user did not type an
    /// id of their own), the next free one is proposed instead.
    pub fn refresh_proposed_id(&mut self, panel: &[Persona]) {
        if self.mode == FormMode::Edit {
            return;
        }
        let Some(at) = self.fields.iter().position(|f| f.key == "id") else {
            return;
        };
        let proposed = &self.initial[at];
        if self.fields[at].value != *proposed
            || !panel.iter().any(|p| p.id.to_string() == *proposed)
        {
            return;
        }
        let next = rules::next_free_id(panel).to_string();
        self.fields[at].value = next.clone();
        self.initial[at] = next;
    }

    pub fn changed(&self) -> bool {
        self.fields
            .iter()
            .zip(&self.initial)
            .any(|(f, v)| f.value != *v)
    }

    pub fn next(&mut self) {
        self.focus = (self.focus + 1) % self.fields.len();
    }

    pub fn prev(&mut self) {
        self.focus = (self.focus + self.fields.len() - 1) % self.fields.len();
    }

    pub fn type_char(&mut self, c: char) {
        let field = &mut self.fields[self.focus];
        match field.kind {
            FieldKind::Choice => {
                // First letter picks the level: l, m, h.
                if let Some(level) = TechProficiency::ALL
                    .iter()
                    .find(|l| l.to_string().starts_with(c.to_ascii_uppercase()))
                {
                    field.value = level.to_string();
                }
            }
            FieldKind::Number if !c.is_ascii_digit() => {
                field.error = Some("digits only".into());
                return;
            }
            _ => field.value.push(c),
        }
        field.error = None;
    }

    pub fn backspace(&mut self) {
        let field = &mut self.fields[self.focus];
        if field.kind != FieldKind::Choice {
            field.value.pop();
            field.error = None;
        }
    }

    /// Clears the focused field (Ctrl-U).
    pub fn clear_field(&mut self) {
        let field = &mut self.fields[self.focus];
        if field.kind != FieldKind::Choice {
            field.value.clear();
        }
    }

    /// Left/right on the proficiency choice.
    pub fn cycle(&mut self, step: isize) {
        let field = &mut self.fields[self.focus];
        if field.kind != FieldKind::Choice {
            return;
        }
        let current = TechProficiency::ALL
            .iter()
            .position(|l| l.to_string() == field.value)
            .unwrap_or(1) as isize;
        let next = (current + step).rem_euclid(TechProficiency::ALL.len() as isize) as usize;
        field.value = TechProficiency::ALL[next].to_string();
    }

    fn value(&self, key: &str) -> &str {
        self.fields
            .iter()
            .find(|f| f.key == key)
            .map(|f| f.value.trim())
            .unwrap_or("")
    }

    fn set_error(&mut self, key: &str, error: String) {
        if let Some(f) = self.fields.iter_mut().find(|f| f.key == key) {
            f.error = Some(error);
        }
    }

    /// The persona, if every field is valid with the rest of the panel;
    /// otherwise the reasons are put beside the fields and the focus moves
    /// to the first bad one. The parse rules and checks are the core's
    /// ([`rules::set_field`], [`rules::field_problems`]).
    pub fn validate(&mut self, panel: &[Persona]) -> Option<Persona> {
        for f in &mut self.fields {
            f.error = None;
        }
        let mut persona = PersonaForm::blank(&[]);
        persona.extra = self.other_extra.clone();
        match rules::parse_id(self.value("id")) {
            Err(reason) => self.set_error("id", reason),
            Ok(id) => {
                persona.id = id;
                if Some(id) != self.editing
                    && let Some(other) = panel.iter().find(|p| p.id == id)
                {
                    self.set_error(
                        "id",
                        format!("duplicate id: #{} is {}", other.id, other.name),
                    );
                }
            }
        }
        let keys: Vec<&'static str> = self.fields.iter().map(|f| f.key).collect();
        for key in keys.into_iter().filter(|&key| key != "id") {
            let text = self.value(key).to_string();
            if let Err(problem) = rules::set_field(&mut persona, key, &text) {
                self.set_error(key, problem.reason);
            }
        }
        // The panel's own rules (empty fields, lengths, traits, age range)
        // for the fields that parsed; the id was checked above.
        for problem in rules::field_problems(&persona) {
            if let Some(f) = self
                .fields
                .iter_mut()
                .find(|f| f.key == problem.field && f.key != "id" && f.error.is_none())
            {
                f.error = Some(problem.reason);
            }
        }
        if let Some(bad) = self.fields.iter().position(|f| f.error.is_some()) {
            self.focus = bad;
            return None;
        }
        Some(persona)
    }
}

const fn form_key(k: FormKey) -> Action {
    Action::Panel(PanelAction::Form(k))
}

pub static EDITING: &[Binding] = &[
    hinted(
        &[key(KeyCode::Tab), key(KeyCode::Down)],
        "Tab ↓",
        "next field",
        ("Tab/↑↓", "field"),
        form_key(FormKey::Next),
    ),
    bind(
        &[key(KeyCode::BackTab), key(KeyCode::Up)],
        "Shift-Tab ↑",
        "previous field",
        form_key(FormKey::Prev),
    ),
    hinted(
        &[key(KeyCode::Left)],
        "←",
        "previous proficiency level (or type l, m, h)",
        ("←→", "level"),
        form_key(FormKey::Left),
    ),
    bind(
        &[key(KeyCode::Right)],
        "→",
        "next proficiency level",
        form_key(FormKey::Right),
    ),
    bind(
        &[key(KeyCode::Backspace)],
        "Backspace",
        "delete a character",
        form_key(FormKey::Backspace),
    ),
    bind(
        &[ctrl('u')],
        "Ctrl-U",
        "clear the field",
        form_key(FormKey::ClearField),
    ),
    hinted(
        &[key(KeyCode::Enter), ctrl('s')],
        "Enter Ctrl-S",
        "save (lists are separated by ;)",
        ("Enter", "save"),
        form_key(FormKey::Save),
    ),
    hinted(
        &[key(KeyCode::Esc)],
        "Esc",
        "cancel (asks first when something changed)",
        ("Esc", "cancel"),
        form_key(FormKey::Cancel),
    ),
];

static DISCARD: &[Binding] = &[
    hinted(
        &[ch('y')],
        "y",
        "discard the changes",
        ("y", "discard"),
        form_key(FormKey::Yes),
    ),
    hinted(
        &[ch('n'), key(KeyCode::Esc)],
        "n Esc",
        "keep editing",
        ("n", "keep editing"),
        form_key(FormKey::No),
    ),
];

impl View for PersonaForm {
    fn bindings(&self) -> &'static [Binding] {
        if self.confirm_discard {
            DISCARD
        } else {
            EDITING
        }
    }

    fn other_key(&self, key: &KeyEvent) -> Routed {
        match key.code {
            KeyCode::Char(c)
                if !self.confirm_discard && !key.modifiers.contains(KeyModifiers::CONTROL) =>
            {
                Routed::Action(form_key(FormKey::Char(c)))
            }
            _ => Routed::Swallow,
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect, _app: &App) {
        draw_form(frame, area, self);
    }
}

impl App {
    pub fn form(&self) -> Option<&PersonaForm> {
        self.overlays.iter().find_map(|o| match o {
            Overlay::PersonaForm(f) => Some(f),
            _ => None,
        })
    }

    fn form_mut(&mut self) -> Option<&mut PersonaForm> {
        self.overlays.iter_mut().find_map(|o| match o {
            Overlay::PersonaForm(f) => Some(f),
            _ => None,
        })
    }

    fn close_form(&mut self) {
        self.overlays
            .retain(|o| !matches!(o, Overlay::PersonaForm(_)));
    }

    pub(crate) fn on_form(&mut self, key: FormKey) -> Option<Effect> {
        let form = self.form_mut()?;
        if form.confirm_discard {
            match key {
                FormKey::Yes => self.close_form(),
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
                    self.close_form();
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
                let form = self.form_mut()?;
                form.refresh_proposed_id(&others);
                let Some(persona) = form.validate(&others) else {
                    self.set_notice(
                        NoticeLevel::Error,
                        "Not saved: fix the fields marked in red",
                    );
                    return None;
                };
                // What the form showed at first, as a persona: an edit
                // sets only the fields the user changed from it.
                let opened_as = form.opened_as();
                self.close_form();
                let id = persona.id;
                let name = persona.name.clone();
                let change =
                    match editing.and_then(|old| self.personas.iter().position(|p| p.id == old)) {
                        Some(at) => {
                            let old = self.personas[at].id;
                            if old != id && self.selected.remove(&old) {
                                self.selected.insert(id);
                            }
                            self.personas[at] = persona.clone();
                            Change::Edit {
                                before: opened_as.unwrap_or_else(|| persona.clone()),
                                after: persona,
                            }
                        }
                        None => {
                            self.personas.push(persona.clone());
                            Change::Add(vec![persona])
                        }
                    };
                let verb = match mode {
                    FormMode::Edit => "Saved",
                    FormMode::Add => "Added",
                    FormMode::Review => "Added generated persona",
                };
                self.set_notice(NoticeLevel::Info, format!("{verb} #{id} {name}"));
                let effect = self.panel_changed(change);
                // Put the cursor on it (clearing a filter that hides it).
                if !self
                    .persona_list
                    .visible
                    .iter()
                    .any(|&i| self.personas[i].id == id)
                {
                    self.persona_list.filter = None;
                    self.refilter();
                }
                if let Some(row) = self
                    .persona_list
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
}

fn draw_form(frame: &mut Frame, area: Rect, form: &PersonaForm) {
    let width = area.width.saturating_sub(6).min(90);
    // The longest label, a space and the leading one: "Frustrations" ran
    // into its value at a fixed 13.
    let label_width = form
        .fields
        .iter()
        .map(|f| f.label.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    let value_width = (width as usize).saturating_sub(label_width + 4);
    let mut lines: Vec<Line> = Vec::new();
    for (i, field) in form.fields.iter().enumerate() {
        let focused = i == form.focus;
        let value = match field.kind {
            FieldKind::Choice => format!("◀ {} ▶", field.value),
            _ => field.value.clone(),
        };
        // The end of a long value stays in view while typing.
        let shown = if value.chars().count() > value_width.saturating_sub(1) {
            let skip = value.chars().count() + 2 - value_width;
            format!("…{}", value.chars().skip(skip).collect::<String>())
        } else {
            value
        };
        let label_style = if focused { theme::key() } else { theme::dim() };
        let mut spans = vec![
            Span::styled(
                format!(" {:<w$}", field.label, w = label_width - 1),
                label_style,
            ),
            Span::styled(
                shown,
                if focused {
                    Style::new().add_modifier(Modifier::BOLD)
                } else {
                    Style::new()
                },
            ),
        ];
        if focused && field.kind != FieldKind::Choice {
            spans.push(Span::styled("▌", theme::key()));
        }
        lines.push(Line::from(spans));
        if let Some(error) = &field.error {
            lines.push(Line::styled(
                format!(
                    "{:w$}↑ {}",
                    "",
                    truncate(error, value_width),
                    w = label_width
                ),
                theme::error(),
            ));
        }
    }
    lines.push(Line::default());
    let hint = if form.confirm_discard {
        Line::styled(
            " Discard your changes? y discards · n keeps editing",
            theme::error(),
        )
    } else {
        Line::styled(hint_text(EDITING), theme::dim())
    };
    lines.push(hint);
    let title = match form.mode {
        FormMode::Add => " New persona ",
        FormMode::Edit => " Edit persona ",
        FormMode::Review => " Generated persona: review, Enter saves, Esc discards ",
    };
    let height = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
    let popup = popup(frame, area, width, height);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme::key())
                .title(title),
        ),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::builtin_panel;

    fn fill(form: &mut PersonaForm, key: &str, text: &str) {
        form.focus = form.fields.iter().position(|f| f.key == key).unwrap();
        form.clear_field();
        for c in text.chars() {
            form.type_char(c);
        }
    }

    #[test]
    fn a_new_persona_is_validated_field_by_field() {
        let panel = builtin_panel();
        let mut form = PersonaForm::new(FormMode::Add, &PersonaForm::blank(&panel));
        assert_eq!(form.value("id"), "15");
        assert!(!form.changed());
        assert!(form.validate(&panel).is_none());
        let name = form.fields.iter().find(|f| f.key == "name").unwrap();
        assert_eq!(name.error.as_deref(), Some("must not be empty"));
        assert_eq!(form.focus, 1);
        fill(&mut form, "name", "Wanjiru Kamau");
        fill(&mut form, "occupation", "Retired farmer");
        fill(&mut form, "location", "Nyeri, Kenya");
        fill(&mut form, "behavioral_traits", "careful; ; saves cash");
        fill(&mut form, "age", "67");
        fill(&mut form, "goals", "safe savings");
        form.focus = 4;
        form.type_char('l');
        assert!(form.changed());
        let p = form.validate(&panel).expect("valid");
        assert_eq!(p.id, 15);
        assert_eq!(p.tech_proficiency, TechProficiency::Low);
        assert_eq!(p.behavioral_traits, ["careful", "saves cash"]);
        assert_eq!(p.extra["goals"], serde_json::json!(["safe savings"]));
        assert!(!p.extra.contains_key("bio"));
    }

    #[test]
    fn duplicate_ids_bad_ages_and_long_names_are_refused_with_reasons() {
        let panel = builtin_panel();
        let mut form = PersonaForm::new(FormMode::Edit, &panel[2]);
        assert!(form.validate(&panel).is_some(), "its own id is fine");
        fill(&mut form, "id", "1");
        fill(&mut form, "age", "300");
        assert!(form.validate(&panel).is_none());
        let errors: Vec<(&str, &str)> = form
            .fields
            .iter()
            .filter_map(|f| f.error.as_deref().map(|e| (f.key, e)))
            .collect();
        assert!(
            errors[0].0 == "id" && errors[0].1.contains("duplicate id: #1"),
            "{errors:?}"
        );
        fill(&mut form, "id", "3");
        fill(&mut form, "name", &"x".repeat(81));
        assert!(form.validate(&panel).is_none());
        let name = form.fields.iter().find(|f| f.key == "name").unwrap();
        assert!(name.error.as_deref().unwrap().contains("longer than 80"));
        form.focus = 6;
        form.type_char('x');
        assert_eq!(form.fields[6].error.as_deref(), Some("digits only"));
    }

    #[test]
    fn the_form_uses_the_core_rules() {
        let panel = builtin_panel();
        let mut form = PersonaForm::new(FormMode::Edit, &panel[0]);
        // Proficiency in any case, as on the command line.
        form.fields[4].value = "high".into();
        assert_eq!(
            form.validate(&panel).unwrap().tech_proficiency,
            TechProficiency::High
        );
        // Every bad field gets its reason, not only the first.
        fill(&mut form, "occupation", " ");
        fill(&mut form, "age", "0");
        fill(&mut form, "bio", &"b".repeat(601));
        assert!(form.validate(&panel).is_none());
        let errors: Vec<(&str, &str)> = form
            .fields
            .iter()
            .filter_map(|f| f.error.as_deref().map(|e| (f.key, e)))
            .collect();
        assert_eq!(
            errors,
            [
                ("occupation", "must not be empty"),
                ("age", "0 is not a plausible age"),
                ("bio", "longer than 600 characters"),
            ]
        );
        assert_eq!(form.focus, 2);
        fill(&mut form, "id", "0");
        assert!(form.validate(&panel).is_none());
        assert_eq!(
            form.fields[0].error.as_deref(),
            Some("must be a positive whole number")
        );
    }

    #[test]
    fn editing_keeps_fields_the_form_does_not_show() {
        let mut p = builtin_panel()[0].clone();
        p.extra.insert("mood".into(), serde_json::json!("grumpy"));
        p.extra
            .insert("bio".into(), serde_json::json!("Nurse for 20 years."));
        let mut form = PersonaForm::new(FormMode::Edit, &p);
        form.cycle(1);
        let saved = form.validate(&builtin_panel()).unwrap();
        assert_eq!(saved.extra["mood"], "grumpy");
        assert_eq!(saved.extra["bio"], "Nurse for 20 years.");
    }
}
