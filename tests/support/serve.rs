//! The real `persona-sim serve` on 127.0.0.1:0, with a data folder of its
//! own and an API key, for tests over real HTTP.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::Duration;

use super::binary::command;

pub struct Server {
    pub base: String,
    pub key: String,
    pub data: PathBuf,
    child: Child,
}

/// Makes an API key named `name` in `data`.
pub fn create_key(data: &Path, name: &str) -> String {
    create_key_for(data, name, &Start::default())
}

/// Makes an API key named `name` where a server started as `start` reads
/// its keys (its global flags and environment name a database, say).
pub fn create_key_for(data: &Path, name: &str, start: &Start) -> String {
    let mut args = start.global.clone();
    args.extend(["keys", "create", "--name", name]);
    let mut cmd = command(data, None, &args);
    for (var, value) in &start.env {
        cmd.env(var, value);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// How to start a server: the LLM server it talks to (`None`: none
/// configured), extra environment, and flags.
#[derive(Default)]
pub struct Start<'a> {
    pub llm: Option<&'a str>,
    pub env: Vec<(&'a str, &'a OsStr)>,
    /// Global flags (`--personas FILE`), given before `serve`.
    pub global: Vec<&'a str>,
    /// `serve`'s own flags.
    pub flags: Vec<&'a str>,
    /// The name of the key the server is started with ("test" when
    /// empty); servers that share a database need one each.
    pub key_name: &'a str,
}

impl Server {
    /// Starts `serve` with a key named "test" and `flags`.
    pub fn start(data: &Path, flags: &[&str]) -> Server {
        Server::start_with(
            data,
            Start {
                flags: flags.to_vec(),
                ..Start::default()
            },
        )
    }

    /// Starts `serve` on the panel file `panel` (not the data folder's).
    pub fn start_on_panel(data: &Path, panel: &Path, flags: &[&str]) -> Server {
        let panel = panel.to_str().expect("a UTF-8 path");
        Server::start_with(
            data,
            Start {
                global: vec!["--personas", panel],
                flags: flags.to_vec(),
                ..Start::default()
            },
        )
    }

    /// Starts `serve` as `start` says, with a key named "test".
    pub fn start_with(data: &Path, start: Start) -> Server {
        let name = if start.key_name.is_empty() {
            "test"
        } else {
            start.key_name
        };
        let key = create_key_for(data, name, &start);
        let mut args = start.global.clone();
        args.extend(["serve", "--bind", "127.0.0.1:0"]);
        args.extend_from_slice(&start.flags);
        let mut cmd = command(data, start.llm, &args);
        for (name, value) in &start.env {
            cmd.env(name, value);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Read to the end, so the server never blocks on a full pipe.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("API on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
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

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
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
