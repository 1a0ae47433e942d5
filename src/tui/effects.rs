//! Carries out what `App::update` asks for (an [`Effect`]): runs debates,
//! reports and follow-ups as tasks, disk work off the UI thread, persona
//! synthesis and the model download. Answers come back over channels that
//! the loop in `mod.rs` selects on.

use crate::sim::devil::Herding;
use crate::sim::live::Feed;
use crate::sim::moderator::{self, Commands};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::action::{Effect, JobDone};
use super::app::App;
use crate::llm::ChatBackend;
use crate::llm::fetch::{FetchPlan, FetchProgress, fetch};
use crate::observe::metrics::Metrics;
use crate::persona::backup::backup_now;
use crate::persona::store::StorePaths;
use crate::persona::writer::PanelWriter;
use crate::sim::debate::SimEvent;
use crate::sim::export::export_to_dir;
use crate::sim::session::{
    ReportPolicy, Session, SessionStore, run_followup, run_report, run_session, save_failure_text,
};
use crate::sim::synth::{synthesize_batch, synthesize_one};

/// Sim events applied per batch before the loop looks at keys again.
pub const EVENT_BATCH: usize = 1024;
/// How long quitting waits for a cancelled run to save its session.
const SAVE_ON_QUIT: Duration = Duration::from_secs(2);

pub enum FetchMsg {
    Progress(FetchProgress),
    Done(Result<PathBuf, String>),
}

/// Where the background work goes.
pub struct Places {
    pub model_url: String,
    pub sessions: SessionStore,
    pub exports_dir: PathBuf,
    pub store_paths: StorePaths,
}

/// The debate, report or follow-up task that is running.
struct RunningDebate {
    task: JoinHandle<Session>,
    events: mpsc::Receiver<SimEvent>,
    cancel: CancellationToken,
    /// A debate (not a report or follow-up): its end is counted.
    is_debate: bool,
    /// The moderator's commands for it (a debate only).
    commands: Option<Commands>,
}

pub struct Effects {
    backend: Option<Arc<dyn ChatBackend>>,
    metrics: Arc<Metrics>,
    places: Places,
    writer: PanelWriter,
    debate: Option<RunningDebate>,
    synth_task: Option<JoinHandle<()>>,
    fetch_task: Option<JoinHandle<()>>,
    jobs_tx: mpsc::UnboundedSender<JobDone>,
    fetch_tx: mpsc::UnboundedSender<FetchMsg>,
    /// Where every event is published for spectators (`--live`).
    live: Option<Arc<Feed>>,
    /// How debates watch for herding (the TUI offers Ctrl-D by default).
    herding: Herding,
}

impl Effects {
    /// Returns the effects and the receivers of background answers.
    pub fn new(
        backend: Option<Arc<dyn ChatBackend>>,
        metrics: Arc<Metrics>,
        places: Places,
        writer: PanelWriter,
    ) -> (
        Effects,
        mpsc::UnboundedReceiver<JobDone>,
        mpsc::UnboundedReceiver<FetchMsg>,
    ) {
        let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
        let (fetch_tx, fetch_rx) = mpsc::unbounded_channel();
        let effects = Effects {
            backend,
            metrics,
            places,
            writer,
            debate: None,
            synth_task: None,
            fetch_task: None,
            jobs_tx,
            fetch_tx,
            live: None,
            herding: Herding::default(),
        };
        (effects, jobs_rx, fetch_rx)
    }

    /// Debates from now on watch for herding so.
    pub fn watch_herding(&mut self, herding: Herding) {
        self.herding = herding;
    }

    /// Publishes every event of every run to spectators from now on.
    pub fn publish_to(&mut self, feed: Arc<Feed>) {
        self.live = Some(feed);
    }

    /// The next event of the running debate; pending when none runs.
    pub async fn next_sim_event(&mut self) -> Option<SimEvent> {
        match &mut self.debate {
            Some(d) => d.events.recv().await,
            None => std::future::pending().await,
        }
    }

