//! `eval SESSION…`: each session's debate and report in numbers (see
//! `sim::eval`), as a table or as JSON.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::cli::args::EvalArgs;
use crate::sim::eval::{Evaluation, evaluate};
use crate::sim::session::{Session, SessionError, SessionStore};

use super::write_table;

/// A session by id or prefix in `dir`, or a session file by its path.
fn load(store: &SessionStore, what: &str) -> anyhow::Result<Session> {
    let path = Path::new(what);
    if what.ends_with(".json") && path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return serde_json::from_str(&text)
            .with_context(|| format!("{} is not a session file", path.display()));
    }
    store.find(what).map_err(|e| match e {
        SessionError::NotFound(_) => {
            anyhow::anyhow!("{e} (see `persona-sim sessions list`, or give a session file's path)")
        }
        e => e.into(),
    })
}

fn ratio(value: Option<f64>) -> String {
    value.map_or("–".into(), |v| format!("{v:.2}"))
}

fn row(e: &Evaluation) -> [String; 9] {
    let entropy: Vec<String> = e
        .stance_entropy
        .iter()
        .map(|h| h.map_or("–".into(), |h| format!("{h:.2}")))
        .collect();
    [
        e.session.clone(),
        e.turns.to_string(),
        format!("{:.2} (max {:.2})", e.copy_rate, e.copy_rate_max),
        format!("{:.2}", e.loop_rate),
        if entropy.is_empty() {
            "–".into()
        } else {
            entropy.join(" → ")
        },
        e.consensus_round
            .map_or("–".into(), |r| format!("round {r}")),
        ratio(e.minority_flipped),
        e.self_address.to_string(),
        format!(
            "{} ({} uncited)",
            ratio(e.citation_validity),
            e.uncited_items.map_or("–".into(), |n| n.to_string())
        ),
    ]
}

pub fn run(args: &EvalArgs, sessions_dir: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let store = SessionStore::new(sessions_dir);
    let evaluations = args
        .sessions
        .iter()
        .map(|s| load(&store, s).map(|session| evaluate(&session)))
        .collect::<anyhow::Result<Vec<Evaluation>>>()?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &evaluations)?;
        writeln!(out)?;
        return Ok(());
    }
    let rows: Vec<[String; 9]> = evaluations.iter().map(row).collect();
    write_table(
        out,
        [
            "SESSION",
            "TURNS",
            "COPY",
            "LOOP",
            "STANCE ENTROPY BY ROUND",
            "CONSENSUS",
            "FLIPPED",
            "SELF-ADDRESS",
            "CITATIONS VALID",
        ],
        &rows,
    )?;
    Ok(())
}
