//! Colours and styles, in one place: every style the TUI draws with comes
//! from here, so a theme (dark, light, high contrast) and NO_COLOR change
//! the whole screen.
//!
//! The theme in force is per thread (tests pick theirs without touching
//! each other), starting from the one [`install`]ed for the process.
//!
//! NO_COLOR (set and not empty, per no-color.org) drops colours but keeps
//! bold, italics, underline and reverse video: the cursor, the selection and
//! the focused pane stay visible. Styles that only colour a background
//! (the editor's cursor, the paused badge) turn to reverse video then.

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, Ordering};

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier, Style};

use crate::persona::TechProficiency;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThemeName {
    /// For dark terminals (the default).
    Dark,
    /// For terminals with a white or light background.
    Light,
    /// Bright colours and bold, for low vision or washed-out screens.
    HighContrast,
}

impl ThemeName {
    pub const NAMES: [&'static str; 3] = ["dark", "light", "high-contrast"];

    /// `None` is the default, dark; an unknown name is an error that lists
    /// the known ones.
    pub fn from_setting(name: Option<&str>) -> Result<ThemeName, String> {
        match name.map(|n| n.trim().to_ascii_lowercase()).as_deref() {
            None | Some("dark") => Ok(ThemeName::Dark),
            Some("light") => Ok(ThemeName::Light),
            Some("high-contrast") => Ok(ThemeName::HighContrast),
            Some(other) => Err(format!(
                "unknown theme {other:?}: use one of {}",
                Self::NAMES.join(", ")
            )),
        }
    }
}

/// A theme and whether colour is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub name: ThemeName,
    pub no_color: bool,
}

impl Theme {
    pub const DEFAULT: Theme = Theme {
        name: ThemeName::Dark,
        no_color: false,
    };

    /// The theme named in the settings, with NO_COLOR read from `no_color_env`
    /// (the value of the variable, if set).
    pub fn from_settings(name: Option<&str>, no_color_env: Option<&str>) -> Result<Theme, String> {
        Ok(Theme {
            name: ThemeName::from_setting(name)?,
            no_color: no_color_env.is_some_and(|v| !v.is_empty()),
        })
    }

    fn encode(self) -> u8 {
        let name = match self.name {
            ThemeName::Dark => 0,
            ThemeName::Light => 1,
            ThemeName::HighContrast => 2,
        };
        name | if self.no_color { 4 } else { 0 }
    }

    fn decode(bits: u8) -> Theme {
        Theme {
            name: match bits & 3 {
                1 => ThemeName::Light,
                2 => ThemeName::HighContrast,
                _ => ThemeName::Dark,
            },
            no_color: bits & 4 != 0,
        }
    }

    fn palette(self) -> &'static Palette {
        match self.name {
            ThemeName::Dark => &DARK,
            ThemeName::Light => &LIGHT,
            ThemeName::HighContrast => &HIGH_CONTRAST,
        }
    }
}

/// The process's theme; threads start from it.
static INSTALLED: AtomicU8 = AtomicU8::new(0);

thread_local! {
    static CURRENT: Cell<Option<Theme>> = const { Cell::new(None) };
}

/// Sets the theme for the process (and this thread).
pub fn install(theme: Theme) {
    INSTALLED.store(theme.encode(), Ordering::SeqCst);
    CURRENT.with(|c| c.set(Some(theme)));
}

/// Sets the theme for this thread only (tests).
pub fn use_on_this_thread(theme: Theme) {
    CURRENT.with(|c| c.set(Some(theme)));
}

pub fn current() -> Theme {
    CURRENT
        .with(|c| c.get())
        .unwrap_or_else(|| Theme::decode(INSTALLED.load(Ordering::SeqCst)))
}

struct Palette {
    /// Speaker colours: distinct on the theme's background, from the 16 ANSI
    /// colours (dark, high contrast) or the 256-colour cube (light), so they
    /// work over any SSH session.
    speakers: [Color; 10],
    moderator: Color,
    accent: Color,
    dim: Color,
    error: Color,
    good: Color,
    warn: Color,
    bad: Color,
    request: Color,
    notice: Color,
    info: Color,
    code: Color,
    /// Backgrounds: the status bar, the backend badge, the editor's cursor.
    bar_bg: Color,
    badge_bg: Color,
    badge_fg: Color,
    cursor_bg: Color,
    cursor_fg: Color,
    /// High contrast: accents are bold as well as coloured.
    bold_accents: bool,
}

const DARK: Palette = Palette {
    speakers: [
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
    ],
    moderator: Color::White,
    accent: Color::Cyan,
    dim: Color::DarkGray,
    error: Color::LightRed,
    good: Color::LightGreen,
    warn: Color::Yellow,
    bad: Color::LightRed,
    request: Color::LightBlue,
    notice: Color::LightCyan,
    info: Color::Gray,
    code: Color::LightYellow,
    bar_bg: Color::Black,
    badge_bg: Color::Blue,
    badge_fg: Color::White,
    cursor_bg: Color::Gray,
    cursor_fg: Color::Black,
    bold_accents: false,
};

