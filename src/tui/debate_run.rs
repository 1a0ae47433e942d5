//! The debate on screen: starting and cancelling a run (debate or
//! follow-up), following its events into the conversation view, and opening
//! a saved session as if it had just run.

use std::path::Path;

use super::action::Effect;
use super::app::{App, Focus, NoticeLevel, Phase, RunState, Screen};
use super::panes::conversation::{Entry, EntryKind};
use super::theme;
use super::views;
use crate::llm::Usage;
use crate::services::HOW_TO_CONFIGURE;
use crate::sim::debate::{DebateConfig, MODERATOR, Moderation, Outcome, SimEvent};
use crate::sim::devil::herding_text;
use crate::sim::session::{Session, SessionStatus};
use crate::text::plural;

impl App {
    pub(crate) fn start(&mut self) -> Option<Effect> {
        if self.is_running() {
            self.set_notice(
                NoticeLevel::Info,
                "A debate is already running: Esc cancels it",
            );
            return None;
        }
        if let Some(path) = self.missing_model.clone() {
            self.offer_model(path);
            return None;
        }
        if self.backend.is_none() {
            let text =
                format!("Cannot start: no LLM backend is configured. To fix: {HOW_TO_CONFIGURE}.");
            self.conversation
                .push(Entry::new(EntryKind::Error, text.clone()));
            self.conversation.follow_tail();
            self.set_notice(
                NoticeLevel::Error,
                "No LLM backend configured: see the conversation pane",
            );
            return None;
        }
        let personas = self.selected_personas();
        if personas.is_empty() {
            let hint = if self.personas.is_empty() {
                "The panel is empty: add a persona first (n in the persona list, or i to generate some)"
            } else {
                "Select at least one persona first (Space in the persona list, a for all)"
            };
            self.set_notice(NoticeLevel::Error, hint);
            self.set_focus(Focus::Personas);
            return None;
        }
        let feature = self.feature_text();
        if feature.trim().is_empty() {
            self.set_notice(
                NoticeLevel::Error,
                "Describe the feature in the editor first",
            );
            self.set_focus(Focus::Editor);
            return None;
        }
        let first_line = feature.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        self.conversation.push(Entry::new(
            EntryKind::Info,
            format!(
                "── Debate: {} · {} · {} ──",
                first_line.trim(),
                plural(personas.len(), "persona"),
                plural(self.rounds as usize, "round")
            ),
        ));
        self.conversation.follow_tail();
        self.turn_entries.clear();
        self.usage = Usage::default();
        self.notice = None;
        self.run = RunState::Running {
            phase: Phase::Debate,
            round: 1,
            rounds: self.rounds,
            speaker: None,
            started: self.now,
        };
        self.session = None;
        self.report_draft.clear();
        self.report_selected = 0;
        self.report_persona = 0;
        self.report_on_personas = false;
        self.screen = Screen::Debate;
        self.stage |= self.stage_mode;
        Some(Effect::StartDebate(DebateConfig {
            feature,
            personas,
            rounds: self.rounds,
            max_tokens_per_turn: self.max_tokens_per_turn,
            max_tokens_total: self.max_tokens_total,
        }))
    }

    pub(crate) fn cancel(&mut self) -> Option<Effect> {
        let phase = match self.run {
            RunState::Running { phase, .. } => phase,
            _ => Phase::Debate,
        };
        self.finish_streaming_entry(true);
        let (entry, notice) = match phase {
            Phase::Debate => (
                "Debate cancelled. What was said stays above.",
                "Debate cancelled",
            ),
            Phase::Report => ("Report cancelled. F7 writes it again.", "Report cancelled"),
            Phase::FollowUp => ("Follow-up cancelled.", "Follow-up cancelled"),
        };
        self.run = match phase {
            Phase::Debate => RunState::Cancelled,
            _ => self.settled_state(),
        };
        self.conversation.push(Entry::new(EntryKind::Info, entry));
        self.set_notice(NoticeLevel::Info, notice);
        Some(Effect::CancelDebate)
    }

    /// How the session on screen ended, for the status bar after a report
    /// or a follow-up.
    pub(crate) fn settled_state(&self) -> RunState {
        match self.session.as_ref().map(|s| s.status) {
            Some(SessionStatus::Failed) => RunState::Failed,
            Some(SessionStatus::Cancelled) => RunState::Cancelled,
            Some(SessionStatus::BudgetReached) => RunState::BudgetReached,
            _ => RunState::Completed,
        }
    }

