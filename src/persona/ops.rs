//! Panel operations: the changes a face makes to a panel (add, update,
//! remove; merging is [`rules::merge`]), on a plain `Vec<Persona>`, each
//! all-or-nothing and with the rules of [`super::rules`] applied. Faces load
//! and save the panel; these decide what the change is. The seam a shared
//! panel store and the HTTP API will call.

use super::Persona;
use super::rules::{self, FieldProblem};

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
