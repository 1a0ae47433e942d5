//! Colours and styles, in one place.

use ratatui::style::{Color, Modifier, Style};

use crate::persona::TechProficiency;

/// Speaker colours: distinct on dark and light terminals, ANSI-only so they
/// work over any SSH session.
const SPEAKER_PALETTE: [Color; 10] = [
    Color::Cyan,
    Color::Yellow,
    Color::Magenta,
    Color::Green,
    Color::LightBlue,
    Color::LightRed,
    Color::LightGreen,
    Color::LightMagenta,
    Color::LightYellow,
    Color::Blue,
];

/// A persona keeps its colour across debates and sessions: it follows the id.
/// The moderator's questions stand apart from every persona's colour.
pub fn moderator_color() -> Color {
    Color::White
}

pub fn speaker_color(persona_id: u32) -> Color {
    SPEAKER_PALETTE[(persona_id.saturating_sub(1) as usize) % SPEAKER_PALETTE.len()]
}

pub fn proficiency_style(level: TechProficiency) -> Style {
    match level {
        TechProficiency::Low => Style::new().fg(Color::LightRed),
        TechProficiency::Medium => Style::new().fg(Color::Yellow),
        TechProficiency::High => Style::new().fg(Color::LightGreen),
    }
}

pub fn border(focused: bool) -> Style {
    if focused {
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
    } else {
        Style::new().fg(Color::DarkGray)
    }
}

pub fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

pub fn error() -> Style {
    Style::new()
        .fg(Color::LightRed)
        .add_modifier(Modifier::BOLD)
}

pub fn info() -> Style {
    Style::new().fg(Color::Gray).add_modifier(Modifier::ITALIC)
}

pub fn key() -> Style {
    Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
}