    /// The runner has created the session for the debate just started.
    pub fn begin_session(&mut self, session: Session) {
        self.session = Some(session);
    }

    pub(crate) fn running(&mut self, phase: Phase) {
        self.run = RunState::Running {
            phase,
            round: 0,
            rounds: self.rounds,
            speaker: None,
            started: self.now,
        };
    }

    /// The session on screen, when the LLM may work on it now; otherwise
    /// says why not.
    pub(crate) fn idle_session(&mut self, no_session: &str) -> Option<Session> {
        if self.is_running() {
            self.set_notice(
                NoticeLevel::Info,
                "Wait for the run to finish (Esc cancels it)",
            );
            return None;
        }
        if self.backend.is_none() || self.missing_model.is_some() {
            self.set_notice(NoticeLevel::Error, "No LLM backend is ready");
            return None;
        }
        if self.session.is_none() {
            self.set_notice(NoticeLevel::Error, no_session.to_string());
        }
        self.session.clone()
    }

    pub(crate) fn follow_up(&mut self) -> Option<Effect> {
        let session =
            self.idle_session("Follow-ups continue a debate: run one first (or open one with F2)")?;
        let question = self.feature_text().trim().to_string();
        if question.is_empty() {
            self.set_notice(
                NoticeLevel::Error,
                "Type the follow-up question in the editor, then F6",
            );
            self.set_focus(Focus::Editor);
            return None;
        }
        let took_part = |id: &u32| session.personas.iter().any(|p| p.id == *id);
        let mut ids: Vec<u32> = session
            .personas
            .iter()
            .map(|p| p.id)
            .filter(|id| self.selected.contains(id))
            .collect();
        if ids.is_empty()
            && let Some(p) = self.cursor_persona()
            && took_part(&p.id)
        {
            ids.push(p.id);
        }
        if ids.is_empty() {
            self.set_notice(
                NoticeLevel::Error,
                "Select who to ask (Space): personas who took part in this debate",
            );
            self.set_focus(Focus::Personas);
            return None;
        }
        let session = Box::new(session);
        let names: Vec<&str> = session
            .personas
            .iter()
            .filter(|p| ids.contains(&p.id))
            .map(|p| p.name.as_str())
            .collect();
        self.conversation.push(Entry::new(
            EntryKind::Info,
            format!("── Follow-up to {}: {} ──", names.join(", "), question),
        ));
        self.conversation.follow_tail();
        self.screen = Screen::Debate;
        self.clear_feature();
        self.running(Phase::FollowUp);
        Some(Effect::FollowUp {
            session,
            question,
            persona_ids: ids,
        })
    }

    /// Shows a saved session in the debate screen, as if it just ran.
    pub fn open_session(&mut self, session: Session) {
        self.conversation.clear();
        self.turn_entries.clear();
        self.conversation.push(Entry::new(
            EntryKind::Info,
            format!(
                "── Session {} · {} · {} · {} ──",
                session.id,
                session.first_line(),
                plural(session.personas.len(), "persona"),
                session.status_label()
            ),
        ));
        for (i, turn) in session.turns.iter().enumerate() {
            if turn.moderator {
                let index = self.conversation.push(moderator_entry(
                    &turn.text,
                    session.asked_by_audience(i),
                    turn.round,
                ));
                self.turn_entries.push(index);
                continue;
            }
            let index = self.conversation.push(Entry::new(
                EntryKind::Turn {
                    speaker: turn.speaker.clone(),
                    subtitle: {
                        let subtitle =
                            self.subtitle(&session, turn.persona_id, turn.question.as_deref());
                        if turn.devils_advocate {
                            devils_advocate_subtitle(&subtitle)
                        } else {
                            subtitle
                        }
                    },
                    round: turn.round,
                    color: theme::speaker_color(turn.persona_id),
                    streaming: false,
                    cut: !turn.complete,
                    cut_off: turn.is_cut_off(),
                    tokens: turn.usage,
                    estimated: turn.usage_estimated,
                },
                turn.text.clone(),
            ));
            self.turn_entries.push(index);
        }
        if let Some(error) = &session.error {
            self.conversation
                .push(Entry::new(EntryKind::Error, format!("Error: {error}")));
        }
        self.conversation.scroll_to_top();
        self.load_inputs_of(&session);
        self.usage = session.usage;
        self.report_draft.clear();
        self.report_selected = 0;
        self.report_persona = 0;
        self.report_on_personas = false;
        self.session = Some(session);
        self.run = self.settled_state();
        self.screen = Screen::Debate;
    }

