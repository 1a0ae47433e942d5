//! Checking records for an import (`personas import`, `personas add`):
//! every problem of every record at once, where [`super::parse_panel`]
//! stops at the first. The records come from JSON ([`json_records`]) or
//! CSV ([`super::csv::csv_records`]).

use std::collections::HashMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::rules::field_problems;
use super::{PanelError, Persona, TechProficiency};

/// The records of a JSON file: an array, or `{"personas": [...]}`; with
/// `allow_single`, also one persona object.
pub fn json_records(text: &str, allow_single: bool) -> Result<Vec<Value>, PanelError> {
    let value: Value = serde_json::from_str(super::without_bom(text))
        .map_err(|e| PanelError::Syntax(e.to_string()))?;
    match value {
        Value::Array(items) => Ok(items),
        Value::Object(mut map) => match map.remove("personas") {
            Some(Value::Array(items)) => Ok(items),
            Some(other) if allow_single => {
                map.insert("personas".into(), other);
                Ok(vec![Value::Object(map)])
            }
            None if allow_single => Ok(vec![Value::Object(map)]),
            _ => Err(PanelError::NotAList),
        },
        _ => Err(PanelError::NotAList),
    }
}

/// A record that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRecord {
    /// 1-based position in the file.
    pub index: usize,
    /// The persona; its `id` is 0 when the record had none.
    pub persona: Persona,
}

/// Every record of an import, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckedRecords {
    pub valid: Vec<ValidRecord>,
    /// Every problem, in record order; a record may have several. Each is a
    /// [`PanelError::Record`]: "record N (id X): field `f`: reason".
    pub problems: Vec<PanelError>,
    /// How many records there were.
    pub total: usize,
}

impl CheckedRecords {
    /// The 1-based positions of the records with a problem.
    pub fn invalid_records(&self) -> Vec<usize> {
        let mut indices: Vec<usize> = self
            .problems
            .iter()
            .filter_map(|p| match p {
                PanelError::Record { index, .. } => Some(*index),
                _ => None,
            })
            .collect();
        indices.dedup();
        indices
    }
}

/// Checks every record and reports every problem, where
/// [`super::parse_panel`] stops at the first. The rules are
/// [`super::validate_panel`]'s: the field types (serde, field by field),
/// then [`field_problems`] (non-empty name, occupation and location, their
/// lengths, at most 20 traits, no empty trait, age 1..=120, a positive id),
/// and ids unique within the file. One difference: the id may be left out
/// (the persona then has id 0, for the caller to assign).
pub fn check_records(records: &[Value]) -> CheckedRecords {
    let mut checked = CheckedRecords {
        total: records.len(),
        ..Default::default()
    };
    let mut first_with_id: HashMap<u64, usize> = HashMap::new();
    for (i, record) in records.iter().enumerate() {
        let index = i + 1;
        let id = record.get("id").and_then(Value::as_u64);
        let fail = |field: &str, reason: String| PanelError::Record {
            index,
            id,
            field: field.to_string(),
            reason,
        };
        let mut problems: Vec<PanelError> = match check_record(record) {
            Ok(persona) => {
                checked.valid.push(ValidRecord { index, persona });
                Vec::new()
            }
            Err(problems) => problems
                .into_iter()
                .map(|(field, reason)| fail(&field, reason))
                .collect(),
        };
        if let Some(id) = id.filter(|&id| id > 0) {
            match first_with_id.get(&id) {
                Some(first) => problems.push(fail(
                    "id",
                    format!("duplicate id {id} (record {first} has it too)"),
                )),
                None => {
                    first_with_id.insert(id, index);
                }
            }
        }
        if !problems.is_empty() {
            checked.valid.retain(|v| v.index != index);
            checked.problems.extend(problems);
        }
    }
    checked
}

