//! A debate published live: every event a face sees, kept as the JSON line
//! `simulate --format jsonl` prints, for any number of spectators to read
//! at their own pace (the `/live` page reads it over Server-Sent Events).
//!
//! - Each event has an id that grows for the life of the feed. A spectator
//!   who joins late reads the current debate from its first event, then
//!   live ones; one who reconnects resumes after the last id it read.
//! - A new debate (`debate_started`) replaces the last one's events, so the
//!   feed holds one debate: its memory is bounded by that debate's length,
//!   however many spectators there are. A spectator holds only a cursor,
//!   so one that stops reading slows nobody and costs nothing more.
//! - Audience questions come in through [`Feed::ask`] (when the host turned
//!   them on): checked, cleaned to one line of plain text, rate limited per
//!   client, and queued for the face's moderator. Nobody else sees them
//!   until the moderator accepts one, when it becomes a moderator question
//!   in the debate like any other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::debate::SimEvent;
use super::session::event_json;

/// The longest audience question, in characters.
pub const MAX_QUESTION_CHARS: usize = 280;
/// Questions one client may send per [`QUESTION_WINDOW`].
pub const QUESTIONS_PER_WINDOW: usize = 3;
pub const QUESTION_WINDOW: Duration = Duration::from_secs(60);
/// Questions waiting for the moderator before new ones are refused.
pub const MAX_PENDING_QUESTIONS: usize = 100;

/// The events of the current debate.
#[derive(Debug, Default)]
struct Log {
    /// The id of `events[0]`.
    first_id: u64,
    events: Vec<Arc<str>>,
}

impl Log {
    fn next_id(&self) -> u64 {
        self.first_id + self.events.len() as u64
    }
}

/// A question from the audience, waiting for the moderator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceQuestion {
    pub id: u64,
    /// One line of plain text, control characters taken out.
    pub text: String,
}

/// Why a question was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    #[error("audience questions are off for this stream")]
    Off,
    #[error("the question is empty")]
    Empty,
    #[error("the question is {0} characters long; at most {MAX_QUESTION_CHARS} are taken")]
    TooLong(usize),
    #[error("at most {QUESTIONS_PER_WINDOW} questions a minute; try again in {0} s")]
    TooMany(u64),
    #[error("the moderator has {MAX_PENDING_QUESTIONS} questions waiting; try again later")]
    QueueFull,
}

impl AskError {
    /// Seconds to wait before asking again, when waiting helps.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AskError::TooMany(seconds) => Some(*seconds),
            AskError::QueueFull => Some(30),
            _ => None,
        }
    }
}

/// The audience's side: who asked when, and the queue to the moderator.
struct Inbox {
    to_moderator: mpsc::UnboundedSender<AudienceQuestion>,
    /// Questions sent and not yet taken by the moderator's queue.
    pending: Arc<AtomicUsize>,
    next_id: u64,
    asked: HashMap<String, Vec<Instant>>,
}

pub struct Feed {
    log: watch::Sender<Log>,
    inbox: Option<Mutex<Inbox>>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed::new()
    }
}

impl Feed {
    /// A feed whose audience can only watch.
    pub fn new() -> Feed {
        Feed {
            log: watch::Sender::new(Log::default()),
            inbox: None,
        }
    }

    /// A feed that also takes audience questions; the moderator reads them
    /// from the [`QuestionQueue`].
    pub fn with_questions() -> (Feed, QuestionQueue) {
        let (tx, rx) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let inbox = Inbox {
            to_moderator: tx,
            pending: pending.clone(),
            next_id: 1,
            asked: HashMap::new(),
        };
        let feed = Feed {
            log: watch::Sender::new(Log::default()),
            inbox: Some(Mutex::new(inbox)),
        };
        (feed, QuestionQueue { rx, pending })
    }

    pub fn takes_questions(&self) -> bool {
        self.inbox.is_some()
    }

    /// Publishes an event; a `debate_started` begins a new debate. Never
    /// waits on a spectator.
    pub fn publish(&self, event: &SimEvent) {
        let line: Arc<str> = event_json(event).into();
        let starts = matches!(event, SimEvent::DebateStarted { .. });
        self.log.send_modify(|log| {
            if starts {
                log.first_id = log.next_id();
                log.events.clear();
            }
            log.events.push(line);
        });
    }

