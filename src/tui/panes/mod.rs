//! The panes of the main screens; each renders a piece of
//! [`super::app::App`]. Dialogs live in [`super::views`].

pub mod conversation;
pub mod editor;
pub mod personas;
pub mod report;
pub mod stage;
pub mod status;
