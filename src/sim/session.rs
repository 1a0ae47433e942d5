//! Sessions: every debate is saved as it happens, one JSON file per session
//! in `sessions/`, rewritten atomically after each finished turn, so a crash
//! or a kill loses at most the turn in progress. The same runner serves the
//! TUI and the headless commands: it runs a phase (debate, report or
//! follow-up), applies each event to the session, saves, and forwards the
//! event to the face.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::atomic_file::write as atomic_write;
use crate::llm::pricing::estimate_cost;
use crate::llm::{BackendInfo, ChatBackend, ChatMessage, ChatRequest, Usage};
use crate::persona::Persona;

use super::debate::{
    DebateConfig, Outcome, SimEvent, Speaker, Transcript, Turn, debate_rounds, refuse, speak,
};
use super::prompts::{followup_prompt, persona_system_prompt};
use super::report::{Report, generate_report, report_markdown};

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
    /// The process writing a running session, to tell a live one from one
    /// whose process was killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
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
                    text: String::new(),
                    complete: false,
                    usage: None,
                    question: question.clone(),
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
            } => {
                let usage = Usage {
                    prompt_tokens: *prompt_tokens,
                    completion_tokens: *completion_tokens,
                };
                self.usage += usage;
                if let Some(t) = self.turns.get_mut(*turn) {
                    *t.usage.get_or_insert_default() += usage;
                }
                false
            }
            SimEvent::TurnEnded { turn } => {
                if let Some(t) = self.turns.get_mut(*turn) {
                    t.complete = true;
                }
                true
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
                report.partial = self.status != SessionStatus::Completed;
                self.report = Some(report);
                self.report_error = None;
                true
            }
            SimEvent::ReportFailed { message } => {
                self.report_error = Some(message.clone());
                true
            }
        }
    }

    /// The status for people: a running session whose process is gone is
    /// "incomplete".
    pub fn status_label(&self) -> &'static str {
        match self.status {
            SessionStatus::Running if self.pid.is_some_and(process_alive) => "running",
            SessionStatus::Running => "incomplete",
            SessionStatus::Completed => "completed",
            SessionStatus::Failed => "failed",
            SessionStatus::Cancelled => "cancelled",
            SessionStatus::BudgetReached => "budget reached",
        }
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
        for t in &self.turns {
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

    /// "1,234 in · 567 out · ≈$0.0012" (the cost only for known models).
    pub fn usage_line(&self) -> String {
        usage_text(&self.backend.kind, &self.backend.model, self.usage)
    }
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

#[cfg(target_os = "linux")]
fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(not(target_os = "linux"))]
fn process_alive(pid: u32) -> bool {
    // Without /proc we cannot tell; only our own process is surely alive.
    pid == std::process::id()
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("no session matches {0:?} (see `persona-sim sessions list`)")]
    NotFound(String),
    #[error("{0:?} matches more than one session: {1}")]
    Ambiguous(String, String),
    #[error("cannot read session {path}: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error(transparent)]
    Write(#[from] crate::atomic_file::WriteError),
    #[error("cannot delete {path}: {source}")]
    Delete {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The `sessions/` directory.
#[derive(Debug, Clone)]
pub struct SessionStore {
    pub dir: PathBuf,
}

impl SessionStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SessionStore { dir: dir.into() }
    }

    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Writes the session atomically (temp file, fsync, rename).
    pub fn save(&self, session: &Session) -> Result<PathBuf, SessionError> {
        let mut session = session.clone();
        session.updated_at = now();
        let path = self.path(&session.id);
        let mut text = serde_json::to_string_pretty(&session).expect("sessions serialise");
        text.push('\n');
        atomic_write(&path, &text)?;
        Ok(path)
    }

    pub fn load_path(path: &Path) -> Result<Session, SessionError> {
        let err = |detail: String| SessionError::Read {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| err(e.to_string()))
    }

    /// Every session, newest first, and the files that could not be read.
    pub fn list(&self) -> (Vec<Session>, Vec<SessionError>) {
        let mut sessions = Vec::new();
        let mut errors = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return (sessions, errors);
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !name.ends_with(".json") || name.starts_with('.') {
                continue;
            }
            match Self::load_path(&path) {
                Ok(s) => sessions.push(s),
                Err(e) => errors.push(e),
            }
        }
        sessions.sort_by(|a, b| b.id.cmp(&a.id));
        (sessions, errors)
    }

    /// The session with this id, or the only one starting with it.
    pub fn find(&self, id_or_prefix: &str) -> Result<Session, SessionError> {
        let exact = self.path(id_or_prefix);
        if exact.exists() {
            return Self::load_path(&exact);
        }
        let (sessions, _) = self.list();
        let matches: Vec<Session> = sessions
            .into_iter()
            .filter(|s| !id_or_prefix.is_empty() && s.id.starts_with(id_or_prefix))
            .collect();
        match matches.len() {
            0 => Err(SessionError::NotFound(id_or_prefix.into())),
            1 => Ok(matches.into_iter().next().expect("one match")),
            _ => Err(SessionError::Ambiguous(
                id_or_prefix.into(),
                matches
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    pub fn delete(&self, id: &str) -> Result<(), SessionError> {
        let path = self.path(id);
        std::fs::remove_file(&path).map_err(|source| SessionError::Delete { path, source })
    }
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

/// What a runner does after the debate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportPolicy {
    /// When the debate completed or hit its token budget.
    Auto,
    Never,
}

/// Runs one phase task, applying and saving its events and forwarding them
/// to `tx`. On cancel the task is aborted and `Done { Cancelled }` (or, for
/// a report, `ReportFailed`) is recorded.
struct Recorder<'a> {
    session: &'a mut Session,
    store: Option<&'a SessionStore>,
    tx: &'a mpsc::Sender<SimEvent>,
    cancel: &'a CancellationToken,
}

impl Recorder<'_> {
    async fn save(&mut self) {
        let Some(store) = self.store else { return };
        let snapshot = self.session.clone();
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.save(&snapshot)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(target: "session", error = %e, "session save failed"),
            Err(e) => tracing::error!(target: "session", error = %e, "session save task failed"),
        }
    }

    async fn record(&mut self, mut event: SimEvent) {
        // The face sees the same report the file gets.
        if let SimEvent::ReportReady { report } = &mut event {
            report.partial = self.session.status != SessionStatus::Completed;
        }
        if self.session.apply(&event) {
            self.save().await;
        }
        let _ = self.tx.send(event).await;
    }

    /// Pumps events from a phase until it ends. Returns false if cancelled.
    async fn pump(
        &mut self,
        task: tokio::task::JoinHandle<()>,
        mut events: mpsc::Receiver<SimEvent>,
    ) -> bool {
        loop {
            tokio::select! {
                biased;
                event = events.recv() => match event {
                    Some(event) => self.record(event).await,
                    None => return true,
                },
                _ = self.cancel.cancelled() => {
                    task.abort();
                    while let Ok(event) = events.try_recv() {
                        self.record(event).await;
                    }
                    return false;
                }
            }
        }
    }
}

