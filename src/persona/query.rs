//! Searching and describing a panel: the query language behind the persona
//! search box, panel statistics, near-duplicate detection for synthesised
//! personas and CSV export. No terminal code and no I/O.
//!
//! # Query language
//!
//! A query is a list of whitespace-separated terms, case-insensitive and
//! AND-ed. A plain term matches when it starts a word (or a field) anywhere
//! in the persona: id, name, occupation, location, tech proficiency, a trait,
//! the age, or a string / number / string-array value of an extra field (bio,
//! goals, ...). Matching at word starts keeps `low` from matching "slow" or
//! "follow", while still finding "nurse" in "ICU nurses" and "eng" in
//! "engineer". Terms in scripts written without spaces (CJK) match anywhere.
//!
//! `"double quotes"` group words into one phrase term. Field filters:
//!
//! - `prof:low` (also `tech:`): the tech proficiency; a prefix is enough
//!   (`prof:m`), and `prof:low|medium` (or `low,medium`) accepts either.
//! - `loc:<text>`: a case-insensitive substring of the location.
//!
//! A filter with nothing after the colon is ignored (the user is still
//! typing); an unknown proficiency matches nothing. The empty query matches
//! every persona.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::ops::Range;

use serde::Serialize;

use super::{Persona, TechProficiency};

/// Separates fields in a haystack: not a word character and never part of a
/// term, so no match can span two fields.
const FIELD_SEP: char = '\u{1}';

const LEVELS: [TechProficiency; 3] = [
    TechProficiency::Low,
    TechProficiency::Medium,
    TechProficiency::High,
];

// ---------------------------------------------------------------------------
// Query
// ---------------------------------------------------------------------------

/// A parsed search query. See the module documentation for the syntax.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    /// Lowercased plain terms, duplicates removed, in the order typed.
    terms: Vec<String>,
    /// Accepted proficiencies (Low, Medium, High); `None` when unconstrained.
    proficiency: Option<[bool; 3]>,
    /// Lowercased substrings the location must all contain.
    locations: Vec<String>,
}

impl Query {
    /// Parses user text. Never fails: anything that is not a known filter is
    /// a plain term.
    pub fn parse(text: &str) -> Query {
        let mut query = Query::default();
        for token in tokenize(text) {
            let filter = token
                .split_once(':')
                .filter(|(key, _)| matches!(*key, "prof" | "tech" | "loc"));
            match filter {
                Some(("loc", value)) => {
                    if !value.is_empty() && !query.locations.iter().any(|l| l == value) {
                        query.locations.push(value.to_string());
                    }
                }
                Some((_, value)) => {
                    if value.is_empty() {
                        continue;
                    }
                    let mut accepted = [false; 3];
                    for part in value.split(['|', ',']).filter(|p| !p.is_empty()) {
                        for (slot, level) in accepted.iter_mut().zip(LEVELS) {
                            *slot |= level_name(level).starts_with(part);
                        }
                    }
                    let current = query.proficiency.get_or_insert([true; 3]);
                    for (slot, ok) in current.iter_mut().zip(accepted) {
                        *slot &= ok;
                    }
                }
                None => {
                    if !query.terms.contains(&token) {
                        query.terms.push(token);
                    }
                }
            }
        }
        query
    }

    /// True when the query matches every persona.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty() && self.proficiency.is_none() && self.locations.is_empty()
    }

    /// The plain (lowercased) terms, e.g. for highlighting matches.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// Whether one persona matches. For a whole panel, prefer [`SearchIndex`].
    pub fn matches(&self, persona: &Persona) -> bool {
        if self.is_empty() {
            return true;
        }
        let mut text = String::new();
        let location = push_haystack(&mut text, persona);
        self.matches_prepared(
            persona,
            &text,
            &text[location],
            &self.terms_by_selectivity(),
        )
    }

    /// Longest terms first: they are usually the rarest, so most personas are
    /// rejected after one scan.
    fn terms_by_selectivity(&self) -> Vec<&str> {
        let mut terms: Vec<&str> = self.terms.iter().map(String::as_str).collect();
        terms.sort_by_key(|t| Reverse(t.len()));
        terms
    }

    fn matches_prepared(
        &self,
        persona: &Persona,
        haystack: &str,
        location: &str,
        terms: &[&str],
    ) -> bool {
        if let Some(accepted) = self.proficiency
            && !accepted[level_index(persona.tech_proficiency)]
        {
            return false;
        }
        self.locations.iter().all(|l| location.contains(l.as_str()))
            && terms.iter().all(|t| contains_word_prefix(haystack, t))
    }
}

