//! A debate and its report in numbers, so their quality can be measured
//! and compared (`persona-sim eval`, the report screen). Every figure is
//! computed from the session as saved; none asks a model.
//!
//! Words are lower-cased runs of letters, digits and apostrophes; n-grams
//! are 5 words long (`N`). Moderator questions and follow-up answers are
//! not debate turns here.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::debate::Turn;
use super::report::{Report, participants};
use super::session::Session;
use super::stance::Position;

/// The n-gram length the copy and loop rates count.
pub const N: usize = 5;
/// The share at which one stance counts as the panel's consensus.
pub const CONSENSUS_SHARE: f64 = 0.6;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub session: String,
    /// Debate turns with at least `N` words (the rates' base).
    pub turns: usize,
    /// Mean share of a turn's 5-grams that another speaker had already said.
    pub copy_rate: f64,
    /// The highest copy rate of one turn.
    pub copy_rate_max: f64,
    /// Mean share of a turn's 5-grams that repeat earlier ones of the same turn.
    pub loop_rate: f64,
    /// Per round: the Shannon entropy (bits, 0 to log2 3) of the stances
    /// the personas stated in it; `None` for a round with none.
    pub stance_entropy: Vec<Option<f64>>,
    /// The first round where one stance held more than 60% of the stances
    /// stated in it.
    pub consensus_round: Option<u32>,
    /// Of the personas whose first stance was not the final majority's, the
    /// share whose last stance was; `None` without a majority or a minority.
    pub minority_flipped: Option<f64>,
    /// Turns where the speaker addresses themself by first name.
    pub self_address: usize,
    /// Share of the report's citations that point at an existing turn by a
    /// persona the item names (any persona's turn when it names none),
    /// counting those the check dropped; `None` with no citation.
    pub citation_validity: Option<f64>,
    /// Report items (concerns, requests, insights) citing no turn.
    pub uncited_items: Option<usize>,
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn grams(words: &[String]) -> Vec<&[String]> {
    words.windows(N).collect()
}

/// The turns of the debate itself: persona turns, not follow-ups.
fn debate_turns(turns: &[Turn]) -> impl Iterator<Item = &Turn> {
    turns
        .iter()
        .filter(|t| !t.moderator && t.question.is_none())
}

/// Per turn (with at least `N` words): (copy rate, loop rate).
pub fn turn_rates(turns: &[Turn]) -> Vec<(f64, f64)> {
    let mut said: Vec<(u32, HashSet<Vec<String>>)> = Vec::new();
    let mut rates = Vec::new();
    for turn in debate_turns(turns) {
        let w = words(&turn.text);
        let g = grams(&w);
        if !g.is_empty() {
            let copied = g
                .iter()
                .filter(|gram| {
                    said.iter()
                        .any(|(who, set)| *who != turn.persona_id && set.contains(**gram))
                })
                .count();
            let mut seen = HashSet::new();
            let looped = g.iter().filter(|gram| !seen.insert(**gram)).count();
            rates.push((
                copied as f64 / g.len() as f64,
                looped as f64 / g.len() as f64,
            ));
        }
        let set: HashSet<Vec<String>> = g.iter().map(|gram| gram.to_vec()).collect();
        match said.iter_mut().find(|(who, _)| *who == turn.persona_id) {
            Some((_, known)) => known.extend(set),
            None => said.push((turn.persona_id, set)),
        }
    }
    rates
}

/// Turns whose stance is the persona's own view (a devil's advocate argues
/// a role).
fn stated_turns(turns: &[Turn]) -> impl Iterator<Item = &Turn> {
    debate_turns(turns).filter(|t| !t.devils_advocate)
}

/// Each persona's last stated stance in each round, by round (1-based).
fn stances_by_round(turns: &[Turn]) -> Vec<HashMap<u32, Position>> {
    let rounds = debate_turns(turns).map(|t| t.round).max().unwrap_or(0) as usize;
    let mut by_round = vec![HashMap::new(); rounds];
    for t in stated_turns(turns) {
        if let (Some(s), Some(round)) = (t.stance, (t.round as usize).checked_sub(1)) {
            by_round[round].insert(t.persona_id, s.position);
        }
    }
    by_round
}

