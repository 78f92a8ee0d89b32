//! Test support (feature `testing`). A capture harness for tests: run code under a scoped observe instance with
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

pub use crate::clock::Clock;
pub use crate::ids::IdSource;
use crate::log::writer::MemorySink;
use crate::metrics::SnapshotReader;
pub use crate::metrics::{MetricPoint, MetricValue};
use crate::telemetry::{LogOutput, Telemetry, TelemetryBuilder};
use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLogRecord, SimpleLogProcessor};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor, SpanData};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tracing::instrument::WithSubscriber;

/// The builder's test-only settings: a fixed clock, seeded ids, and a
/// private environment instead of the process's (feature `testing`).
///
/// ```
/// use observe_core::testing::{Clock, IdSource, TelemetryBuilderExt as _};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let telemetry = observe_core::Telemetry::builder("checkout")
///     .env_source(|name| (name == "RUST_LOG").then(|| "debug".to_owned()))
///     .clock(Clock::Fixed(UNIX_EPOCH + Duration::from_secs(1_700_000_000)))
///     .ids(IdSource::Seeded(7))
///     .log_output(observe_core::LogOutput::Sink(std::sync::Arc::new(observe_core::MemorySink::new())))
///     .build()?;
/// # drop(telemetry);
/// # Ok::<(), observe_core::InitError>(())
/// ```
pub trait TelemetryBuilderExt {
    /// Timestamps from a fixed instant (golden tests).
    fn clock(self, clock: Clock) -> Self;
    /// Trace and span ids from a seed (golden tests).
    fn ids(self, ids: IdSource) -> Self;
    /// Reads configuration variables through `lookup` instead of the process
    /// environment (`|_| None` ignores the environment).
    fn env_source(self, lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self;
}

impl TelemetryBuilderExt for TelemetryBuilder {
    fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn ids(mut self, ids: IdSource) -> Self {
        self.ids = ids;
        self
    }

    fn env_source(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Some(Arc::new(lookup));
        self
    }
}

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
    reader: SnapshotReader,
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
            reader: SnapshotReader::new(),
        };
        let mut b = Telemetry::builder(self.service)
            .env_source(|k| (k == "RUST_LOG").then(|| "trace".to_owned()))
            .log_output(LogOutput::Sink(Arc::new(rec.sink.clone())))
            .span_processor(SimpleSpanProcessor::new(rec.spans.clone()))
            .log_processor(SimpleLogProcessor::new(rec.logs.clone()))
            .metric_reader(rec.reader.clone());
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
    let metrics = rec.reader.points();
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
