//! Overlays for managing the panel: the persona form, the delete question,
//! the stats view and the "generate personas" dialog with its progress.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Borders, Gauge, Paragraph, Wrap};

use crate::persona::stats::{Count, stats};
use crate::text::truncate;
use crate::tui::app::App;
use crate::tui::form::{FieldKind, FormMode, PersonaForm};
use crate::tui::panel::SynthUi;
use crate::tui::theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let panel = &app.panel;
    if let Some(form) = &panel.form {
        render_form(frame, area, form);
    } else if let Some(id) = panel.confirm_delete {
        let name = app
            .personas
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.as_str())
            .unwrap_or("?");
        render_question(
            frame,
            area,
            " Delete persona ",
            &format!("Delete #{id} {name}? y deletes (u undoes it) · n keeps"),
        );
    } else if panel.show_stats {
        render_stats(frame, area, app);
    } else if let Some(synth) = &panel.synth {
        render_synth(frame, area, synth);
    }
}

fn render_question(frame: &mut Frame, area: Rect, title: &str, text: &str) {
    let width = (text.chars().count() as u16 + 4).min(area.width.saturating_sub(4));
    let popup = super::popup(frame, area, width, 3);
    frame.render_widget(
        Paragraph::new(Line::styled(format!(" {text}"), theme::error())).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme::key())
                .title(title.to_string()),
        ),
        popup,
    );
}

fn render_form(frame: &mut Frame, area: Rect, form: &PersonaForm) {
    let width = area.width.saturating_sub(6).min(90);
    let label_width = 13;
    let value_width = (width as usize).saturating_sub(label_width + 4);
    let mut lines: Vec<Line> = Vec::new();
    for (i, field) in form.fields.iter().enumerate() {
        let focused = i == form.focus;
        let value = match field.kind {
            FieldKind::Choice => format!("◀ {} ▶", field.value),
            _ => field.value.clone(),
        };
        // The end of a long value stays in view while typing.
        let shown = if value.chars().count() > value_width.saturating_sub(1) {
            let skip = value.chars().count() + 2 - value_width;
            format!("…{}", value.chars().skip(skip).collect::<String>())
        } else {
            value
        };
        let label_style = if focused { theme::key() } else { theme::dim() };
        let mut spans = vec![
            Span::styled(
                format!(" {:<w$}", field.label, w = label_width - 1),
                label_style,
            ),
            Span::styled(
                shown,
                if focused {
                    Style::new().add_modifier(Modifier::BOLD)
                } else {
                    Style::new()
                },
            ),
        ];
        if focused && field.kind != FieldKind::Choice {
            spans.push(Span::styled("▌", theme::key()));
        }
        lines.push(Line::from(spans));
        if let Some(error) = &field.error {
            lines.push(Line::styled(
                format!(
                    "{:w$}↑ {}",
                    "",
                    truncate(error, value_width),
                    w = label_width
                ),
                theme::error(),
            ));
        }
    }
    lines.push(Line::default());
    let hint = if form.confirm_discard {
        Line::styled(
            " Discard your changes? y discards · n keeps editing",
            theme::error(),
        )
    } else {
        Line::styled(
            " Tab/↑↓ field · ←→ level · lists a; b; c · Enter save · Esc cancel",
            theme::dim(),
        )
    };
    lines.push(hint);
    let title = match form.mode {
        FormMode::Add => " New persona ",
        FormMode::Edit => " Edit persona ",
        FormMode::Review => " Generated persona: review, Enter saves, Esc discards ",
    };
    let height = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
    let popup = super::popup(frame, area, width, height);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme::key())
                .title(title),
        ),
        popup,
    );
}

fn bars<'a>(counts: &'a [Count], max_bars: usize, label_width: usize) -> Vec<Bar<'a>> {
    counts
        .iter()
        .take(max_bars)
        .map(|c| {
            Bar::default()
                .value(c.count as u64)
                .label(Line::raw(truncate(&c.name, label_width)))
                .style(Style::new().fg(Color::Cyan))
        })
        .collect()
}

fn chart<'a>(title: String, bars: &'a [Bar<'a>]) -> BarChart<'a> {
    BarChart::default()
        .block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme::dim())
                .title(title),
        )
        .direction(ratatui::layout::Direction::Horizontal)
        .bar_width(1)
        .bar_gap(0)
        .data(BarGroup::default().bars(bars))
}

