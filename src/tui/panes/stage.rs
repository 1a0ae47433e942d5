//! The stage view (F9, `--stage`): the debate for a room. The feature on
//! top, the current speaker large, the conversation filling the rest (the
//! same [`ConversationView`](super::conversation::ConversationView) and
//! its wrapped-line cache as the debate screen), and a stance board: each
//! persona's latest stance and interest, to the right at wide sizes and as
//! a strip at 80 columns.
//!
//! Everything is read from the session on screen (its personas, turns and
//! stances), so the view is a function of the state like the rest. Nothing
//! depends on colour alone: the speaker is bold and reversed, and stances
//! are words with a symbol and a bar, so it reads the same with NO_COLOR.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use unicode_width::UnicodeWidthStr;

use crate::persona::Persona;
use crate::sim::debate::Turn;
use crate::sim::session::Session;
use crate::sim::stance::{Position, Stance};
use crate::text::truncate;
use crate::tui::app::App;
use crate::tui::theme;

/// From this width on, the stance board stands to the right of the
/// conversation; below it, it is a strip above it.
const WIDE: u16 = 120;
/// Width of the stance board at wide sizes.
const BOARD_WIDTH: u16 = 44;
/// Rows the strip may take at most.
const STRIP_ROWS: usize = 3;

/// Where one persona stands, as the board shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// No finished turn yet.
    NotYet,
    /// Their latest finished turn had no readable stance line.
    Unknown,
    Known(Stance),
}

/// Each debating persona's standing, from their latest finished turn (a
/// turn without a stance is unknown: an earlier stance is not carried
/// over).
pub fn standings(session: &Session) -> Vec<(&Persona, Standing)> {
    session
        .personas
        .iter()
        .map(|p| {
            let latest = session
                .turns
                .iter()
                .rev()
                .find(|t| t.persona_id == p.id && t.complete);
            let standing = match latest {
                None => Standing::NotYet,
                Some(Turn {
                    stance: Some(s), ..
                }) => Standing::Known(*s),
                Some(_) => Standing::Unknown,
            };
            (p, standing)
        })
        .collect()
}

fn position_style(position: Position) -> Style {
    let style = match position {
        Position::For => theme::good(),
        Position::Mixed => theme::warn(),
        Position::Against => theme::bad(),
    };
    style.add_modifier(Modifier::BOLD)
}

fn symbol(position: Position) -> &'static str {
    match position {
        Position::For => "▲",
        Position::Mixed => "◆",
        Position::Against => "▼",
    }
}

/// "▲ for", "? unknown", "· not yet", styled.
fn standing_word(standing: Standing) -> Span<'static> {
    match standing {
        Standing::Known(s) => Span::styled(
            format!("{} {}", symbol(s.position), s.position),
            position_style(s.position),
        ),
        Standing::Unknown => Span::styled("? unknown", theme::dim()),
        Standing::NotYet => Span::styled("· not yet", theme::dim()),
    }
}

/// Interest as a ten-cell bar and a number: "■■■■■■■□□□ 7".
fn interest_bar(interest: u8) -> Vec<Span<'static>> {
    let full = interest.min(10) as usize;
    vec![
        Span::styled("■".repeat(full), Style::new().add_modifier(Modifier::BOLD)),
        Span::styled("□".repeat(10 - full), theme::dim()),
        Span::raw(format!(" {interest}/10")),
    ]
}

/// The turn on stage: the last persona's turn of the session (a moderator
/// question shows in the conversation below it).
fn current_turn(session: &Session) -> Option<&Turn> {
    session.turns.iter().rev().find(|t| !t.moderator)
}

fn persona_of<'a>(app: &'a App, session: &'a Session, id: u32) -> Option<&'a Persona> {
    session
        .personas
        .iter()
        .chain(app.personas())
        .find(|p| p.id == id)
}

/// "Round 1/2 · turn 3/4", or "Follow-up" for an answer to a question.
fn progress(session: &Session, turn: &Turn) -> String {
    if turn.question.is_some() {
        return "Follow-up question".into();
    }
    let debate_turns = session
        .turns
        .iter()
        .filter(|t| t.question.is_none() && !t.moderator)
        .count();
    // A persona given the floor speaks an extra turn.
    let total = (session.personas.len() * session.settings.rounds as usize).max(debate_turns);
    format!(
        "Round {}/{} · turn {}/{}",
        turn.round, session.settings.rounds, debate_turns, total
    )
}

