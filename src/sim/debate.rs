//! The debate: selected personas speak in turn for N rounds, each seeing the
//! transcript so far. Progress flows out as [`SimEvent`]s; cancelling is
//! dropping (aborting) the task, which drops the in-flight LLM stream.
//!
//! How a turn ends is recorded ([`TurnFinish`]): on its own (`stop`), where
//! the model began speaking for someone else (`speaker_cut`, see
//! [`TurnFilter`]), or at its token budget (`length`), whether the server
//! stopped it there or the client did: a reply is capped on the client side
//! at `max_tokens` (by the server's streamed usage, else by the estimate of
//! [`ESTIMATE_CHARS_PER_TOKEN`]) and the stream dropped, whatever the server
//! does with `max_tokens`. A turn cut at the limit keeps its text exactly as
//! it was streamed (nothing shown is taken back later) and is marked
//! [`CUT_OFF_MARK`] wherever it is shown: trimming it to the last sentence
//! would either take back words already on screen or hold back every
//! half-sentence while streaming.
//!
//! Every finished turn has token counts: the server's, or, when it sends
//! none (or the stream was dropped at a cut), an estimate flagged as such.
//!
//! Each reply is asked to end with a stance line ("STANCE: for, interest
//! 7/10"): a [`StanceFilter`] takes it out as the turn streams (before the
//! [`TurnFilter`], which would take "STANCE:" for a speaker's label), and
//! the turn keeps what it says ([`Turn::stance`], on `TurnEnded` too).

use std::sync::Arc;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::llm::{
    ChatBackend, ChatChunk, ChatMessage, ChatRequest, FinishReason, TurnNames, Usage,
};
use crate::persona::Persona;

use super::devil::{DevilsAdvocate, advocate, devils_advocate_prompt, herding, majority_now};
use super::moderator::{Chair, DevilRequest, Interrupt, Table};
use super::prompts::{
    CHARS_PER_TOKEN, ESTIMATE_CHARS_PER_TOKEN, estimate_tokens, persona_system_prompt, turn_prompt,
};
use super::stance::{Piece, Position, Stance, StanceFilter};
use super::turn_filter::TurnFilter;

pub const DEFAULT_ROUNDS: u32 = 2;
pub const DEFAULT_MAX_TOKENS_PER_TURN: u32 = 300;

#[derive(Debug, Clone)]
pub struct DebateConfig {
    pub feature: String,
    pub personas: Vec<Persona>,
    pub rounds: u32,
    pub max_tokens_per_turn: u32,
    /// Stop cleanly once the debate has used this many tokens (in + out).
    pub max_tokens_total: Option<u32>,
}

/// The visible mark of a turn that ended at its token limit.
pub const CUT_OFF_MARK: &str = " … (cut off)";

/// How a turn ended: `"stop"`, `"length"`, `"speaker_cut"` or whatever
/// else the server said (`"content_filter"`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum TurnFinish {
    /// The model finished on its own.
    #[default]
    Stop,
    /// The token limit (the server's or the client-side cap): the text may
    /// end mid-sentence.
    Length,
    /// Cut where the model began speaking for another participant.
    SpeakerCut,
    /// The moderator skipped the speaker.
    Skipped,
    /// The moderator ended the debate during the turn.
    Ended,
    Other(String),
}

impl TurnFinish {
    pub fn as_str(&self) -> &str {
        match self {
            TurnFinish::Stop => "stop",
            TurnFinish::Length => "length",
            TurnFinish::SpeakerCut => "speaker_cut",
            TurnFinish::Skipped => "skipped",
            TurnFinish::Ended => "ended",
            TurnFinish::Other(other) => other,
        }
    }

    /// Whether the text stops short (shown with [`CUT_OFF_MARK`]).
    pub fn is_cut_off(&self) -> bool {
        *self == TurnFinish::Length
    }
}

impl From<TurnFinish> for String {
    fn from(finish: TurnFinish) -> String {
        finish.as_str().to_string()
    }
}

impl From<String> for TurnFinish {
    fn from(reason: String) -> TurnFinish {
        match reason.as_str() {
            "stop" => TurnFinish::Stop,
            "length" => TurnFinish::Length,
            "speaker_cut" => TurnFinish::SpeakerCut,
            "skipped" => TurnFinish::Skipped,
            "ended" => TurnFinish::Ended,
            _ => TurnFinish::Other(reason),
        }
    }
}

