//! The instruments observe records, created once per telemetry instance.
//!
//! Names follow the OpenTelemetry semantic conventions where one exists and
//! the names fixed in observe's issues otherwise; `docs/reference/metrics.md`
//! lists each with its Prometheus name.

use crate::log::writer::LineSink;
use opentelemetry::metrics::{Meter, ObservableCounter};
use opentelemetry::KeyValue;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// `observe.logs.dropped` (`{line}`, attribute `reason` = `sampled` |
/// `request_buffer_full` | `queue_full`): log lines not written.
pub const LOGS_DROPPED: &str = "observe.logs.dropped";
/// `observe.logs.buffered` (`{line}`, attribute `outcome` = `written` |
/// `discarded`): sampled-out lines held in a request's buffer, by what
/// happened when the request ended.
pub const LOGS_BUFFERED: &str = "observe.logs.buffered";

/// Counters kept as atomics on the hot path and reported at collection.
#[derive(Debug, Default)]
pub(crate) struct LogCounters {
    sampled: AtomicU64,
    request_full: AtomicU64,
    written: AtomicU64,
    discarded: AtomicU64,
}

/// Instruments bound to one meter provider.
#[derive(Debug)]
pub(crate) struct Instruments {
    counters: Arc<LogCounters>,
    _dropped: ObservableCounter<u64>,
    _buffered: ObservableCounter<u64>,
}

impl Instruments {
    pub(crate) fn new(meter: &Meter, sink: Arc<dyn LineSink>) -> Self {
        let counters = Arc::new(LogCounters::default());
        let c = Arc::clone(&counters);
        let dropped = meter
            .u64_observable_counter(LOGS_DROPPED)
            .with_description("Log lines not written, by reason.")
            .with_unit("{line}")
            .with_callback(move |obs| {
                obs.observe(
                    c.sampled.load(Ordering::Relaxed),
                    &[KeyValue::new("reason", "sampled")],
                );
                obs.observe(
                    c.request_full.load(Ordering::Relaxed),
                    &[KeyValue::new("reason", "request_buffer_full")],
                );
                obs.observe(sink.dropped(), &[KeyValue::new("reason", "queue_full")]);
            })
            .build();
        let c = Arc::clone(&counters);
        let buffered = meter
            .u64_observable_counter(LOGS_BUFFERED)
            .with_description("Sampled-out lines held in a request's buffer, by outcome.")
            .with_unit("{line}")
            .with_callback(move |obs| {
                obs.observe(
                    c.written.load(Ordering::Relaxed),
                    &[KeyValue::new("outcome", "written")],
                );
                obs.observe(
                    c.discarded.load(Ordering::Relaxed),
                    &[KeyValue::new("outcome", "discarded")],
                );
            })
            .build();
        Instruments {
            counters,
            _dropped: dropped,
            _buffered: buffered,
        }
    }

    /// Counts dropped lines: `reason` is `sampled` or `request_buffer_full`.
    #[inline]
    pub(crate) fn logs_dropped(&self, n: u64, reason: &'static str) {
        let c = match reason {
            "sampled" => &self.counters.sampled,
            _ => &self.counters.request_full,
        };
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts buffered lines: `outcome` is `written` or `discarded`.
    #[inline]
    pub(crate) fn logs_buffered(&self, n: u64, outcome: &'static str) {
        let c = match outcome {
            "written" => &self.counters.written,
            _ => &self.counters.discarded,
        };
        c.fetch_add(n, Ordering::Relaxed);
    }
}
