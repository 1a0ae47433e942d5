//! The report checked against the debate it reports on, before anyone sees
//! it: the model may leave a persona out, invent one, or cite a turn that
//! says nothing of the kind. What it got wrong is dropped or marked, with a
//! note; nothing is filled in.
//!
//! - One stance row per participant (everyone who spoke, in speaking
//!   order), matched by name (the full name, else an unambiguous first
//!   name). A participant the model left out gets a row with nothing given;
//!   a row for someone who took no part is dropped.
//! - A citation must point at a persona's turn (not a moderator question);
//!   where an item names personas, at a turn by one of them. Names of
//!   people who took no part are dropped from items.
//! - A report with no summary and nothing usable is no report
//!   ([`usable`] is false): the caller fails it.

use super::{PersonaVerdict, Point, Report, ReportFormat};
use crate::sim::debate::Turn;

/// Who spoke, in the order they first spoke: (persona id, name).
pub fn participants(turns: &[Turn]) -> Vec<(u32, String)> {
    let mut seen: Vec<(u32, String)> = Vec::new();
    for t in turns.iter().filter(|t| !t.moderator) {
        if !seen.iter().any(|(id, _)| *id == t.persona_id) {
            seen.push((t.persona_id, t.speaker.clone()));
        }
    }
    seen
}

fn normal(name: &str) -> String {
    name.trim()
        .trim_matches(|c: char| c == '*' || c == '_' || c == '"')
        .trim()
        .to_lowercase()
}

/// The participant a name the model wrote means: the same full name, else
/// the one whose first name it is (when only one has it).
fn resolve(name: &str, people: &[(u32, String)]) -> Option<(u32, String)> {
    let wanted = normal(name);
    if wanted.is_empty() {
        return None;
    }
    if let Some(p) = people.iter().find(|(_, n)| normal(n) == wanted) {
        return Some(p.clone());
    }
    let by_first: Vec<&(u32, String)> = people
        .iter()
        .filter(|(_, n)| normal(n).split_whitespace().next() == Some(wanted.as_str()))
        .collect();
    match by_first.as_slice() {
        [one] => Some((*one).clone()),
        _ => None,
    }
}

/// Checks `report` against `turns` in place (see the module's rules).
pub fn check_against(report: &mut Report, turns: &[Turn]) {
    let people = participants(turns);
    let mut notes = Vec::new();
    if report.format == ReportFormat::Structured || !report.personas.is_empty() {
        check_personas(report, &people, &mut notes);
    }
    let mut strays: Vec<String> = Vec::new();
    let mut off_turns: Vec<String> = Vec::new();
    for (kind, points) in [
        ("concern", &mut report.concerns),
        ("request", &mut report.requests),
    ] {
        for point in points.iter_mut() {
            check_point(point, kind, turns, &people, &mut strays, &mut off_turns);
        }
    }
    for insight in &mut report.insights {
        let before = insight.turns.clone();
        insight
            .turns
            .retain(|n| turns.get(n - 1).is_some_and(|t| !t.moderator));
        for n in before.iter().filter(|n| !insight.turns.contains(n)) {
            off_turns.push(format!("T{n} (insight “{}”)", short(&insight.change)));
        }
    }
    if !strays.is_empty() {
        strays.sort();
        strays.dedup();
        notes.push(format!(
            "Items named people who took no part ({}); those names were dropped.",
            strays.join(", ")
        ));
    }
    report.dropped_citations += off_turns.len();
    if !off_turns.is_empty() {
        notes.push(format!(
            "Citations that were not a turn by the personas named (or were a moderator question) were dropped: {}.",
            off_turns.join("; ")
        ));
    }
    report.notes.extend(notes);
}

