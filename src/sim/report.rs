//! The feedback report: the seed's `generate_feedback_report`, which
//! "summarizes conversation with actionable insights".
//!
//! The model is asked for JSON (with a JSON schema where the server enforces
//! one) and its reply is read leniently: `<think>` blocks and code fences are
//! stripped, the JSON object is found inside whatever surrounds it, and each
//! field is taken only if the model gave it. A missing field stays missing;
//! nothing is filled in. A reply with no JSON at all becomes a plain-text
//! report with a notice.

use std::fmt::Write as _;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::llm::{
    ChatBackend, ChatChunk, ChatMessage, ChatRequest, JsonSchema, LlmError, Purpose, Usage,
};

use super::debate::{SimEvent, Turn};
use super::prompts::CHARS_PER_TOKEN;

/// Reply cap for a report from a hosted model.
pub const REPORT_MAX_TOKENS: u32 = 1500;
/// Reply cap on a small local model (2,048-token context).
pub const LOCAL_REPORT_MAX_TOKENS: u32 = 400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stance {
    For,
    Mixed,
    Against,
}

impl Stance {
    /// Reads the model's word for a stance; `None` if it is none of them.
    fn parse(word: &str) -> Option<Stance> {
        let w = word.trim().to_lowercase();
        match w.as_str() {
            "for" | "in favor" | "in favour" | "support" | "supportive" | "positive" | "pro" => {
                Some(Stance::For)
            }
            "mixed" | "neutral" | "undecided" | "ambivalent" => Some(Stance::Mixed),
            "against" | "opposed" | "negative" | "con" => Some(Stance::Against),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Stance::For => "for",
            Stance::Mixed => "mixed",
            Stance::Against => "against",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PersonaVerdict {
    pub name: Option<String>,
    pub stance: Option<Stance>,
    /// 1 to 10, as the model gave it.
    pub interest: Option<u8>,
    /// The one-line reason, in the persona's words.
    pub reason: Option<String>,
}

/// A concern or a request, with the evidence for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub text: String,
    /// How many personas raised it, as the model counted.
    pub count: Option<u32>,
    pub personas: Vec<String>,
    /// 1-based turn numbers in the transcript.
    pub turns: Vec<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Insight {
    /// What to change.
    pub change: String,
    pub why: Option<String>,
    /// Who it helps.
    pub helps: Option<String>,
    pub priority: Option<u32>,
    pub turns: Vec<usize>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    /// Read from the model's JSON.
    #[default]
    Structured,
    /// The model's reply was not JSON: its text is the report.
    PlainText,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub format: ReportFormat,
    pub summary: Option<String>,
    pub personas: Vec<PersonaVerdict>,
    pub concerns: Vec<Point>,
    pub requests: Vec<Point>,
    /// In priority order.
    pub insights: Vec<Insight>,
    /// The model's text, when it could not be read as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// What was missing or wrong in the model's reply, for the reader.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// True when the debate did not finish (cancel, error, budget).
    #[serde(default)]
    pub partial: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// The schema sent as `response_format` (strict mode: every field required,
/// no extras).
pub fn report_schema() -> JsonSchema {
    let point = json!({
        "type": "object",
        "properties": {
            "text": {"type": "string"},
            "count": {"type": "integer"},
            "personas": {"type": "array", "items": {"type": "string"}},
            "turns": {"type": "array", "items": {"type": "integer"}}
        },
        "required": ["text", "count", "personas", "turns"],
        "additionalProperties": false
    });
    let schema = json!({
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "personas": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "stance": {"type": "string", "enum": ["for", "mixed", "against"]},
                    "interest": {"type": "integer"},
                    "reason": {"type": "string"}
                },
                "required": ["name", "stance", "interest", "reason"],
                "additionalProperties": false
            }},
            "concerns": {"type": "array", "items": point},
            "requests": {"type": "array", "items": point},
            "insights": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "change": {"type": "string"},
                    "why": {"type": "string"},
                    "helps": {"type": "string"},
                    "priority": {"type": "integer"},
                    "turns": {"type": "array", "items": {"type": "integer"}}
                },
                "required": ["change", "why", "helps", "priority", "turns"],
                "additionalProperties": false
            }}
        },
        "required": ["summary", "personas", "concerns", "requests", "insights"],
        "additionalProperties": false
    });
    JsonSchema {
        name: "feedback_report".into(),
        schema,
    }
}

