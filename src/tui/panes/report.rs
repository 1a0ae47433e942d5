//! The report screen: summary, per-persona stances as a table and interest
//! as a bar chart, then insights, concerns and requests as a list whose
//! selected item's cited turns Enter shows in the conversation. Text the
//! model wrote (a plain-text report, the summary) is Markdown, rendered
//! unless `m` asked for the raw text. While the report is written the
//! screen says so, with the characters received and the section the model
//! is on, rather than the raw JSON.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Bar, BarChart, BarGroup, Block, Borders, Cell, List, ListItem, ListState, Paragraph, Row,
    Table, TableState, Wrap,
};

use crate::sim::eval::evaluate;
use crate::sim::report::{Report, ReportFormat, Stance};
use crate::sim::session::Session;
use crate::text::truncate;
use crate::tui::app::{App, Phase, RunState};
use crate::tui::keymap::REPORT;
use crate::tui::markdown;
use crate::tui::report_screen::report_items;
use crate::tui::theme;
use crate::tui::views::hint_text;

const MISSING: &str = "—";

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let writing = matches!(
        app.run,
        RunState::Running {
            phase: Phase::Report,
            ..
        }
    );
    let session = app.session.as_ref();
    let title = match session {
        Some(s) => format!(
            " Feedback report · {} · {} ",
            truncate(s.first_line(), 40),
            if writing {
                "writing the report…"
            } else {
                s.status_label()
            }
        ),
        None if writing => " Feedback report · writing the report… ".to_string(),
        None => " Feedback report ".to_string(),
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(true))
        .title(title)
        .title_bottom(Line::styled(
            format!(
                " F3/Esc debate · F4 export · F7 rewrite ·{}",
                hint_text(REPORT)
            ),
            theme::dim(),
        ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let report = session.and_then(|s| s.report.as_ref());
    let raw = app.conversation.raw();
    if writing {
        let seconds = match &app.run {
            RunState::Running { started, .. } => {
                app.now().saturating_duration_since(*started).as_secs()
            }
            _ => 0,
        };
        render_draft(frame, inner, &app.report_draft, seconds, raw);
        return;
    }
    match (session, report) {
        (_, Some(report)) if report.format == ReportFormat::PlainText => {
            render_plain(frame, inner, report, app.report_selected, raw)
        }
        (Some(s), Some(report)) => render_structured(frame, inner, s, report, app),
        (Some(s), None) => {
            let text = match &s.report_error {
                Some(e) => format!("The report failed: {e}\n\nF7 tries again."),
                None => "No report yet. It is written after a finished debate; F7 writes one now."
                    .to_string(),
            };
            message(frame, inner, &text);
        }
        (None, _) => message(
            frame,
            inner,
            "No debate on screen. Run one (F5) or open one from the history (F2).",
        ),
    }
}

fn message(frame: &mut Frame, area: Rect, text: &str) {
    frame.render_widget(
        Paragraph::new(text.to_string())
            .style(theme::dim())
            .wrap(Wrap { trim: true }),
        area,
    );
}

/// The JSON report's sections, in the order the schema asks for them.
const SECTIONS: [&str; 5] = ["summary", "personas", "insights", "concerns", "requests"];

/// Whether the reply so far is the JSON the structured report is read from
/// (perhaps in a code fence), not text meant for people.
fn looks_like_json(draft: &str) -> bool {
    let start = draft.trim_start();
    start.starts_with('{') || start.starts_with("```json") || start.starts_with("```\n{")
}

/// The report as it is written: progress, and the text itself when it is
/// text for people (its tail kept in view); JSON is not shown raw.
fn render_draft(frame: &mut Frame, area: Rect, draft: &str, seconds: u64, raw: bool) {
    let chars = draft.chars().count();
    let mut lines = vec![Line::styled(
        format!("Writing the feedback report… {chars} characters received · {seconds}s"),
        theme::good(),
    )];
    let width = area.width.max(1) as usize;
    if looks_like_json(draft) && !raw {
        // The last section key seen is the one being written.
        let section = SECTIONS
            .iter()
            .filter_map(|s| draft.rfind(&format!("\"{s}\"")).map(|at| (at, *s)))
            .max()
            .map(|(_, s)| s);
        let done: Vec<&str> = SECTIONS
            .iter()
            .copied()
            .take_while(|s| Some(*s) != section)
            .filter(|s| draft.contains(&format!("\"{s}\"")))
            .collect();
        lines.push(Line::default());
        if let Some(section) = section {
            lines.push(Line::raw(format!("Now writing: {section}")));
        }
        if !done.is_empty() {
            lines.push(Line::styled(
                format!("Done: {}", done.join(", ")),
                theme::dim(),
            ));
        }
        lines.push(Line::styled(
            "The report appears here when it is complete (m shows the raw reply).",
            theme::dim(),
        ));
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), area);
        return;
    }
    let body = if raw {
        draft
            .lines()
            .flat_map(|l| {
                textwrap::wrap(l, width)
                    .into_iter()
                    .map(|c| Line::raw(c.into_owned()))
                    .collect::<Vec<_>>()
            })
            .collect()
    } else {
        markdown::to_lines(draft, width, Style::new(), "")
    };
    let room = area.height.saturating_sub(1) as usize;
    let start = body.len().saturating_sub(room);
    lines.extend(body.into_iter().skip(start));
    frame.render_widget(Paragraph::new(lines), area);
}

