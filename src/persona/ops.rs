//! Panel operations: the changes a face makes to a panel (add, update,
//! remove; merging is [`rules::merge`]), on a plain `Vec<Persona>`, each
//! all-or-nothing and with the rules of [`super::rules`] applied. They run
//! inside [`super::store::change`], on the panel as it is on disk at that
//! moment. [`Change`] is the form an interactive face sends: what the user
//! did, so it can be applied to a panel another process changed meanwhile.

use serde_json::{Map, Value};

use super::Persona;
use super::rules::{self, FieldProblem, IdChoice};

/// Why a panel operation changed nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PanelOpError {
    #[error("no persona with id {0}")]
    NoSuchId(u32),
    #[error("id {id} is taken by #{id} {name}")]
    IdTaken { id: u32, name: String },
    /// Every problem, at most one per field.
    #[error("{}", problem_list(.0))]
    Invalid(Vec<FieldProblem>),
}

fn problem_list(problems: &[FieldProblem]) -> String {
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    lines.join("; ")
}

/// Adds `persona` at the end of the panel and returns its id: its own id
/// if it has one (it must be free), else the next free one (id 0).
pub fn add(panel: &mut Vec<Persona>, mut persona: Persona) -> Result<u32, PanelOpError> {
    if let Some(owner) = panel.iter().find(|p| persona.id != 0 && p.id == persona.id) {
        return Err(PanelOpError::IdTaken {
            id: owner.id,
            name: owner.name.clone(),
        });
    }
    if persona.id == 0 {
        persona.id = rules::next_free_id(panel);
    }
    let problems = rules::field_problems(&persona);
    if !problems.is_empty() {
        return Err(PanelOpError::Invalid(problems));
    }
    let id = persona.id;
    panel.push(persona);
    Ok(id)
}

/// What [`update`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Updated {
    pub before: Persona,
    pub after: Persona,
    /// The canonical names of the fields set, in order, without repeats
    /// (whether or not their value changed).
    pub fields: Vec<String>,
}

/// Sets fields of persona `id` from text, as (field, text) pairs applied in
/// order with [`rules::set_field`]; the changed persona must pass
/// [`rules::field_problems`]. Every problem is reported at once.
pub fn update(
    panel: &mut [Persona],
    id: u32,
    changes: &[(String, String)],
) -> Result<Updated, PanelOpError> {
    let at = panel
        .iter()
        .position(|p| p.id == id)
        .ok_or(PanelOpError::NoSuchId(id))?;
    let before = panel[at].clone();
    let mut after = before.clone();
    let mut problems = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    for (field, text) in changes {
        match rules::set_field(&mut after, field, text) {
            Ok(field) if !fields.contains(&field) => fields.push(field),
            Ok(_) => {}
            Err(problem) => problems.push(problem),
        }
    }
    // A field that could not be set keeps its old, valid value.
    problems.extend(rules::field_problems(&after));
    if !problems.is_empty() {
        return Err(PanelOpError::Invalid(problems));
    }
    panel[at] = after.clone();
    Ok(Updated {
        before,
        after,
        fields,
    })
}

/// Removes the personas with `ids` (a repeated id counts once) and returns
/// them in the order of `ids`; nothing is removed if an id is not there.
pub fn remove(panel: &mut Vec<Persona>, ids: &[u32]) -> Result<Vec<Persona>, PanelOpError> {
    let mut gone: Vec<u32> = Vec::new();
    for &id in ids {
        if !panel.iter().any(|p| p.id == id) {
            return Err(PanelOpError::NoSuchId(id));
        }
        if !gone.contains(&id) {
            gone.push(id);
        }
    }
    let removed = gone
        .iter()
        .filter_map(|id| panel.iter().find(|p| p.id == *id).cloned())
        .collect();
    panel.retain(|p| !gone.contains(&p.id));
    Ok(removed)
}