    /// Events published so far in the current debate.
    pub fn len(&self) -> usize {
        self.log.borrow().events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A spectator: from the start of the current debate, or after
    /// `last_id` (the last event it read) when that is in the current
    /// debate. An id from an earlier debate or from before a restart
    /// (larger than any sent) starts at the current debate.
    pub fn watch(&self, last_id: Option<u64>) -> Spectator {
        let rx = self.log.subscribe();
        let next = {
            let log = rx.borrow();
            match last_id {
                Some(id) if id >= log.first_id && id < log.next_id() => id + 1,
                _ => log.first_id,
            }
        };
        Spectator { rx, next }
    }

    /// Takes an audience question from `client` (an address, say) for the
    /// moderator's queue; returns its id.
    pub fn ask(&self, client: &str, text: &str) -> Result<u64, AskError> {
        let inbox = self.inbox.as_ref().ok_or(AskError::Off)?;
        let text = one_line(text);
        if text.is_empty() {
            return Err(AskError::Empty);
        }
        let chars = text.chars().count();
        if chars > MAX_QUESTION_CHARS {
            return Err(AskError::TooLong(chars));
        }
        let mut inbox = inbox.lock().expect("inbox lock");
        if inbox.pending.load(Ordering::Relaxed) >= MAX_PENDING_QUESTIONS {
            return Err(AskError::QueueFull);
        }
        let now = Instant::now();
        let times = inbox.asked.entry(client.to_string()).or_default();
        times.retain(|t| now.duration_since(*t) < QUESTION_WINDOW);
        if times.len() >= QUESTIONS_PER_WINDOW {
            let wait = QUESTION_WINDOW - now.duration_since(times[0]);
            return Err(AskError::TooMany(wait.as_secs().max(1)));
        }
        times.push(now);
        let id = inbox.next_id;
        inbox.next_id += 1;
        let question = AudienceQuestion { id, text };
        // Counted before it is sent, so the queue never takes it first.
        inbox.pending.fetch_add(1, Ordering::Relaxed);
        if inbox.to_moderator.send(question).is_err() {
            inbox.pending.fetch_sub(1, Ordering::Relaxed);
            return Err(AskError::Off);
        }
        // Forget clients that have not asked for a window.
        inbox
            .asked
            .retain(|_, t| t.iter().any(|t| now.duration_since(*t) < QUESTION_WINDOW));
        Ok(id)
    }
}

/// The moderator's end of the audience questions.
pub struct QuestionQueue {
    rx: mpsc::UnboundedReceiver<AudienceQuestion>,
    pending: Arc<AtomicUsize>,
}

/// The next question of `queue`; pending forever when there is none (a
/// face without audience questions selects on this all the same).
pub async fn next_question(queue: &mut Option<QuestionQueue>) -> Option<AudienceQuestion> {
    match queue {
        Some(queue) => queue.next().await,
        None => std::future::pending().await,
    }
}

impl QuestionQueue {
    /// The next question; pending while there is none.
    pub async fn next(&mut self) -> Option<AudienceQuestion> {
        let question = self.rx.recv().await?;
        self.taken();
        Some(question)
    }

    /// A question already waiting, if any.
    pub fn try_next(&mut self) -> Option<AudienceQuestion> {
        let question = self.rx.try_recv().ok()?;
        self.taken();
        Some(question)
    }

