//! The rules of a persona, in one place for every face (TUI form, CLI,
//! synthesis, and the coming API): setting a field from what a user typed,
//! what is wrong with each field, the next free id, and merging personas
//! into a panel with taken ids renumbered.

use std::collections::HashSet;
use std::fmt;
use std::ops::RangeInclusive;

use serde_json::Value;

use super::{Persona, TechProficiency};

/// Longest name, in characters.
pub const MAX_NAME: usize = 80;
/// Longest occupation or location, in characters.
pub const MAX_TEXT: usize = 160;
/// Most behavioral traits a persona may have.
pub const MAX_TRAITS: usize = 20;
/// Longest bio, in characters (checked when a bio is set from text).
pub const MAX_BIO: usize = 600;
/// The plausible ages.
pub const AGES: RangeInclusive<u32> = 1..=120;

/// What is wrong with one field of a persona.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field's name as in the JSON file (`name`, `behavioral_traits`…),
    /// or the name a user typed for a field that could not be set.
    pub field: String,
    pub reason: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldProblem {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.reason)
    }
}

// ---------------------------------------------------------------------------
// Text to field
// ---------------------------------------------------------------------------

/// `low`, `Medium`, ` HIGH `…: any case, surrounding blanks ignored.
pub fn parse_proficiency(text: &str) -> Option<TechProficiency> {
    let text = text.trim();
    TechProficiency::ALL
        .into_iter()
        .find(|level| level.to_string().eq_ignore_ascii_case(text))
}

/// A ";"-separated list, each item trimmed, empty items dropped.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// An id typed by a user: a positive whole number.
pub fn parse_id(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err("must be a positive whole number".into()),
    }
}

/// Sets one field of `persona` from text a user typed and returns the
/// field's canonical name (`traits` is `behavioral_traits`).
///
/// - `name`, `occupation`, `location`: the text, trimmed.
/// - `tech_proficiency`: low, medium or high, in any case.
/// - `age`: a whole number; empty clears it.
/// - `behavioral_traits` (or `traits`), `goals`, `frustrations`: a
///   ";"-separated list, empty items dropped; an empty list removes goals
///   or frustrations.
/// - `bio`: the text, trimmed, at most [`MAX_BIO`] characters.
/// - any other name: an extra text field, trimmed.
/// - an empty value removes `bio` or an extra field.
/// - `id` cannot be set: ids are allocated ([`next_free_id`], [`merge`]).
///
/// On error the persona is unchanged. The values are not checked against
/// the panel's rules here: see [`field_problems`].
pub fn set_field(persona: &mut Persona, field: &str, text: &str) -> Result<String, FieldProblem> {
    let fail = |reason: String| FieldProblem::new(field, reason);
    let trimmed = text.trim();
    match field {
        "id" => return Err(fail("ids cannot be changed".into())),
        "name" => persona.name = trimmed.to_string(),
        "occupation" => persona.occupation = trimmed.to_string(),
        "location" => persona.location = trimmed.to_string(),
        "tech_proficiency" => {
            persona.tech_proficiency = parse_proficiency(text)
                .ok_or_else(|| fail(format!("{text:?} is not Low, Medium or High")))?;
        }
        "age" => {
            persona.age = match trimmed {
                "" => None,
                digits => Some(
                    digits
                        .parse()
                        .map_err(|_| fail(format!("{text:?} is not a whole number")))?,
                ),
            }
        }
        "behavioral_traits" | "traits" => {
            persona.behavioral_traits = split_list(text);
            return Ok("behavioral_traits".into());
        }
        "goals" | "frustrations" => {
            let items = split_list(text);
            if items.is_empty() {
                persona.extra.remove(field);
            } else {
                persona.extra.insert(field.into(), Value::from(items));
            }
        }
        "bio" if trimmed.chars().count() > MAX_BIO => {
            return Err(fail(format!("longer than {MAX_BIO} characters")));
        }
        other if trimmed.is_empty() => {
            persona.extra.remove(other);
        }
        other => {
            persona
                .extra
                .insert(other.into(), Value::String(trimmed.into()));
        }
    }
    Ok(field.to_string())
}