pub fn render(frame: &mut Frame, area: Rect, app: &mut App) {
    let wide = area.width >= WIDE;
    let feature = match app.session() {
        Some(s) => s.feature.clone(),
        None => app.feature_text(),
    };
    let first_line = feature
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(no feature yet)")
        .to_string();
    let speaker = speaker_lines(app, area.width - if wide { 2 } else { 0 });
    let header_height = speaker.len() as u16 + if wide { 2 } else { 0 };
    let strip = if wide {
        Vec::new()
    } else {
        strip_lines(app, area.width as usize)
    };
    let [feature_area, header_area, strip_area, body] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(header_height),
        Constraint::Length(strip.len() as u16),
        Constraint::Min(0),
    ])
    .areas(area);

    let label = " FEATURE  ";
    let feature_line = Line::from(vec![
        Span::styled(label, Style::new().add_modifier(Modifier::REVERSED)),
        Span::raw(" "),
        Span::styled(
            truncate(
                &first_line,
                (area.width as usize).saturating_sub(label.width() + 1),
            ),
            Style::new().add_modifier(Modifier::BOLD),
        ),
    ]);
    frame.render_widget(Paragraph::new(feature_line), feature_area);

    if wide {
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme::border(false))
            .title(" On stage ");
        frame.render_widget(Paragraph::new(speaker).block(block), header_area);
    } else {
        frame.render_widget(Paragraph::new(speaker), header_area);
    }
    frame.render_widget(Paragraph::new(strip), strip_area);

    if wide {
        let [conversation, board] =
            Layout::horizontal([Constraint::Min(0), Constraint::Length(BOARD_WIDTH)]).areas(body);
        app.conversation
            .render(conversation, frame.buffer_mut(), true);
        render_board(frame, board, app);
    } else {
        app.conversation.render(body, frame.buffer_mut(), true);
    }
}

/// The speaker header: the name large (bold, reversed, in the persona's
/// colour), occupation · location, and the progress.
fn speaker_lines(app: &App, width: u16) -> Vec<Line<'static>> {
    let width = width as usize;
    let Some((session, turn)) = app.session().and_then(|s| Some((s, current_turn(s)?))) else {
        return vec![
            Line::styled(
                " No debate on stage yet",
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Line::styled(
                " F9 goes back to pick personas and describe the feature; F5 starts",
                theme::dim(),
            ),
        ];
    };
    let speaking = app.is_running() && !turn.complete;
    let persona = persona_of(app, session, turn.persona_id);
    let color = theme::speaker_color(turn.persona_id);
    let cue = match (speaking, app.paused) {
        (true, true) => " ❚❚ PAUSED ",
        (true, false) => " ▶ SPEAKING ",
        (false, _) => " LAST TURN ",
    };
    let name = format!(" {} ", turn.speaker);
    let progress = progress(session, turn);
    let mut first = vec![
        Span::styled(cue, Style::new().add_modifier(Modifier::BOLD)),
        Span::styled(
            truncate(&name, width.saturating_sub(cue.width() + 2)),
            Style::new()
                .fg(color)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
    ];
    let used: usize = first.iter().map(Span::width).sum();
    if used + progress.width() + 3 <= width {
        first.push(Span::raw(" ".repeat(width - used - progress.width() - 1)));
        first.push(Span::styled(
            progress.clone(),
            Style::new().add_modifier(Modifier::BOLD),
        ));
    }
    let about = persona
        .map(|p| format!("{} · {}", p.occupation, p.location))
        .unwrap_or_default();
    let mut lines = vec![
        Line::from(first),
        Line::from(vec![
            Span::raw(" ".repeat(cue.width() + 1)),
            Span::styled(
                truncate(&about, width.saturating_sub(cue.width() + 2)),
                Style::new().fg(color),
            ),
        ]),
    ];
    if used + progress.width() + 3 > width {
        lines.push(Line::styled(format!(" {progress}"), Style::new()));
    }
    lines
}

/// The stance board as a strip (80 columns): "Name ▲ for 7/10" items
/// flowing over at most [`STRIP_ROWS`] rows; the speaker's marked ▶.
fn strip_lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let Some(session) = app.session() else {
        return Vec::new();
    };
    let on_stage = current_turn(session).map(|t| t.persona_id);
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut row: Vec<Span<'static>> = vec![Span::styled(" Stances:", theme::dim())];
    let mut row_width = row[0].width();
    let items = standings(session);
    let mut shown = 0;
    for (i, (persona, standing)) in items.iter().enumerate() {
        let first_name = persona.name.split_whitespace().next().unwrap_or("");
        let mark = if on_stage == Some(persona.id) {
            "▶"
        } else {
            " "
        };
        let mut item = vec![
            Span::raw(format!(" {mark} ")),
            Span::styled(
                first_name.to_string(),
                Style::new()
                    .fg(theme::speaker_color(persona.id))
                    .add_modifier(Modifier::BOLD),
            ),
            Span::raw(" "),
            standing_word(*standing),
        ];
        if let Standing::Known(s) = standing {
            item.push(Span::raw(format!(" {}/10", s.interest)));
        }
        if i + 1 < items.len() {
            item.push(Span::styled(" │", theme::dim()));
        }
        let item_width: usize = item.iter().map(Span::width).sum();
        if row_width + item_width > width && row_width > 0 {
            lines.push(Line::from(std::mem::take(&mut row)));
            row_width = 0;
            if lines.len() == STRIP_ROWS {
                break;
            }
        }
        row_width += item_width;
        row.extend(item);
        shown += 1;
    }
    if !row.is_empty() && lines.len() < STRIP_ROWS {
        lines.push(Line::from(row));
    }
    // Who did not fit is counted, not dropped silently (the last row is
    // cut at the edge to make room).
    if shown < items.len()
        && let Some(last) = lines.last_mut()
    {
        let more = format!(" +{} more", items.len() - shown);
        let mut kept: Vec<Span<'static>> = Vec::new();
        let mut used = 0;
        for span in std::mem::take(&mut last.spans) {
            let room = width.saturating_sub(more.width() + used);
            if span.width() > room {
                kept.push(Span::styled(truncate(&span.content, room), span.style));
                break;
            }
            used += span.width();
            kept.push(span);
        }
        kept.push(Span::styled(
            more,
            Style::new().add_modifier(Modifier::BOLD),
        ));
        last.spans = kept;
    }
    lines
}