    pub(crate) fn subtitle(
        &self,
        session: &Session,
        persona_id: u32,
        question: Option<&str>,
    ) -> String {
        if let Some(q) = question {
            return format!("asked: {q}");
        }
        session
            .personas
            .iter()
            .chain(&self.personas)
            .find(|p| p.id == persona_id)
            .map(|p| p.occupation.clone())
            .unwrap_or_default()
    }

    /// Marks the entry that was streaming as finished (or cut off).
    pub(crate) fn finish_streaming_entry(&mut self, cut: bool) {
        if let Some(&index) = self.turn_entries.last() {
            self.conversation.update_kind(index, |kind| {
                if let EntryKind::Turn {
                    streaming, cut: c, ..
                } = kind
                    && *streaming
                {
                    *streaming = false;
                    *c = cut;
                }
            });
        }
    }

    /// F8: writes the session on screen again after its save failed.
    pub(crate) fn retry_save(&mut self) -> Option<Effect> {
        if self.is_running() {
            self.set_notice(
                NoticeLevel::Info,
                "The run saves the session again after each turn; F8 works once it ends",
            );
            return None;
        }
        let Some(session) = &self.session else {
            self.set_notice(NoticeLevel::Error, "No session to save: run a debate first");
            return None;
        };
        if session.save_error.is_none() {
            self.set_notice(
                NoticeLevel::Info,
                "Nothing to save again: the last save worked",
            );
            return None;
        }
        let session = Box::new(session.clone());
        self.set_notice(NoticeLevel::Info, "Saving the session again…");
        Some(Effect::SaveSession(session))
    }

    /// The answer to F8.
    pub fn on_session_saved(&mut self, id: &str, path: &Path, result: Result<(), String>) {
        let Some(session) = self.session.as_mut().filter(|s| s.id == id) else {
            return;
        };
        match result {
            Ok(()) => {
                session.save_error = None;
                let text = format!("Session saved to {}", path.display());
                self.conversation
                    .push(Entry::new(EntryKind::Info, text.clone()));
                self.set_notice(NoticeLevel::Info, text);
            }
            Err(e) => {
                session.save_error = Some(e);
                self.show_save_failure();
            }
        }
    }

    /// Says that the session on screen is not saved, and how to retry;
    /// replaces any "finished" or "saved" notice.
    pub(crate) fn show_save_failure(&mut self) {
        let Some(error) = self.session.as_ref().and_then(|s| s.save_error.clone()) else {
            return;
        };
        let retry = if self.is_running() {
            "tried again after each turn"
        } else {
            "F8 saves it again"
        };
        self.set_notice(
            NoticeLevel::Error,
            format!("Session not saved: {error} ({retry})"),
        );
    }

