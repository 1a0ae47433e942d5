//! The report screen: summary, per-persona stances as a table and interest
//! as a bar chart, then insights, concerns and requests as a list whose
//! selected item's cited turns Enter shows in the conversation.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Bar, BarChart, BarGroup, Block, Borders, Cell, List, ListItem, ListState, Paragraph, Row,
    Table, Wrap,
};

use crate::sim::report::{Report, ReportFormat, Stance};
use crate::sim::session::Session;
use crate::text::truncate;
use crate::tui::app::{App, Phase, RunState};
use crate::tui::keymap::REPORT;
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
            s.status_label()
        ),
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
    if writing {
        render_draft(frame, inner, &app.report_draft);
        return;
    }
    match (session, report) {
        (_, Some(report)) if report.format == ReportFormat::PlainText => {
            render_plain(frame, inner, report, app.report_selected)
        }
        (Some(s), Some(report)) => render_structured(frame, inner, s, report, app.report_selected),
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

/// The streaming reply, its tail kept in view.
fn render_draft(frame: &mut Frame, area: Rect, draft: &str) {
    let mut lines = vec![Line::styled(
        format!("Writing the feedback report… {} characters", draft.len()),
        Style::new().fg(Color::LightGreen),
    )];
    let width = area.width.max(1) as usize;
    let wrapped: Vec<String> = draft
        .lines()
        .flat_map(|l| textwrap::wrap(l, width).into_iter().map(|c| c.into_owned()))
        .collect();
    let room = area.height.saturating_sub(1) as usize;
    let start = wrapped.len().saturating_sub(room);
    lines.extend(wrapped[start..].iter().map(|l| Line::raw(l.clone())));
    frame.render_widget(Paragraph::new(lines), area);
}

fn note_lines(report: &Report) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if report.partial {
        lines.push(Line::styled(
            "Partial report: the debate did not finish, or the reply was cut (see the notes).",
            Style::new().fg(Color::Yellow),
        ));
    }
    for note in &report.notes {
        lines.push(Line::styled(
            format!("Note: {note}"),
            Style::new().fg(Color::Yellow),
        ));
    }
    lines
}

fn render_plain(frame: &mut Frame, area: Rect, report: &Report, scroll: usize) {
    let mut lines = note_lines(report);
    lines.push(Line::default());
    for l in report.text.as_deref().unwrap_or("").lines() {
        lines.push(Line::raw(l.to_string()));
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
        Some(Stance::For) => Style::new().fg(Color::LightGreen),
        Some(Stance::Mixed) => Style::new().fg(Color::Yellow),
        Some(Stance::Against) => Style::new().fg(Color::LightRed),
        None => theme::dim(),
    }
}

fn render_structured(
    frame: &mut Frame,
    area: Rect,
    session: &Session,
    report: &Report,
    selected: usize,
) {
    let mut top = note_lines(report);
    match &report.summary {
        Some(summary) => top.insert(0, Line::raw(summary.clone())),
        None => top.insert(0, Line::styled("Summary: — (not given)", theme::dim())),
    }
    let mut tokens = format!("Session tokens: {}", session.usage_line());
    if let Some(u) = report.usage {
        tokens.push_str(&format!(
            " (this report: {} in · {} out)",
            u.prompt_tokens, u.completion_tokens
        ));
    }
    top.push(Line::styled(tokens, theme::dim()));
    let width = area.width.max(1) as usize;
    let top_height: usize = top
        .iter()
        .map(|l| l.width().div_ceil(width).max(1))
        .sum::<usize>()
        .min(area.height as usize / 3)
        .max(1);
    let table_height = (report.personas.len() as u16 + 3)
        .min(area.height / 3)
        .max(3);
    let [summary_area, middle, list_area] = Layout::vertical([
        Constraint::Length(top_height as u16),
        Constraint::Length(table_height),
        Constraint::Min(3),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(top).wrap(Wrap { trim: true }), summary_area);

    let [table_area, chart_area] =
        Layout::horizontal([Constraint::Percentage(64), Constraint::Percentage(36)]).areas(middle);
    render_table(frame, table_area, session, report);
    render_chart(frame, chart_area, report);

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
                    "concern" => Style::new().fg(Color::LightRed),
                    _ => Style::new().fg(Color::LightBlue),
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
    let mut state = ListState::default().with_selected(Some(selected.min(items.len() - 1)));
    frame.render_stateful_widget(
        List::new(list)
            .block(block)
            .highlight_symbol("▶ ")
            .highlight_style(Style::new().add_modifier(Modifier::BOLD)),
        list_area,
        &mut state,
    );
}

fn render_table(frame: &mut Frame, area: Rect, session: &Session, report: &Report) {
    let usage = session.usage_by_persona();
    // Name, stance, interest and tokens take 34 columns with the gaps.
    let reason_width = (area.width as usize).saturating_sub(38).max(8);
    let rows: Vec<Row> = report
        .personas
        .iter()
        .map(|p| {
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
                Cell::from(truncate(
                    p.reason.as_deref().unwrap_or(MISSING),
                    reason_width,
                )),
            ])
        })
        .collect();
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
    .block(
        Block::default()
            .borders(Borders::TOP)
            .border_style(theme::dim())
            .title(" Personas "),
    );
    frame.render_widget(table, area);
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
