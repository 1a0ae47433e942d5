//! Operating persona-sim: Prometheus metrics, health, and file logs.
//! The core knows nothing of this: LLM calls are measured by wrapping the
//! backend ([`instrument::Instrumented`]), and the faces report the rest.

pub mod http;
pub mod instrument;
pub mod limits;
pub mod logging;
pub mod metrics;
