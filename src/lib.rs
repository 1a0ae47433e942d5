//! persona-sim: a panel of virtual personas debates a product feature.
//!
//! The core (`persona`, `llm`, `sim`) knows nothing of terminals; the faces
//! (`tui`, `cli`) turn input into calls on it.

pub mod api_keys;
pub mod atomic_file;
pub mod cli;
pub mod config;
pub mod db;
pub mod llm;
pub mod observe;
pub mod persona;
pub mod serve;
pub mod services;
pub mod sim;
pub mod text;
pub mod tui;
