//! The simulation core: prompts, the turn-by-turn debate, the feedback
//! report and saved sessions.

pub mod debate;
pub mod export;
pub mod prompts;
pub mod report;
pub mod session;
pub mod synth;
pub mod turn_filter;
