//! The simulation core: prompts, the turn-by-turn debate, the feedback
//! report and saved sessions. It knows no face: no terminal, clap or HTTP
//! (tests/layering.rs), and its messages state facts; the command to type
//! about them is the face's to add.
//!
//! - `debate`: the rounds, turn by turn, streamed out as `SimEvent`s
//! - `devil`: the herding alarm and the devil's-advocate turn
//! - `turn_filter`: keeps a streamed turn to one speaker
//! - `prompts`: what each persona is asked
//! - `stance`: the stance line that ends each turn, read and taken out
//! - `report/`: the feedback report (prompt, model call, parse, Markdown)
//! - `session/`: a saved debate (the model, its store, the phase runner)
//! - `eval`: a debate and its report in numbers (copy, loops, stances, citations)
//! - `export`: a session as Markdown or JSON
//! - `live`: the current debate's events for spectators, and audience questions
//! - `synth`: new personas written by the model

pub mod debate;
pub mod devil;
pub mod eval;
pub mod export;
pub mod live;
pub mod moderator;
pub mod prompts;
pub mod report;
pub mod session;
pub mod stance;
pub mod synth;
pub mod turn_filter;
