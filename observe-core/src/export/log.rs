//! [`LogPipeline`]: OpenTelemetry log records into a bounded queue,
//! exported in batches on the pipeline's own thread.

use super::batch::{queue_pipeline, BatchConfig, Export, PipelineControl, Queue};
use super::dropped::{DropReason, Signal};
use crate::error::InitError;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, LogProcessor, SdkLogRecord};
use opentelemetry_sdk::Resource;
use std::sync::Arc;
use std::time::Duration;

type Item = Box<(SdkLogRecord, InstrumentationScope)>;

/// observe's batch log-record processor: the log-record twin of
/// [`SpanPipeline`](super::SpanPipeline), counting what it drops
/// in `observe.telemetry.dropped{signal="logs"}`.
#[derive(Clone, Debug)]
pub struct LogPipeline {
    queue: Arc<Queue<Item>>,
}

queue_pipeline!(LogPipeline, Item, Signal::Logs, LogExporter, LogExport);

struct LogExport<E>(E);

impl<E: LogExporter + 'static> Export<Item> for LogExport<E> {
    async fn export(&mut self, batch: Vec<Item>) -> Result<(), String> {
        let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            batch.iter().map(|b| (&b.0, &b.1)).collect();
        self.0
            .export(LogBatch::new(&refs))
            .await
            .map_err(|e| super::error_text(&e))
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }

    fn shutdown(&mut self) {
        let _ = self.0.shutdown_with_timeout(Duration::from_secs(1));
    }
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
