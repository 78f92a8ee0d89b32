//! One JSON log line: an event with 8 fields (strings and integers) inside two
//! nested spans with 3 fields each, written through a 64 KiB `BufWriter` over
//! `io::sink`, for observe and two peers in the same run.
//!
//! Run: `cargo bench -p observe-bench --bench log_line` (figures and the
//! machine: docs/performance.md).
//!
//! `observe_log_bridge_installed` is the `observe` row again after the
//! `log` bridge `init` installs (tracing-log's `LogTracer`) is in place:
//! it must cost nothing while no `log` record is emitted.
//! `observe_log_record` is one `log::error!` record through that bridge.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use observe::testing::TelemetryBuilderExt as _;
use observe::tracing::{self, Level};
use std::sync::{Arc, Mutex};

mod common;

/// The event every case writes: 8 fields and a message, through the macro
/// `$m` (`tracing::error`), or observe's `event!` with its level and name first.
macro_rules! payment_failed {
    ($($m:ident)::+ $(, $head:expr)*) => {
        $($m)::+!(
            $($head,)*
            order_id = "ord_8f14e45fceea167a",
            user = "psn_5d41402abc4b2a76b9719d911017c592",
            amount_cents = 129_900u64,
            currency = "EUR",
            gateway = "bank",
            gateway_status_code = 504u64,
            attempt = 3u64,
            duration_ms = 30_012u64,
            "payment failed"
        )
    };
}

macro_rules! eight_field_event {
    () => {
        payment_failed!(tracing::error)
    };
}

macro_rules! observe_event {
    () => {
        payment_failed!(observe::event, Level::ERROR, "payment_failed")
    };
}

/// Runs `f` inside two nested spans with 3 fields each.
fn in_two_spans(f: impl FnOnce()) {
    let outer = tracing::info_span!(
        "request",
        http_route = "/pay",
        method = "POST",
        client = "10.0.0.7"
    );
    let _o = outer.enter();
    let inner = tracing::info_span!(
        "charge",
        gateway = "bank",
        attempt = 3u64,
        region = "eu-west-1"
    );
    let _i = inner.enter();
    f();
}

fn observe_line(c: &mut Criterion) {
    let t = observe::Telemetry::builder("payment-service")
        .env_source(|_| None)
        .log_output(observe::LogOutput::Sink(Arc::new(
            observe::SyncWriter::new(common::sink()),
        )))
        .build()
        .expect("telemetry");
    let mut g = c.benchmark_group("log_line");
    g.throughput(Throughput::Elements(1));
    tracing::dispatcher::with_default(t.dispatch(), || {
        in_two_spans(|| {
            g.bench_function("observe", |b| b.iter(|| observe_event!()));
            // The bridge `init` installs, with `log`'s maximum at tracing's.
            tracing_log::LogTracer::builder()
                .with_max_level(log::LevelFilter::Info)
                .init()
                .expect("the first logger");
            g.bench_function("observe_log_bridge_installed", |b| {
                b.iter(|| observe_event!())
            });
            g.bench_function("observe_log_record", |b| {
                b.iter(|| {
                    log::error!(
                        target: "payments::gateway",
                        "payment failed: order {} gateway {} status {}",
                        "ord_8f14e45fceea167a",
                        "bank",
                        504u64
                    )
                })
            });
        })
    });
    drop(t);

    // As shipped: the non-blocking writer `init` installs (default buffer,
    // lines dropped and counted when it is full), over a line-counting sink.
    {
        let written = common::CountingSink::default();
        let writer = Arc::new(
            observe::NonBlocking::new(
                written.clone(),
                observe::DEFAULT_LOG_BUFFER,
                observe::FullPolicy::DropNewest,
            )
            .expect("line writer"),
        );
        let t = observe::Telemetry::builder("payment-service")
            .env_source(|_| None)
            .log_output(observe::LogOutput::Sink(Arc::clone(&writer) as _))
            .build()
            .expect("telemetry");
        let mut events = 0u64;
        tracing::dispatcher::with_default(t.dispatch(), || {
            in_two_spans(|| {
                g.bench_function("observe_shipped", |b| {
                    b.iter(|| {
                        events += 1;
                        observe_event!()
                    })
                });
            })
        });
        use observe::LineSink as _;
        writer.flush(std::time::Duration::from_secs(10));
        let (lines, dropped) = (
            written.lines.load(std::sync::atomic::Ordering::Relaxed),
            writer.dropped(),
        );
        eprintln!("observe_shipped: {events} events, {lines} lines written, {dropped} dropped");
        assert_eq!(lines + dropped, events, "written + counted = logged");
        drop(t);
    }

    // tracing-subscriber's JSON formatter, same event and spans.
    let sub = tracing_subscriber::fmt()
        .json()
        .with_writer(Mutex::new(common::sink()))
        .with_max_level(Level::INFO)
        .finish();
    let d = tracing::Dispatch::new(sub);
    tracing::dispatcher::with_default(&d, || {
        in_two_spans(|| {
            g.bench_function("tracing_subscriber_json", |b| {
                b.iter(|| eight_field_event!())
            });
        })
    });

    // The floor tracing itself puts under any layer: dispatch, span scope
    // walk and extension locks, formatting nothing.
    {
        use tracing_subscriber::layer::SubscriberExt;
        struct Noop;
        impl<S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>>
            tracing_subscriber::Layer<S> for Noop
        {
            fn on_event(
                &self,
                e: &tracing::Event<'_>,
                ctx: tracing_subscriber::layer::Context<'_, S>,
            ) {
                let mut n = 0usize;
                if let Some(sc) = ctx.event_scope(e) {
                    for s in sc {
                        n += s.extensions().get::<u8>().is_some() as usize;
                    }
                }
                std::hint::black_box(n);
            }
        }
        let d = tracing::Dispatch::new(tracing_subscriber::Registry::default().with(Noop));
        tracing::dispatcher::with_default(&d, || {
            in_two_spans(|| {
                g.bench_function("tracing_dispatch_floor", |b| {
                    b.iter(|| eight_field_event!())
                });
            })
        });
    }
    // slog + slog-json, the 6 span fields as child-logger context.
    use slog::Drain;
    let drain = Mutex::new(
        slog_json::Json::new(common::sink())
            .add_default_keys()
            .build(),
    )
    .fuse();
    let root = slog::Logger::root(drain, slog::o!("service" => "payment-service"));
    let child = root.new(slog::o!(
        "http_route" => "/pay", "method" => "POST", "client" => "10.0.0.7",
        "gateway" => "bank", "attempt" => 3u64, "region" => "eu-west-1"
    ));
    g.bench_function("slog_json", |b| {
        b.iter(|| {
            slog::error!(child, "payment failed";
                "order_id" => "ord_8f14e45fceea167a",
                "user" => "psn_5d41402abc4b2a76b9719d911017c592",
                "amount_cents" => 129_900u64,
                "currency" => "EUR",
                "gateway" => "bank",
                "gateway_status_code" => 504u64,
                "attempt" => 3u64,
                "duration_ms" => 30_012u64)
        })
    });
    g.finish();
}

criterion_group!(benches, observe_line);
criterion_main!(benches);
