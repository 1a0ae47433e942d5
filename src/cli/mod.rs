//! The headless face: `simulate` and `personas` commands.

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::sync::mpsc;
use unicode_width::UnicodeWidthStr;

use crate::config::{Format, SimulateArgs};
use crate::llm::{ChatBackend, HOW_TO_CONFIGURE};
use crate::persona::Persona;
use crate::sim::debate::{DebateConfig, Outcome, SimEvent, run_debate};

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

pub async fn simulate(
    args: &SimulateArgs,
    panel: &[Persona],
    backend: Option<Arc<dyn ChatBackend>>,
    rounds: u32,
    max_tokens_per_turn: u32,
) -> anyhow::Result<ExitCode> {
    let feature = read_feature(args)?;
    let personas = pick_personas(panel, &args.ids)?;
    let Some(backend) = backend else {
        bail!("no LLM backend is configured: {HOW_TO_CONFIGURE}");
    };
    let config = DebateConfig {
        feature,
        personas: personas.clone(),
        rounds,
        max_tokens_per_turn,
    };
    let (tx, mut rx) = mpsc::channel(256);
    let debate = tokio::spawn(run_debate(backend, config, tx));
    let mut out = io::stdout().lock();
    let mut outcome = Outcome::Failed;
    let mut total = (0u32, 0u32);
    let interrupted = loop {
        let event = tokio::select! {
            event = rx.recv() => event,
            _ = tokio::signal::ctrl_c() => break true,
        };
        let Some(event) = event else { break false };
        match &event {
            SimEvent::Usage {
                prompt_tokens,
                completion_tokens,
                ..
            } => {
                total.0 += prompt_tokens;
                total.1 += completion_tokens;
            }
            SimEvent::Done { outcome: o } => outcome = *o,
            SimEvent::Error { message, .. } => eprintln!("\nerror: {message}"),
            _ => {}
        }
        let written = match args.format {
            Format::Jsonl => writeln!(out, "{}", serde_json::to_string(&event)?),
            Format::Text => write_text(&mut out, &event, &personas),
        };
        // A closed pipe (e.g. `| head`) ends the run quietly.
        if written.and_then(|_| out.flush()).is_err() {
            debate.abort();
            return Ok(ExitCode::SUCCESS);
        }
    };
    if interrupted {
        debate.abort();
        let _ = writeln!(out);
        eprintln!("interrupted: the debate was cancelled; what was said is above");
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    if total != (0, 0) {
        eprintln!("tokens: {} in, {} out", total.0, total.1);
    }
    Ok(match outcome {
        Outcome::Completed => ExitCode::SUCCESS,
        Outcome::Failed => ExitCode::FAILURE,
    })
}

fn write_text(out: &mut impl Write, event: &SimEvent, personas: &[Persona]) -> io::Result<()> {
    match event {
        SimEvent::TurnStarted {
            turn,
            round,
            persona_id,
            speaker,
        } => {
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
        _ => Ok(()),
    }
}

/// `personas list`: an aligned table.
pub fn personas_list(panel: &[Persona], out: &mut impl Write) -> io::Result<()> {
    let rows: Vec<[String; 5]> = panel
        .iter()
        .map(|p| {
            [
                p.id.to_string(),
                p.name.clone(),
                p.occupation.clone(),
                p.location.clone(),
                p.tech_proficiency.to_string(),
            ]
        })
        .collect();
    let header = ["ID", "NAME", "OCCUPATION", "LOCATION", "TECH"].map(String::from);
    let mut widths = header.clone().map(|h| h.width());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.width());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[i] - cell.width() + 2));
            }
        }
        writeln!(out, "{line}")?;
    }
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

    #[test]
    fn list_is_an_aligned_table() {
        let mut out = Vec::new();
        personas_list(&builtin_panel()[..2], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID  NAME"));
        let col = lines[0].find("OCCUPATION").unwrap();
        assert_eq!(&lines[1][col..col + 3], "ICU");
    }
}
