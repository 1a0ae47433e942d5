//! `simulate`: one debate, streamed to stdout as text or JSON lines, saved
//! as a session, with an optional report and export.

use crate::sim::live::{Publication, next_question};
use crate::sim::moderator::{self, Chair};
use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::args::{Format, SimulateArgs};
use crate::config::Settings;
use crate::llm::ChatBackend;
use crate::persona::Persona;
use crate::sim::debate::{CUT_OFF_MARK, DebateConfig, Moderation, Outcome, SimEvent};
use crate::sim::devil::{DevilsAdvocate, herding_text};
use crate::sim::export::moderation_text;
use crate::sim::export::write_export;
use crate::sim::report::report_markdown;
use crate::sim::session::{ReportPolicy, Session, SessionStore, event_json, run_session};

use super::model::model_error_hint;
use super::{EXIT_INTERRUPTED, UsageError, ready_backend};

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
        return Err(UsageError(
            "the feature text is empty: describe the feature to debate with --feature TEXT or --feature-file FILE"
                .into(),
        )
        .into());
    }
    Ok(text)
}

/// Picks personas by id, in the order given; no ids means the first three.
/// A wrong id is the user's mistake ([`UsageError`]).
fn pick_personas(panel: &[Persona], ids: &[u32]) -> Result<Vec<Persona>, UsageError> {
    let bail = |text: String| Err(UsageError(text));
    if panel.is_empty() {
        return bail(
            "the panel has no personas: add some with `persona-sim personas add --json FILE`, \
             `persona-sim personas generate --brief TEXT` or `persona-sim personas import FILE`"
                .into(),
        );
    }
    if ids.is_empty() {
        return Ok(panel.iter().take(3).cloned().collect());
    }
    let mut picked = Vec::with_capacity(ids.len());
    for id in ids {
        match panel.iter().find(|p| p.id == *id) {
            Some(p) if picked.iter().any(|q: &Persona| q.id == p.id) => {
                return bail(format!("--personas: persona id {id} is listed twice"));
            }
            Some(p) => picked.push(p.clone()),
            None => {
                let known: Vec<String> = panel.iter().map(|p| p.id.to_string()).collect();
                return bail(format!(
                    "--personas: no persona with id {id} (known ids: {}; see `persona-sim personas list`)",
                    known.join(", ")
                ));
            }
        }
    }
    Ok(picked)
}

