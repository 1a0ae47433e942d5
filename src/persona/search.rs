//! Searching a panel: the query language behind the persona search box and
//! the CLI's `personas search`, and an index that makes search-as-you-type
//! cheap. No terminal code and no I/O.
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
use std::fmt::Write as _;
use std::ops::Range;

use super::{Persona, TechProficiency};

/// Separates fields in a haystack: not a word character and never part of a
/// term, so no match can span two fields.
const FIELD_SEP: char = '\u{1}';

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
                        for (slot, level) in accepted.iter_mut().zip(TechProficiency::ALL) {
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

pub(super) fn level_index(level: TechProficiency) -> usize {
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

pub(super) fn fold(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::builtin_panel;
    use crate::persona::testing::persona;

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
}
