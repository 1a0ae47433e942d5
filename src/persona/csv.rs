//! A panel as CSV and back: [`to_csv`] for `personas export`, and
//! [`csv_records`] (RFC 4180 parsing) for `personas import`, whose records
//! are then checked like JSON ones.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value;

use super::Persona;

/// The panel as CSV (RFC 4180 quoting, `\n` line endings, trailing newline):
/// the fixed columns, then one column per extra field found in any persona,
/// sorted by name. Traits are joined with "; ", extra strings are written
/// as-is and other extra values as compact JSON; absent values are empty.
pub fn to_csv(panel: &[Persona]) -> String {
    let extra_keys: BTreeSet<&str> = panel
        .iter()
        .flat_map(|p| p.extra.keys().map(String::as_str))
        .collect();
    let mut out =
        String::from("id,name,occupation,location,tech_proficiency,behavioral_traits,age");
    for key in &extra_keys {
        out.push(',');
        push_csv_field(&mut out, key);
    }
    out.push('\n');
    for p in panel {
        let _ = write!(out, "{}", p.id);
        for field in [&p.name, &p.occupation, &p.location] {
            out.push(',');
            push_csv_field(&mut out, field);
        }
        let _ = write!(out, ",{},", p.tech_proficiency);
        push_csv_field(&mut out, &p.behavioral_traits.join("; "));
        out.push(',');
        if let Some(age) = p.age {
            let _ = write!(out, "{age}");
        }
        for key in &extra_keys {
            out.push(',');
            match p.extra.get(*key) {
                Some(serde_json::Value::String(s)) => push_csv_field(&mut out, s),
                Some(value) => push_csv_field(&mut out, &value.to_string()),
                None => {}
            }
        }
        out.push('\n');
    }
    out
}

fn push_csv_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// A CSV file that cannot be read as a panel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CSV line {line}: {reason}")]
pub struct CsvError {
    pub line: usize,
    pub reason: String,
}

/// The columns a panel CSV must have (`id` and `age` may be left out).
const CSV_REQUIRED: [&str; 5] = [
    "name",
    "occupation",
    "location",
    "tech_proficiency",
    "behavioral_traits",
];

