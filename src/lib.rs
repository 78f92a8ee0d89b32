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
//! | `alerts` | no | `observe::alerts`: Prometheus alert rules and a Grafana dashboard, generated at build or deploy time |
//! | `synthetic` | no | `observe::synthetic`: the synthetic-check runner, for a process of its own |
//! | `reqwest` | no | `observe::tower::reqwest::GatewayMiddleware` |
#![forbid(unsafe_code)]

pub use observe_core::*;

/// Tower layers (server: context in, spans, golden signals; client:
/// gateways; `grpc`: the tonic server and client layers).
#[cfg(feature = "tower")]
pub use observe_tower as tower;

/// `#[observed]`: a span, function golden signals and failure bookkeeping
/// around a function (`#[observed(gateway = "bank")]` for external calls).
#[cfg(feature = "macros")]
pub use observe_macros::observed;

#[cfg(feature = "macros")]
#[doc(hidden)]
pub use observe_macros as __macros;

/// Alert rules and dashboards for the service (observe-alerts).
#[cfg(feature = "alerts")]
pub use observe_alerts as alerts;

/// Synthetic checks run from outside the service (observe-synthetic).
#[cfg(feature = "synthetic")]
pub use observe_synthetic as synthetic;

/// The Markdown guides' code blocks, compiled and run as doc tests.
#[cfg(doctest)]
mod guides {
    #[doc = include_str!("../README.md")]
    struct Readme;
    #[cfg(all(feature = "alerts", feature = "grpc"))]
    #[doc = include_str!("../docs/getting-started.md")]
    struct GettingStarted;
    #[cfg(feature = "alerts")]
    #[doc = include_str!("../docs/alerts.md")]
    struct Alerts;
    #[cfg(feature = "synthetic")]
    #[doc = include_str!("../docs/synthetic.md")]
    struct Synthetic;
    #[doc = include_str!("../docs/metrics-exposition.md")]
    struct MetricsExposition;
    #[doc = include_str!("../docs/sampling.md")]
    struct Sampling;
}
