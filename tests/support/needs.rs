//! What a test needs from the machine (a tool on PATH, the offline model).
//! Missing outside CI, the test prints "skipped: ..." and passes; in CI (the
//! `CI` variable is set, as `.ci/run` and CI services do) it fails, so a
//! broken CI setup cannot pass by skipping. Tests never install anything:
//! `.ci/run` does.

use std::path::PathBuf;

/// Whether this is a CI run.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// `Some(found)`, or `None` after printing why the test is skipped; in CI a
/// missing `what` fails the test instead.
pub fn or_skip<T>(found: Option<T>, what: &str, hint: &str) -> Option<T> {
    if found.is_some() {
        return found;
    }
    assert!(
        !in_ci(),
        "{what} is required in CI (CI is set) but is missing: {hint}"
    );
    eprintln!("skipped: {what} is missing ({hint})");
    None
}

/// `name` on PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The tool `name` from PATH (see [`or_skip`]); `hint` says how to get it.
pub fn tool(name: &str, hint: &str) -> Option<PathBuf> {
    or_skip(on_path(name), name, hint)
}

/// Whether tmux is there to drive the real binary (see [`or_skip`]).
pub fn tmux() -> bool {
    tool("tmux", "install tmux").is_some()
}

/// Where the offline model is looked for: `$PERSONA_SIM_MODEL`, else the
/// default data directory (where `persona-sim model fetch` puts it).
pub fn model_location() -> Option<PathBuf> {
    std::env::var_os("PERSONA_SIM_MODEL")
        .map(PathBuf::from)
        .or_else(|| {
            directories::ProjectDirs::from("", "", "persona-sim").map(|d| {
                d.data_dir()
                    .join("models")
                    .join(persona_sim::llm::fetch::DEFAULT_MODEL_FILE)
            })
        })
}

/// The installed offline model (see [`or_skip`]).
pub fn model() -> Option<PathBuf> {
    let location = model_location();
    let shown = location
        .as_ref()
        .map_or("<no data directory>".to_string(), |p| {
            p.display().to_string()
        });
    or_skip(
        location.filter(|p| p.exists()),
        &format!("the offline model at {shown}"),
        "run `persona-sim model fetch`; CI does",
    )
}
