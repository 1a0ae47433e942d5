//! Keeps a streamed turn to one speaker (see [`TurnFilter`]).

/// Keeps a turn to one speaker. Small models often drift into writing the
/// next speaker's line ("\nKwame Mensah: …") or start with their own name;
/// this cuts the turn at another speaker's name and drops the own-name
/// prefix. Text that might be the start of a name is held back until it is
/// clear, so nothing is shown and then taken away.
pub struct TurnFilter {
    own_prefixes: Vec<String>,
    stops: Vec<String>,
    /// Also cut at any "\nSome Label:" line (for small models, which invent
    /// speakers of their own).
    any_label: bool,
    pending: String,
    started: bool,
}

/// The longest speaker label a small model is cut at ("\nThe Moderator:").
const MAX_LABEL: usize = 32;

/// Where a line of `text` starts with a speaker-like label ("Crowd:",
/// "Kwame:"), the byte offset of the newline before it.
fn label_line(text: &str) -> Option<usize> {
    text.match_indices('\n').map(|(i, _)| i).find(|&i| {
        let line = &text[i + 1..];
        let Some(colon) = line.find(':') else {
            return false;
        };
        colon <= MAX_LABEL && is_label(&line[..colon])
    })
}

fn is_label(head: &str) -> bool {
    head.chars().next().is_some_and(char::is_uppercase)
        && head.split_whitespace().count() <= 3
        && head
            .chars()
            .all(|c| c.is_alphabetic() || c == ' ' || c == '.' || c == '\'' || c == '-')
}

/// Could the text after the last newline still grow into a label?
fn may_become_label(text: &str) -> usize {
    let Some(i) = text.rfind('\n') else { return 0 };
    let tail = &text[i + 1..];
    if tail.len() < MAX_LABEL && (tail.is_empty() || is_label(tail)) {
        text.len() - i
    } else {
        0
    }
}

impl TurnFilter {
    pub fn new<'a>(
        speaker: &str,
        participants: impl IntoIterator<Item = &'a str>,
        any_label: bool,
    ) -> Self {
        let mut stops: Vec<String> = participants
            .into_iter()
            .map(|n| format!("\n{n}:"))
            .collect();
        let own = format!("\n{speaker}:");
        if !stops.contains(&own) {
            stops.push(own);
        }
        let mut own_prefixes = vec![format!("{speaker}:")];
        if let Some(first) = speaker.split_whitespace().next().filter(|f| *f != speaker) {
            own_prefixes.push(format!("{first}:"));
        }
        TurnFilter {
            own_prefixes,
            stops,
            any_label,
            pending: String::new(),
            started: false,
        }
    }

    /// Takes streamed text; returns what may be shown now, and whether the
    /// turn should end here.
    pub fn push(&mut self, text: &str) -> (String, bool) {
        self.pending.push_str(text);
        if !self.started {
            let head = self.pending.trim_start();
            if self.own_prefixes.iter().any(|p| p.starts_with(head)) {
                return (String::new(), false);
            }
            if let Some(rest) = self
                .own_prefixes
                .iter()
                .find_map(|p| head.strip_prefix(p.as_str()))
            {
                self.pending = rest.trim_start().to_string();
            }
            self.started = true;
        }
        let label = if self.any_label {
            label_line(&self.pending)
        } else {
            None
        };
        let named = self
            .stops
            .iter()
            .filter_map(|s| self.pending.find(s.as_str()))
            .min();
        if let Some(cut) = label.into_iter().chain(named).min() {
            let text = self.pending[..cut].trim_end().to_string();
            self.pending.clear();
            return (text, true);
        }
        // Hold back the longest tail that could still become a stop.
        let hold = self
            .stops
            .iter()
            .map(|stop| longest_suffix_prefix(&self.pending, stop))
            .chain(self.any_label.then(|| may_become_label(&self.pending)))
            .max()
            .unwrap_or(0);
        let emit_to = self.pending.len() - hold;
        let text = self.pending[..emit_to].to_string();
        self.pending.drain(..emit_to);
        (text, false)
    }

    /// The held-back text, when the stream ends.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of `stop`.
fn longest_suffix_prefix(text: &str, stop: &str) -> usize {
    (1..stop.len().min(text.len() + 1))
        .rev()
        .find(|&n| {
            stop.is_char_boundary(n)
                && text.is_char_boundary(text.len() - n)
                && text.ends_with(&stop[..n])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filtered(chunks: &[&str]) -> (String, bool) {
        filtered_with(chunks, false)
    }

    fn filtered_with(chunks: &[&str], any_label: bool) -> (String, bool) {
        let mut f = TurnFilter::new("Ana Diaz", ["Ana Diaz", "Bo Li"], any_label);
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

    #[test]
    fn turn_filter_cuts_at_another_speaker_and_drops_the_own_name() {
        assert_eq!(
            filtered(&["I like", " it.\nBo", " Li: me", " too"]),
            ("I like it.".into(), true)
        );
        assert_eq!(
            filtered(&["Ana", " Diaz: ", "Sure."]),
            ("Sure.".into(), false)
        );
        assert_eq!(
            filtered(&["Fine.\nAna Diaz: again"]),
            ("Fine.".into(), true)
        );
        // A name that does not follow a newline is just text.
        assert_eq!(
            filtered(&["I agree with Bo Li: ", "yes"]),
            ("I agree with Bo Li: yes".into(), false)
        );
        // Held-back text that turns out harmless is shown.
        assert_eq!(
            filtered(&["Line one\nBo", "b says hi"]),
            ("Line one\nBob says hi".into(), false)
        );
        assert_eq!(filtered(&["Ünïcödé\n", "B"]), ("Ünïcödé\nB".into(), false));
        assert_eq!(
            filtered(&["Ana: ", "Short name too."]),
            ("Short name too.".into(), false)
        );
        // Invented speakers are a label only for small models.
        let drift = ["Nice.\nSpect", "er: (spitting) no"];
        assert_eq!(
            filtered(&drift),
            ("Nice.\nSpecter: (spitting) no".into(), false)
        );
        assert_eq!(filtered_with(&drift, true), ("Nice.".into(), true));
        let list = [
            "Pros and cons.\n",
            "- price: high, and this line is long enough",
        ];
        assert_eq!(filtered_with(&list, true), (list.concat(), false));
    }
}
