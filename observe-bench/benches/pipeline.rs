//! How many spans and log records a batch processor delivers when one
//! thread makes them as fast as it can, and whether it loses any at the
//! rate of one request thread: observe's pipelines (as `init` builds them)
//! and the OpenTelemetry SDK's `BatchSpanProcessor` / `BatchLogProcessor`
//! (with opentelemetry-otlp's exporters for OTLP), each with its default
//! settings (queue 2048, batches of 512, delay 5 s for spans and 1 s for
//! records), into
//!
//! - `discard`: an exporter that counts what it gets and drops it;
//! - `grpc` / `http`: OTLP/gRPC or OTLP/HTTP into the real Collector
//!   (Jaeger v2 from `tools/build`, its receiver feeding `memory_limiter`,
//!   `batch` and the `nop` exporter), counted by the Collector's own
//!   `otelcol_receiver_accepted_*` counters.
//!
//! Both sides make their spans and records through the same OpenTelemetry
//! API (`Tracer::build`, `Logger::emit`) on one thread: a server span with
//! four attributes, a record with a body and three attributes.
//!
//! Two loads per case: `full` (flat out for 3 s) and `paced` (the rate of
//! one request thread through observe's layer as shipped: 200,000 a second
//! unless `OBSERVE_BENCH_RATE` says otherwise, 3 s). Prints produced/s,
//! delivered/s (delivered over the time from the first item to the end of
//! the flush) and what was lost; for observe, asserts delivered + counted
//! dropped = produced.
//!
//! A throughput run, not a criterion timing: `cargo bench -p observe-bench
//! --bench pipeline` (`OBSERVE_BENCH_ONLY=discard|grpc|http`,
//! `OBSERVE_BENCH_KIND=spans|logs`, `OBSERVE_BENCH_SIDE=sdk|observe`,
//! `OBSERVE_BENCH_LOAD=full|paced` run fewer cases; the OTLP cases need `target/tools/bin/jaeger`; without
//! it they are left out, said so). Figures: docs/performance.md.

