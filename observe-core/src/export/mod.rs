//! Export: OTLP (gRPC or HTTP/protobuf) when an endpoint is configured, local
//! OTLP/JSON files otherwise, through observe's own bounded, non-blocking
//! pipelines for spans, log records and metrics.
//!
//! ```no_run
//! // OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 ./payment-service
//! fn main() -> Result<(), observe_core::InitError> {
//!     let _guard = observe_core::init("payment-service")?; // spans, metrics, log records → collector
//!     Ok(())
//! }
//! ```
//!
//! # The pipeline
//!
//! ```text
//!  request threads (never block)             observe-export-traces / -logs / -metrics
//!  ─────────────────────────────             (one thread each, a current-thread tokio runtime)
//!  span closes ─▶ TelemetryLayer ─▶ SpanPipeline::on_end ─try_send─▶ [queue 2048] ─▶ batch 512 ─▶ OTLP / traces.jsonl
//!  event       ─▶ TelemetryLayer ─▶ SdkLogger ─▶ LogPipeline::emit ─try_send─▶ [queue 2048] ─▶ batch 512 ─▶ OTLP / logs.jsonl
//!  counter.add ─▶ SdkMeterProvider (atomics)           MetricPipeline: every 60 s collect ─▶ OTLP
//!                        │ queue full                         │ export failed / deadline passed
//!                        ▼                                    ▼
//!        observe.telemetry.dropped{signal, reason}  +  `telemetry_dropped` log line (≤ 1 per signal per minute)
//!
//!  TelemetryGuard::drop / shutdown(deadline): traces, then logs, then metrics: each exports what it
//!  holds and stops its thread within what is left of the deadline.
//! ```
//!
//! `on_end` and `emit` run on the thread that ended the span or logged: one
//! atomic increment and one `try_send` into a bounded channel, no lock held,
//! no I/O, never a wait (a log record is copied once; a span is moved; see
//! `benches/export.rs`). Batching, encoding, network and file I/O run on the
//! pipeline's thread, whose runtime is observe's own: gRPC export works in a
//! program without tokio, and a busy or blocked user runtime never delays it.
//!
//! # When what is exported where
//!
//! | configuration | spans | log records | metrics |
//! |---|---|---|---|
//! | an OTLP endpoint for the signal (builder or `OTEL_EXPORTER_OTLP_*`) | OTLP | OTLP | OTLP |
//! | no endpoint, [`init`](crate::init) with the process environment | `observe-data/traces.jsonl` | `observe-data/logs.jsonl` | — |
//! | no endpoint, `OBSERVE_EXPORT_DIR=<dir>` or [`export_dir`](crate::TelemetryBuilder::export_dir) | `<dir>/traces.jsonl` | `<dir>/logs.jsonl` | — |
//! | `OBSERVE_EXPORT_DIR=none`, or `OTEL_<SIGNAL>_EXPORTER=none` | — | — | — |
//!
//! The `observe-data/` default applies only to `init()` reading the real
//! process environment: [`build`](crate::TelemetryBuilder::build) and any
//! builder given a test environment (`env_source` of the `testing`
//! feature; the test harness uses `|_| None`) write no files
//! unless a folder is named. Processors added with
//! [`span_processor`](crate::TelemetryBuilder::span_processor) and
//! friends run in addition.
//!
//! # What is counted
//!
//! `observe.telemetry.dropped` (`{item}`; attributes `signal` =
//! `traces` | `logs` | `metrics`, `reason` = `queue_full` | `export_failed` |
//! `shutdown_timeout`) counts spans, log records and metric data points that
//! never reached the receiver. Every observe pipeline passed to the builder is
//! counted, whether observe built it or you did.

pub(crate) mod batch;
mod client;
pub(crate) mod dropped;
pub mod file;
mod json;
mod log;
mod metric;
pub(crate) mod otlp;
pub mod prometheus;
pub(crate) mod record;
pub(crate) mod recycle;
mod retry;
pub(crate) mod span;
pub mod tail;
pub(crate) mod tls;
pub(crate) mod worker;

pub use batch::BatchConfig;
pub use dropped::{DropReason, ExportStats, Signal};
pub use log::LogPipeline;
pub use metric::MetricPipeline;
pub use otlp::{Compression, Protocol, DEFAULT_OTLP_TIMEOUT};
pub use span::SpanPipeline;

use dropped::DropStats;
use opentelemetry::metrics::{Meter, ObservableCounter};
use opentelemetry::KeyValue;
use std::sync::Arc;
use std::time::Duration;

