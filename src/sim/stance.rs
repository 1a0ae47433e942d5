//! A persona's stance at the end of a turn: for, mixed or against the
//! feature, and how much it interests them (1 to 10).
//!
//! The persona prompt asks every reply to end with one line in this form
//! ([`STANCE_FORMAT`]):
//!
//! ```text
//! STANCE: for, interest 7/10
//! ```
//!
//! A *marker line* is a line of at most 100 bytes that opens (after spaces
//! and Markdown decoration: `*`, `_`, `#`, `>`, `-`, `` ` ``) with the word
//! `stance` in any case, then optional decoration, then a colon (a longer
//! line is prose, shown as it is). Every marker line is
//! taken out of the turn's text, wherever it is; the last one decides the
//! turn's stance. Its fields are read leniently as to form, never guessed
//! from prose:
//!
//! - the position is the text before the first `,` `;` `(`, digit or the
//!   word `interest`, which must be (in any case, quotes, brackets or stars
//!   around it) one of `for` (or `pro`, `in favour`, `in favor`, `favour`,
//!   `favor`, `support`, `supportive`), `mixed` (or `neutral`, `undecided`,
//!   `unsure`, `torn`, `ambivalent`) or `against` (or `con`, `opposed`,
//!   `oppose`); anything else (`not for me`, `for|mixed|against`) is
//!   unknown;
//! - the interest is the first whole number after it, which counts only
//!   after the word `interest` or before `/10` (or `out of 10`); it must be
//!   1 to 10 and, given out of something, out of 10 (`3/5` is unknown);
//!   `7.5` is unknown.
//!
//! A stance needs both. The line right after a marker line (blank lines
//! aside) may hold its interest, as small models tend to write it:
//! `Interest: 7/10` (the word `interest`, decoration and a colon, as
//! above). It is a marker line too, read together with the one before.
//!
//! A turn with no marker line, or whose last marker
//! line does not read, has no stance: "unknown". "Stance" anywhere else in
//! a line ("My stance: …", "I changed my stance") is ordinary text.
//!
//! [`StanceFilter`] does this while the turn streams: text that might still
//! become a marker line is held back until it is clear, so a marker is
//! never shown, and nothing shown is taken back.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What the prompt asks for, word for word (a template, not an example:
/// an example's values would be copied by small models).
pub const STANCE_FORMAT: &str = "STANCE: for|mixed|against, interest N/10";

/// Where a persona stands on the feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    For,
    Mixed,
    Against,
}

impl Position {
    pub const ALL: [Position; 3] = [Position::For, Position::Mixed, Position::Against];

