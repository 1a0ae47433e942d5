//! One panel file shared by several processes, as a team on one server
//! shares it: headless add/edit/rm loops and a TUI in tmux driven by keys,
//! all at once. Every acknowledged change must be in the file at the end,
//! the file valid, ids unique, no process hung; a process killed while it
//! holds the panel lock blocks no one; a TUI sees another process's add
//! within a second. Uses $PERSONA_SIM_E2E_BIN when set (CI: the release
//! build).

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use persona_sim::persona::{Persona, parse_panel};
use support::tmux::Tmux;

/// Changes each process makes.
const CHANGES: usize = 100;
/// Longest any one command may take: more is a hang.
const COMMAND_LIMIT: Duration = Duration::from_secs(20);

fn bin() -> PathBuf {
    support::binary::e2e_bin()
}

/// `persona-sim --personas PANEL ARGS` with `stdin`, in a clean
/// environment; fails the test if it takes longer than [`COMMAND_LIMIT`].
fn persona_sim(data: &Path, panel: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(bin())
        .arg("--personas")
        .arg(panel)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PERSONA_SIM_DATA_DIR", data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > COMMAND_LIMIT {
            let _ = child.kill();
            panic!(
                "`persona-sim {}` hung for {COMMAND_LIMIT:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn record(name: &str) -> String {
    format!(
        r#"{{"name":"{name}","occupation":"Tester","location":"Lab","tech_proficiency":"Medium","behavioral_traits":[]}}"#
    )
}

/// Adds a persona named `name`; its id when acknowledged (exit 0).
fn add(data: &Path, panel: &Path, name: &str) -> Option<u32> {
    let out = persona_sim(
        data,
        panel,
        &["personas", "add", "--json", "-"],
        &record(name),
    );
    if !out.status.success() {
        eprintln!(
            "add {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    // "added #17 A-003"
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.split('#').nth(1)?.split(' ').next()?.parse().ok()
}

fn read_panel(panel: &Path) -> Vec<Persona> {
    parse_panel(&std::fs::read_to_string(panel).unwrap()).expect("the panel file is valid")
}

/// A persona-sim TUI on `panel` in tmux; no LLM is called.
fn start_tui(name: &str, data: &Path, panel: &Path) -> Tmux {
    let command = format!(
        "env -u OPENAI_API_KEY OPENAI_BASE_URL=http://127.0.0.1:9/v1 OPENAI_API_KEY=sk-none \
         PERSONA_SIM_DATA_DIR={data} TERM=xterm-256color {bin} --personas {panel} --no-metrics; \
         echo EXIT=$?; sleep 600",
        data = data.display(),
        panel = panel.display(),
        bin = bin().display(),
    );
    let tmux = Tmux::start(name, 120, 40, &command);
    tmux.wait_for("the persona list", Duration::from_secs(20), |s| {
        s.contains("Personas") && s.contains("Maria Lopez")
    });
    tmux
}

/// Adds `count` personas named T-000, T-001… in the TUI by keys (a copy of
/// the persona under the cursor, renamed); each acknowledged: the form
/// closed and the new persona is in the list. Their names.
fn tui_adds(tui: &Tmux, count: usize) -> Vec<String> {
    let mut acked = Vec::new();
    for i in 0..count {
        let name = format!("T-{i:03}");
        tui.keys(&["c"]);
        tui.wait_for("the copy form", Duration::from_secs(10), |s| {
            s.contains("(copy)")
        });
        tui.keys(&["C-u"]);
        tui.text(&name);
        tui.keys(&["Enter"]);
        tui.wait_for(
            &format!("{name} in the list"),
            Duration::from_secs(10),
            |s| s.contains(&name) && !s.contains("New persona"),
        );
        acked.push(name);
    }
    acked
}

/// Quits the TUI and waits for it to exit (pending changes written).
fn quit_tui(tmux: &Tmux) {
    tmux.keys(&["C-c"]);
    let screen = tmux.wait_for("the TUI to exit", Duration::from_secs(20), |s| {
        s.contains("EXIT=")
    });
    assert!(screen.contains("EXIT=0"), "{screen}");
}

#[test]
fn four_processes_on_one_panel_lose_nothing() {
    if !support::needs::tmux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (data, panel) = (dir.path().join("data"), dir.path().join("team.json"));
    // The built-in panel of 14, written by the first command.
    assert!(
        persona_sim(&data, &panel, &["personas", "list"], "")
            .status
            .success()
    );
    let started = Instant::now();
    let tui = start_tui("shared", &data, &panel);
    // Paced so the loops overlap the TUI's changes for most of the run.
    let pace = Duration::from_millis(150);

    let adder = {
        let (data, panel) = (data.clone(), panel.clone());
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            for i in 0..CHANGES {
                let name = format!("A-{i:03}");
                if add(&data, &panel, &name).is_some() {
                    acked.push(name);
                }
                std::thread::sleep(pace);
            }
            acked
        })
    };
    // Adds 50, then edits each of its own: 100 changes.
    let editor = {
        let (data, panel) = (data.clone(), panel.clone());
        std::thread::spawn(move || {
            let mut ids = Vec::new();
            for i in 0..CHANGES / 2 {
                let name = format!("B-{i:03}");
                ids.push((add(&data, &panel, &name).expect("acknowledged"), name));
                std::thread::sleep(pace);
            }
            let mut edited = Vec::new();
            for (id, name) in ids {
                let set = format!("occupation=edited {name}");
                let args = ["personas", "edit", &id.to_string(), "--set", &set];
                let out = persona_sim(&data, &panel, &args, "");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                edited.push((id, name));
                std::thread::sleep(pace);
            }
            edited
        })
    };
    // Adds 50, then deletes each of its own: 100 changes.
    let remover = {
        let (data, panel) = (data.clone(), panel.clone());
        std::thread::spawn(move || {
            let mut ids = Vec::new();
            for i in 0..CHANGES / 2 {
                ids.push(add(&data, &panel, &format!("C-{i:03}")).expect("acknowledged"));
                std::thread::sleep(pace);
            }
            for id in &ids {
                let out = persona_sim(&data, &panel, &["personas", "rm", &id.to_string()], "");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                std::thread::sleep(pace);
            }
            ids
        })
    };

    // The TUI: copy the persona under the cursor into a new one named T-NNN.
    let tui_acked = tui_adds(&tui, CHANGES);

    let adds = adder.join().expect("the add loop");
    let edits = editor.join().expect("the edit loop");
    let removed = remover.join().expect("the rm loop");
    quit_tui(&tui);
    let elapsed = started.elapsed();

    let final_panel = read_panel(&panel);
    let names: HashSet<&str> = final_panel.iter().map(|p| p.name.as_str()).collect();
    let mut lost: Vec<String> = adds
        .iter()
        .chain(&tui_acked)
        .filter(|n| !names.contains(n.as_str()))
        .cloned()
        .collect();
    for (id, name) in &edits {
        match final_panel.iter().find(|p| p.id == *id) {
            Some(p) if p.name == *name && p.occupation == format!("edited {name}") => {}
            other => lost.push(format!("edit of #{id} {name} (now {other:?})")),
        }
    }
    for id in &removed {
        if let Some(p) = final_panel.iter().find(|p| p.id == *id) {
            lost.push(format!("delete of #{id} (still there: {})", p.name));
        }
    }
    let ids: HashSet<u32> = final_panel.iter().map(|p| p.id).collect();
    eprintln!(
        "4 processes × {CHANGES} changes in {:.1} s: {} acknowledged, {} lost; {} personas at the end",
        elapsed.as_secs_f64(),
        adds.len() + tui_acked.len() + 2 * CHANGES,
        lost.len(),
        final_panel.len()
    );
    assert_eq!(adds.len(), CHANGES, "every headless add was acknowledged");
    assert!(lost.is_empty(), "lost {} changes: {lost:?}", lost.len());
    assert_eq!(ids.len(), final_panel.len(), "ids are unique");
    assert_eq!(final_panel.len(), 14 + CHANGES + CHANGES / 2 + CHANGES);
}

#[test]
fn a_process_killed_while_holding_the_lock_blocks_no_one() {
    let Some(flock) = support::needs::tool("flock", "apt-get install util-linux") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (data, panel) = (dir.path().join("data"), dir.path().join("team.json"));
    assert!(
        persona_sim(&data, &panel, &["personas", "list"], "")
            .status
            .success()
    );
    let lock = dir.path().join("team.json.lock");
    assert!(lock.exists(), "the first change made the lock file");
    // -o: the lock is flock's own, not inherited by sleep, so killing
    // flock is killing the holder.
    let mut holder = Command::new(flock)
        .arg("-o")
        .arg(&lock)
        .args(["sleep", "20"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // A change waits for the lock…
    let waiter = {
        let (data, panel) = (data.clone(), panel.clone());
        std::thread::spawn(move || {
            let started = Instant::now();
            let id = add(&data, &panel, "After the kill");
            (id, started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(700));
    assert!(!waiter.is_finished(), "the change waited for the lock");
    // …and goes through as soon as the holder is killed.
    holder.kill().unwrap();
    let killed = Instant::now();
    holder.wait().unwrap();
    let (id, waited) = waiter.join().unwrap();
    assert!(id.is_some(), "the change was made");
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "done {:?} after the kill (waited {waited:?} in all)",
        killed.elapsed()
    );
    assert!(
        read_panel(&panel)
            .iter()
            .any(|p| p.name == "After the kill")
    );
}

#[test]
fn a_tui_shows_another_processs_add_within_a_second() {
    if !support::needs::tmux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (data, panel) = (dir.path().join("data"), dir.path().join("team.json"));
    assert!(
        persona_sim(&data, &panel, &["personas", "list"], "")
            .status
            .success()
    );
    let tui = start_tui("reload", &data, &panel);
    // Move the cursor to the third persona: it must stay there.
    tui.keys(&["Down", "Down"]);
    std::thread::sleep(Duration::from_millis(300));
    let added_at = Instant::now();
    let id = add(&data, &panel, "Zoe From Elsewhere").unwrap();
    let screen = tui
        .try_wait_for(Duration::from_secs(3), Duration::from_millis(20), |s| {
            s.contains("Zoe From Elsewhere")
        })
        .unwrap_or_else(|s| panic!("the TUI did not show the add; screen:\n{s}"));
    let seen_after = added_at.elapsed();
    eprintln!("the TUI showed another process's add after {seen_after:?}");
    assert!(seen_after < Duration::from_secs(1), "{seen_after:?}");
    assert!(
        screen.contains(&format!(
            "#{id} Zoe From Elsewhere added by another process"
        )),
        "{screen}"
    );
    assert!(screen.contains("Personas 0/15"), "{screen}");
    quit_tui(&tui);
}

#[test]
fn the_api_and_a_tui_change_one_panel_at_once_and_lose_nothing() {
    if !support::needs::tmux() {
        return;
    }
    const EACH: usize = 30;
    let dir = tempfile::tempdir().unwrap();
    let (data, panel) = (dir.path().join("data"), dir.path().join("team.json"));
    assert!(
        persona_sim(&data, &panel, &["personas", "list"], "")
            .status
            .success()
    );
    let server = support::serve::Server::start_on_panel(&data, &panel, &["--rate-limit", "0"]);
    let tui = start_tui("api", &data, &panel);
    let (base, key) = (server.base.clone(), server.key.clone());
    let api = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let client = reqwest::Client::new();
            let mut acked = Vec::new();
            for i in 0..EACH {
                let name = format!("Api-{i:03}");
                let response = client
                    .post(format!("{base}/v1/personas"))
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(record(&name))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status().as_u16(), 201);
                acked.push(name);
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            acked
        })
    });
    let tui_acked = tui_adds(&tui, EACH);
    let api_acked = api.join().expect("the API loop");
    // The TUI shows the API's personas too.
    tui.keys(&["/"]);
    tui.text("Api-029");
    tui.wait_for(
        "the API's last persona in the TUI",
        Duration::from_secs(5),
        |s| s.contains("Api-029 ·"),
    );
    tui.keys(&["Escape"]);
    quit_tui(&tui);
    let names: HashSet<String> = read_panel(&panel).into_iter().map(|p| p.name).collect();
    let lost: Vec<&String> = api_acked
        .iter()
        .chain(&tui_acked)
        .filter(|n| !names.contains(*n))
        .collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert_eq!(names.len(), 14 + 2 * EACH);
}
