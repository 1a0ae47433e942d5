//! The TUI face: the event loop. The terminal itself is in [`terminal`],
//! state changes in [`app`] (`App::update`, plain and testable), what they
//! ask the world to do in [`effects`], keys in [`keymap`], dialogs in
//! [`views`] and the main screens' panes in [`panes`].

pub mod action;
pub mod app;
pub mod clipboard;
pub mod debate_run;
pub mod effects;
pub mod keymap;
pub mod markdown;
pub mod panes;
pub mod persona_list;
pub mod report_screen;
pub mod terminal;
pub mod theme;
pub mod ui;
pub mod views;

use crate::sim::devil::DevilsAdvocate;
use crate::sim::live::{Publication, next_question};
use std::time::Duration;

use anyhow::Context;
use crossterm::event::EventStream;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::persona::store::{self, Loaded};
use crate::persona::watch::{POLL_EVERY, PanelWatcher};
use crate::persona::writer::{PanelWriter, WriteFailure, Written};
use crate::services::Services;
use crate::sim::session::SessionStore;

use action::PanelMsg;
use app::{App, NoticeLevel};
use effects::{Effects, FetchMsg, Places};
use terminal::{Ending, QuitSignals, TerminalGuard};

/// At most ~60 frames a second.
const FRAME_INTERVAL: Duration = Duration::from_millis(16);