/// Splits on whitespace outside double quotes, folds case and drops control
/// characters (so a term can never contain [`FIELD_SEP`]). An unterminated
/// quote runs to the end, which suits search-as-you-type.
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        if c == '"' {
            quoted = !quoted;
        } else if c.is_whitespace() && !quoted {
            if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
        } else if !c.is_control() {
            push_folded(&mut current, c);
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

fn level_name(level: TechProficiency) -> &'static str {
    match level {
        TechProficiency::Low => "low",
        TechProficiency::Medium => "medium",
        TechProficiency::High => "high",
    }
}

fn level_index(level: TechProficiency) -> usize {
    match level {
        TechProficiency::Low => 0,
        TechProficiency::Medium => 1,
        TechProficiency::High => 2,
    }
}

/// Unicode lowercase, char by char (so the result never depends on
/// context), with the final sigma folded to σ: "ΟΔΥΣ" finds "Οδυσσεύς".
fn push_folded(out: &mut String, c: char) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
    } else {
        for l in c.to_lowercase() {
            out.push(if l == 'ς' { 'σ' } else { l });
        }
    }
}

fn push_folded_str(out: &mut String, s: &str) {
    if s.is_ascii() {
        // The common case, in bulk.
        let start = out.len();
        out.push_str(s);
        out[start..].make_ascii_lowercase();
    } else {
        for c in s.chars() {
            push_folded(out, c);
        }
    }
}

fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_folded_str(&mut out, s);
    out
}

/// A letter or digit of a script that separates words with spaces. Below
/// U+2E80 (where the CJK blocks start) this is close enough.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && (c as u32) < 0x2E80
}

/// Whether `term` occurs in `haystack` at the start of a word.
fn contains_word_prefix(haystack: &str, term: &str) -> bool {
    // `contains` is the fast (SIMD) path and rejects most haystacks.
    if !haystack.contains(term) {
        return false;
    }
    if !term.chars().next().is_some_and(is_word_char) {
        return true;
    }
    haystack
        .match_indices(term)
        .any(|(i, _)| !haystack[..i].chars().next_back().is_some_and(is_word_char))
}

/// Appends the persona's folded fields, each preceded by [`FIELD_SEP`], and
/// returns the byte range of the location within `out`.
fn push_haystack(out: &mut String, p: &Persona) -> Range<usize> {
    let _ = write!(out, "{FIELD_SEP}{}", p.id);
    for field in [&p.name, &p.occupation] {
        out.push(FIELD_SEP);
        push_folded_str(out, field);
    }
    out.push(FIELD_SEP);
    let start = out.len();
    push_folded_str(out, &p.location);
    let location = start..out.len();
    out.push(FIELD_SEP);
    out.push_str(level_name(p.tech_proficiency));
    for t in &p.behavioral_traits {
        out.push(FIELD_SEP);
        push_folded_str(out, t);
    }
    if let Some(age) = p.age {
        let _ = write!(out, "{FIELD_SEP}{age}");
    }
    for value in p.extra.values() {
        push_value(out, value);
    }
    location
}

