//! Export through the real Collector (Jaeger v2 running
//! docs/collector/collector.yaml) while it restarts, refuses and goes away,
//! under the load of tests/load.rs: 2,000 requests/s over TCP, each one
//! server span (sent over OTLP/gRPC) and one log record (OTLP/HTTP).
//!
//! The Collector forwards both signals (memory_limiter ▶ batch ▶ otlp
//! exporter) to a receiver that outlives it (tests/support), where every
//! span and record is counted by id. Phases, in one run:
//!
//! 1. **up**: the baseline latency.
//! 2. **restart**: the Collector is stopped (SIGTERM: it drains what it
//!    holds) and started again on the same ports, healthy about 1.1 s
//!    after the stop began (asserted: within 2 s). Asserted: 0 spans and 0
//!    log records lost, 0 failed requests, p99 within tests/load.rs's
//!    bound (up × 1.1 + 5 ms).
//! 3. **refusal**: it is restarted with a `memory_limiter` limit below its
//!    own heap, so it refuses everything (gRPC `UNAVAILABLE`, HTTP 503),
//!    for 5 s, longer than the export timeout (4 s), then restarted with
//!    the normal limit. Asserted: observe retried with growing waits
//!    (printed), dropped the batches whose timeout passed and counted
//!    them exactly, and exported again afterwards.
//! 4. **gone**: stopped for good, load goes on, then observe shuts down.
//!    Asserted: delivered + counted = produced, exactly, and resident
//!    memory stays bounded.
//!
//! `OBSERVE_RESTART_SECS` sets the phase length (default 6 s). Needs
//! target/tools/bin/jaeger (`tools/build`): skipped without it, failed
//! with `CI=true`. Figures: docs/reliability.md.

mod support;

use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use observe::export::{ExportStats, Signal};
use observe::testing::TelemetryBuilderExt as _;
use observe::{LogOutput, SyncWriter, Telemetry};
use observe_stack::{Collector, CollectorOptions, Engine};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::load::{drive, orders_app, HttpClient, LineCounter, Phase, RATE};
use support::{env, rss_bytes, Receiver};

