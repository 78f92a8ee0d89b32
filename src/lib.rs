//! # observe
//!
//! Make a service observable the day it is deployed: one dependency, one
//! init call, one layer, and `#[observed]` on the functions that matter.
//!
//! - **Structured logs**: every event is one JSON line with `timestamp`,
//!   `level`, `service`, `event`, `trace_id`, `span_id`, then typed fields and
//!   the fields of the enclosing spans.
//! - **Correlation**: the same W3C trace id in log lines and exported spans.
//! - **Tracing**: spans exported to OpenTelemetry span processors.
//!
//! ```no_run
//! fn main() -> Result<(), observe::InitError> {
//!     let _guard = observe::init("payment-service")?;
//!     let span = observe::tracing::info_span!("checkout", order_id = "ord_123");
//!     let _e = span.enter();
//!     observe::error!("payment_failed", gateway_status_code = 504);
//!     Ok(())
//! }
//! ```
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tower` | yes | `observe::tower`: server and gateway layers |
//! | `macros` | yes | `#[observed]` |
#![forbid(unsafe_code)]

pub use observe_core::*;

/// Tower layers (server: context in, spans, golden signals; client: gateways).
#[cfg(feature = "tower")]
pub use observe_tower as tower;

/// `#[observed]`: a span, function golden signals and failure bookkeeping
/// around a function (`#[observed(gateway = "bank")]` for external calls).
#[cfg(feature = "macros")]
pub use observe_macros::observed;

#[cfg(feature = "macros")]
#[doc(hidden)]
pub use observe_macros as __macros;

/// The Markdown guides' code blocks, compiled and run as doc tests.
#[cfg(doctest)]
mod guides {
    #[doc = include_str!("../README.md")]
    struct Readme;
    #[doc = include_str!("../docs/getting-started.md")]
    struct GettingStarted;
    #[doc = include_str!("../docs/alerts.md")]
    struct Alerts;
    #[doc = include_str!("../docs/synthetic.md")]
    struct Synthetic;
    #[doc = include_str!("../docs/metrics-exposition.md")]
    struct MetricsExposition;
    #[doc = include_str!("../docs/sampling.md")]
    struct Sampling;
}