impl From<FinishReason> for TurnFinish {
    fn from(reason: FinishReason) -> TurnFinish {
        match reason {
            FinishReason::Stop => TurnFinish::Stop,
            FinishReason::Length => TurnFinish::Length,
            FinishReason::Other(other) => TurnFinish::Other(other),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub persona_id: u32,
    pub speaker: String,
    pub round: u32,
    pub text: String,
    /// False when the turn was cut short by an error or a cancel.
    pub complete: bool,
    /// Tokens of this turn: the server's, or an estimate (see
    /// `usage_estimated`); none in sessions from before estimates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Set on answers to a follow-up question: the question asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    /// How the turn ended, once it has (absent in older sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<TurnFinish>,
    /// The server sent no usage: `usage` is estimated from the text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub usage_estimated: bool,
    /// What the turn's stance line said; `None`: unknown (no line, one that
    /// does not read, or a session from before stances).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stance: Option<Stance>,
    /// A question the moderator put to the panel (`text`), not a persona's
    /// turn; `persona_id` is 0 and `speaker` is [`MODERATOR`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub moderator: bool,
    /// The persona argued the case against the panel's majority on
    /// request (see [`super::devil`]): its text is a role, not its view.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub devils_advocate: bool,
}

/// The speaker name of moderator turns.
pub const MODERATOR: &str = "Moderator";

impl Turn {
    pub fn new(persona: &Persona, round: u32) -> Self {
        Turn {
            persona_id: persona.id,
            speaker: persona.name.clone(),
            round,
            text: String::new(),
            complete: false,
            usage: None,
            question: None,
            finish_reason: None,
            usage_estimated: false,
            stance: None,
            moderator: false,
            devils_advocate: false,
        }
    }

    /// The moderator's question, as a finished turn of `round`.
    pub fn moderator_question(text: &str, round: u32) -> Self {
        Turn {
            persona_id: 0,
            speaker: MODERATOR.into(),
            round,
            text: text.to_string(),
            complete: true,
            moderator: true,
            ..Turn::default()
        }
    }

    /// Whether the text stops short at the token limit.
    pub fn is_cut_off(&self) -> bool {
        self.finish_reason
            .as_ref()
            .is_some_and(TurnFinish::is_cut_off)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    Failed,
    /// Stopped cleanly at `max_tokens_total`.
    BudgetReached,
    Cancelled,
}

/// What the debate reports as it runs, in order. `turn` indexes the transcript.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SimEvent {
    /// A debate begins: what it is about and who takes part, so a reader
    /// who joins late (a spectator) can show it.
    DebateStarted {
        feature: String,
        rounds: u32,
        personas: Vec<Participant>,
    },
    TurnStarted {
        turn: usize,
        round: u32,
        persona_id: u32,
        speaker: String,
        /// The follow-up question this turn answers, if it is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        question: Option<String>,
    },
    Token {
        turn: usize,
        text: String,
    },
    TurnEnded {
        turn: usize,
        finish_reason: TurnFinish,
        /// The turn's stance; always sent, `null` when unknown (the turn
        /// had no readable stance line), so a reader can tell "unknown"
        /// from a build that sends none.
        stance: Option<Stance>,
    },
    Usage {
        turn: usize,
        prompt_tokens: u32,
        completion_tokens: u32,
        /// Counted from the text: the server sent no usage.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        estimated: bool,
    },
    /// The server names a model other than the one asked for.
    Model {
        model: String,
    },
    Error {
        turn: Option<usize>,
        message: String,
    },
    /// One position held at least the herding threshold's share of the
    /// stances stated in `round` (`count` of `known`; see [`super::devil`]).
    Herding {
        round: u32,
        position: Position,
        count: usize,
        known: usize,
        share: f64,
    },
    /// The moderator acted (see [`Moderation`]).
    Moderated(Moderation),
    /// The debate (or follow-up) part is over; a report may follow.
    Done {
        outcome: Outcome,
    },
    ReportStarted,
    ReportToken {
        text: String,
    },
    ReportUsage {
        prompt_tokens: u32,
        completion_tokens: u32,
    },
    /// The report, parsed (or the model's text when it could not be).
    ReportReady {
        report: Box<super::report::Report>,
    },
    ReportFailed {
        message: String,
    },
    /// The session file could not be written (sent by the session runner
    /// before the event whose save failed). The session is only in memory.
    SessionSaveFailed {
        path: std::path::PathBuf,
        message: String,
    },
    /// The session file was written again after a failed save.
    SessionSaved {
        path: std::path::PathBuf,
    },
}

/// Who takes part in a debate, as a spectator sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub id: u32,
    pub name: String,
    pub occupation: String,
    pub location: String,
}

impl From<&Persona> for Participant {
    fn from(p: &Persona) -> Self {
        Participant {
            id: p.id,
            name: p.name.clone(),
            occupation: p.occupation.clone(),
            location: p.location.clone(),
        }
    }
}

/// What the moderator did, as an event (`{"event": "moderated", "action":
/// "paused"}`) and in the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Moderation {
    /// No new token is shown until `resumed`.
    Paused,
    Resumed,
    /// The turn was ended where it stood.
    Skipped {
        turn: usize,
    },
    /// This persona speaks next.
    Floor {
        persona_id: u32,
        speaker: String,
    },
    /// A moderator question, turn `turn` of the transcript; `audience`
    /// when it came from a spectator.
    Asked {
        turn: usize,
        text: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        audience: bool,
    },
    /// The debate now has this many rounds.
    RoundAdded {
        rounds: u32,
    },
    /// Ended by the moderator: no more turns; the report follows.
    Ended,
    /// Turn `turn` (sent right after it starts) is a devil's advocate:
    /// `speaker` argues against `against` (the panel's majority; `null`
    /// when no stance was known). `auto`: the debate's own, on herding.
    DevilsAdvocate {
        turn: usize,
        persona_id: u32,
        speaker: String,
        against: Option<Position>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        auto: bool,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Transcript {
    pub turns: Vec<Turn>,
    pub usage: Usage,
    /// The model the server named, when it differs from the one asked for.
    pub model: Option<String>,
}

impl Transcript {
    /// Tokens used so far: every finished turn has counts (estimated when
    /// the server sent none); one without counts is estimated by its length.
    pub fn tokens_used(&self, estimate_prompt_chars: usize) -> u32 {
        self.turns
            .iter()
            .map(|t| match t.usage {
                Some(u) => u.total(),
                None => estimate_tokens(estimate_prompt_chars + t.text.len()),
            })
            .sum()
    }
}

/// Runs a whole debate, sending events as it goes; returns the transcript.
/// Stops at the first error (after reporting it), keeping what was said.
/// If the receiver goes away the debate stops too.
pub async fn run_debate(
    backend: Arc<dyn ChatBackend>,
    config: DebateConfig,
    tx: mpsc::Sender<SimEvent>,
) -> Transcript {
    let mut transcript = Transcript::default();
    let outcome = debate_rounds(
        &*backend,
        &config,
        &tx,
        &mut transcript,
        &mut Chair::absent(),
    )
    .await;
    let _ = tx.send(SimEvent::Done { outcome }).await;
    transcript
}

/// Runs the rounds into `transcript` (which may already hold turns) and
/// says how it ended, taking the moderator's commands from `chair` between
/// tokens and turns. Does not send `Done`.
pub async fn debate_rounds(
    backend: &dyn ChatBackend,
    config: &DebateConfig,
    tx: &mpsc::Sender<SimEvent>,
    transcript: &mut Transcript,
    chair: &mut Chair,
) -> Outcome {
    if config.personas.is_empty() {
        return refuse(tx, "select at least one persona").await;
    }
    if config.feature.trim().is_empty() {
        return refuse(tx, "describe the feature first").await;
    }
    let started = SimEvent::DebateStarted {
        feature: config.feature.clone(),
        rounds: config.rounds,
        personas: config.personas.iter().map(Participant::from).collect(),
    };
    if tx.send(started).await.is_err() {
        return Outcome::Cancelled;
    }
    let context = backend.discover_context().await;
    let mut names: Vec<&str> = config.personas.iter().map(|p| p.name.as_str()).collect();
    names.push(MODERATOR);
    let mut round = 1;
    while round <= chair.rounds(config.rounds) {
        // Who has yet to speak this round, in order (the floor goes first).
        let mut order: std::collections::VecDeque<usize> = (0..config.personas.len()).collect();
        let mut herd_checked = false;
        loop {
            let table = Table {
                personas: &config.personas,
                rounds: config.rounds,
                speaking: false,
            };
            if let Err(outcome) = chair.between_turns(&table, tx, transcript).await {
                return outcome;
            }
            if chair.ended {
                return Outcome::Completed;
            }
            // A devil's advocate asked for goes before the next speaker.
            let next = if let Some(request) = chair.next_devil() {
                Next::Devil(request)
            } else if let Some(i) = chair.next_floor() {
                order.retain(|&j| j != i);
                Next::Persona(i)
            } else if let Some(i) = order.pop_front() {
                Next::Persona(i)
            } else if !herd_checked {
                // The round is over: did it herd?
                herd_checked = true;
                if let Err(outcome) = watch_herding(chair, tx, transcript, round).await {
                    return outcome;
                }
                continue;
            } else {
                break;
            };
            let place = Place {
                backend,
                config,
                context,
                names: &names,
                round,
            };
            if let Err(outcome) = take_turn(&place, next, tx, transcript, chair).await {
                return outcome;
            }
            if chair.ended {
                // Questions asked during the last turn still go on record.
                if let Err(outcome) = chair.put_questions(tx, transcript).await {
                    return outcome;
                }
                return Outcome::Completed;
            }
        }
        round += 1;
    }
    // A question asked during the last turn still goes on record.
    if let Err(outcome) = chair.put_questions(tx, transcript).await {
        return outcome;
    }
    Outcome::Completed
}

/// What speaks next in a round.
enum Next {
    /// The persona at this index of the debate's personas.
    Persona(usize),
    Devil(DevilRequest),
}

/// What a turn needs to know of the debate around it.
struct Place<'a> {
    backend: &'a dyn ChatBackend,
    config: &'a DebateConfig,
    context: Option<u32>,
    names: &'a [&'a str],
    round: u32,
}