/// Runs the TUI until it ends; how it ended gives the exit code.
pub async fn run(
    services: &Services,
    loaded: Loaded,
    live: Option<Publication>,
) -> anyhow::Result<Ending> {
    let settings = &services.settings;
    // Before anything styles itself (the editor's border and cursor).
    let theme = theme::Theme::from_settings(
        settings.theme.as_deref(),
        std::env::var("NO_COLOR").ok().as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    theme::install(theme);
    let metrics = services
        .metrics
        .clone()
        .context("the TUI needs the metrics registry")?;
    metrics.personas.set(loaded.personas.len() as i64);
    metrics.set_store_problem(store::write_problem(&loaded));
    let metrics_failure = services.start_metrics_server().await.err();
    let mut app = App::new(
        loaded.personas,
        services.backend.as_ref().map(|b| b.info()),
        settings.rounds,
        settings.max_tokens_per_turn,
    );
    app.set_max_tokens_total(settings.max_tokens_total);
    // The feature being written survives a restart.
    let draft = settings.data_dir.join(DRAFT_FILE);
    if let Ok(text) = std::fs::read_to_string(&draft)
        && !text.trim().is_empty()
    {
        app.set_feature_text(text.trim_end());
    }
    app.set_stage_mode(settings.stage);
    if let Some(path) = settings.backend.missing_local_model() {
        app.offer_model(path.to_path_buf());
    }
    // The metrics problem first: the notice line is one line wide.
    let mut notices: Vec<String> = metrics_failure.iter().cloned().collect();
    notices.extend(loaded.notices.iter().cloned());
    if !notices.is_empty() {
        let level = if loaded.writes_blocked || metrics_failure.is_some() {
            NoticeLevel::Error
        } else {
            NoticeLevel::Info
        };
        app.set_notice(level, notices.join(" · "));
    }
    let places = Places {
        model_url: settings.model_url.clone(),
        sessions: SessionStore::new(&settings.sessions_dir),
        exports_dir: settings.exports_dir.clone(),
        store_paths: loaded.paths.clone(),
    };
    // Persona changes are applied to the file off the UI thread, in order;
    // changes by other processes come back through the watcher.
    let (panel_tx, mut panel_rx) = mpsc::unbounded_channel();
    let written_tx = panel_tx.clone();
    let writer = PanelWriter::spawn(loaded.paths.clone(), move |w: Written| {
        let _ = written_tx.send(PanelMsg::Written(Box::new(w)));
    });
    let watcher = PanelWatcher::spawn(loaded.paths.main.clone(), POLL_EVERY, move |panel| {
        let _ = panel_tx.send(PanelMsg::Reloaded(panel));
    });
    let (mut effects, mut jobs_rx, mut fetch_rx) =
        Effects::new(services.backend.clone(), metrics.clone(), places, writer);
    effects.watch_herding(settings.herding(DevilsAdvocate::Off));
    // Spectators see every event the screen sees; the audience's questions
    // queue for the moderator.
    let mut questions = None;
    if let Some(live) = live {
        effects.publish_to(live.feed);
        questions = live.questions;
        let asks = if questions.is_some() {
            " · audience questions on (Ctrl-A)"
        } else {
            ""
        };
        app.set_notice(NoticeLevel::Info, format!("Live: {}{asks}", live.url));
    }
    app.set_clipboard_env(clipboard::ClipboardEnv::from_env());
    let mut terminal = TerminalGuard::enter(settings.mouse)?;
    let mut signals = QuitSignals::new()?;
    let mut events = EventStream::new();
    let mut last_frame = Instant::now() - FRAME_INTERVAL;
    let ending: Ending = async {
        while !app.should_quit() {
            let now = Instant::now();
            app.set_now(now.into_std());
            if app.dirty() && now >= last_frame + FRAME_INTERVAL {
                if let Err(e) = terminal.draw(&mut app) {
                    return Ending::TerminalLost(e);
                }
                app.take_dirty();
                last_frame = now;
                // A copy goes out after the frame that says so.
                if let Some(bytes) = app.take_clipboard()
                    && let Err(e) = terminal.write_raw(&bytes)
                {
                    return Ending::TerminalLost(e);
                }
            }
            // The screen redraws when something changed (at most every
            // FRAME_INTERVAL) or when a view asked for a time (a counter);
            // an idle screen costs nothing.
            let frame_due = last_frame + FRAME_INTERVAL;
            let deadline = app.redraw_deadline().map(Instant::from_std);
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(event)) => {
                        if let Some(action) = keymap::map_event(&app, event)
                            && let Some(effect) = app.update(action)
                        {
                            effects.apply(effect, &mut app);
                        }
                    }
                    Some(Err(e)) => return Ending::TerminalLost(e),
                    None => return Ending::TerminalLost(std::io::ErrorKind::UnexpectedEof.into()),
                },
                event = effects.next_sim_event() => effects.on_sim_event(event, &mut app),
                Some(msg) = panel_rx.recv() => {
                    if let PanelMsg::Written(w) = &msg {
                        metrics.set_store_problem(match &w.result {
                            Err(WriteFailure::Store(e)) => Some(e.clone()),
                            _ => None,
                        });
                    }
                    if app.on_panel_msg(msg) {
                        watcher.poke();
                    }
                    metrics.personas.set(app.personas().len() as i64);
                }
                Some(job) = jobs_rx.recv() => app.on_loaded(job),
                Some(question) = next_question(&mut questions) => app.on_audience_question(question),
                Some(msg) = fetch_rx.recv() => match msg {
                    FetchMsg::Progress(p) => app.on_fetch_progress(p),
                    FetchMsg::Done(result) => {
                        effects.fetch_finished();
                        app.on_fetch_done(result);
                    }
                },
                _ = tokio::time::sleep_until(frame_due), if app.dirty() => {}
                _ = sleep_until_some(deadline), if deadline.is_some() => app.mark_dirty(),
                signal = signals.recv() => return Ending::Signal(signal),
            }
            let created = app.take_created();
            if created > 0 {
                metrics.personas_created.inc_by(created as u64);
            }
        }
        Ending::Quit
    }
    .await;
    if let Ending::TerminalLost(_) = ending {
        // Nothing more is written to it: restoring it cannot fail or hang.
        terminal::mark_lost();
    }
    tracing::info!(target: "app", "ending: {ending}; saving and exiting");
    save_draft(&draft, &app.feature_text());
    drop(terminal);
    drop(watcher);
    effects.shutdown().await;
    tracing::info!(target: "app", "exit code {}: {ending}", ending.exit_code());
    Ok(ending)
}

/// The feature editor's text at exit, in the data folder.
const DRAFT_FILE: &str = "draft.txt";

/// Keeps the editor's text for the next start (an empty editor leaves no
/// file). A failure is logged: it must not stop the exit.
fn save_draft(path: &std::path::Path, text: &str) {
    let result = if text.trim().is_empty() {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
            _ => Ok(()),
        }
    } else {
        crate::atomic_file::write(path, text).map_err(|e| e.to_string())
    };
    if let Err(error) = result {
        tracing::warn!(target: "app", path = %path.display(), %error, "the draft was not kept");
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
