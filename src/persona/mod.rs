//! Personas: the model, its validation and the built-in panel.
//!
//! - [`rules`]: setting a field from text, per-field problems, ids, merging.
//! - [`store`]: the panel file (load with recovery; [`store::change`]:
//!   lock, re-read, apply, atomic write with a backup); [`writer`] applies
//!   a face's changes off its thread; [`watch`] notices other processes'
//!   changes; [`backup`] has manual backups and restore.
//! - [`ops`]: the panel operations faces call (add, update, remove, and
//!   [`ops::Change`], what a user did on screen).
//! - [`import`] checks records from JSON or [`csv`] files.
//! - [`search`], [`stats`], [`similar`]: reading a panel.

pub mod backup;
pub mod csv;
pub mod import;
pub mod ops;
pub mod panel_store;
pub mod rules;
pub mod search;
pub mod similar;
pub mod stats;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;
pub mod watch;
pub mod writer;

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// The panel that ships with the binary (the repo's `personas.json`).
pub const BUILTIN_PANEL_JSON: &str = include_str!("../../personas.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TechProficiency {
    Low,
    Medium,
    High,
}

impl TechProficiency {
    /// Every level, lowest first.
    pub const ALL: [TechProficiency; 3] = [
        TechProficiency::Low,
        TechProficiency::Medium,
        TechProficiency::High,
    ];
}

impl fmt::Display for TechProficiency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TechProficiency::Low => "Low",
            TechProficiency::Medium => "Medium",
            TechProficiency::High => "High",
        })
    }
}

/// A virtual persona. The seed's fields are required; everything else is
/// optional so a seed-format file always loads, and unknown fields are kept
/// (`extra`) so a save never drops data written by a newer version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Persona {
    pub id: u32,
    pub name: String,
    pub occupation: String,
    pub location: String,
    pub tech_proficiency: TechProficiency,
    pub behavioral_traits: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<u32>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Why a panel was rejected, naming the record and the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PanelError {
    #[error("not valid JSON: {0}")]
    Syntax(String),
    #[error("expected a JSON array of personas (or an object with a \"personas\" array)")]
    NotAList,
    #[error("record {index}{}: field `{field}`: {reason}", id_note(*.id))]
    Record {
        /// 1-based position in the file.
        index: usize,
        id: Option<u64>,
        field: String,
        reason: String,
    },
}

fn id_note(id: Option<u64>) -> String {
    id.map(|id| format!(" (id {id})")).unwrap_or_default()
}

/// `text` without a UTF-8 byte-order mark, which some Windows editors put
/// at the start of a file they save: valid JSON after it is still valid.
pub fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Parses and validates a panel from JSON text.
pub fn parse_panel(text: &str) -> Result<Vec<Persona>, PanelError> {
    let text = without_bom(text);
    // Fast path, straight into personas (a third of the time of going
    // through a `Value`: every locked change parses the whole panel). A
    // file it refuses is parsed again below, for an error naming the record.
    if let Some(personas) = parse_typed(text) {
        validate_panel(&personas)?;
        return Ok(personas);
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| PanelError::Syntax(e.to_string()))?;
    let records = match value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(mut map) => match map.remove("personas") {
            Some(serde_json::Value::Array(items)) => items,
            _ => return Err(PanelError::NotAList),
        },
        _ => return Err(PanelError::NotAList),
    };
    let mut personas = Vec::with_capacity(records.len());
    for (i, record) in records.into_iter().enumerate() {
        let id = record.get("id").and_then(|v| v.as_u64());
        let persona: Persona = serde_path_to_error::deserialize(record).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            // serde reports a missing field as "missing field `x`" at path ".".
            let field = match inner.strip_prefix("missing field `") {
                Some(rest) => rest.trim_end_matches('`').to_string(),
                None => path,
            };
            PanelError::Record {
                index: i + 1,
                id,
                field,
                reason: inner,
            }
        })?;
        personas.push(persona);
    }
    validate_panel(&personas)?;
    Ok(personas)
}

/// A panel file as a list, or as an object with a `personas` list; `None`
/// when it is neither or a record does not fit.
fn parse_typed(text: &str) -> Option<Vec<Persona>> {
    #[derive(Deserialize)]
    struct Wrapped {
        personas: Vec<Persona>,
    }
    match text.trim_start().as_bytes().first()? {
        b'[' => serde_json::from_str(text).ok(),
        b'{' => serde_json::from_str::<Wrapped>(text)
            .ok()
            .map(|w| w.personas),
        _ => None,
    }
}