const REPORT_SYSTEM: &str = "You are a product research analyst. You read a panel discussion \
about a product feature and write a feedback report for the product team. Use only what the \
transcript says; never invent opinions, people or turns. Reply with one JSON object and nothing else.";

const REPORT_SHAPE: &str = r#"Reply with JSON of this shape:
{"summary": "one paragraph",
 "personas": [{"name": "...", "stance": "for|mixed|against", "interest": 1-10, "reason": "one line in their words"}],
 "concerns": [{"text": "...", "count": personas who raised it, "personas": ["name"], "turns": [turn numbers]}],
 "requests": [{"text": "...", "count": 1, "personas": ["name"], "turns": [2]}],
 "insights": [{"change": "what to change", "why": "...", "helps": "who it helps", "priority": 1, "turns": [1, 3]}]}
Turn numbers are the [T#] numbers above. List insights most important first."#;

/// The report prompt: the feature, the numbered transcript, the shape.
/// With a budget (characters), long turns are clipped so it fits a small
/// model's context.
pub fn report_prompt(feature: &str, turns: &[Turn], budget_chars: Option<usize>) -> String {
    let mut prompt = format!(
        "Feature under discussion:\n{}\n\nTranscript:\n",
        feature.trim()
    );
    let spoken: Vec<(usize, &Turn)> = turns
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.text.trim().is_empty())
        .collect();
    let per_turn = budget_chars.map(|b| {
        let room = b.saturating_sub(prompt.len() + REPORT_SHAPE.len());
        (room / spoken.len().max(1)).max(60)
    });
    for (i, turn) in spoken {
        let mut text = turn.text.trim().replace('\n', " ");
        if let Some(max) = per_turn
            && text.len() > max
        {
            let mut end = max.saturating_sub(3);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push('…');
        }
        let question = turn
            .question
            .as_ref()
            .map(|q| format!(" (asked: {})", q.trim()))
            .unwrap_or_default();
        let _ = writeln!(prompt, "[T{}] {}{question}: {text}", i + 1, turn.speaker);
    }
    prompt.push('\n');
    prompt.push_str(REPORT_SHAPE);
    prompt
}

/// Asks the model for the report and streams it out as events. Returns the
/// report, or `None` (after a `ReportFailed` event) when the call failed.
pub async fn generate_report(
    backend: &dyn ChatBackend,
    feature: &str,
    turns: &[Turn],
    tx: &mpsc::Sender<SimEvent>,
) -> Option<Report> {
    let _ = tx.send(SimEvent::ReportStarted).await;
    let small = backend.context_window();
    let max_tokens = if small.is_some() {
        LOCAL_REPORT_MAX_TOKENS
    } else {
        REPORT_MAX_TOKENS
    };
    let budget = small.map(|ctx| {
        let overhead = (REPORT_SYSTEM.len() / CHARS_PER_TOKEN) as u32 + max_tokens + 48;
        ctx.saturating_sub(overhead) as usize * CHARS_PER_TOKEN
    });
    let messages = vec![
        ChatMessage::system(REPORT_SYSTEM),
        ChatMessage::user(report_prompt(feature, turns, budget)),
    ];
    let began = std::time::Instant::now();
    let mut request = ChatRequest::new(messages, max_tokens);
    request.json_schema = Some(report_schema());
    request.purpose = Purpose::Report;
    let mut notes = Vec::new();
    let (text, usage) = match stream_text(backend, request.clone(), tx).await {
        // Servers that do not know `json_schema` reject the request before
        // any token: ask again without it; the prompt already asks for JSON.
        Err((LlmError::Http { status, message }, false)) if (400..500).contains(&status) => {
            tracing::info!(target: "llm", status, %message, "json_schema rejected; retrying without it");
            notes.push(format!(
                "The server rejected the JSON schema (HTTP {status}); the report was asked for as plain JSON."
            ));
            request.json_schema = None;
            match stream_text(backend, request, tx).await {
                Ok(ok) => ok,
                Err((error, _)) => return report_failed(tx, error, began).await,
            }
        }
        Err((error, _)) => return report_failed(tx, error, began).await,
        Ok(ok) => ok,
    };
    tracing::info!(target: "llm", latency_ms = began.elapsed().as_millis() as u64, chars = text.len(), "report finished");
    let mut report = parse_report(&text, turns.len());
    report.notes.splice(0..0, notes);
    report.usage = usage;
    let _ = tx
        .send(SimEvent::ReportReady {
            report: Box::new(report.clone()),
        })
        .await;
    Some(report)
}

