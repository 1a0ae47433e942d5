//! Keeps a streamed turn to one speaker (see [`TurnFilter`]).

/// Keeps a turn to one speaker. Models often drift into writing the next
/// speaker's line ("\nKwame Mensah: …"), open with someone else's label, or
/// start with their own name. This cuts the turn where a line (or the reply)
/// begins with a speaker label and drops the reply's own name prefix.
///
/// A label is `Head:` at the start of the reply or of a line, where `Head`
/// is a participant's full or first name, or any name-like head: one or two
/// capitalised words ("Ladafía:", "The Moderator:") that are not a common
/// word people put before a colon ("Note:", "Pros:", "Step:", "Summary:" …).
/// Markdown bold around the head ("**Kwame:**") counts too. A colon later in
/// a line ("I agree with Bo Li: yes") is just text.
///
/// Text that might still become a label is held back until it is clear,
/// so nothing is shown and then taken away.
pub struct TurnFilter {
    /// The speaker's full and first name.
    own: Vec<String>,
    /// Everyone else's full and first names.
    others: Vec<String>,
    pending: String,
    /// Whether `pending` begins at the start of a line (or of the reply).
    line_start: bool,
    /// Whether the reply's first line has been decided (own prefix dropped).
    started: bool,
    /// The longest head a label may have, in bytes.
    max_label: usize,
}

/// The longest invented label ("The Moderator:") that cuts a turn.
const MAX_LABEL: usize = 32;

/// Words that often open a line before a colon without naming a speaker.
const COMMON_HEADS: &[&str] = &[
    "a",
    "also",
    "answer",
    "background",
    "because",
    "benefit",
    "benefits",
    "bonus",
    "bottom",
    "but",
    "caveat",
    "caveats",
    "con",
    "concern",
    "concerns",
    "conclusion",
    "cons",
    "context",
    "cost",
    "date",
    "day",
    "costs",
    "detail",
    "details",
    "disclaimer",
    "downside",
    "downsides",
    "edit",
    "example",
    "examples",
    "fact",
    "finally",
    "first",
    "fix",
    "goal",
    "goals",
    "here",
    "hint",
    "honestly",
    "however",
    "i",
    "idea",
    "ideas",
    "important",
    "interest",
    "issue",
    "issues",
    "key",
    "my",
    "no",
    "note",
    "notes",
    "now",
    "ok",
    "okay",
    "option",
    "options",
    "our",
    "overall",
    "p.s",
    "personally",
    "plan",
    "point",
    "points",
    "price",
    "pricing",
    "pro",
    "problem",
    "problems",
    "pros",
    "ps",
    "q",
    "question",
    "quote",
    "reason",
    "reasons",
    "recommendation",
    "result",
    "results",
    "risk",
    "risks",
    "second",
    "so",
    "solution",
    "source",
    "sources",
    "stance",
    "status",
    "step",
    "steps",
    "suggestion",
    "suggestions",
    "summary",
    "sure",
    "takeaway",
    "takeaways",
    "that",
    "then",
    "third",
    "this",
    "thought",
    "thoughts",
    "time",
    "tip",
    "tips",
    "today",
    "update",
    "upside",
    "verdict",
    "warning",
    "well",
    "what",
    "why",
    "yes",
    "your",
];

/// Strips Markdown bold/italic stars and spaces around a head.
fn bare(head: &str) -> &str {
    head.trim().trim_matches('*').trim()
}

/// One or two capitalised name-like words, none of them a common word.
fn name_like(head: &str) -> bool {
    let words: Vec<&str> = head.split_whitespace().collect();
    (1..=2).contains(&words.len())
        && words.iter().all(|w| {
            w.chars().next().is_some_and(char::is_uppercase)
                && w.chars()
                    .all(|c| c.is_alphabetic() || c == '.' || c == '\'' || c == '-')
                && !COMMON_HEADS.contains(&w.trim_end_matches('.').to_lowercase().as_str())
        })
}

/// Could `partial` (a line start with no colon yet) still grow into a
/// name-like head?
fn may_become_name_like(partial: &str) -> bool {
    let words: Vec<&str> = partial.split(' ').collect();
    words.len() <= 2
        && words.iter().enumerate().all(|(i, w)| {
            (w.is_empty() && i > 0 && i == words.len() - 1)
                || (w.chars().next().is_some_and(char::is_uppercase)
                    && w.chars()
                        .all(|c| c.is_alphabetic() || c == '.' || c == '\'' || c == '-'))
        })
}