fn push_value(out: &mut String, value: &serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            out.push(FIELD_SEP);
            push_folded_str(out, s);
        }
        serde_json::Value::Number(n) => {
            let _ = write!(out, "{FIELD_SEP}{n}");
        }
        serde_json::Value::Array(items) => {
            for item in items {
                if !item.is_array() {
                    push_value(out, item);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// SearchIndex
// ---------------------------------------------------------------------------

/// Folded haystacks for a panel, built once and reused for every keystroke.
/// Rebuild it whenever the panel changes.
#[derive(Debug, Clone, Default)]
pub struct SearchIndex {
    /// All haystacks back to back, in one allocation.
    text: String,
    entries: Vec<IndexEntry>,
}

#[derive(Debug, Clone)]
struct IndexEntry {
    haystack: Range<usize>,
    location: Range<usize>,
}

impl SearchIndex {
    pub fn new(panel: &[Persona]) -> SearchIndex {
        let mut text = String::with_capacity(panel.len() * 320);
        let mut entries = Vec::with_capacity(panel.len());
        for p in panel {
            let start = text.len();
            let location = push_haystack(&mut text, p);
            entries.push(IndexEntry {
                haystack: start..text.len(),
                location,
            });
        }
        SearchIndex { text, entries }
    }

    /// Number of personas indexed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Indices (into `panel`, in panel order) of the personas matching
    /// `query`. `panel` must be the panel the index was built from; if its
    /// length differs the index is stale and a fresh one is built for this
    /// call, so the answer is still right (only slower).
    pub fn filter(&self, panel: &[Persona], query: &Query) -> Vec<usize> {
        if panel.len() != self.entries.len() {
            return SearchIndex::new(panel).filter(panel, query);
        }
        if query.is_empty() {
            return (0..panel.len()).collect();
        }
        let terms = query.terms_by_selectivity();
        panel
            .iter()
            .zip(&self.entries)
            .enumerate()
            .filter(|(_, (p, e))| {
                query.matches_prepared(
                    p,
                    &self.text[e.haystack.clone()],
                    &self.text[e.location.clone()],
                    &terms,
                )
            })
            .map(|(i, _)| i)
            .collect()
    }
}

/// Indices of the personas matching `query`, in panel order. Builds a
/// throwaway [`SearchIndex`]; keep one around when filtering repeatedly.
pub fn filter(panel: &[Persona], query: &Query) -> Vec<usize> {
    if query.is_empty() {
        return (0..panel.len()).collect();
    }
    SearchIndex::new(panel).filter(panel, query)
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

/// How many traits [`PanelStats::top_traits`] keeps.
pub const TOP_TRAITS: usize = 20;

/// A label and how many personas have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    pub name: String,
    pub count: usize,
}

/// Ages grouped into buckets: `<25`, `25-34`, `35-44`, `45-54`, `55-64`,
/// `65+` (always all six, in that order), plus personas without an age.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgeStats {
    pub buckets: Vec<Count>,
    pub unknown: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diversity {
    /// Distinct countries (case-insensitive).
    pub countries: usize,
    /// Distinct occupations (case-insensitive).
    pub occupations: usize,
    /// Shannon evenness of the proficiency mix over the three levels: 0 when
    /// everyone shares one level (or the panel is empty), 1 for equal thirds.
    pub proficiency_evenness: f64,
}

/// A description of a panel (`personas stats`). Lists are sorted by count,
/// most common first, then by name; labels are grouped case-insensitively
/// and shown with the first spelling seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PanelStats {
    pub total: usize,
    /// Low, Medium, High: always all three, in that order.
    pub by_proficiency: Vec<Count>,
    /// Country = the last comma-separated part of the location.
    pub by_country: Vec<Count>,
    pub by_occupation: Vec<Count>,
    /// The [`TOP_TRAITS`] most common traits (each counted once per persona).
    pub top_traits: Vec<Count>,
    /// Distinct traits in the whole panel.
    pub distinct_traits: usize,
    /// `None` when no persona has an age.
    pub ages: Option<AgeStats>,
    pub diversity: Diversity,
}

/// Counts labels case-insensitively, remembering the first spelling.
#[derive(Default)]
struct Tally {
    counts: HashMap<String, (String, usize)>,
}

impl Tally {
    fn add(&mut self, label: &str) {
        let label = label.trim();
        if label.is_empty() {
            return;
        }
        self.add_keyed(&fold(label), label);
    }

    fn add_keyed(&mut self, key: &str, label: &str) {
        match self.counts.get_mut(key) {
            Some((_, count)) => *count += 1,
            None => {
                self.counts.insert(key.to_string(), (label.to_string(), 1));
            }
        }
    }

    fn len(&self) -> usize {
        self.counts.len()
    }

    fn sorted(self) -> Vec<Count> {
        let mut rows: Vec<(String, String, usize)> = self
            .counts
            .into_iter()
            .map(|(key, (name, count))| (key, name, count))
            .collect();
        rows.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        rows.into_iter()
            .map(|(_, name, count)| Count { name, count })
            .collect()
    }
}

/// The country part of a location: "Tulsa, Oklahoma, USA" → "USA",
/// "Singapore" → "Singapore".
pub fn country_of(location: &str) -> &str {
    location
        .rsplit(',')
        .map(str::trim)
        .find(|part| !part.is_empty())
        .unwrap_or_else(|| location.trim())
}

const AGE_BUCKETS: [(&str, u32); 6] = [
    ("<25", 25),
    ("25-34", 35),
    ("35-44", 45),
    ("45-54", 55),
    ("55-64", 65),
    ("65+", u32::MAX),
];

pub fn stats(panel: &[Persona]) -> PanelStats {
    let mut levels = [0usize; 3];
    let mut countries = Tally::default();
    let mut occupations = Tally::default();
    let mut traits = Tally::default();
    let mut ages = [0usize; AGE_BUCKETS.len()];
    let mut unknown_age = 0;
    // This persona's trait keys, to count each trait once per persona.
    let mut seen: Vec<String> = Vec::new();
    for p in panel {
        levels[level_index(p.tech_proficiency)] += 1;
        countries.add(country_of(&p.location));
        occupations.add(&p.occupation);
        seen.clear();
        for t in &p.behavioral_traits {
            let t = t.trim();
            let key = fold(t);
            if !t.is_empty() && !seen.contains(&key) {
                traits.add_keyed(&key, t);
                seen.push(key);
            }
        }
        match p.age {
            Some(age) => {
                ages[AGE_BUCKETS
                    .iter()
                    .position(|&(_, below)| age < below)
                    .unwrap()] += 1
            }
            None => unknown_age += 1,
        }
    }

    let total = panel.len();
    let evenness = if total == 0 {
        0.0
    } else {
        let entropy: f64 = levels
            .iter()
            .filter(|&&n| n > 0)
            .map(|&n| {
                let p = n as f64 / total as f64;
                -p * p.ln()
            })
            .sum();
        (entropy / (LEVELS.len() as f64).ln()).clamp(0.0, 1.0)
    };
    let diversity = Diversity {
        countries: countries.len(),
        occupations: occupations.len(),
        proficiency_evenness: evenness,
    };
    let distinct_traits = traits.len();
    let mut top_traits = traits.sorted();
    top_traits.truncate(TOP_TRAITS);
    PanelStats {
        total,
        by_proficiency: LEVELS
            .iter()
            .zip(levels)
            .map(|(level, count)| Count {
                name: level.to_string(),
                count,
            })
            .collect(),
        by_country: countries.sorted(),
        by_occupation: occupations.sorted(),
        top_traits,
        distinct_traits,
        ages: (unknown_age < total).then(|| AgeStats {
            buckets: AGE_BUCKETS
                .iter()
                .zip(ages)
                .map(|(&(name, _), count)| Count {
                    name: name.to_string(),
                    count,
                })
                .collect(),
            unknown: unknown_age,
        }),
        diversity,
    }
}

// ---------------------------------------------------------------------------
// Near duplicates
// ---------------------------------------------------------------------------

/// Why a candidate persona looks like one already in the panel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DuplicateReason {
    /// Names equal ignoring case and surrounding whitespace (accents count).
    SameName,
    /// Jaccard similarity (0..=1) of the two trait sets, at least
    /// [`SIMILAR_TRAITS`].
    SimilarTraits(f32),
}

/// The Jaccard similarity from which two trait sets count as near-duplicates.
pub const SIMILAR_TRAITS: f32 = 0.8;

impl fmt::Display for DuplicateReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DuplicateReason::SameName => f.write_str("same name"),
            DuplicateReason::SimilarTraits(j) => {
                // Rounded, but never "100%" unless the sets are equal.
                let percent = (j * 100.0).round();
                let percent = if *j < 1.0 { percent.min(99.0) } else { percent };
                write!(f, "traits {percent:.0}% alike")
            }
        }
    }
}