fn check_personas(report: &mut Report, people: &[(u32, String)], notes: &mut Vec<String>) {
    let mut rows: Vec<Option<PersonaVerdict>> = vec![None; people.len()];
    let mut dropped = Vec::new();
    let mut repeated = Vec::new();
    for verdict in report.personas.drain(..) {
        let named = verdict.name.clone().unwrap_or_default();
        let Some((id, name)) = resolve(&named, people) else {
            dropped.push(if named.trim().is_empty() {
                "a row with no name".to_string()
            } else {
                format!("“{}”", short(&named))
            });
            continue;
        };
        let at = people.iter().position(|(i, _)| *i == id).expect("resolved");
        if rows[at].is_some() {
            repeated.push(name);
            continue;
        }
        rows[at] = Some(PersonaVerdict {
            name: Some(name),
            persona_id: Some(id),
            ..verdict
        });
    }
    let mut left_out = Vec::new();
    report.personas = rows
        .into_iter()
        .zip(people)
        .map(|(row, (id, name))| {
            row.unwrap_or_else(|| {
                left_out.push(name.clone());
                PersonaVerdict {
                    name: Some(name.clone()),
                    persona_id: Some(*id),
                    ..PersonaVerdict::default()
                }
            })
        })
        .collect();
    if !dropped.is_empty() {
        notes.push(format!(
            "The model gave stances for {} who took no part in the debate; dropped.",
            dropped.join(", ")
        ));
    }
    if !repeated.is_empty() {
        notes.push(format!(
            "The model gave more than one stance row for {}; the first was kept.",
            repeated.join(", ")
        ));
    }
    if !left_out.is_empty() {
        notes.push(format!(
            "The model gave no stance for {}: shown as not given.",
            left_out.join(", ")
        ));
    }
}

fn check_point(
    point: &mut Point,
    kind: &str,
    turns: &[Turn],
    people: &[(u32, String)],
    strays: &mut Vec<String>,
    off_turns: &mut Vec<String>,
) {
    let mut ids = Vec::new();
    let mut names = Vec::new();
    for named in &point.personas {
        match resolve(named, people) {
            Some((id, name)) if !ids.contains(&id) => {
                ids.push(id);
                names.push(name);
            }
            Some(_) => {}
            None => strays.push(format!("“{}”", short(named))),
        }
    }
    point.personas = names;
    let before = point.turns.clone();
    point.turns.retain(|n| {
        turns
            .get(n - 1)
            .is_some_and(|t| !t.moderator && (ids.is_empty() || ids.contains(&t.persona_id)))
    });
    for n in before.iter().filter(|n| !point.turns.contains(n)) {
        off_turns.push(format!("T{n} ({kind} “{}”)", short(&point.text)));
    }
}

/// Whether the report says anything a reader can use: a summary, a
/// finding or a stance the model gave, or (a reply that was not JSON) some
/// prose. JSON that holds none of them is not a report, however long.
pub fn usable(report: &Report) -> bool {
    let said = report
        .summary
        .as_deref()
        .is_some_and(|s| !s.trim().is_empty())
        || !report.concerns.is_empty()
        || !report.requests.is_empty()
        || !report.insights.is_empty()
        || report.personas.iter().any(|p| p.stance.is_some());
    let prose = report.format == ReportFormat::PlainText
        && report.text.as_deref().is_some_and(|t| {
            !t.trim().is_empty() && crate::llm::reply::find_json_object(t).is_none()
        });
    said || prose
}

