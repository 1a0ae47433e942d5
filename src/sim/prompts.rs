//! Prompts for persona turns. Kept short and explicit so small models cope.

use crate::persona::Persona;

use super::debate::Turn;
use super::stance::STANCE_FORMAT;

/// The persona's system prompt, built from every field it has.
pub fn persona_system_prompt(p: &Persona) -> String {
    let age = p.age.map(|a| format!("{a}-year-old ")).unwrap_or_default();
    let mut prompt = format!(
        "You are {name}, a {age}{occupation} in {location}. Your comfort with technology is {level}.",
        name = p.name,
        occupation = p.occupation,
        location = p.location,
        level = p.tech_proficiency.to_string().to_lowercase(),
    );
    if !p.behavioral_traits.is_empty() {
        prompt.push_str(&format!(
            " Your traits: {}.",
            p.behavioral_traits.join("; ")
        ));
    }
    for (key, value) in &p.extra {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            serde_json::Value::Number(n) => n.to_string(),
            _ => continue,
        };
        if !text.is_empty() {
            prompt.push_str(&format!(" Your {}: {text}.", key.replace('_', " ")));
        }
    }
    prompt.push_str(&format!(
        " You are in a product feedback session with other people. Speak in the first person as {}, \
with your own priorities, habits and doubts. Be concrete and honest; disagree when you would. \
Answer in the language the feature is written in. Never mention being an AI. \
End every reply with one last line, in English, in exactly this form: {STANCE_FORMAT} \
(choose for, mixed or against the feature, and put for N how much it interests you, from 1 to 10).",
        p.name
    ));
    prompt
}

