//! Per-request overhead of the HTTP layer on an axum router driven in process
//! (`tower::ServiceExt`), for observe and its peers in the same run:
//!
//! | case | what it does |
//! |---|---|
//! | `bare` | the router alone; the handler's log line goes nowhere |
//! | `tower_http_trace` | tower-http `TraceLayer`, JSON log lines (tracing-subscriber) |
//! | `peer_stack` | axum-tracing-opentelemetry + axum-prometheus, JSON log lines, spans through tracing-opentelemetry into a discarding processor |
//! | `observe` | `ObserveLayer`: server span with extracted parent, response `traceparent`, golden-signal metrics, one JSON line with trace ids, spans into a discarding processor (the span part: no batch queue, no metric reader) |
//! | `peer_stack_shipped` | `peer_stack` with what its users run: the SDK's `BatchSpanProcessor` (defaults) into a counting discarding exporter |
//! | `observe_shipped` | `observe` with what `init` installs: its `SpanPipeline` (defaults) into a counting discarding exporter, the Prometheus reader with exemplars, the non-blocking line writer (its default buffer) into a byte-counting sink |
//!
//! The shipped rows print delivered + dropped = produced; observe's is asserted.
//! Every request carries a `traceparent`; every handler writes one log line.
//! Run: `cargo bench -p observe-bench --bench http_layer`. Figures: docs/performance.md.

use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use observe::testing::TelemetryBuilderExt as _;
use observe::tracing;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanProcessor};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

/// Receives ended spans and drops them, counting (nothing is dropped silently).
#[derive(Debug, Default, Clone)]
struct Discard(Arc<AtomicU64>);

impl SpanProcessor for Discard {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
    fn on_end(&self, span: SpanData) {
        std::hint::black_box(span);
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("http_layer");
    // axum-prometheus installs a global recorder: one pair for both peer rows.
    let (prom_layer, _prom_handle) = {
        let _rt = rt.enter();
        axum_prometheus::PrometheusMetricLayer::pair()
    };

    // Bare router.
    {
        let mut app = common::router();
        g.bench_function("bare", |b| b.iter(|| rt.block_on(common::one(&mut app))));
    }

    // tower-http TraceLayer with JSON logs.
    {
        let sub = tracing_subscriber::fmt()
            .json()
            .with_writer(Mutex::new(common::sink()))
            .finish();
        let d = tracing::Dispatch::new(sub);
        let mut app = common::router().layer(tower_http::trace::TraceLayer::new_for_http());
        tracing::dispatcher::with_default(&d, || {
            g.bench_function("tower_http_trace", |b| {
                b.iter(|| rt.block_on(common::one(&mut app)))
            });
        });
    }

    // Peer stack: axum-tracing-opentelemetry + axum-prometheus, spans into
    // a discarding processor (the span part).
    {
        let discard = Discard::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(discard.clone())
            .build();
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let (d, app) = common::peer_stack(&provider);
        let requests = bench_requests(&mut g, &rt, "peer_stack", &d, app.layer(prom_layer.clone()));
        // Report (not assert) what the peer's processor received.
        if requests > 0 {
            eprintln!(
                "peer_stack: {} spans for {requests} requests",
                discard.0.load(Ordering::Relaxed)
            );
        }
    }

    // observe: spans into a discarding processor (the span part).
    {
        let discard = Discard::default();
        let t = observe::Telemetry::builder("payment-service")
            .env_source(|_| None)
            .log_output(observe::LogOutput::Sink(Arc::new(
                observe::SyncWriter::new(common::sink()),
            )))
            .span_processor(discard.clone())
            .build()
            .expect("telemetry");
        let app = common::router().layer(observe::tower::ObserveLayer::new());
        let before = discard.0.load(Ordering::Relaxed);
        let requests = bench_requests(&mut g, &rt, "observe", t.dispatch(), app);
        // Every request's span reached the processor: none dropped silently.
        assert_eq!(discard.0.load(Ordering::Relaxed) - before, requests);
    }

    // Peer stack as shipped: the SDK's batch processor.
    {
        let delivered = common::Counting::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(delivered.clone()).build())
            .build();
        let (d, app) = common::peer_stack(&provider);
        let requests = bench_requests(
            &mut g,
            &rt,
            "peer_stack_shipped",
            &d,
            app.layer(prom_layer.clone()),
        );
        let _ = provider.shutdown();
        let got = delivered.get();
        eprintln!(
            "peer_stack_shipped: {requests} requests, {got} spans delivered, {} lost (not counted by the SDK)",
            requests.saturating_sub(got)
        );
    }

    // observe as `init` installs it.
    {
        let shipped = common::Shipped::new("payment-service");
        let app = common::router().layer(observe::tower::ObserveLayer::new());
        let requests = bench_requests(&mut g, &rt, "observe_shipped", &shipped.dispatch, app);
        shipped.check("observe_shipped", requests);
    }
    g.finish();
}

/// Benchmarks one request through `app` under `dispatch` as `name`;
/// returns how many requests it sent.
fn bench_requests(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    name: &str,
    dispatch: &tracing::Dispatch,
    mut app: Router,
) -> u64 {
    let mut requests = 0u64;
    tracing::dispatcher::with_default(dispatch, || {
        g.bench_function(name, |b| {
            b.iter(|| {
                requests += 1;
                rt.block_on(common::one(&mut app))
            })
        });
    });
    requests
}

criterion_group!(benches, bench);
criterion_main!(benches);
