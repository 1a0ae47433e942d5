//! The real binary in a real terminal: a detached tmux session, keys sent
//! with `send-keys`, the screen read back with `capture-pane`.

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    pub session: String,
}

impl Tmux {
    /// A detached session of `width`×`height` running `command` in a shell.
    pub fn start(name: &str, width: u16, height: u16, command: &str) -> Tmux {
        let session = format!("persona-sim-e2e-{name}-{}", std::process::id());
        let (w, h) = (width.to_string(), height.to_string());
        Tmux::run(&[
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            &w,
            "-y",
            &h,
            command,
        ]);
        Tmux { session }
    }

    pub fn run(args: &[&str]) -> String {
        let out = Command::new("tmux").args(args).output().expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        Tmux::run(&args);
    }

    /// Ctrl-C, answering the "quit while it runs?" question if it comes;
    /// returns the screen once the shell printed the exit code.
    pub fn quit(&self, timeout: Duration) -> String {
        self.keys(&["C-c"]);
        let screen = self.wait_for("the exit or the quit question", timeout, |s| {
            s.contains("EXIT=") || s.contains("Quit and save it as cancelled?")
        });
        if screen.contains("EXIT=") {
            return screen;
        }
        self.keys(&["y"]);
        self.wait_for("the exit", timeout, |s| s.contains("EXIT="))
    }

    /// Types `text` literally.
    pub fn text(&self, text: &str) {
        Tmux::run(&["send-keys", "-t", &self.session, "-l", text]);
    }

    pub fn screen(&self) -> String {
        Tmux::run(&["capture-pane", "-p", "-t", &self.session])
    }

    /// Waits until the screen satisfies `check`, or fails with the screen.
    pub fn wait_for(&self, what: &str, timeout: Duration, check: impl Fn(&str) -> bool) -> String {
        self.try_wait_for(timeout, Duration::from_millis(100), check)
            .unwrap_or_else(|screen| panic!("timed out waiting for {what}; screen:\n{screen}"))
    }

    /// The screen once it satisfies `check` (looked at every `every`), or
    /// the last screen seen when `timeout` passed.
    pub fn try_wait_for(
        &self,
        timeout: Duration,
        every: Duration,
        check: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return Ok(screen);
            }
            if Instant::now() > deadline {
                return Err(screen);
            }
            std::thread::sleep(every);
        }
    }

    /// The pid of the program the pane's shell started.
    pub fn app_pid(&self) -> Option<u32> {
        let shell = Tmux::run(&["display-message", "-p", "-t", &self.session, "#{pane_pid}"]);
        let out = Command::new("pgrep")
            .args(["-P", shell.trim()])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        Tmux::run(&["kill-session", "-t", &self.session]);
    }
}