    /// Its place in [`Position::ALL`].
    pub fn index(self) -> usize {
        match self {
            Position::For => 0,
            Position::Mixed => 1,
            Position::Against => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Position::For => "for",
            Position::Mixed => "mixed",
            Position::Against => "against",
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A turn's stance: serialised as `{"position": "for", "interest": 7}`.
/// `interest` is always 1 to 10 (a file saying otherwise does not load).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawStance")]
pub struct Stance {
    pub position: Position,
    pub interest: u8,
}

#[derive(Deserialize)]
struct RawStance {
    position: Position,
    interest: u8,
}

impl TryFrom<RawStance> for Stance {
    type Error = String;
    fn try_from(raw: RawStance) -> Result<Self, Self::Error> {
        Stance::new(raw.position, raw.interest)
            .ok_or_else(|| format!("stance interest {} is not 1 to 10", raw.interest))
    }
}

impl Stance {
    /// A stance, if `interest` is 1 to 10.
    pub fn new(position: Position, interest: u8) -> Option<Stance> {
        (1..=10)
            .contains(&interest)
            .then_some(Stance { position, interest })
    }
}

impl fmt::Display for Stance {
    /// "for, interest 7/10"
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, interest {}/10", self.position, self.interest)
    }
}

const KEYWORD: &str = "stance";
/// What may open the line after a marker line (its interest).
const INTEREST: &str = "interest";

/// Characters that may open a marker line, or sit around the keyword.
fn decoration(c: char) -> bool {
    matches!(c, '*' | '_' | '#' | '>' | '-' | '`') || c == ' ' || c == '\t'
}

/// What a line's opening says about it.
#[derive(Debug, PartialEq)]
enum LineKind {
    /// Ordinary text.
    Text,
    /// Might still become a marker line: hold it back.
    Undecided,
    /// A marker line; what follows its colon starts at this byte offset.
    Marker(usize),
}

/// Longest opening held back before the keyword and its colon (decoration
/// included): past this, a line is text.
const MAX_OPENING: usize = 24;

/// Longest marker line, in bytes: a longer line opening with "Stance:" is
/// prose, shown as it is (the asked form takes about 30).
const MAX_MARKER_LINE: usize = 100;

/// Reads the opening of `line` (no line break in it) for a marker opening
/// with `keyword`. `complete`: nothing more will be added to it.
fn line_kind(line: &str, complete: bool, keyword: &str) -> LineKind {
    let body = line.trim_start_matches(decoration);
    let undecided = if complete {
        LineKind::Text
    } else {
        LineKind::Undecided
    };
    if body.is_empty() {
        return if line.len() > MAX_OPENING {
            LineKind::Text
        } else {
            undecided
        };
    }
    // The keyword, in any case (ASCII: compare bytes).
    let n = body.len().min(keyword.len());
    if !body.as_bytes()[..n].eq_ignore_ascii_case(&keyword.as_bytes()[..n]) {
        return LineKind::Text;
    }
    if n < keyword.len() {
        return undecided;
    }
    let after = &body[keyword.len()..];
    let rest = after.trim_start_matches(decoration);
    match rest.chars().next() {
        Some(':') if line.len() > MAX_MARKER_LINE => LineKind::Text,
        Some(':') => LineKind::Marker(line.len() - rest.len() + 1),
        Some(_) => LineKind::Text,
        None if line.len() > MAX_OPENING => LineKind::Text,
        None => undecided,
    }
}

/// Whether `line` (one line, no line break) is a marker line, and if so
/// the stance it gives (`Some(None)`: a marker that does not read).
pub fn parse_marker_line(line: &str) -> Option<Option<Stance>> {
    match line_kind(line, true, KEYWORD) {
        LineKind::Marker(start) => Some(parse_fields(&line[start..])),
        _ => None,
    }
}

/// Splits a whole turn into its text without marker lines and the stance
/// of the last one (see the module's rules). The same as streaming it
/// through a [`StanceFilter`].
pub fn split_stance(text: &str) -> (String, Option<Stance>) {
    let mut filter = StanceFilter::new();
    let mut pieces = filter.push(text);
    pieces.extend(filter.finish(false));
    let mut shown = String::new();
    let mut stance = None;
    for piece in pieces {
        match piece {
            Piece::Text(t) => shown.push_str(&t),
            Piece::Stance(s) => stance = s,
        }
    }
    (shown, stance)
}

/// Reads "for, interest 7/10" (what follows the marker's colon).
fn parse_fields(fields: &str) -> Option<Stance> {
    let lower = fields.to_lowercase();
    let cut = position_part(&lower).len();
    let position = position(&lower[..cut])?;
    let interest = interest(&lower[cut..])?;
    Stance::new(position, interest)
}

/// The position field of "for, interest 7/10": up to the first `,` `;`
/// `(`, digit or the word "interest".
fn position_part(fields: &str) -> &str {
    let cut = fields
        .char_indices()
        .find(|&(i, c)| {
            matches!(c, ',' | ';' | '(')
                || c.is_ascii_digit()
                || fields
                    .get(i..i + INTEREST.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(INTEREST))
        })
        .map_or(fields.len(), |(i, _)| i);
    &fields[..cut]
}

fn position(field: &str) -> Option<Position> {
    let field = field.trim_matches(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '*' | '_' | '`' | '"' | '\'' | '<' | '>' | '[' | ']' | '.' | ':' | '-' | '–' | '—'
            )
    });
    let words: Vec<&str> = field.split_whitespace().collect();
    Some(match words.join(" ").as_str() {
        "for" | "pro" | "in favour" | "in favor" | "favour" | "favor" | "support"
        | "supportive" => Position::For,
        "mixed" | "neutral" | "undecided" | "unsure" | "torn" | "ambivalent" => Position::Mixed,
        "against" | "con" | "opposed" | "oppose" => Position::Against,
        _ => return None,
    })
}