/// Sends `herding` when `round` herded, and with the policy `auto` asks
/// for a devil's advocate against the majority.
async fn watch_herding(
    chair: &mut Chair,
    tx: &mpsc::Sender<SimEvent>,
    transcript: &Transcript,
    round: u32,
) -> Result<(), Outcome> {
    let Some(herd) = herding(&transcript.turns, round, chair.herding.threshold) else {
        return Ok(());
    };
    tracing::info!(target: "debate", round, position = %herd.position, count = herd.count, known = herd.known, "herding");
    let event = SimEvent::Herding {
        round,
        position: herd.position,
        count: herd.count,
        known: herd.known,
        share: herd.share(),
    };
    tx.send(event).await.map_err(|_| Outcome::Cancelled)?;
    if chair.herding.policy == DevilsAdvocate::Auto {
        chair.ask_devil(DevilRequest {
            persona_id: None,
            against: Some(herd.position),
            auto: true,
        });
    }
    Ok(())
}

/// One turn of the debate: a persona's, or a devil's advocate's.
async fn take_turn(
    place: &Place<'_>,
    next: Next,
    tx: &mpsc::Sender<SimEvent>,
    transcript: &mut Transcript,
    chair: &mut Chair,
) -> Result<(), Outcome> {
    let Place {
        backend,
        config,
        context,
        names,
        round,
    } = *place;
    let rounds = chair.rounds(config.rounds);
    let (index, devil) = match next {
        Next::Persona(i) => (i, None),
        Next::Devil(request) => {
            let against = request.against.or_else(|| majority_now(&transcript.turns));
            let index = match request.persona_id {
                Some(id) => config.personas.iter().position(|p| p.id == id),
                None => advocate(&transcript.turns, &config.personas, against),
            };
            let Some(index) = index else {
                return Ok(());
            };
            (index, Some((against, request.auto)))
        }
    };
    let persona = &config.personas[index];
    let system = persona_system_prompt(persona);
    let budget = context.map(|ctx| prompt_budget(ctx, config.max_tokens_per_turn, &system));
    let user = match devil {
        Some((against, _)) => devils_advocate_prompt(
            &config.feature,
            &transcript.turns,
            persona,
            round,
            rounds,
            against,
            budget,
        ),
        None => turn_prompt(
            &config.feature,
            &transcript.turns,
            persona,
            round,
            rounds,
            budget,
        ),
    };
    let mut max_tokens = config.max_tokens_per_turn;
    if let Some(limit) = config.max_tokens_total {
        let prompt_chars = system.len() + user.len();
        let used = transcript.tokens_used(prompt_chars);
        let prompt_estimate = estimate_tokens(prompt_chars);
        // Stop before a turn that cannot fit its prompt and a short reply.
        if used + prompt_estimate + 16 > limit {
            tracing::info!(target: "debate", used, limit, "token budget reached");
            return Err(Outcome::BudgetReached);
        }
        max_tokens = max_tokens.min(limit - used - prompt_estimate);
    }
    let request = ChatRequest::new(
        vec![ChatMessage::system(system), ChatMessage::user(user)],
        max_tokens,
    );
    let mut turn = Turn::new(persona, round);
    turn.devils_advocate = devil.is_some();
    let announce = devil.map(|(against, auto)| Moderation::DevilsAdvocate {
        turn: transcript.turns.len(),
        persona_id: persona.id,
        speaker: persona.name.clone(),
        against,
        auto,
    });
    let table = Table {
        personas: &config.personas,
        rounds: config.rounds,
        speaking: true,
    };
    let speaker = Speaker {
        turn,
        participants: names,
        moderated: Some((chair, table)),
        announce,
    };
    speak(backend, request, speaker, tx, transcript).await
}