/// The records of a CSV in the format of [`to_csv`]: a header
/// row, then one persona a row. Traits are split on ";"; an empty cell
/// leaves the field out; an extra column's cell that is a JSON array,
/// object, number, boolean or null is read as that (the export writes
/// non-string extras as JSON), anything else as text. The values are not
/// checked here: see [`super::import::check_records`].
pub fn csv_records(text: &str) -> Result<Vec<Value>, CsvError> {
    let rows = parse_csv(text)?;
    let Some((_, header)) = rows.first() else {
        return Err(CsvError {
            line: 1,
            reason: "the file is empty (expected a header row: id,name,occupation,…)".into(),
        });
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    let missing: Vec<&str> = CSV_REQUIRED
        .into_iter()
        .filter(|c| !header.iter().any(|h| h == c))
        .collect();
    if !missing.is_empty() {
        return Err(CsvError {
            line: 1,
            reason: format!(
                "the header has no {} column (expected id,name,occupation,location,tech_proficiency,behavioral_traits,age, then any extra fields)",
                missing.join(", ")
            ),
        });
    }
    if let Some(dup) = header
        .iter()
        .enumerate()
        .find(|(i, h)| header[..*i].contains(h))
    {
        return Err(CsvError {
            line: 1,
            reason: format!("the header has the column {:?} twice", dup.1),
        });
    }
    let mut records = Vec::with_capacity(rows.len() - 1);
    for (line, cells) in &rows[1..] {
        if cells.len() != header.len() {
            return Err(CsvError {
                line: *line,
                reason: format!(
                    "{} cells where the header has {} columns",
                    cells.len(),
                    header.len()
                ),
            });
        }
        let mut record = serde_json::Map::new();
        for (column, cell) in header.iter().zip(cells) {
            let text_column = matches!(
                column.as_str(),
                "name" | "occupation" | "location" | "tech_proficiency" | "behavioral_traits"
            );
            if cell.is_empty() && !text_column {
                continue;
            }
            let value = match column.as_str() {
                "name" | "occupation" | "location" | "tech_proficiency" => {
                    Value::String(cell.clone())
                }
                "behavioral_traits" => Value::Array(
                    cell.split(';')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(|t| Value::String(t.to_string()))
                        .collect(),
                ),
                "id" | "age" => match cell.trim().parse::<serde_json::Number>() {
                    Ok(n) => Value::Number(n),
                    Err(_) => Value::String(cell.clone()),
                },
                _ => match serde_json::from_str::<Value>(cell) {
                    Ok(Value::String(_)) | Err(_) => Value::String(cell.clone()),
                    Ok(value) => value,
                },
            };
            record.insert(column.clone(), value);
        }
        records.push(Value::Object(record));
    }
    Ok(records)
}

/// RFC 4180: rows of cells, each with the line it starts on. Quoted cells
/// may hold commas, newlines and doubled quotes; CRLF and LF both end a
/// row; blank lines and a UTF-8 byte order mark are skipped.
fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut cell = String::new();
    let mut line = 1;
    let mut row_line = 1;
    let mut chars = text.chars().peekable();
    // Whether the current cell was quoted (it then ends at its closing quote).
    let mut quoted_cell = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if cell.is_empty() && !quoted_cell => {
                quoted_cell = true;
                let start = line;
                loop {
                    match chars.next() {
                        None => {
                            return Err(CsvError {
                                line: start,
                                reason: "a quoted cell is not closed".into(),
                            });
                        }
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            cell.push('"');
                        }
                        Some('"') => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            cell.push(c);
                        }
                    }
                }
                if !matches!(chars.peek(), None | Some(',' | '\n' | '\r')) {
                    return Err(CsvError {
                        line,
                        reason: "text after a closing quote (a quote inside a quoted cell is written \"\")".into(),
                    });
                }
            }
            ',' => {
                row.push(std::mem::take(&mut cell));
                quoted_cell = false;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                if !(row.is_empty() && cell.is_empty() && !quoted_cell) {
                    row.push(std::mem::take(&mut cell));
                    rows.push((row_line, std::mem::take(&mut row)));
                }
                quoted_cell = false;
                line += 1;
                row_line = line;
            }
            c => cell.push(c),
        }
    }
    if !(row.is_empty() && cell.is_empty() && !quoted_cell) {
        row.push(cell);
        rows.push((row_line, row));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::TechProficiency;
    use crate::persona::builtin_panel;
    use crate::persona::import::check_records;
    use crate::persona::testing::{panel, persona, with_traits};

    fn problems_of(checked: &crate::persona::import::CheckedRecords) -> Vec<String> {
        checked.problems.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut a = with_traits(
            persona(1, "Sarah O'Connor", "Baker, part-time", "Cork, Ireland"),
            &["says \"maybe\"", "plain"],
        );
        a.age = Some(39);
        a.extra.insert("bio".into(), "line one\nline two".into());
        a.extra.insert("score".into(), serde_json::json!(4.5));
        let mut b = persona(2, "Tom", "Plumber", "Leipzig");
        b.tech_proficiency = TechProficiency::Low;
        b.extra
            .insert("goals".into(), serde_json::json!(["fewer calls", "a, b"]));
        b.extra.insert("note".into(), "CR\rhere".into());
        let csv = to_csv(&[a, b]);
        assert_eq!(
            csv,
            "id,name,occupation,location,tech_proficiency,behavioral_traits,age,bio,goals,note,score\n\
             1,Sarah O'Connor,\"Baker, part-time\",\"Cork, Ireland\",Medium,\
             \"says \"\"maybe\"\"; plain\",39,\"line one\nline two\",,,4.5\n\
             2,Tom,Plumber,Leipzig,Low,,,,\"[\"\"fewer calls\"\",\"\"a, b\"\"]\",\"CR\rhere\",\n"
        );
    }

    #[test]
    fn csv_of_the_builtin_panel_has_one_row_per_persona() {
        let panel = builtin_panel();
        let csv = to_csv(&panel);
        assert!(csv.ends_with('\n'));
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), panel.len() + 1);
        assert_eq!(
            lines[0],
            "id,name,occupation,location,tech_proficiency,behavioral_traits,age"
        );
        assert_eq!(
            lines[1],
            "1,Maria Lopez,ICU nurse,\"Madrid, Spain\",Medium,time-poor on twelve-hour shifts; \
             values reliability over novelty; shares tips with colleagues on WhatsApp,38"
        );
        assert_eq!(
            to_csv(&[]),
            "id,name,occupation,location,tech_proficiency,behavioral_traits,age\n"
        );
    }

    #[test]
    fn csv_cells_follow_rfc_4180() {
        let rows = parse_csv("\u{feff}a,\"b,\"\"c\"\"\nd\",\r\n\n\"\",x\n").unwrap();
        assert_eq!(
            rows,
            [
                (1, vec!["a".to_string(), "b,\"c\"\nd".into(), "".into()]),
                (4, vec!["".to_string(), "x".into()]),
            ]
        );
        assert_eq!(
            parse_csv("a,b").unwrap(),
            [(1, vec!["a".to_string(), "b".into()])]
        );
        assert_eq!(parse_csv("").unwrap(), []);
        let err = parse_csv("a\n\"open,\nstill open").unwrap_err();
        assert_eq!(
            (err.line, err.reason.as_str()),
            (2, "a quoted cell is not closed")
        );
        let err = parse_csv("\"a\"b,c").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.reason.contains("after a closing quote"), "{err}");
    }

    #[test]
    fn the_csv_export_reads_back_as_the_same_panel() {
        let mut tricky = panel(3);
        tricky[0].name = "Ana \"Nana\" Silva, Jr.\nof Porto".into();
        tricky[0].occupation = "Nurse, night shift".into();
        tricky[1].age = None;
        tricky[1].behavioral_traits = Vec::new();
        tricky[2]
            .extra
            .insert("bio".into(), Value::from("Sings; \"loudly\""));
        tricky[2]
            .extra
            .insert("goals".into(), serde_json::json!(["a", "b, c"]));
        tricky[2].extra.insert("score".into(), Value::from(7));
        let checked = check_records(&csv_records(&to_csv(&tricky)).unwrap());
        assert!(checked.problems.is_empty(), "{:?}", checked.problems);
        let back: Vec<Persona> = checked.valid.into_iter().map(|v| v.persona).collect();
        assert_eq!(back, tricky);
    }

    #[test]
    fn csv_problems_name_the_line_and_column() {
        let err = csv_records("id,name,occupation\n1,a,b\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(
            err.to_string()
                .contains("no location, tech_proficiency, behavioral_traits column"),
            "{err}"
        );
        let header = "id,name,occupation,location,tech_proficiency,behavioral_traits,age";
        let err = csv_records(&format!("{header}\n1,a,b,c,Low,x,3\n2,a,b\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CSV line 3: 3 cells where the header has 7 columns"
        );
        let err = csv_records(&format!("{header},name\n")).unwrap_err();
        assert!(err.reason.contains("\"name\" twice"), "{err}");
        assert!(csv_records("").is_err());
        // Values are checked by check_records, with every problem.
        let records = csv_records(&format!("{header}\nx,,b,c,low,,abc\n,A,b,c,Low,,\n")).unwrap();
        let checked = check_records(&records);
        assert_eq!(
            problems_of(&checked),
            [
                "record 1: field `id`: invalid type: string \"x\", expected u32",
                "record 1: field `name`: must not be empty",
                "record 1: field `tech_proficiency`: unknown variant `low`, expected one of `Low`, `Medium`, `High`",
                "record 1: field `age`: invalid type: string \"abc\", expected u32",
            ]
        );
        assert_eq!(checked.valid.len(), 1);
        assert_eq!(checked.valid[0].persona.id, 0);
    }
}
