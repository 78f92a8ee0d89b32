//! How many spans a batch span processor delivers when one thread ends
//! spans as fast as it can: observe's `SpanPipeline` and the OpenTelemetry
//! SDK's `BatchSpanProcessor`, each with its default settings (queue 2048,
//! batches of 512, 5 s delay) into a discarding exporter that counts what
//! it gets. Prints, per processor and run: spans produced per second,
//! delivered, dropped (observe counts its own; for the SDK it is produced −
//! delivered), and checks delivered + dropped = produced for observe.
//!
//! A throughput run, not a criterion timing: `cargo bench -p observe-bench
//! --bench pipeline` (3 runs of 3 s each per processor). Figures:
//! docs/performance.md.

use observe::export::{BatchConfig, DropReason, SpanPipeline};
use observe::opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use observe::opentelemetry::{InstrumentationScope, KeyValue};
use observe::opentelemetry_sdk::trace::{
    BatchSpanProcessor as SdkBatchSpanProcessor, SpanData, SpanEvents, SpanLinks, SpanProcessor,
};
use std::time::{Duration, Instant, SystemTime};

mod common;

const RUN: Duration = Duration::from_secs(3);
const RUNS: usize = 3;

/// A server span as observe's layer ends it (what a request produces).
fn span(i: u64, scope: &InstrumentationScope) -> SpanData {
    let now = SystemTime::now();
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(u128::from(i) + 1),
            SpanId::from(i + 1),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: "GET /orders/{id}".into(),
        start_time: now,
        end_time: now,
        attributes: vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/orders/{id}"),
            KeyValue::new("http.response.status_code", 200),
            KeyValue::new("url.path", format!("/orders/{i}")),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope.clone(),
    }
}

/// Ends spans on this thread for `RUN`; returns how many.
fn produce(p: &dyn SpanProcessor) -> (u64, Duration) {
    let scope = InstrumentationScope::builder("observe").build();
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < RUN {
        for _ in 0..256 {
            p.on_end(span(n, &scope));
            n += 1;
        }
    }
    (n, t0.elapsed())
}

fn main() {
    // `cargo bench` passes `--bench`; a test run (`cargo test --benches`)
    // does not: then one short run only checks that it works.
    let bench = std::env::args().any(|a| a == "--bench");
    let runs = if bench { RUNS } else { 1 };
    println!("processor  run  produced/s  produced  delivered  dropped  dropped %");
    for name in ["sdk", "observe"] {
        for run in 0..runs {
            let delivered = common::Counting::default();
            let (produced, took, dropped_counted) = match name {
                "sdk" => {
                    let p = SdkBatchSpanProcessor::builder(delivered.clone()).build();
                    let (n, took) = produce(&p);
                    let _ = p.shutdown_with_timeout(Duration::from_secs(30));
                    (n, took, None)
                }
                _ => {
                    let p = SpanPipeline::new(delivered.clone(), BatchConfig::default())
                        .expect("observe's pipeline");
                    let (n, took) = produce(&p);
                    let _ = p.shutdown_with_timeout(Duration::from_secs(30));
                    let counted: u64 = DropReason::ALL.iter().map(|r| p.dropped(*r)).sum();
                    (n, took, Some(counted))
                }
            };
            let got = delivered.get();
            let dropped = dropped_counted.unwrap_or(produced - got);
            if let Some(counted) = dropped_counted {
                assert_eq!(
                    got + counted,
                    produced,
                    "observe: delivered + counted = produced"
                );
            }
            println!(
                "{name:9}  {run:3}  {:10.0}  {produced:8}  {got:9}  {dropped:7}  {:8.2}",
                produced as f64 / took.as_secs_f64(),
                100.0 * dropped as f64 / produced as f64
            );
        }
    }
}
