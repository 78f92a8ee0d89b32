//! One-call init: [`Telemetry::builder`] collects the settings, the
//! environment fills in the rest, the pipelines are wired, and the
//! [`TelemetryGuard`] flushes everything on drop.
//!
//! ```text
//!  builder.rs    TelemetryBuilder: every setting (each overrides the environment)
//!  env.rs        OTEL_* / OBSERVE_* variables: headers, endpoints, resource attributes
//!  otlp.rs       where each signal goes: an OTLP endpoint, the default, or nowhere
//!  resource.rs   the Resource: detected host and process, environment, builder
//!  pipeline.rs   build(): the log sink, then spans, metrics and log records, one function each
//!  guard.rs      TelemetryGuard: flush and shutdown, one walk over the pipelines
//! ```
//!
//! ```no_run
//! fn main() -> Result<(), observe_core::InitError> {
//!     let _guard = observe_core::init("payment-service")?;
//!     observe_core::info!("service_started", port = 8080);
//!     Ok(())
//! }
//! ```

mod builder;
pub(crate) mod env;
mod guard;
pub(crate) mod otlp;
mod pipeline;
mod resource;
pub(crate) mod vars;

pub use builder::{LogOutput, TelemetryBuilder};
pub use guard::TelemetryGuard;

use crate::error::InitError;
use std::time::Duration;
use tracing::Dispatch;

/// Default cap on one field value in a log line: 8 KiB.
pub const DEFAULT_VALUE_CAP: usize = 8 * 1024;
/// Default size of the stdout buffer: 4 MiB.
pub const DEFAULT_LOG_BUFFER: usize = 4 << 20;
/// Default cap on distinct attribute sets per instrument.
pub const DEFAULT_CARDINALITY_LIMIT: usize = 2000;
/// Default shutdown deadline used when the guard is dropped.
pub const DEFAULT_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// Entry point: `Telemetry::builder("payment-service")`.
#[derive(Debug)]
pub struct Telemetry {
    dispatch: Dispatch,
    guard: TelemetryGuard,
}

impl Telemetry {
    /// A builder for the service called `service_name`.
    pub fn builder(service_name: impl Into<String>) -> TelemetryBuilder {
        TelemetryBuilder::new(service_name.into())
    }

    /// The tracing dispatcher, to install as a scoped default
    /// (`tracing::dispatcher::set_default(telemetry.dispatch())`).
    pub fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }

    /// The guard (flushes on drop).
    pub fn guard(&self) -> &TelemetryGuard {
        &self.guard
    }

    /// Splits into the dispatcher and the guard.
    pub fn into_parts(self) -> (Dispatch, TelemetryGuard) {
        (self.dispatch, self.guard)
    }
}

/// Starts observe for `service_name` with everything else from the
/// environment, and installs it globally. Keep the guard until the end of
/// `main`: dropping it flushes every signal.
///
/// Spans, metrics and log records go to the OTLP endpoint of
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (and friends) when one is set; otherwise
/// spans and log records are appended to `observe-data/` (see
/// [`export`](crate::export)).
///
/// ```no_run
/// fn main() -> Result<(), observe_core::InitError> {
///     let _guard = observe_core::init("payment-service")?;
///     observe_core::info!("service_started", "ready");
///     Ok(())
/// }
/// ```
pub fn init(service_name: &str) -> Result<TelemetryGuard, InitError> {
    Telemetry::builder(service_name).init()
}
