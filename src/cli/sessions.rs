//! `sessions list|show|export|rm`: the saved debates.

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, bail};

use crate::cli::args::SessionsCommand;
use crate::sim::export::{export_text, write_export_as};
use crate::sim::session::{Session, SessionError, SessionStore, session_markdown, session_matches};

use super::write_table;

/// `sessions list|show|export|rm`.
pub fn run(command: &SessionsCommand, dir: &Path, out: &mut impl Write) -> anyhow::Result<()> {
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
                        format!(
                            "{}, {}",
                            crate::text::plural(s.personas.len(), "persona"),
                            crate::text::plural(done, "turn")
                        ),
                        crate::text::truncate(s.first_line(), 60),
                    ]
                })
                .collect();
            write_table(out, ["ID", "DATE", "STATUS", "PANEL", "FEATURE"], &rows)?;
        }
        SessionsCommand::Show { id } => {
            let session = find(&store, id)?;
            write!(out, "{}", session_markdown(&session))?;
        }
        SessionsCommand::Export {
            id,
            format,
            out: file,
        } => {
            let session = find(&store, id)?;
            match file {
                Some(file) => {
                    write_export_as(&session, file, *format)?;
                    eprintln!("wrote {}", file.display());
                }
                None => write!(out, "{}", export_text(&session, *format))?,
            }
        }
        SessionsCommand::Rm { id } => {
            remove(&store, id)?;
            eprintln!("deleted session {id}");
        }
        SessionsCommand::Rerun { .. } => {
            unreachable!("main runs `sessions rerun` (it needs the runtime and the services)")
        }
    }
    Ok(())
}

/// `sessions rm ID`: only a full id deletes (a prefix could name another
/// session than meant); anything else is one message saying what to type.
fn remove(store: &SessionStore, id: &str) -> anyhow::Result<()> {
    if !store.path(id).is_file() {
        let hint = match store.find(id) {
            Ok(session) => format!(
                "`sessions rm` takes the full id, for safety; the one starting so is `persona-sim sessions rm {}`",
                session.id
            ),
            Err(SessionError::Ambiguous(_, ids)) => {
                format!("`sessions rm` takes the full id, for safety; sessions starting so: {ids}")
            }
            Err(e @ SessionError::BadId(_)) => return Err(e.into()),
            Err(_) => {
                "`sessions rm` takes a session's full id (see `persona-sim sessions list`)".into()
            }
        };
        bail!("no session has the id {id:?}: {hint}");
    }
    store.delete(id).map_err(|e| match e {
        // Its message has the OS error already; its source would repeat it.
        SessionError::Delete { path, source } => {
            anyhow!("cannot delete {}: {source}", path.display())
        }
        e => e.into(),
    })
}

/// The session by id or prefix; when none matches, says where to look.
pub(crate) fn find(store: &SessionStore, id: &str) -> anyhow::Result<Session> {
    store.find(id).map_err(|e| match e {
        SessionError::NotFound(_) => anyhow!("{e} (see `persona-sim sessions list`)"),
        e => e.into(),
    })
}