async fn report_failed(
    tx: &mpsc::Sender<SimEvent>,
    error: LlmError,
    began: std::time::Instant,
) -> Option<Report> {
    tracing::warn!(target: "llm", latency_ms = began.elapsed().as_millis() as u64, %error, "report failed");
    let _ = tx
        .send(SimEvent::ReportFailed {
            message: error.to_string(),
        })
        .await;
    None
}

/// The whole reply and its usage; on error, whether any text had arrived.
async fn stream_text(
    backend: &dyn ChatBackend,
    request: ChatRequest,
    tx: &mpsc::Sender<SimEvent>,
) -> Result<(String, Option<Usage>), (LlmError, bool)> {
    let mut stream = backend.stream(request);
    let mut text = String::new();
    let mut usage: Option<Usage> = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(ChatChunk::Text(piece)) => {
                text.push_str(&piece);
                let _ = tx.send(SimEvent::ReportToken { text: piece }).await;
            }
            Ok(ChatChunk::Usage(u)) => {
                *usage.get_or_insert_default() += u;
                let _ = tx
                    .send(SimEvent::ReportUsage {
                        prompt_tokens: u.prompt_tokens,
                        completion_tokens: u.completion_tokens,
                    })
                    .await;
            }
            Err(e) => return Err((e, !text.is_empty())),
        }
    }
    Ok((text, usage))
}

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
    let mut notes = Vec::new();
    let mut bad_turns = Vec::new();
    let summary = string_at(&value, &["summary", "overview"]);
    if summary.is_none() {
        notes.push("The model gave no summary.".into());
    }
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
    for (section, empty) in [
        ("personas' stances", personas.is_empty()),
        ("concerns", concerns.is_empty()),
        ("requests", requests.is_empty()),
        ("insights", insights.is_empty()),
    ] {
        if empty {
            notes.push(format!("The model listed no {section}."));
        }
    }
    let missing_scores = personas.iter().filter(|p| p.interest.is_none()).count();
    if missing_scores > 0 {
        notes.push(format!(
            "{missing_scores} persona(s) without a valid 1-10 interest score."
        ));
    }
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
    }
}

