//! The panes; each renders a piece of [`super::app::App`].

pub mod conversation;
pub mod editor;
pub mod help;
pub mod model_offer;
pub mod personas;
pub mod status;