// ---------------------------------------------------------------------------
// Problems
// ---------------------------------------------------------------------------

/// Every rule this persona breaks, at most one per field, in field order
/// (id, name, occupation, location, behavioral_traits, age): a positive
/// id; non-empty name, occupation and location within their lengths; at
/// most [`MAX_TRAITS`] traits, none empty; an age in [`AGES`]. Whether the
/// id is unique is a question for the panel ([`super::validate_panel`]).
pub fn field_problems(p: &Persona) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    if p.id == 0 {
        problems.push(FieldProblem::new("id", "must be a positive integer"));
    }
    for (field, value, max) in [
        ("name", &p.name, MAX_NAME),
        ("occupation", &p.occupation, MAX_TEXT),
        ("location", &p.location, MAX_TEXT),
    ] {
        if value.trim().is_empty() {
            problems.push(FieldProblem::new(field, "must not be empty"));
        } else if value.chars().count() > max {
            problems.push(FieldProblem::new(
                field,
                format!("longer than {max} characters"),
            ));
        }
    }
    if p.behavioral_traits.len() > MAX_TRAITS {
        problems.push(FieldProblem::new(
            "behavioral_traits",
            format!("more than {MAX_TRAITS} traits"),
        ));
    } else if let Some(t) = p.behavioral_traits.iter().find(|t| t.trim().is_empty()) {
        problems.push(FieldProblem::new(
            "behavioral_traits",
            format!("empty trait {t:?} is not allowed"),
        ));
    }
    if let Some(age) = p.age
        && !AGES.contains(&age)
    {
        problems.push(FieldProblem::new(
            "age",
            format!("{age} is not a plausible age"),
        ));
    }
    problems
}

// ---------------------------------------------------------------------------
// Ids
// ---------------------------------------------------------------------------

/// The id after the highest one in `panel` (1 for an empty panel).
pub fn next_free_id(panel: &[Persona]) -> u32 {
    panel
        .iter()
        .map(|p| p.id)
        .max()
        .unwrap_or(0)
        .saturating_add(1)
}

/// How [`merge`] chose the id of one incoming persona.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdChoice {
    /// Its own id was free: kept.
    Kept,
    /// It had no id (0) and got this one.
    Assigned(u32),
    /// Its id was taken, by the panel or an earlier incoming persona, and
    /// it got this one.
    Renumbered { from: u32, to: u32 },
}

