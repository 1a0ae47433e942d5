//! Noticing changes other processes make to the panel file. It polls the
//! file's size, modification time and inode a few times a second: a stat
//! costs microseconds, works on every filesystem (inotify misses changes
//! made on another machine over NFS) and needs no dependency. A change is
//! read and handed over; a file caught mid-repair is skipped until valid.

use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::Persona;
use super::store::read_panel_file;

/// How often the file is looked at.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// What identifies one version of a file: size, modification time, inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

pub fn signature(path: &std::path::Path) -> Option<Signature> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Signature {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode,
    })
}

enum Control {
    /// Read the file now, changed or not.
    Poke,
}

pub struct PanelWatcher {
    tx: Option<std_mpsc::Sender<Control>>,
    thread: Option<JoinHandle<()>>,
}

impl PanelWatcher {
    /// Watches `path`; `notify` gets the panel each time the file changes.
    pub fn spawn(
        path: PathBuf,
        every: Duration,
        notify: impl Fn(Vec<Persona>) + Send + 'static,
    ) -> Self {
        let (tx, rx) = std_mpsc::channel();
        // Taken now, not when the thread first runs: a change made in
        // between would otherwise look like the starting point.
        let mut seen = signature(&path);
        let thread = std::thread::Builder::new()
            .name("persona-watch".into())
            .spawn(move || {
                loop {
                    let forced = match rx.recv_timeout(every) {
                        Ok(Control::Poke) => true,
                        Err(std_mpsc::RecvTimeoutError::Timeout) => false,
                        Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                    };
                    let now = signature(&path);
                    if now == seen && !forced {
                        continue;
                    }
                    if let Ok(panel) = read_panel_file(&path) {
                        seen = now;
                        notify(panel);
                    }
                }
            })
            .expect("spawn the panel watcher thread");
        PanelWatcher {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Reads the file now and reports it even if it looks unchanged (after
    /// this process's own writes, to catch what others did meanwhile).
    pub fn poke(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Control::Poke);
        }
    }
}

impl Drop for PanelWatcher {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::store::{StorePaths, change, load};
    use crate::persona::testing::panel;

    #[test]
    fn a_change_by_another_writer_is_reported_and_a_poke_reads_anyway() {
        let dir = tempfile::tempdir().unwrap();
        let paths = StorePaths::for_file(dir.path().join("personas.json"));
        load(&paths).unwrap();
        let (tx, rx) = std_mpsc::channel();
        let watcher =
            PanelWatcher::spawn(paths.main.clone(), Duration::from_millis(20), move |p| {
                let _ = tx.send(p);
            });
        change(&paths, |p| {
            *p = panel(3);
            Ok::<_, ()>(())
        })
        .unwrap()
        .unwrap();
        let seen = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(seen, panel(3));
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "once");
        watcher.poke();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), panel(3));
    }
}