/// The panel persona `candidate` most looks like, if any: a persona with the
/// same name wins (the first one); otherwise the one whose traits are most
/// alike (Jaccard of the lowercased, trimmed trait sets ≥ 0.8, both sets with
/// at least two traits). `candidate` itself is skipped if it is in `panel`
/// (by address, not id: a synthesised candidate may reuse an id).
pub fn near_duplicate<'a>(
    candidate: &Persona,
    panel: &'a [Persona],
) -> Option<(&'a Persona, DuplicateReason)> {
    let others = || panel.iter().filter(|p| !std::ptr::eq(*p, candidate));
    let name = candidate.name.trim().to_lowercase();
    if let Some(p) = others().find(|p| p.name.trim().to_lowercase() == name) {
        return Some((p, DuplicateReason::SameName));
    }
    let traits = trait_set(candidate);
    if traits.len() < 2 {
        return None;
    }
    let mut best: Option<(&Persona, usize, usize)> = None;
    for p in others() {
        let theirs = trait_set(p);
        if theirs.len() < 2 {
            continue;
        }
        let common = traits.intersection(&theirs).count();
        let union = traits.len() + theirs.len() - common;
        // common / union >= 0.8, in integers; strictly better than the best.
        let better = best.is_none_or(|(_, c, u)| common * u > c * union);
        if common * 5 >= union * 4 && better {
            best = Some((p, common, union));
        }
    }
    best.map(|(p, common, union)| {
        (
            p,
            DuplicateReason::SimilarTraits(common as f32 / union as f32),
        )
    })
}

