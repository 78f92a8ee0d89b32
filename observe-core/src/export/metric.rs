//! [`MetricPipeline`]: collects the meter provider's metrics on a timer and
//! exports them on the pipeline's own thread.

use super::batch::{Control, ExportError, PipelineControl, Rejected};
use super::client::OtlpClient;
use super::dropped::{DropReason, DropStats, Signal};
use super::otlp::OtlpTarget;
use super::worker::{spawn_worker, Bounded, ShutdownDeadline, WorkerHandle};
use crate::error::InitError;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, Pipeline as SdkPipeline, Temporality,
};
use prost::Message as _;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// observe's periodic metric reader: every `interval` (default 60 s,
/// `OTEL_METRIC_EXPORT_INTERVAL`) its thread collects and exports; a failed
/// export counts its data points in `observe.telemetry.dropped{signal="metrics"}`.
/// Flush and shutdown collect and export once more.
#[derive(Clone, Debug)]
pub struct MetricPipeline {
    inner: Arc<Inner>,
}

struct Inner {
    manual: Arc<ManualReader>,
    worker: WorkerHandle,
    stats: Arc<DropStats>,
    timeout: Duration,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricPipeline")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl MetricPipeline {
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
        Self::start(
            Arc::new(DropStats::new(Signal::Metrics)),
            move || make().map(Sdk),
            temporality,
            interval,
            timeout,
        )
    }

    /// The reader exporting to one OTLP destination, with observe's client.
    pub(crate) fn otlp(
        target: OtlpTarget,
        temporality: Temporality,
        interval: Duration,
        timeout: Duration,
    ) -> Result<Self, InitError> {
        let stats = DropStats::for_destination(Signal::Metrics, target.describe());
        let counting = Arc::clone(&stats);
        Self::start(
            stats,
            move || OtlpClient::new(&target, Signal::Metrics, counting).map(OtlpMetrics),
            temporality,
            interval,
            timeout,
        )
    }

    fn start<X, F>(
        stats: Arc<DropStats>,
        make: F,
        temporality: Temporality,
        interval: Duration,
        timeout: Duration,
    ) -> Result<Self, InitError>
    where
        X: MetricExport,
        F: FnOnce() -> Result<X, String> + Send + 'static,
    {
        let manual = Arc::new(
            ManualReader::builder()
                .with_temporality(temporality)
                .build(),
        );
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let deadline = Arc::new(ShutdownDeadline::default());
        let worker = Worker {
            manual: Arc::clone(&manual),
            control: ctl_rx,
            deadline: Arc::clone(&deadline),
            stats: Arc::clone(&stats),
            interval: interval.max(Duration::from_millis(1)),
            timeout,
        };
        let thread = spawn_worker(Signal::Metrics, make, move |e| worker.run(e))?;
        Ok(MetricPipeline {
            inner: Arc::new(Inner {
                manual,
                worker: WorkerHandle::new(ctl_tx, thread, deadline),
                stats,
                timeout,
            }),
        })
    }

    pub(crate) fn pipeline(&self) -> Arc<dyn PipelineControl> {
        Arc::clone(&self.inner) as Arc<dyn PipelineControl>
    }

    /// Items dropped so far for `reason` (what `observe.telemetry.dropped` reports).
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.inner.stats.get(reason)
    }
}

impl PipelineControl for Inner {
    fn stats(&self) -> Arc<DropStats> {
        Arc::clone(&self.stats)
    }

    fn flush(&self, timeout: Duration) -> OTelSdkResult {
        self.worker.flush(timeout)
    }

    fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        let r = self.worker.shutdown(timeout);
        let _ = self
            .manual
            .shutdown_with_timeout(Duration::from_millis(100));
        r
    }
}

impl MetricReader for MetricPipeline {
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

/// One metric export destination, driven by the reader's thread only.
trait MetricExport: 'static {
    fn export(
        &self,
        rm: &ResourceMetrics,
    ) -> impl Future<Output = Result<Option<Rejected>, ExportError>>;
    fn shutdown(&self);
}

