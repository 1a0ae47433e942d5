//! A session written out for people (Markdown) or programs (JSON).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::debate::{Moderation, TurnFinish};
use super::report::report_markdown;
use super::session::Session;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Readable transcript and report.
    Md,
    /// The session file itself.
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}: the file name must end in .md or .json")]
    UnknownExtension(PathBuf),
    #[error(transparent)]
    Write(#[from] crate::atomic_file::WriteError),
}

impl ExportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Md => "md",
            ExportFormat::Json => "json",
        }
    }

    /// From a name the user typed: md, markdown or json, any case.
    pub fn from_name(name: &str) -> Option<ExportFormat> {
        match name.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(ExportFormat::Md),
            "json" => Some(ExportFormat::Json),
            _ => None,
        }
    }

    /// From a file name's extension (.md / .markdown / .json).
    pub fn from_path(path: &Path) -> Option<ExportFormat> {
        ExportFormat::from_name(path.extension()?.to_str()?)
    }
}

/// The session as text in `format`.
pub fn export_text(session: &Session, format: ExportFormat) -> String {
    match format {
        ExportFormat::Md => session_markdown(session),
        ExportFormat::Json => {
            let mut text = serde_json::to_string_pretty(session).expect("sessions serialise");
            text.push('\n');
            text
        }
    }
}

/// Writes a session atomically as Markdown or JSON, chosen by the file's
/// extension.
pub fn write_export(session: &Session, file: &Path) -> Result<(), ExportError> {
    let format = ExportFormat::from_path(file)
        .ok_or_else(|| ExportError::UnknownExtension(file.to_path_buf()))?;
    write_export_as(session, file, format)
}

/// Writes a session atomically to `file` in `format`, whatever its name.
pub fn write_export_as(
    session: &Session,
    file: &Path,
    format: ExportFormat,
) -> Result<(), ExportError> {
    crate::atomic_file::write(file, &export_text(session, format))?;
    Ok(())
}

/// Writes the session into `dir` as `<id>.<ext>` and returns the path.
pub fn export_to_dir(
    session: &Session,
    dir: &Path,
    format: ExportFormat,
) -> Result<PathBuf, ExportError> {
    let path = dir.join(format!("{}.{}", session.id, format.extension()));
    write_export_as(session, &path, format)?;
    Ok(path)
}

/// A moderator action in words.
pub fn moderation_text(action: &Moderation) -> String {
    match action {
        Moderation::Paused => "paused".into(),
        Moderation::Resumed => "resumed".into(),
        Moderation::Skipped { turn } => format!("skipped T{}", turn + 1),
        Moderation::Floor { speaker, .. } => format!("gave the floor to {speaker}"),
        Moderation::Asked { turn, .. } => format!("asked T{}", turn + 1),
        Moderation::RoundAdded { rounds } => format!("added a round ({rounds} in all)"),
        Moderation::Ended => "ended the debate".into(),
        Moderation::DevilsAdvocate {
            turn,
            speaker,
            against,
            auto,
            ..
        } => {
            let against = against.map_or("the majority".to_string(), |p| format!("\"{p}\""));
            let who = if *auto { "herding: " } else { "" };
            format!(
                "{who}{speaker} argues against {against} as devil's advocate (T{})",
                turn + 1
            )
        }
    }
}