    pub fn on_sim_event(&mut self, event: SimEvent) {
        let was_failing = self
            .session
            .as_ref()
            .is_some_and(|s| s.save_error.is_some());
        if let Some(session) = &mut self.session {
            session.apply(&event);
        }
        // Events whose notice must not hide (or contradict) a failed save.
        let settles = matches!(
            event,
            SimEvent::Done { .. }
                | SimEvent::ReportStarted
                | SimEvent::ReportReady { .. }
                | SimEvent::ReportFailed { .. }
                | SimEvent::SessionSaveFailed { .. }
        );
        // Report tokens change only the report screen.
        self.dirty |=
            !matches!(event, SimEvent::ReportToken { .. }) || self.screen == Screen::Report;
        match event {
            SimEvent::TurnStarted {
                turn,
                round,
                persona_id,
                speaker,
                question,
            } => {
                let subtitle = match &question {
                    Some(q) => format!("asked: {q}"),
                    None => self
                        .personas
                        .iter()
                        .find(|p| p.id == persona_id)
                        .map(|p| p.occupation.clone())
                        .unwrap_or_default(),
                };
                let index = self.conversation.push(Entry::new(
                    EntryKind::Turn {
                        speaker: speaker.clone(),
                        subtitle,
                        round,
                        color: theme::speaker_color(persona_id),
                        streaming: true,
                        cut: false,
                        cut_off: false,
                        tokens: None,
                        estimated: false,
                    },
                    "",
                ));
                debug_assert_eq!(turn, self.turn_entries.len());
                self.turn_entries.push(index);
                if let RunState::Running {
                    round: r,
                    speaker: s,
                    ..
                } = &mut self.run
                {
                    *r = round;
                    *s = Some(speaker);
                }
            }
            SimEvent::Token { turn, text } => {
                if let Some(&index) = self.turn_entries.get(turn) {
                    self.conversation.append_text(index, &text);
                }
            }
            SimEvent::TurnEnded {
                turn,
                finish_reason,
                ..
            } => {
                if finish_reason.is_cut_off()
                    && let Some(&index) = self.turn_entries.get(turn)
                {
                    self.conversation.update_kind(index, |kind| {
                        if let EntryKind::Turn { cut_off, .. } = kind {
                            *cut_off = true;
                        }
                    });
                }
                self.finish_streaming_entry(false)
            }
            SimEvent::Usage {
                turn,
                prompt_tokens,
                completion_tokens,
                estimated,
            } => {
                let usage = Usage {
                    prompt_tokens,
                    completion_tokens,
                };
                self.usage += usage;
                if let Some(&index) = self.turn_entries.get(turn) {
                    self.conversation.update_kind(index, |kind| {
                        if let EntryKind::Turn {
                            tokens,
                            estimated: e,
                            ..
                        } = kind
                        {
                            *tokens.get_or_insert_default() += usage;
                            *e |= estimated;
                        }
                    });
                }
            }
            // The server serves another model than the one asked for: the
            // status bar (and its cost) names what answers.
            SimEvent::Model { model } => {
                if let Some(backend) = &mut self.backend {
                    backend.model = model;
                }
            }
            SimEvent::Error { message, .. } => {
                self.finish_streaming_entry(true);
                self.conversation
                    .push(Entry::new(EntryKind::Error, format!("Error: {message}")));
                self.set_notice(NoticeLevel::Error, format!("Debate stopped: {message}"));
            }
            SimEvent::Done { outcome } => {
                self.paused = false;
                let phase = match self.run {
                    RunState::Running { phase, .. } => phase,
                    _ => Phase::Debate,
                };
                self.run = match (phase, outcome) {
                    (Phase::FollowUp, _) => self.settled_state(),
                    (_, Outcome::Completed) => RunState::Completed,
                    (_, Outcome::Failed) => RunState::Failed,
                    (_, Outcome::Cancelled) => RunState::Cancelled,
                    (_, Outcome::BudgetReached) => RunState::BudgetReached,
                };
                match (phase, outcome) {
                    (Phase::FollowUp, Outcome::Completed) => self.set_notice(
                        NoticeLevel::Info,
                        "Follow-up answered: saved with the session",
                    ),
                    (_, Outcome::Completed) => {
                        self.set_notice(NoticeLevel::Info, "Debate finished")
                    }
                    (_, Outcome::BudgetReached) => {
                        self.finish_streaming_entry(true);
                        self.conversation.push(Entry::new(
                            EntryKind::Info,
                            "Token budget reached (--max-tokens-total): the debate stopped here.",
                        ));
                        self.set_notice(
                            NoticeLevel::Info,
                            "Token budget reached: the debate stopped",
                        )
                    }
                    _ => {}
                }
            }
            SimEvent::ReportStarted => {
                self.running(Phase::Report);
                self.report_draft.clear();
                self.report_selected = 0;
                self.report_persona = 0;
                self.report_on_personas = false;
                self.conversation.push(Entry::new(
                    EntryKind::Info,
                    "Writing the feedback report… (F3 to watch)",
                ));
                self.set_notice(
                    NoticeLevel::Info,
                    "Writing the feedback report: F3 to watch",
                );
            }
            SimEvent::ReportToken { text } => self.report_draft.push_str(&text),
            SimEvent::ReportUsage {
                prompt_tokens,
                completion_tokens,
            } => {
                self.usage += Usage {
                    prompt_tokens,
                    completion_tokens,
                }
            }
            SimEvent::ReportReady { report } => {
                self.run = self.settled_state();
                let notes = if report.notes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", plural(report.notes.len(), "note"))
                };
                self.conversation.push(Entry::new(
                    EntryKind::Info,
                    format!("Feedback report ready{notes}: F3 shows it, F4 exports it."),
                ));
                self.set_notice(NoticeLevel::Info, "Report ready: F3 shows it");
            }
            SimEvent::ReportFailed { message } => {
                self.run = self.settled_state();
                self.conversation.push(Entry::new(
                    EntryKind::Error,
                    format!("Report failed: {message}"),
                ));
                self.set_notice(
                    NoticeLevel::Error,
                    format!("Report failed: {message} (F7 retries)"),
                );
            }
            SimEvent::SessionSaveFailed { .. } => {
                if !was_failing
                    && let Some(error) = self.session.as_ref().and_then(|s| s.save_error.clone())
                {
                    self.conversation.push(Entry::new(
                        EntryKind::Error,
                        format!("Session not saved: {error}"),
                    ));
                }
            }
            SimEvent::DebateStarted { .. } => {}
            SimEvent::Herding {
                round,
                position,
                count,
                known,
                share,
            } => {
                let line = herding_text(round, position, count, known, share);
                self.conversation
                    .push(Entry::new(EntryKind::Info, line.clone()));
                // Offered only while the moderator can still act on it.
                let offer = if views::moderate::moderating(self) {
                    " · Ctrl-D asks a devil's advocate"
                } else {
                    ""
                };
                self.set_notice(NoticeLevel::Info, format!("{line}{offer}"));
            }
            SimEvent::Moderated(action) => self.on_moderated(action),
            SimEvent::SessionSaved { path } => {
                let text = format!("Session saved to {}", path.display());
                self.conversation
                    .push(Entry::new(EntryKind::Info, text.clone()));
                self.set_notice(NoticeLevel::Info, text);
            }
        }
        if settles {
            self.show_save_failure();
        }
    }

    /// Puts a session's feature in the editor and selects its personas
    /// (those still in the panel), to look at it or run it again.
    pub(crate) fn load_inputs_of(&mut self, session: &Session) {
        self.set_feature_text(&session.feature);
        self.selected = session
            .personas
            .iter()
            .map(|p| p.id)
            .filter(|id| self.personas.iter().any(|p| p.id == *id))
            .collect();
    }
}

