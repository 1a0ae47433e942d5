//! `sessions rerun ID`: a saved session run again from the response cache,
//! with no server, as a new session; it says whether the transcript came
//! out the same, turn for turn.

use std::io::Write;
use std::process::ExitCode;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::services::Services;
use crate::sim::debate::SimEvent;
use crate::sim::moderator::Chair;
use crate::sim::session::{ReportPolicy, Session, SessionStore, run_session};

use super::sessions::find;
use super::simulate::write_text;

/// The first turn where the two transcripts differ, if any.
fn first_difference(a: &Session, b: &Session) -> Option<usize> {
    let n = a.turns.len().max(b.turns.len());
    (0..n).find(|&i| {
        let text = |s: &Session| s.turns.get(i).map(|t| (t.persona_id, t.text.clone()));
        text(a) != text(b)
    })
}

pub async fn run(id: &str, services: &Services, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let store = SessionStore::new(&services.settings.sessions_dir);
    let original = find(&store, id)?;
    if !original.moderation.is_empty() {
        eprintln!(
            "note: session {} was moderated; a rerun has no moderator, so it will differ where the moderator acted",
            original.id
        );
    }
    let backend = services.replay_backend(&original)?;
    let config = original.debate_config();
    let policy = if original.report.is_some() {
        ReportPolicy::Auto
    } else {
        ReportPolicy::Never
    };
    let (tx, mut rx) = mpsc::channel(256);
    let session = Session::new(&config, backend.info());
    let runner = tokio::spawn(run_session(
        backend,
        session,
        policy,
        Some(store.clone().into()),
        CancellationToken::new(),
        tx,
        Chair::absent(),
    ));
    while let Some(event) = rx.recv().await {
        if let SimEvent::Error { message, .. } = &event {
            eprintln!("\nerror: {message}");
        }
        // A closed pipe ends the printing, not the rerun.
        let _ = write_text(out, &event, &config.personas).and_then(|_| out.flush());
    }
    let rerun = runner.await?;
    eprintln!(
        "session {} saved: {}",
        rerun.id,
        store.path(&rerun.id).display()
    );
    match first_difference(&original, &rerun) {
        None if rerun.error.is_none() => {
            eprintln!(
                "rerun of {}: the same transcript, turn for turn ({} turns)",
                original.id,
                rerun.turns.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        None => Ok(ExitCode::FAILURE),
        Some(turn) => {
            eprintln!(
                "rerun of {}: the transcripts differ from turn T{}",
                original.id,
                turn + 1
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