/// A field serde checks on its own: name, whether it is required, and a
/// valid stand-in for when it is not.
type RecordField = (&'static str, bool, fn() -> Value);

const RECORD_FIELDS: [RecordField; 7] = [
    ("id", false, || Value::from(1)),
    ("name", true, || Value::from("n")),
    ("occupation", true, || Value::from("o")),
    ("location", true, || Value::from("l")),
    ("tech_proficiency", true, || Value::from("Low")),
    ("behavioral_traits", true, || Value::Array(Vec::new())),
    ("age", false, || Value::Null),
];

/// Why serde rejects `value` as field `key`, if it does.
fn field_error(key: &str, value: &Value) -> Option<String> {
    fn check<T: DeserializeOwned>(value: &Value) -> Option<String> {
        T::deserialize(value).err().map(|e| e.to_string())
    }
    match key {
        "id" => check::<u32>(value),
        "tech_proficiency" => check::<TechProficiency>(value),
        "behavioral_traits" => check::<Vec<String>>(value),
        "age" => check::<Option<u32>>(value),
        _ => check::<String>(value),
    }
}

/// A record as a persona (id 0 when it has none), or every problem it has
/// as (field, reason), in field order. A field serde rejects is replaced by
/// a valid stand-in, so the rules still check all the others.
fn check_record(record: &Value) -> Result<Persona, Vec<(String, String)>> {
    let Some(map) = record.as_object() else {
        return Err(vec![(
            ".".into(),
            format!("expected a persona object, found {}", json_kind(record)),
        )]);
    };
    let mut problems: Vec<(String, String)> = Vec::new();
    let mut patched = map.clone();
    for (key, required, stand_in) in RECORD_FIELDS {
        let problem = match map.get(key) {
            None if required => Some(format!("missing field `{key}`")),
            None => None,
            Some(value) => field_error(key, value),
        };
        if let Some(reason) = problem {
            problems.push((key.into(), reason));
            patched.insert(key.into(), stand_in());
        }
    }
    let has_id = map.contains_key("id");
    if !has_id {
        patched.insert("id".into(), Value::from(1));
    }
    let mut persona = match Persona::deserialize(Value::Object(patched)) {
        Ok(persona) => persona,
        Err(e) => {
            problems.push((".".into(), e.to_string()));
            return Err(problems);
        }
    };
    problems.extend(
        field_problems(&persona)
            .into_iter()
            .map(|problem| (problem.field, problem.reason)),
    );
    let order = |field: &str| {
        RECORD_FIELDS
            .iter()
            .position(|(key, _, _)| *key == field)
            .unwrap_or(RECORD_FIELDS.len())
    };
    problems.sort_by_key(|(field, _)| order(field));
    if !problems.is_empty() {
        return Err(problems);
    }
    if !has_id {
        persona.id = 0;
    }
    Ok(persona)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::testing::panel;
    use crate::persona::validate_panel;

    fn record(id: u32) -> Value {
        serde_json::to_value(&panel(id)[id as usize - 1]).unwrap()
    }

    fn problems_of(checked: &CheckedRecords) -> Vec<String> {
        checked.problems.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn every_problem_of_every_record_is_reported() {
        let mut bad_name = record(2);
        bad_name["name"] = Value::from(" ");
        bad_name["tech_proficiency"] = Value::from("Expert");
        bad_name["age"] = Value::from(0);
        let mut no_id = record(4);
        no_id.as_object_mut().unwrap().remove("id");
        let records = vec![
            record(1),
            bad_name,
            serde_json::json!({"id": 3, "behavioral_traits": "x"}),
            no_id,
            record(1),
            Value::from("Ana"),
        ];
        let checked = check_records(&records);
        assert_eq!(checked.total, 6);
        assert_eq!(checked.invalid_records(), [2, 3, 5, 6]);
        let valid: Vec<(usize, u32)> = checked
            .valid
            .iter()
            .map(|v| (v.index, v.persona.id))
            .collect();
        assert_eq!(valid, [(1, 1), (4, 0)], "a record without an id is fine");
        assert_eq!(
            problems_of(&checked),
            [
                "record 2 (id 2): field `name`: must not be empty",
                "record 2 (id 2): field `tech_proficiency`: unknown variant `Expert`, expected one of `Low`, `Medium`, `High`",
                "record 2 (id 2): field `age`: 0 is not a plausible age",
                "record 3 (id 3): field `name`: missing field `name`",
                "record 3 (id 3): field `occupation`: missing field `occupation`",
                "record 3 (id 3): field `location`: missing field `location`",
                "record 3 (id 3): field `tech_proficiency`: missing field `tech_proficiency`",
                "record 3 (id 3): field `behavioral_traits`: invalid type: string \"x\", expected a sequence",
                "record 5 (id 1): field `id`: duplicate id 1 (record 1 has it too)",
                "record 6: field `.`: expected a persona object, found a string",
            ]
        );
    }

    #[test]
    fn the_rules_are_validate_panels_own() {
        let ok = panel(1).remove(0);
        let variants: Vec<Persona> = vec![
            ok.clone(),
            Persona {
                id: 0,
                ..ok.clone()
            },
            Persona {
                name: "".into(),
                ..ok.clone()
            },
            Persona {
                name: "x".repeat(81),
                ..ok.clone()
            },
            Persona {
                name: "é".repeat(80),
                ..ok.clone()
            },
            Persona {
                occupation: " \t".into(),
                ..ok.clone()
            },
            Persona {
                location: "y".repeat(161),
                ..ok.clone()
            },
            Persona {
                behavioral_traits: vec!["t".into(); 21],
                ..ok.clone()
            },
            Persona {
                behavioral_traits: vec!["t".into(); 20],
                ..ok.clone()
            },
            Persona {
                behavioral_traits: vec!["a".into(), " ".into()],
                ..ok.clone()
            },
            Persona {
                age: Some(0),
                ..ok.clone()
            },
            Persona {
                age: Some(121),
                ..ok.clone()
            },
            Persona {
                age: Some(120),
                ..ok.clone()
            },
            Persona {
                age: None,
                ..ok.clone()
            },
            Persona {
                name: "".into(),
                age: Some(500),
                ..ok.clone()
            },
        ];
        let problems_of_one = |p: &Persona| {
            check_record(&serde_json::to_value(p).unwrap())
                .err()
                .unwrap_or_default()
        };
        for p in &variants {
            let problems = problems_of_one(p);
            match validate_panel(std::slice::from_ref(p)) {
                Ok(()) => assert!(problems.is_empty(), "{p:?}: {problems:?}"),
                Err(PanelError::Record { field, reason, .. }) => {
                    assert_eq!(problems.first(), Some(&(field, reason)), "{p:?}")
                }
                Err(other) => panic!("{other}"),
            }
        }
        assert_eq!(problems_of_one(variants.last().unwrap()).len(), 2);
    }

    #[test]
    fn json_records_accept_the_panel_shapes() {
        assert_eq!(json_records("[]", false).unwrap(), Vec::<Value>::new());
        assert_eq!(
            json_records(r#"{"personas": [1]}"#, false).unwrap(),
            [Value::from(1)]
        );
        assert_eq!(
            json_records(r#"{"name": "A"}"#, false),
            Err(PanelError::NotAList)
        );
        assert_eq!(
            json_records(r#"{"name": "A"}"#, true).unwrap(),
            [serde_json::json!({"name": "A"})]
        );
        assert_eq!(json_records("3", true), Err(PanelError::NotAList));
        assert!(matches!(
            json_records("[", true),
            Err(PanelError::Syntax(_))
        ));
    }
}
