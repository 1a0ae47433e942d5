//! The autosaver: every change to the panel is saved on a background
//! thread, so the UI never waits on the disk.

use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use super::Persona;
use super::store::{SaveResult, Store};

/// What the autosaver tells the UI after each save.
#[derive(Debug, Clone, PartialEq)]
pub enum SaveNotice {
    Saved { path: PathBuf, count: usize },
    Blocked,
    Failed(String),
}

/// Saves panels on a background thread. Snapshots sent faster than the disk
/// keeps up are coalesced: only the newest is written.
pub struct Autosaver {
    tx: Option<std_mpsc::Sender<Vec<Persona>>>,
    thread: Option<JoinHandle<()>>,
}

impl Autosaver {
    pub fn spawn(mut store: Store, notify: impl Fn(SaveNotice) + Send + 'static) -> Self {
        let (tx, rx) = std_mpsc::channel::<Vec<Persona>>();
        let thread = std::thread::Builder::new()
            .name("persona-autosave".into())
            .spawn(move || {
                while let Ok(mut panel) = rx.recv() {
                    while let Ok(newer) = rx.try_recv() {
                        panel = newer;
                    }
                    let notice = match store.save(&panel) {
                        Ok(SaveResult::Saved) => {
                            tracing::info!(target: "store", count = panel.len(), "personas saved");
                            SaveNotice::Saved {
                                path: store.paths.main.clone(),
                                count: panel.len(),
                            }
                        }
                        Ok(SaveResult::Unchanged) => continue,
                        Ok(SaveResult::Blocked) => SaveNotice::Blocked,
                        Err(e) => {
                            tracing::error!(target: "store", error = %e, "save failed");
                            SaveNotice::Failed(e.to_string())
                        }
                    };
                    notify(notice);
                }
            })
            .expect("spawn autosave thread");
        Autosaver {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Queues a snapshot for saving; returns at once.
    pub fn save(&self, personas: Vec<Persona>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(personas);
        }
    }

    /// Finishes queued saves and stops the thread.
    pub fn shutdown(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Autosaver {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::parse_panel;
    use crate::persona::store::{StorePaths, load};
    use crate::persona::testing::panel;
    use std::fs;
    use std::sync::{Arc, Mutex};

    fn paths(dir: &tempfile::TempDir) -> StorePaths {
        StorePaths::for_file(dir.path().join("personas.json"))
    }

    #[test]
    fn autosaver_saves_off_thread_and_reports() {
        let dir = tempfile::tempdir().unwrap();
        let store = load(&paths(&dir)).unwrap().store;
        let notices = Arc::new(Mutex::new(Vec::new()));
        let sink = notices.clone();
        let saver = Autosaver::spawn(store, move |n| sink.lock().unwrap().push(n));
        for n in 1..=20 {
            saver.save(panel(n));
        }
        saver.shutdown();
        let on_disk = parse_panel(&fs::read_to_string(dir.path().join("personas.json")).unwrap());
        assert_eq!(on_disk.unwrap(), panel(20), "the newest snapshot wins");
        let notices = notices.lock().unwrap();
        assert!(!notices.is_empty() && notices.len() <= 20);
        assert!(matches!(
            notices.last().unwrap(),
            SaveNotice::Saved { count: 20, .. }
        ));
    }
}
