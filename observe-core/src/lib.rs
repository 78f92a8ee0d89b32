//! observe's core: one-call init, JSON log lines with mandatory fields and
//! trace ids, W3C-id spans exported to OpenTelemetry, log sampling, and a
//! test harness.
//!
//! Most users depend on the `observe` facade, which re-exports this crate.
//!
//! ```no_run
//! fn main() -> Result<(), observe_core::InitError> {
//!     let _guard = observe_core::init("payment-service")?;
//!     let span = tracing::info_span!("checkout", order_id = "ord_123");
//!     let _e = span.enter();
//!     observe_core::error!("payment_failed", gateway_status_code = 504);
//!     Ok(())
//! }
//! ```
//!
//! writes one line on stdout:
//!
//! ```text
//! {"timestamp":"2026-05-22T02:14:33.123456Z","level":"ERROR","service":"payment-service","event":"payment_failed","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","target":"payments","gateway_status_code":504,"order_id":"ord_123"}
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`Telemetry`], [`init`] (`telemetry/`) | the builder, the environment, the pipelines it wires, the guard |
//! | [`TelemetryLayer`] (`layer/`) | the tracing layer: span ids and export, one JSON line per event |
//! | [`span`] | observe's state of a span, for the crates built on core |
//! | [`signals`] | the golden-signal instruments and the one table of metric names |
//! | [`classify`] | what a failure is, for every layer |
//! | [`propagation`], [`w3c`] | W3C Trace Context and Baggage in and out |
//! | [`export`] | span, log-record and metric pipelines; OTLP, files, Prometheus; tail sampling |
//! | [`exemplars`], [`metrics`], [`intern`] | exemplar table, snapshot reader, interned names |
//! | `testing` (feature `testing`) | the capture harness and the builder's test-only settings |
#![forbid(unsafe_code)]

mod bridge;
pub mod classify;
mod clock;
mod context;
mod error;
pub mod exemplars;
pub mod export;
mod filter;
mod hex;
mod ids;
pub mod intern;
pub(crate) mod layer;
pub(crate) mod log;
mod macros;
pub mod metrics;
#[doc(hidden)]
pub mod observed;
pub mod propagation;
mod pseudonym;
mod sampler;
mod scope;
pub mod signals;
pub mod span;
mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod w3c;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use classify::{ErrorType, Outcome};
pub use context::{current_span_context, current_span_id, current_trace_id, current_traceparent};
pub use error::{InitError, ShutdownError};
pub use layer::TelemetryLayer;
pub use log::redact::{DEFAULT_DENY_LIST, REDACTED};
pub use log::sampling::LogSampling;
pub use log::writer::{FullPolicy, LineSink, MemorySink, NonBlocking, SyncWriter};
pub use pseudonym::{pseudonym, PseudonymKey};
pub use sampler::HeadSampler;
pub use scope::instrumentation_scope;
pub use telemetry::{
    init, LogOutput, Telemetry, TelemetryBuilder, TelemetryGuard, DEFAULT_CARDINALITY_LIMIT,
    DEFAULT_LOG_BUFFER, DEFAULT_SHUTDOWN_DEADLINE, DEFAULT_VALUE_CAP,
};

