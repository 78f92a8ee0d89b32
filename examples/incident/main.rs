//! The 2 AM incident, replayed: a payments service instrumented with observe
//! (one init, one layer, `#[observed]` handlers, `#[observed(gateway = "bank")]`
//! for the bank call) whose handler catches the bank's 504 and answers
//! `200 {"status":"processing"}`, as the real one did. A bank simulator starts
//! failing at a printed moment, users retry, a synthetic checkout runs every
//! few seconds, and the alert expressions observe generates are evaluated on
//! the service's own metrics (by a real Prometheus when `prometheus` is on
//! PATH or given with `--prometheus PATH`). At the end: the detection
//! timeline, the error rate a status-code-only metric shows next to
//! observe's, and one affected order traced from its id to the bank span.
//!
//! Run: `cargo run --release --features alerts,synthetic --example incident` (about 90 s; `--short` for
//! a 15 s run). Log lines go to stdout rate-limited to a few per second (all
//! of them to `target/incident-logs.jsonl`).
//!
//! `-- --stack` (or `./scripts/stack incident`) runs the same incident on the
//! seed's real stack instead: the Collector with tail sampling and its trace
//! store, VictoriaLogs, Prometheus and Alertmanager as processes, three
//! services in two languages (docs/stack.md).

#[path = "scenario.rs"]
mod scenario;
#[path = "services.rs"]
mod services;
#[path = "stack.rs"]
mod stack;
#[path = "stack_demo.rs"]
mod stack_demo;

use observe::LineSink;
use scenario::{Config, Handles, SpanRow, Timeline};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every line to a file, a few per second to stdout.
struct DemoSink {
    file: Mutex<std::io::BufWriter<std::fs::File>>,
    second: AtomicU64,
    in_second: AtomicU64,
    start: Instant,
}

impl LineSink for DemoSink {
    fn write_line(&self, line: &[u8]) {
        if let Ok(mut f) = self.file.lock() {
            let _ = f.write_all(line);
        }
        let sec = self.start.elapsed().as_secs();
        if self.second.swap(sec, Ordering::Relaxed) != sec {
            self.in_second.store(0, Ordering::Relaxed);
        }
        if self.in_second.fetch_add(1, Ordering::Relaxed) < 2 {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line);
        }
    }

    fn flush(&self, _timeout: Duration) -> bool {
        self.file
            .lock()
            .map(|mut f| f.flush().is_ok())
            .unwrap_or(false)
    }
}

fn find_prometheus(arg: Option<PathBuf>) -> Option<PathBuf> {
    arg.or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("prometheus"))
                .find(|p| p.is_file())
        })
    })
}

fn waterfall(t: &scenario::TracedOrder) {
    println!(
        "\norder {} → trace {} ({} spans):",
        t.order_id,
        t.trace_id,
        t.spans.len()
    );
    let Some(t0) = t.spans.iter().map(|s| s.start_ns).min() else {
        println!("  (no spans exported for this trace)");
        return;
    };
    let t1 = t
        .spans
        .iter()
        .map(|s| s.end_ns)
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let width = 40.0;
    // Depth-first from the roots.
    fn children<'a>(all: &'a [SpanRow], parent: &str) -> Vec<&'a SpanRow> {
        let mut c: Vec<&SpanRow> = all.iter().filter(|s| s.parent_span_id == parent).collect();
        c.sort_by_key(|s| s.start_ns);
        c
    }
    let ids: std::collections::HashSet<&str> = t.spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut stack: Vec<(&SpanRow, usize)> = t
        .spans
        .iter()
        .filter(|s| !ids.contains(s.parent_span_id.as_str()))
        .map(|s| (s, 0))
        .collect();
    stack.sort_by_key(|(s, _)| std::cmp::Reverse(s.start_ns));
    let slowest_error = t
        .spans
        .iter()
        .filter(|s| s.error.is_some())
        .max_by_key(|s| (s.attributes.contains_key("gateway"), s.end_ns - s.start_ns))
        .map(|s| s.span_id.clone());
    while let Some((s, depth)) = stack.pop() {
        let from = ((s.start_ns - t0) as f64 / (t1 - t0) as f64 * width) as usize;
        let to =
            (((s.end_ns - t0) as f64 / (t1 - t0) as f64 * width).ceil() as usize).max(from + 1);
        let bar: String = (0..width as usize)
            .map(|i| if i >= from && i < to { '█' } else { ' ' })
            .collect();
        let ms = (s.end_ns - s.start_ns) as f64 / 1e6;
        let name = format!("{}{}", "  ".repeat(depth), s.name);
        let status = s
            .error
            .as_deref()
            .map(|e| format!("ERROR {e}"))
            .unwrap_or_default();
        let cause = if Some(&s.span_id) == slowest_error.as_ref() {
            "  ← cause"
        } else {
            ""
        };
        println!("  {name:<32} |{bar}| {ms:>8.1} ms  {status}{cause}");
        let mut c = children(&t.spans, &s.span_id);
        c.reverse();
        stack.extend(c.into_iter().map(|c| (c, depth + 1)));
    }
}