/// Dark, saturated colours that read on white (no yellow, no light cyan).
const LIGHT: Palette = Palette {
    speakers: [
        Color::Indexed(25),  // dark blue
        Color::Indexed(124), // dark red
        Color::Indexed(90),  // purple
        Color::Indexed(28),  // green
        Color::Indexed(130), // brown orange
        Color::Indexed(30),  // teal
        Color::Indexed(55),  // violet
        Color::Indexed(94),  // brown
        Color::Indexed(161), // raspberry
        Color::Indexed(22),  // dark green
    ],
    moderator: Color::Black,
    accent: Color::Indexed(25),
    dim: Color::Indexed(243),
    error: Color::Indexed(160),
    good: Color::Indexed(28),
    warn: Color::Indexed(130),
    bad: Color::Indexed(160),
    request: Color::Indexed(25),
    notice: Color::Indexed(24),
    info: Color::Indexed(240),
    code: Color::Indexed(88),
    bar_bg: Color::Indexed(254),
    badge_bg: Color::Indexed(25),
    badge_fg: Color::White,
    cursor_bg: Color::Indexed(240),
    cursor_fg: Color::White,
    bold_accents: false,
};

/// The brightest ANSI colours; nothing dark grey.
const HIGH_CONTRAST: Palette = Palette {
    speakers: [
        Color::LightCyan,
        Color::LightYellow,
        Color::LightMagenta,
        Color::LightGreen,
        Color::White,
        Color::LightRed,
        Color::LightBlue,
        Color::Cyan,
        Color::Yellow,
        Color::Magenta,
    ],
    moderator: Color::White,
    accent: Color::LightYellow,
    dim: Color::Gray,
    error: Color::LightRed,
    good: Color::LightGreen,
    warn: Color::LightYellow,
    bad: Color::LightRed,
    request: Color::LightCyan,
    notice: Color::LightCyan,
    info: Color::White,
    code: Color::LightYellow,
    bar_bg: Color::Black,
    badge_bg: Color::White,
    badge_fg: Color::Black,
    cursor_bg: Color::White,
    cursor_fg: Color::Black,
    bold_accents: true,
};

fn palette() -> &'static Palette {
    current().palette()
}

/// A colour for text, or nothing with NO_COLOR.
fn fg(color: Color) -> Style {
    if current().no_color {
        Style::new()
    } else {
        Style::new().fg(color)
    }
}

fn accented(color: Color) -> Style {
    let style = fg(color);
    if palette().bold_accents {
        style.add_modifier(Modifier::BOLD)
    } else {
        style
    }
}

/// Colour on a background; with NO_COLOR, reverse video instead.
fn on(fg_color: Color, bg_color: Color) -> Style {
    if current().no_color {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new().fg(fg_color).bg(bg_color)
    }
}

/// A persona keeps its colour across debates and sessions: it follows the id.
/// The moderator's questions stand apart from every persona's colour.
pub fn moderator_color() -> Color {
    palette().moderator
}

pub fn speaker_color(persona_id: u32) -> Color {
    let speakers = &palette().speakers;
    speakers[(persona_id.saturating_sub(1) as usize) % speakers.len()]
}

/// A speaker's name: their colour (none with NO_COLOR), bold.
pub fn speaker(color: Color) -> Style {
    fg(color).add_modifier(Modifier::BOLD)
}

pub fn proficiency_style(level: TechProficiency) -> Style {
    match level {
        TechProficiency::Low => bad(),
        TechProficiency::Medium => warn(),
        TechProficiency::High => good(),
    }
}

pub fn border(focused: bool) -> Style {
    if focused {
        fg(palette().accent).add_modifier(Modifier::BOLD)
    } else {
        fg(palette().dim)
    }
}

pub fn dim() -> Style {
    fg(palette().dim)
}

pub fn error() -> Style {
    fg(palette().error).add_modifier(Modifier::BOLD)
}

pub fn info() -> Style {
    fg(palette().info).add_modifier(Modifier::ITALIC)
}

pub fn key() -> Style {
    fg(palette().accent).add_modifier(Modifier::BOLD)
}

/// Running, finished, in favour.
pub fn good() -> Style {
    accented(palette().good)
}

/// Cancelled, cut off, mixed, partial.
pub fn warn() -> Style {
    accented(palette().warn)
}

/// Against, a concern, low proficiency (not an error: not bold).
pub fn bad() -> Style {
    accented(palette().bad)
}

/// A request on the report screen.
pub fn request() -> Style {
    accented(palette().request)
}