/// `t` as observe's log lines write it: RFC 3339, UTC, microseconds
/// (`2026-05-22T02:14:33.123456Z`).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_micros(1_779_416_073_123_456);
/// assert_eq!(observe_core::rfc3339_micros(t), "2026-05-22T02:14:33.123456Z");
/// ```
pub fn rfc3339_micros(t: std::time::SystemTime) -> String {
    let mut buf = Vec::with_capacity(27);
    log::timestamp::write_rfc3339_micros(&mut buf, t);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Run-time control of log sampling for the current telemetry.
///
/// ```
/// # let (_, _cap) = observe_core::testing::capture(|| {
/// observe_core::sampling().full_fidelity_for(std::time::Duration::from_secs(600));
/// # });
/// ```
pub fn sampling() -> SamplingControl {
    SamplingControl {
        shared: context::current_shared(),
    }
}

/// Handle returned by [`sampling`].
#[derive(Debug)]
pub struct SamplingControl {
    shared: Option<std::sync::Arc<layer::Shared>>,
}

impl SamplingControl {
    /// Keeps every log line for `d` (during an incident), then samples again.
    pub fn full_fidelity_for(&self, d: std::time::Duration) {
        if let Some(s) = &self.shared {
            s.sampling_state.full_fidelity_for(d);
        }
    }

    /// Ends full fidelity now.
    pub fn end_full_fidelity(&self) {
        if let Some(s) = &self.shared {
            s.sampling_state.end_full_fidelity();
        }
    }

    /// Whether every line is being kept right now.
    pub fn is_full_fidelity(&self) -> bool {
        self.shared
            .as_ref()
            .is_some_and(|s| s.log_sampling.is_none() || s.sampling_state.full_fidelity())
    }
}

// Re-exports of the exact versions observe is built with.
pub use opentelemetry;
pub use opentelemetry_sdk;
pub use tracing;
pub use tracing_subscriber;

/// Marks the current request as failed although its response may look
/// successful (an implicit failure: a 200 whose payload says the work failed).
/// The server layer then records it with `error.type = reason` and status Error.
///
/// ```
/// # let (_, _cap) = observe_core::testing::capture(|| {
/// observe_core::mark_failed("gateway_timeout");
/// # });
/// ```
pub fn mark_failed(reason: impl Into<std::borrow::Cow<'static, str>>) {
    if let Some(req) = context::current_request() {
        req.mark_failed(reason.into());
    }
    let _ = span::with_current_span(|mut h| h.set_error("implicit failure"));
}

/// A constrained resource whose utilisation feeds `observe.resource.utilization`.
///
/// ```
/// # let (_, cap) = observe_core::testing::capture(|| {
/// observe_core::saturation("db_pool").record(42, 100);
/// # });
/// # let p = cap.metric("observe.resource.utilization");
/// # assert_eq!(p[0].value, observe_core::testing::MetricValue::Gauge(0.42));
/// ```
pub fn saturation(resource: impl Into<std::borrow::Cow<'static, str>>) -> Saturation {
    Saturation {
        resource: resource.into(),
    }
}

/// Handle returned by [`saturation`].
#[derive(Clone, Debug)]
pub struct Saturation {
    resource: std::borrow::Cow<'static, str>,
}

impl Saturation {
    /// Records `used` out of `capacity` (a capacity of 0 records 0).
    pub fn record(&self, used: u64, capacity: u64) {
        let ratio = if capacity == 0 {
            0.0
        } else {
            used as f64 / capacity as f64
        };
        self.record_ratio(ratio);
    }

    /// Records a ratio between 0 and 1.
    pub fn record_ratio(&self, ratio: f64) {
        if let Some(s) = signals::current() {
            s.utilization(self.resource.clone(), ratio);
        }
    }
}

/// A response extension that marks the response as an implicit failure
/// (the server layer records it with `error.type` = the reason).
///
/// ```
/// let mut res = http::Response::new(());
/// res.extensions_mut().insert(observe_core::ImplicitFailure("payment_pending".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImplicitFailure(pub std::borrow::Cow<'static, str>);

/// Watches the current tokio runtime's global (injection) queue: every
/// `interval`, records its depth divided by `capacity` as
/// `observe.resource.utilization{resource="tokio_global_queue"}`, so the
/// saturation alert sees a runtime falling behind. Call from inside the
/// runtime; abort the returned handle to stop.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let watcher = observe_core::watch_tokio_runtime(1024, std::time::Duration::from_secs(5));
/// watcher.abort();
/// # }
/// ```
pub fn watch_tokio_runtime(
    capacity: usize,
    interval: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    let handle = tokio::runtime::Handle::current();
    let gauge = saturation("tokio_global_queue");
    handle.spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let depth = tokio::runtime::Handle::current()
                .metrics()
                .global_queue_depth();
            gauge.record(depth as u64, capacity as u64);
        }
    })
}
