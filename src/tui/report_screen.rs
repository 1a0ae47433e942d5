//! The report screen's logic (its drawing is `panes/report.rs`): the
//! selectable insights, concerns and requests, and jumping to the turns an
//! item cites.

use super::action::Effect;
use super::app::{App, Focus, NoticeLevel, Phase, Screen};
use super::views::Overlay;
use super::views::persona_reason::{self, PersonaReason};
use crate::sim::report::{Report, evidence, turn_list};
use crate::text::truncate;

/// A concern, request or insight on the report screen, with its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportItem {
    pub section: &'static str,
    pub text: String,
    pub detail: String,
    pub turns: Vec<usize>,
}

/// The report's selectable items: insights first (they are the point),
/// then concerns, then requests.
pub fn report_items(report: &Report) -> Vec<ReportItem> {
    let mut items = Vec::new();
    for (n, i) in report.insights.iter().enumerate() {
        let mut detail = Vec::new();
        if let Some(why) = &i.why {
            detail.push(format!("why: {why}"));
        }
        if let Some(helps) = &i.helps {
            detail.push(format!("helps: {helps}"));
        }
        if !i.turns.is_empty() {
            detail.push(turn_list(&i.turns));
        }
        items.push(ReportItem {
            section: "insight",
            text: format!("{}. {}", n + 1, i.change),
            detail: detail.join(" · "),
            turns: i.turns.clone(),
        });
    }
    for (section, points) in [("concern", &report.concerns), ("request", &report.requests)] {
        for p in points {
            items.push(ReportItem {
                section,
                text: p.text.clone(),
                detail: evidence(p.count, &p.personas, &p.turns),
                turns: p.turns.clone(),
            });
        }
    }
    items
}

impl App {
    pub(crate) fn report_item_count(&self) -> usize {
        match self.session.as_ref().and_then(|s| s.report.as_ref()) {
            // A plain-text report scrolls by line, to its last line.
            Some(report) if report.text.is_some() => {
                report.text.as_deref().map_or(0, |t| t.lines().count())
            }
            Some(report) => report_items(report).len(),
            None => 0,
        }
    }

    pub(crate) fn report_persona_count(&self) -> usize {
        self.session
            .as_ref()
            .and_then(|s| s.report.as_ref())
            .map_or(0, |r| r.personas.len())
    }

    /// `p`: the arrows move in the persona table, or back in the findings.
    pub(crate) fn toggle_report_personas(&mut self) {
        if self.report_persona_count() == 0 {
            self.set_notice(NoticeLevel::Info, "This report has no persona table");
            return;
        }
        self.report_on_personas = !self.report_on_personas;
    }

    pub(crate) fn scroll_reason(&mut self, delta: i32) {
        let total = match self.overlays.last() {
            Some(Overlay::PersonaReason(open)) => persona_reason::lines(self, open.row).len(),
            _ => return,
        };
        if let Some(Overlay::PersonaReason(open)) = self.overlays.last_mut() {
            open.scroll = open
                .scroll
                .saturating_add_signed(delta as i16)
                .min(total.saturating_sub(1) as u16);
        }
    }

    /// Enter: a persona row opens their reason and turns; a finding shows
    /// the first turn it cites.
    pub(crate) fn jump_to_evidence(&mut self) {
        if self.report_on_personas {
            if self.report_persona < self.report_persona_count() {
                self.open(Overlay::PersonaReason(PersonaReason {
                    row: self.report_persona,
                    scroll: 0,
                }));
            }
            return;
        }
        let Some(report) = self.session.as_ref().and_then(|s| s.report.as_ref()) else {
            return;
        };
        let Some(item) = report_items(report).into_iter().nth(self.report_selected) else {
            return;
        };
        let Some(&turn) = item.turns.first() else {
            self.set_notice(NoticeLevel::Info, "This item cites no turns");
            return;
        };
        // Turns are numbered from 1; a hand-edited file may say 0.
        let Some(&entry) = turn.checked_sub(1).and_then(|i| self.turn_entries.get(i)) else {
            self.set_notice(NoticeLevel::Error, format!("Turn T{turn} is not on screen"));
            return;
        };
        self.conversation.jump_to(entry);
        self.screen = Screen::Debate;
        self.set_focus(Focus::Conversation);
        self.set_notice(
            NoticeLevel::Info,
            format!(
                "{} ({}): showing {}; F3 back to the report",
                item.section,
                truncate(&item.text, 40),
                turn_list(&item.turns)
            ),
        );
    }

    /// F7: write (or rewrite) the report of the session on screen.
    pub(crate) fn write_report(&mut self) -> Option<Effect> {
        let session = self.idle_session("Run a debate first (or open one with F2)")?;
        if session.turns.iter().all(|t| t.text.trim().is_empty()) {
            self.set_notice(
                NoticeLevel::Error,
                "Nobody has spoken yet: nothing to report on",
            );
            return None;
        }
        self.running(Phase::Report);
        Some(Effect::WriteReport(Box::new(session)))
    }
}
