//! Reading a report out of the model's reply, field by field.

use serde_json::Value;

use crate::llm::reply::{
    array_at, as_u32, close_truncated_json, find_json_object, string_at, strings_at, strip_fences,
    strip_think,
};

use super::{Insight, PersonaVerdict, Point, Report, ReportFormat, Stance};

/// Reads a report out of the model's reply. `turn_count` bounds the turn
/// numbers it may cite.
pub fn parse_report(reply: &str, turn_count: usize) -> Report {
    let cleaned = strip_think(reply);
    let Some(value) = find_json_object(&cleaned) else {
        let text = strip_fences(&cleaned).trim().to_string();
        let note = if text.is_empty() {
            "The model returned no report text."
        } else {
            "The model's reply was not JSON, so it is shown as written."
        };
        return Report {
            format: ReportFormat::PlainText,
            text: Some(text),
            notes: vec![note.into()],
            ..Report::default()
        };
    };
    let mut report = read_report(&value, turn_count);
    if !has_findings(&report) {
        // An empty object (or one with none of the fields) is no report:
        // never show it as a complete one that "listed no concerns".
        return Report {
            format: ReportFormat::PlainText,
            text: Some(strip_fences(&cleaned).trim().to_string()),
            notes: vec![
                "The model's JSON held no summary and no findings, so its reply is shown as written."
                    .into(),
            ],
            ..Report::default()
        };
    }
    let mut missing = Vec::new();
    if report.summary.is_none() {
        missing.push("The model gave no summary.".to_string());
    }
    for (section, empty) in [
        ("personas' stances", report.personas.is_empty()),
        ("concerns", report.concerns.is_empty()),
        ("requests", report.requests.is_empty()),
        ("insights", report.insights.is_empty()),
    ] {
        if empty {
            missing.push(format!("The model listed no {section}."));
        }
    }
    report.notes.splice(0..0, missing);
    report
}

/// Reads a report whose reply was cut by the token limit: it is partial,
/// keeps the model's raw text (and is shown as that text), says that the
/// model ran out of room, and keeps whatever part of the JSON was finished
/// (an unfinished object is closed after its last complete value). Nothing
/// is said about sections that may simply have come after the cut.
pub fn parse_cut_report(reply: &str, turn_count: usize) -> Report {
    let cleaned = strip_think(reply);
    // The outer object first: a balanced inner one (a finished persona) is
    // not the report.
    let value = close_truncated_json(&cleaned).or_else(|| find_json_object(&cleaned));
    let mut report = value
        .map(|v| read_report(&v, turn_count))
        .unwrap_or_default();
    let mut notes = vec![
        "The model ran out of room (it reached its token limit) before it finished the report, \
so its reply is shown as written."
            .to_string(),
    ];
    let mut found = Vec::new();
    if report.summary.is_some() {
        found.push("the summary".to_string());
    }
    for (what, n) in [
        ("persona stance(s)", report.personas.len()),
        ("concern(s)", report.concerns.len()),
        ("request(s)", report.requests.len()),
        ("insight(s)", report.insights.len()),
    ] {
        if n > 0 {
            found.push(format!("{n} {what}"));
        }
    }
    if !found.is_empty() {
        notes.push(format!(
            "What it finished was read ({}); anything after the cut is missing.",
            found.join(", ")
        ));
    }
    notes.append(&mut report.notes);
    report.notes = notes;
    report.format = ReportFormat::PlainText;
    report.text = Some(reply.trim().to_string());
    report.partial = true;
    report
}

/// Whether the report says anything at all.
fn has_findings(report: &Report) -> bool {
    report.summary.is_some()
        || !report.personas.is_empty()
        || !report.concerns.is_empty()
        || !report.requests.is_empty()
        || !report.insights.is_empty()
}

