//! The feature text (or a follow-up question) written in the user's own
//! editor: `$EDITOR`, then `$VISUAL`, then nano or vi. The TUI leaves the
//! terminal to it and takes it back when the editor exits (see
//! `TerminalGuard::hand_over`).

use std::path::{Path, PathBuf};

/// The editor command: `$EDITOR`, then `$VISUAL` (either may carry
/// arguments, "code --wait"), then the first of nano and vi on `PATH`.
pub fn editor_command(
    var: impl Fn(&str) -> Option<String>,
    on_path: impl Fn(&str) -> bool,
) -> Option<String> {
    ["EDITOR", "VISUAL"]
        .into_iter()
        .filter_map(&var)
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
        .or_else(|| {
            ["nano", "vi"]
                .into_iter()
                .find(|e| on_path(e))
                .map(str::to_string)
        })
}

/// Whether `name` is an executable file in one of `PATH`'s folders.
pub fn on_path(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir: PathBuf| {
        std::fs::metadata(dir.join(name))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Runs `command` on a temporary file holding `text`; the file's text
/// afterwards (without the final line break editors add), or why not.
/// `Ok(None)`: the editor exited with an error, the text stays as it was.
pub async fn edit(command: &str, text: &str) -> Result<Option<String>, String> {
    let file = tempfile::Builder::new()
        .prefix("persona-sim-")
        .suffix(".md")
        .tempfile()
        .map_err(|e| format!("cannot create a file for the editor: {e}"))?;
    std::fs::write(file.path(), text)
        .map_err(|e| format!("cannot write {}: {e}", file.path().display()))?;
    let status = run(command, file.path()).await?;
    if !status.success() {
        return Ok(None);
    }
    let edited = std::fs::read_to_string(file.path())
        .map_err(|e| format!("cannot read {} back: {e}", file.path().display()))?;
    Ok(Some(edited.trim_end_matches(['\n', '\r']).to_string()))
}

/// Through `sh`, so an editor set with arguments works as in any shell.
async fn run(command: &str, path: &Path) -> Result<std::process::ExitStatus, String> {
    tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{command} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .await
        .map_err(|e| format!("cannot start the editor ({command}): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_then_visual_then_nano_or_vi() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let all = |_: &str| true;
        let none = |_: &str| false;
        assert_eq!(
            editor_command(env(&[("EDITOR", "hx"), ("VISUAL", "code --wait")]), all).as_deref(),
            Some("hx")
        );
        assert_eq!(
            editor_command(env(&[("EDITOR", "  "), ("VISUAL", "code --wait")]), all).as_deref(),
            Some("code --wait")
        );
        assert_eq!(editor_command(env(&[]), all).as_deref(), Some("nano"));
        assert_eq!(
            editor_command(env(&[]), |e: &str| e == "vi").as_deref(),
            Some("vi")
        );
        assert_eq!(editor_command(env(&[]), none), None);
    }

    #[tokio::test]
    async fn the_text_goes_through_the_editor_and_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake-editor");
        // Takes its flag, then appends a line, with the editor's own newline.
        std::fs::write(
            &script,
            "#!/bin/sh\nshift\nprintf 'and offline\\n' >> \"$1\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let command = format!("{} --flag", script.display());
        let edited = edit(&command, "Sync, ").await.unwrap();
        assert_eq!(edited.as_deref(), Some("Sync, and offline"));
        // An editor that fails leaves the text as it was.
        assert_eq!(edit("false", "kept").await, Ok(None));
        let missing = edit("/no/such/editor", "kept").await;
        assert_eq!(missing, Ok(None), "sh reports 127: a failed editor");
    }
}
