//! [`LogPipeline`]: OpenTelemetry log records into a bounded queue,
//! exported in batches on the pipeline's own thread.

use super::batch::{
    queue_pipeline, BatchConfig, Export, ExportError, ExportResult, PipelineControl, Queue, Queued,
};
use super::client::{OtlpClient, OTLP_MAX_IN_FLIGHT};
use super::dropped::{DropReason, Signal};
use super::otlp::OtlpTarget;
use crate::error::InitError;
use opentelemetry::InstrumentationScope;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, LogProcessor, SdkLogRecord};
use opentelemetry_sdk::Resource;
use prost::Message as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

type Item = Box<(SdkLogRecord, InstrumentationScope)>;

impl Queued for Item {
    type Ready = Item;
    fn ready(self) -> Item {
        self
    }
}

/// observe's batch log-record processor: the log-record twin of
/// [`SpanPipeline`](super::SpanPipeline), counting what it drops
/// in `observe.telemetry.dropped{signal="logs"}`.
#[derive(Clone, Debug)]
pub struct LogPipeline {
    queue: Arc<Queue<Item>>,
}

queue_pipeline!(LogPipeline, Item, Signal::Logs, LogExporter, LogExport);

impl LogPipeline {
    /// The pipeline into one OTLP destination, with observe's client.
    pub(crate) fn otlp(target: OtlpTarget, config: BatchConfig) -> Result<Self, InitError> {
        let queue = Queue::otlp(Signal::Logs, target, config, |client| OtlpLogs {
            client: Arc::new(client),
            resource: ResourceAttributesWithSchema::default(),
        })?;
        Ok(LogPipeline {
            queue: Arc::new(queue),
        })
    }
}

/// A log exporter of the SDK's interface: one export at a time (its
/// in-flight export holds the other reference).
struct LogExport<E>(Arc<E>);

impl<E: LogExporter + 'static> Export<Item> for LogExport<E> {
    fn export(&mut self, batch: Vec<Item>) -> impl Future<Output = ExportResult> + Send + 'static {
        let exporter = Arc::clone(&self.0);
        async move {
            let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
                batch.iter().map(|b| (&b.0, &b.1)).collect();
            exporter
                .export(LogBatch::new(&refs))
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

/// Log records to OTLP: opentelemetry-proto's `ResourceLogs`, encoded once.
struct OtlpLogs {
    client: Arc<OtlpClient>,
    resource: ResourceAttributesWithSchema,
}

impl Export<Item> for OtlpLogs {
    fn export(&mut self, batch: Vec<Item>) -> impl Future<Output = ExportResult> + Send + 'static {
        let items = batch.len() as u64;
        let body = {
            let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
                batch.iter().map(|b| (&b.0, &b.1)).collect();
            let logs = LogBatch::new(&refs);
            ExportLogsServiceRequest {
                resource_logs: group_logs_by_resource_and_scope(&logs, &self.resource),
            }
            .encode_to_vec()
        };
        drop(batch);
        self.client.send::<ExportLogsServiceResponse>(body, items)
    }

    fn max_in_flight(&self) -> usize {
        OTLP_MAX_IN_FLIGHT
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }

    fn shutdown(&mut self) {}
}

impl LogProcessor for LogPipeline {
    /// Called on the thread that logged (a request's, usually), by the
    /// logger observe's layer writes to. Never blocks: one copy of the record
    /// goes into the bounded queue with one `try_send`, or is dropped and counted.
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        self.queue.push(Box::new((record.clone(), scope.clone())));
    }

    /// Exports every record queued so far. Called from any thread but the
    /// pipeline's own; blocks the caller until done or the export timeout.
    fn force_flush(&self) -> OTelSdkResult {
        self.queue.flush(self.queue.config().export_timeout)
    }

    /// Exports what is left, then stops the thread; blocks at most `timeout`.
    /// Later calls return `Ok` at once.
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.queue.shutdown(timeout)
    }

    /// Hands the resource to the exporter (before the first export).
    fn set_resource(&mut self, resource: &Resource) {
        self.queue.set_resource(resource);
    }
}
