//! Moved to `tests/support/binary.rs`; this shim keeps `mod binary;` (next
//! to `mod support;`) working until those files say `support::binary`.
pub use crate::support::binary::*;
