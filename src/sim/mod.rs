//! The simulation core: prompts and the turn-by-turn debate.

pub mod debate;
pub mod prompts;
