//! Sessions: every debate is saved as it happens, one JSON file per session
//! in `sessions/`, rewritten atomically after each finished turn, so a crash
//! or a kill loses at most the turn in progress.
//!
//! This module is the session itself: what a file holds, how each
//! [`SimEvent`] changes it, and what people are shown about it. `store.rs`
//! reads and writes the files; `runner.rs` runs a phase (debate, report or
//! follow-up) for the TUI and the headless commands alike, applying and
//! saving each event before forwarding it to the face. The Markdown form
//! lives with the other export formats in `sim/export.rs`.

mod place;
mod runner;
mod store;

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::llm::pricing::estimate_cost;
use crate::llm::{BackendInfo, Usage};
use crate::persona::Persona;

#[cfg(test)]
use super::debate::TurnFinish;
use super::debate::{DebateConfig, Moderation, Outcome, SimEvent, Turn};
use super::report::Report;

pub use super::export::session_markdown;
pub use place::{Sessions, SessionsError, Summary};
pub use runner::{ReportPolicy, run_followup, run_report, run_session};
pub use store::{SessionError, SessionLock, SessionStore};

/// The file format this build writes, and the newest it reads.
pub const SESSION_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Being written by a live process (or that process died: see
    /// [`Session::status_label`]).
    Running,
    Completed,
    Failed,
    Cancelled,
    BudgetReached,
}

