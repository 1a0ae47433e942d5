//! "A debate is running: quit?" (q or Ctrl-C while a debate, report or
//! follow-up runs). Ctrl-C again, y or Enter quit; the run is saved as
//! cancelled, as it always was.

use crossterm::event::KeyCode;
use ratatui::Frame;
use ratatui::layout::Rect;

use super::View;
use super::confirm_delete::draw_question;
use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::keymap::{Binding, ch, hinted, key};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfirmQuit;

pub static BINDINGS: &[Binding] = &[
    hinted(
        &[ch('y'), key(KeyCode::Enter)],
        "y Enter",
        "quit (Ctrl-C too); what ran so far is saved as cancelled",
        ("y", "quit"),
        Action::QuitNow,
    ),
    hinted(
        &[ch('n'), key(KeyCode::Esc)],
        "n Esc",
        "keep it running",
        ("n", "keep running"),
        Action::CloseOverlay,
    ),
];

impl View for ConfirmQuit {
    fn bindings(&self) -> &'static [Binding] {
        BINDINGS
    }

    fn draw(&self, frame: &mut Frame, area: Rect, _app: &App) {
        draw_question(
            frame,
            area,
            " Quit ",
            "It is still running. Quit and save it as cancelled? y quits · n keeps it running",
        );
    }
}
