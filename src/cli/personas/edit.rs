//! Changing the panel by hand: `personas add` (records from a file or
//! stdin), `edit` (fields set from text) and `rm`, each all-or-nothing.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{anyhow, bail};
use serde_json::Value;

use super::{
    change, command_prefix, input_name, missing_id, position, problem_report, read_input,
    shell_word,
};
use crate::cli::UsageError;
use crate::cli::args::{AddArgs, EditArgs};
use crate::config::Settings;
use crate::persona::import;
use crate::persona::ops::{self, PanelOpError, Updated};
use crate::persona::rules;
use crate::persona::store::StorePaths;
use crate::persona::{PanelError, Persona};

pub(super) fn add(args: &AddArgs, paths: &StorePaths, out: &mut impl Write) -> anyhow::Result<()> {
    let name = input_name(&args.file);
    let records =
        import::json_records(&read_input(&args.file)?, true).map_err(|e| anyhow!("{name}: {e}"))?;
    if records.is_empty() {
        bail!("{name} holds no personas; nothing was added");
    }
    // Checked against the panel as it is under the lock, so an id another
    // process took a moment ago is refused too.
    let added = change(paths, |panel| {
        let mut checked = import::check_records(&records);
        let owners: HashMap<u32, &Persona> = panel.iter().map(|p| (p.id, p)).collect();
        for (i, record) in records.iter().enumerate() {
            let Some(id) = record.get("id").and_then(Value::as_u64) else {
                continue;
            };
            if let Some(owner) = u32::try_from(id).ok().and_then(|id| owners.get(&id)) {
                checked.problems.push(PanelError::Record {
                    index: i + 1,
                    id: Some(id),
                    field: "id".into(),
                    reason: format!(
                        "id {id} is taken by #{id} {} (leave the id out to get the next free one)",
                        owner.name
                    ),
                });
            }
        }
        if !checked.problems.is_empty() {
            // By record; a taken id first, as the id comes first in a record.
            checked.problems.sort_by_key(|p| match p {
                PanelError::Record { index, field, .. } => (*index, field != "id"),
                _ => (0, true),
            });
            let heading = format!(
                "{name}: {} of {} records are invalid; nothing was added",
                checked.invalid_records().len(),
                checked.total
            );
            bail!("{}", problem_report(&heading, &checked, ""));
        }
        let first_new = panel.len();
        // Taken ids were refused above: only records without an id get one.
        rules::merge(
            panel,
            checked.valid.into_iter().map(|r| r.persona).collect(),
        );
        Ok(panel[first_new..].to_vec())
    })?;
    for p in &added.value {
        writeln!(out, "added #{} {}", p.id, p.name)?;
    }
    Ok(())
}

/// A field value, for "before → after" lines.
fn shown(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "(none)".into(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            let items: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            format!("{:?}", items.join("; "))
        }
        Some(other) => other.to_string(),
    }
}

/// A persona's field as JSON, for showing what changed.
fn field_value(persona: &Persona, field: &str) -> Option<Value> {
    serde_json::to_value(persona).ok()?.get(field).cloned()
}

/// The fields `edit --set` knows; any other name is an extra text field.
const KNOWN_FIELDS: [&str; 11] = [
    "id",
    "name",
    "occupation",
    "location",
    "tech_proficiency",
    "age",
    "behavioral_traits",
    "traits",
    "goals",
    "frustrations",
    "bio",
];

/// A name one typo away from a known field is that field mistyped, not a
/// new extra field.
fn check_field_names(set: &[(String, String)]) -> Result<(), UsageError> {
    for (field, _) in set {
        if KNOWN_FIELDS.contains(&field.as_str()) {
            continue;
        }
        if let Some(known) = crate::config::nearest(field, KNOWN_FIELDS) {
            return Err(UsageError(format!(
                "--set {field}=…: unknown field {field:?}; did you mean `{known}`? Nothing was changed \
                 (fields: name, occupation, location, tech_proficiency, age, behavioral_traits, goals, \
                 frustrations, bio; another name adds an extra text field)"
            )));
        }
    }
    Ok(())
}

pub(super) fn edit(
    args: &EditArgs,
    paths: &StorePaths,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    check_field_names(&args.set)?;
    let changed = change(paths, |panel| {
        let at = position(panel, args.id, "; nothing was changed")?;
        match ops::update(panel, args.id, &args.set) {
            Ok(updated) => Ok(updated),
            Err(PanelOpError::Invalid(problems)) => {
                let before = &panel[at];
                let lines: Vec<String> = problems
                    .iter()
                    .map(|problem| format!("\n  {problem}"))
                    .collect();
                bail!(
                    "persona #{} {} was not changed:{}",
                    before.id,
                    before.name,
                    lines.concat()
                );
            }
            Err(other) => Err(other.into()),
        }
    })?;
    let Updated {
        before,
        after,
        fields,
    } = changed.value;
    if !changed.saved {
        writeln!(out, "#{} {}: nothing changed", after.id, after.name)?;
        return Ok(());
    }
    writeln!(out, "edited #{} {}", after.id, after.name)?;
    for field in fields {
        let (old, new) = (field_value(&before, &field), field_value(&after, &field));
        if old != new {
            writeln!(
                out,
                "  {field}: {} → {}",
                shown(old.as_ref()),
                shown(new.as_ref())
            )?;
        }
    }
    Ok(())
}

pub(super) fn rm(
    ids: &[u32],
    paths: &StorePaths,
    settings: &Settings,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let gone = change(paths, |panel| match ops::remove(panel, ids) {
        Ok(gone) => Ok(gone),
        Err(PanelOpError::NoSuchId(id)) => Err(missing_id(panel, id, "; nothing was deleted")),
        Err(other) => Err(other.into()),
    })?
    .value;
    for p in gone {
        writeln!(
            out,
            "deleted #{} {} ({}, {})",
            p.id, p.name, p.occupation, p.location
        )?;
    }
    let backup = paths.backup.display().to_string();
    eprintln!(
        "the panel before is kept in {backup}; `{} personas restore {}` brings it back",
        command_prefix(settings),
        shell_word(&backup)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_values_are_shown_readably() {
        assert_eq!(shown(None), "(none)");
        assert_eq!(shown(Some(&Value::from("Ana"))), "\"Ana\"");
        assert_eq!(shown(Some(&serde_json::json!(["a", "b"]))), "\"a; b\"");
        assert_eq!(shown(Some(&Value::from(41))), "41");
    }

    #[test]
    fn a_mistyped_field_is_refused_with_the_nearest_one() {
        let set = |field: &str| vec![(field.to_string(), "x".to_string())];
        let err = check_field_names(&set("ocupation"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"ocupation\"") && err.contains("`occupation`"),
            "{err}"
        );
        assert!(check_field_names(&set("tech_profficiency")).is_err());
        assert!(check_field_names(&set("occupation")).is_ok());
        assert!(
            check_field_names(&set("hobbies")).is_ok(),
            "a new extra field"
        );
    }
}
