//! The history overlay (F2): saved sessions with search, open, re-run and
//! delete; and the small "export as" chooser (F4).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, Paragraph};

use crate::text::truncate;
use crate::tui::app::History;
use crate::tui::theme;

pub fn render(frame: &mut Frame, area: Rect, history: &mut History) {
    let width = area.width.saturating_sub(4);
    let height = area.height.saturating_sub(2);
    let popup = super::popup(frame, area, width, height);
    let count = history.sessions.as_ref().map_or(0, Vec::len);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::key())
        .title(format!(
            " History · {count} session{} ",
            if count == 1 { "" } else { "s" }
        ))
        .title_bottom(Line::styled(
            " ↑↓ move · Enter open · r re-run · d delete · / search · Esc close ",
            theme::dim(),
        ));
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let [search_area, list_area, foot_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(inner);

    let search = if history.filtering {
        Line::from(vec![
            Span::styled("/", theme::key()),
            Span::raw(history.filter.clone()),
            Span::styled("▌", theme::key()),
        ])
    } else if history.filter.is_empty() {
        Line::styled("/ to search (feature, persona, status, date)", theme::dim())
    } else {
        Line::from(vec![
            Span::styled("search: ", theme::dim()),
            Span::raw(history.filter.clone()),
        ])
    };
    frame.render_widget(Paragraph::new(search), search_area);

    let Some(_) = &history.sessions else {
        frame.render_widget(Paragraph::new("Loading…").style(theme::dim()), list_area);
        return;
    };
    let row_width = list_area.width.saturating_sub(2) as usize;
    let items: Vec<ListItem> = history
        .visible()
        .iter()
        .map(|s| {
            let date = s
                .created_at
                .get(..16)
                .unwrap_or(&s.created_at)
                .replace('T', " ");
            let status = s.status_label();
            let status_style = match status {
                "completed" => Style::new().fg(ratatui::style::Color::LightGreen),
                "failed" | "incomplete" => theme::error(),
                _ => Style::new().fg(ratatui::style::Color::Yellow),
            };
            let panel = format!("{}p", s.personas.len());
            let fixed = date.len() + 14 + panel.len() + 3;
            let names: Vec<&str> = s
                .personas
                .iter()
                .map(|p| p.name.split_whitespace().next().unwrap_or(&p.name))
                .collect();
            let feature = truncate(
                s.first_line(),
                row_width.saturating_sub(fixed).max(8) * 3 / 5,
            );
            let people = truncate(
                &names.join(", "),
                row_width.saturating_sub(fixed + feature.chars().count() + 3),
            );
            ListItem::new(Line::from(vec![
                Span::styled(format!("{date} "), theme::dim()),
                Span::styled(format!("{status:<14}"), status_style),
                Span::styled(format!("{panel} "), theme::dim()),
                Span::raw(feature),
                Span::styled(format!(" · {people}"), theme::dim()),
            ]))
        })
        .collect();
    if items.is_empty() {
        let text = if count == 0 {
            "No saved sessions yet: every debate is saved here as it runs."
        } else {
            "No session matches the search."
        };
        frame.render_widget(Paragraph::new(text).style(theme::dim()), list_area);
    } else {
        frame.render_stateful_widget(
            List::new(items)
                .highlight_symbol("▶ ")
                .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
            list_area,
            &mut history.list,
        );
    }
    let foot = match (&history.confirm_delete, history.errors.len()) {
        (Some(id), _) => Line::styled(
            format!("Delete session {id}? y deletes · n keeps it"),
            theme::error(),
        ),
        (None, 0) => Line::default(),
        (None, n) => Line::styled(
            format!("{n} session file(s) could not be read and are not listed (see the log)"),
            theme::error(),
        ),
    };
    frame.render_widget(Paragraph::new(foot), foot_area);
}

pub fn render_export_menu(frame: &mut Frame, area: Rect) {
    let popup = super::popup(frame, area, 44, 5);
    let lines = vec![
        Line::from(vec![
            Span::styled(" m", theme::key()),
            Span::raw("  Markdown (transcript + report)"),
        ]),
        Line::from(vec![
            Span::styled(" j", theme::key()),
            Span::raw("  JSON (the session file)"),
        ]),
        Line::styled(" Esc cancels", theme::dim()),
    ];
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme::key())
                .title(" Export session "),
        ),
        popup,
    );
}
