//! End to end: the terminal goes away under a running debate (what a
//! dropped SSH connection does; here its tmux server is killed), or the app
//! gets SIGTERM. The app must cancel the run, save the finished turns and
//! the partial one, and exit without a panic with a code that says why:
//! 129 for SIGHUP, 143 for SIGTERM, 74 for a terminal I/O error.
//!
//! Each test runs its own tmux server (`tmux -L`), so killing it touches no
//! other session. This process makes itself a child subreaper, so the app,
//! orphaned when its tmux server dies, is reparented here and its exit
//! status can be read.
//! Uses $PERSONA_SIM_E2E_BIN when set; `PERSONA_SIM_LOSS_RUNS` sets how many
//! times each terminal-loss case runs (default 3).
#![cfg(target_os = "linux")]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use persona_sim::sim::session::{Session, SessionStatus, SessionStore};
use support::MockServer;

/// How long the app may take from the kill to its exit: the quit budget for
/// saving (2 s) plus start-up slack on a loaded machine.
const EXIT_WITHIN: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(30);

/// A tmux server of its own.
struct TmuxServer {
    socket: String,
    /// Its socket file, which `kill-server` leaves behind.
    socket_path: String,
}

impl TmuxServer {
    /// A detached 100×30 session running `command`.
    fn start(name: &str, command: &str) -> TmuxServer {
        let mut server = TmuxServer {
            socket: format!("persona-sim-loss-{name}-{}", std::process::id()),
            socket_path: String::new(),
        };
        server.run(&[
            "new-session",
            "-d",
            "-s",
            "app",
            "-x",
            "100",
            "-y",
            "30",
            command,
        ]);
        server.socket_path = server.format("#{socket_path}");
        server
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "app"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn text(&self, text: &str) {
        self.run(&["send-keys", "-t", "app", "-l", text]);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "app"])
    }

    fn format(&self, format: &str) -> String {
        self.run(&["display-message", "-p", "-t", "app", format])
            .trim()
            .to_string()
    }

    fn pane_pid(&self) -> i32 {
        let pid = self.format("#{pane_pid}");
        pid.parse()
            .unwrap_or_else(|_| panic!("a pane pid: {pid:?}"))
    }

    fn server_pid(&self) -> i32 {
        let pid = self.format("#{pid}");
        pid.parse()
            .unwrap_or_else(|_| panic!("a server pid: {pid:?}"))
    }

    fn wait_for(&self, what: &str, timeout: Duration, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Selects Maria Lopez and Kwame Mensah, types a feature, starts the
    /// debate and waits until the second speaker's words stream in: the
    /// first turn is finished and the second is half-way.
    fn debate_until_mid_turn(&self) {
        self.wait_for("the persona list", WAIT, |s| {
            s.contains("Personas 0/14") && s.contains("Maria Lopez")
        });
        self.keys(&["Space", "j", "Space", "Tab"]);
        self.text("Offline mode for field workers");
        self.keys(&["F5"]);
        self.wait_for("the second turn streaming", WAIT, |s| {
            s.contains("As Kwame Mensah, I")
        });
    }

    fn kill(&self) {
        self.run(&["kill-server"]);
    }
}

impl Drop for TmuxServer {
    fn drop(&mut self) {
        self.kill();
        if !self.socket_path.is_empty() {
            let _ = std::fs::remove_file(&self.socket_path);
        }
    }
}

/// Adopts orphaned descendants (the app, once its tmux server is gone).
fn become_subreaper() {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "prctl: {}", std::io::Error::last_os_error());
}

/// How a process ended.
#[derive(Debug, PartialEq)]
enum Ended {
    Code(i32),
    Signal(i32),
    /// Gone, reaped by someone else (its old parent, before it died).
    Unknown,
}

