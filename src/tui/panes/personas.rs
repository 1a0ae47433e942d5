//! The persona list: multi-select, with name, occupation and proficiency.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem};
use unicode_width::UnicodeWidthStr;

use crate::text::truncate;
use crate::tui::app::{App, Focus};
use crate::tui::theme;

pub fn render(frame: &mut Frame, area: Rect, app: &mut App) {
    let focused = app.focus == Focus::Personas;
    let title = format!(" Personas {}/{} ", app.selected.len(), app.personas.len());
    let mut block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(focused))
        .title(title);
    if let Some(filter) = &app.persona_list.filter {
        let cursor = if filter.editing { "▌" } else { "" };
        block = block.title_bottom(Line::from(vec![
            Span::styled(format!(" /{}{cursor} ", filter.text), theme::key()),
            Span::styled(
                format!("{} shown ", app.persona_list.visible.len()),
                theme::dim(),
            ),
        ]));
    }
    let inner_width = block.inner(area).width as usize;
    let items: Vec<ListItem> = app
        .persona_list
        .visible
        .iter()
        .map(|&i| &app.personas[i])
        .map(|p| {
            let checked = app.selected.contains(&p.id);
            let mark = if checked { "[x] " } else { "[ ] " };
            let level = match p.tech_proficiency {
                crate::persona::TechProficiency::Low => "Low",
                crate::persona::TechProficiency::Medium => "Med",
                crate::persona::TechProficiency::High => "High",
            };
            // name · occupation, cut to leave room for the level badge.
            let room = inner_width.saturating_sub(mark.len() + 5);
            let name = p.name.as_str();
            let rest = format!(" · {}", p.occupation);
            let (name, rest) = fit(name, &rest, room);
            let pad = room.saturating_sub(name.width() + rest.width());
            let name_style = Style::new()
                .fg(theme::speaker_color(p.id))
                .add_modifier(if checked {
                    Modifier::BOLD
                } else {
                    Modifier::empty()
                });
            ListItem::new(Line::from(vec![
                Span::styled(mark, if checked { theme::key() } else { theme::dim() }),
                Span::styled(name, name_style),
                Span::styled(rest, theme::dim()),
                Span::raw(" ".repeat(pad + 1)),
                Span::styled(
                    format!("{level:>4}"),
                    theme::proficiency_style(p.tech_proficiency),
                ),
            ]))
        })
        .collect();
    let highlight = if focused {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new().add_modifier(Modifier::UNDERLINED)
    };
    let list = List::new(items).block(block).highlight_style(highlight);
    frame.render_stateful_widget(list, area, &mut app.list);
}

/// Cuts `name` then `rest` to fit `room` columns, with an ellipsis.
fn fit(name: &str, rest: &str, room: usize) -> (String, String) {
    if name.width() >= room {
        return (truncate(name, room), String::new());
    }
    let left = room - name.width();
    (name.to_string(), truncate(rest, left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_truncates_with_an_ellipsis() {
        assert_eq!(
            fit("Ana", " · Nurse", 20),
            ("Ana".into(), " · Nurse".into())
        );
        assert_eq!(
            fit("Ana", " · Intensive care nurse", 10),
            ("Ana".into(), " · Int…".into())
        );
        assert_eq!(fit("Anastasia", " · Nurse", 5).0, "Anas…");
    }
}
