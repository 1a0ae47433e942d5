//! Who may read what, on a server shared by several users: the real binary
//! makes sessions, exports, logs and its data folders private (0600 files
//! in 0700 folders) whatever the user's umask; a team panel keeps its mode
//! across rewrites, and its backup and lock file follow it; a symlinked
//! panel is written through; a FIFO where a file should be is an error at
//! once, never a hang.
#![cfg(unix)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::MockServer;
use support::binary::{BIN, text};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `persona-sim ARGS` under `umask`, in a clean environment; at most 60 s.
async fn run(data: &Path, umask: &str, base_url: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PERSONA_SIM_DATA_DIR", data)
        .stdin(Stdio::null());
    if let Some(url) = base_url {
        cmd.env("OPENAI_BASE_URL", url)
            .env("OPENAI_API_KEY", "sk-test");
    }
    support::binary::run(cmd).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_exports_logs_and_folders_are_private_under_a_loose_umask() {
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out_file = dir.path().join("exports").join("debate.md");
    let args = [
        "simulate",
        "--feature",
        "Dark mode",
        "--personas",
        "1,2",
        "--rounds",
        "1",
        "--out",
        out_file.to_str().unwrap(),
    ];
    let out = run(&data, "000", Some(&server.base_url), &args).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sessions: Vec<_> = std::fs::read_dir(data.join("sessions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(sessions.len(), 1);
    let id = sessions[0]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let exported = dir.path().join("exports").join("session.json");
    let args = ["sessions", "export", &id, "--format", "json", "--out"];
    let mut args = args.to_vec();
    args.push(exported.to_str().unwrap());
    let out = run(&data, "000", None, &args).await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    let log = std::fs::read_dir(data.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("app.log")
        })
        .expect("a log file");
    for (what, path, want) in [
        ("data folder", data.clone(), 0o700),
        ("sessions folder", data.join("sessions"), 0o700),
        ("session", sessions[0].clone(), 0o600),
        ("logs folder", data.join("logs"), 0o700),
        ("log", log, 0o600),
        ("exports folder", dir.path().join("exports"), 0o700),
        ("markdown export", out_file.clone(), 0o600),
        ("json export", exported.clone(), 0o600),
    ] {
        assert_eq!(
            mode(&path),
            want,
            "{what} {} is {:o}",
            path.display(),
            mode(&path)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_panel_keeps_its_mode_and_its_backup_and_lock_follow_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let panel = dir.path().join("team.json");
    // A new panel follows the user's umask (002: group-writable)…
    let out = run(
        &data,
        "002",
        None,
        &["--personas", panel.to_str().unwrap(), "personas", "list"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&panel), 0o664);
    // …and a panel made 0660 on purpose stays so across changes.
    std::fs::set_permissions(&panel, std::fs::Permissions::from_mode(0o660)).unwrap();
    let args = [
        "--personas",
        panel.to_str().unwrap(),
        "personas",
        "edit",
        "1",
        "--set",
        "occupation=Head nurse",
    ];
    let out = run(&data, "077", None, &args).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        std::fs::read_to_string(&panel)
            .unwrap()
            .contains("Head nurse")
    );
    assert_eq!(mode(&panel), 0o660);
    assert_eq!(
        mode(&dir.path().join("team_backup.json")),
        0o660,
        "the backup is the previous panel"
    );
    assert_eq!(
        mode(&dir.path().join("team.json.lock")),
        0o664,
        "made with the panel's mode then"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_panel_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let shared = dir.path().join("srv").join("team.json");
    std::fs::create_dir_all(shared.parent().unwrap()).unwrap();
    let out = run(
        &data,
        "022",
        None,
        &["--personas", shared.to_str().unwrap(), "personas", "list"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let link = dir.path().join("my-panel.json");
    std::os::unix::fs::symlink(&shared, &link).unwrap();
    let args = ["--personas", link.to_str().unwrap(), "personas", "rm", "1"];
    let out = run(&data, "022", None, &args).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        !std::fs::read_to_string(&shared)
            .unwrap()
            .contains("Maria Lopez")
    );
    // One lock for every link to the panel: beside its target.
    assert!(shared.with_file_name("team.json.lock").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_in_place_of_a_file_is_an_error_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let fifo = dir.path().join("team.json");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let started = std::time::Instant::now();
    let out = run(
        &data,
        "022",
        None,
        &["--personas", fifo.to_str().unwrap(), "personas", "list"],
    )
    .await;
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("team.json") && stderr.contains("FIFO"),
        "{stderr}"
    );
    // A FIFO among the sessions is skipped with a note, not read.
    std::fs::create_dir_all(data.join("sessions")).unwrap();
    let session_fifo = data.join("sessions").join("20260101-000000-abcd.json");
    assert!(
        Command::new("mkfifo")
            .arg(&session_fifo)
            .status()
            .unwrap()
            .success()
    );
    let out = run(&data, "022", None, &["sessions", "list"]).await;
    assert!(started.elapsed() < Duration::from_secs(30), "no hang");
    assert!(out.status.success(), "{}", text(&out.stderr));
}