use observe::export::{BatchConfig, LogPipeline, Signal, SpanPipeline};
use observe::opentelemetry::logs::Severity;
use observe::opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
use observe::opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};
use observe::opentelemetry::KeyValue;
use observe::opentelemetry_sdk::error::OTelSdkResult;
use observe::opentelemetry_sdk::logs::{
    BatchLogProcessor, LogBatch, LogExporter, SdkLoggerProvider,
};
use observe::opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use observe::testing::TelemetryBuilderExt as _;
use observe::TelemetryGuard;
use observe_stack::{Collector, CollectorOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

const RUN: Duration = Duration::from_secs(3);
/// One request thread through observe's layer as shipped: about 5.3 µs a
/// request (`http_layer/observe_shipped`), so 190,000 spans a second.
const REQUEST_THREAD_RATE: u64 = 200_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Spans,
    Logs,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dest {
    Discard,
    Grpc,
    Http,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Load {
    Full,
    Paced(u64),
}

/// A log exporter that discards every batch, counting its records.
#[derive(Debug, Default, Clone)]
struct CountingLogs(Arc<AtomicU64>);

impl LogExporter for CountingLogs {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        self.0
            .fetch_add(batch.iter().count() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Where the items go and how to read back how many arrived: the
/// counting exporters, or the Collector and its counter of what it accepted.
enum Delivered<'a> {
    Spans(common::Counting),
    Logs(CountingLogs),
    Collector(&'a Collector, &'static str),
}

impl Delivered<'_> {
    /// How many arrived so far (for the Collector: since it started).
    fn count(&self, rt: &tokio::runtime::Runtime) -> u64 {
        match self {
            Delivered::Spans(c) => c.get(),
            Delivered::Logs(c) => c.0.load(Ordering::Relaxed),
            Delivered::Collector(c, metric) => {
                rt.block_on(c.own_metric(metric, &[]))
                    .expect("the Collector's own metrics") as u64
            }
        }
    }
}

/// One side's producer: the provider the items are made through.
enum Side {
    Sdk {
        tracer: Option<SdkTracerProvider>,
        logger: Option<SdkLoggerProvider>,
    },
    Observe(TelemetryGuard),
}

impl Side {
    fn produce(&self, kind: Kind, load: Load) -> (u64, Duration) {
        let (tp, lp) = match self {
            Side::Sdk { tracer, logger } => (tracer.as_ref(), logger.as_ref()),
            Side::Observe(g) => (g.tracer_provider(), g.logger_provider()),
        };
        match kind {
            Kind::Spans => {
                let tracer = tp.expect("tracer provider").tracer("bench");
                run(load, |i| {
                    let mut span = tracer
                        .span_builder("GET /orders/{id}")
                        .with_kind(SpanKind::Server)
                        .with_attributes([
                            KeyValue::new("http.request.method", "GET"),
                            KeyValue::new("http.route", "/orders/{id}"),
                            KeyValue::new("http.response.status_code", 200),
                            KeyValue::new("url.path", format!("/orders/{i}")),
                        ])
                        .start(&tracer);
                    span.end();
                })
            }
            Kind::Logs => {
                let logger = lp.expect("logger provider").logger("bench");
                run(load, |i| {
                    let mut r = logger.create_log_record();
                    r.set_severity_number(Severity::Info);
                    r.set_severity_text("INFO");
                    r.set_event_name("order_fetched");
                    r.set_body(AnyValue::from("order fetched"));
                    r.add_attribute("order.id", i as i64);
                    r.add_attribute("http.route", "/orders/{id}");
                    r.add_attribute("event_inferred", false);
                    logger.emit(r);
                })
            }
        }
    }

    /// Flushes (waits for everything to be exported) and shuts down;
    /// returns what observe counted as dropped (`None` for the SDK, which
    /// does not say).
    fn finish(self, kind: Kind) -> Option<u64> {
        match self {
            Side::Sdk { tracer, logger } => {
                if let Some(t) = tracer {
                    let _ = t.force_flush();
                    let _ = t.shutdown_with_timeout(Duration::from_secs(30));
                }
                if let Some(l) = logger {
                    let _ = l.force_flush();
                    let _ = l.shutdown_with_timeout(Duration::from_secs(30));
                }
                None
            }
            Side::Observe(g) => {
                let _ = g.flush(Duration::from_secs(30));
                let signal = match kind {
                    Kind::Spans => Signal::Traces,
                    Kind::Logs => Signal::Logs,
                };
                let stats = g.export_stats(signal);
                if stats.retries > 0 {
                    eprintln!(
                        "observe {kind:?}: {} export retries, {:?} waited in all",
                        stats.retries, stats.retry_wait
                    );
                }
                let dropped = stats.dropped();
                let _ = g.shutdown(Duration::from_secs(30));
                Some(dropped)
            }
        }
    }
}

/// Calls `make(i)` on this thread for `RUN`, flat out or paced (items
/// spread evenly over each millisecond); returns how many and how long.
fn run(load: Load, mut make: impl FnMut(u64)) -> (u64, Duration) {
    let t0 = Instant::now();
    let mut n = 0u64;
    match load {
        Load::Full => {
            while t0.elapsed() < RUN {
                for _ in 0..256 {
                    make(n);
                    n += 1;
                }
            }
        }
        Load::Paced(rate) => {
            let total = rate * RUN.as_secs();
            while n < total {
                // Where the schedule says we should be: catch up, else wait.
                let due = (t0.elapsed().as_secs_f64() * rate as f64) as u64;
                if n < due.min(total) {
                    make(n);
                    n += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
        }
    }
    (n, t0.elapsed())
}

/// The SDK's batch processor `$processor` over opentelemetry-otlp's
/// `$exporter`, over gRPC or HTTP to `$endpoint`.
macro_rules! sdk_otlp {
    ($processor:ident, $exporter:ident, $dest:expr, $endpoint:expr) => {{
        use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
        let b = opentelemetry_otlp::$exporter::builder();
        let exporter = match $dest {
            Dest::Grpc => b.with_tonic().with_endpoint($endpoint).build(),
            _ => b
                .with_http()
                .with_http_client(blocking_client())
                .with_endpoint($endpoint)
                .build(),
        };
        $processor::builder(exporter.expect(concat!("SDK ", stringify!($exporter)))).build()
    }};
}

fn sdk_side(kind: Kind, dest: Dest, delivered: &Delivered<'_>) -> Side {
    let endpoint = |c: &Collector| match (dest, kind) {
        (Dest::Grpc, _) => c.otlp_grpc_url(),
        (_, Kind::Spans) => format!("{}/v1/traces", c.otlp_http_url()),
        (_, Kind::Logs) => format!("{}/v1/logs", c.otlp_http_url()),
    };
    match delivered {
        Delivered::Spans(c) => Side::Sdk {
            tracer: Some(
                SdkTracerProvider::builder()
                    .with_span_processor(BatchSpanProcessor::builder(c.clone()).build())
                    .build(),
            ),
            logger: None,
        },
        Delivered::Logs(c) => Side::Sdk {
            tracer: None,
            logger: Some(
                SdkLoggerProvider::builder()
                    .with_log_processor(BatchLogProcessor::builder(c.clone()).build())
                    .build(),
            ),
        },
        Delivered::Collector(c, _) => match kind {
            Kind::Spans => Side::Sdk {
                tracer: Some(
                    SdkTracerProvider::builder()
                        .with_span_processor(sdk_otlp!(
                            BatchSpanProcessor,
                            SpanExporter,
                            dest,
                            endpoint(c)
                        ))
                        .build(),
                ),
                logger: None,
            },
            Kind::Logs => Side::Sdk {
                tracer: None,
                logger: Some(
                    SdkLoggerProvider::builder()
                        .with_log_processor(sdk_otlp!(
                            BatchLogProcessor,
                            LogExporter,
                            dest,
                            endpoint(c)
                        ))
                        .build(),
                ),
            },
        },
    }
}

/// The SDK's HTTP exporter's client on its batch thread (built off any
/// tokio runtime: reqwest's blocking client runs one of its own).
fn blocking_client() -> reqwest::blocking::Client {
    std::thread::spawn(reqwest::blocking::Client::new)
        .join()
        .expect("reqwest blocking client")
}

fn observe_side(dest: Dest, delivered: &Delivered<'_>) -> Side {
    let sink = common::CountingSink::default();
    let writer = Arc::new(
        observe::NonBlocking::new(
            sink,
            observe::DEFAULT_LOG_BUFFER,
            observe::FullPolicy::DropNewest,
        )
        .expect("line writer"),
    );
    let b =
        observe::Telemetry::builder("pipeline-bench").log_output(observe::LogOutput::Sink(writer));
    let b = match delivered {
        Delivered::Spans(c) => b
            .env_source(|_| None)
            .span_pipeline(SpanPipeline::new(c.clone(), BatchConfig::default()).expect("pipeline")),
        Delivered::Logs(c) => b
            .env_source(|_| None)
            .log_pipeline(LogPipeline::new(c.clone(), BatchConfig::logs()).expect("pipeline")),
        Delivered::Collector(c, _) => {
            let (endpoint, protocol) = match dest {
                Dest::Grpc => (c.otlp_grpc_url(), "grpc"),
                _ => (c.otlp_http_url(), "http/protobuf"),
            };
            b.env_source(move |k| match k {
                "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
                "OTEL_EXPORTER_OTLP_PROTOCOL" => Some(protocol.to_owned()),
                "OTEL_METRICS_EXPORTER" => Some("none".to_owned()),
                _ => None,
            })
        }
    };
    let (_dispatch, guard) = b.build().expect("telemetry").into_parts();
    Side::Observe(guard)
}

fn main() {
    // `cargo bench` passes `--bench`; a test run (`cargo test --benches`)
    // does not: then only the discarding cases run, briefly.
    let bench = std::env::args().any(|a| a == "--bench");
    let rate = std::env::var("OBSERVE_BENCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(REQUEST_THREAD_RATE);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let otlp_wanted = !matches!(
        std::env::var("OBSERVE_BENCH_ONLY").as_deref(),
        Ok("discard")
    );
    let collector = if bench && otlp_wanted {
        let options = CollectorOptions::new()
            .override_yaml("exporters::nop: {}")
            .override_yaml("service::pipelines::traces::processors: [memory_limiter, batch]")
            .override_yaml("service::pipelines::traces::exporters: [nop]")
            .override_yaml("service::pipelines::logs::exporters: [nop]");
        match rt.block_on(Collector::start(options)) {
            Ok(c) => Some(c),
            Err(e) => {
                println!("OTLP cases left out: {e}");
                None
            }
        }
    } else {
        None
    };
    let mut dests = vec![Dest::Discard];
    if collector.is_some() {
        dests.extend([Dest::Grpc, Dest::Http]);
    }
    // OBSERVE_BENCH_ONLY=discard|grpc|http: one destination (a quicker run).
    if let Ok(only) = std::env::var("OBSERVE_BENCH_ONLY") {
        dests.retain(|d| format!("{d:?}").eq_ignore_ascii_case(&only));
    }
    let loads = [Load::Full, Load::Paced(rate)];
    println!(
        "{:5} {:8} {:7} {:14} {:>11} {:>10} {:>12} {:>10} {:>9}",
        "kind",
        "dest",
        "side",
        "load",
        "produced/s",
        "produced",
        "delivered/s",
        "delivered",
        "lost %"
    );
    // OBSERVE_BENCH_KIND=spans|logs, OBSERVE_BENCH_SIDE=sdk|observe,
    // OBSERVE_BENCH_LOAD=full|paced: fewer cases (to profile one).
    let wanted = |var: &str, v: &str| std::env::var(var).map_or(true, |w| w == v);
    for kind in [Kind::Spans, Kind::Logs] {
        for &dest in &dests {
            for load in loads {
                for side in ["sdk", "observe"] {
                    let load_name = if load == Load::Full { "full" } else { "paced" };
                    if !wanted("OBSERVE_BENCH_KIND", &format!("{kind:?}").to_lowercase())
                        || !wanted("OBSERVE_BENCH_SIDE", side)
                        || !wanted("OBSERVE_BENCH_LOAD", load_name)
                    {
                        continue;
                    }
                    let delivered = match (dest, kind, &collector) {
                        (Dest::Discard, Kind::Spans, _) => {
                            Delivered::Spans(common::Counting::default())
                        }
                        (Dest::Discard, Kind::Logs, _) => Delivered::Logs(CountingLogs::default()),
                        // OTLP destinations exist only with a Collector.
                        (_, Kind::Spans, Some(c)) => {
                            Delivered::Collector(c, "otelcol_receiver_accepted_spans_total")
                        }
                        (_, Kind::Logs, Some(c)) => {
                            Delivered::Collector(c, "otelcol_receiver_accepted_log_records_total")
                        }
                        (_, _, None) => continue,
                    };
                    let before = delivered.count(&rt);
                    let p = {
                        let _rt = rt.enter();
                        match side {
                            "sdk" => sdk_side(kind, dest, &delivered),
                            _ => observe_side(dest, &delivered),
                        }
                    };
                    let load = if bench { load } else { Load::Paced(rate / 100) };
                    let t0 = Instant::now();
                    let (produced, took) = p.produce(kind, load);
                    let counted = p.finish(kind);
                    let until_flushed = t0.elapsed();
                    let got = delivered.count(&rt) - before;
                    if let Some(counted) = counted {
                        assert_eq!(
                            got + counted,
                            produced,
                            "observe {kind:?} {dest:?} {load:?}: delivered + counted = produced"
                        );
                    }
                    let load = match load {
                        Load::Full => "full".to_owned(),
                        Load::Paced(r) => format!("paced {r}/s"),
                    };
                    println!(
                        "{:5} {:8} {:7} {:14} {:>11.0} {:>10} {:>12.0} {:>10} {:>9.2}",
                        format!("{kind:?}").to_lowercase(),
                        format!("{dest:?}").to_lowercase(),
                        side,
                        load,
                        produced as f64 / took.as_secs_f64(),
                        produced,
                        got as f64 / until_flushed.as_secs_f64(),
                        got,
                        100.0 * produced.saturating_sub(got) as f64 / produced as f64
                    );
                }
            }
        }
    }
}
