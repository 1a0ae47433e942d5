//! The real `persona-sim serve` on 127.0.0.1:0, with a data folder of its
//! own and an API key, for tests over real HTTP.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::binary::BIN;

pub struct Server {
    pub base: String,
    pub key: String,
    pub data: PathBuf,
    child: Child,
}

/// `persona-sim ARGS` with only PATH and the data folder set.
pub fn command(data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PERSONA_SIM_DATA_DIR", data)
        .stdin(Stdio::null());
    cmd
}

/// Makes an API key named `name` in `data`.
pub fn create_key(data: &Path, name: &str) -> String {
    let out = command(data, &["keys", "create", "--name", name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

impl Server {
    /// Starts `serve` with a key named "test" and `extra` flags.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        let key = create_key(data, "test");
        Server::start_with_key(data, key, extra)
    }

    /// Starts `serve` on the panel file `panel` (not the data folder's).
    pub fn start_on_panel(data: &Path, panel: &Path, extra: &[&str]) -> Server {
        let key = create_key(data, "test");
        let panel = panel.to_str().expect("a UTF-8 path");
        let mut args = vec!["--personas", panel];
        args.extend_from_slice(extra);
        Server::start_with_key(data, key, &args)
    }

    /// `extra` may start with global flags (`--personas FILE`), which go
    /// before `serve`.
    pub fn start_with_key(data: &Path, key: String, extra: &[&str]) -> Server {
        let global = if extra.first() == Some(&"--personas") {
            2
        } else {
            0
        };
        let mut args = extra[..global].to_vec();
        args.extend(["serve", "--bind", "127.0.0.1:0"]);
        args.extend_from_slice(&extra[global..]);
        let mut child = command(data, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("API on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("serve printed its address");
        Server {
            base: format!("http://{addr}"),
            key,
            data: data.to_path_buf(),
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
