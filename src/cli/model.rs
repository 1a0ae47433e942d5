//! `model fetch|status`: the embedded model's file.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use crate::llm::fetch::{DEFAULT_MODEL_SHA256, FetchPlan, FetchProgress, sha256_file};
use crate::llm::{BackendChoice, LOCAL_AVAILABLE};
use crate::services::HOW_TO_CONFIGURE;

/// What to type when the local model is missing.
pub(crate) const FETCH_HINT: &str = "run `persona-sim model fetch`";
/// What to type when the local model file is there but unusable.
const REFETCH_HINT: &str = "`persona-sim model fetch --force` reinstalls the default model";

/// `model fetch`: installs the default model, verified; a no-op when a
/// verified copy is already there.
pub async fn fetch(dest: &Path, url: &str, force: bool) -> anyhow::Result<ExitCode> {
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
    let path =
        crate::llm::fetch::fetch(&FetchPlan::default_model(dest.to_path_buf(), url), progress)
            .await?;
    println!("installed {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// `model status`: which backend is live, and where the model is.
pub fn status(
    backend: &BackendChoice,
    model_path: &Path,
    out: &mut impl Write,
) -> anyhow::Result<()> {
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
        Err(_) => format!("not installed: {FETCH_HINT}"),
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

/// What to do about a core error that names the local model's file (the
/// core states what is wrong with the file; the command to fix it is ours).
pub(crate) fn model_error_hint(message: &str, backend: &BackendChoice) -> Option<&'static str> {
    let BackendChoice::Local { model_path, .. } = backend else {
        return None;
    };
    if !message.contains(&model_path.display().to_string()) {
        return None;
    }
    Some(if model_path.exists() {
        REFETCH_HINT
    } else {
        FETCH_HINT
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_about_the_local_model_file_get_the_command_that_fixes_them() {
        let dir = tempfile::tempdir().unwrap();
        let local = |path: &Path| BackendChoice::Local {
            model_path: path.to_path_buf(),
            temperature: 0.7,
            seed: None,
        };
        let missing = dir.path().join("nope.gguf");
        let message = format!("model file not found: {}", missing.display());
        assert_eq!(
            model_error_hint(&message, &local(&missing)),
            Some(FETCH_HINT)
        );
        let corrupt = dir.path().join("bad.gguf");
        std::fs::write(&corrupt, "nope").unwrap();
        let message = format!("{} is not a GGUF model file", corrupt.display());
        assert_eq!(
            model_error_hint(&message, &local(&corrupt)),
            Some(REFETCH_HINT)
        );
        assert_eq!(model_error_hint("HTTP 500", &local(&corrupt)), None);
        assert_eq!(model_error_hint(&message, &BackendChoice::None), None);
    }
}