impl SessionStatus {
    /// The status for people; `live`: whether a live process runs it.
    pub fn label(self, live: bool) -> &'static str {
        match self {
            SessionStatus::Running if live => "running",
            SessionStatus::Running => "incomplete",
            SessionStatus::Completed => "completed",
            SessionStatus::Failed => "failed",
            SessionStatus::Cancelled => "cancelled",
            SessionStatus::BudgetReached => "budget reached",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSettings {
    pub rounds: u32,
    pub max_tokens_per_turn: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens_total: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendRecord {
    pub kind: String,
    pub model: String,
    pub endpoint: String,
}

impl From<BackendInfo> for BackendRecord {
    fn from(info: BackendInfo) -> Self {
        BackendRecord {
            kind: info.kind.to_string(),
            model: info.model,
            endpoint: info.endpoint,
        }
    }
}

/// What decides a run's output, recorded when it starts, so a result can be
/// traced and repeated (`sessions rerun` with the response cache).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    /// The persona-sim version that ran it.
    pub version: String,
    pub backend: String,
    /// The model asked for (the server may name another: `backend.model`).
    pub model: String,
    pub sampling: crate::llm::Sampling,
    pub rounds: u32,
    pub max_tokens_per_turn: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens_total: Option<u32>,
    /// A hash of the prompt templates ([`super::prompts::template_fingerprint`]).
    pub prompts: String,
    /// The context size prompts were planned for (small servers and the
    /// local model), once the run knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<u32>,
}

impl RunManifest {
    pub fn new(config: &DebateConfig, backend: &dyn crate::llm::ChatBackend) -> RunManifest {
        let info = backend.info();
        RunManifest {
            version: env!("CARGO_PKG_VERSION").to_string(),
            backend: info.kind.to_string(),
            model: info.model,
            sampling: backend.sampling(),
            rounds: config.rounds,
            max_tokens_per_turn: config.max_tokens_per_turn,
            max_tokens_total: config.max_tokens_total,
            prompts: super::prompts::template_fingerprint(),
            context: backend.context_window(),
        }
    }
}

/// One moderator action as the session keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModerationNote {
    /// Turns in the transcript when it happened (a question counts itself).
    pub after_turns: usize,
    #[serde(flatten)]
    pub action: Moderation,
}

/// A herding alarm as the session keeps it: `count` of the `known`
/// stances stated in `round` were `position` (see [`crate::sim::devil`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HerdingNote {
    pub round: u32,
    pub position: super::stance::Position,
    pub count: usize,
    pub known: usize,
    pub share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub version: u32,
    pub id: String,
    /// RFC 3339, local time with offset.
    pub created_at: String,
    pub updated_at: String,
    pub status: SessionStatus,
    pub feature: String,
    /// The personas as they were when the debate ran.
    pub personas: Vec<Persona>,
    pub settings: SessionSettings,
    pub backend: BackendRecord,
    pub turns: Vec<Turn>,
    /// Every token of the session: turns, follow-ups and the report.
    pub usage: Usage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The process that wrote a running session. Informative only (older
    /// files have it too): a pid is reused, so whether the run is alive is
    /// asked of its lock file instead (see [`Session::live`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Whether a live process runs this session (never written): true for
    /// one this process creates with [`Session::new`]; for one read from a
    /// file, whether some process holds its lock (see [`SessionLock`]).
    #[serde(skip)]
    pub live: bool,
    /// What decided the run (absent in sessions from before manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<RunManifest>,
    /// What the moderator did, in order (questions are turns as well).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moderation: Vec<ModerationNote>,
    /// Rounds where the panel herded, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub herding: Vec<HerdingNote>,
    /// Why the last save failed, while it stays failed (never written: the
    /// file is what could not be written). A face must not say "saved".
    #[serde(skip)]
    pub save_error: Option<String>,
}

fn now() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// "20261124-062332-3f9a": sortable by time, unique enough per machine.
fn new_id() -> String {
    let now = chrono::Local::now();
    let salt = (now.timestamp_subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{}-{salt:04x}", now.format("%Y%m%d-%H%M%S"))
}

impl Session {
    pub fn new(config: &DebateConfig, backend: BackendInfo) -> Session {
        let at = now();
        Session {
            version: SESSION_VERSION,
            id: new_id(),
            created_at: at.clone(),
            updated_at: at,
            status: SessionStatus::Running,
            feature: config.feature.clone(),
            personas: config.personas.clone(),
            settings: SessionSettings {
                rounds: config.rounds,
                max_tokens_per_turn: config.max_tokens_per_turn,
                max_tokens_total: config.max_tokens_total,
            },
            backend: backend.into(),
            turns: Vec::new(),
            usage: Usage::default(),
            report: None,
            report_error: None,
            error: None,
            pid: Some(std::process::id()),
            live: true,
            manifest: None,
            moderation: Vec::new(),
            herding: Vec::new(),
            save_error: None,
        }
    }

    /// The config that re-runs this session (same feature unless edited).
    pub fn debate_config(&self) -> DebateConfig {
        DebateConfig {
            feature: self.feature.clone(),
            personas: self.personas.clone(),
            rounds: self.settings.rounds,
            max_tokens_per_turn: self.settings.max_tokens_per_turn,
            max_tokens_total: self.settings.max_tokens_total,
        }
    }

    /// Applies one event; returns true when the file should be written now
    /// (a turn or a phase ended, a report arrived).
    pub fn apply(&mut self, event: &SimEvent) -> bool {
        match event {
            SimEvent::TurnStarted {
                round,
                persona_id,
                speaker,
                question,
                ..
            } => {
                self.turns.push(Turn {
                    persona_id: *persona_id,
                    speaker: speaker.clone(),
                    round: *round,
                    question: question.clone(),
                    ..Turn::default()
                });
                false
            }
            SimEvent::Token { turn, text } => {
                if let Some(t) = self.turns.get_mut(*turn) {
                    t.text.push_str(text);
                }
                false
            }
            SimEvent::Usage {
                turn,
                prompt_tokens,
                completion_tokens,
                estimated,
            } => {
                let usage = Usage {
                    prompt_tokens: *prompt_tokens,
                    completion_tokens: *completion_tokens,
                };
                self.usage += usage;
                if let Some(t) = self.turns.get_mut(*turn) {
                    *t.usage.get_or_insert_default() += usage;
                    t.usage_estimated |= *estimated;
                }
                false
            }
            SimEvent::TurnEnded {
                turn,
                finish_reason,
                stance,
            } => {
                if let Some(t) = self.turns.get_mut(*turn) {
                    t.complete = true;
                    t.finish_reason = Some(finish_reason.clone());
                    t.stance = *stance;
                }
                true
            }
            SimEvent::Model { model } => {
                // The server's name for what answered ("no --model against
                // a server that serves SmolLM2" records SmolLM2).
                self.backend.model = model.clone();
                false
            }
            SimEvent::Error { message, .. } => {
                self.error = Some(message.clone());
                false
            }
            SimEvent::Done { outcome } => {
                // Follow-ups do not change how the debate itself ended.
                if self.status == SessionStatus::Running {
                    self.status = match outcome {
                        Outcome::Completed => SessionStatus::Completed,
                        Outcome::Failed => SessionStatus::Failed,
                        Outcome::Cancelled => SessionStatus::Cancelled,
                        Outcome::BudgetReached => SessionStatus::BudgetReached,
                    };
                    self.pid = None;
                }
                true
            }
            SimEvent::DebateStarted { .. } => false,
            SimEvent::Herding {
                round,
                position,
                count,
                known,
                share,
            } => {
                self.herding.push(HerdingNote {
                    round: *round,
                    position: *position,
                    count: *count,
                    known: *known,
                    share: *share,
                });
                true
            }
            SimEvent::Moderated(action) => {
                match action {
                    Moderation::Asked { text, .. } => {
                        let round = self.turns.last().map_or(1, |t| t.round);
                        self.turns.push(Turn::moderator_question(text, round));
                    }
                    Moderation::RoundAdded { rounds } => self.settings.rounds = *rounds,
                    Moderation::DevilsAdvocate { turn, .. } => {
                        if let Some(t) = self.turns.get_mut(*turn) {
                            t.devils_advocate = true;
                        }
                    }
                    _ => {}
                }
                self.moderation.push(ModerationNote {
                    after_turns: self.turns.len(),
                    action: action.clone(),
                });
                true
            }
            SimEvent::ReportStarted | SimEvent::ReportToken { .. } => false,
            SimEvent::ReportUsage {
                prompt_tokens,
                completion_tokens,
            } => {
                self.usage += Usage {
                    prompt_tokens: *prompt_tokens,
                    completion_tokens: *completion_tokens,
                };
                false
            }
            SimEvent::ReportReady { report } => {
                let mut report = (**report).clone();
                report.partial |= self.status != SessionStatus::Completed;
                self.report = Some(report);
                self.report_error = None;
                true
            }
            SimEvent::ReportFailed { message } => {
                self.report_error = Some(message.clone());
                true
            }
            // About the file, not the session: never a reason to save.
            SimEvent::SessionSaveFailed { path, message } => {
                self.save_error = Some(save_failure_text(path, message));
                false
            }
            SimEvent::SessionSaved { .. } => {
                self.save_error = None;
                false
            }
        }
    }

    /// Whether turn `index` is a question a spectator asked (the moderator
    /// accepted it from the audience).
    pub fn asked_by_audience(&self, index: usize) -> bool {
        self.moderation.iter().any(
            |m| matches!(m.action, Moderation::Asked { turn, audience: true, .. } if turn == index),
        )
    }

    /// The status for people: a running session that no live process holds
    /// (its lock file is missing or free) is "incomplete".
    pub fn status_label(&self) -> &'static str {
        self.status.label(self.live)
    }

    pub fn first_line(&self) -> &str {
        self.feature
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
    }

    /// Tokens per persona over all their turns, in panel order.
    pub fn usage_by_persona(&self) -> Vec<(String, usize, Usage)> {
        let mut rows: Vec<(u32, String, usize, Usage)> = Vec::new();
        for t in self.turns.iter().filter(|t| !t.moderator) {
            let row = match rows.iter_mut().find(|r| r.0 == t.persona_id) {
                Some(row) => row,
                None => {
                    rows.push((t.persona_id, t.speaker.clone(), 0, Usage::default()));
                    rows.last_mut().expect("just pushed")
                }
            };
            row.2 += 1;
            if let Some(u) = t.usage {
                row.3 += u;
            }
        }
        rows.into_iter().map(|(_, n, c, u)| (n, c, u)).collect()
    }

    /// "1,234 in · 567 out · ≈$0.0012" (the cost only for known models);
    /// "≈1,234 in · ≈567 out" when some counts are estimates.
    pub fn usage_line(&self) -> String {
        let text = usage_text(&self.backend.kind, &self.backend.model, self.usage);
        if self.usage_estimated() {
            mark_estimated(&text)
        } else {
            text
        }
    }

    /// Whether any turn's counts are estimated (the server sent no usage).
    pub fn usage_estimated(&self) -> bool {
        self.turns.iter().any(|t| t.usage_estimated)
    }
}

/// One event as JSON, as every face sends it: a line of `simulate --format
/// jsonl`, the data of one event of the API's event stream.
///
/// `turn_ended` always has `stance`: `{"position": "for"|"mixed"|"against",
/// "interest": 1..=10}`, or `null` when the turn's stance is unknown (it
/// had no readable stance line). The stance line itself is never in a
/// `token` event.
pub fn event_json(event: &SimEvent) -> String {
    serde_json::to_string(event).expect("events serialise")
}

/// Why a session file could not be written, naming the file.
pub fn save_failure_text(path: &std::path::Path, message: &str) -> String {
    let shown = path.display().to_string();
    if message.contains(&shown) {
        message.to_string()
    } else {
        format!("{shown}: {message}")
    }
}

/// "12 in · 3 out" as "≈12 in · ≈3 out" (counts that are estimates).
pub fn mark_estimated(usage_text: &str) -> String {
    usage_text
        .split(" · ")
        .map(|part| match part.chars().next() {
            Some(c) if c.is_ascii_digit() => format!("≈{part}"),
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// Tokens, and an estimated cost where the model's price is known.
pub fn usage_text(kind: &str, model: &str, usage: Usage) -> String {
    let mut text = format!(
        "{} in · {} out",
        usage.prompt_tokens, usage.completion_tokens
    );
    if kind == "openai"
        && usage.total() > 0
        && let Some(cost) = estimate_cost(model, usage)
    {
        let _ = write!(text, " · ≈${cost:.4}");
    }
    text
}

/// Searches sessions by feature text, persona names, status and id; every
/// word must match (case-insensitive).
pub fn session_matches(session: &Session, query: &str) -> bool {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    if words.is_empty() {
        return true;
    }
    let mut hay = format!(
        "{} {} {} {}",
        session.id,
        session.feature,
        session.status_label(),
        session.created_at
    );
    for p in &session.personas {
        hay.push(' ');
        hay.push_str(&p.name);
    }
    let hay = hay.to_lowercase();
    words.iter().all(|w| hay.contains(w.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::builtin_panel;

    pub(super) fn config() -> DebateConfig {
        DebateConfig {
            feature: "Dark mode\nfor night shifts".into(),
            personas: builtin_panel()[..2].to_vec(),
            rounds: 1,
            max_tokens_per_turn: 100,
            max_tokens_total: None,
        }
    }

    pub(super) fn info() -> BackendInfo {
        BackendInfo {
            kind: "openai",
            model: "gpt-4o-mini".into(),
            endpoint: "http://x/v1".into(),
        }
    }

    #[test]
    fn events_build_the_session_and_say_when_to_save() {
        let mut s = Session::new(&config(), info());
        let started = SimEvent::TurnStarted {
            turn: 0,
            round: 1,
            persona_id: 1,
            speaker: "Ana".into(),
            question: None,
        };
        assert!(!s.apply(&started));
        assert!(!s.apply(&SimEvent::Token {
            turn: 0,
            text: "Hi".into()
        }));
        assert!(!s.apply(&SimEvent::Usage {
            turn: 0,
            prompt_tokens: 2000,
            completion_tokens: 1000,
            estimated: false,
        }));
        assert!(s.apply(&SimEvent::TurnEnded {
            turn: 0,
            finish_reason: TurnFinish::Length,
            stance: None,
        }));
        assert!(s.turns[0].is_cut_off());
        assert_eq!(s.turns[0].text, "Hi");
        assert!(s.turns[0].complete);
        assert_eq!(s.status_label(), "running");
        assert!(s.apply(&SimEvent::Done {
            outcome: Outcome::BudgetReached
        }));
        assert_eq!(s.status, SessionStatus::BudgetReached);
        assert!(s.usage_line().contains("2000 in · 1000 out · ≈$0.0009"));
        // A follow-up's Done leaves the debate's status alone.
        s.apply(&SimEvent::Done {
            outcome: Outcome::Failed,
        });
        assert_eq!(s.status, SessionStatus::BudgetReached);
    }

    #[test]
    fn a_turn_keeps_its_stance_in_the_file_and_older_files_load_without() {
        use crate::sim::stance::{Position, Stance};
        let mut s = Session::new(&config(), info());
        for (turn, stance) in [(0, Stance::new(Position::Against, 3)), (1, None)] {
            s.apply(&SimEvent::TurnStarted {
                turn,
                round: 1,
                persona_id: turn as u32 + 1,
                speaker: "Ana".into(),
                question: None,
            });
            s.apply(&SimEvent::Token {
                turn,
                text: "Hi".into(),
            });
            assert!(s.apply(&SimEvent::TurnEnded {
                turn,
                finish_reason: TurnFinish::Stop,
                stance,
            }));
        }
        assert_eq!(s.turns[0].stance, Stance::new(Position::Against, 3));
        let file = serde_json::to_value(&s).unwrap();
        assert_eq!(
            file["turns"][0]["stance"],
            serde_json::json!({"position": "against", "interest": 3})
        );
        // Unknown is absent from the file, as in files from before stances.
        assert!(file["turns"][1].get("stance").is_none());
        let read: Session = serde_json::from_value(file.clone()).unwrap();
        assert_eq!(read.turns, s.turns);
        let mut old = file;
        old["turns"][0].as_object_mut().unwrap().remove("stance");
        let read: Session = serde_json::from_value(old).unwrap();
        assert!(read.turns.iter().all(|t| t.stance.is_none()));
        assert_eq!(read.turns[0].text, "Hi");
    }

    #[test]
    fn a_running_session_nobody_runs_is_incomplete_whatever_its_pid() {
        let mut s = Session::new(&config(), info());
        assert_eq!(s.status_label(), "running");
        s.live = false;
        // Our own pid is alive, and no longer trusted.
        s.pid = Some(std::process::id());
        assert_eq!(s.status_label(), "incomplete");
        // A file read without a store knows of no live run.
        let read: Session = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(read.status_label(), "incomplete");
    }

    #[test]
    fn search_ands_words_over_feature_personas_and_status() {
        let s = Session::new(&config(), info());
        let name = s.personas[0].name.split(' ').next().unwrap().to_lowercase();
        assert!(session_matches(&s, &format!("DARK {name}")));
        assert!(session_matches(&s, "night running"));
        assert!(!session_matches(&s, "dark light"));
        assert!(session_matches(&s, "  "));
    }
}