/// Ends a run before it starts, saying why.
pub async fn refuse(tx: &mpsc::Sender<SimEvent>, message: &str) -> Outcome {
    let _ = tx
        .send(SimEvent::Error {
            turn: None,
            message: message.into(),
        })
        .await;
    Outcome::Failed
}

/// How often a turn is asked in all when each reply speaks only for
/// someone else (see [`speak`]).
const TURN_ATTEMPTS: u32 = 3;

/// Who speaks a turn, whose names end it (see [`TurnFilter`]), and the
/// moderator's chair while it streams (none for follow-ups).
pub struct Speaker<'a> {
    pub turn: Turn,
    pub participants: &'a [&'a str],
    pub moderated: Option<(&'a mut Chair, Table<'a>)>,
    /// Sent right after `turn_started`, before any token (a
    /// devil's-advocate turn says so here).
    pub announce: Option<Moderation>,
}

/// Streams one persona's turn into the transcript and out as events.
/// `Err` carries how the whole run ends (an error, or nobody listening).
pub async fn speak(
    backend: &dyn ChatBackend,
    request: ChatRequest,
    speaker: Speaker<'_>,
    tx: &mpsc::Sender<SimEvent>,
    transcript: &mut Transcript,
) -> Result<(), Outcome> {
    let Speaker {
        turn: new_turn,
        participants,
        moderated,
        announce,
    } = speaker;
    let mut absent = Chair::absent();
    let no_table = Table {
        personas: &[],
        rounds: 0,
        speaking: true,
    };
    let (chair, table) = match moderated {
        Some((chair, table)) => (chair, table),
        None => (&mut absent, no_table),
    };
    let turn = transcript.turns.len();
    let started = SimEvent::TurnStarted {
        turn,
        round: new_turn.round,
        persona_id: new_turn.persona_id,
        speaker: new_turn.speaker.clone(),
        question: new_turn.question.clone(),
    };
    let speaker = new_turn.speaker.clone();
    transcript.turns.push(new_turn);
    tx.send(started).await.map_err(|_| Outcome::Cancelled)?;
    if let Some(action) = announce {
        tracing::info!(target: "debate", ?action, "moderator");
        tx.send(SimEvent::Moderated(action))
            .await
            .map_err(|_| Outcome::Cancelled)?;
    }
    tracing::info!(target: "debate", turn, speaker = %speaker, "turn started");
    let began = std::time::Instant::now();
    let asked_model = backend.info().model;
    let mut request = request;
    request.names = Some(TurnNames {
        own: speaker.clone(),
        others: participants
            .iter()
            .filter(|n| **n != speaker)
            .map(ToString::to_string)
            .collect(),
    });
    let (finish, stance) = loop {
        let mut meter = Meter {
            prompt_chars: request.messages.iter().map(|m| m.content.len()).sum(),
            max_tokens: request.max_tokens,
            ..Meter::default()
        };
        let mut stream = backend.stream(request.clone());
        let mut filters = Filters {
            stance: StanceFilter::new(),
            speaker: TurnFilter::new(&speaker, participants.iter().copied()),
            read: None,
        };
        let mut reason: Option<TurnFinish> = None;
        // What the stream sent while the moderator paused: shown on resume.
        let mut held = std::collections::VecDeque::new();
        let mut stream_over = false;
        let finish = loop {
            let next = if !chair.paused
                && let Some(item) = held.pop_front()
            {
                item
            } else {
                tokio::select! {
                    biased;
                    command = chair.recv(), if chair.listening() => {
                        if let Some(command) = command {
                            chair.take(command, &table, tx).await?;
                        }
                        if let Some(interrupt) = chair.interrupt.take() {
                            let finish = match interrupt {
                                Interrupt::Skip => {
                                    let skipped = Moderation::Skipped { turn };
                                    tx.send(SimEvent::Moderated(skipped)).await.map_err(|_| Outcome::Cancelled)?;
                                    TurnFinish::Skipped
                                }
                                Interrupt::End => TurnFinish::Ended,
                            };
                            // What was shown stays; what the filters held is let out.
                            let pieces = filters.stance.finish(true);
                            if !filters.pass(tx, transcript, turn, pieces).await? {
                                show(tx, transcript, turn, filters.speaker.finish()).await?;
                            }
                            break finish;
                        }
                        continue;
                    }
                    item = stream.next(), if !stream_over => {
                        stream_over = item.is_none();
                        if chair.paused {
                            held.push_back(item);
                            continue;
                        }
                        item
                    }
                    // Unreachable: a paused chair is listening.
                    else => None,
                }
            };
            let Some(item) = next else {
                // Release what the filters held back for a possible stop.
                let truncated = reason.as_ref().is_some_and(TurnFinish::is_cut_off);
                let pieces = filters.stance.finish(truncated);
                if filters.pass(tx, transcript, turn, pieces).await? {
                    break TurnFinish::SpeakerCut;
                }
                show(tx, transcript, turn, filters.speaker.finish()).await?;
                break reason.unwrap_or_default();
            };
            match item {
                Ok(ChatChunk::Text(text)) => {
                    let (text, capped) = meter.take(&text);
                    let mut pieces = filters.stance.push(text);
                    if capped {
                        pieces.extend(filters.stance.finish(true));
                    }
                    if filters.pass(tx, transcript, turn, pieces).await? {
                        // The model started speaking for someone else: end the
                        // turn here (dropping the stream cancels it).
                        tracing::debug!(target: "debate", turn, "turn cut at another speaker's label");
                        break TurnFinish::SpeakerCut;
                    }
                    if capped {
                        tracing::info!(target: "debate", turn, max_tokens = meter.max_tokens, "turn capped at its token budget");
                        show(tx, transcript, turn, filters.speaker.finish()).await?;
                        break TurnFinish::Length;
                    }
                }
                Ok(ChatChunk::Usage(usage)) => {
                    meter.server_usage(usage);
                    transcript.usage += usage;
                    *transcript.turns[turn].usage.get_or_insert_default() += usage;
                    let event = SimEvent::Usage {
                        turn,
                        prompt_tokens: usage.prompt_tokens,
                        completion_tokens: usage.completion_tokens,
                        estimated: false,
                    };
                    tx.send(event).await.map_err(|_| Outcome::Cancelled)?;
                }
                Ok(ChatChunk::Finish(r)) => reason = Some(TurnFinish::from(r)),
                Ok(ChatChunk::Model(model)) => {
                    if model != asked_model && transcript.model.as_ref() != Some(&model) {
                        transcript.model = Some(model.clone());
                        let event = SimEvent::Model { model };
                        tx.send(event).await.map_err(|_| Outcome::Cancelled)?;
                    }
                }
                Err(error) => {
                    tracing::warn!(target: "llm", turn, latency_ms = began.elapsed().as_millis() as u64, %error, "turn failed");
                    drop(stream);
                    if meter.received_chars > 0 {
                        estimate_usage(tx, transcript, turn, &meter).await?;
                    }
                    let _ = tx
                        .send(SimEvent::Error {
                            turn: Some(turn),
                            message: error.to_string(),
                        })
                        .await;
                    return Err(Outcome::Failed);
                }
            }
        };
        drop(stream);
        estimate_usage(tx, transcript, turn, &meter).await?;
        // A small model may open with another speaker's label and say nothing
        // as itself; nothing was shown, so the turn is asked again.
        let spoke_for_another =
            finish == TurnFinish::SpeakerCut && transcript.turns[turn].text.is_empty();
        if spoke_for_another && request.attempt + 1 < TURN_ATTEMPTS {
            request.attempt += 1;
            tracing::info!(target: "debate", turn, attempt = request.attempt, "turn opened as another speaker; asking again");
            continue;
        }
        break (finish, filters.read);
    };
    let t = &mut transcript.turns[turn];
    t.complete = true;
    t.finish_reason = Some(finish.clone());
    t.stance = stance;
    tracing::info!(target: "llm", turn, latency_ms = began.elapsed().as_millis() as u64, finish = finish.as_str(), stance = ?stance, "turn finished");
    tx.send(SimEvent::TurnEnded {
        turn,
        finish_reason: finish,
        stance,
    })
    .await
    .map_err(|_| Outcome::Cancelled)
}

