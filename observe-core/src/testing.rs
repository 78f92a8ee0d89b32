//! A capture harness for tests: run code under a scoped observe instance with
//! in-memory exporters, and get back the log lines, the finished spans, the
//! log records and the metric points. Nothing global is installed, so tests
//! run in parallel.
//!
//! ```
//! use observe_core::testing::Harness;
//!
//! let (_, cap) = Harness::new("checkout").run(|| {
//!     let span = tracing::info_span!("handle", order_id = 42);
//!     let _e = span.enter();
//!     observe_core::info!("order_created", amount_cents = 1299);
//! });
//! let line = &cap.lines[0];
//! assert_eq!(line["event"], "order_created");
//! assert_eq!(line["order_id"], 42);
//! assert_eq!(line["trace_id"], cap.spans[0].span_context.trace_id().to_string());
//! ```

use crate::ids::IdSource;
use crate::layer::Clock;
use crate::log::writer::MemorySink;
use crate::telemetry::{LogOutput, Telemetry, TelemetryBuilder};
use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLogRecord, SimpleLogProcessor};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, ManualReader, Pipeline, Temporality};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor, SpanData};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};
use tracing::instrument::WithSubscriber;

/// What a run recorded.
#[derive(Debug, Default)]
pub struct Capture {
    /// Each log line parsed as JSON, in order.
    pub lines: Vec<serde_json::Value>,
    /// Each log line as written (without the newline).
    pub raw_lines: Vec<String>,
    /// Finished, exported spans in the order they ended.
    pub spans: Vec<SpanData>,
    /// OpenTelemetry log records emitted for the events.
    pub log_records: Vec<SdkLogRecord>,
    /// Metric points at the end of the run (cumulative).
    pub metrics: Vec<MetricPoint>,
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

impl Capture {
    /// Points of the metric `name`.
    pub fn metric(&self, name: &str) -> Vec<&MetricPoint> {
        self.metrics.iter().filter(|m| m.name == name).collect()
    }

    /// The span called `name` (the first, if several).
    pub fn span(&self, name: &str) -> Option<&SpanData> {
        self.spans.iter().find(|s| s.name == name)
    }

    /// Lines whose `event` is `name`.
    pub fn events(&self, name: &str) -> Vec<&serde_json::Value> {
        self.lines.iter().filter(|l| l["event"] == name).collect()
    }
}

#[derive(Debug, Clone)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
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

type Configure = Box<dyn FnOnce(TelemetryBuilder) -> TelemetryBuilder>;

/// Runs code under a fresh, scoped observe instance.
pub struct Harness {
    service: String,
    configure: Vec<Configure>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

struct Recorders {
    sink: MemorySink,
    spans: InMemorySpanExporter,
    logs: InMemoryLogExporter,
    reader: Arc<ManualReader>,
}

impl Harness {
    /// A harness for `service`; the process environment is ignored (the
    /// harness behaves as if `RUST_LOG=trace` and nothing else were set).
    pub fn new(service: impl Into<String>) -> Self {
        Harness {
            service: service.into(),
            configure: Vec::new(),
        }
    }

    /// Adjusts the builder (log sampling, sampler, redaction, ...).
    pub fn configure(
        mut self,
        f: impl FnOnce(TelemetryBuilder) -> TelemetryBuilder + 'static,
    ) -> Self {
        self.configure.push(Box::new(f));
        self
    }

    /// Timestamps from a fixed instant.
    pub fn fixed_time(self, t: SystemTime) -> Self {
        self.configure(move |b| b.clock(Clock::Fixed(t)))
    }

    /// Ids from a seed.
    pub fn seeded_ids(self, seed: u64) -> Self {
        self.configure(move |b| b.ids(IdSource::Seeded(seed)))
    }

    fn build(self) -> (Telemetry, Recorders) {
        let rec = Recorders {
            sink: MemorySink::new(),
            spans: InMemorySpanExporter::default(),
            logs: InMemoryLogExporter::default(),
            reader: Arc::new(ManualReader::builder().build()),
        };
        let mut b = Telemetry::builder(self.service)
            .env_source(|k| (k == "RUST_LOG").then(|| "trace".to_owned()))
            .log_output(LogOutput::Sink(Arc::new(rec.sink.clone())))
            .with_span_processor(SimpleSpanProcessor::new(rec.spans.clone()))
            .with_log_processor(SimpleLogProcessor::new(rec.logs.clone()))
            .with_metric_reader(SharedReader(Arc::clone(&rec.reader)));
        for f in self.configure {
            b = f(b);
        }
        // The harness's own builder values are valid, so only a user's
        // `configure` can fail here; a test wants that loudly.
        let t = match b.build() {
            Ok(t) => t,
            Err(e) => panic!("observe::testing: invalid configuration: {e}"),
        };
        (t, rec)
    }

    /// Runs `f` and returns its result with what it recorded.
    pub fn run<R>(self, f: impl FnOnce() -> R) -> (R, Capture) {
        let (t, rec) = self.build();
        let r = tracing::dispatcher::with_default(t.dispatch(), f);
        (r, finish(t, rec))
    }

    /// Runs `fut` (the dispatcher follows it across polls and threads).
    pub async fn run_async<F: Future>(self, fut: F) -> (F::Output, Capture) {
        let (t, rec) = self.build();
        let r = fut.with_subscriber(t.dispatch().clone()).await;
        (r, finish(t, rec))
    }
}

/// Shorthand for `Harness::new("test").run(f)`.
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Capture) {
    Harness::new("test").run(f)
}

fn finish(t: Telemetry, rec: Recorders) -> Capture {
    let (dispatch, guard) = t.into_parts();
    let _ = guard.flush(Duration::from_secs(5));
    let mut rm = ResourceMetrics::default();
    let metrics = match rec.reader.collect(&mut rm) {
        Ok(()) => points(&rm),
        Err(_) => Vec::new(),
    };
    let raw = rec.sink.lines();
    let lines = raw
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or(serde_json::Value::Null))
        .collect();
    let spans = rec.spans.get_finished_spans().unwrap_or_default();
    let log_records = rec
        .logs
        .get_emitted_logs()
        .unwrap_or_default()
        .into_iter()
        .map(|l| l.record)
        .collect();
    drop(dispatch);
    drop(guard);
    Capture {
        lines,
        raw_lines: raw,
        spans,
        log_records,
        metrics,
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