fn note_lines(report: &Report) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if report.partial {
        lines.push(Line::styled(
            "Partial report: the debate did not finish, or the reply was cut (see the notes).",
            theme::warn(),
        ));
    }
    for note in &report.notes {
        lines.push(Line::styled(format!("Note: {note}"), theme::warn()));
    }
    lines
}

fn render_plain(frame: &mut Frame, area: Rect, report: &Report, scroll: usize, raw: bool) {
    let mut lines = note_lines(report);
    lines.push(Line::default());
    let text = report.text.as_deref().unwrap_or("");
    if raw {
        for l in text.lines() {
            lines.push(Line::raw(l.to_string()));
        }
    } else {
        lines.extend(markdown::to_lines(
            text,
            area.width.max(1) as usize,
            Style::new(),
            "",
        ));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll.min(u16::MAX as usize) as u16, 0)),
        area,
    );
}

fn stance_style(stance: Option<Stance>) -> Style {
    match stance {
        Some(Stance::For) => theme::good(),
        Some(Stance::Mixed) => theme::warn(),
        Some(Stance::Against) => theme::bad(),
        None => theme::dim(),
    }
}

/// The debate and the report in numbers (see `sim::eval`), in one line.
fn quality_line(session: &Session) -> Line<'static> {
    let e = evaluate(session);
    let ratio = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.2}"));
    let entropy: Vec<String> = e
        .stance_entropy
        .iter()
        .map(|h| h.map_or("–".into(), |h| format!("{h:.2}")))
        .collect();
    let mut parts = vec![
        format!("copy {:.2} (max {:.2})", e.copy_rate, e.copy_rate_max),
        format!("loops {:.2}", e.loop_rate),
    ];
    if e.stance_entropy.iter().any(Option::is_some) {
        parts.push(format!("stance entropy {}", entropy.join("→")));
    }
    if let Some(r) = e.consensus_round {
        parts.push(format!("consensus round {r}"));
    }
    if e.minority_flipped.is_some() {
        parts.push(format!("flipped {}", ratio(e.minority_flipped)));
    }
    if e.self_address > 0 {
        parts.push(format!("self-address {}", e.self_address));
    }
    parts.push(format!(
        "citations valid {}{}",
        ratio(e.citation_validity),
        e.uncited_items
            .filter(|n| *n > 0)
            .map_or(String::new(), |n| format!(", {n} uncited"))
    ));
    Line::styled(format!("Quality: {}", parts.join(" · ")), theme::dim())
}

fn render_structured(frame: &mut Frame, area: Rect, session: &Session, report: &Report, app: &App) {
    let selected = app.report_selected;
    let mut top = match &report.summary {
        Some(summary) if app.conversation.raw() => vec![Line::raw(summary.clone())],
        Some(summary) => markdown::to_lines(summary, area.width.max(1) as usize, Style::new(), ""),
        None => vec![Line::styled("Summary: — (not given)", theme::dim())],
    };
    top.extend(note_lines(report));
    let mut tokens = format!("Session tokens: {}", session.usage_line());
    if let Some(u) = report.usage {
        tokens.push_str(&format!(
            " (this report: {} in · {} out)",
            u.prompt_tokens, u.completion_tokens
        ));
    }
    top.push(Line::styled(tokens, theme::dim()));
    top.push(quality_line(session));
    let width = area.width.max(1) as usize;
    let top_height: usize = top
        .iter()
        .map(|l| l.width().div_ceil(width).max(1))
        .sum::<usize>()
        .min(area.height as usize / 3)
        .max(1);
    // Every participant: the table scrolls when they do not all fit.
    let table_height = (report.personas.len() as u16 + 3)
        .min(area.height * 2 / 5)
        .max(3);
    let [summary_area, middle, list_area] = Layout::vertical([
        Constraint::Length(top_height as u16),
        Constraint::Length(table_height),
        Constraint::Min(3),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(top).wrap(Wrap { trim: true }), summary_area);

    // While browsing the table, it takes the chart's room for the reasons.
    if app.report_on_personas {
        render_table(frame, middle, session, report, app);
    } else {
        let [table_area, chart_area] =
            Layout::horizontal([Constraint::Percentage(64), Constraint::Percentage(36)])
                .areas(middle);
        render_table(frame, table_area, session, report, app);
        render_chart(frame, chart_area, report);
    }

    let items = report_items(report);
    let block = Block::default()
        .borders(Borders::TOP)
        .border_style(theme::dim())
        .title(format!(
            " Insights {} · concerns {} · requests {} ",
            report.insights.len(),
            report.concerns.len(),
            report.requests.len()
        ));
    let inner_width = list_area.width.saturating_sub(2) as usize;
    let list: Vec<ListItem> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let tag = Span::styled(
                format!("{:<8}", item.section),
                match item.section {
                    "insight" => theme::key(),
                    "concern" => theme::bad(),
                    _ => theme::request(),
                },
            );
            let mut lines = vec![Line::from(vec![
                tag,
                Span::raw(truncate(&item.text, inner_width.saturating_sub(9))),
            ])];
            if i == selected && !item.detail.is_empty() {
                for piece in textwrap::wrap(&item.detail, inner_width.saturating_sub(9).max(10)) {
                    lines.push(Line::styled(format!("         {piece}"), theme::dim()));
                }
            }
            ListItem::new(lines)
        })
        .collect();
    if list.is_empty() {
        frame.render_widget(
            Paragraph::new("The model gave no insights, concerns or requests.")
                .style(theme::dim())
                .block(block),
            list_area,
        );
        return;
    }
    let picked = (!app.report_on_personas).then(|| selected.min(items.len() - 1));
    let mut state = ListState::default().with_selected(picked);
    frame.render_stateful_widget(
        List::new(list)
            .block(block)
            .highlight_symbol("▶ ")
            .highlight_style(Style::new().add_modifier(Modifier::BOLD)),
        list_area,
        &mut state,
    );
}