/// Removes `<think>…</think>` blocks (reasoning models); an unclosed one
/// runs to the end.
pub(crate) fn strip_think(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<think>") {
        out.push_str(&rest[..start]);
        match rest[start..].find("</think>") {
            Some(end) => rest = &rest[start + end + "</think>".len()..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

pub(crate) fn strip_fences(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first balanced `{…}` in the text that parses as a JSON object.
pub(crate) fn find_json_object(text: &str) -> Option<Value> {
    let bytes = text.as_bytes();
    for (start, _) in text.match_indices('{') {
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        for (offset, &b) in bytes[start..].iter().enumerate() {
            if in_string {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        let candidate = &text[start..=start + offset];
                        if let Ok(value @ Value::Object(_)) = serde_json::from_str(candidate) {
                            return Some(value);
                        }
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    None
}

pub(crate) fn string_at(value: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .filter_map(|k| value.get(*k))
        .find_map(|v| v.as_str())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn array_at<'a>(value: &'a Value, keys: &[&str]) -> &'a [Value] {
    keys.iter()
        .filter_map(|k| value.get(*k))
        .find_map(|v| v.as_array())
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A list of strings, given as an array or as one "a; b, c" string;
/// items are trimmed and empty ones dropped.
pub(crate) fn strings_at(value: &Value, key: &str) -> Vec<String> {
    let items: Vec<&str> = match value.get(key) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => s.split([';', ',']).collect(),
        _ => Vec::new(),
    };
    items
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub(crate) fn as_u32(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
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

/// The report as Markdown (for exports).
pub fn report_markdown(report: &Report) -> String {
    let mut md = String::new();
    let missing = "*(not given)*";
    if report.partial {
        md.push_str("> Partial report: the debate did not finish.\n\n");
    }
    for note in &report.notes {
        let _ = writeln!(md, "> Note: {note}");
    }
    if !report.notes.is_empty() {
        md.push('\n');
    }
    if report.format == ReportFormat::PlainText {
        md.push_str(report.text.as_deref().unwrap_or(""));
        md.push('\n');
        return md;
    }
    let _ = writeln!(
        md,
        "### Summary\n\n{}\n",
        report.summary.as_deref().unwrap_or(missing)
    );
    if !report.personas.is_empty() {
        md.push_str(
            "### Personas\n\n| Persona | Stance | Interest | Reason |\n| --- | --- | --- | --- |\n",
        );
        for p in &report.personas {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                cell(p.name.as_deref().unwrap_or(missing)),
                p.stance.map(Stance::label).unwrap_or(missing),
                p.interest
                    .map(|i| format!("{i}/10"))
                    .unwrap_or_else(|| missing.into()),
                cell(p.reason.as_deref().unwrap_or(missing)),
            );
        }
        md.push('\n');
    }
    for (title, points) in [
        ("Top concerns", &report.concerns),
        ("Top requests", &report.requests),
    ] {
        if points.is_empty() {
            continue;
        }
        let _ = writeln!(md, "### {title}\n");
        for p in points {
            let _ = writeln!(
                md,
                "- {}{}",
                p.text,
                match evidence(p.count, &p.personas, &p.turns) {
                    e if e.is_empty() => e,
                    e => format!(" — {e}"),
                }
            );
        }
        md.push('\n');
    }
    if !report.insights.is_empty() {
        md.push_str("### Actionable insights\n\n");
        for (n, i) in report.insights.iter().enumerate() {
            let _ = write!(md, "{}. **{}**", n + 1, sentence(&i.change));
            if let Some(why) = &i.why {
                let _ = write!(md, " Why: {}", sentence(why));
            }
            if let Some(helps) = &i.helps {
                let _ = write!(md, " Helps: {}", sentence(helps));
            }
            if !i.turns.is_empty() {
                let _ = write!(md, " Evidence: {}.", turn_list(&i.turns));
            }
            md.push('\n');
        }
        md.push('\n');
    }
    md
}

/// "3 personas (Ana, Bo) · T2, T5", or "" when the model gave nothing.
pub fn evidence(count: Option<u32>, personas: &[String], turns: &[usize]) -> String {
    let mut parts = Vec::new();
    match (count, personas.is_empty()) {
        (Some(c), true) => parts.push(format!("{c} persona{}", if c == 1 { "" } else { "s" })),
        (Some(c), false) => parts.push(format!(
            "{c} persona{} ({})",
            if c == 1 { "" } else { "s" },
            personas.join(", ")
        )),
        (None, false) => parts.push(personas.join(", ")),
        (None, true) => {}
    }
    if !turns.is_empty() {
        parts.push(turn_list(turns));
    }
    parts.join(" · ")
}

pub fn turn_list(turns: &[usize]) -> String {
    turns
        .iter()
        .map(|t| format!("T{t}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Ends the text with a full stop unless it has its own punctuation.
fn sentence(text: &str) -> String {
    let text = text.trim();
    if text.ends_with(['.', '!', '?']) {
        text.to_string()
    } else {
        format!("{text}.")
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn prompt_numbers_turns_and_fits_a_budget() {
        let turns: Vec<Turn> = (0..10)
            .map(|i| Turn {
                persona_id: 1,
                speaker: format!("P{i}"),
                round: 1,
                text: "long words ".repeat(100),
                complete: true,
                usage: None,
                question: None,
            })
            .collect();
        let full = report_prompt("Dark mode", &turns, None);
        assert!(full.contains("[T1] P0:") && full.contains("[T10] P9:"));
        let small = report_prompt("Dark mode", &turns, Some(4000));
        assert!(small.len() < 4500, "{}", small.len());
        assert!(small.contains("[T10] P9:"));
    }

    #[test]
    fn markdown_marks_missing_fields() {
        let r = parse_report(r#"{"personas":[{"name":"Ana"}]}"#, 1);
        let md = report_markdown(&r);
        assert!(
            md.contains("| Ana | *(not given)* | *(not given)* |"),
            "{md}"
        );
        assert!(md.contains("### Summary\n\n*(not given)*"), "{md}");
    }
}
