//! A human moderator's hand on a running debate: pause and resume, skip
//! the speaker, give the floor, put a question to the panel, add a round,
//! end now. A face sends [`Command`]s (the TUI from keys, `simulate` from
//! JSON lines on stdin); the debate takes them between tokens and turns
//! ([`Chair`]) and reports each as a [`Moderation`] event, which the
//! session records.
//!
//! A command that changes nothing (resume when not paused, skip between
//! turns, pause twice) is dropped without an event, so the record holds
//! only what happened.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::debate::{Moderation, SimEvent, Transcript, Turn};
use super::live::one_line;
use crate::persona::Persona;

/// The longest moderator question, in characters.
pub const MAX_QUESTION_CHARS: usize = 500;

/// What a moderator can ask of a running debate. As JSON (one line on
/// stdin in `simulate --format jsonl`): `{"command": "pause"}`,
/// `{"command": "floor", "persona_id": 3}`, `{"command": "ask", "text":
/// "…"}`, `{"command": "add_round"}`, `{"command": "end"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Show no new token (after the current one) until `resume`.
    Pause,
    Resume,
    /// End the current speaker's turn where it stands.
    Skip,
    /// This persona speaks next.
    Floor {
        persona_id: u32,
    },
    /// A question every later turn sees (after the current turn ends).
    Ask {
        text: String,
        /// It came from a spectator (the moderator accepted it).
        #[serde(default)]
        audience: bool,
    },
    AddRound,
    /// No more turns; the report follows.
    End,
}

impl Command {
    /// Checks a command against the debate's personas: the problem, said
    /// plainly, or `None`.
    pub fn problem(&self, personas: &[Persona]) -> Option<String> {
        match self {
            Command::Floor { persona_id } if !personas.iter().any(|p| p.id == *persona_id) => {
                let ids: Vec<String> = personas.iter().map(|p| p.id.to_string()).collect();
                Some(format!(
                    "persona {persona_id} is not in this debate (its personas: {})",
                    ids.join(", ")
                ))
            }
            Command::Ask { text, .. } if one_line(text).is_empty() => {
                Some("the question is empty".into())
            }
            Command::Ask { text, .. } if text.chars().count() > MAX_QUESTION_CHARS => Some(
                format!("the question is longer than {MAX_QUESTION_CHARS} characters"),
            ),
            _ => None,
        }
    }
}

/// The face's end: commands for the running debate.
pub type Commands = mpsc::UnboundedSender<Command>;

/// A moderator channel: the face keeps the sender, the debate the [`Chair`].
pub fn channel() -> (Commands, Chair) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, Chair::new(Some(rx)))
}

/// What a command asks of the turn being spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    Skip,
    End,
}

/// The debate's side: commands received, and what they left to do.
#[derive(Debug, Default)]
pub struct Chair {
    rx: Option<mpsc::UnboundedReceiver<Command>>,
    pub paused: bool,
    /// Set while a turn streams, by `skip` or `end`.
    pub interrupt: Option<Interrupt>,
    /// The debate ends after the current turn (or now, between turns).
    pub ended: bool,
    /// Persona indexes (in the debate's order) given the floor, in order.
    floor: VecDeque<usize>,
    /// Questions to put after the current turn: text, from the audience.
    questions: VecDeque<(String, bool)>,
    /// Rounds added so far.
    pub added_rounds: u32,
}

/// What the chair needs to know of the debate to act.
#[derive(Debug, Clone, Copy)]
pub struct Table<'a> {
    pub personas: &'a [Persona],
    /// Rounds as configured (the chair counts those it added).
    pub rounds: u32,
    /// A turn is streaming (a skip means something).
    pub speaking: bool,
}

impl Chair {
    pub fn new(rx: Option<mpsc::UnboundedReceiver<Command>>) -> Chair {
        Chair {
            rx,
            ..Chair::default()
        }
    }

    /// No moderator: the debate runs as configured.
    pub fn absent() -> Chair {
        Chair::default()
    }

    pub fn listening(&self) -> bool {
        self.rx.is_some()
    }