/// Runs the debate of a new session (from [`Session::new`]), saving it as
/// it goes, then its report (per `report`).
pub async fn run_session(
    backend: Arc<dyn ChatBackend>,
    mut session: Session,
    report: ReportPolicy,
    store: Option<SessionStore>,
    cancel: CancellationToken,
    tx: mpsc::Sender<SimEvent>,
) -> Session {
    let config = session.debate_config();
    let mut rec = Recorder {
        session: &mut session,
        store: store.as_ref(),
        tx: &tx,
        cancel: &cancel,
    };
    rec.save().await;
    tracing::info!(target: "session", id = %rec.session.id, "session started");
    let (itx, irx) = mpsc::channel(256);
    let debate_backend = backend.clone();
    let task = tokio::spawn(async move {
        let mut transcript = Transcript::default();
        let outcome = debate_rounds(&*debate_backend, &config, &itx, &mut transcript).await;
        let _ = itx.send(SimEvent::Done { outcome }).await;
    });
    if !rec.pump(task, irx).await {
        rec.record(SimEvent::Done {
            outcome: Outcome::Cancelled,
        })
        .await;
        return session;
    }
    let wants_report = report == ReportPolicy::Auto
        && matches!(
            rec.session.status,
            SessionStatus::Completed | SessionStatus::BudgetReached
        )
        && rec.session.turns.iter().any(|t| !t.text.trim().is_empty());
    if wants_report {
        report_phase(&mut rec, backend).await;
    }
    session
}

