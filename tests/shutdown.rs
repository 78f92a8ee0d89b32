//! Shutdown: dropping the guard (or `shutdown(deadline)`) delivers every
//! span, log record and metric point recorded before it while the receiver is
//! up, and counts what it cannot deliver when the receiver is down, without
//! waiting past the deadline.

mod support;

use observe::opentelemetry::metrics::MeterProvider as _;
use observe::testing::TelemetryBuilderExt as _;
use observe::{LogOutput, MemorySink, Telemetry, TelemetryGuard};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{env, RPoint, RValue, Receiver};

/// Fewer than the default queue size (2048), more than one batch (512).
const N: usize = 1500;

fn start(vars: &[(&str, &str)], sink: &MemorySink) -> (observe::tracing::Dispatch, TelemetryGuard) {
    Telemetry::builder("shutdown-test")
        .env_source(env(vars))
        .log_output(LogOutput::Sink(Arc::new(sink.clone())))
        .build()
        .expect("valid configuration")
        .into_parts()
}

/// N spans, each with one event (one log record), and N counter increments.
fn produce(dispatch: &observe::tracing::Dispatch, guard: &TelemetryGuard) {
    let counter = guard
        .meter_provider()
        .expect("metrics on")
        .meter("shutdown-test")
        .u64_counter("items.processed")
        .build();
    observe::tracing::dispatcher::with_default(dispatch, || {
        for i in 0..N {
            let _s = observe::tracing::info_span!("process_item", item = i).entered();
            observe::info!("item_processed", item = i);
            counter.add(1, &[]);
        }
    });
}

fn assert_everything_arrived(rx: &Receiver) {
    let spans = rx.spans();
    assert_eq!(spans.len(), N, "spans");
    let mut ids: Vec<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), N, "each span exactly once");
    let records = rx
        .log_records()
        .into_iter()
        .filter(|l| l.event_name == "item_processed")
        .count();
    assert_eq!(records, N, "log records");
    assert_eq!(
        rx.metric_points("items.processed"),
        vec![RPoint {
            attributes: Default::default(),
            value: RValue::Number(N as f64),
        }],
        "metric points"
    );
    let dropped: f64 = rx
        .metric_points("observe.telemetry.dropped")
        .iter()
        .map(|p| match p.value {
            RValue::Number(n) => n,
            RValue::Histogram { .. } => f64::NAN,
        })
        .sum();
    assert_eq!(dropped, 0.0);
}

#[test]
fn shutdown_delivers_everything_over_grpc() {
    let rx = Receiver::start();
    let endpoint = rx.grpc_endpoint();
    let sink = MemorySink::new();
    let (dispatch, guard) = start(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ],
        &sink,
    );
    produce(&dispatch, &guard);
    guard
        .shutdown(Duration::from_secs(20))
        .expect("clean shutdown");
    assert_everything_arrived(&rx);
    assert!(!sink.lines().iter().any(|l| l.contains("telemetry_dropped")));
}

#[test]
fn dropping_the_guard_delivers_everything_over_http() {
    let rx = Receiver::start();
    let endpoint = rx.http_endpoint();
    let sink = MemorySink::new();
    let (dispatch, guard) = start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)], &sink);
    produce(&dispatch, &guard);
    drop(guard);
    assert_everything_arrived(&rx);
}

#[test]
fn a_receiver_that_is_down_is_counted_and_said_not_waited_for() {
    // Spans go to a receiver that refuses everything; metrics to one that works.
    let down = Receiver::start();
    down.set_down(true);
    let up = Receiver::start();
    let traces = down.grpc_endpoint();
    let metrics = up.grpc_endpoint();
    let sink = MemorySink::new();
    let (dispatch, guard) = start(
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &traces),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", &metrics),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "300"),
            ("OTEL_LOGS_EXPORTER", "none"),
        ],
        &sink,
    );
    observe::tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..10 {
            let _s = observe::tracing::info_span!("doomed", item = i).entered();
        }
    });
    let t0 = Instant::now();
    // Flush: the export fails (after the exporter's own retries, within its
    // 300 ms budget) and the batch is counted.
    assert!(guard.flush(Duration::from_secs(10)).is_err());
    let result = guard.shutdown(Duration::from_secs(10));
    assert!(result.is_ok(), "{result:?}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(down.spans().len(), 0);
    let traces_dropped: Vec<(String, f64)> = up
        .metric_points("observe.telemetry.dropped")
        .into_iter()
        .filter(|p| p.attributes["signal"] == "traces")
        .map(|p| match p.value {
            RValue::Number(n) => (p.attributes["reason"].clone(), n),
            RValue::Histogram { .. } => (String::new(), f64::NAN),
        })
        .collect();
    assert_eq!(
        traces_dropped,
        vec![
            ("export_failed".to_owned(), 10.0),
            ("queue_full".to_owned(), 0.0),
            ("rejected".to_owned(), 0.0),
            ("shutdown_timeout".to_owned(), 0.0),
        ]
    );
    let said: Vec<serde_json::Value> = sink
        .lines()
        .iter()
        .filter(|l| l.contains("telemetry_dropped"))
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(said.len(), 1, "one line per signal per minute: {said:?}");
    assert_eq!(said[0]["level"], "WARN");
    assert_eq!(said[0]["signal"], "traces");
    assert_eq!(said[0]["export_failed"], 10);
}

#[test]
fn a_full_queue_drops_and_every_span_is_accounted_for() {
    let down = Receiver::start();
    down.set_down(true);
    let up = Receiver::start();
    let traces = down.grpc_endpoint();
    let metrics = up.grpc_endpoint();
    let sink = MemorySink::new();
    let (dispatch, guard) = start(
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &traces),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", &metrics),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "300"),
            ("OTEL_LOGS_EXPORTER", "none"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "8"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4"),
        ],
        &sink,
    );
    let t0 = Instant::now();
    observe::tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..200 {
            let _s = observe::tracing::info_span!("burst", item = i).entered();
        }
    });
    // Recording never waited for the stalled exporter.
    assert!(
        t0.elapsed() < Duration::from_millis(250),
        "{:?}",
        t0.elapsed()
    );
    let _ = guard.shutdown(Duration::from_secs(10));
    let mut by_reason = std::collections::BTreeMap::new();
    for p in up.metric_points("observe.telemetry.dropped") {
        if p.attributes["signal"] == "traces" {
            if let RValue::Number(n) = p.value {
                by_reason.insert(p.attributes["reason"].clone(), n as u64);
            }
        }
    }
    assert_eq!(by_reason.values().sum::<u64>(), 200, "{by_reason:?}");
    // At most 8 queued and 4 exports of 4 in flight were accepted.
    assert!(by_reason["queue_full"] >= 200 - 8 - 4 * 4, "{by_reason:?}");
}