fn trait_set(p: &Persona) -> HashSet<String> {
    p.behavioral_traits
        .iter()
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

// ---------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::builtin_panel;

    fn persona(id: u32, name: &str, occupation: &str, location: &str) -> Persona {
        Persona {
            id,
            name: name.into(),
            occupation: occupation.into(),
            location: location.into(),
            tech_proficiency: TechProficiency::Medium,
            behavioral_traits: Vec::new(),
            age: None,
            extra: Default::default(),
        }
    }

    fn with_traits(mut p: Persona, traits: &[&str]) -> Persona {
        p.behavioral_traits = traits.iter().map(|t| t.to_string()).collect();
        p
    }

    fn ids(panel: &[Persona], text: &str) -> Vec<u32> {
        let query = Query::parse(text);
        let found: Vec<u32> = filter(panel, &query).iter().map(|&i| panel[i].id).collect();
        // The one-off path agrees with the index.
        let one_by_one: Vec<u32> = panel
            .iter()
            .filter(|p| query.matches(p))
            .map(|p| p.id)
            .collect();
        assert_eq!(found, one_by_one, "query {text:?}");
        found
    }

    fn search_panel() -> Vec<Persona> {
        let mut panel = builtin_panel();
        let mut nurse = persona(100, "Élodie Durand", "Night nurse", "Lyon, France");
        nurse.tech_proficiency = TechProficiency::Low;
        nurse.age = Some(47);
        nurse
            .extra
            .insert("bio".into(), "Runs a choir on Sundays".into());
        nurse
            .extra
            .insert("goals".into(), serde_json::json!(["fewer logins", 2]));
        nurse
            .extra
            .insert("meta".into(), serde_json::json!({"hidden": "secretword"}));
        panel.push(nurse);
        let mut greek = persona(101, "ΟΔΥΣΣΕΥΣ Παππάς", "Fisherman", "Ithaca, Greece");
        greek.tech_proficiency = TechProficiency::Low;
        panel.push(greek);
        panel.push(persona(102, "Ken Sato", "東京都の看護師", "東京, Japan"));
        panel
    }

    #[test]
    fn words_are_anded_and_match_any_field() {
        let panel = search_panel();
        // Maria is a Medium ICU nurse; only Élodie is a Low nurse.
        assert_eq!(ids(&panel, "nurse"), [1, 100]);
        assert_eq!(ids(&panel, "nurse low"), [100]);
        assert_eq!(ids(&panel, "LOW   Nurse"), [100]);
        assert_eq!(ids(&panel, "nurse medium"), [1]);
        // Location, trait, name, age, id.
        assert_eq!(ids(&panel, "madrid"), [1]);
        assert_eq!(ids(&panel, "scams"), [6]);
        assert_eq!(ids(&panel, "okafor maths"), [10]);
        assert_eq!(ids(&panel, "72"), [6]);
        assert_eq!(ids(&panel, "13 singapore"), [13]);
        assert_eq!(ids(&panel, "nurse pilot"), Vec::<u32>::new());
    }

    #[test]
    fn terms_match_at_word_starts_only() {
        let panel = search_panel();
        // Prefixes work as you type...
        assert_eq!(ids(&panel, "procure"), [7]);
        assert_eq!(ids(&panel, "eng"), [3]);
        // ...but not in the middle of a word: "low" is not in "slow" (Priya).
        assert!(!ids(&panel, "low").contains(&3));
        assert_eq!(ids(&panel, "ngineer"), Vec::<u32>::new());
        // After punctuation is a word start.
        assert_eq!(ids(&panel, "connor"), [14]);
        assert_eq!(ids(&panel, "o'connor"), [14]);
        // Scripts without spaces match anywhere.
        assert_eq!(ids(&panel, "看護師"), [102]);
        assert_eq!(ids(&panel, "京"), [102]);
    }

    #[test]
    fn no_match_spans_two_fields() {
        let panel = vec![persona(1, "Ann Abel", "Baker", "Rome, Italy")];
        assert_eq!(ids(&panel, "abel"), [1]);
        assert_eq!(ids(&panel, "abelbaker"), Vec::<u32>::new());
        assert_eq!(ids(&panel, "abel\u{1}baker"), Vec::<u32>::new());
        assert_eq!(ids(&panel, "\"ann abel\""), [1]);
        assert_eq!(ids(&panel, "\"abel baker\""), Vec::<u32>::new());
    }

    #[test]
    fn extra_fields_are_searched() {
        let panel = search_panel();
        assert_eq!(ids(&panel, "choir"), [100]);
        assert_eq!(ids(&panel, "\"fewer logins\""), [100]);
        assert_eq!(ids(&panel, "logins nurse"), [100]);
        // Numbers inside string arrays count; nested objects do not.
        assert_eq!(ids(&panel, "secretword"), Vec::<u32>::new());
    }

    #[test]
    fn field_filters() {
        let panel = search_panel();
        let low: Vec<u32> = panel
            .iter()
            .filter(|p| p.tech_proficiency == TechProficiency::Low)
            .map(|p| p.id)
            .collect();
        assert_eq!(ids(&panel, "prof:low"), low);
        assert_eq!(ids(&panel, "tech:LOW"), low);
        assert_eq!(ids(&panel, "prof:l"), low);
        assert_eq!(ids(&panel, "prof:high teacher"), Vec::<u32>::new());
        assert_eq!(ids(&panel, "prof:low teacher"), [6]);
        assert_eq!(ids(&panel, "prof:low|medium teacher"), [6, 10]);
        assert_eq!(ids(&panel, "prof:low,medium teacher"), [6, 10]);
        assert_eq!(ids(&panel, "prof:low prof:high"), Vec::<u32>::new());
        assert_eq!(ids(&panel, "prof:expert"), Vec::<u32>::new());
        // Still typing: an empty filter constrains nothing.
        assert_eq!(ids(&panel, "prof:").len(), panel.len());
        assert_eq!(ids(&panel, "loc:").len(), panel.len());

        assert_eq!(ids(&panel, "loc:spain"), [1]);
        // A substring of the location, not only word starts...
        assert_eq!(ids(&panel, "loc:ulsa"), [6]);
        assert_eq!(ids(&panel, "loc:\"são paulo\""), [8]);
        // ...and only the location: Tulsa's Robert is not found by "teacher".
        assert_eq!(ids(&panel, "loc:teacher"), Vec::<u32>::new());
        assert_eq!(ids(&panel, "loc:usa prof:low"), [6]);
        // An unknown key is a plain term.
        assert_eq!(ids(&panel, "age:47"), Vec::<u32>::new());
    }

    #[test]
    fn case_folding_is_unicode_aware() {
        let panel = search_panel();
        assert_eq!(ids(&panel, "ÉLODIE"), [100]);
        assert_eq!(ids(&panel, "élodie"), [100]);
        assert_eq!(ids(&panel, "SÃO"), [8]);
        assert_eq!(ids(&panel, "MONTRÉAL"), [11]);
        // Final sigma: the name is stored in capitals, searched in lowercase
        // and the other way round.
        assert_eq!(ids(&panel, "οδυσσευς"), [101]);
        assert_eq!(ids(&panel, "ΟΔΥΣ"), [101]);
        assert_eq!(ids(&panel, "ΠΑΠΠΆΣ"), [101]);
    }

    #[test]
    fn empty_query_matches_everything() {
        let panel = search_panel();
        for text in ["", "   ", "\"\""] {
            let query = Query::parse(text);
            assert!(query.is_empty());
            assert_eq!(filter(&panel, &query), (0..panel.len()).collect::<Vec<_>>());
        }
        assert_eq!(filter(&[], &Query::parse("nurse")), Vec::<usize>::new());
    }

    #[test]
    fn index_is_reusable_and_survives_a_stale_panel() {
        let mut panel = search_panel();
        let index = SearchIndex::new(&panel);
        assert_eq!(index.len(), panel.len());
        assert_eq!(
            index.filter(&panel, &Query::parse("nurse low")),
            [panel.len() - 3]
        );
        assert_eq!(index.filter(&panel, &Query::parse("madrid")), [0]);
        panel.remove(0);
        assert_eq!(
            index.filter(&panel, &Query::parse("madrid")),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn parse_keeps_terms_lowercased_and_deduplicated() {
        let query = Query::parse("Nurse  nurse \"New York\" prof:LOW");
        assert_eq!(query.terms(), ["nurse", "new york"]);
        assert_eq!(Query::parse("a b"), Query::parse("  A   B "));
    }

    #[test]
    fn stats_of_the_builtin_panel() {
        let stats = stats(&builtin_panel());
        assert_eq!(stats.total, 14);
        let levels: Vec<(&str, usize)> = stats
            .by_proficiency
            .iter()
            .map(|c| (c.name.as_str(), c.count))
            .collect();
        assert_eq!(levels, [("Low", 4), ("Medium", 5), ("High", 5)]);
        // Every country once: ties are sorted by name.
        let countries: Vec<&str> = stats.by_country.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(countries.len(), 14);
        assert_eq!(countries[0], "Brazil");
        assert!(countries.contains(&"USA"), "{countries:?}");
        assert!(countries.contains(&"Singapore"));
        assert!(countries.contains(&"United Arab Emirates"));
        // (case-insensitively: "United Arab Emirates" before "USA").
        assert!(
            countries
                .windows(2)
                .all(|w| w[0].to_lowercase() < w[1].to_lowercase()),
            "{countries:?}"
        );
        assert_eq!(stats.diversity.countries, 14);
        assert_eq!(stats.diversity.occupations, 14);
        let e = stats.diversity.proficiency_evenness;
        assert!(e > 0.98 && e <= 1.0, "{e}");
        let ages = stats.ages.unwrap();
        assert_eq!(ages.unknown, 0);
        let buckets: Vec<usize> = ages.buckets.iter().map(|c| c.count).collect();
        // 20 24 | 27 29 33 | 35 38 39 41 44 | 54 | 58 61 | 72
        assert_eq!(buckets, [2, 3, 5, 1, 2, 1]);
        assert_eq!(buckets.iter().sum::<usize>(), 14);
    }

    #[test]
    fn stats_sort_group_and_bucket() {
        let mut panel = vec![
            with_traits(
                persona(1, "A", "Nurse", "Madrid, Spain"),
                &["Early adopter", "pragmatic", "PRAGMATIC "],
            ),
            with_traits(
                persona(2, "B", "nurse", "Seville,  Spain "),
                &["early adopter"],
            ),
            with_traits(persona(3, "C", "Baker", "Lyon, France"), &["pragmatic"]),
            with_traits(persona(4, "D", "Teacher", "Singapore"), &["zen"]),
            persona(5, "E", "Baker", "Paris, France,"),
            persona(6, "F", "Teacher", "Berlin, Germany"),
        ];
        panel[0].age = Some(24);
        panel[1].age = Some(25);
        panel[2].age = Some(65);
        panel[3].age = Some(64);
        let s = stats(&panel);
        let pairs = |v: &[Count]| -> Vec<(String, usize)> {
            v.iter().map(|c| (c.name.clone(), c.count)).collect()
        };
        let p = |v: &[(&str, usize)]| -> Vec<(String, usize)> {
            v.iter().map(|&(n, c)| (n.to_string(), c)).collect()
        };
        assert_eq!(
            pairs(&s.by_country),
            p(&[
                ("France", 2),
                ("Spain", 2),
                ("Germany", 1),
                ("Singapore", 1)
            ])
        );
        assert_eq!(
            pairs(&s.by_occupation),
            p(&[("Baker", 2), ("Nurse", 2), ("Teacher", 2)])
        );
        // Grouped case-insensitively, first spelling shown, once per persona.
        assert_eq!(
            pairs(&s.top_traits),
            p(&[("Early adopter", 2), ("pragmatic", 2), ("zen", 1)])
        );
        assert_eq!(s.distinct_traits, 3);
        let ages = s.ages.unwrap();
        assert_eq!(
            pairs(&ages.buckets),
            p(&[
                ("<25", 1),
                ("25-34", 1),
                ("35-44", 0),
                ("45-54", 0),
                ("55-64", 1),
                ("65+", 1)
            ])
        );
        assert_eq!(ages.unknown, 2);
        // Everyone Medium: no evenness at all.
        assert_eq!(s.diversity.proficiency_evenness, 0.0);
        assert_eq!((s.diversity.countries, s.diversity.occupations), (4, 3));

        // Two levels, half and half: between 0 and 1.
        panel[0].tech_proficiency = TechProficiency::Low;
        panel[1].tech_proficiency = TechProficiency::Low;
        panel[2].tech_proficiency = TechProficiency::Low;
        let e = stats(&panel).diversity.proficiency_evenness;
        assert!((e - 2f64.ln() / 3f64.ln()).abs() < 1e-12, "{e}");
        // Equal thirds: exactly even.
        panel[4].tech_proficiency = TechProficiency::High;
        panel[5].tech_proficiency = TechProficiency::High;
        panel[2].tech_proficiency = TechProficiency::Medium;
        let e = stats(&panel).diversity.proficiency_evenness;
        assert!((e - 1.0).abs() < 1e-12, "{e}");
    }

    #[test]
    fn stats_of_nothing() {
        let s = stats(&[]);
        assert_eq!(s.total, 0);
        assert_eq!(s.by_proficiency.len(), 3);
        assert!(s.by_proficiency.iter().all(|c| c.count == 0));
        assert_eq!(s.ages, None);
        assert_eq!(s.diversity.proficiency_evenness, 0.0);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["ages"], serde_json::Value::Null);
        assert_eq!(json["by_proficiency"][2]["name"], "High");
    }

    #[test]
    fn country_parsing() {
        assert_eq!(country_of("Madrid, Spain"), "Spain");
        assert_eq!(country_of("Tulsa, Oklahoma, USA"), "USA");
        assert_eq!(country_of("Singapore"), "Singapore");
        assert_eq!(country_of("  Singapore "), "Singapore");
        assert_eq!(country_of("Paris, France, "), "France");
    }

    #[test]
    fn near_duplicates_by_name() {
        let panel = builtin_panel();
        let candidate = persona(99, "  maria LOPEZ ", "Pilot", "Quito, Ecuador");
        let (found, reason) = near_duplicate(&candidate, &panel).unwrap();
        assert_eq!((found.id, reason), (1, DuplicateReason::SameName));
        assert_eq!(reason.to_string(), "same name");
        // Accents are not folded.
        let accented = persona(99, "María López", "Pilot", "Quito, Ecuador");
        assert_eq!(near_duplicate(&accented, &panel), None);
        // Non-ASCII case is.
        let mut panel = panel;
        panel.push(persona(50, "Élodie Durand", "Nurse", "Lyon, France"));
        let shouted = persona(99, "ÉLODIE DURAND", "Pilot", "Quito, Ecuador");
        assert_eq!(near_duplicate(&shouted, &panel).unwrap().0.id, 50);
    }

    #[test]
    fn near_duplicates_by_traits() {
        let base = [
            "early adopter",
            "price-sensitive",
            "reads reviews",
            "night owl",
            "hates ads",
        ];
        let panel = vec![
            with_traits(persona(1, "A", "X", "Y"), &base[..4]),
            with_traits(persona(2, "B", "X", "Y"), &base),
            with_traits(persona(3, "C", "X", "Y"), &["early adopter", "pragmatic"]),
            with_traits(persona(4, "D", "X", "Y"), &["loner"]),
        ];
        let candidate = |traits: &[&str]| with_traits(persona(9, "Z", "X", "Y"), traits);

        // Same four traits as A (case and spaces aside): 4/4; B is 4/5.
        let same = candidate(&[
            " Early Adopter",
            "PRICE-SENSITIVE",
            "reads reviews",
            "night owl",
        ]);
        let (found, reason) = near_duplicate(&same, &panel).unwrap();
        assert_eq!((found.id, reason), (1, DuplicateReason::SimilarTraits(1.0)));
        assert_eq!(reason.to_string(), "traits 100% alike");

        // B's five plus one: 5/6 with B, 4/6 with A.
        let mut six = base.to_vec();
        six.push("gardener");
        let (found, reason) = near_duplicate(&candidate(&six), &panel).unwrap();
        assert_eq!(found.id, 2);
        assert_eq!(reason.to_string(), "traits 83% alike");
        // Exactly 0.8 is enough: four of B's five (A has only three of them).
        let (found, reason) = near_duplicate(&candidate(&base[1..]), &panel).unwrap();
        assert_eq!(found.id, 2);
        assert_eq!(reason.to_string(), "traits 80% alike");
    }

    #[test]
    fn clear_non_duplicates() {
        let panel = vec![
            with_traits(persona(3, "C", "X", "Y"), &["early adopter", "pragmatic"]),
            with_traits(persona(4, "D", "X", "Y"), &["loner"]),
        ];
        let candidate = |traits: &[&str]| with_traits(persona(9, "Z", "X", "Y"), traits);
        // 2 of 3 alike: below 0.8.
        let close = candidate(&["early adopter", "pragmatic", "cyclist"]);
        assert_eq!(near_duplicate(&close, &panel), None);
        // One trait is too few to judge, on either side.
        assert_eq!(near_duplicate(&candidate(&["early adopter"]), &panel), None);
        assert_eq!(near_duplicate(&candidate(&["loner"]), &panel), None);
        // A different name and different traits.
        let builtin = builtin_panel();
        let stranger = with_traits(
            persona(
                99,
                "Zed Quill",
                "Lighthouse keeper",
                "Tórshavn, Faroe Islands",
            ),
            &["collects barometers", "writes letters by hand"],
        );
        assert_eq!(near_duplicate(&stranger, &builtin), None);
        // A panel member is not its own duplicate.
        for p in &builtin {
            assert_eq!(near_duplicate(p, &builtin), None, "{}", p.name);
        }
        assert_eq!(
            DuplicateReason::SimilarTraits(0.9).to_string(),
            "traits 90% alike"
        );
        assert_eq!(
            DuplicateReason::SimilarTraits(0.999).to_string(),
            "traits 99% alike"
        );
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
}