/// The fields of a report object, each only if the model gave it; notes
/// for scores and turns that were wrong (not for what is missing).
fn read_report(value: &Value, turn_count: usize) -> Report {
    let value = value.clone();
    let mut notes: Vec<String> = Vec::new();
    let mut bad_turns = Vec::new();
    let summary = string_at(&value, &["summary", "overview"]);
    let personas: Vec<PersonaVerdict> = array_at(&value, &["personas", "stances", "per_persona"])
        .iter()
        .map(|p| PersonaVerdict {
            name: string_at(p, &["name", "persona"]),
            stance: string_at(p, &["stance", "position"]).and_then(|s| Stance::parse(&s)),
            interest: p
                .get("interest")
                .or_else(|| p.get("interest_score"))
                .or_else(|| p.get("score"))
                .and_then(score),
            reason: string_at(p, &["reason", "quote", "why"]),
            persona_id: None,
        })
        .collect();
    let mut points = |keys: &[&str]| -> Vec<Point> {
        array_at(&value, keys)
            .iter()
            .filter_map(|c| {
                let text = match c {
                    Value::String(s) => Some(s.clone()),
                    _ => string_at(c, &["text", "concern", "request", "title"]),
                }?;
                Some(Point {
                    text,
                    count: c.get("count").and_then(as_u32),
                    personas: strings_at(c, "personas"),
                    turns: turns_at(c, turn_count, &mut bad_turns),
                })
            })
            .collect()
    };
    let concerns = points(&["concerns", "top_concerns"]);
    let requests = points(&["requests", "top_requests", "feature_requests"]);
    let mut insights: Vec<Insight> = array_at(&value, &["insights", "actionable_insights"])
        .iter()
        .filter_map(|i| {
            let change = match i {
                Value::String(s) => Some(s.clone()),
                _ => string_at(i, &["change", "insight", "action", "text"]),
            }?;
            Some(Insight {
                change,
                why: string_at(i, &["why", "rationale"]),
                helps: string_at(i, &["helps", "who", "who_it_helps"]),
                priority: i.get("priority").and_then(as_u32),
                turns: turns_at(i, turn_count, &mut bad_turns),
            })
        })
        .collect();
    // Priority 1 first; unranked ones keep the model's order after them.
    insights.sort_by_key(|i| i.priority.unwrap_or(u32::MAX));
    let missing_scores = personas.iter().filter(|p| p.interest.is_none()).count();
    if missing_scores > 0 {
        notes.push(format!(
            "{missing_scores} persona(s) without a valid 1-10 interest score."
        ));
    }
    let dropped_citations = bad_turns.len();
    if !bad_turns.is_empty() {
        bad_turns.sort_unstable();
        bad_turns.dedup();
        let list: Vec<String> = bad_turns.iter().map(|t| format!("T{t}")).collect();
        notes.push(format!(
            "The model cited turns that do not exist ({}); they were dropped.",
            list.join(", ")
        ));
    }
    Report {
        format: ReportFormat::Structured,
        summary,
        personas,
        concerns,
        requests,
        insights,
        text: None,
        notes,
        partial: false,
        usage: None,
        dropped_citations,
    }
}

/// A 1-10 score from 7, 7.0, "7" or "7/10"; anything else is missing.
fn score(value: &Value) -> Option<u8> {
    let n = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.split('/').next()?.trim().parse().ok()?,
        _ => return None,
    };
    (n.fract() == 0.0 && (1.0..=10.0).contains(&n)).then_some(n as u8)
}