/// An information notice in the hint bar.
pub fn notice() -> Style {
    fg(palette().notice)
}

/// The caret after streaming text.
pub fn caret() -> Style {
    fg(palette().info)
}

/// A progress gauge.
pub fn gauge() -> Style {
    fg(palette().accent)
}

/// The status bar under everything.
pub fn status_bar() -> Style {
    if current().no_color {
        Style::new()
    } else {
        Style::new().bg(palette().bar_bg)
    }
}

/// The backend's badge in the status bar.
pub fn badge() -> Style {
    on(palette().badge_fg, palette().badge_bg).add_modifier(Modifier::BOLD)
}

/// The "no backend" badge.
pub fn badge_error() -> Style {
    on(palette().badge_fg, palette().error).add_modifier(Modifier::BOLD)
}

/// The paused badge: it must catch the eye.
pub fn paused() -> Style {
    on(Color::Black, palette().warn)
}

/// The editor's cursor when it has the focus.
pub fn editor_cursor() -> Style {
    on(palette().cursor_fg, palette().cursor_bg)
}

// Markdown, in replies and the report.

pub fn md_heading(level: u8) -> Style {
    let style = fg(palette().accent).add_modifier(Modifier::BOLD);
    if level <= 1 {
        style.add_modifier(Modifier::UNDERLINED)
    } else {
        style
    }
}

pub fn md_code() -> Style {
    fg(palette().code)
}

/// Bullets, list numbers, table rules and code fences.
pub fn md_mark() -> Style {
    fg(palette().dim)
}

pub fn md_link() -> Style {
    fg(palette().request).add_modifier(Modifier::UNDERLINED)
}

/// Drops every colour left in a drawn frame when NO_COLOR is set, keeping
/// the modifiers: a last guard for colours that did not come through the
/// styles above (speaker colours kept in state, widgets' defaults).
pub fn finish_frame(buf: &mut Buffer) {
    if !current().no_color {
        return;
    }
    for cell in buf.content.iter_mut() {
        cell.fg = Color::Reset;
        cell.bg = Color::Reset;
        cell.underline_color = Color::Reset;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theme_names_parse_and_unknown_names_are_explained() {
        assert_eq!(ThemeName::from_setting(None), Ok(ThemeName::Dark));
        assert_eq!(ThemeName::from_setting(Some("Light")), Ok(ThemeName::Light));
        assert_eq!(
            ThemeName::from_setting(Some("high-contrast")),
            Ok(ThemeName::HighContrast)
        );
        let err = ThemeName::from_setting(Some("solarized")).unwrap_err();
        assert!(err.contains("\"solarized\"") && err.contains("dark, light, high-contrast"));
    }

    #[test]
    fn no_color_follows_no_color_org() {
        let set = |v| Theme::from_settings(None, v).unwrap().no_color;
        assert!(!set(None));
        assert!(!set(Some("")), "an empty NO_COLOR does not count");
        assert!(set(Some("1")));
    }

    #[test]
    fn no_color_keeps_modifiers_and_drops_colours() {
        use_on_this_thread(Theme {
            name: ThemeName::Dark,
            no_color: true,
        });
        assert_eq!(border(true), Style::new().add_modifier(Modifier::BOLD));
        assert_eq!(
            editor_cursor(),
            Style::new().add_modifier(Modifier::REVERSED)
        );
        assert_eq!(error().fg, None);
        let mut buf = Buffer::empty(ratatui::layout::Rect::new(0, 0, 2, 1));
        buf[(0, 0)].set_fg(Color::Red).set_bg(Color::Blue);
        buf[(0, 0)].modifier = Modifier::REVERSED;
        finish_frame(&mut buf);
        assert_eq!(buf[(0, 0)].fg, Color::Reset);
        assert_eq!(buf[(0, 0)].bg, Color::Reset);
        assert_eq!(buf[(0, 0)].modifier, Modifier::REVERSED);
    }

    #[test]
    fn themes_differ_and_light_avoids_colours_unreadable_on_white() {
        for (name, expect_dim) in [
            (ThemeName::Dark, Color::DarkGray),
            (ThemeName::Light, Color::Indexed(243)),
            (ThemeName::HighContrast, Color::Gray),
        ] {
            use_on_this_thread(Theme {
                name,
                no_color: false,
            });
            assert_eq!(dim().fg, Some(expect_dim), "{name:?}");
        }
        let unreadable = [
            Color::Yellow,
            Color::LightYellow,
            Color::LightCyan,
            Color::White,
        ];
        let light = &LIGHT;
        for c in light
            .speakers
            .iter()
            .chain([&light.accent, &light.warn, &light.good])
        {
            assert!(!unreadable.contains(c), "{c:?} on white");
        }
        use_on_this_thread(Theme::DEFAULT);
    }
}