/// The interest in "interest 7/10", "interest: 7", "7/10", "7 out of 10".
fn interest(field: &str) -> Option<u8> {
    let start = field.find(|c: char| c.is_ascii_digit())?;
    let digits = field[start..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(field.len(), |e| start + e);
    let number: u32 = field[start..digits].parse().ok()?;
    let after = &field[digits..];
    // "7.5" or "7,5": not a whole number.
    let mut chars = after.chars();
    if let (Some('.' | ','), Some(c)) = (chars.next(), chars.next())
        && c.is_ascii_digit()
    {
        return None;
    }
    let after = after.trim_start();
    let out_of = after
        .strip_prefix('/')
        .or_else(|| after.strip_prefix("out of"))
        .map(|rest| {
            let rest = rest.trim_start();
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            rest[..end].parse::<u32>().ok()
        });
    match out_of {
        Some(Some(10)) => {}
        Some(_) => return None,
        None if field[..start].contains("interest") => {}
        None => return None,
    }
    u8::try_from(number).ok()
}

/// What a [`StanceFilter`] passes on, in stream order.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Text to show.
    Text(String),
    /// A marker line was taken out here: the stance it gives (`None`: it
    /// does not read). The last one is the turn's.
    Stance(Option<Stance>),
}

/// Takes marker lines out of a streamed turn (see the module's rules).
///
/// A line is held back from its start (with the blank space and line
/// breaks before it) while it might still become a marker line: while its
/// opening is decoration and the start of "stance", up to the colon. A
/// marker line is held to its end, then dropped with the blank space
/// before it. Everything else passes at once. Blank space at the very
/// start and the very end of the turn is dropped.
#[derive(Debug, Default)]
pub struct StanceFilter {
    /// Held back: unless `mid_line`, blank space then the opening of a line.
    pending: String,
    /// Whether `pending` begins at a line start (or the turn's start).
    mid_line: bool,
    /// Whether any text has been passed on.
    shown: bool,
    /// What followed the colon of the marker line just taken out, while the
    /// next line may still be its interest.
    after_marker: Option<String>,
}