/// Writes (or rewrites) the report of a saved session.
pub async fn run_report(
    backend: Arc<dyn ChatBackend>,
    mut session: Session,
    store: Option<SessionStore>,
    cancel: CancellationToken,
    tx: mpsc::Sender<SimEvent>,
) -> Session {
    let mut rec = Recorder {
        session: &mut session,
        store: store.as_ref(),
        tx: &tx,
        cancel: &cancel,
    };
    report_phase(&mut rec, backend).await;
    session
}

async fn report_phase(rec: &mut Recorder<'_>, backend: Arc<dyn ChatBackend>) {
    let (itx, irx) = mpsc::channel(256);
    let feature = rec.session.feature.clone();
    let turns = rec.session.turns.clone();
    let task = tokio::spawn(async move {
        generate_report(&*backend, &feature, &turns, &itx).await;
    });
    if !rec.pump(task, irx).await {
        rec.record(SimEvent::ReportFailed {
            message: "cancelled".into(),
        })
        .await;
    }
}

/// Asks some of the session's personas a follow-up question; their answers
/// are new turns of the same session.
pub async fn run_followup(
    backend: Arc<dyn ChatBackend>,
    mut session: Session,
    question: String,
    persona_ids: Vec<u32>,
    store: Option<SessionStore>,
    cancel: CancellationToken,
    tx: mpsc::Sender<SimEvent>,
) -> Session {
    let asked: Vec<Persona> = session
        .personas
        .iter()
        .filter(|p| persona_ids.contains(&p.id))
        .cloned()
        .collect();
    let mut rec = Recorder {
        session: &mut session,
        store: store.as_ref(),
        tx: &tx,
        cancel: &cancel,
    };
    let (itx, irx) = mpsc::channel(256);
    let feature = rec.session.feature.clone();
    let names: Vec<String> = rec
        .session
        .personas
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let round = rec.session.settings.rounds + 1;
    let max_tokens = rec.session.settings.max_tokens_per_turn;
    let mut transcript = Transcript {
        turns: rec.session.turns.clone(),
        usage: rec.session.usage,
    };
    let task = tokio::spawn(async move {
        let ask = FollowUp {
            feature: &feature,
            question: &question,
            asked: &asked,
            names: &names,
            round,
            max_tokens,
        };
        let outcome = followup_turns(&*backend, ask, &mut transcript, &itx).await;
        let _ = itx.send(SimEvent::Done { outcome }).await;
    });
    if !rec.pump(task, irx).await {
        rec.record(SimEvent::Done {
            outcome: Outcome::Cancelled,
        })
        .await;
    }
    session
}

/// A follow-up question and who is asked.
struct FollowUp<'a> {
    feature: &'a str,
    question: &'a str,
    asked: &'a [Persona],
    /// Everyone in the debate (a turn is cut where another one starts).
    names: &'a [String],
    round: u32,
    max_tokens: u32,
}

