//! The real `persona-sim` binary, run as a user would: a clean environment,
//! a temp data directory, and optionally a (mock) OpenAI-compatible server.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_persona-sim");

/// The binary the end-to-end tests drive: `$PERSONA_SIM_E2E_BIN` when set
/// (CI points it at the release build), else the one cargo built.
pub fn e2e_bin() -> PathBuf {
    std::env::var_os("PERSONA_SIM_E2E_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(BIN))
}

/// `persona-sim ARGS` with only PATH and the data dir set (plus the server
/// and a test key when `base_url` is given); stdin is not a terminal.
pub fn command(data_dir: &Path, base_url: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PERSONA_SIM_DATA_DIR", data_dir)
        .stdin(Stdio::null());
    if let Some(url) = base_url {
        cmd.env("OPENAI_BASE_URL", url)
            .env("OPENAI_API_KEY", "sk-cli-test");
    }
    cmd
}

/// Runs it to the end on a blocking thread, so an in-process mock server
/// keeps serving meanwhile.
pub async fn run(mut cmd: Command) -> Output {
    tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || cmd.output().unwrap()),
    )
    .await
    .expect("the binary finishes")
    .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
