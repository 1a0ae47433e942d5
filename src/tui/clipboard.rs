//! Copy to the system clipboard through the terminal: OSC 52
//! (`ESC ] 52 ; c ; <base64> BEL`), which works over SSH because the
//! terminal, not this process, owns the clipboard. Inside tmux or GNU
//! screen the sequence is wrapped in their passthrough so it reaches the
//! terminal outside.
//!
//! `App` only queues the bytes; the loop writes them to the terminal right
//! after the next frame, through the same handle it draws with, so a copy
//! never blocks a key or interleaves with a frame.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::app::{App, NoticeLevel};
use super::panes::conversation::EntryKind;
use crate::sim::export::session_markdown;
use crate::sim::report::report_markdown;

/// Terminals cap OSC 52 payloads (xterm and tmux near 100 kB of base64 or
/// less); past this a copy is refused with a note rather than lost silently.
pub const MAX_COPY_BYTES: usize = 100_000;

/// Screen limits a DCS string; its passthrough is sent in chunks this long.
const SCREEN_CHUNK: usize = 76;

/// What sits between the app and the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Multiplexer {
    None,
    Tmux,
    Screen,
}

/// Where a copy can go, found once from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClipboardEnv {
    Osc52(Multiplexer),
    /// The terminal cannot take OSC 52; the reason, for the notice.
    Unsupported(String),
}

impl Default for ClipboardEnv {
    fn default() -> Self {
        ClipboardEnv::Osc52(Multiplexer::None)
    }
}