/// A streamed turn's filters, in the order text passes them.
struct Filters {
    /// Takes the stance line out.
    stance: StanceFilter,
    /// Keeps the turn to its speaker.
    speaker: TurnFilter,
    /// The stance of the last stance line read (before any cut).
    read: Option<Stance>,
}

impl Filters {
    /// Passes the stance filter's pieces on, in order; true when the turn
    /// is cut at another speaker (a stance line after the cut is not read).
    async fn pass(
        &mut self,
        tx: &mpsc::Sender<SimEvent>,
        transcript: &mut Transcript,
        turn: usize,
        pieces: Vec<Piece>,
    ) -> Result<bool, Outcome> {
        for piece in pieces {
            match piece {
                Piece::Text(text) => {
                    let (shown, stop) = self.speaker.push(&text);
                    show(tx, transcript, turn, shown).await?;
                    if stop {
                        return Ok(true);
                    }
                }
                Piece::Stance(stance) => self.read = stance,
            }
        }
        Ok(false)
    }
}

/// Adds shown text to the turn and sends it.
async fn show(
    tx: &mpsc::Sender<SimEvent>,
    transcript: &mut Transcript,
    turn: usize,
    text: String,
) -> Result<(), Outcome> {
    if text.is_empty() {
        return Ok(());
    }
    transcript.turns[turn].text.push_str(&text);
    tx.send(SimEvent::Token { turn, text })
        .await
        .map_err(|_| Outcome::Cancelled)
}

