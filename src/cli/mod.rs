//! The headless face: one file per command group (`simulate`, `sessions`,
//! `model`, `personas`), the clap types in [`args`], and here what they
//! share: exit codes, the backend check and the table writer.
//!
//! The core's errors state facts (a file, an id); the hints on what to type
//! next (`persona-sim …`) are added here, where the commands are known.

pub mod args;
pub mod completions;
pub mod config_cmd;
pub mod db;
pub mod eval;
pub mod keys;
pub mod model;
pub mod personas;
pub mod rerun;
pub mod sessions;
pub mod simulate;

use std::io::{self, Write};
use std::sync::Arc;

use anyhow::bail;
use unicode_width::UnicodeWidthStr;

use crate::config::Settings;
use crate::llm::ChatBackend;
use crate::services::HOW_TO_CONFIGURE;

/// Exit code when a debate was interrupted with Ctrl-C (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

/// Exit code for a value the user gave that cannot be used (a bad flag
/// value found after parsing, a bad config file): 2, as clap exits on a
/// flag it rejects.
pub const EXIT_USAGE: u8 = 2;

/// A value given on the command line that is wrong (an unknown persona id,
/// an empty feature): the binary exits [`EXIT_USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// [`EXIT_USAGE`] when the error is the user's input (a [`UsageError`] or
/// a [`crate::config::ConfigError`]) anywhere in its chain, else 1.
pub fn exit_code_for(error: &anyhow::Error) -> u8 {
    let usage = error
        .chain()
        .any(|e| e.is::<UsageError>() || e.is::<crate::config::ConfigError>());
    if usage { EXIT_USAGE } else { 1 }
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
            "the local model is not installed at {}: {} (98 MB), or set OPENAI_API_KEY / OPENAI_BASE_URL",
            path.display(),
            model::FETCH_HINT
        );
    }
    Ok(backend)
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