/// `observe.telemetry.dropped`: telemetry items that never reached the receiver.
pub use crate::signals::names::TELEMETRY_DROPPED;
/// `observe.telemetry.export.retries`: export attempts made again after a retryable failure.
pub use crate::signals::names::TELEMETRY_EXPORT_RETRIES;

/// Default metric export interval (`OTEL_METRIC_EXPORT_INTERVAL`): 60 s.
pub const DEFAULT_METRIC_INTERVAL: Duration = Duration::from_secs(60);
/// Default metric export timeout (`OTEL_METRIC_EXPORT_TIMEOUT`): 30 s.
pub const DEFAULT_METRIC_TIMEOUT: Duration = Duration::from_secs(30);

/// Registers `observe.telemetry.dropped` and
/// `observe.telemetry.export.retries` on `meter`, reading `stats`.
pub(crate) fn dropped_counter(
    meter: &Meter,
    stats: Vec<Arc<DropStats>>,
) -> [ObservableCounter<u64>; 2] {
    let row = crate::signals::names::row_of!(TELEMETRY_DROPPED);
    let of_signals = Arc::new(stats);
    let all = Arc::clone(&of_signals);
    let dropped = meter
        .u64_observable_counter(row.name)
        .with_description(row.description)
        .with_unit(row.unit)
        .with_callback(move |obs| {
            for signal in Signal::ALL {
                let of_signal: Vec<&Arc<DropStats>> =
                    all.iter().filter(|s| s.signal == signal).collect();
                if of_signal.is_empty() {
                    continue;
                }
                for reason in DropReason::ALL {
                    let n: u64 = of_signal.iter().map(|s| s.get(reason)).sum();
                    obs.observe(
                        n,
                        &[
                            KeyValue::new("signal", signal.as_str()),
                            KeyValue::new("reason", reason.as_str()),
                        ],
                    );
                }
            }
        })
        .build();
    let row = crate::signals::names::row_of!(TELEMETRY_EXPORT_RETRIES);
    let retries = meter
        .u64_observable_counter(row.name)
        .with_description(row.description)
        .with_unit(row.unit)
        .with_callback(move |obs| {
            for signal in Signal::ALL {
                let mut any = false;
                let mut n = 0;
                for s in of_signals.iter().filter(|s| s.signal == signal) {
                    any = true;
                    n += s.retries().0;
                }
                if any {
                    obs.observe(n, &[KeyValue::new("signal", signal.as_str())]);
                }
            }
        })
        .build();
    [dropped, retries]
}

/// An SDK error as one line of text: the message itself, without the SDK's
/// `Operation failed: ` in front and without the repeats a rendered source
/// chain often has (`transport error: invalid peer certificate:
/// UnknownIssuer: invalid peer certificate: UnknownIssuer`).
pub(crate) fn error_text(e: &opentelemetry_sdk::error::OTelSdkError) -> String {
    use opentelemetry_sdk::error::OTelSdkError;
    match e {
        OTelSdkError::InternalFailure(m) => without_repeats(m),
        OTelSdkError::Timeout(d) => format!("timed out after {d:?}"),
        other => without_repeats(&other.to_string()),
    }
}

/// `text` with every run of `: `-separated parts that repeats the run just
/// before it removed, and line breaks made spaces.
pub(crate) fn without_repeats(text: &str) -> String {
    let mut parts: Vec<&str> = text.split(": ").collect();
    'again: loop {
        for len in (1..=parts.len() / 2).rev() {
            for i in 0..=parts.len() - 2 * len {
                if parts[i..i + len] == parts[i + len..i + 2 * len] {
                    parts.drain(i + len..i + 2 * len);
                    continue 'again;
                }
            }
        }
        break;
    }
    parts.join(": ").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::error::OTelSdkError;

    #[test]
    fn error_text_is_the_message_once() {
        let e = OTelSdkError::InternalFailure(
            "TonicTracesClient export failed with gRPC code: Unavailable: transport error: invalid peer certificate: UnknownIssuer: invalid peer certificate: UnknownIssuer".into(),
        );
        assert_eq!(
            error_text(&e),
            "TonicTracesClient export failed with gRPC code: Unavailable: transport error: invalid peer certificate: UnknownIssuer"
        );
        assert_eq!(
            error_text(&OTelSdkError::Timeout(Duration::from_millis(500))),
            "timed out after 500ms"
        );
        assert_eq!(
            error_text(&OTelSdkError::InternalFailure("a: b\nc: b\nc".into())),
            "a: b c"
        );
        assert_eq!(error_text(&OTelSdkError::InternalFailure("x".into())), "x");
    }
}