fn phase_secs() -> u64 {
    std::env::var("OBSERVE_RESTART_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6)
}

/// What the receiver has: distinct spans (by id), spans received (more:
/// some delivered twice), log records received, and distinct `order_read`
/// records (by trace id; one per request).
fn delivered(rx: &Receiver) -> (usize, usize, usize, usize) {
    let spans = rx.spans();
    let span_ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let logs = rx.log_records();
    let reads = logs.iter().filter(|l| l.event_name == "order_read");
    let read_traces: HashSet<&str> = reads.clone().map(|l| l.trace_id.as_str()).collect();
    assert_eq!(
        read_traces.len(),
        reads.count(),
        "no log record delivered twice"
    );
    (span_ids.len(), spans.len(), logs.len(), read_traces.len())
}

/// Items of `signal` that observe's `telemetry_dropped` lines say it
/// dropped (each line says what was dropped since the one before).
fn said_dropped(lines: &LineCounter, signal: &str) -> u64 {
    lines
        .dropped_lines()
        .iter()
        .filter(|(_, l)| l["signal"] == signal)
        .map(|(_, l)| {
            [
                "queue_full",
                "export_failed",
                "shutdown_timeout",
                "rejected",
            ]
            .iter()
            .map(|k| l[*k].as_u64().expect("a count"))
            .sum::<u64>()
        })
        .sum()
}

/// The Collector config's traces and logs pipelines, forwarding to `sink`
/// instead of the trace and log stores (tail sampling left out: every span
/// is counted).
fn forward_to(sink: &Receiver) -> Vec<String> {
    vec![
        format!("exporters::otlp/sink::endpoint: {}", sink.grpc_addr),
        "exporters::otlp/sink::tls::insecure: true".to_owned(),
        // The receiver takes uncompressed gRPC (the exporter's default is gzip).
        "exporters::otlp/sink::compression: none".to_owned(),
        "service::pipelines::traces::processors: [memory_limiter, batch]".to_owned(),
        "service::pipelines::traces::exporters: [otlp/sink]".to_owned(),
        "service::pipelines::logs::exporters: [otlp/sink]".to_owned(),
    ]
}

fn show(name: &str, p: &Phase) -> String {
    format!("{name} p50/p99 {}/{} µs", p.p50, p.p99)
}

fn waits(s: &ExportStats) -> String {
    let ms: Vec<String> = s
        .recent_retry_waits
        .iter()
        .map(|w| w.as_millis().to_string())
        .collect();
    format!(
        "{} retries, {} ms waited in all, latest waits (ms) [{}]",
        s.retries,
        s.retry_wait.as_millis(),
        ms.join(", ")
    )
}

#[test]
fn collector_restart_refusal_and_loss_under_sustained_load() {
    if let Err(e) = Engine::Jaeger.locate() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: the Collector is required: {e}"
        );
        eprintln!("SKIPPED: {e}");
        return;
    }
    let secs = phase_secs();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sink = Receiver::start();
    sink.set_lean();
    let mut options = CollectorOptions::new();
    for y in forward_to(&sink) {
        options = options.override_yaml(y);
    }
    let mut collector = rt.block_on(Collector::start(options)).expect("collector");
    let lines = LineCounter::default();
    let guard = Telemetry::builder("restart-test")
        .env_source(env(&[
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                &collector.otlp_grpc_url(),
            ),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                &format!("{}/v1/logs", collector.otlp_http_url()),
            ),
            ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/protobuf"),
            // Retries of a batch stop after 4 s: the ~1.1 s restart is
            // ridden out, the 5 s refusal is not (what it costs is counted).
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "4000"),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            ("OTEL_BLRP_SCHEDULE_DELAY", "200"),
            // 8 s of this load: an outage of a few seconds fits in the queue.
            ("OTEL_BSP_MAX_QUEUE_SIZE", "16384"),
            ("OTEL_BLRP_MAX_QUEUE_SIZE", "16384"),
        ]))
        .log_output(LogOutput::Sink(Arc::new(SyncWriter::new(lines.clone()))))
        .init()
        .expect("telemetry");

    rt.block_on(async move {
        let addr = orders_app().await;
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let per_phase = secs * RATE;
        let warm_up = drive(&client, addr, 10 * per_phase, 2).await.samples.len() as u64;
        let up = drive(&client, addr, 0, secs).await;

        // 2. Restart.
        let load = {
            let client = client.clone();
            tokio::spawn(async move { drive(&client, addr, per_phase, secs).await })
        };
        tokio::time::sleep(Duration::from_millis(1000)).await;
        // Down for 1 s before it starts again (it stops in ~30 ms and is
        // healthy ~100 ms after it starts): several exports meet it down.
        let t0 = Instant::now();
        collector.stop().await;
        let stopped = t0.elapsed();
        tokio::time::sleep(Duration::from_millis(1000).saturating_sub(stopped)).await;
        collector.start_again().await.expect("collector restarted");
        let gap = t0.elapsed();
        let restart = load.await.expect("load");
        tokio::task::block_in_place(|| guard.flush(Duration::from_secs(30))).expect("flush");
        let produced = warm_up + 2 * per_phase;
        let lines_so_far = lines.0.load(Ordering::Relaxed);
        let traces = guard.export_stats(Signal::Traces);
        let logs = guard.export_stats(Signal::Logs);
        let got = tokio::task::block_in_place(|| {
            wait_for(&sink, produced as usize, lines_so_far as usize)
        });
        eprintln!(
            "restart: stopped in {} ms, healthy again {} ms after the stop began; {}, {}; \
             spans produced {produced}, delivered {} ({} received); log records written \
             {lines_so_far}, received {} ({} requests' order_read); traces: {}; logs: {}",
            stopped.as_millis(),
            gap.as_millis(),
            show("up", &up),
            show("restart", &restart),
            got.0,
            got.1,
            got.2,
            got.3,
            waits(&traces),
            waits(&logs),
        );
        assert_eq!(traces.dropped(), 0, "spans lost: {traces:?}");
        assert_eq!(logs.dropped(), 0, "log records lost: {logs:?}");
        assert_eq!(got.0 as u64, produced, "every span delivered");
        assert_eq!(got.1, got.0, "no span delivered twice");
        assert_eq!(
            got.2 as u64, lines_so_far,
            "every log record delivered, once"
        );
        assert_eq!(got.3 as u64, produced, "every request's record delivered");
        assert!(traces.retries > 0, "the restart was ridden out by retries");
        assert!(logs.retries > 0, "the restart was ridden out by retries");
        assert!(
            gap < Duration::from_secs(2),
            "stopped and started within 2 s: {gap:?}"
        );
        let p99_bound = up.p99 + up.p99 / 10 + 5000;
        assert!(
            restart.p99 <= p99_bound,
            "restart p99 {} µs, up {} µs (bound {p99_bound} µs)",
            restart.p99,
            up.p99
        );

        // 3. Refusal: a memory limit below the Collector's own heap.
        let load = {
            let client = client.clone();
            tokio::spawn(async move { drive(&client, addr, 2 * per_phase, 2 * secs).await })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        collector.set_memory_limit_mib(2, 1);
        collector.stop().await;
        collector.start_again().await.expect("refusing collector");
        let refusing_since = Instant::now();
        tokio::time::sleep(Duration::from_secs(secs.min(5))).await;
        let during = guard.export_stats(Signal::Traces);
        collector.set_memory_limit_mib(1024, 256);
        collector.stop().await;
        collector.start_again().await.expect("collector back");
        let refused_for = refusing_since.elapsed();
        let before_resuming = sink.span_count();
        let refusal = load.await.expect("load");
        tokio::task::block_in_place(|| guard.flush(Duration::from_secs(30))).expect("flush");
        let produced = warm_up + 4 * per_phase;
        let lines_so_far = lines.0.load(Ordering::Relaxed);
        let traces_after = guard.export_stats(Signal::Traces);
        let logs_after = guard.export_stats(Signal::Logs);
        let expect_spans = produced - traces_after.dropped();
        let expect_logs = lines_so_far - logs_after.dropped();
        let got = tokio::task::block_in_place(|| {
            wait_for(&sink, expect_spans as usize, expect_logs as usize)
        });
        eprintln!(
            "refusal: memory_limiter refused for {} ms; {}; traces: {} (dropped {:?}); logs: {} \
             (dropped {:?}); spans produced {produced}, delivered {}; log records written \
             {lines_so_far}, delivered {}",
            refused_for.as_millis(),
            show("refusal", &refusal),
            waits(&traces_after),
            (
                traces_after.export_failed,
                traces_after.queue_full,
                traces_after.rejected
            ),
            waits(&logs_after),
            (
                logs_after.export_failed,
                logs_after.queue_full,
                logs_after.rejected
            ),
            got.0,
            got.2,
        );
        assert!(
            got.0 > before_resuming,
            "export resumed: {} spans delivered when the Collector came back, {} after",
            before_resuming,
            got.0
        );
        assert!(
            traces_after.export_failed > 0 && logs_after.export_failed > 0,
            "the refusal outlasted the export timeout: {traces_after:?} {logs_after:?}"
        );
        for (_, line) in lines.dropped_lines() {
            eprintln!("refusal: said {line}");
        }
        let refusal_retries = during.retries - traces.retries;
        assert!(
            refusal_retries >= 3,
            "observe backed off and retried: {during:?}"
        );
        let recent = &during.recent_retry_waits;
        assert!(
            recent.iter().any(|w| *w >= Duration::from_millis(400)),
            "the waits grew: {recent:?}"
        );
        assert_eq!(
            got.0 as u64 + traces_after.dropped(),
            produced,
            "spans: delivered + counted"
        );
        assert_eq!(
            got.2 as u64 + logs_after.dropped(),
            lines_so_far,
            "logs: delivered + counted"
        );
        let log = std::fs::read_to_string(collector.process().log_path()).unwrap_or_default();
        assert!(
            log.contains("data refused due to high memory usage")
                || log.contains("Memory usage is above soft limit"),
            "the Collector said it refused: {}",
            collector.process().log_tail(20)
        );

        // 4. Gone for good.
        let before_rss = rss_bytes();
        collector.stop().await;
        let gone = drive(&client, addr, 6 * per_phase, secs).await;
        let shutdown = tokio::task::spawn_blocking(move || guard.shutdown(Duration::from_secs(5)))
            .await
            .expect("shutdown task");
        let produced = warm_up + 5 * per_phase;
        let (spans, received, records, _) = delivered(&sink);
        let dropped_spans = said_dropped(&lines, "traces");
        let dropped_logs = said_dropped(&lines, "logs");
        // Records reach the log pipeline until its last report (at its
        // shutdown): the lines written before that one.
        let written = lines
            .dropped_lines()
            .iter()
            .rfind(|(_, l)| l["signal"] == "logs")
            .map(|(n, _)| *n)
            .expect("the log pipeline's last report");
        eprintln!(
            "gone: {}; shutdown: {shutdown:?}; spans produced {produced} = delivered {spans} + \
             dropped {dropped_spans}; log records written {written} = delivered {records} + \
             dropped {dropped_logs}; rss before {} KiB, max while gone {} KiB",
            show("gone", &gone),
            before_rss / 1024,
            gone.max_rss / 1024
        );
        assert!(shutdown.is_err(), "the receiver is gone: shutdown says so");
        assert_eq!(received, spans, "no span delivered twice");
        assert_eq!(
            spans as u64 + dropped_spans,
            produced,
            "every span delivered or counted"
        );
        assert_eq!(
            records as u64 + dropped_logs,
            written,
            "every record delivered or counted"
        );
        assert!(
            gone.max_rss.saturating_sub(before_rss) < 64 << 20,
            "rss grew {} KiB with the Collector gone",
            gone.max_rss.saturating_sub(before_rss) / 1024
        );
    });
}

/// Waits (at most 30 s) until the receiver has `spans` distinct spans and
/// `logs` distinct log records; returns what it has then.
fn wait_for(rx: &Receiver, spans: usize, logs: usize) -> (usize, usize, usize, usize) {
    let t0 = Instant::now();
    loop {
        let got = delivered(rx);
        if (got.0 >= spans && got.2 >= logs) || t0.elapsed() > Duration::from_secs(30) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