/// Counts the turn by estimate when the server sent no usage for it.
async fn estimate_usage(
    tx: &mpsc::Sender<SimEvent>,
    transcript: &mut Transcript,
    turn: usize,
    meter: &Meter,
) -> Result<(), Outcome> {
    if meter.server_completion.is_some() {
        return Ok(());
    }
    let usage = meter.estimate();
    transcript.usage += usage;
    let t = &mut transcript.turns[turn];
    *t.usage.get_or_insert_default() += usage;
    t.usage_estimated = true;
    let event = SimEvent::Usage {
        turn,
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        estimated: true,
    };
    tx.send(event).await.map_err(|_| Outcome::Cancelled)
}

/// How far past its budget (by estimate) a reply may run before the client
/// cuts it, when the server reports no usage while streaming.
const ESTIMATE_SLACK_PERCENT: usize = 150;

/// Measures a reply against its token budget as it streams.
#[derive(Debug, Default)]
struct Meter {
    prompt_chars: usize,
    max_tokens: u32,
    /// Every character the model sent (including any cut by the filter).
    received_chars: usize,
    /// Completion tokens the server has reported so far, if any.
    server_completion: Option<u32>,
    /// Characters since the server's last report.
    chars_since_usage: usize,
}

impl Meter {
    /// The part of `text` within the budget, and whether the budget ends
    /// the reply here (the rest of `text`, however long, is dropped).
    fn take<'t>(&mut self, text: &'t str) -> (&'t str, bool) {
        let reported = self.server_completion.unwrap_or(0);
        let mut room_chars =
            self.max_tokens.saturating_sub(reported) as usize * ESTIMATE_CHARS_PER_TOKEN;
        if self.server_completion.is_none() {
            // Counting by estimate only: leave the server's own limit room
            // to end the reply first (an estimate of 4 characters a token
            // runs ahead of real tokens on short words), and catch only a
            // server that ignores `max_tokens`.
            room_chars = room_chars * ESTIMATE_SLACK_PERCENT / 100;
        }
        let room = room_chars.saturating_sub(self.chars_since_usage);
        let (kept, capped) = if text.len() > room {
            let mut end = room;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            (&text[..end], true)
        } else {
            (text, false)
        };
        self.received_chars += kept.len();
        self.chars_since_usage += kept.len();
        (kept, capped)
    }

    fn server_usage(&mut self, usage: Usage) {
        *self.server_completion.get_or_insert(0) += usage.completion_tokens;
        self.chars_since_usage = 0;
    }

    fn estimate(&self) -> Usage {
        Usage {
            prompt_tokens: estimate_tokens(self.prompt_chars),
            completion_tokens: estimate_tokens(self.received_chars),
        }
    }
}