    /// Applies `first` and whatever else has already arrived (up to a
    /// batch), so a burst of tokens costs one frame. `None` ends the run.
    pub fn on_sim_event(&mut self, first: Option<SimEvent>, app: &mut App) {
        let Some(first) = first else {
            self.debate = None;
            return;
        };
        let is_debate = self.debate.as_ref().is_some_and(|d| d.is_debate);
        count_debate_end(&self.metrics, is_debate, &first);
        if let Some(feed) = &self.live {
            feed.publish(&first);
        }
        app.on_sim_event(first);
        let Some(d) = &mut self.debate else { return };
        for _ in 0..EVENT_BATCH {
            let Ok(event) = d.events.try_recv() else {
                break;
            };
            count_debate_end(&self.metrics, is_debate, &event);
            if let Some(feed) = &self.live {
                feed.publish(&event);
            }
            app.on_sim_event(event);
        }
    }

    pub fn fetch_finished(&mut self) {
        self.fetch_task = None;
    }

    pub fn apply(&mut self, effect: Effect, app: &mut App) {
        match effect {
            // The loop runs it: it owns the terminal it hands over.
            Effect::EditExternally { .. } => {}
            Effect::Moderate(command) => {
                let sent = self
                    .debate
                    .as_ref()
                    .and_then(|d| d.commands.as_ref())
                    .is_some_and(|c| c.send(command).is_ok());
                if !sent {
                    app.set_notice(
                        crate::tui::app::NoticeLevel::Error,
                        "The debate has ended: nothing to moderate",
                    );
                }
            }
            Effect::StartDebate(config) => {
                let Some(backend) = self.backend.clone() else {
                    return;
                };
                let session = Session::new(&config, backend.info());
                app.begin_session(session.clone());
                let store = Some(self.places.sessions.clone());
                self.metrics.debates_started.inc();
                let (commands, chair) = moderator::channel();
                let chair = chair.with_herding(self.herding);
                let mut run = spawn_run(|tx, cancel| {
                    run_session(
                        backend,
                        session,
                        ReportPolicy::Auto,
                        store.map(Into::into),
                        cancel,
                        tx,
                        chair,
                    )
                });
                run.is_debate = true;
                run.commands = Some(commands);
                self.debate = Some(run);
            }
            Effect::WriteReport(session) => {
                let Some(backend) = self.backend.clone() else {
                    return;
                };
                let store = Some(self.places.sessions.clone());
                self.debate = Some(spawn_run(|tx, cancel| {
                    run_report(backend, *session, store.map(Into::into), cancel, tx)
                }));
            }
            Effect::FollowUp {
                session,
                question,
                persona_ids,
            } => {
                let Some(backend) = self.backend.clone() else {
                    return;
                };
                let store = Some(self.places.sessions.clone());
                self.debate = Some(spawn_run(|tx, cancel| {
                    run_followup(
                        backend,
                        *session,
                        question,
                        persona_ids,
                        store.map(Into::into),
                        cancel,
                        tx,
                    )
                }));
            }
            Effect::SaveSession(session) => {
                let store = self.places.sessions.clone();
                self.background(move || {
                    let path = store.path(&session.id);
                    let result = store.save(&session).map(|_| ()).map_err(|e| {
                        tracing::error!(target: "session", error = %e, "session save failed again");
                        save_failure_text(&path, &e.to_string())
                    });
                    JobDone::SessionSaved {
                        id: session.id.clone(),
                        path,
                        result,
                    }
                });
            }
            Effect::CancelDebate => {
                // The runner records the cancel in the session and closes
                // its channel; the loop keeps draining until then.
                if let Some(d) = &self.debate {
                    d.cancel.cancel();
                    tracing::info!(target: "debate", "cancelled by the user");
                }
            }
            Effect::LoadHistory => {
                let store = self.places.sessions.clone();
                self.background(move || {
                    let (sessions, errors) = store.list();
                    for e in &errors {
                        tracing::warn!(target: "session", error = %e, "unreadable session file");
                    }
                    JobDone::History {
                        sessions,
                        errors: errors.iter().map(|e| e.to_string()).collect(),
                    }
                });
            }
            Effect::DeleteSession(id) => {
                let store = self.places.sessions.clone();
                self.background(move || {
                    JobDone::Deleted(store.delete(&id).map(|_| id).map_err(|e| e.to_string()))
                });
            }
            Effect::Export(session, format) => {
                let dir = self.places.exports_dir.clone();
                self.background(move || {
                    JobDone::Exported(
                        export_to_dir(&session, &dir, format).map_err(|e| e.to_string()),
                    )
                });
            }
            Effect::ChangePanel(change) => self.writer.send(*change),
            Effect::Backup => {
                let paths = self.places.store_paths.clone();
                self.background(move || {
                    JobDone::BackedUp(backup_now(&paths).map_err(|e| e.to_string()))
                });
            }
            Effect::Synthesize {
                brief,
                count,
                panel,
            } => {
                let Some(backend) = self.backend.clone() else {
                    return;
                };
                let tx = self.jobs_tx.clone();
                self.synth_task = Some(tokio::spawn(async move {
                    if count == 1 {
                        let result = synthesize_one(&*backend, &brief, &panel).await;
                        let _ = tx.send(JobDone::Synthesized(result));
                        return;
                    }
                    let (events_tx, mut events) = mpsc::channel(64);
                    let forward = tx.clone();
                    let progress = tokio::spawn(async move {
                        while let Some(e) = events.recv().await {
                            let _ = forward.send(JobDone::SynthProgress(e));
                        }
                    });
                    let result = synthesize_batch(backend, brief, count, panel, events_tx).await;
                    let _ = progress.await;
                    let _ = tx.send(JobDone::BatchDone(result));
                }));
            }
            Effect::CancelSynthesis => {
                if let Some(task) = self.synth_task.take() {
                    task.abort();
                }
            }
            Effect::FetchModel(path) => {
                let tx = self.fetch_tx.clone();
                let plan = FetchPlan::default_model(path, &self.places.model_url);
                self.fetch_task = Some(tokio::spawn(async move {
                    let progress_tx = tx.clone();
                    let result = fetch(&plan, move |p| {
                        let _ = progress_tx.send(FetchMsg::Progress(p));
                    })
                    .await
                    .map_err(|e| e.to_string());
                    let _ = tx.send(FetchMsg::Done(result));
                }));
            }
            Effect::CancelFetch => {
                if let Some(task) = self.fetch_task.take() {
                    task.abort();
                }
            }
        }
    }