/// Cited turns (3, "3", "T3"), 1-based; numbers outside the transcript go
/// to `bad`.
fn turns_at(value: &Value, turn_count: usize, bad: &mut Vec<usize>) -> Vec<usize> {
    let items = match value.get("turns").or_else(|| value.get("evidence")) {
        Some(Value::Array(items)) => items.clone(),
        Some(single) => vec![single.clone()],
        None => return Vec::new(),
    };
    let mut turns = Vec::new();
    for item in items {
        let n = match &item {
            Value::Number(n) => n.as_u64().map(|n| n as usize),
            Value::String(s) => s.trim().trim_start_matches(['T', 't']).parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if (1..=turn_count).contains(&n) && !turns.contains(&n) => turns.push(n),
            Some(n) if (1..=turn_count).contains(&n) => {}
            Some(n) => bad.push(n),
            None => {}
        }
    }
    turns.sort_unstable();
    turns
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::report::report_markdown;

    const GOOD: &str = r#"{"summary":"Mostly positive.","personas":[
        {"name":"Ana","stance":"for","interest":8,"reason":"Saves me time."},
        {"name":"Bo","stance":"against","interest":3,"reason":"Too costly."}],
      "concerns":[{"text":"Price","count":2,"personas":["Ana","Bo"],"turns":[1,2]}],
      "requests":[{"text":"Offline sync","count":1,"personas":["Ana"],"turns":["T1"]}],
      "insights":[{"change":"Cheaper tier","why":"price","helps":"Bo","priority":2,"turns":[2]},
                  {"change":"Ship sync","why":"asked","helps":"Ana","priority":1,"turns":[1]}]}"#;

    #[test]
    fn well_formed_json_is_read_in_full_and_insights_ranked() {
        let r = parse_report(GOOD, 2);
        assert_eq!(r.format, ReportFormat::Structured);
        assert_eq!(r.summary.as_deref(), Some("Mostly positive."));
        assert_eq!(r.personas[1].stance, Some(Stance::Against));
        assert_eq!(r.personas[0].interest, Some(8));
        assert_eq!(r.concerns[0].turns, vec![1, 2]);
        assert_eq!(r.requests[0].turns, vec![1]);
        assert_eq!(r.insights[0].change, "Ship sync");
        assert!(r.notes.is_empty(), "{:?}", r.notes);
    }

    #[test]
    fn think_blocks_and_fences_are_stripped() {
        let reply =
            format!("<think>Let me {{ think }}</think>\nHere it is:\n```json\n{GOOD}\n```\nDone.");
        let r = parse_report(&reply, 2);
        assert_eq!(r.format, ReportFormat::Structured);
        assert_eq!(r.personas.len(), 2);
    }

    #[test]
    fn missing_fields_stay_missing_and_are_noted() {
        let r = parse_report(
            r#"{"personas":[{"name":"Ana","interest":"11"},{"stance":"maybe","interest":"7/10"}],
                "insights":["Do less"], "concerns":[{"text":"x","turns":[9]}]}"#,
            3,
        );
        assert_eq!(r.summary, None);
        assert_eq!(r.personas[0].interest, None, "11 is out of range");
        assert_eq!(r.personas[0].stance, None);
        assert_eq!(r.personas[1].name, None);
        assert_eq!(r.personas[1].interest, Some(7));
        assert_eq!(r.insights[0].change, "Do less");
        assert_eq!(r.insights[0].why, None);
        assert_eq!(r.concerns[0].count, None);
        assert!(r.concerns[0].turns.is_empty());
        let notes = r.notes.join(" | ");
        assert!(notes.contains("no summary"), "{notes}");
        assert!(notes.contains("no requests"), "{notes}");
        assert!(notes.contains("T9"), "{notes}");
        assert!(notes.contains("1 persona(s) without"), "{notes}");
    }

    #[test]
    fn an_empty_object_is_no_complete_report() {
        let r = parse_report("Here: {}", 2);
        assert_eq!(r.format, ReportFormat::PlainText);
        assert_eq!(r.text.as_deref(), Some("Here: {}"));
        assert!(
            r.notes[0].contains("no summary and no findings"),
            "{:?}",
            r.notes
        );
        assert!(!r.notes.iter().any(|n| n.contains("listed no")));
    }

    #[test]
    fn a_cut_reply_is_partial_keeps_its_text_and_what_was_finished() {
        let reply = r#"{"summary":"Mostly positive.","personas":[{"name":"Ana","stance":"for","interest":8,"reason":"Saves"},{"name":"Bo","sta"#;
        let r = parse_cut_report(reply, 2);
        assert!(r.partial);
        assert_eq!(r.format, ReportFormat::PlainText);
        assert_eq!(r.text.as_deref(), Some(reply));
        assert_eq!(r.summary.as_deref(), Some("Mostly positive."));
        // Bo's entry is kept as far as it went: a name, no stance.
        assert_eq!(r.personas.len(), 2);
        assert_eq!(r.personas[1].name.as_deref(), Some("Bo"));
        assert_eq!(r.personas[1].stance, None);
        let notes = r.notes.join(" | ");
        assert!(notes.contains("ran out of room"), "{notes}");
        assert!(
            notes.contains("the summary, 2 persona stance(s)"),
            "{notes}"
        );
        assert!(!notes.contains("listed no"), "{notes}");
        // 19 tokens of nothing usable: still partial, raw text kept.
        let r = parse_cut_report(r#"{"summary": "The panel of three personas"#, 2);
        assert!(r.partial);
        assert_eq!(r.summary, None);
        assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
        assert!(r.text.unwrap().starts_with(r#"{"summary""#));
        assert!(
            report_markdown(&parse_cut_report("{\"summary\": \"x", 1)).contains("ran out of room")
        );
    }

    #[test]
    fn text_without_json_becomes_a_plain_report_with_a_notice() {
        let r = parse_report("People liked it {but not the price}.", 2);
        assert_eq!(r.format, ReportFormat::PlainText);
        assert_eq!(
            r.text.as_deref(),
            Some("People liked it {but not the price}.")
        );
        assert!(r.notes[0].contains("not JSON"));
        let md = report_markdown(&r);
        assert!(md.contains("People liked it"));
    }
}
