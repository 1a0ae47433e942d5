//! The headless face: `simulate`, `sessions`, `model` and (in [`personas`])
//! `personas` commands.

pub mod args;
pub mod personas;

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::sync::mpsc;
use unicode_width::UnicodeWidthStr;

use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::cli::args::{Format, SessionsCommand, SimulateArgs};
use crate::config::Settings;
use crate::llm::ChatBackend;
use crate::persona::Persona;
use crate::services::HOW_TO_CONFIGURE;
use crate::sim::debate::{DebateConfig, Outcome, SimEvent};
use crate::sim::export::{export_text, write_export};
use crate::sim::report::report_markdown;
use crate::sim::session::{
    ReportPolicy, Session, SessionStore, run_session, session_markdown, session_matches,
};

/// Exit code when a debate was interrupted with Ctrl-C (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

fn read_feature(args: &SimulateArgs) -> anyhow::Result<String> {
    let text = match (&args.feature, &args.feature_file) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the feature from stdin")?;
            text
        }
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the feature file {}", path.display()))?,
        (None, None) => bail!("give the feature with --feature TEXT or --feature-file FILE"),
    };
    if text.trim().is_empty() {
        bail!("the feature text is empty");
    }
    Ok(text)
}

/// Picks personas by id, in the order given; no ids means the first three.
pub fn pick_personas(panel: &[Persona], ids: &[u32]) -> anyhow::Result<Vec<Persona>> {
    if ids.is_empty() {
        return Ok(panel.iter().take(3).cloned().collect());
    }
    let mut picked = Vec::with_capacity(ids.len());
    for id in ids {
        match panel.iter().find(|p| p.id == *id) {
            Some(p) if picked.iter().any(|q: &Persona| q.id == p.id) => {
                bail!("persona id {id} is listed twice")
            }
            Some(p) => picked.push(p.clone()),
            None => {
                let known: Vec<String> = panel.iter().map(|p| p.id.to_string()).collect();
                bail!(
                    "no persona with id {id} (known ids: {}; see `persona-sim personas list`)",
                    known.join(", ")
                )
            }
        }
    }
    Ok(picked)
}

/// The backend, or why it cannot run: none is configured, or the local
/// model is not installed.
pub(crate) fn ready_backend(
    backend: Option<Arc<dyn ChatBackend>>,
    settings: &Settings,
) -> anyhow::Result<Arc<dyn ChatBackend>> {
    let Some(backend) = backend else {
        bail!("no LLM backend is configured: {HOW_TO_CONFIGURE}");
    };
    if let Some(path) = settings.backend.missing_local_model() {
        bail!(
            "the local model is not installed at {}: run `persona-sim model fetch` (98 MB), or set OPENAI_API_KEY / OPENAI_BASE_URL",
            path.display()
        );
    }
    Ok(backend)
}