/// The session as Markdown: header, feature, transcript, usage, report.
pub fn session_markdown(session: &Session) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Persona debate: {}\n", session.first_line());
    let _ = writeln!(md, "- Session: `{}`", session.id);
    let _ = writeln!(md, "- Started: {}", session.created_at);
    let _ = writeln!(md, "- Status: {}", session.status_label());
    let _ = writeln!(
        md,
        "- Backend: {} · {} ({})",
        session.backend.kind, session.backend.model, session.backend.endpoint
    );
    let panel: Vec<String> = session
        .personas
        .iter()
        .map(|p| format!("{} ({}, {})", p.name, p.occupation, p.location))
        .collect();
    let _ = writeln!(md, "- Personas: {}", panel.join("; "));
    let _ = writeln!(md, "- Rounds: {}", session.settings.rounds);
    let _ = writeln!(md, "- Tokens: {}\n", session.usage_line());
    let _ = writeln!(md, "## Feature\n\n{}\n", session.feature.trim());
    md.push_str("## Transcript\n\n");
    let occupation = |id: u32| {
        session
            .personas
            .iter()
            .find(|p| p.id == id)
            .map(|p| format!(" ({})", p.occupation))
            .unwrap_or_default()
    };
    for (i, turn) in session.turns.iter().enumerate() {
        if turn.moderator {
            let _ = writeln!(
                md,
                "### T{} · Moderator · {}\n\n> {}\n",
                i + 1,
                if session.asked_by_audience(i) {
                    "audience question"
                } else {
                    "question to the panel"
                },
                turn.text.trim()
            );
            continue;
        }
        let what = match &turn.question {
            Some(q) => format!("follow-up: “{q}”"),
            None if turn.devils_advocate => format!("round {} · devil's advocate", turn.round),
            None => format!("round {}", turn.round),
        };
        let _ = writeln!(
            md,
            "### T{} · {}{} · {what}\n",
            i + 1,
            turn.speaker,
            occupation(turn.persona_id)
        );
        let text = turn.text.trim();
        let mark = if turn.is_cut_off() {
            super::debate::CUT_OFF_MARK
        } else {
            ""
        };
        if !text.is_empty() || !mark.is_empty() {
            let _ = writeln!(md, "{}\n", format!("{text}{mark}").trim());
        }
        if !turn.complete {
            md.push_str("*(cut off: this turn did not finish)*\n\n");
        }
        match turn.finish_reason {
            Some(TurnFinish::Skipped) => md.push_str("*(skipped by the moderator)*\n\n"),
            Some(TurnFinish::Ended) => md.push_str("*(the moderator ended the debate here)*\n\n"),
            _ => {}
        }
        if turn.complete {
            let stance = turn.stance.map_or("unknown".to_string(), |s| s.to_string());
            let _ = writeln!(md, "*Stance: {stance}*\n");
        }
    }
    if !session.moderation.is_empty() {
        let actions: Vec<String> = session
            .moderation
            .iter()
            .map(|m| {
                format!(
                    "{} (after turn {})",
                    moderation_text(&m.action),
                    m.after_turns
                )
            })
            .collect();
        let _ = writeln!(md, "**Moderator:** {}.\n", actions.join("; "));
    }
    if let Some(error) = &session.error {
        let _ = writeln!(md, "> Stopped by an error: {error}\n");
    }
    let rows = session.usage_by_persona();
    if rows.iter().any(|(_, _, u)| u.total() > 0) {
        md.push_str(
            "## Usage\n\n| Persona | Turns | Tokens in | Tokens out |\n| --- | --- | --- | --- |\n",
        );
        let approx = if session.usage_estimated() { "≈" } else { "" };
        for (name, turns, u) in rows {
            let _ = writeln!(
                md,
                "| {name} | {turns} | {approx}{} | {approx}{} |",
                u.prompt_tokens, u.completion_tokens
            );
        }
        md.push('\n');
    }
    md.push_str("## Feedback report\n\n");
    match (&session.report, &session.report_error) {
        (Some(report), _) => md.push_str(&report_markdown(report)),
        (None, Some(error)) => {
            let _ = writeln!(md, "*No report: {error}*");
        }
        (None, None) => md.push_str("*No report yet.*\n"),
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_marks_turns_cut_at_the_limit_and_estimated_counts() {
        use crate::llm::{BackendInfo, Usage};
        use crate::sim::debate::{DebateConfig, SimEvent, TurnFinish};
        let config = DebateConfig {
            feature: "Dark mode".into(),
            personas: crate::persona::builtin_panel()[..1].to_vec(),
            rounds: 1,
            max_tokens_per_turn: 100,
            max_tokens_total: None,
        };
        let info = BackendInfo {
            kind: "openai",
            model: "gpt-4o-mini".into(),
            endpoint: "http://x/v1".into(),
        };
        let mut session = Session::new(&config, info);
        let speaker = session.personas[0].name.clone();
        for event in [
            SimEvent::TurnStarted {
                turn: 0,
                round: 1,
                persona_id: 1,
                speaker,
                question: None,
            },
            SimEvent::Token {
                turn: 0,
                text: "The price of the".into(),
            },
            SimEvent::Usage {
                turn: 0,
                prompt_tokens: 12,
                completion_tokens: 4,
                estimated: true,
            },
            SimEvent::TurnEnded {
                turn: 0,
                finish_reason: TurnFinish::Length,
                stance: None,
            },
        ] {
            session.apply(&event);
        }
        assert_eq!(
            session.usage,
            Usage {
                prompt_tokens: 12,
                completion_tokens: 4
            }
        );
        let md = session_markdown(&session);
        assert!(md.contains("The price of the … (cut off)\n"), "{md}");
        assert!(md.contains("| ≈12 | ≈4 |"), "{md}");
        assert!(md.contains("- Tokens: ≈12 in · ≈4 out"), "{md}");
        assert!(md.contains("*Stance: unknown*"), "{md}");
        // A moderator question, a skipped turn and a stance.
        use crate::sim::debate::Moderation;
        use crate::sim::stance::{Position, Stance};
        let name = session.personas[0].name.clone();
        for event in [
            SimEvent::Moderated(Moderation::Asked {
                turn: 1,
                text: "Night shifts?".into(),
                audience: true,
            }),
            SimEvent::TurnStarted {
                turn: 2,
                round: 1,
                persona_id: 1,
                speaker: name,
                question: None,
            },
            SimEvent::Token {
                turn: 2,
                text: "Yes, mostly".into(),
            },
            SimEvent::Moderated(Moderation::Skipped { turn: 2 }),
            SimEvent::TurnEnded {
                turn: 2,
                finish_reason: TurnFinish::Skipped,
                stance: Stance::new(Position::Mixed, 6),
            },
        ] {
            session.apply(&event);
        }
        let md = session_markdown(&session);
        assert!(
            md.contains("### T2 · Moderator · audience question\n\n> Night shifts?\n"),
            "{md}"
        );
        assert!(md.contains("*(skipped by the moderator)*"), "{md}");
        assert!(md.contains("*Stance: mixed, interest 6/10*"), "{md}");
        assert!(
            md.contains("**Moderator:** asked T2 (after turn 2); skipped T3 (after turn 3)."),
            "{md}"
        );
        // The moderator is not a persona in the usage table.
        assert!(!md.contains("| Moderator |"), "{md}");
    }

    #[test]
    fn formats_by_name_and_extension() {
        assert_eq!(ExportFormat::from_name("MD"), Some(ExportFormat::Md));
        assert_eq!(ExportFormat::from_name("markdown"), Some(ExportFormat::Md));
        assert_eq!(
            ExportFormat::from_path(Path::new("a.JSON")),
            Some(ExportFormat::Json)
        );
        assert_eq!(ExportFormat::from_path(Path::new("a.txt")), None);
        assert_eq!(ExportFormat::from_path(Path::new("noext")), None);
        for name in ["md", "json"] {
            assert!(ExportFormat::from_name(name).is_some());
        }
    }
}
