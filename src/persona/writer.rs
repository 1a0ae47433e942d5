//! The panel writer: an interactive face's changes applied off its thread,
//! one after another in the order they were made, each as one locked
//! [`store::change`] on the panel as it is on disk. The face shows its
//! change at once and takes the panel the writer reports back.

use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use super::Persona;
use super::ops::{self, Applied, Change, PanelOpError};
use super::store::{self, StorePaths};

/// What became of one [`Change`].
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub change: Change,
    pub result: Result<Applied, WriteFailure>,
    /// The panel on disk after it (`None` when the file could not be read).
    pub panel: Option<Vec<Persona>>,
    /// What loading repaired first (a restored file, a first run).
    pub notices: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteFailure {
    /// The change no longer fits the panel (its persona was deleted, its id
    /// taken); nothing was written.
    #[error("{0}")]
    Refused(PanelOpError),
    /// The file could not be locked, read or written.
    #[error("{0}")]
    Store(String),
}

pub struct PanelWriter {
    tx: Option<std_mpsc::Sender<Change>>,
    thread: Option<JoinHandle<()>>,
}

impl PanelWriter {
    pub fn spawn(paths: StorePaths, notify: impl Fn(Written) + Send + 'static) -> Self {
        let (tx, rx) = std_mpsc::channel::<Change>();
        let thread = std::thread::Builder::new()
            .name("persona-writer".into())
            .spawn(move || {
                while let Ok(change) = rx.recv() {
                    notify(write(&paths, change));
                }
            })
            .expect("spawn the panel writer thread");
        PanelWriter {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Queues a change; returns at once.
    pub fn send(&self, change: Change) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(change);
        }
    }

    /// Finishes the queued changes and stops the thread.
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

impl Drop for PanelWriter {
    fn drop(&mut self) {
        self.finish();
    }
}

fn write(paths: &StorePaths, change: Change) -> Written {
    let outcome = store::change(paths, |panel| ops::apply(panel, &change));
    let (result, panel, notices) = match outcome {
        Ok(Ok(done)) => (
            Ok(done.value),
            Some(std::sync::Arc::unwrap_or_clone(done.panel)),
            done.notices,
        ),
        Ok(Err(refused)) => {
            // Nothing was written; the face still gets the panel as it is.
            let panel = store::read_panel_file(&paths.main).ok();
            (Err(WriteFailure::Refused(refused)), panel, Vec::new())
        }
        Err(e) => {
            tracing::error!(target: "store", error = %e, "panel change not saved");
            (Err(WriteFailure::Store(e.to_string())), None, Vec::new())
        }
    };
    Written {
        change,
        result,
        panel,
        notices,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::store::{change, load};
    use crate::persona::testing::{panel, persona};
    use std::sync::{Arc, Mutex};

    #[test]
    fn changes_are_applied_in_order_to_the_file_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let paths = StorePaths::for_file(dir.path().join("personas.json"));
        change(&paths, |p| {
            *p = panel(2);
            Ok::<_, ()>(())
        })
        .unwrap()
        .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let writer = PanelWriter::spawn(paths.clone(), move |w| sink.lock().unwrap().push(w));
        // Meanwhile another process adds #3.
        change(&paths, |p| ops::add(p, persona(3, "Theirs", "B", "C")))
            .unwrap()
            .unwrap();
        writer.send(Change::Add(vec![persona(3, "Mine", "B", "C")]));
        writer.send(Change::Remove(1));
        writer.shutdown();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        let names: Vec<String> = load(&paths)
            .unwrap()
            .personas
            .iter()
            .map(|p| format!("{}:{}", p.id, p.name))
            .collect();
        assert_eq!(names, ["2:Person 2", "3:Theirs", "4:Mine"]);
        assert_eq!(seen[1].panel.as_ref().unwrap().len(), 3);
    }

    #[test]
    fn a_refused_change_reports_why_and_the_panel_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let paths = StorePaths::for_file(dir.path().join("personas.json"));
        load(&paths).unwrap();
        let before = persona(999, "Gone", "B", "C");
        let written = write(
            &paths,
            Change::Edit {
                before: before.clone(),
                after: before,
            },
        );
        assert_eq!(
            written.result,
            Err(WriteFailure::Refused(PanelOpError::NoSuchId(999)))
        );
        assert!(written.panel.is_some());
    }
}