/// What a user did to the panel on screen, to be applied to the panel as
/// it is on disk (which other processes may have changed since).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// New personas (a form's, a generated batch); an id someone else took
    /// meanwhile is renumbered.
    Add(Vec<Persona>),
    /// A persona edited in a form opened on `before`: only the fields the
    /// user changed are set, so others' changes to other fields stay.
    Edit { before: Persona, after: Persona },
    /// Delete; a persona someone else deleted already is no error.
    Remove(u32),
    /// Undo of a delete: back at its place, unless its id is taken again.
    Reinsert { at: usize, persona: Persona },
}

/// What a [`Change`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// The personas added, with the id each got.
    Added(Vec<(Persona, IdChoice)>),
    Edited {
        after: Persona,
        /// Fields another process had changed since the form was opened
        /// that this edit set again: the later edit won.
        overwritten: Vec<String>,
    },
    /// `None`: it was already gone.
    Removed(Option<Persona>),
    Reinserted(Persona),
}

/// Applies `change` to `panel` (all or nothing).
pub fn apply(panel: &mut Vec<Persona>, change: &Change) -> Result<Applied, PanelOpError> {
    match change {
        Change::Add(personas) => {
            let first = panel.len();
            let choices = rules::merge(panel, personas.clone());
            if let Some(problems) = panel[first..]
                .iter()
                .map(rules::field_problems)
                .find(|p| !p.is_empty())
            {
                panel.truncate(first);
                return Err(PanelOpError::Invalid(problems));
            }
            Ok(Applied::Added(
                panel[first..].iter().cloned().zip(choices).collect(),
            ))
        }
        Change::Edit { before, after } => edit(panel, before, after),
        Change::Remove(id) => {
            let at = panel.iter().position(|p| p.id == *id);
            Ok(Applied::Removed(at.map(|at| panel.remove(at))))
        }
        Change::Reinsert { at, persona } => {
            if let Some(owner) = panel.iter().find(|p| p.id == persona.id) {
                return Err(PanelOpError::IdTaken {
                    id: owner.id,
                    name: owner.name.clone(),
                });
            }
            panel.insert((*at).min(panel.len()), persona.clone());
            Ok(Applied::Reinserted(persona.clone()))
        }
    }
}

/// A three-way merge of one persona, field by field: the fields that
/// differ between `before` and `after` are set on the persona as it is now.
fn edit(panel: &mut [Persona], before: &Persona, after: &Persona) -> Result<Applied, PanelOpError> {
    let at = panel
        .iter()
        .position(|p| p.id == before.id)
        .ok_or(PanelOpError::NoSuchId(before.id))?;
    if after.id != before.id
        && let Some(owner) = panel.iter().find(|p| p.id == after.id)
    {
        return Err(PanelOpError::IdTaken {
            id: owner.id,
            name: owner.name.clone(),
        });
    }
    let (base, mine, mut now) = (fields(before), fields(after), fields(&panel[at]));
    let mut overwritten = Vec::new();
    for key in base.keys().chain(mine.keys()) {
        let (old, new) = (base.get(key), mine.get(key));
        if old == new {
            continue;
        }
        let current = now.get(key);
        if current != old && current != new && !overwritten.contains(key) {
            overwritten.push(key.clone());
        }
        match new {
            Some(value) => now.insert(key.clone(), value.clone()),
            None => now.remove(key),
        };
    }
    let merged: Persona = serde_json::from_value(Value::Object(now))
        .map_err(|e| PanelOpError::Invalid(vec![FieldProblem::new("persona", e.to_string())]))?;
    let problems = rules::field_problems(&merged);
    if !problems.is_empty() {
        return Err(PanelOpError::Invalid(problems));
    }
    panel[at] = merged.clone();
    Ok(Applied::Edited {
        after: merged,
        overwritten,
    })
}