async fn followup_turns(
    backend: &dyn ChatBackend,
    ask: FollowUp<'_>,
    transcript: &mut Transcript,
    tx: &mpsc::Sender<SimEvent>,
) -> Outcome {
    let FollowUp {
        feature,
        question,
        asked,
        names,
        round,
        max_tokens,
    } = ask;
    if asked.is_empty() {
        return refuse(
            tx,
            "choose who to ask: select personas who took part in this debate",
        )
        .await;
    }
    if question.trim().is_empty() {
        return refuse(tx, "type the follow-up question in the editor first").await;
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let context = backend.context_window();
    for persona in asked {
        let system = persona_system_prompt(persona);
        let budget = context.map(|ctx| super::debate::prompt_budget(ctx, max_tokens, &system));
        let user = followup_prompt(feature, &transcript.turns, persona, question, budget);
        let request = ChatRequest::new(
            vec![ChatMessage::system(system), ChatMessage::user(user)],
            max_tokens,
        );
        let mut turn = Turn::new(persona, round);
        turn.question = Some(question.trim().to_string());
        let speaker = Speaker {
            turn,
            participants: &names,
            small_model: context.is_some(),
        };
        if let Err(outcome) = speak(backend, request, speaker, tx, transcript).await {
            return outcome;
        }
    }
    Outcome::Completed
}

/// The session as Markdown: header, feature, transcript, usage, report.
pub fn session_markdown(session: &Session) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Persona debate: {}\n", session.first_line());
    let _ = writeln!(md, "- Session: `{}`", session.id);
    let _ = writeln!(md, "- Started: {}", session.created_at);
    let _ = writeln!(md, "- Status: {}", session.status_label());
    let _ = writeln!(
        md,
        "- Backend: {} · {} ({})",
        session.backend.kind, session.backend.model, session.backend.endpoint
    );
    let panel: Vec<String> = session
        .personas
        .iter()
        .map(|p| format!("{} ({}, {})", p.name, p.occupation, p.location))
        .collect();
    let _ = writeln!(md, "- Personas: {}", panel.join("; "));
    let _ = writeln!(md, "- Rounds: {}", session.settings.rounds);
    let _ = writeln!(md, "- Tokens: {}\n", session.usage_line());
    let _ = writeln!(md, "## Feature\n\n{}\n", session.feature.trim());
    md.push_str("## Transcript\n\n");
    let occupation = |id: u32| {
        session
            .personas
            .iter()
            .find(|p| p.id == id)
            .map(|p| format!(" ({})", p.occupation))
            .unwrap_or_default()
    };
    for (i, turn) in session.turns.iter().enumerate() {
        let what = match &turn.question {
            Some(q) => format!("follow-up: “{q}”"),
            None => format!("round {}", turn.round),
        };
        let _ = writeln!(
            md,
            "### T{} · {}{} · {what}\n",
            i + 1,
            turn.speaker,
            occupation(turn.persona_id)
        );
        let text = turn.text.trim();
        if !text.is_empty() {
            let _ = writeln!(md, "{text}\n");
        }
        if !turn.complete {
            md.push_str("*(cut off: this turn did not finish)*\n\n");
        }
    }
    if let Some(error) = &session.error {
        let _ = writeln!(md, "> Stopped by an error: {error}\n");
    }
    let rows = session.usage_by_persona();
    if rows.iter().any(|(_, _, u)| u.total() > 0) {
        md.push_str(
            "## Usage\n\n| Persona | Turns | Tokens in | Tokens out |\n| --- | --- | --- | --- |\n",
        );
        for (name, turns, u) in rows {
            let _ = writeln!(
                md,
                "| {name} | {turns} | {} | {} |",
                u.prompt_tokens, u.completion_tokens
            );
        }
        md.push('\n');
    }
    md.push_str("## Feedback report\n\n");
    match (&session.report, &session.report_error) {
        (Some(report), _) => md.push_str(&report_markdown(report)),
        (None, Some(error)) => {
            let _ = writeln!(md, "*No report: {error}*");
        }
        (None, None) => md.push_str("*No report yet.*\n"),
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::builtin_panel;

    fn config() -> DebateConfig {
        DebateConfig {
            feature: "Dark mode\nfor night shifts".into(),
            personas: builtin_panel()[..2].to_vec(),
            rounds: 1,
            max_tokens_per_turn: 100,
            max_tokens_total: None,
        }
    }

    fn info() -> BackendInfo {
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
            completion_tokens: 1000
        }));
        assert!(s.apply(&SimEvent::TurnEnded { turn: 0 }));
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
    fn a_running_session_of_a_dead_process_is_incomplete() {
        let mut s = Session::new(&config(), info());
        s.pid = Some(u32::MAX - 1);
        assert_eq!(s.status_label(), "incomplete");
    }

    #[test]
    fn store_round_trips_lists_newest_first_finds_by_prefix_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path().join("sessions"));
        let mut a = Session::new(&config(), info());
        a.id = "20260101-000000-aaaa".into();
        let mut b = a.clone();
        b.id = "20260202-000000-bbbb".into();
        store.save(&a).unwrap();
        store.save(&b).unwrap();
        std::fs::write(store.dir.join("broken.json"), "{").unwrap();
        let (list, errors) = store.list();
        assert_eq!(
            list.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["20260202-000000-bbbb", "20260101-000000-aaaa"]
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(store.find("202601").unwrap().id, a.id);
        assert!(matches!(
            store.find("2026"),
            Err(SessionError::Ambiguous(..))
        ));
        assert!(matches!(store.find("1999"), Err(SessionError::NotFound(_))));
        store.delete(&a.id).unwrap();
        assert!(store.find(&a.id).is_err());
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