fn render_table(frame: &mut Frame, area: Rect, session: &Session, report: &Report, app: &App) {
    let usage = session.usage_by_persona();
    // Name, stance, interest and tokens take 34 columns with the gaps.
    let reason_width = (area.width as usize).saturating_sub(38).max(8);
    let focused = app.report_on_personas;
    let selected = app
        .report_persona
        .min(report.personas.len().saturating_sub(1));
    // The selected row's reason wraps (up to what the table can show).
    let room = area.height.saturating_sub(2).max(1) as usize;
    let rows: Vec<Row> = report
        .personas
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let reason = p.reason.as_deref().unwrap_or(MISSING);
            let reason_lines: Vec<Line> = if focused && i == selected {
                textwrap::wrap(reason, reason_width)
                    .into_iter()
                    .take(room)
                    .map(|l| Line::raw(l.into_owned()))
                    .collect()
            } else {
                vec![Line::raw(truncate(reason, reason_width))]
            };
            let height = reason_lines.len().max(1) as u16;
            let tokens = p
                .name
                .as_ref()
                .and_then(|n| usage.iter().find(|(name, _, _)| name == n))
                .map(|(_, _, u)| format!("{}", u.total()))
                .unwrap_or_else(|| MISSING.into());
            Row::new(vec![
                Cell::from(truncate(p.name.as_deref().unwrap_or(MISSING), 16)),
                Cell::from(p.stance.map(Stance::label).unwrap_or(MISSING))
                    .style(stance_style(p.stance)),
                Cell::from(
                    p.interest
                        .map(|i| format!("{i}/10"))
                        .unwrap_or_else(|| MISSING.into()),
                ),
                Cell::from(tokens),
                Cell::from(reason_lines),
            ])
            .height(height)
        })
        .collect();
    let title = if focused {
        format!(
            " Personas {} · ↑↓ · Enter: reason and turns · p: findings ",
            report.personas.len()
        )
    } else {
        format!(" Personas {} · p to browse ", report.personas.len())
    };
    let table = Table::new(
        rows,
        [
            Constraint::Length(16),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(6),
            Constraint::Min(10),
        ],
    )
    .header(Row::new(vec!["Persona", "Stance", "Int.", "Tok.", "Reason"]).style(theme::key()))
    .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
    .block(
        Block::default()
            .borders(Borders::TOP)
            .border_style(if focused { theme::key() } else { theme::dim() })
            .title(title),
    );
    // The selection keeps the chosen row in view; it is shown only while
    // the arrows move in the table.
    let mut state = TableState::default().with_selected(Some(selected));
    if !focused {
        state = TableState::default().with_offset(selected.saturating_sub(room.saturating_sub(1)));
    }
    frame.render_stateful_widget(table, area, &mut state);
}

fn render_chart(frame: &mut Frame, area: Rect, report: &Report) {
    let bars: Vec<Bar> = report
        .personas
        .iter()
        .filter_map(|p| {
            let score = p.interest?;
            let name = p.name.as_deref().unwrap_or("?");
            let first = name.split_whitespace().next().unwrap_or(name);
            Some(
                Bar::default()
                    .value(score as u64)
                    .label(Line::raw(truncate(first, 9)))
                    .style(stance_style(p.stance)),
            )
        })
        .collect();
    let block = Block::default()
        .borders(Borders::TOP | Borders::LEFT)
        .border_style(theme::dim())
        .title(" Interest 1–10 ");
    if bars.is_empty() {
        frame.render_widget(
            Paragraph::new("no scores given")
                .style(theme::dim())
                .block(block),
            area,
        );
        return;
    }
    let chart = BarChart::default()
        .block(block)
        .direction(ratatui::layout::Direction::Horizontal)
        .bar_width(1)
        .bar_gap(0)
        .max(10)
        .data(BarGroup::default().bars(&bars));
    frame.render_widget(chart, area);
}