impl ClipboardEnv {
    pub fn from_env() -> ClipboardEnv {
        Self::detect(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// `var` reads an environment variable (set and not empty).
    pub fn detect(var: impl Fn(&str) -> Option<String>) -> ClipboardEnv {
        let term = var("TERM").unwrap_or_default();
        if term == "dumb" {
            return ClipboardEnv::Unsupported("TERM=dumb has no clipboard".into());
        }
        if term == "linux" {
            return ClipboardEnv::Unsupported("the Linux console has no clipboard".into());
        }
        // Known not to implement OSC 52 (it ignores the sequence).
        if var("TERM_PROGRAM").as_deref() == Some("Apple_Terminal") {
            return ClipboardEnv::Unsupported(
                "Terminal.app does not support OSC 52; iTerm2 and most others do".into(),
            );
        }
        if var("TMUX").is_some() {
            ClipboardEnv::Osc52(Multiplexer::Tmux)
        } else if var("STY").is_some() && term.starts_with("screen") {
            ClipboardEnv::Osc52(Multiplexer::Screen)
        } else {
            ClipboardEnv::Osc52(Multiplexer::None)
        }
    }
}

/// The bytes that put `text` on the clipboard.
pub fn osc52(text: &str, mux: Multiplexer) -> Vec<u8> {
    let encoded = STANDARD.encode(text);
    match mux {
        Multiplexer::None => format!("\x1b]52;c;{encoded}\x07").into_bytes(),
        // tmux passes a DCS "tmux;" string through, its ESCs doubled.
        Multiplexer::Tmux => format!("\x1bPtmux;\x1b\x1b]52;c;{encoded}\x07\x1b\\").into_bytes(),
        // screen passes DCS strings through, each at most 768 bytes.
        Multiplexer::Screen => {
            let mut out = String::from("\x1bP\x1b]52;c;");
            for (i, chunk) in encoded.as_bytes().chunks(SCREEN_CHUNK).enumerate() {
                if i > 0 {
                    out.push_str("\x1b\\\x1bP");
                }
                out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            }
            out.push_str("\x07\x1b\\");
            out.into_bytes()
        }
    }
}

/// Copy state: where copies go and the bytes waiting for the terminal.
#[derive(Debug, Default)]
pub struct Clipboard {
    pub env: ClipboardEnv,
    pending: Option<Vec<u8>>,
}

impl App {
    /// Sets where copies go (the loop reads the environment; tests choose).
    pub fn set_clipboard_env(&mut self, env: ClipboardEnv) {
        self.clipboard.env = env;
    }

    /// The OSC 52 bytes of the last copy, for the loop to write after the
    /// frame.
    pub fn take_clipboard(&mut self) -> Option<Vec<u8>> {
        self.clipboard.pending.take()
    }

    /// Queues `text` for the clipboard, or says why it cannot go.
    fn copy(&mut self, what: &str, text: &str) {
        let mux = match &self.clipboard.env {
            ClipboardEnv::Osc52(mux) => *mux,
            ClipboardEnv::Unsupported(why) => {
                let note = format!("Cannot copy {what}: {why}; export it with F4 instead");
                self.set_notice(NoticeLevel::Error, note);
                return;
            }
        };
        if text.len() > MAX_COPY_BYTES {
            self.set_notice(
                NoticeLevel::Error,
                format!(
                    "Cannot copy {what}: {} kB is more than terminals take through OSC 52 ({} kB); export it with F4 instead",
                    text.len() / 1000,
                    MAX_COPY_BYTES / 1000
                ),
            );
            return;
        }
        self.clipboard.pending = Some(osc52(text, mux));
        let chars = text.chars().count();
        self.set_notice(
            NoticeLevel::Info,
            format!(
                "Copied {what}: {} (OSC 52: works where the terminal allows it)",
                crate::text::plural(chars, "character")
            ),
        );
    }

    /// `y` in the conversation: the turn last jumped to while it is in view,
    /// else the turn at the bottom of the view (the newest while following).
    pub(crate) fn copy_turn(&mut self) {
        let view = &self.conversation;
        let entries = view.entries();
        let start = view.focus_entry();
        // The nearest spoken turn at or above it, else below it.
        let spoken = |e: &&super::panes::conversation::Entry| {
            matches!(e.kind, EntryKind::Turn { .. }) && !e.text.trim().is_empty()
        };
        let turn = start.and_then(|from| {
            let from = from.min(entries.len().saturating_sub(1));
            entries[..=from]
                .iter()
                .rev()
                .find(spoken)
                .or_else(|| entries[from..].iter().find(spoken))
        });
        let Some(entry) = turn else {
            self.set_notice(NoticeLevel::Info, "No turn on screen to copy");
            return;
        };
        let EntryKind::Turn { speaker, .. } = &entry.kind else {
            unreachable!("found a turn");
        };
        let what = format!("{speaker}'s turn");
        let text = entry.text.trim().to_string();
        self.copy(&what, &text);
    }

    /// `Y`: the whole session as Markdown, as the export writes it.
    pub(crate) fn copy_transcript(&mut self) {
        match &self.session {
            Some(session) => {
                let text = session_markdown(session);
                self.copy("the transcript", &text);
            }
            None => self.set_notice(NoticeLevel::Info, "No debate on screen to copy"),
        }
    }

    /// `y` on the report screen: the report as Markdown.
    pub(crate) fn copy_report(&mut self) {
        match self.session.as_ref().and_then(|s| s.report.as_ref()) {
            Some(report) => {
                let text = report_markdown(report);
                self.copy("the report", &text);
            }
            None => self.set_notice(NoticeLevel::Info, "No report to copy yet"),
        }
    }

    /// `m`: rendered Markdown ⇄ raw text, in the conversation and the report.
    pub(crate) fn toggle_markdown(&mut self) {
        let raw = !self.conversation.raw();
        self.conversation.set_raw(raw);
        self.set_notice(
            NoticeLevel::Info,
            if raw {
                "Raw text (m shows Markdown again)"
            } else {
                "Markdown rendered (m shows the raw text)"
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_osc52_is_base64_between_esc_bracket_52_and_bel() {
        assert_eq!(
            osc52("hi ✓", Multiplexer::None),
            b"\x1b]52;c;aGkg4pyT\x07".to_vec()
        );
    }

    #[test]
    fn tmux_wraps_in_its_passthrough_with_the_esc_doubled() {
        assert_eq!(
            osc52("hi ✓", Multiplexer::Tmux),
            b"\x1bPtmux;\x1b\x1b]52;c;aGkg4pyT\x07\x1b\\".to_vec()
        );
    }

    #[test]
    fn screen_sends_short_dcs_chunks() {
        let text = "x".repeat(200);
        let bytes = String::from_utf8(osc52(&text, Multiplexer::Screen)).unwrap();
        assert!(bytes.starts_with("\x1bP\x1b]52;c;eHh4"));
        assert!(bytes.ends_with("\x07\x1b\\"));
        let encoded: String = bytes
            .trim_start_matches("\x1bP\x1b]52;c;")
            .trim_end_matches("\x07\x1b\\")
            .split("\x1b\\\x1bP")
            .inspect(|chunk| assert!(chunk.len() <= SCREEN_CHUNK))
            .collect();
        assert_eq!(STANDARD.decode(encoded).unwrap(), text.as_bytes());
    }

    #[test]
    fn the_environment_picks_the_wrapping_or_says_why_not() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            ClipboardEnv::detect(move |name| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            })
        };
        assert_eq!(
            env(&[("TERM", "xterm-256color")]),
            ClipboardEnv::Osc52(Multiplexer::None)
        );
        assert_eq!(
            env(&[
                ("TERM", "screen-256color"),
                ("TMUX", "/tmp/tmux-0/default,1,0")
            ]),
            ClipboardEnv::Osc52(Multiplexer::Tmux)
        );
        assert_eq!(
            env(&[("TERM", "screen"), ("STY", "123.pts-0")]),
            ClipboardEnv::Osc52(Multiplexer::Screen)
        );
        assert!(
            matches!(env(&[("TERM", "dumb")]), ClipboardEnv::Unsupported(w) if w.contains("dumb"))
        );
        assert!(matches!(
            env(&[("TERM", "xterm"), ("TERM_PROGRAM", "Apple_Terminal")]),
            ClipboardEnv::Unsupported(_)
        ));
    }
}
