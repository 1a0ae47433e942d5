//! A panel as CSV and back: [`to_csv`] for `personas export`, and
//! [`csv_records`] for `personas import`, whose records are then checked
//! like JSON ones. Quoting, CRLF and line counting are the `csv` crate's;
//! this module adds the panel's columns, a BOM skip and strict quotes.

use std::collections::BTreeSet;

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
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let header = [
        "id",
        "name",
        "occupation",
        "location",
        "tech_proficiency",
        "behavioral_traits",
        "age",
    ]
    .into_iter()
    .chain(extra_keys.iter().copied());
    // Writing to memory fails only on rows of different lengths, and every
    // row has one cell per header column.
    writer.write_record(header).expect(IN_MEMORY);
    for p in panel {
        let mut row = vec![
            p.id.to_string(),
            p.name.clone(),
            p.occupation.clone(),
            p.location.clone(),
            p.tech_proficiency.to_string(),
            p.behavioral_traits.join("; "),
            p.age.map(|age| age.to_string()).unwrap_or_default(),
        ];
        row.extend(extra_keys.iter().map(|key| match p.extra.get(*key) {
            Some(Value::String(s)) => s.clone(),
            Some(value) => value.to_string(),
            None => String::new(),
        }));
        writer.write_record(&row).expect(IN_MEMORY);
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| e.into_error())
        .expect(IN_MEMORY);
    String::from_utf8(bytes).expect("the CSV writer copies UTF-8 fields as they are")
}

const IN_MEMORY: &str = "writing CSV rows of equal length to memory cannot fail";

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
    check_quotes(text)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        // Rows of the wrong length are reported by csv_records, which
        // knows the header and says how many cells it expected.
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut lines = LineCounter::default();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = lines.record_start(text, record.position());
                rows.push((line, record.iter().map(str::to_string).collect()));
            }
            // The input is a &str (no UTF-8 errors) and rows may differ in
            // length, so this is not expected; it still names its line.
            Err(e) => {
                return Err(CsvError {
                    line: lines.record_start(text, e.position()),
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(rows)
}

/// The line a record starts on. The crate's record position is where the
/// previous record's input ended, before the blank lines it skips, so
/// its line number can be short of the row's own: count from the text,
/// once through, as the records come.
#[derive(Default)]
struct LineCounter {
    counted_to: usize,
    newlines: usize,
}

impl LineCounter {
    fn record_start(&mut self, text: &str, position: Option<&csv::Position>) -> usize {
        let bytes = text.as_bytes();
        let mut start = position.map_or(0, |p| p.byte() as usize).min(bytes.len());
        // No record starts with a line end: those are skipped blank lines.
        while matches!(bytes.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        if start > self.counted_to {
            self.newlines += bytes[self.counted_to..start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.counted_to = start;
        }
        self.newlines + 1
    }
}

/// The csv crate reads bad quoting leniently: an unclosed quote takes the
/// rest of the file into one cell, and `"a"b` becomes `ab`. Either is far
/// more likely a damaged file than meant, so it is refused with its line.
/// (A quote opens a quoted cell only at the cell's start, as in the crate.)
fn check_quotes(text: &str) -> Result<(), CsvError> {
    let mut line = 1;
    let mut cell_start = true;
    let mut bytes = text.bytes().peekable();
    while let Some(byte) = bytes.next() {
        match byte {
            b'"' if cell_start => {
                let opened_on = line;
                loop {
                    match bytes.next() {
                        None => {
                            return Err(CsvError {
                                line: opened_on,
                                reason: "a quoted cell is not closed".into(),
                            });
                        }
                        Some(b'"') if bytes.peek() == Some(&b'"') => {
                            bytes.next();
                        }
                        Some(b'"') => break,
                        Some(b'\n') => line += 1,
                        Some(_) => {}
                    }
                }
                if !matches!(bytes.peek(), None | Some(b',' | b'\n' | b'\r')) {
                    return Err(CsvError {
                        line,
                        reason: "text after a closing quote (a quote inside a quoted cell is written \"\")".into(),
                    });
                }
                cell_start = false;
            }
            b'\n' => {
                line += 1;
                cell_start = true;
            }
            b',' | b'\r' => cell_start = true,
            _ => cell_start = false,
        }
    }
    Ok(())
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

    const HEADER: &str = "id,name,occupation,location,tech_proficiency,behavioral_traits,age";

    #[test]
    fn quoted_cells_keep_commas_quotes_and_newlines() {
        let csv = format!(
            "{HEADER},bio\n\
             1,\"Ana, \"\"Nana\"\"\",\"Nurse\nnights\",Porto,High,\"calm; \"\"direct\"\"\",41,\"a,\nb\"\"c\"\n"
        );
        let records = csv_records(&csv).unwrap();
        assert_eq!(
            records,
            [serde_json::json!({
                "id": 1,
                "name": "Ana, \"Nana\"",
                "occupation": "Nurse\nnights",
                "location": "Porto",
                "tech_proficiency": "High",
                "behavioral_traits": ["calm", "\"direct\""],
                "age": 41,
                "bio": "a,\nb\"c",
            })]
        );
    }

    #[test]
    fn a_bom_and_crlf_line_ends_read_like_plain_lf() {
        let lf =
            format!("{HEADER}\n1,Ana,Nurse,\"Porto,\nPT\",Low,calm,41\n2,Tom,Chef,Lyon,High,,\n");
        let windows = format!("\u{feff}{}", lf.replace('\n', "\r\n"));
        let from_lf = csv_records(&lf).unwrap();
        let from_windows = csv_records(&windows).unwrap();
        assert_eq!(from_lf.len(), 2);
        // The newline inside the quoted cell is kept as written.
        assert_eq!(from_windows[0]["location"], "Porto,\r\nPT");
        assert_eq!(from_lf[0]["location"], "Porto,\nPT");
        let without_location = |records: &[Value]| -> Vec<Value> {
            records
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.as_object_mut().unwrap().remove("location");
                    r
                })
                .collect()
        };
        assert_eq!(without_location(&from_windows), without_location(&from_lf));
        assert_eq!(from_windows[0]["id"], 1, "the BOM is not part of `id`");
        // Lines are still counted with CRLF ends (the quoted cell spans two).
        let err = csv_records(&format!(
            "\u{feff}{HEADER}\r\n1,a,b,\"c\r\nd\",Low,x,3\r\n2,a\r\n"
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "CSV line 4: 2 cells where the header has 7 columns"
        );
    }

    #[test]
    fn a_hundred_thousand_rows_read_quickly() {
        let mut csv = format!("{HEADER},bio\n");
        for id in 1..=100_000 {
            csv.push_str(&format!(
                "{id},Person {id},\"Baker, shift {id}\",Cork,Medium,\"calm; says \"\"ok\"\"\",{},\"line\nbreak\"\n",
                20 + id % 50
            ));
        }
        let started = std::time::Instant::now();
        let records = csv_records(&csv).unwrap();
        let took = started.elapsed();
        assert_eq!(records.len(), 100_000);
        assert_eq!(records[99_999]["name"], "Person 100000");
        assert_eq!(records[99_999]["occupation"], "Baker, shift 100000");
        assert_eq!(
            records[0]["behavioral_traits"],
            serde_json::json!(["calm", "says \"ok\""])
        );
        // Measured 1.6-1.9 s in a debug build on a busy 2-core machine (the
        // csv crate unoptimized; 0.75 s of it parsing, the rest building
        // JSON records); a slower parse is a regression.
        assert!(took < std::time::Duration::from_secs(4), "took {took:?}");
    }
}