/// The stance board at wide sizes: two rows a persona (name; stance and
/// interest bar), the speaker's marked ▶.
fn render_board(frame: &mut Frame, area: Rect, app: &App) {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(false))
        .title(" Stances ");
    let inner_width = area.width.saturating_sub(2) as usize;
    let mut lines: Vec<Line<'static>> = Vec::new();
    if let Some(session) = app.session() {
        let on_stage = current_turn(session).map(|t| t.persona_id);
        for (persona, standing) in standings(session) {
            let speaking = on_stage == Some(persona.id);
            let mut name_style = Style::new()
                .fg(theme::speaker_color(persona.id))
                .add_modifier(Modifier::BOLD);
            if speaking {
                name_style = name_style.add_modifier(Modifier::REVERSED);
            }
            lines.push(Line::from(vec![
                Span::raw(if speaking { "▶ " } else { "  " }),
                Span::styled(
                    truncate(&persona.name, inner_width.saturating_sub(2)),
                    name_style,
                ),
            ]));
            let mut second = vec![Span::raw("  "), standing_word(standing)];
            if let Standing::Known(s) = standing {
                let pad = 12usize.saturating_sub(second[1].width());
                second.push(Span::raw(" ".repeat(pad)));
                second.extend(interest_bar(s.interest));
            }
            lines.push(Line::from(second));
            lines.push(Line::default());
        }
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::BackendInfo;
    use crate::persona::builtin_panel;
    use crate::sim::debate::{DebateConfig, SimEvent};

    fn session(n: usize) -> Session {
        let config = DebateConfig {
            feature: "Dark mode".into(),
            personas: builtin_panel()[..n].to_vec(),
            rounds: 2,
            max_tokens_per_turn: 100,
            max_tokens_total: None,
        };
        let backend = BackendInfo {
            kind: "openai",
            model: "m".into(),
            endpoint: "http://127.0.0.1:1/v1".into(),
        };
        Session::new(&config, backend)
    }

    fn turn(session: &mut Session, turn: usize, persona: usize, stance: Option<Stance>) {
        let p = session.personas[persona].clone();
        session.apply(&SimEvent::TurnStarted {
            turn,
            round: 1,
            persona_id: p.id,
            speaker: p.name,
            question: None,
        });
        session.apply(&SimEvent::TurnEnded {
            turn,
            finish_reason: Default::default(),
            stance,
        });
    }

    #[test]
    fn the_latest_finished_turn_decides_and_nothing_is_carried_over() {
        let mut s = session(3);
        let against = Stance::new(Position::Against, 2);
        turn(&mut s, 0, 0, Stance::new(Position::For, 9));
        turn(&mut s, 1, 1, against);
        // Persona 0 speaks again without a stance line: unknown, not "for".
        turn(&mut s, 2, 0, None);
        // Persona 2 has started but not finished: not yet.
        let p = s.personas[2].clone();
        s.apply(&SimEvent::TurnStarted {
            turn: 3,
            round: 1,
            persona_id: p.id,
            speaker: p.name,
            question: None,
        });
        let got: Vec<Standing> = standings(&s).into_iter().map(|(_, st)| st).collect();
        assert_eq!(
            got,
            [
                Standing::Unknown,
                Standing::Known(against.unwrap()),
                Standing::NotYet
            ]
        );
    }
}