fn counts(stances: &HashMap<u32, Position>) -> [usize; 3] {
    let mut c = [0; 3];
    for p in stances.values() {
        c[p.index()] += 1;
    }
    c
}

/// Shannon entropy, in bits, of the stances stated.
pub fn entropy(stances: &HashMap<u32, Position>) -> Option<f64> {
    let c = counts(stances);
    let total: usize = c.iter().sum();
    if total == 0 {
        return None;
    }
    let h = c
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = n as f64 / total as f64;
            -p * p.log2()
        })
        .sum::<f64>();
    // One position only: 0 bits (not -0).
    Some(if h > 0.0 { h } else { 0.0 })
}

/// The stance held by more than `share` of those stated, if one is.
fn majority(stances: &HashMap<u32, Position>, share: f64) -> Option<Position> {
    let c = counts(stances);
    let total: usize = c.iter().sum();
    let (at, &most) = c.iter().enumerate().max_by_key(|(_, n)| **n)?;
    (total > 0 && most as f64 / total as f64 > share).then(|| Position::ALL[at])
}

/// Of those who began outside the final majority, the share who ended in it.
fn minority_flipped(turns: &[Turn]) -> Option<f64> {
    let by_round = stances_by_round(turns);
    let last = by_round.iter().rev().find(|r| !r.is_empty())?;
    let winner = majority(last, 0.5)?;
    let mut first: HashMap<u32, Position> = HashMap::new();
    let mut latest: HashMap<u32, Position> = HashMap::new();
    for t in stated_turns(turns) {
        if let Some(s) = t.stance {
            first.entry(t.persona_id).or_insert(s.position);
            latest.insert(t.persona_id, s.position);
        }
    }
    let minority: Vec<u32> = first
        .iter()
        .filter(|(_, p)| **p != winner)
        .map(|(id, _)| *id)
        .collect();
    if minority.is_empty() {
        return None;
    }
    let flipped = minority
        .iter()
        .filter(|id| latest.get(id) == Some(&winner))
        .count();
    Some(flipped as f64 / minority.len() as f64)
}

/// Turns whose speaker calls themself by their first name ("Maria, I…"
/// said by Maria Lopez): a small model losing track of who it is.
fn self_address(turns: &[Turn]) -> usize {
    debate_turns(turns)
        .filter(|t| {
            let Some(first) = t.speaker.split_whitespace().next() else {
                return false;
            };
            let first = first.to_lowercase();
            let w = words(&t.text);
            w.iter().enumerate().any(|(i, word)| {
                *word == first
                    && (i == 0
                        || matches!(
                            w.get(i.wrapping_sub(1)).map(String::as_str),
                            Some("hi" | "hey" | "dear" | "thanks" | "thank")
                        ))
            })
        })
        .count()
}