/// Appends `incoming` to `panel`, in order. A persona keeps its id if no
/// persona before it has it; one without an id (0) or with a taken id gets
/// a new one, counting up from the highest id in the panel and in
/// `incoming`. Returns one [`IdChoice`] per incoming persona, in order.
pub fn merge(panel: &mut Vec<Persona>, incoming: Vec<Persona>) -> Vec<IdChoice> {
    let mut next = panel
        .iter()
        .chain(&incoming)
        .map(|p| p.id)
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    let mut taken: HashSet<u32> = panel.iter().map(|p| p.id).collect();
    let mut choices = Vec::with_capacity(incoming.len());
    for mut persona in incoming {
        let choice = if persona.id == 0 || taken.contains(&persona.id) {
            let from = persona.id;
            persona.id = next;
            next = next.saturating_add(1);
            if from == 0 {
                IdChoice::Assigned(persona.id)
            } else {
                IdChoice::Renumbered {
                    from,
                    to: persona.id,
                }
            }
        } else {
            IdChoice::Kept
        };
        taken.insert(persona.id);
        panel.push(persona);
        choices.push(choice);
    }
    choices
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::testing::{panel, persona};
    use crate::persona::validate_panel;

    fn set(p: &mut Persona, field: &str, text: &str) -> Result<String, String> {
        set_field(p, field, text).map_err(|e| e.to_string())
    }

    #[test]
    fn proficiency_is_read_in_any_case() {
        for (text, level) in [
            ("Low", TechProficiency::Low),
            ("low", TechProficiency::Low),
            (" MEDIUM ", TechProficiency::Medium),
            ("hIGh", TechProficiency::High),
        ] {
            assert_eq!(parse_proficiency(text), Some(level), "{text:?}");
        }
        for text in ["", "Expert", "lo", "l ow"] {
            assert_eq!(parse_proficiency(text), None, "{text:?}");
        }
        let mut p = persona(1, "A", "B", "C");
        assert_eq!(
            set(&mut p, "tech_proficiency", "high").unwrap(),
            "tech_proficiency"
        );
        assert_eq!(p.tech_proficiency, TechProficiency::High);
        assert_eq!(
            set(&mut p, "tech_proficiency", "Expert").unwrap_err(),
            "field `tech_proficiency`: \"Expert\" is not Low, Medium or High"
        );
        assert_eq!(p.tech_proficiency, TechProficiency::High, "unchanged");
    }

    #[test]
    fn texts_are_trimmed() {
        let mut p = persona(1, "A", "B", "C");
        set(&mut p, "name", "  Ana  ").unwrap();
        set(&mut p, "occupation", "\tNurse ").unwrap();
        set(&mut p, "location", " Porto, Portugal").unwrap();
        assert_eq!(
            (p.name.as_str(), p.occupation.as_str(), p.location.as_str()),
            ("Ana", "Nurse", "Porto, Portugal")
        );
        // Empty is set as empty: field_problems says why that is wrong.
        set(&mut p, "name", "  ").unwrap();
        assert_eq!(
            field_problems(&p),
            [FieldProblem::new("name", "must not be empty")]
        );
    }

    #[test]
    fn age_is_a_whole_number_and_empty_clears_it() {
        let mut p = persona(1, "A", "B", "C");
        set(&mut p, "age", " 52 ").unwrap();
        assert_eq!(p.age, Some(52));
        assert_eq!(
            set(&mut p, "age", "old").unwrap_err(),
            "field `age`: \"old\" is not a whole number"
        );
        assert!(set(&mut p, "age", "-3").is_err());
        assert_eq!(p.age, Some(52));
        set(&mut p, "age", "").unwrap();
        assert_eq!(p.age, None);
    }

    #[test]
    fn lists_are_split_on_semicolons_and_empties_dropped() {
        assert_eq!(split_list(" a ; ;b;"), ["a", "b"]);
        assert!(split_list(" ; ").is_empty());
        let mut p = persona(1, "A", "B", "C");
        assert_eq!(
            set(&mut p, "traits", "calm; ;  careful ;").unwrap(),
            "behavioral_traits"
        );
        assert_eq!(p.behavioral_traits, ["calm", "careful"]);
        set(&mut p, "behavioral_traits", "").unwrap();
        assert!(p.behavioral_traits.is_empty());
        set(&mut p, "goals", "a;b").unwrap();
        set(&mut p, "frustrations", "c").unwrap();
        assert_eq!(p.extra["goals"], serde_json::json!(["a", "b"]));
        assert_eq!(p.extra["frustrations"], serde_json::json!(["c"]));
        set(&mut p, "goals", " ; ").unwrap();
        assert!(!p.extra.contains_key("goals"));
    }

    #[test]
    fn bio_and_other_extras_are_text_and_empty_removes_them() {
        let mut p = persona(1, "A", "B", "C");
        set(&mut p, "bio", " Sings. ").unwrap();
        set(&mut p, "mood", " grumpy").unwrap();
        assert_eq!(p.extra["bio"], "Sings.");
        assert_eq!(p.extra["mood"], "grumpy");
        assert_eq!(
            set(&mut p, "bio", &"x".repeat(MAX_BIO + 1)).unwrap_err(),
            "field `bio`: longer than 600 characters"
        );
        assert_eq!(p.extra["bio"], "Sings.", "unchanged");
        set(&mut p, "bio", &"é".repeat(MAX_BIO)).unwrap();
        set(&mut p, "bio", "").unwrap();
        set(&mut p, "mood", "  ").unwrap();
        assert!(p.extra.is_empty(), "{:?}", p.extra);
    }

    #[test]
    fn ids_are_allocated_not_set() {
        let mut p = persona(3, "A", "B", "C");
        assert_eq!(
            set(&mut p, "id", "4").unwrap_err(),
            "field `id`: ids cannot be changed"
        );
        assert_eq!(p.id, 3);
        assert_eq!(parse_id(" 7 "), Ok(7));
        for text in ["0", "", "x", "-1"] {
            assert_eq!(
                parse_id(text),
                Err("must be a positive whole number".into())
            );
        }
    }

    #[test]
    fn every_field_problem_is_reported_once() {
        let ok = panel(1).remove(0);
        assert!(field_problems(&ok).is_empty());
        let bad = Persona {
            id: 0,
            name: "x".repeat(MAX_NAME + 1),
            occupation: " \t".into(),
            location: "y".repeat(MAX_TEXT + 1),
            behavioral_traits: vec!["".into(); MAX_TRAITS + 1],
            age: Some(121),
            ..ok.clone()
        };
        let problems: Vec<String> = field_problems(&bad).iter().map(|p| p.to_string()).collect();
        assert_eq!(
            problems,
            [
                "field `id`: must be a positive integer",
                "field `name`: longer than 80 characters",
                "field `occupation`: must not be empty",
                "field `location`: longer than 160 characters",
                "field `behavioral_traits`: more than 20 traits",
                "field `age`: 121 is not a plausible age",
            ]
        );
        let limits = Persona {
            name: "é".repeat(MAX_NAME),
            behavioral_traits: vec!["t".into(); MAX_TRAITS],
            age: Some(120),
            ..ok.clone()
        };
        assert!(field_problems(&limits).is_empty());
        let empty_trait = Persona {
            behavioral_traits: vec!["a".into(), " ".into()],
            age: Some(0),
            ..ok
        };
        assert_eq!(
            field_problems(&empty_trait),
            [
                FieldProblem::new("behavioral_traits", "empty trait \" \" is not allowed"),
                FieldProblem::new("age", "0 is not a plausible age"),
            ]
        );
    }

    #[test]
    fn validate_panel_reports_the_first_field_problem() {
        let mut p = panel(1).remove(0);
        p.name = String::new();
        p.age = Some(500);
        let err = validate_panel(&[p]).unwrap_err().to_string();
        assert_eq!(err, "record 1 (id 1): field `name`: must not be empty");
    }

    #[test]
    fn the_next_free_id_follows_the_highest() {
        assert_eq!(next_free_id(&[]), 1);
        let mut ids = panel(3);
        ids[1].id = 9;
        assert_eq!(next_free_id(&ids), 10);
    }

    #[test]
    fn merge_keeps_free_ids_and_renumbers_taken_ones() {
        let mut target = panel(3);
        let incoming = vec![
            persona(3, "Taken", "B", "C"),
            persona(0, "No id", "B", "C"),
            persona(7, "Free", "B", "C"),
            persona(7, "Twice", "B", "C"),
        ];
        let choices = merge(&mut target, incoming);
        assert_eq!(
            choices,
            [
                IdChoice::Renumbered { from: 3, to: 8 },
                IdChoice::Assigned(9),
                IdChoice::Kept,
                IdChoice::Renumbered { from: 7, to: 10 },
            ]
        );
        let ids: Vec<u32> = target.iter().map(|p| p.id).collect();
        assert_eq!(ids, [1, 2, 3, 8, 9, 7, 10]);
        validate_panel(&target).unwrap();
        let mut empty = Vec::new();
        assert_eq!(
            merge(&mut empty, vec![persona(0, "A", "B", "C")]),
            [IdChoice::Assigned(1)]
        );
    }
}
