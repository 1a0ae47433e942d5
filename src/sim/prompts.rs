//! Prompts for persona turns. Kept short and explicit so small models cope.

use crate::persona::Persona;

use super::debate::Turn;

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
Never mention being an AI.",
        p.name
    ));
    prompt
}

/// The turn instruction: the feature, the transcript so far, and what to do.
pub fn turn_prompt(
    feature: &str,
    transcript: &[Turn],
    speaker: &Persona,
    round: u32,
    rounds: u32,
) -> String {
    let mut prompt = format!("Feature under discussion:\n{}\n", feature.trim());
    let said: Vec<&Turn> = transcript
        .iter()
        .filter(|t| !t.text.trim().is_empty())
        .collect();
    if said.is_empty() {
        prompt.push_str(&format!(
            "\nYou speak first. As {}, give your honest first reaction in 2 to 4 sentences: would you use it, what worries you, what would you need?",
            speaker.name
        ));
    } else {
        prompt.push_str("\nDiscussion so far:\n");
        for turn in said {
            prompt.push_str(&format!("{}: {}\n", turn.speaker, turn.text.trim()));
        }
        prompt.push_str(&format!(
            "\nRound {round} of {rounds}. Reply as {} in 2 to 4 sentences: react to the feature and to at least one point another person made.",
            speaker.name
        ));
    }
    prompt
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
        ] {
            assert!(prompt.contains(needle), "missing {needle:?} in {prompt}");
        }
    }

    #[test]
    fn turn_prompt_carries_feature_and_transcript() {
        let panel = builtin_panel();
        let first = turn_prompt("Dark mode", &[], &panel[0], 1, 2);
        assert!(first.contains("Dark mode") && first.contains("You speak first"));
        let transcript = vec![Turn {
            persona_id: 2,
            speaker: "Kwame Mensah".into(),
            round: 1,
            text: "Too expensive.".into(),
            complete: true,
        }];
        let second = turn_prompt("Dark mode", &transcript, &panel[0], 1, 2);
        assert!(second.contains("Kwame Mensah: Too expensive."));
        assert!(second.contains("Round 1 of 2"));
    }
}