fn report(cfg: &Config, t: &Timeline) {
    let rel = |x: Option<f64>| match x {
        Some(at) => format!("{:>6.1} s  (+{:.1} s after the fault)", at, at - t.fault_at),
        None => "   never".to_owned(),
    };
    println!(
        "\n== timeline (1 s here ≈ 1 min of the real incident; alert windows {}s, for {}s) ==",
        cfg.window.as_secs(),
        cfg.for_.as_secs()
    );
    println!("  fault injected (bank → 504)        {:>6.1} s", t.fault_at);
    println!(
        "  first synthetic checkout failure   {}",
        rel(t.first_synthetic_failure)
    );
    println!(
        "  ExternalGatewayErrors fires        {}{}",
        rel(t.gateway_alert),
        if t.alerts_from_prometheus {
            "  [Prometheus]"
        } else {
            "  [in process]"
        }
    );
    println!(
        "  HighErrorRate fires                {}{}",
        rel(t.error_ratio_alert),
        if t.alerts_from_prometheus {
            "  [Prometheus]"
        } else {
            "  [in process]"
        }
    );
    let pct = |n: u64| {
        if t.requests == 0 {
            0.0
        } else {
            n as f64 * 100.0 / t.requests as f64
        }
    };
    println!(
        "\n== error rate over the whole run ({} requests) ==",
        t.requests
    );
    println!(
        "  status-code-only (5xx)             {:>5.1} %  ← what the green dashboard showed",
        pct(t.status_code_errors)
    );
    println!(
        "  observe (5xx + implicit + masked)  {:>5.1} %",
        pct(t.observe_errors)
    );
    println!(
        "  masked failures (200 + failed gateway call): {}",
        t.masked_failures
    );
    println!(
        "  peak gateway failure ratio: {:.0} %",
        t.gateway_failure_ratio_peak * 100.0
    );
    match &t.traced_order {
        Some(o) => waterfall(o),
        None => println!("\nno affected order found"),
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // A service of the --stack mode: this program started again by it.
    if args.iter().any(|a| a == "--serve") {
        return services::serve(&args);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("no tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = if args.iter().any(|a| a == "--stack") {
        runtime.block_on(stack_demo::run())
    } else {
        runtime.block_on(embedded())
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("incident: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The embedded run: one process, no external program.
async fn embedded() -> Result<(), scenario::BoxError> {
    let mut cfg = Config::demo();
    let mut prometheus_arg = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--short" => cfg = Config::short(),
            "--prometheus" => prometheus_arg = args.next().map(PathBuf::from),
            "--no-prometheus" => prometheus_arg = Some(PathBuf::from("/nonexistent")),
            other => {
                return Err(format!(
                    "unknown argument {other}: use --short, --prometheus PATH, or --stack"
                )
                .into())
            }
        }
    }
    let prometheus = find_prometheus(prometheus_arg).filter(|p| p.is_file());

    std::fs::create_dir_all("target")?;
    let sink = Arc::new(DemoSink {
        file: Mutex::new(std::io::BufWriter::new(std::fs::File::create(
            "target/incident-logs.jsonl",
        )?)),
        second: AtomicU64::new(0),
        in_second: AtomicU64::new(0),
        start: Instant::now(),
    });
    let snapshot = observe::metrics::SnapshotReader::new();
    let prom = observe::export::prometheus::PrometheusExporter::new();
    // Spans go where any run of a service with no OTLP endpoint sends them:
    // OTLP-JSON files (the Collector's file-exporter format), read back below.
    let export_dir = std::env::current_dir()?.join("target/incident-data");
    let _ = std::fs::remove_dir_all(&export_dir);
    let guard = observe::Telemetry::builder("payment-service")
        .service_version(env!("CARGO_PKG_VERSION"))
        .environment("demo")
        .pseudonym_key("incident-demo-pseudonym-key")
        .log_output(observe::LogOutput::Sink(sink))
        .metric_reader(snapshot.clone())
        .prometheus(&prom)
        .export_dir(&export_dir)
        .init()?;
    let guard = Arc::new(guard);

    println!(
        "▶ observe incident replay: {} s, fault at {} s",
        cfg.duration.as_secs(),
        cfg.fault_after.as_secs()
    );
    let flusher = Arc::clone(&guard);
    let handles = Handles {
        snapshot,
        metrics_router: Some(axum::Router::new().route_service("/metrics", prom.service())),
        spans: Arc::new(move |trace_id| scenario::spans_from_files(&export_dir, trace_id)),
        flush: Arc::new(move || {
            if let Err(e) = flusher.flush(Duration::from_secs(5)) {
                eprintln!("flush: {e}");
            }
        }),
        prometheus,
        progress: Arc::new(|at, msg| println!("▶ {at:>6.1} s  {msg}")),
    };
    let timeline = scenario::run(&cfg, handles).await?;
    report(&cfg, &timeline);
    if let Ok(guard) = Arc::try_unwrap(guard) {
        guard.shutdown(Duration::from_secs(5))?;
    }
    Ok(())
}
