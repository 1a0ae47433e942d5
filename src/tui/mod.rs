//! The TUI face: terminal setup and teardown, and the event loop.

pub mod action;
pub mod app;
pub mod form;
pub mod keymap;
pub mod panel;
pub mod panes;
pub mod theme;
pub mod ui;

use std::io::{self, Stdout, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    EventStream, KeyboardEnhancementFlags, PopKeyboardEnhancementFlags,
    PushKeyboardEnhancementFlags,
};
use crossterm::terminal::{
    BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::llm::ChatBackend;
use crate::llm::fetch::{FetchPlan, FetchProgress, fetch};
use crate::observe::metrics::Metrics;
use crate::persona::autosave::{Autosaver, SaveNotice};
use crate::persona::backup::backup_now;
use crate::persona::store::{Loaded, StorePaths};
use crate::services::Services;
use crate::sim::synth::{synthesize_batch, synthesize_one};
use tokio_util::sync::CancellationToken;

use crate::sim::debate::SimEvent;
use crate::sim::export::export_to_dir;
use crate::sim::session::{
    ReportPolicy, Session, SessionStore, run_followup, run_report, run_session,
};

use action::{Effect, JobDone};
use app::{App, NoticeLevel};

/// At most ~60 frames a second.
const FRAME_INTERVAL: Duration = Duration::from_millis(16);
/// Sim events applied per batch before the loop looks at keys again.
const EVENT_BATCH: usize = 1024;
/// Ticks (for the elapsed-seconds counter) only while a debate runs.
const RUNNING_TICK: Duration = Duration::from_millis(500);

static KEYBOARD_ENHANCED: AtomicBool = AtomicBool::new(false);
static MOUSE_CAPTURED: AtomicBool = AtomicBool::new(false);

/// Owns the terminal; restores it on drop, and a panic hook restores it on
/// panic before the message is printed.
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    fn enter(mouse: bool) -> anyhow::Result<Self> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            tracing::error!(target: "app", "panic: {info}");
            previous(info);
        }));
        crossterm::terminal::enable_raw_mode().context("cannot switch the terminal to raw mode")?;
        let mut stdout = io::stdout();
        let setup = (|| -> io::Result<()> {
            execute!(
                stdout,
                EnterAlternateScreen,
                EnableBracketedPaste,
                cursor::Hide
            )?;
            if mouse {
                execute!(stdout, EnableMouseCapture)?;
                MOUSE_CAPTURED.store(true, Ordering::SeqCst);
            }
            // Lets terminals with the kitty protocol report Ctrl-Enter.
            if matches!(
                crossterm::terminal::supports_keyboard_enhancement(),
                Ok(true)
            ) {
                execute!(
                    stdout,
                    PushKeyboardEnhancementFlags(
                        KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES
                    )
                )?;
                KEYBOARD_ENHANCED.store(true, Ordering::SeqCst);
            }
            Ok(())
        })();
        if let Err(e) = setup {
            restore_terminal();
            return Err(e).context("cannot set up the terminal");
        }
        let terminal =
            Terminal::new(CrosstermBackend::new(stdout)).inspect_err(|_| restore_terminal())?;
        Ok(TerminalGuard { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Safe to call more than once.
fn restore_terminal() {
    let mut stdout = io::stdout();
    if KEYBOARD_ENHANCED.swap(false, Ordering::SeqCst) {
        let _ = execute!(stdout, PopKeyboardEnhancementFlags);
    }
    if MOUSE_CAPTURED.swap(false, Ordering::SeqCst) {
        let _ = execute!(stdout, DisableMouseCapture);
    }
    let _ = execute!(
        stdout,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = stdout.flush();
}

enum FetchMsg {
    Progress(FetchProgress),
    Done(Result<PathBuf, String>),
}

/// The debate, report or follow-up task that is running.
struct RunningDebate {
    task: JoinHandle<Session>,
    events: mpsc::Receiver<SimEvent>,
    cancel: CancellationToken,
    /// A debate (not a report or follow-up): its end is counted.
    is_debate: bool,
}

/// How long quitting waits for a cancelled run to save its session.
const SAVE_ON_QUIT: Duration = Duration::from_secs(2);

/// Where the loop's background work goes.
struct Places {
    model_url: String,
    sessions: SessionStore,
    exports_dir: PathBuf,
    metrics: Arc<Metrics>,
    store_paths: StorePaths,
}

pub async fn run(services: &Services, loaded: Loaded) -> anyhow::Result<()> {
    let settings = &services.settings;
    let metrics = services
        .metrics
        .clone()
        .context("the TUI needs the metrics registry")?;
    metrics.personas.set(loaded.personas.len() as i64);
    metrics.set_store_problem(store_problem(&loaded));
    let backend = services.backend.clone();
    let metrics_failure = services.start_metrics_server().await.err();
    let mut app = App::new(
        loaded.personas,
        backend.as_ref().map(|b| b.info()),
        settings.rounds,
        settings.max_tokens_per_turn,
    );
    app.max_tokens_total = settings.max_tokens_total;
    let places = Places {
        model_url: settings.model_url.clone(),
        sessions: SessionStore::new(&settings.sessions_dir),
        exports_dir: settings.exports_dir.clone(),
        metrics,
        store_paths: loaded.store.paths.clone(),
    };
    if let Some(path) = settings.backend.missing_local_model() {
        app.offer_model(path.to_path_buf());
    }
    // The metrics problem first: the notice line is one line wide.
    let mut notices: Vec<String> = metrics_failure.iter().cloned().collect();
    notices.extend(loaded.notices.iter().cloned());
    if !notices.is_empty() {
        let level = if loaded.store.writes_blocked() || metrics_failure.is_some() {
            NoticeLevel::Error
        } else {
            NoticeLevel::Info
        };
        app.set_notice(level, notices.join(" · "));
    }
    let (save_tx, mut save_rx) = mpsc::unbounded_channel();
    // Persona edits hand snapshots to this; it saves off the UI thread.
    let autosaver = Autosaver::spawn(loaded.store, move |notice| {
        let _ = save_tx.send(notice);
    });
    let mut guard = TerminalGuard::enter(settings.mouse)?;
    let result = event_loop(
        &mut guard.terminal,
        &mut app,
        backend,
        &places,
        &autosaver,
        &mut save_rx,
    )
    .await;
    drop(guard);
    autosaver.shutdown();
    result
}

async fn next_sim_event(debate: &mut Option<RunningDebate>) -> Option<SimEvent> {
    match debate {
        Some(d) => d.events.recv().await,
        None => std::future::pending().await,
    }
}

async fn event_loop(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    app: &mut App,
    backend: Option<Arc<dyn ChatBackend>>,
    places: &Places,
    autosaver: &Autosaver,
    save_rx: &mut mpsc::UnboundedReceiver<crate::persona::autosave::SaveNotice>,
) -> anyhow::Result<()> {
    let mut synth_task: Option<JoinHandle<()>> = None;
    let mut events = EventStream::new();
    let mut debate: Option<RunningDebate> = None;
    let (loaded_tx, mut loaded_rx) = mpsc::unbounded_channel::<JobDone>();
    let (fetch_tx, mut fetch_rx) = mpsc::unbounded_channel::<FetchMsg>();
    let mut fetch_task: Option<JoinHandle<()>> = None;
    let mut last_frame = Instant::now() - FRAME_INTERVAL;
    let mut tick = tokio::time::interval(RUNNING_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;

    loop {
        if app.should_quit {
            break;
        }
        if app.dirty && last_frame.elapsed() >= FRAME_INTERVAL {
            draw(terminal, app)?;
            last_frame = Instant::now();
            app.dirty = false;
        }
        let frame_due = last_frame + FRAME_INTERVAL;
        let mut effect = None;
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => {
                    if let Some(action) = keymap::map_event(app, event) {
                        effect = app.update(action);
                    }
                }
                Some(Err(e)) => return Err(e).context("reading terminal input failed"),
                None => break,
            },
            event = next_sim_event(&mut debate) => match event {
                Some(event) => {
                    let is_debate = debate.as_ref().is_some_and(|d| d.is_debate);
                    count_debate_end(&places.metrics, is_debate, &event);
                    app.on_sim_event(event);
                    // Drain what has already arrived: one frame per batch.
                    if let Some(d) = &mut debate {
                        for _ in 0..EVENT_BATCH {
                            match d.events.try_recv() {
                                Ok(event) => {
                                    count_debate_end(&places.metrics, is_debate, &event);
                                    app.on_sim_event(event)
                                }
                                Err(_) => break,
                            }
                        }
                    }
                }
                None => debate = None,
            },
            Some(notice) = save_rx.recv() => {
                places.metrics.set_store_problem(match &notice {
                    SaveNotice::Failed(e) => Some(e.clone()),
                    SaveNotice::Blocked => Some(BLOCKED.into()),
                    SaveNotice::Saved { .. } => None,
                });
                app.on_save_notice(notice);
            }
            Some(loaded) = loaded_rx.recv() => app.on_loaded(loaded),
            Some(msg) = fetch_rx.recv() => match msg {
                FetchMsg::Progress(p) => app.on_fetch_progress(p),
                FetchMsg::Done(result) => {
                    fetch_task = None;
                    app.on_fetch_done(result);
                }
            },
            _ = tokio::time::sleep_until(frame_due), if app.dirty => {}
            _ = tick.tick(), if app.is_running() => app.dirty = true,
            _ = hangup.recv() => app.should_quit = true,
            _ = terminate.recv() => app.should_quit = true,
        }
        if app.created > 0 {
            places.metrics.personas_created.inc_by(app.created as u64);
            app.created = 0;
        }
        match effect {
            Some(Effect::StartDebate(config)) => {
                if let Some(backend) = &backend {
                    let session = Session::new(&config, backend.info());
                    app.begin_session(session.clone());
                    let store = Some(places.sessions.clone());
                    places.metrics.debates_started.inc();
                    let mut run = spawn_run(|tx, cancel| {
                        run_session(
                            backend.clone(),
                            session,
                            ReportPolicy::Auto,
                            store,
                            cancel,
                            tx,
                        )
                    });
                    run.is_debate = true;
                    debate = Some(run);
                }
            }
            Some(Effect::WriteReport(session)) => {
                if let Some(backend) = &backend {
                    let store = Some(places.sessions.clone());
                    debate = Some(spawn_run(|tx, cancel| {
                        run_report(backend.clone(), *session, store, cancel, tx)
                    }));
                }
            }
            Some(Effect::FollowUp {
                session,
                question,
                persona_ids,
            }) => {
                if let Some(backend) = &backend {
                    let store = Some(places.sessions.clone());
                    debate = Some(spawn_run(|tx, cancel| {
                        run_followup(
                            backend.clone(),
                            *session,
                            question,
                            persona_ids,
                            store,
                            cancel,
                            tx,
                        )
                    }));
                }
            }
            Some(Effect::LoadHistory) => {
                let store = places.sessions.clone();
                background(&loaded_tx, move || {
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
            Some(Effect::DeleteSession(id)) => {
                let store = places.sessions.clone();
                background(&loaded_tx, move || {
                    JobDone::Deleted(store.delete(&id).map(|_| id).map_err(|e| e.to_string()))
                });
            }
            Some(Effect::Export(session, format)) => {
                let dir = places.exports_dir.clone();
                background(&loaded_tx, move || {
                    JobDone::Exported(
                        export_to_dir(&session, &dir, format).map_err(|e| e.to_string()),
                    )
                });
            }
            Some(Effect::FetchModel(path)) => {
                let tx = fetch_tx.clone();
                let plan = FetchPlan::default_model(path, &places.model_url);
                fetch_task = Some(tokio::spawn(async move {
                    let progress_tx = tx.clone();
                    let result = fetch(&plan, move |p| {
                        let _ = progress_tx.send(FetchMsg::Progress(p));
                    })
                    .await
                    .map_err(|e| e.to_string());
                    let _ = tx.send(FetchMsg::Done(result));
                }));
            }
            Some(Effect::CancelFetch) => {
                if let Some(task) = fetch_task.take() {
                    task.abort();
                }
            }
            Some(Effect::SavePanel(panel)) => {
                places.metrics.personas.set(panel.len() as i64);
                autosaver.save(panel);
            }
            Some(Effect::Synthesize {
                brief,
                count,
                panel,
            }) => {
                if let Some(backend) = &backend {
                    let backend = backend.clone();
                    let tx = loaded_tx.clone();
                    synth_task = Some(tokio::spawn(async move {
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
                        let result =
                            synthesize_batch(backend, brief, count, panel, events_tx).await;
                        let _ = progress.await;
                        let _ = tx.send(JobDone::BatchDone(result));
                    }));
                }
            }
            Some(Effect::CancelSynthesis) => {
                if let Some(task) = synth_task.take() {
                    task.abort();
                }
            }
            Some(Effect::Backup) => {
                let paths = places.store_paths.clone();
                background(&loaded_tx, move || {
                    JobDone::BackedUp(backup_now(&paths).map_err(|e| e.to_string()))
                });
            }
            Some(Effect::CancelDebate) => {
                // The runner records the cancel in the session and closes
                // its channel; the loop keeps draining until then.
                if let Some(d) = &debate {
                    d.cancel.cancel();
                    tracing::info!(target: "debate", "cancelled by the user");
                }
            }
            None => {}
        }
    }
    if let Some(d) = debate.take() {
        d.cancel.cancel();
        if tokio::time::timeout(SAVE_ON_QUIT, d.task).await.is_err() {
            tracing::warn!(target: "session", "quit before the session was saved");
        }
    }
    if let Some(task) = fetch_task.take() {
        task.abort();
    }
    if let Some(task) = synth_task.take() {
        task.abort();
    }
    Ok(())
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
    }
}

const BLOCKED: &str = "the persona files were corrupt at start, so saving is blocked";

/// Why the persona store cannot be written, if it cannot.
fn store_problem(loaded: &Loaded) -> Option<String> {
    if loaded.store.writes_blocked() {
        return Some(BLOCKED.into());
    }
    let dir = loaded.store.paths.main.parent()?;
    let probe = dir.join(format!(".persona-sim-probe-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            None
        }
        Err(e) => Some(format!("{}: {e}", dir.display())),
    }
}

fn count_debate_end(metrics: &Metrics, is_debate: bool, event: &SimEvent) {
    if let (true, SimEvent::Done { outcome }) = (is_debate, event) {
        metrics.debate_finished(*outcome);
    }
}

/// Disk work off the UI thread; the answer comes back as a `JobDone`.
fn background(tx: &mpsc::UnboundedSender<JobDone>, job: impl FnOnce() -> JobDone + Send + 'static) {
    let tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        let _ = tx.send(job());
    });
}

fn draw(terminal: &mut Terminal<CrosstermBackend<Stdout>>, app: &mut App) -> anyhow::Result<()> {
    // Synchronized updates stop terminals from showing half-drawn frames.
    execute!(terminal.backend_mut(), BeginSynchronizedUpdate)?;
    let result = terminal.draw(|frame| ui::draw(frame, app)).map(|_| ());
    execute!(terminal.backend_mut(), EndSynchronizedUpdate)?;
    result.context("drawing the screen failed")?;
    Ok(())
}
