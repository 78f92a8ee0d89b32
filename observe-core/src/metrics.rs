//! The instruments observe records, created once per telemetry instance.
//!
//! Names follow the OpenTelemetry semantic conventions where one exists and
//! observe's own names otherwise (one table: [`crate::signals::names`]); `docs/reference/metrics.md`
//! lists each with its Prometheus name.

use crate::log::writer::LineSink;
use opentelemetry::metrics::{Meter, ObservableCounter};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, ManualReader, Pipeline, Temporality};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Weak;
use std::time::Duration;

/// `observe.logs.buffered` (`{line}`, attribute `outcome` = `written` |
/// `discarded`): sampled-out lines held in a request's buffer, by what
/// happened when the request ended.
pub use crate::signals::names::LOGS_BUFFERED;
/// `observe.logs.dropped` (`{line}`, attribute `reason` = `sampled` |
/// `request_buffer_full` | `queue_full`): log lines not written.
pub use crate::signals::names::LOGS_DROPPED;
use crate::signals::names::{self, row_of};

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
        let row = row_of!(names::LOGS_DROPPED);
        let dropped = meter
            .u64_observable_counter(row.name)
            .with_description(row.description)
            .with_unit(row.unit)
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
        let row = row_of!(names::LOGS_BUFFERED);
        let buffered = meter
            .u64_observable_counter(row.name)
            .with_description(row.description)
            .with_unit(row.unit)
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

/// One metric point with its attributes.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricPoint {
    /// The OpenTelemetry instrument name, e.g. `http.server.request.duration`.
    pub name: String,
    /// Its unit, e.g. `s`.
    pub unit: String,
    /// The point's attributes.
    pub attributes: BTreeMap<String, String>,
    /// The value.
    pub value: MetricValue,
}

/// A point's value.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    /// A counter or up-down counter.
    Sum(f64),
    /// A gauge.
    Gauge(f64),
    /// A histogram.
    Histogram {
        /// Number of measurements.
        count: u64,
        /// Their sum.
        sum: f64,
        /// Bucket upper bounds.
        bounds: Vec<f64>,
        /// Counts per bucket (one more than bounds).
        bucket_counts: Vec<u64>,
    },
}

/// A metric reader whose current values can be read at any time as
/// [`MetricPoint`]s (cumulative): what `observe::testing` and the incident
/// example read. Pass a clone to
/// [`TelemetryBuilder::metric_reader`](crate::TelemetryBuilder::metric_reader).
#[derive(Debug, Clone)]
pub struct SnapshotReader(Arc<ManualReader>);

impl Default for SnapshotReader {
    fn default() -> Self {
        Self::new()
    }
}

impl SnapshotReader {
    /// A reader with cumulative temporality.
    pub fn new() -> Self {
        SnapshotReader(Arc::new(ManualReader::builder().build()))
    }

    /// The current points of every instrument, sorted by name and attributes.
    pub fn points(&self) -> Vec<MetricPoint> {
        let mut rm = ResourceMetrics::default();
        match self.0.collect(&mut rm) {
            Ok(()) => points(&rm),
            Err(_) => Vec::new(),
        }
    }
}

impl MetricReader for SnapshotReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, t: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.shutdown_with_timeout(t)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

fn attrs<'a>(it: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> BTreeMap<String, String> {
    it.map(|kv| (kv.key.as_str().to_owned(), kv.value.to_string()))
        .collect()
}

fn push_data<T: Copy>(
    out: &mut Vec<MetricPoint>,
    name: &str,
    unit: &str,
    data: &MetricData<T>,
    conv: impl Fn(T) -> f64,
) {
    let mk = |attributes, value| MetricPoint {
        name: name.to_owned(),
        unit: unit.to_owned(),
        attributes,
        value,
    };
    match data {
        MetricData::Sum(s) => {
            for p in s.data_points() {
                out.push(mk(attrs(p.attributes()), MetricValue::Sum(conv(p.value()))));
            }
        }
        MetricData::Gauge(g) => {
            for p in g.data_points() {
                out.push(mk(
                    attrs(p.attributes()),
                    MetricValue::Gauge(conv(p.value())),
                ));
            }
        }
        MetricData::Histogram(h) => {
            for p in h.data_points() {
                out.push(mk(
                    attrs(p.attributes()),
                    MetricValue::Histogram {
                        count: p.count(),
                        sum: conv(p.sum()),
                        bounds: p.bounds().collect(),
                        bucket_counts: p.bucket_counts().collect(),
                    },
                ));
            }
        }
        MetricData::ExponentialHistogram(_) => {}
    }
}

fn points(rm: &ResourceMetrics) -> Vec<MetricPoint> {
    let mut out = Vec::new();
    for sm in rm.scope_metrics() {
        for m in sm.metrics() {
            match m.data() {
                AggregatedMetrics::F64(d) => push_data(&mut out, m.name(), m.unit(), d, |v| v),
                AggregatedMetrics::U64(d) => {
                    push_data(&mut out, m.name(), m.unit(), d, |v| v as f64)
                }
                AggregatedMetrics::I64(d) => {
                    push_data(&mut out, m.name(), m.unit(), d, |v| v as f64)
                }
            }
        }
    }
    out.sort_by(|a, b| (&a.name, &a.attributes).cmp(&(&b.name, &b.attributes)));
    out
}