    /// Disk work off the UI thread; the answer comes back as a `JobDone`.
    fn background(&self, job: impl FnOnce() -> JobDone + Send + 'static) {
        let tx = self.jobs_tx.clone();
        tokio::task::spawn_blocking(move || {
            let _ = tx.send(job());
        });
    }

    /// On quit: a running debate is cancelled and given a moment to save
    /// its session; downloads and synthesis stop; pending panel changes are written.
    pub async fn shutdown(mut self) {
        if let Some(d) = self.debate.take() {
            d.cancel.cancel();
            // No one reads the events any more: the runner's sends must
            // fail at once, not wait on a full channel.
            drop(d.events);
            match tokio::time::timeout(SAVE_ON_QUIT, d.task).await {
                Err(_) => tracing::warn!(target: "session", "quit before the session was saved"),
                Ok(Ok(session)) => match &session.save_error {
                    Some(e) => {
                        tracing::error!(target: "session", id = %session.id, error = %e, "the session was not saved on quit")
                    }
                    None => {
                        tracing::info!(target: "session", id = %session.id, status = session.status_label(), turns = session.turns.len(), "session saved on quit")
                    }
                },
                Ok(Err(e)) => {
                    tracing::error!(target: "session", error = %e, "the run failed on quit")
                }
            }
        }
        for task in [self.fetch_task.take(), self.synth_task.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        self.writer.shutdown();
    }
}

/// Counts the end of a debate (not of a report or follow-up) by outcome.
fn count_debate_end(metrics: &Metrics, is_debate: bool, event: &SimEvent) {
    if let (true, SimEvent::Done { outcome }) = (is_debate, event) {
        metrics.debate_finished(*outcome);
    }
}

/// Starts a run (debate, report or follow-up) with its channel and cancel.
fn spawn_run<F>(start: impl FnOnce(mpsc::Sender<SimEvent>, CancellationToken) -> F) -> RunningDebate
where
    F: std::future::Future<Output = Session> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(EVENT_BATCH);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(start(tx, cancel.clone()));
    RunningDebate {
        task,
        events: rx,
        cancel,
        is_debate: false,
        commands: None,
    }
}
