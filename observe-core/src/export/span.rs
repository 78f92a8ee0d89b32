//! [`SpanPipeline`]: ended spans into a bounded queue, exported in
//! batches on the pipeline's own thread.

use super::batch::{
    queue_pipeline, BatchConfig, Export, ExportError, ExportResult, PipelineControl, Queue, Queued,
};
use super::client::{OtlpClient, OTLP_MAX_IN_FLIGHT};
use super::dropped::{DropReason, Signal};
use super::otlp::OtlpTarget;
use crate::error::InitError;
use opentelemetry::{Context, KeyValue};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;
use prost::Message as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// observe's batch span processor.
///
/// Unlike the SDK's, every span it cannot deliver is counted in
/// `observe.telemetry.dropped{signal="traces"}` (queue full, export failed,
/// shutdown deadline) and reported in a `telemetry_dropped` log line at most
/// once a minute, and its exporter runs on a thread that owns a
/// current-thread tokio runtime (gRPC works without the user's runtime).
///
/// ```no_run
/// # fn main() -> Result<(), observe_core::InitError> {
/// use observe_core::export::{BatchConfig, SpanPipeline};
/// let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
/// let processor = SpanPipeline::new(exporter, BatchConfig::default())?;
/// let _telemetry = observe_core::Telemetry::builder("checkout")
///     .span_pipeline(processor)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SpanPipeline {
    queue: Arc<Queue<Ended>>,
}

/// An ended span on its way to export: its data, and the attributes its call
/// site gives every one of its spans (`#[observed]`'s `code.function` and
/// `gateway`), added on the pipeline's thread. A span with no attribute of
/// its own then costs its request thread no allocation, and the pipeline's
/// thread frees nothing another thread allocated (with glibc's malloc, each
/// such free takes the allocating thread's arena lock).
pub(crate) struct Ended {
    data: SpanData,
    site: &'static [KeyValue],
}

impl Queued for Ended {
    type Ready = SpanData;

    /// The span's export data, with its call site's attributes.
    fn ready(self) -> SpanData {
        let Ended { mut data, site } = self;
        super::recycle::hand_back(&mut data.attributes);
        if !site.is_empty() {
            data.attributes = with_site_attributes(site, std::mem::take(&mut data.attributes));
        }
        data
    }
}

/// A call site's attributes followed by a span's own; one of the span's own
/// with the same key as a site attribute replaces its value, in place (as
/// setting an attribute again does).
pub(crate) fn with_site_attributes(site: &[KeyValue], own: Vec<KeyValue>) -> Vec<KeyValue> {
    let mut out = Vec::with_capacity(site.len() + own.len());
    out.extend_from_slice(site);
    for kv in own {
        match out[..site.len()].iter_mut().find(|a| a.key == kv.key) {
            Some(a) => a.value = kv.value,
            None => out.push(kv),
        }
    }
    out
}

queue_pipeline!(
    SpanPipeline,
    Ended,
    Signal::Traces,
    SpanExporter,
    SpanExport
);

impl SpanPipeline {
    /// The pipeline into one OTLP destination, with observe's client.
    pub(crate) fn otlp(target: OtlpTarget, config: BatchConfig) -> Result<Self, InitError> {
        let queue = Queue::otlp(Signal::Traces, target, config, |client| OtlpSpans {
            client: Arc::new(client),
            resource: ResourceAttributesWithSchema::default(),
        })?;
        Ok(SpanPipeline {
            queue: Arc::new(queue),
        })
    }

    /// Queues a span whose call site's attributes `site` are still to be
    /// added (observe's layer, when this pipeline is its only processor).
    #[inline]
    pub(crate) fn push_ended(&self, data: SpanData, site: &'static [KeyValue]) {
        if data.span_context.is_sampled() {
            self.queue.push(Ended { data, site });
        }
    }
}

/// A span exporter of the SDK's interface: one export at a time (its
/// in-flight export holds the other reference).
struct SpanExport<E>(Arc<E>);

impl<E: SpanExporter + 'static> Export<Ended> for SpanExport<E> {
    fn export(
        &mut self,
        batch: Vec<SpanData>,
    ) -> impl Future<Output = ExportResult> + Send + 'static {
        let exporter = Arc::clone(&self.0);
        async move {
            exporter
                .export(batch)
                .await
                .map(|()| None)
                .map_err(|e| ExportError::Failed(super::error_text(&e)))
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        // Called with nothing in flight: the worker's is the only reference.
        if let Some(e) = Arc::get_mut(&mut self.0) {
            e.set_resource(resource);
        }
    }

    fn shutdown(&mut self) {
        let _ = self.0.shutdown_with_timeout(Duration::from_secs(1));
    }
}

/// Spans to OTLP: moved (not copied) into opentelemetry-proto's
/// `ResourceSpans`, encoded once.
struct OtlpSpans {
    client: Arc<OtlpClient>,
    resource: ResourceAttributesWithSchema,
}

impl Export<Ended> for OtlpSpans {
    fn export(
        &mut self,
        batch: Vec<SpanData>,
    ) -> impl Future<Output = ExportResult> + Send + 'static {
        let items = batch.len() as u64;
        let body = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
        }
        .encode_to_vec();
        self.client.send::<ExportTraceServiceResponse>(body, items)
    }

    fn max_in_flight(&self) -> usize {
        OTLP_MAX_IN_FLIGHT
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }

    fn shutdown(&mut self) {}
}

impl SpanProcessor for SpanPipeline {
    /// Does nothing (spans are handled when they end).
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    /// Called on the thread that ended the span (a request's, usually) by
    /// observe's layer or the SDK's tracer. Never blocks: the span goes into
    /// the bounded queue with one `try_send`, or is dropped and counted.
    fn on_end(&self, span: SpanData) {
        self.push_ended(span, &[]);
    }

    /// Exports every span queued so far. Called from any thread but the
    /// pipeline's own; blocks the caller until done or the export timeout.
    fn force_flush(&self) -> OTelSdkResult {
        self.queue.flush(self.queue.config().export_timeout)
    }

    /// Exports what is left, then stops the thread. Called by the guard (or a
    /// provider) once; blocks at most `timeout` (what is still queued then is
    /// counted as `shutdown_timeout`). Later calls return `Ok` at once.
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.queue.shutdown(timeout)
    }

    /// Hands the resource to the exporter (before the first export).
    fn set_resource(&mut self, resource: &Resource) {
        self.queue.set_resource(resource);
    }
}