/// Characters the turn prompt may take so that system prompt, turn prompt,
/// template overhead and the reply fit in `context` tokens.
pub fn prompt_budget(context: u32, max_reply_tokens: u32, system: &str) -> usize {
    const TEMPLATE_OVERHEAD_TOKENS: usize = 48;
    let system_tokens = system.len().div_ceil(CHARS_PER_TOKEN);
    (context as usize)
        .saturating_sub(max_reply_tokens as usize + TEMPLATE_OVERHEAD_TOKENS + system_tokens)
        * CHARS_PER_TOKEN
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{BackendInfo, ChatStream, LlmError};
    use crate::persona::builtin_panel;
    use std::sync::Mutex;

    /// Replies with scripted chunks, one script per call.
    struct Scripted {
        replies: Mutex<Vec<Vec<Result<ChatChunk, LlmError>>>>,
        seen: Mutex<Vec<ChatRequest>>,
    }

    impl ChatBackend for Scripted {
        fn info(&self) -> BackendInfo {
            BackendInfo {
                kind: "test",
                model: "scripted".into(),
                endpoint: "memory".into(),
            }
        }
        fn stream(&self, request: ChatRequest) -> ChatStream {
            self.seen.lock().unwrap().push(request);
            let reply = self.replies.lock().unwrap().remove(0);
            Box::pin(futures::stream::iter(reply))
        }
    }

    fn text(s: &str) -> Result<ChatChunk, LlmError> {
        Ok(ChatChunk::Text(s.into()))
    }

    async fn run(
        replies: Vec<Vec<Result<ChatChunk, LlmError>>>,
        personas: usize,
        rounds: u32,
    ) -> (Vec<SimEvent>, Transcript, Vec<ChatRequest>) {
        let backend = Arc::new(Scripted {
            replies: Mutex::new(replies),
            seen: Mutex::new(vec![]),
        });
        let (tx, mut rx) = mpsc::channel(64);
        let config = DebateConfig {
            feature: "Offline mode".into(),
            personas: builtin_panel()[..personas].to_vec(),
            rounds,
            max_tokens_per_turn: 100,
            max_tokens_total: None,
        };
        let handle = tokio::spawn(run_debate(backend.clone(), config, tx));
        let mut events = vec![];
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        let transcript = handle.await.unwrap();
        let seen = backend.seen.lock().unwrap().clone();
        (events, transcript, seen)
    }

    #[tokio::test]
    async fn turns_follow_rounds_and_see_the_transcript() {
        let replies = (0..4)
            .map(|i| {
                vec![
                    text(&format!("reply {i}")),
                    Ok(ChatChunk::Usage(Usage {
                        prompt_tokens: 10,
                        completion_tokens: 2,
                    })),
                ]
            })
            .collect();
        let (events, transcript, seen) = run(replies, 2, 2).await;
        let speakers: Vec<_> = transcript
            .turns
            .iter()
            .map(|t| (t.persona_id, t.round))
            .collect();
        assert_eq!(speakers, vec![(1, 1), (2, 1), (1, 2), (2, 2)]);
        assert!(transcript.turns.iter().all(|t| t.complete));
        assert_eq!(transcript.usage.total(), 48);
        assert!(seen[3].messages[1].content.contains("reply 2"));
        assert!(seen[3].messages[1].content.contains("reply 0"));
        assert_eq!(
            events.last(),
            Some(&SimEvent::Done {
                outcome: Outcome::Completed
            })
        );
    }

    #[tokio::test]
    async fn an_error_stops_the_debate_and_keeps_what_was_said() {
        let replies = vec![
            vec![text("first")],
            vec![text("half"), Err(LlmError::EndedEarly)],
        ];
        let (events, transcript, _) = run(replies, 3, 1).await;
        assert_eq!(transcript.turns.len(), 2);
        assert_eq!(transcript.turns[1].text, "half");
        assert!(!transcript.turns[1].complete);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, SimEvent::Error { turn: Some(1), .. }))
        );
        assert_eq!(
            events.last(),
            Some(&SimEvent::Done {
                outcome: Outcome::Failed
            })
        );
    }

    #[tokio::test]
    async fn empty_selection_is_a_clear_error() {
        let (events, _, _) = run(vec![], 0, 1).await;
        assert!(
            matches!(&events[0], SimEvent::Error { message, .. } if message.contains("select"))
        );
    }

    #[tokio::test]
    async fn a_turn_that_drifts_into_another_speaker_is_cut() {
        let replies = vec![
            vec![text("Good idea.\nKwame"), text(" Mensah: I disagree.")],
            vec![text("Kwame Mensah: Too costly.")],
        ];
        let (_, transcript, _) = run(replies, 2, 1).await;
        assert_eq!(transcript.turns[0].text, "Good idea.");
        assert!(transcript.turns[0].complete);
        assert_eq!(transcript.turns[1].text, "Too costly.");
    }

    #[tokio::test]
    async fn a_reply_is_capped_at_its_budget_and_counted_by_estimate() {
        // max_tokens_per_turn is 100: about 400 characters, with the
        // estimate's slack 600.
        let huge = "é".repeat(10_000);
        let replies = vec![
            vec![text(&huge), text("never read")],
            // Usage streamed as it goes: 90 tokens reported, then 40 chars
            // (10 tokens) more fit, then the cap.
            vec![
                text("a"),
                Ok(ChatChunk::Usage(Usage {
                    prompt_tokens: 50,
                    completion_tokens: 90,
                })),
                text(&"b".repeat(100)),
            ],
        ];
        let (events, transcript, _) = run(replies, 2, 1).await;
        let first = &transcript.turns[0];
        assert_eq!(first.text.len(), 600, "cut on a character boundary");
        assert_eq!(first.finish_reason, Some(TurnFinish::Length));
        assert!(first.usage_estimated && first.is_cut_off());
        assert_eq!(first.usage.unwrap().completion_tokens, 150);
        let second = &transcript.turns[1];
        assert_eq!(second.text, format!("a{}", "b".repeat(40)));
        assert_eq!(second.finish_reason, Some(TurnFinish::Length));
        assert!(!second.usage_estimated);
        assert!(events.iter().any(|e| matches!(
            e,
            SimEvent::TurnEnded {
                turn: 0,
                finish_reason: TurnFinish::Length,
                stance: None,
            }
        )));
    }

    #[tokio::test]
    async fn a_cut_turn_keeps_estimated_counts_and_a_server_stop_is_recorded() {
        let replies = vec![
            vec![text("Fine.\nLadafía: me next"), text(" and more")],
            vec![
                Ok(ChatChunk::Model("served".into())),
                text("Too long"),
                Ok(ChatChunk::Finish(FinishReason::Length)),
            ],
        ];
        let (events, transcript, seen) = run(replies, 2, 1).await;
        let cut = &transcript.turns[0];
        assert_eq!(cut.text, "Fine.");
        assert_eq!(cut.finish_reason, Some(TurnFinish::SpeakerCut));
        let usage = cut.usage.unwrap();
        let prompt: usize = seen[0].messages.iter().map(|m| m.content.len()).sum();
        assert_eq!(usage.prompt_tokens, estimate_tokens(prompt));
        assert_eq!(
            usage.completion_tokens,
            estimate_tokens("Fine.\nLadafía: me next".len())
        );
        assert!(transcript.turns[1].is_cut_off());
        assert_eq!(transcript.usage.total(), transcript.tokens_used(0));
        assert!(events.contains(&SimEvent::Model {
            model: "served".into()
        }));
        assert_eq!(
            serde_json::to_string(&SimEvent::TurnEnded {
                turn: 1,
                finish_reason: TurnFinish::SpeakerCut,
                stance: None,
            })
            .unwrap(),
            r#"{"event":"turn_ended","turn":1,"finish_reason":"speaker_cut","stance":null}"#
        );
    }

    #[tokio::test]
    async fn a_reply_that_only_speaks_for_someone_else_is_asked_again() {
        let replies = vec![
            // Turn 0: twice someone else's label first, then its own words.
            vec![text("Kwame Mensah: not mine")],
            vec![text("**Kwame:** not mine either")],
            vec![text("Mine at last.")],
            // Turn 1: three times someone else's: left empty.
            vec![text("Maria Lopez: no")],
            vec![text("Maria: no")],
            vec![text("Maria Lopez: no")],
            // Turn 2: words first, then a label: cut, not asked again.
            vec![text("Mine.\nKwame: no")],
            vec![text("Fine.")],
        ];
        let (events, transcript, seen) = run(replies, 2, 2).await;
        let texts: Vec<&str> = transcript.turns.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["Mine at last.", "", "Mine.", "Fine."]);
        let attempts: Vec<u32> = seen.iter().map(|r| r.attempt).collect();
        assert_eq!(attempts, [0, 1, 2, 0, 1, 2, 0, 0]);
        // The same prompt each time; only the attempt differs.
        assert_eq!(seen[0].messages, seen[2].messages);
        assert_eq!(
            transcript.turns[1].finish_reason,
            Some(TurnFinish::SpeakerCut)
        );
        // Every attempt's tokens are counted.
        let estimate = estimate_tokens("Maria Lopez: no".len());
        assert!(transcript.turns[1].usage.unwrap().completion_tokens >= 3 * estimate - 1);
        let started = events
            .iter()
            .filter(|e| matches!(e, SimEvent::TurnStarted { .. }))
            .count();
        assert_eq!(started, 4, "a retry is not a new turn");
    }

    #[tokio::test]
    async fn the_stance_line_is_read_kept_on_the_turn_and_never_shown() {
        use crate::sim::stance::Position;
        let replies = vec![
            // Split inside the marker, with the server's stop after it.
            vec![
                text("Good idea.\nST"),
                text("ANCE: for, inter"),
                text("est 7/10"),
                Ok(ChatChunk::Finish(FinishReason::Stop)),
            ],
            // No stance line: unknown.
            vec![text("Too costly.")],
            // A stance line, then someone else's: read, then cut.
            vec![text(
                "Maybe.\nSTANCE: mixed, interest 4/10\nKwame Mensah: no",
            )],
            // Someone else's line, then a stance line: not this turn's.
            vec![text(
                "Sure.\nKwame: STANCE line next\nSTANCE: against, interest 2/10",
            )],
            // Cut at the server's token limit inside the line: unknown.
            vec![
                text("Hmm.\nSTANCE: for, interest 1"),
                Ok(ChatChunk::Finish(FinishReason::Length)),
            ],
            // A stance line that does not read: taken out, unknown.
            vec![text("OK.\nStance: for|mixed|against, interest N/10")],
        ];
        let (events, transcript, seen) = run(replies, 2, 3).await;
        let turns: Vec<(&str, Option<Stance>)> = transcript
            .turns
            .iter()
            .map(|t| (t.text.as_str(), t.stance))
            .collect();
        assert_eq!(
            turns,
            vec![
                ("Good idea.", Stance::new(Position::For, 7)),
                ("Too costly.", None),
                ("Maybe.", Stance::new(Position::Mixed, 4)),
                ("Sure.", None),
                ("Hmm.", None),
                ("OK.", None),
            ]
        );
        let finishes: Vec<_> = transcript
            .turns
            .iter()
            .map(|t| t.finish_reason.clone().unwrap())
            .collect();
        assert_eq!(
            finishes,
            [
                TurnFinish::Stop,
                TurnFinish::Stop,
                TurnFinish::SpeakerCut,
                TurnFinish::SpeakerCut,
                TurnFinish::Length,
                TurnFinish::Stop
            ]
        );
        let mut ended = vec![];
        for e in &events {
            match e {
                SimEvent::Token { text, .. } => {
                    assert!(!text.to_lowercase().contains("stance"), "{text:?} shown")
                }
                SimEvent::TurnEnded { stance, .. } => ended.push(*stance),
                _ => {}
            }
        }
        let kept: Vec<_> = transcript.turns.iter().map(|t| t.stance).collect();
        assert_eq!(ended, kept);
        // The next speaker sees the text without the line.
        assert!(seen[1].messages[1].content.contains("Good idea.”\n"));
        assert!(!seen[5].messages[1].content.contains("STANCE: for,"));
        assert!(
            seen[0].messages[1]
                .content
                .contains("STANCE: for|mixed|against")
        );
        assert_eq!(
            serde_json::to_string(&SimEvent::TurnEnded {
                turn: 0,
                finish_reason: TurnFinish::Stop,
                stance: Stance::new(Position::For, 7),
            })
            .unwrap(),
            r#"{"event":"turn_ended","turn":0,"finish_reason":"stop","stance":{"position":"for","interest":7}}"#
        );
    }

    #[test]
    fn events_serialise_as_tagged_json_lines() {
        let e = SimEvent::Token {
            turn: 3,
            text: "hi".into(),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"token","turn":3,"text":"hi"}"#
        );
    }
}
