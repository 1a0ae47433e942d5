//! `personas generate`: personas written by the model from a brief, one
//! progress line each on stderr, saved when at least one was accepted
//! (Ctrl-C keeps those accepted so far).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::sync::mpsc;

use super::{change, load, table};
use crate::cli::EXIT_INTERRUPTED;
use crate::cli::args::GenerateArgs;
use crate::config::Settings;
use crate::llm::ChatBackend;
use crate::persona::Persona;
use crate::persona::rules::{self, IdChoice};
use crate::persona::store::StorePaths;
use crate::sim::synth::{self, SynthEvent};

pub(super) async fn generate(
    args: &GenerateArgs,
    paths: &StorePaths,
    settings: &Settings,
    backend: Option<Arc<dyn ChatBackend>>,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let loaded = load(paths)?;
    let brief = args.brief.trim();
    if brief.is_empty() {
        bail!(
            "the brief is empty: say who to create, e.g. --brief \"retired farmers in Kenya who distrust banking apps\""
        );
    }
    let backend = crate::cli::ready_backend(backend, settings)?;
    if !args.dry_run && loaded.writes_blocked {
        bail!(
            "nothing would be saved: {} could not be loaded safely (see the note above); fix or remove it first, or use --dry-run",
            paths.main.display()
        );
    }
    let count = args.count as usize;
    let info = backend.info();
    eprintln!(
        "generating {count} persona{} with {} ({})…",
        if count == 1 { "" } else { "s" },
        info.model,
        info.kind
    );
    let mut accepted: Vec<Persona> = Vec::new();
    let mut failed: Vec<(usize, String)> = Vec::new();
    let mut interrupted = false;
    let mut adapted = None;
    if count == 1 {
        tokio::select! {
            result = synth::synthesize_one(&*backend, brief, &loaded.personas) => {
                let event = match &result {
                    Ok(persona) => SynthEvent::Accepted { index: 0, persona: persona.clone() },
                    Err(reason) => SynthEvent::Failed { index: 0, reason: reason.clone() },
                };
                progress(&event, 1);
                match result {
                    Ok(persona) => accepted.push(persona),
                    Err(reason) => failed.push((0, reason)),
                }
            }
            _ = tokio::signal::ctrl_c() => interrupted = true,
        }
    } else {
        let (tx, mut rx) = mpsc::channel(64);
        let task = tokio::spawn(synth::synthesize_batch(
            backend,
            brief.to_string(),
            count,
            loaded.personas.clone(),
            tx,
        ));
        loop {
            tokio::select! {
                event = rx.recv() => {
                    let Some(event) = event else { break };
                    progress(&event, count);
                    match event {
                        SynthEvent::Accepted { persona, .. } => accepted.push(persona),
                        SynthEvent::Failed { index, reason } => failed.push((index, reason)),
                        SynthEvent::Retrying { .. } | SynthEvent::Slowed { .. } => {}
                    }
                }
                _ = tokio::signal::ctrl_c() => {
                    interrupted = true;
                    task.abort();
                    break;
                }
            }
        }
        if !interrupted {
            let result = task.await.context("the generation task failed")?;
            (accepted, failed, adapted) = (result.accepted, result.failed, result.adapted);
        }
    }
    failed.sort_by_key(|(index, _)| *index);
    let failures: Vec<String> = failed
        .iter()
        .map(|(index, reason)| format!("#{}: {}", index + 1, reason.trim_end_matches('.')))
        .collect();
    let mut summary = format!("{} of {count} generated", accepted.len());
    if let Some(adapted) = adapted {
        summary.push_str(&format!(" ({adapted})"));
    }
    if !failed.is_empty() {
        summary.push_str(&format!(
            "; {} failed: {}",
            failed.len(),
            failures.join("; ")
        ));
    }
    if accepted.is_empty() {
        if interrupted {
            eprintln!("interrupted: {summary}; nothing was saved");
            return Ok(ExitCode::from(EXIT_INTERRUPTED));
        }
        bail!("{summary}; nothing was saved");
    }
    accepted.sort_by_key(|p| p.id);
    table(&accepted, out)?;
    out.flush()?;
    if args.dry_run {
        eprintln!("{summary} (dry run: nothing was saved)");
    } else {
        // Added to the panel as it is now: a persona someone else added
        // meanwhile keeps its id, a taken id is renumbered.
        let saved = change(paths, |panel| {
            Ok(rules::merge(panel, accepted.clone())
                .into_iter()
                .filter(|c| *c != IdChoice::Kept)
                .count())
        })?;
        let renumbered = match saved.value {
            0 => String::new(),
            n => format!("; {n} renumbered, their ids were taken meanwhile"),
        };
        eprintln!(
            "{summary}; saved to {} (the panel now has {}){renumbered}",
            paths.main.display(),
            saved.panel.len()
        );
    }
    if interrupted {
        eprintln!("interrupted: the personas accepted so far are kept");
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    Ok(ExitCode::SUCCESS)
}

/// One progress line on stderr.
fn progress(event: &SynthEvent, count: usize) {
    eprintln!("{}", progress_line(event, count));
}

fn progress_line(event: &SynthEvent, count: usize) -> String {
    match event {
        SynthEvent::Accepted { index, persona } => format!(
            "[{}/{count}] accepted #{} {} ({}, {})",
            index + 1,
            persona.id,
            persona.name,
            persona.occupation,
            persona.location
        ),
        SynthEvent::Retrying {
            index,
            attempt,
            reason,
        } => format!(
            "[{}/{count}] try {attempt} of {} rejected, retrying: {reason}",
            index + 1,
            synth::MAX_ATTEMPTS
        ),
        SynthEvent::Failed { index, reason } => {
            format!("[{}/{count}] failed: {reason}", index + 1)
        }
        SynthEvent::Slowed { at_a_time, reason } => format!(
            "{reason}: now {at_a_time} request{} at a time",
            if *at_a_time == 1 { "" } else { "s" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::builtin_panel;

    #[test]
    fn progress_lines_say_which_and_what() {
        let persona = Persona {
            id: 15,
            ..builtin_panel().remove(0)
        };
        let line = progress_line(&SynthEvent::Accepted { index: 1, persona }, 3);
        assert_eq!(
            line,
            "[2/3] accepted #15 Maria Lopez (ICU nurse, Madrid, Spain)"
        );
        let line = progress_line(
            &SynthEvent::Retrying {
                index: 0,
                attempt: 1,
                reason: "no JSON".into(),
            },
            3,
        );
        assert_eq!(line, "[1/3] try 1 of 3 rejected, retrying: no JSON");
        let line = progress_line(
            &SynthEvent::Failed {
                index: 2,
                reason: "gave up".into(),
            },
            3,
        );
        assert_eq!(line, "[3/3] failed: gave up");
        let line = progress_line(
            &SynthEvent::Slowed {
                at_a_time: 1,
                reason: "the server answered HTTP 429".into(),
            },
            3,
        );
        assert_eq!(
            line,
            "the server answered HTTP 429: now 1 request at a time"
        );
    }
}
