//! [`PeriodicReader`]: collects the meter provider's metrics on a timer and
//! exports them on the pipeline's own thread.

use super::batch::{join_if, request, spawn_worker, Control, Pipeline, REPLY_MARGIN};
use super::dropped::{DropReason, DropStats, Signal};
use crate::error::InitError;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, Pipeline as SdkPipeline, Temporality,
};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// observe's periodic metric reader: every `interval` (default 60 s,
/// `OTEL_METRIC_EXPORT_INTERVAL`) its thread collects and exports; a failed
/// export counts its data points in `observe.telemetry.dropped{signal="metrics"}`.
/// Flush and shutdown collect and export once more.
#[derive(Clone, Debug)]
pub struct PeriodicReader {
    inner: Arc<Inner>,
}

struct Inner {
    manual: Arc<ManualReader>,
    control: mpsc::UnboundedSender<Control>,
    stats: Arc<DropStats>,
    thread: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
    timeout: Duration,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeriodicReader")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl PeriodicReader {
    /// Starts the reader's thread with `exporter`.
    pub fn new<E: PushMetricExporter>(
        exporter: E,
        interval: Duration,
        timeout: Duration,
    ) -> Result<Self, InitError> {
        let temporality = exporter.temporality();
        Self::with_exporter_factory(move || Ok(exporter), temporality, interval, timeout)
    }

    /// Starts the reader's thread and builds the exporter there, inside its
    /// tokio runtime; `temporality` must be the exporter's.
    pub fn with_exporter_factory<E, F>(
        make: F,
        temporality: Temporality,
        interval: Duration,
        timeout: Duration,
    ) -> Result<Self, InitError>
    where
        E: PushMetricExporter,
        F: FnOnce() -> Result<E, String> + Send + 'static,
    {
        let manual = Arc::new(
            ManualReader::builder()
                .with_temporality(temporality)
                .build(),
        );
        let stats = Arc::new(DropStats::new(Signal::Metrics));
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let worker = Worker {
            manual: Arc::clone(&manual),
            control: ctl_rx,
            stats: Arc::clone(&stats),
            interval: interval.max(Duration::from_millis(1)),
            timeout,
        };
        let thread = spawn_worker(Signal::Metrics, make, move |e| worker.run(e))?;
        Ok(PeriodicReader {
            inner: Arc::new(Inner {
                manual,
                control: ctl_tx,
                stats,
                thread: Mutex::new(Some(thread)),
                closed: AtomicBool::new(false),
                timeout,
            }),
        })
    }

    pub(crate) fn pipeline(&self) -> Arc<dyn Pipeline> {
        Arc::clone(&self.inner) as Arc<dyn Pipeline>
    }

    /// Items dropped so far for `reason` (what `observe.telemetry.dropped` reports).
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.inner.stats.get(reason)
    }
}

impl Pipeline for Inner {
    fn stats(&self) -> Arc<DropStats> {
        Arc::clone(&self.stats)
    }

    fn flush(&self, timeout: Duration) -> OTelSdkResult {
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let (reply, rx) = sync_channel(1);
        request(&self.control, Control::Flush { reply }, &rx, timeout)
    }

    fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let (reply, rx) = sync_channel(1);
        let deadline = Instant::now() + timeout;
        let r = request(
            &self.control,
            Control::Shutdown { deadline, reply },
            &rx,
            timeout + REPLY_MARGIN,
        );
        join_if(&self.thread, r.is_ok());
        let _ = self
            .manual
            .shutdown_with_timeout(Duration::from_millis(100));
        r
    }
}

impl MetricReader for PeriodicReader {
    /// Called once by the meter provider while it is built.
    fn register_pipeline(&self, pipeline: Weak<SdkPipeline>) {
        self.inner.manual.register_pipeline(pipeline);
    }

    /// Collects now into `rm` (any thread; does not export).
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.inner.manual.collect(rm)
    }

    /// Collects and exports once. Called from any thread but the reader's
    /// own; blocks the caller until done or the export timeout.
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.flush(self.inner.timeout)
    }

    /// Collects and exports a last time, then stops the thread; blocks at
    /// most `timeout`. Later calls return `Ok` at once.
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.inner.manual.temporality(kind)
    }
}

struct Worker {
    manual: Arc<ManualReader>,
    control: mpsc::UnboundedReceiver<Control>,
    stats: Arc<DropStats>,
    interval: Duration,
    timeout: Duration,
}

impl Worker {
    async fn run<E: PushMetricExporter>(mut self, exporter: E) {
        let mut next = tokio::time::Instant::now() + self.interval;
        loop {
            tokio::select! {
                biased;
                msg = self.control.recv() => match msg {
                    Some(Control::SetResource(_)) => {}
                    Some(Control::Flush { reply }) => {
                        let r = self.collect_and_export(&exporter, None).await;
                        let _ = reply.send(r);
                    }
                    Some(Control::Shutdown { deadline, reply }) => {
                        let r = self.collect_and_export(&exporter, Some(deadline)).await;
                        let _ = exporter.shutdown_with_timeout(Duration::from_secs(1));
                        self.stats.maybe_report(Instant::now());
                        let _ = reply.send(r);
                        return;
                    }
                    None => {
                        let _ = exporter.shutdown_with_timeout(Duration::from_secs(1));
                        return;
                    }
                },
                () = tokio::time::sleep_until(next) => {
                    let _ = self.collect_and_export(&exporter, None).await;
                    next = tokio::time::Instant::now() + self.interval;
                }
            }
            self.stats.maybe_report(Instant::now());
        }
    }

    async fn collect_and_export<E: PushMetricExporter>(
        &self,
        exporter: &E,
        deadline: Option<Instant>,
    ) -> Result<(), String> {
        let mut rm = ResourceMetrics::default();
        self.manual.collect(&mut rm).map_err(|e| e.to_string())?;
        let points = data_points(&rm);
        if points == 0 {
            return Ok(());
        }
        let mut limit = self.timeout;
        let mut by_deadline = false;
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left < limit {
                limit = left;
                by_deadline = true;
            }
        }
        match tokio::time::timeout(limit, exporter.export(&rm)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.stats.add(DropReason::ExportFailed, points);
                Err(e.to_string())
            }
            Err(_) => {
                let reason = if by_deadline {
                    DropReason::ShutdownTimeout
                } else {
                    DropReason::ExportFailed
                };
                self.stats.add(reason, points);
                Err(OTelSdkError::Timeout(limit).to_string())
            }
        }
    }
}

/// Number of data points in `rm`.
pub(crate) fn data_points(rm: &ResourceMetrics) -> u64 {
    fn count<T>(d: &MetricData<T>) -> usize {
        match d {
            MetricData::Gauge(g) => g.data_points().count(),
            MetricData::Sum(s) => s.data_points().count(),
            MetricData::Histogram(h) => h.data_points().count(),
            MetricData::ExponentialHistogram(h) => h.data_points().count(),
        }
    }
    rm.scope_metrics()
        .flat_map(|sm| sm.metrics())
        .map(|m| match m.data() {
            AggregatedMetrics::F64(d) => count(d),
            AggregatedMetrics::U64(d) => count(d),
            AggregatedMetrics::I64(d) => count(d),
        } as u64)
        .sum()
}
