//! Telemetry under sustained load while the receiver fails, over real TCP.
//!
//! An axum service instrumented with observe serves a steady 2,000
//! requests/s (open loop: requests are sent on schedule whatever the answers
//! do) for `OBSERVE_LOAD_SECS` seconds per phase (default 30) while the OTLP
//! endpoint (a real receiver behind [`support::proxy`]) is up, refuses
//! connections, black-holes them (accepts, never answers), and recovers;
//! then the telemetry is shut down in the middle of more load.
//!
//! Asserted: no request fails; p50 and p99 latency of every failure phase
//! stay within 10% of the receiver-up phase, plus the scheduling noise of a
//! shared VM (0.2 ms on p50, 5 ms on p99; a request held up by the exporter
//! would wait its 500 ms timeout);
//! resident memory while the receiver fails stays under 64 MiB above the
//! receiver-up level; spans delivered + `observe.telemetry.dropped{signal=
//! "traces"}` = spans produced, exactly, and the same for log records;
//! export resumes after recovery; and every span and log record of a request
//! answered before the shutdown began reaches the receiver, with the request
//! duration histogram counting every such request. The figures are printed
//! (`-- --nocapture`) and kept in docs/reliability.md.

mod support;

use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use observe::testing::TelemetryBuilderExt as _;
use observe::{LogOutput, SyncWriter, Telemetry};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::load::{drive, orders_app, phase_secs, HttpClient, LineCounter, Sample, RATE};
use support::proxy::{Mode, Proxy};
use support::{env, RValue, Receiver};

fn dropped(rx: &Receiver, signal: &str) -> u64 {
    rx.metric_points("observe.telemetry.dropped")
        .into_iter()
        .filter(|p| p.attributes["signal"] == signal)
        .map(|p| match p.value {
            RValue::Number(n) => n as u64,
            RValue::Histogram { .. } => panic!("a counter"),
        })
        .sum()
}

fn request_count(rx: &Receiver) -> u64 {
    rx.metric_points("http.server.request.duration")
        .into_iter()
        .map(|p| match p.value {
            RValue::Histogram { count, .. } => count,
            RValue::Number(_) => panic!("a histogram"),
        })
        .sum()
}

/// Blocks this runtime thread while `f` runs (a proxy switch, a flush).
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