/// At most 40 characters of `text`, for notes.
fn short(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::report::{Insight, Stance};

    fn turn(id: u32, name: &str, text: &str) -> Turn {
        Turn {
            persona_id: id,
            speaker: name.into(),
            text: text.into(),
            complete: true,
            ..Turn::default()
        }
    }

    fn debate() -> Vec<Turn> {
        vec![
            turn(1, "Maria Lopez", "Offline is vital on the ward."),
            turn(2, "Kwame Mensah", "Too expensive for my co-op."),
            Turn::moderator_question("What about price?", 1),
            turn(1, "Maria Lopez", "Worth paying for."),
        ]
    }

    fn verdict(name: &str, stance: Stance) -> PersonaVerdict {
        PersonaVerdict {
            name: Some(name.into()),
            stance: Some(stance),
            interest: Some(7),
            reason: Some("because".into()),
            persona_id: None,
        }
    }

    #[test]
    fn one_row_per_participant_in_speaking_order() {
        let mut report = Report {
            summary: Some("ok".into()),
            personas: vec![
                verdict("kwame", Stance::Against),
                verdict("Priya Raman", Stance::For),
                verdict("mock insight about onboarding", Stance::For),
                verdict("**Maria Lopez**", Stance::For),
                verdict("Maria", Stance::Mixed),
            ],
            ..Report::default()
        };
        check_against(&mut report, &debate());
        let rows: Vec<(Option<u32>, Option<&str>, Option<Stance>)> = report
            .personas
            .iter()
            .map(|p| (p.persona_id, p.name.as_deref(), p.stance))
            .collect();
        assert_eq!(
            rows,
            vec![
                (Some(1), Some("Maria Lopez"), Some(Stance::For)),
                (Some(2), Some("Kwame Mensah"), Some(Stance::Against)),
            ]
        );
        let notes = report.notes.join("\n");
        assert!(
            notes.contains("“Priya Raman”, “mock insight about onboarding” who took no part"),
            "{notes}"
        );
        assert!(
            notes.contains("more than one stance row for Maria Lopez"),
            "{notes}"
        );
    }

    #[test]
    fn a_participant_left_out_is_not_given() {
        let mut report = Report {
            summary: Some("ok".into()),
            personas: vec![verdict("Maria Lopez", Stance::For)],
            ..Report::default()
        };
        check_against(&mut report, &debate());
        assert_eq!(report.personas.len(), 2);
        let kwame = &report.personas[1];
        assert_eq!(kwame.name.as_deref(), Some("Kwame Mensah"));
        assert_eq!(
            (kwame.stance, kwame.interest, kwame.reason.as_deref()),
            (None, None, None)
        );
        assert!(
            report
                .notes
                .join(" ")
                .contains("no stance for Kwame Mensah")
        );
    }

    #[test]
    fn citations_must_be_turns_by_the_personas_named() {
        let mut report = Report {
            summary: Some("ok".into()),
            concerns: vec![Point {
                text: "Price".into(),
                count: Some(1),
                personas: vec!["Kwame Mensah".into(), "Ghost".into()],
                turns: vec![1, 2, 3],
            }],
            requests: vec![Point {
                text: "Sync".into(),
                count: Some(1),
                personas: vec![],
                turns: vec![1, 3, 4],
            }],
            insights: vec![Insight {
                change: "Cheaper tier".into(),
                turns: vec![2, 3],
                ..Insight::default()
            }],
            ..Report::default()
        };
        check_against(&mut report, &debate());
        assert_eq!(report.concerns[0].turns, vec![2]);
        assert_eq!(
            report.concerns[0].personas,
            vec!["Kwame Mensah".to_string()]
        );
        // Without names, any persona's turn counts; never the moderator's.
        assert_eq!(report.requests[0].turns, vec![1, 4]);
        assert_eq!(report.insights[0].turns, vec![2]);
        let notes = report.notes.join("\n");
        assert!(notes.contains("“Ghost”"), "{notes}");
        assert!(notes.contains("T1 (concern “Price”)"), "{notes}");
        assert!(notes.contains("T3 (insight “Cheaper tier”)"), "{notes}");
    }

    #[test]
    fn an_empty_report_is_not_usable() {
        let mut empty = Report {
            personas: vec![PersonaVerdict::default(), PersonaVerdict::default()],
            ..Report::default()
        };
        check_against(&mut empty, &debate());
        assert!(!usable(&empty));
        let blank_text = Report {
            format: ReportFormat::PlainText,
            text: Some("  ".into()),
            ..Report::default()
        };
        assert!(!usable(&blank_text));
        let empty_json = Report {
            format: ReportFormat::PlainText,
            text: Some("{\"summary\": \"\", \"personas\": []}".into()),
            ..Report::default()
        };
        assert!(!usable(&empty_json));
        let prose = Report {
            format: ReportFormat::PlainText,
            text: Some("Most liked it; price worried two.".into()),
            ..Report::default()
        };
        assert!(usable(&prose));
        let summary_only = Report {
            summary: Some("They split on price.".into()),
            ..Report::default()
        };
        assert!(usable(&summary_only));
    }
}