    fn taken(&self) {
        self.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One spectator's place in the feed.
pub struct Spectator {
    rx: watch::Receiver<Log>,
    next: u64,
}

impl Spectator {
    /// The events after the last ones returned, with their ids, waiting
    /// for some when there are none yet; `None` once the feed is gone. A
    /// new debate starts over at its first event.
    pub async fn next_batch(&mut self) -> Option<Vec<(u64, Arc<str>)>> {
        loop {
            {
                let log = self.rx.borrow_and_update();
                if self.next < log.first_id {
                    self.next = log.first_id;
                }
                let from = (self.next - log.first_id) as usize;
                if from < log.events.len() {
                    let batch: Vec<(u64, Arc<str>)> = log.events[from..]
                        .iter()
                        .enumerate()
                        .map(|(i, line)| (self.next + i as u64, line.clone()))
                        .collect();
                    self.next += batch.len() as u64;
                    return Some(batch);
                }
            }
            self.rx.changed().await.ok()?;
        }
    }
}

/// The text as one line: control characters (escapes, newlines) and bidi
/// overrides (which would reorder what is shown around them) become
/// spaces, runs of spaces one, ends trimmed.
pub fn one_line(text: &str) -> String {
    let bidi = |c: char| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    text.split(|c: char| c.is_control() || c.is_whitespace() || bidi(c))
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a face gets when its debates are published: the feed to publish
/// to, the audience's questions (when they are on), and the page's address
/// to tell the host.
pub struct Publication {
    pub feed: Arc<Feed>,
    pub questions: Option<QuestionQueue>,
    /// The spectator page, e.g. `http://127.0.0.1:7777/live`.
    pub url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: usize) -> SimEvent {
        SimEvent::Token {
            turn: 0,
            text: format!("t{n}"),
        }
    }

    fn started() -> SimEvent {
        SimEvent::DebateStarted {
            feature: "F".into(),
            rounds: 1,
            personas: Vec::new(),
        }
    }

    async fn ids(spectator: &mut Spectator) -> Vec<u64> {
        let batch = spectator.next_batch().await.unwrap();
        batch.iter().map(|(id, _)| *id).collect()
    }

    #[tokio::test]
    async fn late_joiners_read_the_debate_from_its_start_and_resume_by_id() {
        let feed = Feed::new();
        feed.publish(&started());
        for n in 0..3 {
            feed.publish(&event(n));
        }
        assert_eq!(ids(&mut feed.watch(None)).await, vec![0, 1, 2, 3]);
        assert_eq!(ids(&mut feed.watch(Some(1))).await, vec![2, 3]);
        // An id never sent (a restart) starts at the debate's beginning.
        assert_eq!(ids(&mut feed.watch(Some(99))).await, vec![0, 1, 2, 3]);
        let mut live = feed.watch(Some(3));
        let waiting = tokio::spawn(async move { ids(&mut live).await });
        feed.publish(&event(4));
        assert_eq!(waiting.await.unwrap(), vec![4]);
    }

    #[tokio::test]
    async fn a_new_debate_replaces_the_last_one() {
        let feed = Feed::new();
        feed.publish(&started());
        feed.publish(&event(0));
        let mut old = feed.watch(Some(1));
        feed.publish(&started());
        feed.publish(&event(1));
        assert_eq!(feed.len(), 2);
        // Ids keep growing; a reader of the old debate moves to the new one.
        assert_eq!(ids(&mut old).await, vec![2, 3]);
        assert_eq!(ids(&mut feed.watch(Some(0))).await, vec![2, 3]);
        let first = feed.watch(None).next_batch().await.unwrap();
        assert!(first[0].1.contains("debate_started"));
    }

    #[test]
    fn questions_are_checked_cleaned_and_rate_limited() {
        assert_eq!(Feed::new().ask("a", "hi"), Err(AskError::Off));
        let (feed, mut queue) = Feed::with_questions();
        assert_eq!(feed.ask("a", " \n "), Err(AskError::Empty));
        let long = "x".repeat(MAX_QUESTION_CHARS + 1);
        assert!(matches!(feed.ask("a", &long), Err(AskError::TooLong(_))));
        let id = feed.ask("a", "Why\n\u{1b}[2J <b>now</b>?\u{202e}").unwrap();
        let got = queue.try_next().unwrap();
        assert_eq!(got.id, id);
        assert_eq!(got.text, "Why [2J <b>now</b>?");
        feed.ask("a", "two").unwrap();
        feed.ask("a", "three").unwrap();
        let refused = feed.ask("a", "four").unwrap_err();
        assert!(matches!(refused, AskError::TooMany(_)));
        assert!(refused.retry_after().unwrap() >= 1);
        // Another client is not held back.
        feed.ask("b", "one").unwrap();
        // Nothing reaches the stream: the moderator decides.
        assert!(feed.is_empty());
    }

    #[test]
    fn the_queue_has_a_bound() {
        let (feed, mut queue) = Feed::with_questions();
        for n in 0..MAX_PENDING_QUESTIONS {
            feed.ask(&format!("client{n}"), "q").unwrap();
        }
        assert_eq!(feed.ask("late", "q"), Err(AskError::QueueFull));
        queue.try_next().unwrap();
        feed.ask("late", "q").unwrap();
    }
}
