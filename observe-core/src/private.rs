//! What generated code (the `#[observed]` macro, the log macros) calls. Not
//! a public API: names may change in any release. The crates built on core
//! use its documented interface instead (`span`, `signals`, `classify`,
//! `propagation`).

pub use crate::macros::is_snake_case;
pub use tokio;
pub use tracing;
pub use tracing_core;

pub use crate::observed;

/// Result classification used by generated code.
pub use crate::classify;