/// What a line's opening says about the speaker.
#[derive(Debug, PartialEq)]
enum LineStart {
    /// Not a label (or no colon within reach): ordinary text.
    Text,
    /// Could still become a label: hold it back.
    Undecided,
    /// The speaker's own label, ending at this byte offset (after the colon
    /// and any closing stars).
    Own(usize),
    /// Someone else's (or an invented) label.
    Other,
}

impl TurnFilter {
    pub fn new<'a>(speaker: &str, participants: impl IntoIterator<Item = &'a str>) -> Self {
        let names_of = |name: &str| -> Vec<String> {
            let mut v = vec![name.trim().to_string()];
            if let Some(first) = name.split_whitespace().next()
                && first != name.trim()
            {
                v.push(first.to_string());
            }
            v
        };
        let own = names_of(speaker);
        let mut others: Vec<String> = Vec::new();
        for name in participants {
            for n in names_of(name) {
                if !own.contains(&n) && !others.contains(&n) {
                    others.push(n);
                }
            }
        }
        let longest = own
            .iter()
            .chain(&others)
            .map(String::len)
            .max()
            .unwrap_or(0);
        TurnFilter {
            own,
            others,
            pending: String::new(),
            line_start: true,
            started: false,
            max_label: MAX_LABEL.max(longest + 4),
        }
    }

    /// Reads the opening of a line (`line` runs to the end of the pending
    /// text or to its newline, exclusive).
    fn line_start(&self, line: &str, complete: bool) -> LineStart {
        let lead = line.len() - line.trim_start().len();
        let body = &line[lead..];
        match body.find(':') {
            Some(colon) if colon <= self.max_label => {
                let head = bare(&body[..colon]);
                let mut end = lead + colon + 1;
                end += line[end..].len() - line[end..].trim_start_matches('*').len();
                if self.own.iter().any(|n| n == head) {
                    LineStart::Own(end)
                } else if self.others.iter().any(|n| n == head) || name_like(head) {
                    LineStart::Other
                } else {
                    LineStart::Text
                }
            }
            Some(_) => LineStart::Text,
            None if complete => LineStart::Text,
            None => {
                let partial = body.trim_start_matches('*');
                if body.len() > self.max_label {
                    LineStart::Text
                } else if partial.is_empty()
                    || self
                        .own
                        .iter()
                        .chain(&self.others)
                        .any(|n| n.starts_with(partial))
                    || may_become_name_like(partial)
                {
                    LineStart::Undecided
                } else {
                    LineStart::Text
                }
            }
        }
    }

    /// Takes streamed text; returns what may be shown now, and whether the
    /// turn should end here.
    pub fn push(&mut self, text: &str) -> (String, bool) {
        self.pending.push_str(text);
        if !self.started {
            let trimmed = self.pending.trim_start().len();
            self.pending.drain(..self.pending.len() - trimmed);
            let line_end = self.pending.find('\n');
            let line = &self.pending[..line_end.unwrap_or(self.pending.len())];
            match self.line_start(line, line_end.is_some()) {
                LineStart::Undecided => return (String::new(), false),
                LineStart::Own(end) => {
                    let mut rest = self.pending[end..].trim_start();
                    if self.pending.starts_with('*') {
                        // The closing stars of "**Ana:**" may come later.
                        rest = rest.trim_start_matches('*').trim_start();
                    }
                    if rest.is_empty() {
                        // Wait for the words after the prefix.
                        return (String::new(), false);
                    }
                    self.pending = rest.to_string();
                    // The text after one's own name may itself open with a label.
                    self.started = true;
                    return self.scan();
                }
                LineStart::Other => {
                    self.started = true;
                    self.pending.clear();
                    return (String::new(), true);
                }
                LineStart::Text => self.started = true,
            }
        }
        self.scan()
    }

    /// Cuts at the first line that opens with a label; otherwise shows
    /// everything but a line start that might still become one.
    fn scan(&mut self) -> (String, bool) {
        let mut starts: Vec<usize> = self
            .pending
            .match_indices('\n')
            .map(|(i, _)| i + 1)
            .collect();
        if self.line_start {
            starts.insert(0, 0);
        }
        let mut hold = None;
        for s in starts {
            let line_end = self.pending[s..].find('\n').map(|e| s + e);
            let line = &self.pending[s..line_end.unwrap_or(self.pending.len())];
            match self.line_start(line, line_end.is_some()) {
                LineStart::Text => {}
                LineStart::Undecided => {
                    // Hold back the line break (and blank space) before it
                    // too, so a cut there leaves nothing dangling on screen.
                    let before = self.pending[..s].trim_end().len();
                    hold = Some(if s == 0 { 0 } else { before });
                    break;
                }
                LineStart::Own(_) | LineStart::Other => {
                    let text = self.pending[..s].trim_end().to_string();
                    self.pending.clear();
                    return (text, true);
                }
            }
        }
        let emit_to = hold.unwrap_or(self.pending.len());
        if emit_to == 0 && hold.is_some() {
            return (String::new(), false);
        }
        let text: String = self.pending.drain(..emit_to).collect();
        if !text.is_empty() {
            // What is held back starts with the blank space before a line
            // start, or everything was shown (and a trailing line break is
            // always held as a possible label's start).
            self.line_start = hold == Some(0);
        }
        (text, false)
    }

    /// The held-back text, when the stream ends.
    pub fn finish(&mut self) -> String {
        self.started = true;
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filtered(chunks: &[&str]) -> (String, bool) {
        let mut f = TurnFilter::new("Ana Diaz", ["Ana Diaz", "Bo Li"]);
        let mut shown = String::new();
        for c in chunks {
            let (text, stop) = f.push(c);
            shown.push_str(&text);
            if stop {
                return (shown, true);
            }
        }
        shown.push_str(&f.finish());
        (shown, false)
    }

    /// Every split of `text` into two chunks gives the same result.
    fn same_at_every_split(text: &str, expected: (&str, bool)) {
        for (i, _) in text.char_indices() {
            assert_eq!(
                filtered(&[&text[..i], &text[i..]]),
                (expected.0.to_string(), expected.1),
                "split at {i} of {text:?}"
            );
        }
        // And one character at a time.
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let chunks: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(
            filtered(&chunks),
            (expected.0.to_string(), expected.1),
            "char by char: {text:?}"
        );
    }

    #[test]
    fn cuts_at_another_speaker_after_a_line_break() {
        assert_eq!(
            filtered(&["I like", " it.\nBo", " Li: me", " too"]),
            ("I like it.".into(), true)
        );
        same_at_every_split("I like it.\nBo Li: me too", ("I like it.", true));
        // First names count too.
        same_at_every_split("Fine.\n\nBo: no way", ("Fine.", true));
        // Own name mid-reply: the model starts a new turn.
        same_at_every_split("Fine.\nAna Diaz: again", ("Fine.", true));
    }

    #[test]
    fn a_reply_that_opens_with_another_label_is_cut_and_its_own_prefix_dropped() {
        same_at_every_split("Bo Li: I disagree.", ("", true));
        same_at_every_split("Bo: I disagree.", ("", true));
        same_at_every_split("Ana Diaz: Sure.", ("Sure.", false));
        same_at_every_split("  Ana: Short name too.", ("Short name too.", false));
        same_at_every_split("**Ana Diaz:** Bold.", ("Bold.", false));
        same_at_every_split("**Bo Li:** Bold.", ("", true));
        assert_eq!(
            filtered(&["Ana", " Diaz: ", "Sure."]),
            ("Sure.".into(), false)
        );
    }

    #[test]
    fn invented_speakers_are_cut_on_every_backend() {
        same_at_every_split("Nice.\nLadafía: (spitting) no", ("Nice.", true));
        same_at_every_split("Ladafía: hello", ("", true));
        same_at_every_split("Nice.\nThe Moderator: next", ("Nice.", true));
    }

    #[test]
    fn ordinary_prose_with_colons_is_not_cut() {
        for text in [
            "I agree with Bo Li: yes",
            "Note: this matters.\nPros: cheap.\nCons: slow.",
            "Step 1: install it. Step 2: use it.",
            "My take: fine.\nSummary: good.\nPS: thanks",
            "Pros and cons.\n- price: high, and this line is long enough",
            "Offline mode would help me: I travel.",
            "Line one\nBob says hi",
            "Ünïcödé\nB",
            "Update: it works.\nEdit: typo",
            "Honestly: no.",
            "Time: 10:30 is too early.",
            // Lines the stance filter lets through (see sim::stance).
            "Fine.\nStance: I like it, but only if it is cheap and works offline.",
            "Fine.\nInterest: high",
        ] {
            same_at_every_split(text, (text, false));
        }
        // Held-back text that turns out harmless is shown.
        assert_eq!(
            filtered(&["Line one\nBo", "b says hi"]),
            ("Line one\nBob says hi".into(), false)
        );
    }
}