fn fields(persona: &Persona) -> Map<String, Value> {
    match serde_json::to_value(persona) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::testing::{panel, persona};

    fn changes(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn add_takes_the_next_free_id_or_a_free_one_given() {
        let mut p = panel(2);
        assert_eq!(add(&mut p, persona(0, "A", "B", "C")), Ok(3));
        assert_eq!(add(&mut p, persona(9, "A", "B", "C")), Ok(9));
        assert_eq!(
            add(&mut p, persona(2, "A", "B", "C"))
                .unwrap_err()
                .to_string(),
            "id 2 is taken by #2 Person 2"
        );
        assert_eq!(
            add(&mut p, persona(0, "", "B", "C"))
                .unwrap_err()
                .to_string(),
            "field `name`: must not be empty"
        );
        let ids: Vec<u32> = p.iter().map(|p| p.id).collect();
        assert_eq!(ids, [1, 2, 3, 9]);
    }

    #[test]
    fn update_is_all_or_nothing() {
        let mut p = panel(2);
        let done = update(
            &mut p,
            2,
            &changes(&[("tech_proficiency", "low"), ("traits", "a; b"), ("age", "")]),
        )
        .unwrap();
        assert_eq!(
            done.fields,
            ["tech_proficiency", "behavioral_traits", "age"]
        );
        assert_eq!(p[1], done.after);
        assert_eq!(p[1].behavioral_traits, ["a", "b"]);
        let before = p.clone();
        let err = update(&mut p, 2, &changes(&[("age", "x"), ("name", " ")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `age`: \"x\" is not a whole number; field `name`: must not be empty"
        );
        assert_eq!(p, before);
        assert_eq!(update(&mut p, 7, &[]), Err(PanelOpError::NoSuchId(7)));
    }

    #[test]
    fn an_edit_sets_only_the_fields_the_user_changed() {
        let mut disk = panel(2);
        let before = disk[1].clone();
        // Another process renamed #2 and changed its occupation.
        disk[1].name = "Renamed".into();
        disk[1].occupation = "Theirs".into();
        let mut after = before.clone();
        after.occupation = "Mine".into();
        after.location = "Lagos".into();
        let change = Change::Edit { before, after };
        let Applied::Edited { after, overwritten } = apply(&mut disk, &change).unwrap() else {
            panic!()
        };
        assert_eq!(after.name, "Renamed", "their change to another field stays");
        assert_eq!(after.occupation, "Mine", "the later edit wins");
        assert_eq!(after.location, "Lagos");
        assert_eq!(overwritten, ["occupation"]);
        assert_eq!(disk[1], after);
    }

    #[test]
    fn editing_a_deleted_persona_does_not_bring_it_back() {
        let mut disk = panel(3);
        let before = disk.remove(1);
        let mut after = before.clone();
        after.name = "Back?".into();
        let change = Change::Edit { before, after };
        assert_eq!(apply(&mut disk, &change), Err(PanelOpError::NoSuchId(2)));
        assert_eq!(disk.len(), 2);
    }

    #[test]
    fn adds_renumber_and_removes_and_reinserts_are_forgiving() {
        let mut disk = panel(3);
        let mut new = persona(3, "Mine", "B", "C");
        new.id = 3;
        let Applied::Added(added) = apply(&mut disk, &Change::Add(vec![new])).unwrap() else {
            panic!()
        };
        assert_eq!(added[0].0.id, 4);
        assert_eq!(added[0].1, IdChoice::Renumbered { from: 3, to: 4 });
        assert_eq!(
            apply(&mut disk, &Change::Remove(9)),
            Ok(Applied::Removed(None))
        );
        let gone = disk[0].clone();
        apply(&mut disk, &Change::Remove(1)).unwrap();
        let back = Change::Reinsert {
            at: 0,
            persona: gone.clone(),
        };
        apply(&mut disk, &back).unwrap();
        assert_eq!(disk[0], gone);
        assert!(matches!(
            apply(&mut disk, &back),
            Err(PanelOpError::IdTaken { id: 1, .. })
        ));
        let bad = Change::Add(vec![persona(0, "", "B", "C")]);
        assert!(apply(&mut disk, &bad).is_err());
        assert_eq!(disk.len(), 4);
    }

    #[test]
    fn remove_is_all_or_nothing() {
        let mut p = panel(4);
        assert_eq!(remove(&mut p, &[2, 9]), Err(PanelOpError::NoSuchId(9)));
        assert_eq!(p.len(), 4);
        let gone: Vec<u32> = remove(&mut p, &[3, 1, 3])
            .unwrap()
            .iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(gone, [3, 1]);
        let left: Vec<u32> = p.iter().map(|p| p.id).collect();
        assert_eq!(left, [2, 4]);
    }
}