/// A short hash of the prompt templates: the prompts built for a fixed
/// persona, transcript and question, and the report's. Wording changes
/// change it; code that does not change a prompt does not.
pub fn template_fingerprint() -> String {
    use sha2::{Digest, Sha256};
    let panel = crate::persona::builtin_panel();
    let said = Turn {
        persona_id: panel[1].id,
        speaker: panel[1].name.clone(),
        round: 1,
        text: "It costs too much.".into(),
        complete: true,
        ..Turn::default()
    };
    let asked = Turn::moderator_question("What about offline use?", 1);
    let turns = [said, asked];
    let parts = [
        persona_system_prompt(&panel[0]),
        turn_prompt("F", &[], &panel[0], 1, 2, None),
        turn_prompt("F", &turns, &panel[0], 2, 2, Some(4000)),
        followup_prompt("F", &turns, &panel[0], "Q?", None),
        super::report::report_prompt("F", &turns, None),
    ];
    let digest = Sha256::digest(parts.join("\u{0}").as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The reminder that closes every turn's instruction.
fn stance_reminder() -> String {
    format!("\nEnd with your stance line: {STANCE_FORMAT}")
}

/// A rough, deliberately low count of characters per token, for planning
/// prompts on a small context (English averages about four).
pub const CHARS_PER_TOKEN: usize = 3;

/// About four characters a token: how replies and prompts are counted when
/// a server reports no usage, and where a reply is capped on the client
/// side (a reply of `max_tokens` is at most this many characters a token).
pub const ESTIMATE_CHARS_PER_TOKEN: usize = 4;

/// Tokens in `chars` characters of text, by the estimate.
pub fn estimate_tokens(chars: usize) -> u32 {
    chars.div_ceil(ESTIMATE_CHARS_PER_TOKEN) as u32
}

/// The turn instruction: the feature, the transcript so far, and what to do.
/// With a budget (in characters), the oldest turns are folded into a
/// one-line summary so the prompt fits a small model's context.
pub fn turn_prompt(
    feature: &str,
    transcript: &[Turn],
    speaker: &Persona,
    round: u32,
    rounds: u32,
    budget_chars: Option<usize>,
) -> String {
    let spoke = transcript.iter().any(|t| !t.text.trim().is_empty());
    // One instruction per turn: small models lose track of more. The name
    // is left out of it: a small model given "answer as Maria" opens with
    // "Maria, …", addressing itself; and it copies whatever it is shown
    // unless told, in so many words, to use its own.
    let instruction = if !spoke {
        "\nYou speak first. In two or three short sentences of your own, say in the first person what you honestly think of this feature and why.".to_string()
    } else {
        format!(
            "\nRound {round} of {rounds}. {OWN_WORDS} In two or three short sentences, answer them: what do you think now, and why?"
        )
    };
    discussion_prompt(
        feature,
        transcript,
        Some(speaker),
        &(instruction + &moderator_ask(transcript, speaker) + &stance_reminder()),
        budget_chars,
    )
}

/// What keeps a small model from parroting the turns it is shown and from
/// talking to itself.
const OWN_WORDS: &str = "Do not repeat what was said: make a new point from your own life, in your own words, \
speaking as \"I\". Never say your own name.";

/// The moderator's latest question, when it came after the speaker's last
/// turn: asked outright, so the turn answers it.
fn moderator_ask(transcript: &[Turn], speaker: &Persona) -> String {
    let Some(asked) = transcript.iter().rposition(|t| t.moderator) else {
        return String::new();
    };
    let spoke = transcript
        .iter()
        .rposition(|t| !t.moderator && t.persona_id == speaker.id);
    if spoke.is_some_and(|s| s > asked) {
        return String::new();
    }
    format!(
        "\nThe moderator asked: \"{}\" Answer that question.",
        transcript[asked].text.trim()
    )
}

/// A follow-up question from the product team, after the debate.
pub fn followup_prompt(
    feature: &str,
    transcript: &[Turn],
    speaker: &Persona,
    question: &str,
    budget_chars: Option<usize>,
) -> String {
    let instruction = format!(
        "\nThe product team asks you a follow-up question: {}\nAnswer it as {} in two or three sentences, from your own experience.",
        question.trim(),
        speaker.name
    ) + &stance_reminder();
    discussion_prompt(
        feature,
        transcript,
        Some(speaker),
        &instruction,
        budget_chars,
    )
}

/// The feature, the turns so far (each quoted, the speaker's own marked
/// "you"), then the instruction.
fn discussion_prompt(
    feature: &str,
    transcript: &[Turn],
    speaker: Option<&Persona>,
    instruction: &str,
    budget_chars: Option<usize>,
) -> String {
    let budget = budget_chars.unwrap_or(usize::MAX);
    let feature = clip(feature.trim(), budget / 2);
    let mut prompt = format!("Feature under discussion:\n{feature}\n");
    let said: Vec<&Turn> = transcript
        .iter()
        .filter(|t| !t.text.trim().is_empty())
        .collect();
    if !said.is_empty() {
        let lines: Vec<String> = said
            .iter()
            .map(|t| {
                // A turn cut at its token limit reads as unfinished.
                let end = if t.is_cut_off() { "…" } else { "" };
                // Quoted, so the words read as someone's, not as a draft
                // to continue; the speaker's own turns say so.
                let who = match speaker {
                    Some(p) if !t.moderator && t.persona_id == p.id => {
                        format!("You ({})", t.speaker)
                    }
                    _ => t.speaker.clone(),
                };
                match &t.question {
                    Some(q) => format!("{who} (asked “{}”): “{}{end}”\n", q.trim(), t.text.trim()),
                    None => format!("{who}: “{}{end}”\n", t.text.trim()),
                }
            })
            .collect();
        // Keep the newest turns that fit; summarise the rest in one line.
        let room = budget.saturating_sub(prompt.len() + instruction.len() + 40);
        let summary_room = room / 4;
        let mut used = 0;
        let mut keep = 0;
        for line in lines.iter().rev() {
            if used + line.len() > room - summary_room.min(room) && keep > 0 {
                break;
            }
            used += line.len();
            keep += 1;
        }
        let older = &said[..said.len() - keep];
        prompt.push_str("\nDiscussion so far:\n");
        if !older.is_empty() {
            prompt.push_str(&summarise(older, summary_room));
            prompt.push('\n');
        }
        for line in &lines[lines.len() - keep..] {
            prompt.push_str(&clip(line, room));
        }
    }
    prompt.push_str(instruction);
    prompt
}

/// "Earlier (3 turns): Ana: I like the idea…; Bo: Too…" within `room` chars.
fn summarise(turns: &[&Turn], room: usize) -> String {
    let mut line = format!("Earlier ({} turns): ", turns.len());
    for (i, turn) in turns.iter().enumerate() {
        let words: Vec<&str> = turn.text.split_whitespace().take(8).collect();
        let piece = format!(
            "{}{}: {}…",
            if i > 0 { "; " } else { "" },
            turn.speaker,
            words.join(" ")
        );
        if line.len() + piece.len() > room {
            line.push_str(&format!("; and {} more", turns.len() - i));
            break;
        }
        line.push_str(&piece);
    }
    line
}

/// Cuts text to at most `max` bytes on a character boundary.
fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::builtin_panel;

    #[test]
    fn system_prompt_uses_every_field() {
        let mut p = builtin_panel()[1].clone();
        p.extra.insert(
            "goals".into(),
            serde_json::json!(["sell more", "save time"]),
        );
        let prompt = persona_system_prompt(&p);
        for needle in [
            p.name.as_str(),
            p.occupation.as_str(),
            p.location.as_str(),
            "low",
            "61-year-old",
            p.behavioral_traits[0].as_str(),
            "Your goals: sell more; save time.",
            "STANCE: for|mixed|against, interest N/10",
        ] {
            assert!(prompt.contains(needle), "missing {needle:?} in {prompt}");
        }
    }

    #[test]
    fn turn_prompt_carries_feature_and_transcript() {
        let panel = builtin_panel();
        let first = turn_prompt("Dark mode", &[], &panel[0], 1, 2, None);
        assert!(first.contains("Dark mode") && first.contains("You speak first"));
        assert_eq!(
            first.matches('?').count(),
            0,
            "one instruction, no list of questions"
        );
        let transcript = vec![Turn {
            persona_id: 2,
            speaker: "Kwame Mensah".into(),
            round: 1,
            text: "Too expensive.".into(),
            complete: true,
            usage: None,
            question: None,
            ..Turn::default()
        }];
        let second = turn_prompt("Dark mode", &transcript, &panel[0], 1, 2, None);
        assert!(
            second.contains("Kwame Mensah: “Too expensive.”"),
            "{second}"
        );
        assert!(second.contains("Round 1 of 2"));
        // Asked for new words, never addressed by name.
        assert!(second.contains("Do not repeat what was said"));
        assert!(second.contains("Never say your own name"));
        for prompt in [&first, &second] {
            assert!(!prompt.contains(&panel[0].name), "{prompt}");
        }
        // The speaker's own earlier turn is marked as theirs.
        let mut mine = transcript.clone();
        mine.push(Turn {
            persona_id: panel[0].id,
            speaker: panel[0].name.clone(),
            round: 1,
            text: "I like it.".into(),
            complete: true,
            ..Turn::default()
        });
        let third = turn_prompt("Dark mode", &mine, &panel[0], 2, 2, None);
        assert!(
            third.contains(&format!("You ({}): “I like it.”", panel[0].name)),
            "{third}"
        );
    }

    #[test]
    fn a_long_transcript_is_trimmed_to_the_budget_keeping_the_newest_turns() {
        let panel = builtin_panel();
        let mut transcript = Vec::new();
        for round in 1..=5 {
            for p in &panel[..10] {
                transcript.push(Turn {
                    persona_id: p.id,
                    speaker: p.name.clone(),
                    round,
                    text: format!("Round {round}: {} ", p.name)
                        + &"I have concerns about price and data. ".repeat(15),
                    complete: true,
                    usage: None,
                    question: None,
                    ..Turn::default()
                });
            }
        }
        let budget = 4000;
        let prompt = turn_prompt("Offline mode", &transcript, &panel[0], 5, 5, Some(budget));
        assert!(prompt.len() <= budget, "{} > {budget}", prompt.len());
        assert!(prompt.contains("Offline mode"));
        assert!(
            prompt.contains("Earlier (") && prompt.contains("more"),
            "{prompt}"
        );
        let newest = transcript.last().unwrap();
        assert!(prompt.contains(newest.text.trim()));
        assert!(prompt.ends_with(&format!(
            "what do you think now, and why?\nEnd with your stance line: {STANCE_FORMAT}"
        )));
        // Without a budget nothing is dropped.
        let full = turn_prompt("Offline mode", &transcript, &panel[0], 5, 5, None);
        assert!(!full.contains("Earlier ("));
        assert!(full.contains(transcript[0].text.trim()));
    }

    #[test]
    fn a_huge_feature_is_clipped() {
        let panel = builtin_panel();
        let feature = "word ".repeat(5000);
        let prompt = turn_prompt(&feature, &[], &panel[0], 1, 1, Some(3000));
        assert!(prompt.len() <= 3000);
    }
}
