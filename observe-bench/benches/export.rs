//! `SpanProcessor::on_end` on the recording thread: observe's
//! `SpanPipeline` against the OpenTelemetry SDK's, both with a no-op
//! exporter, a 2048-span queue and batches of 512.
//!
//! - `accepted`: the queue has room (each timed run of 1024 spans is
//!   followed by an untimed flush), so this is the cost of handing a span over.
//! - `queue_full`: the exporter is stalled and the queue full, so this is the
//!   cost of dropping (observe also counts it; the SDK drops silently).
//!
//! Run: `cargo bench -p observe-bench --bench export`. Figures and the
//! machine: docs/performance.md.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use observe::export::{BatchConfig, SpanPipeline};
use observe::opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use observe::opentelemetry::{InstrumentationScope, KeyValue};
use observe::opentelemetry_sdk::error::OTelSdkResult;
use observe::opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor as SdkBatchSpanProcessor, SpanData, SpanEvents,
    SpanExporter, SpanLinks, SpanProcessor,
};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const CHUNK: usize = 1024;

/// Accepts everything at once, or waits while `stall` is set.
#[derive(Debug, Clone, Default)]
struct NoopExporter {
    stall: Arc<AtomicBool>,
}

impl SpanExporter for NoopExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        while self.stall.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(1));
        }
        black_box(batch);
        Ok(())
    }
}

fn span(i: u64) -> SpanData {
    let now = SystemTime::now();
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(u128::from(i) + 1),
            SpanId::from(i + 1),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::from(7),
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: "GET /orders/{id}".into(),
        start_time: now,
        end_time: now,
        attributes: vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/orders/{id}"),
            KeyValue::new("http.response.status_code", 200),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("observe").build(),
    }
}

fn processors(exporter: &NoopExporter) -> Vec<(&'static str, Box<dyn SpanProcessor>)> {
    let observe = SpanPipeline::new(
        exporter.clone(),
        BatchConfig::default()
            .max_queue_size(2048)
            .max_export_batch_size(512)
            .scheduled_delay(Duration::from_secs(5)),
    )
    .expect("observe processor");
    let sdk = SdkBatchSpanProcessor::builder(exporter.clone())
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(2048)
                .with_max_export_batch_size(512)
                .with_scheduled_delay(Duration::from_secs(5))
                .build(),
        )
        .build();
    vec![("sdk", Box::new(sdk)), ("observe", Box::new(observe))]
}

fn accepted(c: &mut Criterion) {
    let exporter = NoopExporter::default();
    let mut group = c.benchmark_group("on_end/accepted");
    for (name, p) in processors(&exporter) {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters as usize;
                while left > 0 {
                    let n = left.min(CHUNK);
                    let spans: Vec<SpanData> = (0..n as u64).map(span).collect();
                    let t0 = Instant::now();
                    for s in spans {
                        p.on_end(s);
                    }
                    total += t0.elapsed();
                    let _ = p.force_flush();
                    left -= n;
                }
                total
            });
        });
        let _ = p.shutdown_with_timeout(Duration::from_secs(5));
    }
    group.finish();
}

fn queue_full(c: &mut Criterion) {
    let exporter = NoopExporter::default();
    let mut group = c.benchmark_group("on_end/queue_full");
    for (name, p) in processors(&exporter) {
        // Stall the exporter on its first batch, then fill the queue.
        exporter.stall.store(true, Ordering::Relaxed);
        for i in 0..4096 {
            p.on_end(span(i));
        }
        std::thread::sleep(Duration::from_millis(50));
        for i in 0..4096 {
            p.on_end(span(i));
        }
        group.bench_function(name, |b| {
            b.iter_batched(|| span(1), |s| p.on_end(s), BatchSize::SmallInput);
        });
        exporter.stall.store(false, Ordering::Relaxed);
        let _ = p.shutdown_with_timeout(Duration::from_secs(5));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = accepted, queue_full
}
criterion_main!(benches);