pub async fn simulate(
    args: &SimulateArgs,
    panel: &[Persona],
    backend: Option<Arc<dyn ChatBackend>>,
    settings: &Settings,
) -> anyhow::Result<ExitCode> {
    let feature = read_feature(args)?;
    let personas = pick_personas(panel, &args.ids)?;
    let backend = ready_backend(backend, settings)?;
    let config = DebateConfig {
        feature,
        personas: personas.clone(),
        rounds: settings.rounds,
        max_tokens_per_turn: settings.max_tokens_per_turn,
        max_tokens_total: settings.max_tokens_total,
    };
    let policy = if args.report {
        ReportPolicy::Auto
    } else {
        ReportPolicy::Never
    };
    let store = SessionStore::new(&settings.sessions_dir);
    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::channel(256);
    let session = Session::new(&config, backend.info());
    let runner = tokio::spawn(run_session(
        backend,
        session,
        policy,
        Some(store.clone()),
        cancel.clone(),
        tx,
    ));
    let mut out = io::stdout().lock();
    let mut outcome = Outcome::Failed;
    let mut report_failed = false;
    let mut interrupted = false;
    let mut pipe_closed = false;
    loop {
        let event = tokio::select! {
            event = rx.recv() => event,
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                cancel.cancel();
                continue;
            }
        };
        let Some(event) = event else { break };
        match &event {
            SimEvent::Done { outcome: o } => outcome = *o,
            SimEvent::Error { message, .. } => eprintln!("\nerror: {message}"),
            SimEvent::ReportStarted if args.format == Format::Text => {
                eprintln!("\nwriting the feedback report…")
            }
            SimEvent::ReportFailed { message } => {
                report_failed = true;
                eprintln!("the feedback report failed: {message}");
            }
            _ => {}
        }
        if pipe_closed {
            continue;
        }
        let written = match args.format {
            Format::Jsonl => writeln!(out, "{}", serde_json::to_string(&event)?),
            Format::Text => write_text(&mut out, &event, &personas),
        };
        // A closed pipe (e.g. `| head`) ends the run quietly; the session
        // is still saved as cancelled.
        if written.and_then(|_| out.flush()).is_err() {
            pipe_closed = true;
            cancel.cancel();
        }
    }
    let session = runner.await.context("the debate task failed")?;
    let path = store.path(&session.id);
    eprintln!("session {} saved: {}", session.id, path.display());
    if session.usage.total() > 0 {
        eprintln!("tokens: {}", session.usage_line());
    }
    if let Some(file) = &args.out {
        write_export(&session, file)?;
        eprintln!("wrote {}", file.display());
    }
    if interrupted {
        let _ = writeln!(out);
        eprintln!("interrupted: the debate was cancelled; what was said is above and saved");
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    if pipe_closed {
        return Ok(ExitCode::SUCCESS);
    }
    Ok(match outcome {
        Outcome::BudgetReached => {
            eprintln!(
                "stopped at the token budget (--max-tokens-total {})",
                settings.max_tokens_total.unwrap_or_default()
            );
            exit_for_report(report_failed)
        }
        Outcome::Completed => exit_for_report(report_failed),
        Outcome::Failed | Outcome::Cancelled => ExitCode::FAILURE,
    })
}