/// (valid citations, all citations) of the report as the model wrote it.
fn citations(report: &Report, turns: &[Turn]) -> (usize, usize) {
    let people = participants(turns);
    let mut valid = 0;
    let mut all = report.dropped_citations;
    for point in report.concerns.iter().chain(&report.requests) {
        let ids: Vec<u32> = point
            .personas
            .iter()
            .filter_map(|n| people.iter().find(|(_, name)| name == n).map(|(id, _)| *id))
            .collect();
        for n in &point.turns {
            all += 1;
            let ok = n
                .checked_sub(1)
                .and_then(|i| turns.get(i))
                .is_some_and(|t| !t.moderator && (ids.is_empty() || ids.contains(&t.persona_id)));
            valid += usize::from(ok);
        }
    }
    for insight in &report.insights {
        for n in &insight.turns {
            all += 1;
            let ok = n
                .checked_sub(1)
                .and_then(|i| turns.get(i))
                .is_some_and(|t| !t.moderator);
            valid += usize::from(ok);
        }
    }
    (valid, all)
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

pub fn evaluate(session: &Session) -> Evaluation {
    let turns = &session.turns;
    let rates = turn_rates(turns);
    let by_round = stances_by_round(turns);
    let consensus_round = by_round
        .iter()
        .position(|r| r.len() >= 2 && majority(r, CONSENSUS_SHARE).is_some())
        .map(|i| i as u32 + 1);
    let report = session.report.as_ref();
    let (citation_validity, uncited_items) = match report {
        Some(r) => {
            let (valid, all) = citations(r, turns);
            let uncited = r.concerns.iter().filter(|p| p.turns.is_empty()).count()
                + r.requests.iter().filter(|p| p.turns.is_empty()).count()
                + r.insights.iter().filter(|i| i.turns.is_empty()).count();
            ((all > 0).then(|| valid as f64 / all as f64), Some(uncited))
        }
        None => (None, None),
    };
    Evaluation {
        session: session.id.clone(),
        turns: rates.len(),
        copy_rate: mean(rates.iter().map(|r| r.0)),
        copy_rate_max: rates.iter().map(|r| r.0).fold(0.0, f64::max),
        loop_rate: mean(rates.iter().map(|r| r.1)),
        stance_entropy: by_round.iter().map(entropy).collect(),
        consensus_round,
        minority_flipped: minority_flipped(turns),
        self_address: self_address(turns),
        citation_validity,
        uncited_items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::stance::Stance;

    fn turn(id: u32, name: &str, round: u32, text: &str, stance: Option<(Position, u8)>) -> Turn {
        Turn {
            persona_id: id,
            speaker: name.into(),
            round,
            text: text.into(),
            complete: true,
            stance: stance.and_then(|(p, i)| Stance::new(p, i)),
            ..Turn::default()
        }
    }

    #[test]
    fn copy_and_loop_rates_count_five_grams() {
        let turns = vec![
            turn(1, "Ana", 1, "the price is far too high for us", None),
            // 4 of its 6 five-grams are Ana's: "the price is far too",
            // "price is far too high", "is far too high for", "far too high for us".
            turn(
                2,
                "Bo",
                1,
                "the price is far too high for us here now",
                None,
            ),
            // Ana repeating herself is a loop, not a copy.
            turn(
                1,
                "Ana",
                2,
                "one two three four five one two three four five",
                None,
            ),
        ];
        let rates = turn_rates(&turns);
        assert_eq!(rates.len(), 3);
        assert_eq!(rates[0], (0.0, 0.0));
        assert!((rates[1].0 - 4.0 / 6.0).abs() < 1e-9, "{:?}", rates[1]);
        assert_eq!(rates[2].0, 0.0);
        // 6 five-grams, the last one repeats the first.
        assert!((rates[2].1 - 1.0 / 6.0).abs() < 1e-9, "{:?}", rates[2]);
    }

    #[test]
    fn stance_entropy_consensus_and_flips() {
        use Position::*;
        let turns = vec![
            turn(1, "Ana", 1, "a", Some((For, 7))),
            turn(2, "Bo", 1, "b", Some((Against, 3))),
            turn(3, "Cy", 1, "c", Some((Mixed, 5))),
            turn(1, "Ana", 2, "a", Some((For, 8))),
            turn(2, "Bo", 2, "b", Some((For, 6))),
            turn(3, "Cy", 2, "c", Some((For, 6))),
        ];
        let config = crate::sim::debate::DebateConfig {
            feature: "F".into(),
            personas: Vec::new(),
            rounds: 2,
            max_tokens_per_turn: 100,
            max_tokens_total: None,
        };
        let info = crate::llm::BackendInfo {
            kind: "test",
            model: "m".into(),
            endpoint: "memory".into(),
        };
        let session = Session {
            turns,
            ..Session::new(&config, info)
        };
        let e = evaluate(&session);
        let h1 = e.stance_entropy[0].unwrap();
        assert!(
            (h1 - 3f64.log2()).abs() < 1e-9,
            "three different: log2 3, got {h1}"
        );
        assert_eq!(e.stance_entropy[1], Some(0.0));
        assert_eq!(e.consensus_round, Some(2));
        // Bo and Cy began outside "for" and both ended in it.
        assert_eq!(e.minority_flipped, Some(1.0));
    }

    #[test]
    fn self_address_is_the_speakers_own_first_name() {
        let turns = vec![
            turn(1, "Maria Lopez", 1, "Maria, I am so glad we agree.", None),
            turn(2, "Kwame Mensah", 1, "Maria is right about the ward.", None),
        ];
        assert_eq!(self_address(&turns), 1);
    }
}
