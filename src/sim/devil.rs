//! The herding alarm and the devil's advocate.
//!
//! Panels of LLM personas drift into agreement. After each round the
//! stances stated in it (each persona's latest in the round, known ones
//! only, at least two) are counted: when one position holds at least the
//! threshold's share, the debate sends `herding`. A devil's-advocate turn
//! then asks one persona of that majority (the most interested, ties: the
//! first in speaking order) to argue the strongest honest case against it.
//! With [`DevilsAdvocate::Auto`] the debate runs one after every herding
//! round; with `Off` only when the moderator asks (`devils_advocate`).
//!
//! A devil's-advocate turn is marked on the turn (`devils_advocate`) and
//! reported as a `moderated` event, so the session records it; its stance
//! line is read as usual but never counted for the alarm (it is a role).

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::persona::Persona;

use super::debate::Turn;
use super::prompts::turn_prompt;
use super::stance::Position;

/// The share of known stances one position must hold for the alarm.
pub const DEFAULT_HERDING_THRESHOLD: f64 = 0.8;
/// Thresholds below this would call a bare majority herding.
pub const MIN_HERDING_THRESHOLD: f64 = 0.5;

/// Whether the debate runs a devil's-advocate turn by itself on herding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DevilsAdvocate {
    /// After every herding round.
    Auto,
    /// Only when the moderator asks.
    #[default]
    Off,
}

impl DevilsAdvocate {
    pub fn as_str(self) -> &'static str {
        match self {
            DevilsAdvocate::Auto => "auto",
            DevilsAdvocate::Off => "off",
        }
    }
}

impl fmt::Display for DevilsAdvocate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the debate watches for herding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Herding {
    /// 0.5 to 1.0: the share of known stances that counts as herding.
    pub threshold: f64,
    pub policy: DevilsAdvocate,
}

impl Default for Herding {
    fn default() -> Self {
        Herding {
            threshold: DEFAULT_HERDING_THRESHOLD,
            policy: DevilsAdvocate::Off,
        }
    }
}

/// A herding round: `count` of the `known` stances were `position`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Herd {
    pub position: Position,
    pub count: usize,
    pub known: usize,
}

impl Herd {
    pub fn share(&self) -> f64 {
        self.count as f64 / self.known as f64
    }
}

/// Turns whose stance speaks for the persona: debate turns, not questions,
/// follow-up answers or devil's-advocate roles.
fn counts_for_stance(t: &Turn) -> bool {
    !t.moderator && t.question.is_none() && !t.devils_advocate
}

/// Each persona's latest known position in `round` (every round: `None`),
/// in first-spoken order.
fn positions(turns: &[Turn], round: Option<u32>) -> Vec<(u32, Position, u8)> {
    let mut latest: Vec<(u32, Position, u8)> = Vec::new();
    let mut at: HashMap<u32, usize> = HashMap::new();
    for t in turns
        .iter()
        .filter(|t| counts_for_stance(t) && round.is_none_or(|r| t.round == r))
    {
        let Some(s) = t.stance else { continue };
        match at.get(&t.persona_id) {
            Some(&i) => latest[i] = (t.persona_id, s.position, s.interest),
            None => {
                at.insert(t.persona_id, latest.len());
                latest.push((t.persona_id, s.position, s.interest));
            }
        }
    }
    latest
}

/// The most held position among `stated`, with its count (ties: for,
/// mixed, against order, which never matters at a threshold above half).
fn leading(stated: &[(u32, Position, u8)]) -> Option<(Position, usize)> {
    let mut counts = [0usize; 3];
    for (_, p, _) in stated {
        counts[p.index()] += 1;
    }
    let (i, &n) = counts.iter().enumerate().rev().max_by_key(|(_, n)| **n)?;
    (n > 0).then_some((Position::ALL[i], n))
}

/// "Herding after round 2: 4 of 5 for (80%)", as every face says it.
pub fn herding_text(
    round: u32,
    position: Position,
    count: usize,
    known: usize,
    share: f64,
) -> String {
    format!(
        "Herding after round {round}: {count} of {known} {position} ({:.0}%)",
        share * 100.0
    )
}

/// Whether `round` herded at `threshold`.
pub fn herding(turns: &[Turn], round: u32, threshold: f64) -> Option<Herd> {
    let stated = positions(turns, Some(round));
    if stated.len() < 2 {
        return None;
    }
    let (position, count) = leading(&stated)?;
    let herd = Herd {
        position,
        count,
        known: stated.len(),
    };
    (herd.share() + 1e-9 >= threshold).then_some(herd)
}

/// The position the panel holds now (each persona's latest stance), if any.
pub fn majority_now(turns: &[Turn]) -> Option<Position> {
    leading(&positions(turns, None)).map(|(p, _)| p)
}

/// Who argues against `against`: the most interested persona whose latest
/// stance is it (ties: first in `personas`' order); with no such persona,
/// the first persona. An index into `personas`.
pub fn advocate(turns: &[Turn], personas: &[Persona], against: Option<Position>) -> Option<usize> {
    let stated = positions(turns, None);
    let mut best: Option<(usize, u8)> = None;
    for (i, p) in personas.iter().enumerate() {
        let Some(&(_, position, interest)) = stated.iter().find(|(id, _, _)| *id == p.id) else {
            continue;
        };
        // Strictly more interested: the first of equals keeps its place.
        if Some(position) == against && best.is_none_or(|(_, b)| interest > b) {
            best = Some((i, interest));
        }
    }
    best.map(|(i, _)| i).or((!personas.is_empty()).then_some(0))
}

/// The turn prompt with the devil's-advocate instruction: the usual
/// context (feature, discussion), then the role, stated as a role so the
/// persona argues it honestly and still gives its own stance line.
pub fn devils_advocate_prompt(
    feature: &str,
    transcript: &[Turn],
    speaker: &Persona,
    round: u32,
    rounds: u32,
    against: Option<Position>,
    budget_chars: Option<usize>,
) -> String {
    let role = devils_advocate_instruction(speaker, against);
    // Leave room for the role in the budget.
    let budget = budget_chars.map(|b| b.saturating_sub(role.len()));
    let base = turn_prompt(feature, transcript, speaker, round, rounds, budget);
    format!("{base}{role}")
}

/// What the devil's advocate is asked, after the turn's usual instruction.
pub fn devils_advocate_instruction(speaker: &Persona, against: Option<Position>) -> String {
    let view = match against {
        Some(Position::For) => "the panel is for this feature",
        Some(Position::Against) => "the panel is against this feature",
        Some(Position::Mixed) => "the panel is undecided about this feature",
        None => "the panel leans one way",
    };
    let case = match against {
        Some(Position::For) => "against building it",
        Some(Position::Against) => "for building it",
        _ => "against the view most of the panel holds",
    };
    format!(
        "\nDEVIL'S ADVOCATE: {view}, and the moderator wants it tested. This turn, {name}, \
argue the strongest honest case {case}: the real risks, costs or people it fails, in your own \
words and from your own experience. Do not agree with the others in this turn. Your stance \
line still gives your own view.",
        name = speaker.name
    )
}