    /// The next command; `None` when the moderator is gone (then nothing
    /// stays paused). Pending forever with no moderator.
    pub async fn recv(&mut self) -> Option<Command> {
        match &mut self.rx {
            Some(rx) => {
                let command = rx.recv().await;
                if command.is_none() {
                    self.rx = None;
                    self.paused = false;
                }
                command
            }
            None => std::future::pending().await,
        }
    }

    /// Takes one command: sends what happened (if anything did).
    pub async fn take(
        &mut self,
        command: Command,
        table: &Table<'_>,
        tx: &mpsc::Sender<SimEvent>,
    ) -> Result<(), super::debate::Outcome> {
        if let Some(problem) = command.problem(table.personas) {
            tracing::warn!(target: "debate", ?command, problem, "moderator command ignored");
            return Ok(());
        }
        let event = match command {
            Command::Pause if !self.paused => {
                self.paused = true;
                Some(Moderation::Paused)
            }
            Command::Resume if self.paused => {
                self.paused = false;
                Some(Moderation::Resumed)
            }
            Command::Skip if table.speaking && self.interrupt.is_none() => {
                self.interrupt = Some(Interrupt::Skip);
                None // sent by the turn, with its index
            }
            Command::Floor { persona_id } => {
                let index = table.personas.iter().position(|p| p.id == persona_id);
                index.map(|i| {
                    self.floor.push_back(i);
                    Moderation::Floor {
                        persona_id,
                        speaker: table.personas[i].name.clone(),
                    }
                })
            }
            Command::Ask { text, audience } => {
                self.questions.push_back((one_line(&text), audience));
                None // sent when it is put, between turns
            }
            Command::AddRound => {
                self.added_rounds += 1;
                Some(Moderation::RoundAdded {
                    rounds: self.rounds(table.rounds),
                })
            }
            Command::End if !self.ended => {
                self.ended = true;
                self.paused = false;
                if table.speaking {
                    self.interrupt = Some(Interrupt::End);
                }
                Some(Moderation::Ended)
            }
            _ => None,
        };
        match event {
            Some(event) => send(tx, event).await,
            None => Ok(()),
        }
    }

    /// Between turns: takes the commands that arrived, puts the questions
    /// asked, and waits while paused. Returns when the next turn may start
    /// (or the debate is ended).
    pub async fn between_turns(
        &mut self,
        table: &Table<'_>,
        tx: &mpsc::Sender<SimEvent>,
        transcript: &mut Transcript,
    ) -> Result<(), super::debate::Outcome> {
        loop {
            while let Some(command) = self.rx.as_mut().and_then(|rx| rx.try_recv().ok()) {
                self.take(command, table, tx).await?;
            }
            self.put_questions(tx, transcript).await?;
            if self.ended || !self.paused {
                return Ok(());
            }
            match self.recv().await {
                Some(command) => self.take(command, table, tx).await?,
                None => return Ok(()),
            }
        }
    }

    /// Puts the waiting questions into the transcript, each a moderator turn.
    pub async fn put_questions(
        &mut self,
        tx: &mpsc::Sender<SimEvent>,
        transcript: &mut Transcript,
    ) -> Result<(), super::debate::Outcome> {
        while let Some((text, audience)) = self.questions.pop_front() {
            let round = transcript.turns.last().map_or(1, |t| t.round);
            let turn = transcript.turns.len();
            transcript
                .turns
                .push(Turn::moderator_question(&text, round));
            send(
                tx,
                Moderation::Asked {
                    turn,
                    text,
                    audience,
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Rounds the debate has now.
    pub fn rounds(&self, configured: u32) -> u32 {
        configured + self.added_rounds
    }

    /// The persona given the floor next, if any.
    pub fn next_floor(&mut self) -> Option<usize> {
        self.floor.pop_front()
    }
}

async fn send(
    tx: &mpsc::Sender<SimEvent>,
    action: Moderation,
) -> Result<(), super::debate::Outcome> {
    tracing::info!(target: "debate", ?action, "moderator");
    tx.send(SimEvent::Moderated(action))
        .await
        .map_err(|_| super::debate::Outcome::Cancelled)
}
