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
use super::devil::Herding;
use super::live::one_line;
use super::stance::Position;
use crate::persona::Persona;

/// The longest moderator question, in characters.
pub const MAX_QUESTION_CHARS: usize = 500;

/// What a moderator can ask of a running debate. As JSON (one line on
/// stdin in `simulate --format jsonl`): `{"command": "pause"}`,
/// `{"command": "floor", "persona_id": 3}`, `{"command": "ask", "text":
/// "…"}`, `{"command": "add_round"}`, `{"command": "end"}`,
/// `{"command": "devils_advocate"}` (optionally with `persona_id`).
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
    /// A devil's-advocate turn next (between turns): `persona_id` argues
    /// against the panel's majority; without it, the majority's most
    /// interested persona (see [`super::devil`]).
    DevilsAdvocate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        persona_id: Option<u32>,
    },
}

impl Command {
    /// Checks a command against the debate's personas: the problem, said
    /// plainly, or `None`.
    pub fn problem(&self, personas: &[Persona]) -> Option<String> {
        match self {
            Command::Floor { persona_id }
            | Command::DevilsAdvocate {
                persona_id: Some(persona_id),
            } if !personas.iter().any(|p| p.id == *persona_id) => {
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
    /// How the debate watches for herding (a setting, not a command).
    pub herding: Herding,
    /// A devil's advocate asked for and not yet heard (one at a time).
    devil: Option<DevilRequest>,
}

/// A devil's-advocate turn to run between turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevilRequest {
    /// Who speaks; `None`: the majority's most interested persona.
    pub persona_id: Option<u32>,
    /// The position argued against; `None`: the panel's majority when the
    /// turn starts.
    pub against: Option<Position>,
    /// Asked by the debate itself on herding (policy `auto`).
    pub auto: bool,
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

    /// The same chair, watching for herding as `herding` says.
    pub fn with_herding(self, herding: Herding) -> Chair {
        Chair { herding, ..self }
    }

    /// Asks for a devil's advocate; dropped when one is already waiting.
    pub fn ask_devil(&mut self, request: DevilRequest) -> bool {
        if self.devil.is_some() {
            return false;
        }
        self.devil = Some(request);
        true
    }

    /// The devil's advocate to hear next, if one was asked for.
    pub fn next_devil(&mut self) -> Option<DevilRequest> {
        self.devil.take()
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
            Command::DevilsAdvocate { persona_id } => {
                self.ask_devil(DevilRequest {
                    persona_id,
                    against: None,
                    auto: false,
                });
                None // sent when the turn starts
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::llm::{BackendInfo, ChatBackend, ChatChunk, ChatRequest, ChatStream, LlmError};
    use crate::persona::builtin_panel;
    use crate::sim::debate::{DebateConfig, Outcome, TurnFinish, debate_rounds};
    use crate::sim::stance::Position;

    /// Every turn says `words` words, one every 10 ms, then a stance line:
    /// `stances[i]` for the panel's persona `i` (or "for, interest 7/10").
    struct Paced {
        words: usize,
        seen: Mutex<Vec<String>>,
        stances: Vec<&'static str>,
    }

    impl ChatBackend for Paced {
        fn info(&self) -> BackendInfo {
            BackendInfo {
                kind: "test",
                model: "paced".into(),
                endpoint: "memory".into(),
            }
        }
        fn stream(&self, request: ChatRequest) -> ChatStream {
            let prompt = request.messages.last().unwrap().content.clone();
            self.seen.lock().unwrap().push(prompt);
            let system = &request.messages[0].content;
            let stance = builtin_panel()
                .iter()
                .position(|p| system.starts_with(&format!("You are {},", p.name)))
                .and_then(|i| self.stances.get(i).copied())
                .unwrap_or("for, interest 7/10");
            let mut chunks: Vec<Result<ChatChunk, LlmError>> = (0..self.words)
                .map(|i| Ok(ChatChunk::Text(format!("w{i} "))))
                .collect();
            chunks.push(Ok(ChatChunk::Text(format!("\nSTANCE: {stance}"))));
            Box::pin(futures::stream::unfold(
                chunks.into_iter(),
                |mut rest| async move {
                    let next = rest.next()?;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    Some((next, rest))
                },
            ))
        }
    }

    struct Run {
        commands: Commands,
        events: mpsc::Receiver<SimEvent>,
        task: tokio::task::JoinHandle<(Outcome, Transcript)>,
        backend: Arc<Paced>,
    }

    fn start(personas: usize, rounds: u32, words: usize) -> Run {
        start_with(personas, rounds, words, vec![], Herding::default())
    }

    fn start_with(
        personas: usize,
        rounds: u32,
        words: usize,
        stances: Vec<&'static str>,
        herding: Herding,
    ) -> Run {
        let backend = Arc::new(Paced {
            words,
            seen: Mutex::new(Vec::new()),
            stances,
        });
        let config = DebateConfig {
            feature: "Offline mode".into(),
            personas: builtin_panel()[..personas].to_vec(),
            rounds,
            max_tokens_per_turn: 300,
            max_tokens_total: None,
        };
        let (commands, chair) = channel();
        let mut chair = chair.with_herding(herding);
        let (tx, events) = mpsc::channel(1024);
        let run_backend = backend.clone();
        let task = tokio::spawn(async move {
            let mut transcript = Transcript::default();
            let outcome =
                debate_rounds(&*run_backend, &config, &tx, &mut transcript, &mut chair).await;
            (outcome, transcript)
        });
        Run {
            commands,
            events,
            task,
            backend,
        }
    }

    impl Run {
        /// Events up to and including the first that `stop` accepts.
        async fn until(&mut self, stop: impl Fn(&SimEvent) -> bool) -> Vec<SimEvent> {
            let mut seen = Vec::new();
            while let Some(event) = self.events.recv().await {
                let done = stop(&event);
                seen.push(event);
                if done {
                    return seen;
                }
            }
            panic!("the debate ended first: {seen:?}");
        }

        async fn finish(mut self) -> (Outcome, Transcript, Vec<SimEvent>, Vec<String>) {
            let mut rest = Vec::new();
            while let Some(event) = self.events.recv().await {
                rest.push(event);
            }
            let (outcome, transcript) = self.task.await.unwrap();
            let seen = self.backend.seen.lock().unwrap().clone();
            (outcome, transcript, rest, seen)
        }
    }

    fn is_token(e: &SimEvent) -> bool {
        matches!(e, SimEvent::Token { .. })
    }

    fn speakers(transcript: &Transcript) -> Vec<u32> {
        transcript.turns.iter().map(|t| t.persona_id).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn floor_round_and_question_shape_the_debate() {
        let run = start(3, 1, 2);
        run.commands.send(Command::Floor { persona_id: 3 }).unwrap();
        run.commands.send(Command::AddRound).unwrap();
        run.commands
            .send(Command::Ask {
                text: "What about\nthe price?".into(),
                audience: true,
            })
            .unwrap();
        let (outcome, transcript, events, prompts) = run.finish().await;
        assert_eq!(outcome, Outcome::Completed);
        // The question is turn 0, persona 3 speaks first and not twice in
        // round 1, and the added round has everyone again.
        assert_eq!(speakers(&transcript), vec![0, 3, 1, 2, 1, 2, 3]);
        assert!(transcript.turns[0].moderator);
        assert_eq!(transcript.turns[0].text, "What about the price?");
        let moderated: Vec<&Moderation> = events
            .iter()
            .filter_map(|e| match e {
                SimEvent::Moderated(m) => Some(m),
                _ => None,
            })
            .collect();
        assert_eq!(
            moderated,
            vec![
                &Moderation::Floor {
                    persona_id: 3,
                    speaker: builtin_panel()[2].name.clone()
                },
                &Moderation::RoundAdded { rounds: 2 },
                &Moderation::Asked {
                    turn: 0,
                    text: "What about the price?".into(),
                    audience: true
                },
            ]
        );
        // Every later turn sees the question, and the new round count.
        assert!(
            prompts
                .iter()
                .all(|p| p.contains("Moderator: “What about the price?”"))
        );
        assert!(prompts[4].contains("Round 2 of 2"), "{}", prompts[4]);
        // Each is asked it outright once: until they have spoken after it.
        let asked = "The moderator asked: \"What about the price?\"";
        assert!(prompts[..3].iter().all(|p| p.contains(asked)));
        assert!(prompts[3..].iter().all(|p| !p.contains(asked)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_tokens_until_resumed() {
        let mut run = start(1, 1, 20);
        run.until(is_token).await;
        run.commands.send(Command::Pause).unwrap();
        let paused = run
            .until(|e| matches!(e, SimEvent::Moderated(Moderation::Paused)))
            .await;
        assert!(paused.len() <= 2, "at most the token in flight: {paused:?}");
        // The stream runs to its end meanwhile; nothing is shown.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(run.events.try_recv().is_err(), "nothing while paused");
        run.commands.send(Command::Pause).unwrap(); // no change, no event
        run.commands.send(Command::Resume).unwrap();
        let resumed = run.until(|e| matches!(e, SimEvent::TurnEnded { .. })).await;
        assert_eq!(resumed[0], SimEvent::Moderated(Moderation::Resumed));
        let (outcome, transcript, _, _) = run.finish().await;
        assert_eq!(outcome, Outcome::Completed);
        let words: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
        assert_eq!(transcript.turns[0].text.trim(), words.join(" "));
        assert!(transcript.turns[0].stance.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn skip_ends_the_turn_where_it_stands_and_the_next_one_speaks() {
        let mut run = start(2, 1, 50);
        run.until(is_token).await;
        run.commands.send(Command::Skip).unwrap();
        let skipped = run.until(|e| matches!(e, SimEvent::TurnEnded { .. })).await;
        assert!(skipped.contains(&SimEvent::Moderated(Moderation::Skipped { turn: 0 })));
        let (outcome, transcript, _, _) = run.finish().await;
        assert_eq!(outcome, Outcome::Completed);
        assert_eq!(speakers(&transcript), vec![1, 2]);
        assert_eq!(transcript.turns[0].finish_reason, Some(TurnFinish::Skipped));
        assert!(transcript.turns[0].text.split_whitespace().count() < 50);
        assert_eq!(transcript.turns[1].finish_reason, Some(TurnFinish::Stop));
    }

    #[tokio::test(start_paused = true)]
    async fn end_stops_mid_turn_and_completes() {
        let mut run = start(3, 2, 50);
        run.until(is_token).await;
        run.commands
            .send(Command::Ask {
                text: "Last words?".into(),
                audience: false,
            })
            .unwrap();
        run.commands.send(Command::End).unwrap();
        let (outcome, transcript, events, _) = run.finish().await;
        assert_eq!(outcome, Outcome::Completed);
        // The turn ends where it stood; the question asked meanwhile is on
        // record; nobody else speaks.
        assert_eq!(speakers(&transcript), vec![1, 0]);
        assert_eq!(transcript.turns[0].finish_reason, Some(TurnFinish::Ended));
        assert!(events.contains(&SimEvent::Moderated(Moderation::Ended)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_moderator_who_leaves_while_paused_does_not_hang_the_debate() {
        let mut run = start(2, 1, 5);
        run.until(is_token).await;
        run.commands.send(Command::Pause).unwrap();
        run.until(|e| matches!(e, SimEvent::Moderated(Moderation::Paused)))
            .await;
        let Run {
            commands,
            events,
            task,
            backend,
        } = run;
        drop(commands);
        let run = Run {
            commands: mpsc::unbounded_channel().0,
            events,
            task,
            backend,
        };
        let (outcome, transcript, _, _) = run.finish().await;
        assert_eq!(outcome, Outcome::Completed);
        assert_eq!(transcript.turns.len(), 2);
    }

    fn auto(threshold: f64) -> Herding {
        Herding {
            threshold,
            policy: crate::sim::devil::DevilsAdvocate::Auto,
        }
    }

    fn herding_events(events: &[SimEvent]) -> Vec<(u32, Position, usize, usize)> {
        events
            .iter()
            .filter_map(|e| match e {
                SimEvent::Herding {
                    round,
                    position,
                    count,
                    known,
                    ..
                } => Some((*round, *position, *count, *known)),
                _ => None,
            })
            .collect()
    }

    fn devils(events: &[SimEvent]) -> Vec<&Moderation> {
        events
            .iter()
            .filter_map(|e| match e {
                SimEvent::Moderated(m @ Moderation::DevilsAdvocate { .. }) => Some(m),
                _ => None,
            })
            .collect()
    }

    const ASKED: &str = "DEVIL'S ADVOCATE";

    #[tokio::test(start_paused = true)]
    async fn auto_runs_one_devils_advocate_from_the_majority_after_a_herding_round() {
        // All for; personas 2 and 3 tie on the highest interest: 2 speaks.
        let stances = vec![
            "for, interest 5/10",
            "for, interest 9/10",
            "for, interest 9/10",
        ];
        let run = start_with(3, 1, 2, stances, auto(0.8));
        let (outcome, transcript, events, prompts) = run.finish().await;
        assert_eq!(outcome, Outcome::Completed);
        assert_eq!(speakers(&transcript), vec![1, 2, 3, 2]);
        let marked: Vec<bool> = transcript.turns.iter().map(|t| t.devils_advocate).collect();
        assert_eq!(marked, [false, false, false, true]);
        assert_eq!(transcript.turns[3].round, 1);
        assert_eq!(herding_events(&events), vec![(1, Position::For, 3, 3)]);
        let panel = builtin_panel();
        assert_eq!(
            devils(&events),
            vec![&Moderation::DevilsAdvocate {
                turn: 3,
                persona_id: 2,
                speaker: panel[1].name.clone(),
                against: Some(Position::For),
                auto: true,
            }]
        );
        // Announced right after the turn starts, before its first token.
        let at = events
            .iter()
            .position(|e| matches!(e, SimEvent::TurnStarted { turn: 3, .. }))
            .unwrap();
        assert!(matches!(
            events[at + 1],
            SimEvent::Moderated(Moderation::DevilsAdvocate { .. })
        ));
        // Only that turn is asked to argue against, and what against.
        assert!(prompts[..3].iter().all(|p| !p.contains(ASKED)));
        assert!(prompts[3].contains(ASKED), "{}", prompts[3]);
        assert!(
            prompts[3].contains("case against building it"),
            "{}",
            prompts[3]
        );
        assert!(prompts[3].contains(&panel[1].name));
        assert_eq!(
            serde_json::to_string(&events[at + 1]).unwrap(),
            format!(
                r#"{{"event":"moderated","action":"devils_advocate","turn":3,"persona_id":2,"speaker":"{}","against":"for","auto":true}}"#,
                panel[1].name
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn off_sends_the_alarm_but_runs_no_devils_advocate() {
        let run = start_with(3, 2, 2, vec![], Herding::default());
        let (outcome, transcript, events, prompts) = run.finish().await;
        assert_eq!(outcome, Outcome::Completed);
        assert_eq!(speakers(&transcript), vec![1, 2, 3, 1, 2, 3]);
        assert_eq!(
            herding_events(&events),
            vec![(1, Position::For, 3, 3), (2, Position::For, 3, 3)]
        );
        assert!(devils(&events).is_empty());
        assert!(prompts.iter().all(|p| !p.contains(ASKED)));
        let json = serde_json::to_string(
            events
                .iter()
                .find(|e| matches!(e, SimEvent::Herding { .. }))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            json,
            r#"{"event":"herding","round":1,"position":"for","count":3,"known":3,"share":1.0}"#
        );
    }

    #[tokio::test(start_paused = true)]
    async fn below_the_threshold_nothing_happens_and_the_threshold_is_configurable() {
        // Two of three for: 67%.
        let stances = vec![
            "for, interest 5/10",
            "for, interest 6/10",
            "against, interest 8/10",
        ];
        let run = start_with(3, 1, 2, stances.clone(), auto(0.8));
        let (_, transcript, events, _) = run.finish().await;
        assert_eq!(speakers(&transcript), vec![1, 2, 3]);
        assert!(herding_events(&events).is_empty() && devils(&events).is_empty());
        // At 0.6 it herds; the advocate is the most interested of the
        // majority (persona 2), never the dissenter.
        let run = start_with(3, 1, 2, stances, auto(0.6));
        let (_, transcript, events, _) = run.finish().await;
        assert_eq!(speakers(&transcript), vec![1, 2, 3, 2]);
        assert_eq!(herding_events(&events), vec![(1, Position::For, 2, 3)]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_moderator_asks_for_a_devils_advocate_on_demand() {
        let stances = vec![
            "for, interest 5/10",
            "for, interest 6/10",
            "against, interest 8/10",
        ];
        let mut run = start_with(3, 1, 3, stances, Herding::default());
        // Asked during the second turn: heard right after it.
        run.until(|e| matches!(e, SimEvent::TurnStarted { turn: 1, .. }))
            .await;
        run.commands
            .send(Command::DevilsAdvocate { persona_id: None })
            .unwrap();
        let (outcome, transcript, events, prompts) = run.finish().await;
        assert_eq!(outcome, Outcome::Completed);
        // Both so far are for; persona 2 is the more interested: it argues
        // against, then the round goes on. 2 of 3 for is no herd.
        assert_eq!(speakers(&transcript), vec![1, 2, 2, 3]);
        assert!(transcript.turns[2].devils_advocate);
        assert!(
            prompts[2].contains("case against building it"),
            "{}",
            prompts[2]
        );
        assert!(herding_events(&events).is_empty());
        assert!(matches!(
            devils(&events)[..],
            [Moderation::DevilsAdvocate {
                turn: 2,
                persona_id: 2,
                against: Some(Position::For),
                auto: false,
                ..
            }]
        ));
        // The panel's view is argued against: against an "against" panel,
        // the case for.
        let text = crate::sim::devil::devils_advocate_instruction(
            &builtin_panel()[0],
            Some(Position::Against),
        );
        assert!(text.contains("case for building it"), "{text}");
        let parsed: Command = serde_json::from_str(r#"{"command":"devils_advocate"}"#).unwrap();
        assert_eq!(parsed, Command::DevilsAdvocate { persona_id: None });
        let named: Command =
            serde_json::from_str(r#"{"command":"devils_advocate","persona_id":9}"#).unwrap();
        let problem = named.problem(&builtin_panel()[..3]).unwrap();
        assert!(
            problem.contains("persona 9 is not in this debate"),
            "{problem}"
        );
    }

    #[test]
    fn herding_counts_each_personas_latest_known_stance_in_the_round() {
        use crate::sim::devil::herding;
        use crate::sim::stance::Stance;
        let turn = |id: u32, round: u32, stance: Option<(Position, u8)>| Turn {
            persona_id: id,
            round,
            stance: stance.and_then(|(p, i)| Stance::new(p, i)),
            ..Turn::default()
        };
        let f = Some((Position::For, 5));
        let a = Some((Position::Against, 5));
        // One known stance is no herd; unknown ones do not count.
        assert_eq!(herding(&[turn(1, 1, f), turn(2, 1, None)], 1, 0.8), None);
        // Persona 2 changed its mind within the round: its latest counts.
        let turns = [turn(1, 1, f), turn(2, 1, a), turn(3, 1, f), turn(2, 1, f)];
        let herd = herding(&turns, 1, 0.8).unwrap();
        assert_eq!(
            (herd.position, herd.count, herd.known),
            (Position::For, 3, 3)
        );
        // Other rounds and devil's-advocate turns do not count.
        let mut devil = turn(3, 2, a);
        devil.devils_advocate = true;
        let turns = [turn(1, 1, a), turn(1, 2, f), turn(2, 2, f), devil];
        assert_eq!(herding(&turns, 2, 1.0).unwrap().count, 2);
    }

    #[test]
    fn bad_commands_are_named() {
        let panel = builtin_panel()[..2].to_vec();
        let floor = Command::Floor { persona_id: 9 }.problem(&panel).unwrap();
        assert!(floor.contains("persona 9 is not in this debate"), "{floor}");
        let empty = Command::Ask {
            text: " \n ".into(),
            audience: false,
        };
        assert_eq!(empty.problem(&panel).unwrap(), "the question is empty");
        let parsed: Command =
            serde_json::from_str(r#"{"command":"floor","persona_id":2}"#).unwrap();
        assert_eq!(parsed, Command::Floor { persona_id: 2 });
        assert!(serde_json::from_str::<Command>(r#"{"command":"dance"}"#).is_err());
    }
}