impl App {
    /// Shows what the moderator did: a question as a turn of its own, the
    /// rest as a notice (and a line in the conversation, so it is on record).
    pub(crate) fn on_moderated(&mut self, action: Moderation) {
        let line = match &action {
            Moderation::Paused => {
                self.paused = true;
                self.set_notice(NoticeLevel::Info, "Paused: Ctrl-P resumes");
                return;
            }
            Moderation::Resumed => {
                self.paused = false;
                self.set_notice(NoticeLevel::Info, "Resumed");
                return;
            }
            Moderation::Skipped { turn } => {
                let who = self
                    .session
                    .as_ref()
                    .and_then(|s| s.turns.get(*turn))
                    .map_or("the speaker".to_string(), |t| t.speaker.clone());
                format!("Moderator skipped {who}")
            }
            Moderation::Floor { speaker, .. } => format!("Moderator gives the floor to {speaker}"),
            Moderation::Asked {
                turn,
                text,
                audience,
            } => {
                let round = match self.run {
                    RunState::Running { round, .. } => round.max(1),
                    _ => 1,
                };
                let index = self
                    .conversation
                    .push(moderator_entry(text, *audience, round));
                debug_assert_eq!(*turn, self.turn_entries.len());
                self.turn_entries.push(index);
                return;
            }
            Moderation::RoundAdded { rounds } => {
                if let RunState::Running { rounds: r, .. } = &mut self.run {
                    *r = *rounds;
                }
                format!("Moderator added a round: {rounds} rounds")
            }
            Moderation::Ended => {
                self.paused = false;
                "Moderator ended the debate".to_string()
            }
            Moderation::DevilsAdvocate {
                turn,
                speaker,
                against,
                ..
            } => {
                if let Some(&index) = self.turn_entries.get(*turn) {
                    self.conversation.update_kind(index, |kind| {
                        if let EntryKind::Turn { subtitle, .. } = kind {
                            *subtitle = devils_advocate_subtitle(subtitle);
                        }
                    });
                }
                let against = against.map_or("the majority".to_string(), |p| format!("\"{p}\""));
                format!("Devil's advocate: {speaker} argues against {against}")
            }
        };
        self.conversation
            .push(Entry::new(EntryKind::Info, line.clone()));
        self.set_notice(NoticeLevel::Info, line);
    }
}

/// A devil's-advocate turn's subtitle: the role first, then what it was.
fn devils_advocate_subtitle(subtitle: &str) -> String {
    if subtitle.is_empty() {
        "devil's advocate".to_string()
    } else {
        format!("devil's advocate · {subtitle}")
    }
}

/// A moderator question as a conversation entry.
pub(crate) fn moderator_entry(text: &str, audience: bool, round: u32) -> Entry {
    let subtitle = if audience {
        "audience question"
    } else {
        "question to the panel"
    };
    Entry::new(
        EntryKind::Turn {
            speaker: MODERATOR.to_string(),
            subtitle: subtitle.to_string(),
            round,
            color: theme::moderator_color(),
            streaming: false,
            cut: false,
            cut_off: false,
            tokens: None,
            estimated: false,
        },
        text,
    )
}