fn exit_for_report(report_failed: bool) -> ExitCode {
    if report_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `sessions list|show|export|rm`.
pub fn sessions(command: &SessionsCommand, dir: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let store = SessionStore::new(dir);
    match command {
        SessionsCommand::List { search } => {
            let (sessions, errors) = store.list();
            for e in &errors {
                eprintln!("note: skipped {e}");
            }
            let shown: Vec<&Session> = sessions
                .iter()
                .filter(|s| search.as_deref().is_none_or(|q| session_matches(s, q)))
                .collect();
            if shown.is_empty() {
                eprintln!("no sessions in {}", dir.display());
                return Ok(());
            }
            let rows: Vec<[String; 5]> = shown
                .iter()
                .map(|s| {
                    let done = s.turns.iter().filter(|t| t.complete).count();
                    [
                        s.id.clone(),
                        s.created_at
                            .get(..16)
                            .unwrap_or(&s.created_at)
                            .replace('T', " "),
                        s.status_label().to_string(),
                        format!("{} personas, {done} turns", s.personas.len()),
                        crate::text::truncate(s.first_line(), 60),
                    ]
                })
                .collect();
            write_table(out, ["ID", "DATE", "STATUS", "PANEL", "FEATURE"], &rows)?;
        }
        SessionsCommand::Show { id } => {
            let session = store.find(id)?;
            write!(out, "{}", session_markdown(&session))?;
        }
        SessionsCommand::Export {
            id,
            format,
            out: file,
        } => {
            let session = store.find(id)?;
            match file {
                Some(file) => {
                    crate::atomic_file::write(file, &export_text(&session, *format))?;
                    eprintln!("wrote {}", file.display());
                }
                None => write!(out, "{}", export_text(&session, *format))?,
            }
        }
        SessionsCommand::Rm { id } => {
            store.delete(id)?;
            eprintln!("deleted session {id}");
        }
    }
    Ok(())
}

fn write_text(out: &mut impl Write, event: &SimEvent, personas: &[Persona]) -> io::Result<()> {
    match event {
        SimEvent::TurnStarted {
            turn,
            round,
            persona_id,
            speaker,
            question,
        } => {
            if let Some(q) = question {
                return writeln!(out, "\n## {speaker} · follow-up: {q}");
            }
            let occupation = personas
                .iter()
                .find(|p| p.id == *persona_id)
                .map(|p| format!(" ({})", p.occupation))
                .unwrap_or_default();
            let gap = if *turn == 0 { "" } else { "\n" };
            writeln!(out, "{gap}## {speaker}{occupation} · round {round}")
        }
        SimEvent::Token { text, .. } => write!(out, "{text}"),
        SimEvent::TurnEnded { .. } => writeln!(out),
        SimEvent::ReportReady { report } => {
            write!(out, "\n## Feedback report\n\n{}", report_markdown(report))
        }
        _ => Ok(()),
    }
}

/// Columns padded to their widest cell; the last column is not padded.
fn write_table<const N: usize>(
    out: &mut impl Write,
    header: [&str; N],
    rows: &[[String; N]],
) -> io::Result<()> {
    let header = header.map(String::from);
    let mut widths = header.clone().map(|h| h.width());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.width());
        }
    }
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widths[i] - cell.width() + 2));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// `model fetch`: installs the default model, verified; a no-op when a
/// verified copy is already there.
pub async fn model_fetch(
    dest: &std::path::Path,
    url: &str,
    force: bool,
) -> anyhow::Result<ExitCode> {
    use crate::llm::fetch::{DEFAULT_MODEL_SHA256, FetchPlan, FetchProgress, fetch, sha256_file};
    use std::io::IsTerminal;
    if dest.exists() && !force {
        let path = dest.to_path_buf();
        let digest = tokio::task::spawn_blocking(move || sha256_file(&path)).await??;
        if digest == DEFAULT_MODEL_SHA256 {
            println!("model already installed and verified: {}", dest.display());
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "{} does not match the default model's checksum; downloading it again",
            dest.display()
        );
    }
    let live = io::stderr().is_terminal();
    let progress = move |p: FetchProgress| match p {
        FetchProgress::Source(source) => eprintln!("fetching from {source}"),
        FetchProgress::Bytes { done, total } if live => {
            let total = total
                .map(|t| format!(" / {:.1} MB", t as f64 / 1e6))
                .unwrap_or_default();
            eprint!("\r  {:.1} MB{total}   ", done as f64 / 1e6);
        }
        FetchProgress::Bytes { .. } => {}
        FetchProgress::Verifying => {
            if live {
                eprintln!();
            }
            eprintln!("verifying SHA-256");
        }
    };
    let path = fetch(&FetchPlan::default_model(dest.to_path_buf(), url), progress).await?;
    println!("installed {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// `model status`: which backend is live, and where the model is.
pub fn model_status(
    backend: &crate::llm::BackendChoice,
    model_path: &std::path::Path,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    use crate::llm::fetch::{DEFAULT_MODEL_SHA256, sha256_file};
    use crate::llm::{BackendChoice, LOCAL_AVAILABLE};
    match backend {
        BackendChoice::OpenAi(s) => {
            writeln!(out, "backend: openai · {} at {}", s.model, s.base_url)?
        }
        BackendChoice::Local { .. } => writeln!(out, "backend: local (embedded llama.cpp)")?,
        BackendChoice::None => writeln!(out, "backend: none: {HOW_TO_CONFIGURE}")?,
    }
    if !LOCAL_AVAILABLE {
        writeln!(
            out,
            "local model: not available in this build (built without the `local` feature)"
        )?;
        return Ok(());
    }
    let state = match std::fs::metadata(model_path) {
        Err(_) => "not installed: run `persona-sim model fetch`".to_string(),
        Ok(meta) => {
            let verdict = match sha256_file(model_path) {
                Ok(d) if d == DEFAULT_MODEL_SHA256 => {
                    "the default SmolLM2-135M-Instruct Q4_1, verified".to_string()
                }
                Ok(_) => "a custom model (not the default's checksum)".to_string(),
                Err(e) => format!("unreadable: {e}"),
            };
            format!("installed, {:.1} MB, {verdict}", meta.len() as f64 / 1e6)
        }
    };
    writeln!(out, "local model: {}", model_path.display())?;
    writeln!(out, "  {state}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::builtin_panel;

    #[test]
    fn picks_in_order_and_rejects_unknown_or_repeated_ids() {
        let panel = builtin_panel();
        let ids: Vec<u32> = pick_personas(&panel, &[5, 1, 3])
            .unwrap()
            .iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(ids, vec![5, 1, 3]);
        assert_eq!(pick_personas(&panel, &[]).unwrap().len(), 3);
        let err = pick_personas(&panel, &[99]).unwrap_err().to_string();
        assert!(err.contains("no persona with id 99"), "{err}");
        let err = pick_personas(&panel, &[2, 2]).unwrap_err().to_string();
        assert!(err.contains("twice"), "{err}");
    }
}