/// An SDK metric exporter.
struct Sdk<E>(E);

impl<E: PushMetricExporter> MetricExport for Sdk<E> {
    async fn export(&self, rm: &ResourceMetrics) -> Result<Option<Rejected>, ExportError> {
        self.0
            .export(rm)
            .await
            .map(|()| None)
            .map_err(|e| ExportError::Failed(super::error_text(&e)))
    }

    fn shutdown(&self) {
        let _ = self.0.shutdown_with_timeout(Duration::from_secs(1));
    }
}

/// Metrics to OTLP: opentelemetry-proto's `ResourceMetrics`, encoded once.
struct OtlpMetrics(OtlpClient);

impl MetricExport for OtlpMetrics {
    async fn export(&self, rm: &ResourceMetrics) -> Result<Option<Rejected>, ExportError> {
        let body = ExportMetricsServiceRequest::from(rm).encode_to_vec();
        self.0
            .export::<ExportMetricsServiceResponse>(body, data_points(rm))
            .await
    }

    fn shutdown(&self) {}
}

struct Worker {
    manual: Arc<ManualReader>,
    control: mpsc::UnboundedReceiver<Control>,
    deadline: Arc<ShutdownDeadline>,
    stats: Arc<DropStats>,
    interval: Duration,
    timeout: Duration,
}

impl Worker {
    async fn run<E: MetricExport>(mut self, exporter: E) {
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
                        exporter.shutdown();
                        self.stats.final_report(Instant::now());
                        let _ = reply.send(r);
                        return;
                    }
                    None => {
                        exporter.shutdown();
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

    async fn collect_and_export<E: MetricExport>(
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
        match self
            .deadline
            .bound(exporter.export(&rm), self.timeout, deadline)
            .await
        {
            Bounded::Done(Ok(None)) => Ok(()),
            Bounded::Done(Ok(Some(r))) => {
                self.stats.rejected(r.items, &r.reason);
                Ok(())
            }
            Bounded::Done(Err(ExportError::Failed(e))) => Err(self.stats.export_failed(points, &e)),
            Bounded::Done(Err(ExportError::Rejected(e))) => Err(self.stats.rejected(points, &e)),
            Bounded::Cut {
                by_deadline,
                after: limit,
            } => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::SdkMeterProvider;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An exporter whose exports never finish (a black-holed receiver).
    #[derive(Clone, Default)]
    struct Hanging {
        started: Arc<AtomicUsize>,
    }

    impl PushMetricExporter for Hanging {
        async fn export(&self, _metrics: &ResourceMetrics) -> OTelSdkResult {
            self.started.fetch_add(1, Ordering::AcqRel);
            std::future::pending().await
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
            Ok(())
        }
        fn temporality(&self) -> Temporality {
            Temporality::Cumulative
        }
    }

    /// A shutdown that begins while a periodic export hangs ends by its own
    /// deadline (not the 30 s export timeout) and counts what was lost.
    #[test]
    fn shutdown_cuts_short_a_periodic_export_in_flight() {
        let exporter = Hanging::default();
        let started = Arc::clone(&exporter.started);
        let reader =
            MetricPipeline::new(exporter, Duration::from_millis(10), Duration::from_secs(30))
                .expect("reader");
        let provider = SdkMeterProvider::builder()
            .with_reader(reader.clone())
            .build();
        provider
            .meter("test")
            .u64_counter("jobs")
            .build()
            .add(3, &[]);
        let t0 = Instant::now();
        while started.load(Ordering::Acquire) == 0 {
            assert!(t0.elapsed() < Duration::from_secs(5), "no export began");
            std::thread::sleep(Duration::from_millis(1));
        }
        let t0 = Instant::now();
        assert!(reader
            .shutdown_with_timeout(Duration::from_millis(300))
            .is_err());
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(2), "{took:?}");
        // The point in flight, then the final collection's point.
        assert_eq!(reader.dropped(DropReason::ShutdownTimeout), 2);
        assert_eq!(reader.dropped(DropReason::ExportFailed), 0);
    }
}
