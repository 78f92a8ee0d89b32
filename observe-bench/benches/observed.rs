//! Per-call cost of `#[observed]` against its peers, all measured in one run
//! on the same trivial function (`Ok(x * 3)`), so the ratios are what count.
//!
//! ```text
//! cargo bench -p observe-bench --bench observed -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Figures, the machine and the targets: docs/performance.md.

use criterion::{criterion_group, criterion_main, Criterion};
use observe::observed;
use observe::opentelemetry::trace::TracerProvider as _;
use observe::opentelemetry::Context;
use observe::opentelemetry_sdk::error::OTelSdkResult;
use observe::opentelemetry_sdk::metrics::ManualReader;
use observe::opentelemetry_sdk::trace::{SdkTracerProvider, Span, SpanData, SpanProcessor};
use observe::testing::TelemetryBuilderExt as _;
use observe::{LogOutput, SyncWriter, Telemetry, TelemetryBuilder};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing_subscriber::layer::SubscriberExt;

mod common;

/// A span processor that drops every span.
#[derive(Debug)]
struct Discard;

impl SpanProcessor for Discard {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}
    fn on_end(&self, span: SpanData) {
        // Seen by the optimizer, not copied (the span's 352 bytes).
        black_box(&span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// A fastrace reporter that drops every span.
struct DiscardReporter;

impl fastrace::collector::Reporter for DiscardReporter {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        drop(black_box(spans));
    }
}

#[inline(never)]
fn plain(x: u64) -> Result<u64, std::io::Error> {
    Ok(x.wrapping_mul(3))
}

#[tracing::instrument(skip_all)]
#[inline(never)]
fn with_tracing(x: u64) -> Result<u64, std::io::Error> {
    Ok(x.wrapping_mul(3))
}

#[autometrics::autometrics]
#[inline(never)]
fn with_autometrics(x: u64) -> Result<u64, std::io::Error> {
    Ok(x.wrapping_mul(3))
}

#[fastrace::trace]
#[inline(never)]
fn with_fastrace(x: u64) -> Result<u64, std::io::Error> {
    Ok(x.wrapping_mul(3))
}

#[observed]
#[inline(never)]
fn with_observed(x: u64) -> Result<u64, std::io::Error> {
    Ok(x.wrapping_mul(3))
}

/// A parent for `PER_PARENT` calls, as fastrace's bench has one: the
/// calls are children of a local parent, like fastrace's spans.
#[observed]
#[inline(never)]
fn parent_of(n: u64) -> Result<u64, std::io::Error> {
    for _ in 0..n {
        black_box(with_observed(black_box(7)).ok());
    }
    Ok(n)
}

/// Calls per parent span where a scenario needs one (fastrace, request).
const PER_PARENT: u64 = 1000;

/// Times `iters` calls made in batches of at most `PER_PARENT` by `batch`
/// (which opens the batch's parent span and makes the `n` calls under it).
fn under_parents(iters: u64, mut batch: impl FnMut(u64)) -> Duration {
    let start = Instant::now();
    let mut done = 0;
    while done < iters {
        batch(PER_PARENT.min(iters - done));
        done += PER_PARENT;
    }
    start.elapsed()
}

/// The bench's telemetry; `disabled` sets `OTEL_SDK_DISABLED=true` in its
/// environment.
fn builder(disabled: bool, metrics: bool) -> TelemetryBuilder {
    let b = Telemetry::builder("bench")
        .env_source(move |k| (disabled && k == "OTEL_SDK_DISABLED").then(|| "true".to_owned()))
        .log_output(LogOutput::Sink(Arc::new(SyncWriter::new(std::io::sink()))))
        .span_processor(Discard);
    if metrics {
        b.metric_reader(ManualReader::builder().build())
    } else {
        b
    }
}

fn telemetry(disabled: bool, metrics: bool) -> Telemetry {
    match builder(disabled, metrics).build() {
        Ok(t) => t,
        Err(e) => panic!("bench telemetry: {e}"),
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("observed");

    g.bench_function("plain", |b| b.iter(|| plain(black_box(7))));

    {
        let provider = SdkTracerProvider::builder()
            .with_span_processor(Discard)
            .build();
        let tracer = provider.tracer("bench");
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
        tracing::subscriber::with_default(subscriber, || {
            g.bench_function("tracing_instrument_otel", |b| {
                b.iter(|| with_tracing(black_box(7)))
            });
        });
    }

    autometrics::prometheus_exporter::init();
    g.bench_function("autometrics", |b| b.iter(|| with_autometrics(black_box(7))));

    fastrace::set_reporter(DiscardReporter, fastrace::collector::Config::default());
    g.bench_function("fastrace", |b| {
        b.iter_custom(|iters| {
            under_parents(iters, |n| {
                let root =
                    fastrace::Span::root("request", fastrace::prelude::SpanContext::random());
                let _parent = root.set_local_parent();
                for _ in 0..n {
                    black_box(with_fastrace(black_box(7)).ok());
                }
            })
        })
    });

    let on = telemetry(false, true);
    tracing::dispatcher::with_default(on.dispatch(), || {
        g.bench_function("observed", |b| b.iter(|| with_observed(black_box(7))));
        g.bench_function("observed_in_request", |b| {
            b.iter_custom(|iters| {
                under_parents(iters, |n| {
                    let request = tracing::info_span!("request");
                    let _entered = request.enter();
                    for _ in 0..n {
                        black_box(with_observed(black_box(7)).ok());
                    }
                })
            })
        });
    });

    // As shipped: what `init` installs (observe's span pipeline with its
    // defaults into a counting discarding exporter, the Prometheus reader
    // with exemplars, the non-blocking line writer).
    {
        let shipped = common::Shipped::new("bench");
        let mut calls = 0u64;
        tracing::dispatcher::with_default(&shipped.dispatch, || {
            g.bench_function("observed_shipped", |b| {
                b.iter(|| {
                    calls += 1;
                    with_observed(black_box(7))
                })
            });
        });
        shipped.check("observed_shipped", calls);
    }

    // The span part: a telemetry without a metric reader. First under a
    // scoped dispatcher (`with_default`, like the rows above), then
    // installed as the process's default by `init`, as `observe::init`
    // does (tracing finds a global dispatcher without a thread-local
    // lookup).
    let spans_only = telemetry(false, false);
    tracing::dispatcher::with_default(spans_only.dispatch(), || {
        g.bench_function("observed_no_metric_reader", |b| {
            b.iter(|| with_observed(black_box(7)))
        });
    });
    let global = builder(false, false).init();
    if let Err(e) = &global {
        panic!("bench telemetry: {e}");
    }
    g.bench_function("observed_no_metric_reader_global", |b| {
        b.iter(|| with_observed(black_box(7)))
    });
    g.bench_function("observed_no_metric_reader_global_child", |b| {
        b.iter_custom(|iters| {
            under_parents(iters, |n| {
                black_box(parent_of(n).ok());
            })
        })
    });

    let off = telemetry(true, true);
    tracing::dispatcher::with_default(off.dispatch(), || {
        g.bench_function("observed_disabled", |b| {
            b.iter(|| with_observed(black_box(7)))
        });
    });

    g.finish();
    fastrace::flush();
}

criterion_group!(benches, bench);
criterion_main!(benches);
