//! The layers hold: the core (`persona`, `llm`, `sim`, `db`) never reaches a face,
//! the configuration or a terminal/CLI/HTTP crate; faces never reach each
//! other; services are built only in the composition root. A grep over the
//! sources, so it runs in milliseconds and names the file and line.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Code lines of every file under `src/<dir>` (comments dropped).
fn code_lines(dir: &str) -> Vec<(String, usize, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let base = root.join(dir);
    if base.is_dir() {
        rust_files(&base, &mut files);
    } else {
        files.push(base);
    }
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("").to_string();
            if !code.trim().is_empty() {
                lines.push((name.clone(), n + 1, code));
            }
        }
    }
    lines
}

fn violations(dirs: &[&str], forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for dir in dirs {
        for (file, n, code) in code_lines(dir) {
            for word in forbidden {
                if code.contains(word) {
                    found.push(format!("src/{file}:{n}: uses `{word}`: {}", code.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn the_core_uses_no_face_no_config_and_no_ui_or_cli_crate() {
    let found = violations(
        &["persona", "llm", "sim", "db"],
        &[
            "crate::tui",
            "crate::cli",
            "crate::serve",
            "crate::config",
            "crate::services",
            "ratatui",
            "crossterm",
            "clap",
            "axum",
        ],
    );
    assert!(
        found.is_empty(),
        "core reaches outward:\n{}",
        found.join("\n")
    );
}

#[test]
fn faces_do_not_use_each_other() {
    let found = violations(&["tui"], &["crate::cli", "crate::serve"]);
    let found_cli = violations(
        &["cli"],
        &["crate::tui", "crate::serve", "ratatui", "crossterm"],
    );
    let found_serve = violations(
        &["serve"],
        &["crate::tui", "crate::cli", "ratatui", "crossterm", "clap"],
    );
    let all: Vec<String> = found
        .into_iter()
        .chain(found_cli)
        .chain(found_serve)
        .collect();
    assert!(all.is_empty(), "a face uses another:\n{}", all.join("\n"));
}

#[test]
fn observability_knows_no_face() {
    let found = violations(
        &["observe"],
        &["crate::tui", "crate::cli", "ratatui", "clap"],
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn services_are_built_only_in_the_composition_root() {
    // Metrics and the backend are built once (services.rs) and handed down.
    let mut found = Vec::new();
    for dir in ["tui", "cli", "serve", "persona", "llm", "sim", "main.rs"] {
        for (file, n, code) in code_lines(dir) {
            for word in ["Metrics::new(", "Instrumented::wrap(", ".backend.build("] {
                if code.contains(word) {
                    found.push(format!("src/{file}:{n}: {}", code.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "built outside services.rs:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_itself_finds_a_violation() {
    // Guards against a scan that silently reads nothing.
    assert!(!code_lines("tui").is_empty());
    assert!(!violations(&["tui"], &["ratatui"]).is_empty());
}
