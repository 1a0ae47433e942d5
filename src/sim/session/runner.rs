//! Runs a phase of a session (the debate, the report, a follow-up) as a
//! task, applying each event to the session, saving it, and forwarding the
//! event to the face.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::llm::{ChatBackend, ChatMessage, ChatRequest};
use crate::persona::Persona;
use crate::sim::debate::{
    Outcome, SimEvent, Speaker, Transcript, Turn, debate_rounds, prompt_budget, refuse, speak,
};
use crate::sim::moderator::Chair;
use crate::sim::prompts::{followup_prompt, persona_system_prompt};
use crate::sim::report::generate_report;

use super::{RunManifest, Session, SessionLock, SessionStatus, Sessions};

/// Marks the session as run by this process for as long as the lock lives
/// (see [`SessionStore::lock`]); a run goes on without it, logged, when it
/// cannot be taken.
fn lock(store: Option<&Sessions>, id: &str) -> Option<SessionLock> {
    match store?.lock(id)? {
        Ok(lock) => Some(lock),
        Err(e) => {
            tracing::warn!(target: "session", %id, error = %e, "session not locked: it shows as incomplete while it runs");
            None
        }
    }
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
    store: Option<&'a Sessions>,
    tx: &'a mpsc::Sender<SimEvent>,
    cancel: &'a CancellationToken,
}

impl Recorder<'_> {
    async fn save(&mut self) {
        let Some(store) = self.store else { return };
        // The session kept in memory (and exported with `--out`) carries
        // the same time as its file.
        self.session.updated_at = super::now();
        let snapshot = self.session.clone();
        let path = store.place(&snapshot.id);
        let failure = store.save(snapshot).await.err();
        if let Some(e) = &failure {
            tracing::error!(target: "session", error = %e, "session save failed");
        }
        // The face hears of a failure, and of the first save that works
        // after one, so it never says "saved" when the file is not there.
        let news = match (&failure, &self.session.save_error) {
            (Some(message), _) => Some(SimEvent::SessionSaveFailed {
                path,
                message: message.clone(),
            }),
            (None, Some(_)) => Some(SimEvent::SessionSaved { path }),
            (None, None) => None,
        };
        self.session.save_error = failure;
        if let Some(event) = news {
            let _ = self.tx.send(event).await;
        }
    }

    async fn record(&mut self, mut event: SimEvent) {
        // The face sees the same report the file gets.
        if let SimEvent::ReportReady { report } = &mut event {
            report.partial |= self.session.status != SessionStatus::Completed;
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
    store: Option<Sessions>,
    cancel: CancellationToken,
    tx: mpsc::Sender<SimEvent>,
    mut chair: Chair,
) -> Session {
    let config = session.debate_config();
    session.manifest = Some(RunManifest::new(&config, &*backend));
    // Held until the last save is written (locals drop after it).
    let _lock = lock(store.as_ref(), &session.id);
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
        let outcome =
            debate_rounds(&*debate_backend, &config, &itx, &mut transcript, &mut chair).await;
        let _ = itx.send(SimEvent::Done { outcome }).await;
    });
    let finished = rec.pump(task, irx).await;
    // Known once the first turn asked (a server's /models or /props).
    if let Some(manifest) = &mut rec.session.manifest {
        manifest.context = manifest.context.or(backend.context_window());
    }
    if !finished {
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
    store: Option<Sessions>,
    cancel: CancellationToken,
    tx: mpsc::Sender<SimEvent>,
) -> Session {
    let _lock = lock(store.as_ref(), &session.id);
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
    store: Option<Sessions>,
    cancel: CancellationToken,
    tx: mpsc::Sender<SimEvent>,
) -> Session {
    let asked: Vec<Persona> = session
        .personas
        .iter()
        .filter(|p| persona_ids.contains(&p.id))
        .cloned()
        .collect();
    let _lock = lock(store.as_ref(), &session.id);
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
        model: None,
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
    let context = backend.discover_context().await;
    for persona in asked {
        let system = persona_system_prompt(persona);
        let budget = context.map(|ctx| prompt_budget(ctx, max_tokens, &system));
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
            moderated: None,
            announce: None,
        };
        if let Err(outcome) = speak(backend, request, speaker, tx, transcript).await {
            return outcome;
        }
    }
    Outcome::Completed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{BackendInfo, ChatStream};
    use crate::sim::session::tests::config;

    /// Never answers: the run stays in its first turn until cancelled.
    struct Silent;

    impl ChatBackend for Silent {
        fn info(&self) -> BackendInfo {
            BackendInfo {
                kind: "test",
                model: "silent".into(),
                endpoint: "memory".into(),
            }
        }
        fn stream(&self, _request: ChatRequest) -> ChatStream {
            Box::pin(futures::stream::pending())
        }
    }

    #[tokio::test]
    async fn a_run_holds_its_session_lock_until_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::SessionStore::new(dir.path());
        let session = Session::new(&config(), Silent.info());
        let id = session.id.clone();
        let (tx, mut rx) = mpsc::channel(64);
        let cancel = CancellationToken::new();
        let run = tokio::spawn(run_session(
            Arc::new(Silent),
            session,
            ReportPolicy::Never,
            Some(store.clone().into()),
            cancel.clone(),
            tx,
            Chair::absent(),
        ));
        // The first turn started: the session is saved and locked.
        while !matches!(rx.recv().await, Some(SimEvent::TurnStarted { .. })) {}
        assert_eq!(store.find(&id).unwrap().status_label(), "running");
        cancel.cancel();
        while rx.recv().await.is_some() {}
        let ended = run.await.unwrap();
        assert_eq!(ended.status, SessionStatus::Cancelled);
        assert_eq!(store.find(&id).unwrap().status_label(), "cancelled");
        assert!(!store.is_locked(&id));
        assert!(!dir.path().join(format!(".{id}.lock")).exists());
    }
}
