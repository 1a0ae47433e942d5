//! Helpers shared by the integration tests: each test file says
//! `mod support;` and uses what it needs.
//!
//! - the mock OpenAI-compatible server (`mock.rs`, re-exported here; the
//!   `mock_server` example builds that one file on its own),
//! - the real binary run as a user would (`binary`),
//! - what a test needs from the machine, skipped outside CI and required in
//!   it (`needs`),
//! - paused-clock tests against real sockets (`clock`),
//! - a model download server (`download`).
#![allow(dead_code)]

mod mock;

pub mod binary;
pub mod clock;
pub mod download;
pub mod needs;

// Unused in the test files that need no mock server.
#[allow(unused_imports)]
pub use mock::*;