/// Runs `simulate`; the exit code says how the debate ended.
pub async fn run(
    args: &SimulateArgs,
    panel: &[Persona],
    backend: Option<Arc<dyn ChatBackend>>,
    settings: &Settings,
    live: Option<Publication>,
) -> anyhow::Result<ExitCode> {
    let feature = read_feature(args)?;
    let personas = pick_personas(panel, &args.ids)?;
    let moderated = args.format == Format::Jsonl && !feature_from_stdin(args);
    if let Some(live) = &live
        && live.questions.is_some()
        && !moderated
    {
        bail!(
            "audience questions need a moderator: use --format jsonl (questions are printed as \
             `audience_question` lines; accept one with a JSON `ask` command on stdin), and give \
             the feature with --feature or a file, not on stdin"
        );
    }
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
    // In JSON lines mode stdin moderates: one JSON command per line.
    let chair = if moderated {
        let (commands, chair) = moderator::channel();
        read_commands(commands, personas.clone());
        chair
    } else {
        Chair::absent()
    };
    // Nobody is at a keyboard to ask for one: on herding, the debate does.
    let chair = chair.with_herding(settings.herding(DevilsAdvocate::Auto));
    let (feed, mut questions) = match live {
        Some(live) => {
            eprintln!("live: {}", live.url);
            (Some(live.feed), live.questions)
        }
        None => (None, None),
    };
    let runner = tokio::spawn(run_session(
        backend,
        session,
        policy,
        Some(store.clone().into()),
        cancel.clone(),
        tx,
        chair,
    ));
    let mut out = io::stdout().lock();
    let mut outcome = Outcome::Failed;
    let mut report_failed = false;
    let mut interrupted = false;
    let mut pipe_closed = false;
    loop {
        let event = tokio::select! {
            event = rx.recv() => event,
            Some(question) = next_question(&mut questions) => {
                let line = serde_json::json!({
                    "event": "audience_question",
                    "id": question.id,
                    "text": question.text,
                });
                if !pipe_closed && writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                    pipe_closed = true;
                    cancel.cancel();
                }
                continue;
            }
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                cancel.cancel();
                continue;
            }
        };
        let Some(event) = event else { break };
        if let Some(feed) = &feed {
            feed.publish(&event);
        }
        match &event {
            SimEvent::Done { outcome: o } => outcome = *o,
            SimEvent::Error { message, .. } => match model_error_hint(message, &settings.backend) {
                Some(hint) => eprintln!("\nerror: {message} ({hint})"),
                None => eprintln!("\nerror: {message}"),
            },
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
            Format::Jsonl => writeln!(out, "{}", event_json(&event)),
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
    if let Some(e) = &session.save_error {
        // What was said is above (and in --out, if given); say plainly that
        // the session file is not there, and fail.
        eprintln!("error: the session was not saved: {e}");
    } else {
        eprintln!("session {} saved: {}", session.id, path.display());
    }
    if session.usage.total() > 0 {
        eprintln!("tokens: {}", session.usage_line());
    }
    if let Some(file) = &args.out {
        write_export(&session, file)?;
        eprintln!("wrote {}", file.display());
    }
    if session.save_error.is_some() && !interrupted {
        return Ok(ExitCode::FAILURE);
    }
    if interrupted {
        let _ = writeln!(out);
        let saved = if session.save_error.is_none() {
            " and saved"
        } else {
            ""
        };
        eprintln!("interrupted: the debate was cancelled; what was said is above{saved}");
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

fn feature_from_stdin(args: &SimulateArgs) -> bool {
    args.feature.is_none() && args.feature_file.as_deref() == Some(std::path::Path::new("-"))
}

/// Reads moderator commands from stdin, one JSON object a line (see
/// [`moderator::Command`]), on a thread of its own: a read blocked on a
/// terminal must not hold the process at exit. A line that is not a
/// command, or names a persona not in the debate, is reported on stderr
/// and changes nothing. At the end of input the debate goes on unmoderated.
fn read_commands(commands: moderator::Commands, personas: Vec<Persona>) {
    std::thread::spawn(move || {
        for (n, line) in io::stdin().lines().enumerate() {
            let Ok(line) = line else { break };
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let command = match serde_json::from_str::<moderator::Command>(line) {
                Ok(command) => command,
                Err(e) => {
                    eprintln!(
                        "moderator: line {} ignored: {e} (expected e.g. {{\"command\": \"pause\"}}; commands: pause, resume, skip, floor + persona_id, ask + text, add_round, end, devils_advocate [+ persona_id])",
                        n + 1
                    );
                    continue;
                }
            };
            if let Some(problem) = command.problem(&personas) {
                eprintln!("moderator: line {} ignored: {problem}", n + 1);
                continue;
            }
            if commands.send(command).is_err() {
                break;
            }
        }
    });
}

fn exit_for_report(report_failed: bool) -> ExitCode {
    if report_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

pub(crate) fn write_text(
    out: &mut impl Write,
    event: &SimEvent,
    personas: &[Persona],
) -> io::Result<()> {
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
        SimEvent::TurnEnded {
            finish_reason,
            stance,
            ..
        } => {
            let mark = if finish_reason.is_cut_off() {
                CUT_OFF_MARK
            } else {
                ""
            };
            let stance = stance.map_or("unknown".to_string(), |s| s.to_string());
            writeln!(out, "{mark}\n(stance: {stance})")
        }
        SimEvent::Moderated(Moderation::Asked { text, audience, .. }) => {
            let whose = if *audience {
                "audience question"
            } else {
                "question"
            };
            writeln!(out, "\n## Moderator · {whose}\n{text}")
        }
        SimEvent::Moderated(Moderation::DevilsAdvocate { against, auto, .. }) => {
            let against = against.map_or("the majority".to_string(), |p| format!("\"{p}\""));
            let why = if *auto { ", on herding" } else { "" };
            writeln!(out, "(devil's advocate: argues against {against}{why})")
        }
        SimEvent::Moderated(action) => writeln!(out, "\n[moderator {}]", moderation_text(action)),
        SimEvent::Herding {
            round,
            position,
            count,
            known,
            share,
        } => writeln!(
            out,
            "\n[{}]",
            herding_text(*round, *position, *count, *known, *share)
        ),

        SimEvent::ReportReady { report } => {
            write!(out, "\n## Feedback report\n\n{}", report_markdown(report))
        }
        _ => Ok(()),
    }
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