/// Waits up to `timeout` for `pid` to end; `None` if it is still running.
fn wait_exit(pid: i32, timeout: Duration) -> Option<Ended> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only to `status`.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid {
            return Some(if libc::WIFEXITED(status) {
                Ended::Code(libc::WEXITSTATUS(status))
            } else {
                Ended::Signal(libc::WTERMSIG(status))
            });
        }
        if rc < 0 && !Path::new(&format!("/proc/{pid}")).exists() {
            return Some(Ended::Unknown);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills `pid` if it is still there (a hung app must not outlive the test).
fn kill_hard(pid: i32) {
    // SAFETY: plain kill(2).
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let _ = wait_exit(pid, Duration::from_secs(2));
}

/// The app, run by the shell `shell`.
fn app_under(shell: i32) -> i32 {
    let children = Command::new("pgrep")
        .args(["-P", &shell.to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&children.stdout)
        .lines()
        .next()
        .expect("the app under the shell")
        .trim()
        .parse()
        .unwrap()
}

fn runs() -> usize {
    std::env::var("PERSONA_SIM_LOSS_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
}

/// The app's command line: against the mock, one round, no metrics.
fn app_command(url: &str, data: &Path) -> String {
    format!(
        "env -u OPENAI_API_KEY OPENAI_BASE_URL={url} PERSONA_SIM_DATA_DIR={data} TERM=xterm-256color {bin} --no-metrics --rounds 1",
        data = data.display(),
        bin = support::binary::e2e_bin().display(),
    )
}

/// The one saved session: cancelled, not running, with the finished first
/// turn and the partial second one (marked not complete, its words kept).
fn assert_saved_with_partial_turn(data: &Path) -> Session {
    let dir = data.join("sessions");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(files.len(), 1, "one session file: {files:?}");
    let session = SessionStore::load_path(&files[0]).unwrap();
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert_eq!(session.status, SessionStatus::Cancelled, "{text}");
    assert_eq!(session.pid, None, "{text}");
    assert_eq!(session.turns.len(), 2, "{text}");
    let (done, partial) = (&session.turns[0], &session.turns[1]);
    assert!(
        done.complete && done.text.contains("As Maria Lopez"),
        "{text}"
    );
    assert!(!partial.complete, "the second turn is partial: {text}");
    assert!(
        partial.text.starts_with("As Kwame Mensah, I"),
        "the partial turn keeps its words: {text}"
    );
    session
}

fn log_of(data: &Path) -> String {
    std::fs::read_to_string(data.join("logs").join("app.log")).unwrap_or_default()
}

fn assert_no_panic(data: &Path) {
    let log = log_of(data);
    assert!(!log.to_lowercase().contains("panic"), "{log}");
}

/// One terminal loss: the app in a fresh tmux server, a debate mid-turn,
/// then the server killed. `wrapped`: the app runs under a shell that
/// ignores SIGHUP and writes the exit code to a file, so the app gets no
/// SIGHUP and must notice the dead terminal by its I/O errors alone.
async fn lose_the_terminal(run: usize, wrapped: bool) {
    let server = MockServer::persona_echo(Duration::from_millis(120)).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let exit_file = data.join("exit-code");
    let app = app_command(&server.base_url, &data);
    let command = if wrapped {
        format!("trap '' HUP; {app}; echo $? > {}", exit_file.display())
    } else {
        format!("exec {app}")
    };
    let name = format!("{}{run}", if wrapped { "eio" } else { "hup" });
    let (ended, elapsed) = tokio::task::spawn_blocking(move || {
        let tmux = TmuxServer::start(&name, &command);
        tmux.debate_until_mid_turn();
        let pane = tmux.pane_pid();
        let app = if wrapped { app_under(pane) } else { pane };
        let tmux_pid = tmux.server_pid();
        let killed = Instant::now();
        tmux.kill();
        let ended = wait_exit(app, EXIT_WITHIN);
        let elapsed = killed.elapsed();
        if ended.is_none() {
            kill_hard(app);
        }
        // The dead server and shell were adopted too: reap them.
        let _ = wait_exit(tmux_pid, Duration::from_secs(2));
        if wrapped {
            let _ = wait_exit(pane, Duration::from_secs(5));
        }
        drop(tmux);
        (ended, elapsed)
    })
    .await
    .unwrap();
    let ended = ended.unwrap_or_else(|| {
        panic!(
            "run {run}: the app still ran {EXIT_WITHIN:?} after its terminal died; log:\n{}",
            log_of(&data)
        )
    });
    eprintln!("run {run} (wrapped: {wrapped}): {ended:?} {elapsed:?} after the kill");
    assert_no_panic(&data);
    if wrapped {
        let code = std::fs::read_to_string(&exit_file).unwrap_or_default();
        assert_eq!(code.trim(), "74", "a terminal I/O error: {}", log_of(&data));
        assert!(matches!(ended, Ended::Unknown), "{ended:?}");
    } else {
        // SIGHUP normally; a write that fails first is an I/O error.
        assert!(
            matches!(ended, Ended::Code(129) | Ended::Code(74) | Ended::Unknown),
            "{ended:?}; log:\n{}",
            log_of(&data)
        );
    }
    assert_saved_with_partial_turn(&data);
    let log = log_of(&data);
    assert!(
        log.contains("exit code"),
        "the log says why it ended: {log}"
    );
}

/// The terminal dies (SIGHUP to the app, as for a dropped SSH connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_terminal_saves_the_partial_turn_and_exits_129() {
    if !support::needs::tmux() {
        return;
    }
    become_subreaper();
    for run in 0..runs() {
        lose_the_terminal(run, false).await;
    }
}

/// The terminal dies and no SIGHUP comes: the failed writes say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_terminal_without_sighup_is_an_io_error_exit_74() {
    if !support::needs::tmux() {
        return;
    }
    become_subreaper();
    for run in 0..runs() {
        lose_the_terminal(run, true).await;
    }
}

/// SIGTERM mid-turn: the same save, exit 143, and the terminal restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_saves_the_partial_turn_and_exits_143() {
    if !support::needs::tmux() {
        return;
    }
    let server = MockServer::persona_echo(Duration::from_millis(120)).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    // The shell reports the exit status and whether raw mode is off again.
    let command = format!(
        "{}; echo EXIT=$?; stty -a | grep -o -- '-\\?icanon'; sleep 600",
        app_command(&server.base_url, &data)
    );
    let screen = tokio::task::spawn_blocking(move || {
        let tmux = TmuxServer::start("term", &command);
        tmux.debate_until_mid_turn();
        let app = app_under(tmux.pane_pid());
        let killed = Instant::now();
        // SAFETY: plain kill(2).
        unsafe { libc::kill(app, libc::SIGTERM) };
        tmux.wait_for("the exit status", EXIT_WITHIN, |s| s.contains("EXIT="));
        eprintln!("SIGTERM: exited {:?} after the signal", killed.elapsed());
        let screen = tmux.wait_for("stty output", WAIT, |s| s.contains("icanon"));
        drop(tmux);
        screen
    })
    .await
    .unwrap();
    assert!(
        screen.contains("EXIT=143"),
        "{screen}\nlog:\n{}",
        log_of(&data)
    );
    // Raw mode is off and the alternate screen is gone.
    assert!(screen.lines().any(|l| l.trim() == "icanon"), "{screen}");
    assert!(!screen.contains("Personas 2/14"), "{screen}");
    assert_no_panic(&data);
    assert_saved_with_partial_turn(&data);
}