#[test]
fn refusing_black_holed_and_recovering_receiver_under_sustained_load() {
    let secs = phase_secs();
    let rx = Receiver::start();
    rx.set_lean();
    let metrics_rx = Receiver::start();
    let proxy = Proxy::start(rx.http_addr);
    let lines = LineCounter::default();
    let endpoint = proxy.endpoint();
    let guard = Telemetry::builder("load-test")
        .env_source(env(&[
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                &format!("{endpoint}/v1/traces"),
            ),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                &format!("{endpoint}/v1/logs"),
            ),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                &format!("{}/v1/metrics", metrics_rx.http_endpoint()),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            ("OTEL_BLRP_SCHEDULE_DELAY", "200"),
        ]))
        .log_output(LogOutput::Sink(Arc::new(SyncWriter::new(lines.clone()))))
        .init()
        .expect("telemetry");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let addr = orders_app().await;
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let per_phase = secs * RATE;

        // Warm-up (connections, allocator, caches), not measured.
        let warm_up = drive(&client, addr, 10 * per_phase, 2).await.samples.len() as u64;
        let up = drive(&client, addr, 0, secs).await;
        blocking(|| proxy.set_mode(Mode::Refuse));
        let refusing = drive(&client, addr, per_phase, secs).await;
        blocking(|| proxy.set_mode(Mode::Hole));
        let hole = drive(&client, addr, 2 * per_phase, secs).await;
        blocking(|| proxy.set_mode(Mode::Up));
        let delivered_before_recovery = rx.span_count();
        let recovered = drive(&client, addr, 3 * per_phase, secs).await;

        // Quiescent: everything produced so far is delivered or counted.
        blocking(|| {
            for _ in 0..2 {
                guard.flush(Duration::from_secs(10)).expect("flush");
            }
        });
        let produced = warm_up + 4 * per_phase;
        let spans = rx.spans();
        let received = spans.len() as u64;
        let distinct: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
        let delivered = distinct.len() as u64;
        let dropped_spans = dropped(&metrics_rx, "traces");
        let lines_written = lines.0.load(Ordering::Relaxed);
        let records = rx.log_records().len() as u64;
        let dropped_logs = dropped(&metrics_rx, "logs");
        let failing_rss = refusing.max_rss.max(hole.max_rss);
        eprintln!(
            "load: {RATE} req/s x {secs} s per phase; p50/p99 µs: up {}/{}, refusing {}/{}, \
             black-holed {}/{}, recovered {}/{}",
            up.p50,
            up.p99,
            refusing.p50,
            refusing.p99,
            hole.p50,
            hole.p99,
            recovered.p50,
            recovered.p99
        );
        eprintln!(
            "load: spans produced {produced}, received {received}, distinct {delivered}, \
             dropped {dropped_spans}; log lines {lines_written}, records received {records}, \
             dropped {dropped_logs}; rss up {} KiB, max while failing {} KiB",
            up.max_rss / 1024,
            failing_rss / 1024
        );

        assert_eq!(received, delivered, "no span delivered twice");
        assert!(
            delivered > delivered_before_recovery as u64,
            "export resumed after recovery"
        );
        assert!(dropped_spans > 0, "the failures dropped spans");
        assert_eq!(
            delivered + dropped_spans,
            produced,
            "every span delivered or counted"
        );
        assert_eq!(
            records + dropped_logs,
            lines_written,
            "every log record delivered or counted"
        );
        for (name, phase) in [
            ("refusing", &refusing),
            ("black-holed", &hole),
            ("recovered", &recovered),
        ] {
            // 10%, plus the scheduling noise of a shared 2-core VM: p99 of
            // identical receiver-up phases differs by up to ~4 ms between
            // runs (p50 by ~0.1 ms). A request that waited for the exporter
            // would wait its 500 ms timeout.
            let p99_bound = up.p99 + up.p99 / 10 + 5000;
            assert!(
                phase.p99 <= p99_bound,
                "{name}: p99 {} µs, receiver up {} µs (bound {p99_bound} µs)",
                phase.p99,
                up.p99
            );
            let p50_bound = up.p50 + up.p50 / 10 + 200;
            assert!(
                phase.p50 <= p50_bound,
                "{name}: p50 {} µs, receiver up {} µs (bound {p50_bound} µs)",
                phase.p50,
                up.p50
            );
        }
        assert!(
            failing_rss.saturating_sub(up.max_rss) < 64 << 20,
            "rss grew {} KiB while the receiver failed",
            failing_rss.saturating_sub(up.max_rss) / 1024
        );

        // Shutdown in the middle of load: everything answered before it
        // began reaches the receiver.
        let during = {
            let client = client.clone();
            tokio::spawn(async move { drive(&client, addr, 4 * per_phase, 3).await })
        };
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let began = Instant::now();
        let shut = tokio::task::spawn_blocking(move || guard.shutdown(Duration::from_secs(10)));
        let during = during.await.expect("load during shutdown");
        shut.await.expect("shutdown task").expect("shutdown");
        let before: Vec<&Sample> = during.samples.iter().filter(|s| s.done < began).collect();
        let span_traces: HashSet<String> = rx.spans().into_iter().map(|s| s.trace_id).collect();
        let log_traces: HashSet<String> = rx
            .log_records()
            .into_iter()
            .filter(|l| l.event_name == "order_read")
            .map(|l| l.trace_id)
            .collect();
        let lost_spans = before
            .iter()
            .filter(|s| !span_traces.contains(&s.trace_id))
            .count();
        let lost_logs = before
            .iter()
            .filter(|s| !log_traces.contains(&s.trace_id))
            .count();
        let counted = request_count(&metrics_rx);
        eprintln!(
            "load: shutdown under load: {} requests answered before it began, {} during/after; \
             spans missing {lost_spans}, records missing {lost_logs}; duration count {counted}",
            before.len(),
            during.samples.len() - before.len()
        );
        assert!(!before.is_empty(), "load ran before the shutdown");
        assert_eq!(lost_spans, 0, "spans recorded before shutdown delivered");
        assert_eq!(lost_logs, 0, "log records before shutdown delivered");
        assert!(
            counted >= produced + before.len() as u64,
            "duration histogram counts every request answered before shutdown: {counted}"
        );
    });
}