impl StanceFilter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes streamed text; returns what may be shown now and any stance
    /// read, in order.
    pub fn push(&mut self, text: &str) -> Vec<Piece> {
        self.pending.push_str(text);
        let mut out = Vec::new();
        self.scan(&mut out, false);
        out
    }

    /// The stream has ended: what was held back, and any marker line it
    /// ends with. `truncated`: the reply stopped at its token limit, so a
    /// marker line without its line break may be cut short ("interest 1"
    /// of "interest 10") and gives no stance (it is still taken out).
    pub fn finish(&mut self, truncated: bool) -> Vec<Piece> {
        let mut out = Vec::new();
        self.scan(&mut out, true);
        if !self.pending.is_empty() {
            // A marker line at the very end.
            let pending = std::mem::take(&mut self.pending);
            let line = pending.trim_start();
            if let (LineKind::Marker(start), interest) = self.classify(line, true) {
                let stance = self.read(line, start, interest);
                out.push(Piece::Stance(stance.filter(|_| !truncated)));
            }
            // Otherwise only blank space was left: dropped.
        }
        out
    }

    /// Passes on what is decided. With `end`, an open line is complete
    /// (it is left in `pending` only if it is a marker line or blank).
    fn scan(&mut self, out: &mut Vec<Piece>, end: bool) {
        loop {
            if self.mid_line {
                match self.pending.find('\n') {
                    Some(i) => {
                        let text: String = self.pending.drain(..i).collect();
                        self.emit(out, text);
                        self.mid_line = false;
                    }
                    None => {
                        let text = std::mem::take(&mut self.pending);
                        self.emit(out, text);
                        return;
                    }
                }
            }
            let gap = self.pending.len() - self.pending.trim_start().len();
            if gap == self.pending.len() {
                // Only blank space so far.
                return;
            }
            let line_end = self.pending[gap..].find('\n').map(|e| gap + e);
            let line = &self.pending[gap..line_end.unwrap_or(self.pending.len())];
            match self.classify(line, end || line_end.is_some()) {
                (LineKind::Undecided, _) => return,
                (LineKind::Text, _) => {
                    self.after_marker = None;
                    let text: String = self.pending.drain(..gap).collect();
                    if self.shown {
                        self.emit(out, text);
                    }
                    self.mid_line = true;
                }
                (LineKind::Marker(start), interest) => {
                    let Some(line_end) = line_end else {
                        // Held to its end (or the stream's).
                        return;
                    };
                    let line = line.to_string();
                    let stance = self.read(&line, start, interest);
                    out.push(Piece::Stance(stance));
                    // Drop the blank space before it and the line; the
                    // line break after it opens the next gap.
                    self.pending.drain(..line_end);
                }
            }
        }
    }

    /// What a line opening says: a marker line opening with "stance", or
    /// (true) right after one, a marker line opening with "interest".
    fn classify(&self, line: &str, complete: bool) -> (LineKind, bool) {
        let kind = line_kind(line, complete, KEYWORD);
        if kind != LineKind::Text || self.after_marker.is_none() {
            return (kind, false);
        }
        (line_kind(line, complete, INTEREST), true)
    }

    /// The stance of a marker line whose fields start at `start`; an
    /// interest line (`interest`) is read with the marker line before it.
    fn read(&mut self, line: &str, start: usize, interest: bool) -> Option<Stance> {
        let fields = &line[start..];
        if interest {
            // The position from the line before, the interest from this one.
            let before = self.after_marker.take().unwrap_or_default();
            parse_fields(&format!("{}, interest {fields}", position_part(&before)))
        } else {
            self.after_marker = Some(fields.to_string());
            parse_fields(fields)
        }
    }

    fn emit(&mut self, out: &mut Vec<Piece>, text: String) {
        if text.is_empty() {
            return;
        }
        self.shown = true;
        match out.last_mut() {
            Some(Piece::Text(last)) => last.push_str(&text),
            _ => out.push(Piece::Text(text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stance(position: Position, interest: u8) -> Option<Stance> {
        Stance::new(position, interest)
    }

    #[test]
    fn the_asked_format_reads() {
        assert_eq!(
            parse_marker_line("STANCE: for, interest 7/10"),
            Some(stance(Position::For, 7))
        );
        assert_eq!(
            parse_marker_line("STANCE: against, interest 10/10"),
            Some(stance(Position::Against, 10))
        );
        assert_eq!(
            parse_marker_line("STANCE: mixed, interest 1/10"),
            Some(stance(Position::Mixed, 1))
        );
    }

    #[test]
    fn the_form_is_read_leniently() {
        for (line, expected) in [
            ("stance: For, Interest 7/10", stance(Position::For, 7)),
            (
                "  **Stance:** against; interest: 3",
                stance(Position::Against, 3),
            ),
            (
                "**STANCE**: mixed (interest 5 out of 10)",
                stance(Position::Mixed, 5),
            ),
            (
                "- Stance : in favour, interest=8/10.",
                stance(Position::For, 8),
            ),
            ("STANCE: In Favor, 9/10", stance(Position::For, 9)),
            ("STANCE: support, interest 6 / 10", stance(Position::For, 6)),
            ("STANCE: neutral, interest 4", stance(Position::Mixed, 4)),
            (
                "STANCE: opposed, interest 2/10",
                stance(Position::Against, 2),
            ),
            (
                "STANCE: <against>, interest <2>/10",
                stance(Position::Against, 2),
            ),
            ("STANCE: \"for\", interest 7/10", stance(Position::For, 7)),
            ("STANCE: for 7/10", stance(Position::For, 7)),
            (
                "> stance: mixed, interest level 6/10",
                stance(Position::Mixed, 6),
            ),
            ("`STANCE: for, interest 7/10`", stance(Position::For, 7)),
        ] {
            assert_eq!(parse_marker_line(line), Some(expected), "{line:?}");
        }
    }

    #[test]
    fn a_marker_that_does_not_read_is_unknown_never_guessed() {
        for line in [
            "STANCE: for|mixed|against, interest N/10",
            "STANCE: for, interest 11/10",
            "STANCE: for, interest 0/10",
            "STANCE: for, interest 3/5",
            "STANCE: for, interest 7.5/10",
            "STANCE: for, interest high",
            "STANCE: for",
            "STANCE: not for me, interest 2/10",
            "STANCE: mostly for, interest 6/10",
            "STANCE: I like it but it costs too much",
            "STANCE: for, 7",
            "STANCE: interest 7/10, for",
            "STANCE:",
            "STANCE: maybe, interest 5/10",
            "STANCE: for, interest 99999999999999999999/10",
        ] {
            assert_eq!(parse_marker_line(line), Some(None), "{line:?}");
        }
    }

    #[test]
    fn stance_elsewhere_in_a_line_is_not_a_marker() {
        for line in [
            "My stance: for, interest 7/10",
            "I changed my stance: now I am against it.",
            "Stance matters: for me it does.",
            "Stances: many",
            "Standing: for, interest 7/10",
            "The STANCE: for, interest 7/10",
            "",
        ] {
            assert_eq!(parse_marker_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn split_takes_marker_lines_out_and_the_last_one_counts() {
        assert_eq!(
            split_stance("I like it.\nSTANCE: for, interest 7/10"),
            ("I like it.".into(), stance(Position::For, 7))
        );
        assert_eq!(
            split_stance("I like it.\n\nSTANCE: for, interest 7/10\n"),
            ("I like it.".into(), stance(Position::For, 7))
        );
        // Not at the end: still taken out, and it counts if it is the last.
        assert_eq!(
            split_stance("A.\nSTANCE: for, interest 7/10\nB."),
            ("A.\nB.".into(), stance(Position::For, 7))
        );
        assert_eq!(
            split_stance("STANCE: for, interest 7/10\nB."),
            ("B.".into(), stance(Position::For, 7))
        );
        // The last one decides, even when it does not read.
        assert_eq!(
            split_stance("A.\nSTANCE: for, interest 7/10\nB.\nSTANCE: against, interest 2/10"),
            ("A.\nB.".into(), stance(Position::Against, 2))
        );
        assert_eq!(
            split_stance("A.\nSTANCE: for, interest 7/10\nSTANCE: for, interest 70/10"),
            ("A.".into(), None)
        );
        // No marker: unknown, text as it was (but blank ends).
        let prose = "My stance: I am for it.\nStance matters.\nI'd rate it 7/10, for sure.";
        assert_eq!(split_stance(prose), (prose.into(), None));
        assert_eq!(split_stance("  Hi.\n"), ("Hi.".into(), None));
    }

    fn streamed(chunks: &[&str], truncated: bool) -> (String, Option<Stance>, Vec<Piece>) {
        let mut f = StanceFilter::new();
        let mut pieces = Vec::new();
        for c in chunks {
            pieces.extend(f.push(c));
        }
        pieces.extend(f.finish(truncated));
        let mut shown = String::new();
        let mut stance = None;
        for p in &pieces {
            match p {
                Piece::Text(t) => shown.push_str(t),
                Piece::Stance(s) => stance = *s,
            }
        }
        (shown, stance, pieces)
    }

    /// Every split of `text` into two chunks, and one character at a time,
    /// gives the same result; and no text piece ever holds a marker's word.
    fn same_at_every_split(text: &str, expected: (&str, Option<Stance>)) {
        let check = |chunks: &[&str], what: &str| {
            let (shown, stance, pieces) = streamed(chunks, false);
            assert_eq!((shown.as_str(), stance), expected, "{what} of {text:?}");
            for p in pieces {
                if let Piece::Text(t) = p {
                    assert!(!t.contains("STANCE"), "{t:?} shown, {what} of {text:?}");
                }
            }
        };
        for (i, _) in text.char_indices() {
            check(&[&text[..i], &text[i..]], &format!("split at {i}"));
        }
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let chunks: Vec<&str> = chars.iter().map(String::as_str).collect();
        check(&chunks, "char by char");
    }

    #[test]
    fn streaming_never_shows_the_marker_wherever_the_chunks_split() {
        same_at_every_split(
            "I like it.\nSTANCE: for, interest 7/10",
            ("I like it.", stance(Position::For, 7)),
        );
        same_at_every_split(
            "I like it.\n\n**STANCE:** against, interest 2/10\n",
            ("I like it.", stance(Position::Against, 2)),
        );
        same_at_every_split(
            "Sure.\nSTANCE: mixed, interest 5/10\nSo that's it.",
            ("Sure.\nSo that's it.", stance(Position::Mixed, 5)),
        );
        same_at_every_split("Fine.\nSTANCE: maybe", ("Fine.", None));
        same_at_every_split(
            "STANCE: for, interest 9/10\nSo good.",
            ("So good.", stance(Position::For, 9)),
        );
    }

    #[test]
    fn streaming_shows_prose_that_only_looks_like_a_marker() {
        for text in [
            "Stance matters.\nStand up.\nSta",
            "My stance: for.\nS",
            "I like it.\nStances: two\nstance",
            "Ünïcödé\nSTAN",
            "Line\n   \n- a point\n* another",
        ] {
            same_at_every_split(text, (text, None));
        }
    }

    #[test]
    fn an_interest_line_right_after_the_marker_is_read_with_it() {
        same_at_every_split(
            "Good.\nSTANCE: for\nInterest: 7/10",
            ("Good.", stance(Position::For, 7)),
        );
        same_at_every_split(
            "Good.\n**Stance:** against\n\n**Interest:** 2/10\nBye.",
            ("Good.\nBye.", stance(Position::Against, 2)),
        );
        // Only right after a marker line; elsewhere it is text.
        same_at_every_split(
            "Interest: 7/10\nGood.\nInterest: 8/10",
            ("Interest: 7/10\nGood.\nInterest: 8/10", None),
        );
        same_at_every_split(
            "STANCE: for\nGood.\nInterest: 8/10",
            ("Good.\nInterest: 8/10", None),
        );
        // An interest line that does not read leaves the stance unknown.
        same_at_every_split("STANCE: for, interest 7/10\nInterest: lots", ("", None));
        // Cut at the token limit: unknown.
        let (shown, read, _) = streamed(&["OK.\nSTANCE: mixed\nInterest: 1"], true);
        assert_eq!((shown.as_str(), read), ("OK.", None));
    }

    #[test]
    fn held_back_text_is_only_a_possible_marker_opening() {
        let mut f = StanceFilter::new();
        assert_eq!(f.push("I like it"), vec![Piece::Text("I like it".into())]);
        assert_eq!(f.push(".\nSt"), vec![Piece::Text(".".into())]);
        assert_eq!(f.push("and"), vec![Piece::Text("\nStand".into())]);
        assert_eq!(f.push(" up\n"), vec![Piece::Text(" up".into())]);
        assert_eq!(f.push("STANCE: for"), vec![]);
        assert_eq!(f.push(", interest 7/10"), vec![]);
        assert_eq!(
            f.push("\nBye"),
            vec![
                Piece::Stance(stance(Position::For, 7)),
                Piece::Text("\nBye".into())
            ]
        );
        assert_eq!(f.finish(false), vec![]);
    }

    #[test]
    fn a_marker_cut_at_the_token_limit_is_taken_out_and_unknown() {
        let (shown, stance_read, _) = streamed(&["Good.\nSTANCE: for, interest 1"], true);
        assert_eq!((shown.as_str(), stance_read), ("Good.", None));
        // Ended by its line break, it is whole.
        let (shown, stance_read, _) = streamed(&["Good.\nSTANCE: for, interest 1\n"], true);
        assert_eq!(
            (shown.as_str(), stance_read),
            ("Good.", stance(Position::For, 1))
        );
    }

    #[test]
    fn stances_serialise_and_bad_ones_do_not_load() {
        let s = stance(Position::Mixed, 4).unwrap();
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"position":"mixed","interest":4}"#
        );
        assert_eq!(
            serde_json::from_str::<Stance>(r#"{"position":"mixed","interest":4}"#).unwrap(),
            s
        );
        assert!(serde_json::from_str::<Stance>(r#"{"position":"mixed","interest":0}"#).is_err());
        assert!(serde_json::from_str::<Stance>(r#"{"position":"maybe","interest":4}"#).is_err());
        assert_eq!(s.to_string(), "mixed, interest 4/10");
    }
}
