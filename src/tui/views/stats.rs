//! Panel statistics (s in the persona list): proficiency, countries, ages,
//! occupations and common traits as bar charts.

use crossterm::event::KeyCode;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Borders, Paragraph};

use super::{View, hint_text, popup};
use crate::persona::stats::{Count, stats};
use crate::text::truncate;
use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::keymap::{Binding, ch, hinted, key};
use crate::tui::theme;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats;

pub static BINDINGS: &[Binding] = &[hinted(
    &[key(KeyCode::Esc), ch('s'), ch('q'), key(KeyCode::Enter)],
    "Esc s q Enter",
    "close the statistics",
    ("Esc", "close"),
    Action::CloseOverlay,
)];

impl View for Stats {
    fn bindings(&self) -> &'static [Binding] {
        BINDINGS
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        draw_stats(frame, area, app);
    }
}

fn bars<'a>(counts: &'a [Count], max_bars: usize, label_width: usize) -> Vec<Bar<'a>> {
    counts
        .iter()
        .take(max_bars)
        .map(|c| {
            Bar::default()
                .value(c.count as u64)
                .label(Line::raw(truncate(&c.name, label_width)))
                .style(theme::gauge())
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

fn draw_stats(frame: &mut Frame, area: Rect, app: &App) {
    let s = stats(app.personas());
    let popup = popup(
        frame,
        area,
        area.width.saturating_sub(4),
        area.height.saturating_sub(2),
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::key())
        .title(format!(
            " Panel stats · {} ",
            crate::text::plural(s.total, "persona")
        ))
        .title_bottom(Line::styled(hint_text(BINDINGS), theme::dim()));
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
    for (bar, color) in proficiency
        .iter_mut()
        .zip([theme::bad(), theme::warn(), theme::good()])
    {
        *bar = bar.clone().style(color);
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
