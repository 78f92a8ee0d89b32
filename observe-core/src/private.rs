//! The runtime that generated code (the `#[observed]` macro, the log macros)
//! and observe's own crates call. Not a public API: names may change in any release.

pub use crate::classify::{GatewayFailure, RequestState};
pub use crate::macros::is_snake_case;
pub use crate::signals::{GatewayStatus, Signals};
pub use tokio;
pub use tracing;
pub use tracing_core;

pub use crate::observed;

/// Result classification used by generated code.
pub use crate::classify;

pub use crate::span::{with_current_span, with_span, Propagated, SpanHandle};
use std::sync::Arc;

/// The golden-signal instruments of the current telemetry (`None` when the
/// SDK is disabled or observe is not installed).
#[inline]
pub fn signals() -> Option<Arc<Signals>> {
    crate::context::current_shared().and_then(|s| s.signals.clone())
}

/// The request the current span belongs to.
pub(crate) fn current_request() -> Option<Arc<RequestState>> {
    crate::context::with_current(|s| s.request.clone()).flatten()
}