/// Checks the rules serde cannot: each persona's fields
/// ([`rules::field_problems`]) and unique ids. Stops at the first problem.
pub fn validate_panel(personas: &[Persona]) -> Result<(), PanelError> {
    let mut seen = HashSet::new();
    for (i, p) in personas.iter().enumerate() {
        let fail = |problem: rules::FieldProblem| PanelError::Record {
            index: i + 1,
            id: Some(p.id as u64),
            field: problem.field,
            reason: problem.reason,
        };
        let mut problems = rules::field_problems(p).into_iter().peekable();
        if let Some(bad_id) = problems.next_if(|problem| problem.field == "id") {
            return Err(fail(bad_id));
        }
        if !seen.insert(p.id) {
            return Err(fail(rules::FieldProblem::new(
                "id",
                format!("duplicate id {}", p.id),
            )));
        }
        if let Some(problem) = problems.next() {
            return Err(fail(problem));
        }
    }
    Ok(())
}

/// The built-in panel; it is validated by a unit test, so this cannot fail.
pub fn builtin_panel() -> Vec<Persona> {
    parse_panel(BUILTIN_PANEL_JSON).expect("the built-in personas.json is valid")
}

/// Serialises a panel the way the store writes it: pretty, one record per block.
pub fn panel_to_json(personas: &[Persona]) -> String {
    let mut text = serde_json::to_string_pretty(personas).expect("personas serialise");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_panel_is_valid_and_varied() {
        let panel = builtin_panel();
        assert!(panel.len() >= 12);
        for level in [
            TechProficiency::Low,
            TechProficiency::Medium,
            TechProficiency::High,
        ] {
            assert!(panel.iter().any(|p| p.tech_proficiency == level));
        }
        let countries: HashSet<_> = panel
            .iter()
            .map(|p| p.location.rsplit(", ").next().unwrap())
            .collect();
        assert!(countries.len() >= 10, "{countries:?}");
    }

    #[test]
    fn seed_format_record_loads_and_unknown_fields_survive_a_round_trip() {
        let text = r#"[{"id":1,"name":"A","occupation":"B","location":"C",
            "tech_proficiency":"High","behavioral_traits":["x"],"mood":"grumpy"}]"#;
        let panel = parse_panel(text).unwrap();
        assert_eq!(panel[0].age, None);
        assert_eq!(panel[0].extra["mood"], "grumpy");
        let again = parse_panel(&panel_to_json(&panel)).unwrap();
        assert_eq!(again, panel);
    }

    #[test]
    fn a_byte_order_mark_before_valid_json_is_not_corruption() {
        let text = format!("\u{feff}{BUILTIN_PANEL_JSON}");
        assert_eq!(parse_panel(&text).unwrap(), builtin_panel());
    }

    #[test]
    fn object_wrapper_is_accepted() {
        let text = r#"{"personas":[{"id":1,"name":"A","occupation":"B","location":"C",
            "tech_proficiency":"Low","behavioral_traits":[]}]}"#;
        assert_eq!(parse_panel(text).unwrap().len(), 1);
    }

    fn record_error(text: &str) -> (usize, String, String) {
        match parse_panel(text).unwrap_err() {
            PanelError::Record {
                index,
                field,
                reason,
                ..
            } => (index, field, reason),
            other => panic!("expected a record error, got {other}"),
        }
    }

    #[test]
    fn errors_name_the_record_and_field() {
        let good = r#"{"id":1,"name":"A","occupation":"B","location":"C","tech_proficiency":"Low","behavioral_traits":[]}"#;
        let bad_level = r#"{"id":2,"name":"A","occupation":"B","location":"C","tech_proficiency":"Expert","behavioral_traits":[]}"#;
        let (index, field, reason) = record_error(&format!("[{good},{bad_level}]"));
        assert_eq!((index, field.as_str()), (2, "tech_proficiency"));
        assert!(reason.contains("Expert"), "{reason}");

        let missing =
            r#"{"id":3,"name":"A","location":"C","tech_proficiency":"Low","behavioral_traits":[]}"#;
        let (index, field, _) = record_error(&format!("[{missing}]"));
        assert_eq!((index, field.as_str()), (1, "occupation"));

        let empty_name = r#"{"id":3,"name":"  ","occupation":"B","location":"C","tech_proficiency":"Low","behavioral_traits":[]}"#;
        let (_, field, reason) = record_error(&format!("[{empty_name}]"));
        assert_eq!(field, "name");
        assert!(reason.contains("empty"));

        let (index, field, reason) = record_error(&format!("[{good},{good}]"));
        assert_eq!((index, field.as_str()), (2, "id"));
        assert!(reason.contains("duplicate"));

        let message = parse_panel(&format!("[{good},{bad_level}]"))
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("record 2 (id 2): field `tech_proficiency`"),
            "{message}"
        );
    }

    #[test]
    fn syntax_errors_and_wrong_shapes_are_reported() {
        assert!(matches!(parse_panel("[{"), Err(PanelError::Syntax(_))));
        assert_eq!(parse_panel("42"), Err(PanelError::NotAList));
    }
}