fn render_stats(frame: &mut Frame, area: Rect, app: &App) {
    let s = stats(&app.personas);
    let popup = super::popup(
        frame,
        area,
        area.width.saturating_sub(4),
        area.height.saturating_sub(2),
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::key())
        .title(format!(" Panel stats · {} personas ", s.total))
        .title_bottom(Line::styled(" Esc or s closes ", theme::dim()));
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let [head, top, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Percentage(50),
        Constraint::Percentage(50),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new(format!(
            " {} countries · {} occupations · {} distinct traits · proficiency evenness {:.2} (1 = even)",
            s.diversity.countries,
            s.diversity.occupations,
            s.distinct_traits,
            s.diversity.proficiency_evenness
        ))
        .style(theme::dim()),
        head,
    );
    let rows = (top.height.saturating_sub(2)) as usize;
    let label = ((inner.width / 2) as usize / 3).clamp(6, 18);
    let [a, b] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    let [c, d] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    let mut proficiency = bars(&s.by_proficiency, 3, label);
    for (bar, color) in
        proficiency
            .iter_mut()
            .zip([Color::LightRed, Color::Yellow, Color::LightGreen])
    {
        *bar = bar.clone().style(Style::new().fg(color));
    }
    let second = match &s.ages {
        Some(ages) => ("Ages".to_string(), bars(&ages.buckets, rows, label)),
        None => (
            "Countries (more)".to_string(),
            bars(&s.by_country[rows.min(s.by_country.len())..], rows, label),
        ),
    };
    frame.render_widget(chart(" Tech proficiency ".into(), &proficiency), a);
    frame.render_widget(chart(format!(" {} ", second.0), &second.1), b);
    let countries = bars(&s.by_country, rows, label);
    frame.render_widget(
        chart(format!(" Countries ({}) ", s.by_country.len()), &countries),
        c,
    );
    let bottom_rows = (bottom.height.saturating_sub(2)) as usize;
    let traits = bars(&s.top_traits, bottom_rows, label);
    let occupations = bars(&s.by_occupation, bottom_rows, label);
    let [d1, d2] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(d);
    frame.render_widget(chart(" Occupations ".into(), &occupations), d1);
    frame.render_widget(chart(" Common traits ".into(), &traits), d2);
}

fn render_synth(frame: &mut Frame, area: Rect, synth: &SynthUi) {
    let width = area.width.saturating_sub(8).min(84);
    let block = |title: &str| {
        Block::default()
            .borders(Borders::ALL)
            .border_style(theme::key())
            .title(title.to_string())
    };
    match synth {
        SynthUi::Asking {
            brief,
            count,
            field,
            error,
        } => {
            let popup = super::popup(frame, area, width, 8);
            let cursor = |i: usize| if *field == i { "▌" } else { "" };
            let style = |i: usize| {
                if *field == i {
                    theme::key()
                } else {
                    theme::dim()
                }
            };
            let mut lines = vec![
                Line::from(vec![
                    Span::styled(" Who    ", style(0)),
                    Span::raw(truncate(brief, width as usize - 12)),
                    Span::styled(cursor(0), theme::key()),
                ]),
                Line::from(vec![
                    Span::styled(" How many ", style(1)),
                    Span::raw(count.clone()),
                    Span::styled(cursor(1), theme::key()),
                    Span::styled("  (1: review it first; more: a varied batch)", theme::dim()),
                ]),
                Line::default(),
            ];
            if let Some(e) = error {
                lines.push(Line::styled(format!(" {e}"), theme::error()));
            }
            lines.push(Line::styled(
                " e.g. \"retired farmer in Kenya who distrusts banking apps\"",
                theme::dim(),
            ));
            lines.push(Line::styled(
                " Tab field · Enter go · Esc cancel",
                theme::dim(),
            ));
            frame.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(block(" Generate personas with the LLM ")),
                popup,
            );
        }
        SynthUi::Running {
            count,
            accepted,
            failed,
            retries,
            last,
            started,
        } => {
            let popup = super::popup(frame, area, width, 7);
            let inner = block(" Generating ").inner(popup);
            frame.render_widget(block(" Generating "), popup);
            let [gauge, text] =
                Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
            let done = accepted + failed;
            frame.render_widget(
                Gauge::default()
                    .ratio((done as f64 / (*count).max(1) as f64).min(1.0))
                    .label(format!("{done} of {count}"))
                    .gauge_style(Style::new().fg(Color::LightGreen)),
                gauge,
            );
            frame.render_widget(
                Paragraph::new(vec![
                    Line::raw(format!(
                        " {accepted} kept · {failed} failed · {retries} retried · {}s",
                        started.elapsed().as_secs()
                    )),
                    Line::styled(
                        format!(" {}", truncate(last, width as usize - 4)),
                        theme::dim(),
                    ),
                    Line::styled(" Esc cancels (nothing is added)", theme::dim()),
                ]),
                text,
            );
        }
        SynthUi::Confirm { personas, failed } => {
            let mut lines: Vec<Line> = personas
                .iter()
                .take(12)
                .map(|p| {
                    Line::raw(truncate(
                        &format!(
                            " #{} {} · {} · {} · {}",
                            p.id, p.name, p.occupation, p.location, p.tech_proficiency
                        ),
                        width as usize - 2,
                    ))
                })
                .collect();
            if personas.len() > 12 {
                lines.push(Line::styled(
                    format!(" … and {} more", personas.len() - 12),
                    theme::dim(),
                ));
            }
            for (index, reason) in failed.iter().take(3) {
                lines.push(Line::styled(
                    truncate(&format!(" ✗ #{}: {reason}", index + 1), width as usize - 2),
                    theme::error(),
                ));
            }
            lines.push(Line::default());
            lines.push(Line::styled(
                format!(
                    " Add these {} personas? y/Enter adds · n discards ({} failed)",
                    personas.len(),
                    failed.len()
                ),
                theme::key(),
            ));
            let height = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
            let popup = super::popup(frame, area, width, height);
            frame.render_widget(
                Paragraph::new(lines).block(block(" Generated personas ")),
                popup,
            );
        }
    }
}
