//! The feedback report: the seed's `generate_feedback_report`, which
//! "summarizes conversation with actionable insights".
//!
//! This module holds the report's types. The model is asked for JSON, with
//! a JSON schema where the server enforces one (`prompt.rs`, called in
//! `generate.rs`), and its reply is read leniently (`parse.rs`, on top of
//! [`crate::llm::reply`]): each field is taken only if the model gave it. A
//! missing field stays missing; nothing is filled in. A reply with no JSON
//! at all, or JSON that holds no summary and no findings, becomes a
//! plain-text report with a notice; a reply cut by the token limit is a
//! partial plain-text report that keeps the raw reply and whatever part of
//! the JSON was finished (`parse_cut_report`). The format itself degrades
//! where a server does not take the schema ([`crate::llm::structured`]).
//! `markdown.rs` renders
//! it for exports and holds the evidence lines the faces share.

mod check;
mod generate;
mod markdown;
mod parse;
mod prompt;

use serde::{Deserialize, Serialize};

use crate::llm::Usage;

pub use check::{check_against, participants, usable};
pub use generate::generate_report;
pub use markdown::{evidence, report_markdown, turn_list};
pub use parse::{parse_cut_report, parse_report};
pub use prompt::{report_prompt, report_schema};

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stance {
    For,
    Mixed,
    Against,
}

impl Stance {
    /// Reads the model's word for a stance; `None` if it is none of them.
    fn parse(word: &str) -> Option<Stance> {
        let w = word.trim().to_lowercase();
        match w.as_str() {
            "for" | "in favor" | "in favour" | "support" | "supportive" | "positive" | "pro" => {
                Some(Stance::For)
            }
            "mixed" | "neutral" | "undecided" | "ambivalent" => Some(Stance::Mixed),
            "against" | "opposed" | "negative" | "con" => Some(Stance::Against),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Stance::For => "for",
            Stance::Mixed => "mixed",
            Stance::Against => "against",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PersonaVerdict {
    pub name: Option<String>,
    pub stance: Option<Stance>,
    /// 1 to 10, as the model gave it.
    pub interest: Option<u8>,
    /// The one-line reason, in the persona's words.
    pub reason: Option<String>,
    /// The participant this row is about, once checked against the debate
    /// ([`check::check_against`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona_id: Option<u32>,
}

/// A concern or a request, with the evidence for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub text: String,
    /// How many personas raised it, as the model counted.
    pub count: Option<u32>,
    pub personas: Vec<String>,
    /// 1-based turn numbers in the transcript.
    pub turns: Vec<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Insight {
    /// What to change.
    pub change: String,
    pub why: Option<String>,
    /// Who it helps.
    pub helps: Option<String>,
    pub priority: Option<u32>,
    pub turns: Vec<usize>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    /// Read from the model's JSON.
    #[default]
    Structured,
    /// The model's reply was not JSON: its text is the report.
    PlainText,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub format: ReportFormat,
    pub summary: Option<String>,
    pub personas: Vec<PersonaVerdict>,
    pub concerns: Vec<Point>,
    pub requests: Vec<Point>,
    /// In priority order.
    pub insights: Vec<Insight>,
    /// The model's text, when it could not be read as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// What was missing or wrong in the model's reply, for the reader.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// True when the debate did not finish (cancel, error, budget), or
    /// when the report itself was cut by the token limit (then `text` holds
    /// the model's raw reply and a note says it ran out of room).
    #[serde(default)]
    pub partial: bool,
    /// Citations the check dropped (see [`check::check_against`]): counted
    /// so the report's citation validity measures what the model wrote.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_citations: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}
