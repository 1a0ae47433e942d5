//! What the user asked for (Action) and what the loop must do (Effect).

use crossterm::event::KeyEvent;

use crate::sim::debate::DebateConfig;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Quit,
    FocusNext,
    FocusPrev,
    StartDebate,
    /// Esc: close an overlay, else cancel a running debate, else clear the notice.
    Escape,
    ToggleHelp,
    ListUp,
    ListDown,
    ListTop,
    ListBottom,
    ListToggle,
    ListToggleAll,
    ScrollUp(usize),
    ScrollDown(usize),
    PageUp,
    PageDown,
    ScrollTop,
    FollowTail,
    /// A key for the feature editor.
    Edit(KeyEvent),
    Paste(String),
    /// Something outside changed the screen (resize, focus gained).
    Redraw,
    /// The offer to download the local model: yes.
    AcceptModelFetch,
    /// No, or cancel a running download, or close the failure message.
    DismissModelOffer,
}

#[derive(Debug, Clone)]
pub enum Effect {
    StartDebate(DebateConfig),
    CancelDebate,
    FetchModel(std::path::PathBuf),
    CancelFetch,
}
