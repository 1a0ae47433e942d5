//! What the model is asked: the JSON schema and the prompt.

use std::fmt::Write as _;

use serde_json::json;

use crate::llm::JsonSchema;
use crate::sim::debate::Turn;

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

pub(super) const REPORT_SYSTEM: &str = "You are a product research analyst. You read a panel discussion \
about a product feature and write a feedback report for the product team. Use only what the \
transcript says; never invent opinions, people or turns. Reply with one JSON object and nothing else.";

const REPORT_SHAPE: &str = r#"Reply with JSON of this shape:
{"summary": "one paragraph",
 "personas": [{"name": "...", "stance": "for|mixed|against", "interest": 1-10, "reason": "one line in their words"}],
 "concerns": [{"text": "...", "count": personas who raised it, "personas": ["name"], "turns": [turn numbers]}],
 "requests": [{"text": "...", "count": 1, "personas": ["name"], "turns": [2]}],
 "insights": [{"change": "what to change", "why": "...", "helps": "who it helps", "priority": 1, "turns": [1, 3]}]}
Turn numbers are the [T#] numbers above. List insights most important first.
A persona's stance and interest are those they stated last ("stated: ..."), where they stated one.
Moderator turns are questions to the panel: the moderator is not a persona."#;

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
        let stated = turn
            .stance
            .map(|s| format!(" (stated: {s})"))
            .unwrap_or_default();
        let _ = writeln!(
            prompt,
            "[T{}] {}{question}: {text}{stated}",
            i + 1,
            turn.speaker
        );
    }
    prompt.push('\n');
    prompt.push_str(REPORT_SHAPE);
    prompt
}

#[cfg(test)]
mod tests {
    use super::*;

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
                ..Default::default()
            })
            .collect();
        let full = report_prompt("Dark mode", &turns, None);
        assert!(full.contains("[T1] P0:") && full.contains("[T10] P9:"));
        let small = report_prompt("Dark mode", &turns, Some(4000));
        assert!(small.len() < 4500, "{}", small.len());
        assert!(small.contains("[T10] P9:"));
    }

    #[test]
    fn prompt_carries_each_turns_stated_stance() {
        use crate::sim::stance::{Position, Stance};
        let turns = vec![
            Turn {
                speaker: "Ana".into(),
                text: "Worth it.".into(),
                stance: Stance::new(Position::For, 8),
                ..Default::default()
            },
            Turn::moderator_question("Night shifts?", 1),
            Turn {
                speaker: "Bo".into(),
                text: "No idea.".into(),
                ..Default::default()
            },
        ];
        let prompt = report_prompt("Dark mode", &turns, None);
        assert!(
            prompt.contains("[T1] Ana: Worth it. (stated: for, interest 8/10)\n"),
            "{prompt}"
        );
        assert!(
            prompt.contains("[T2] Moderator: Night shifts?\n"),
            "{prompt}"
        );
        assert!(prompt.contains("[T3] Bo: No idea.\n"), "{prompt}");
    }
}
