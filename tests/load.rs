//! Telemetry under load while the receiver fails: an instrumented axum
//! service keeps serving while the OTLP endpoint refuses, then black-holes
//! (accepts and never answers), then recovers. Every request succeeds,
//! latency stays close to the receiver-up run, resident memory stays
//! bounded, export resumes, and drops are counted (the figures are printed).
//! Bounded: a few thousand requests per phase, all on 127.0.0.1.

mod support;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use observe::{LogOutput, MemorySink, Telemetry};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{env, RValue, Receiver};
use tower::ServiceExt;

const REQUESTS: usize = 3000;

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// Serves `REQUESTS` requests; returns (p50, p99) latency in microseconds.
async fn phase(app: &Router) -> (u64, u64) {
    let mut lat = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        let t = Instant::now();
        let res = app
            .clone()
            .oneshot(
                Request::get(format!("/orders/{i}"))
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        assert_eq!(res.status(), 200, "no request fails");
        let _ = axum::body::to_bytes(res.into_body(), 1024).await;
        lat.push(t.elapsed().as_micros() as u64);
    }
    lat.sort_unstable();
    (lat[REQUESTS / 2], lat[REQUESTS * 99 / 100])
}

fn app() -> Router {
    Router::new()
        .route(
            "/orders/{id}",
            get(|| async {
                observe::info!("order_read");
                "ok"
            }),
        )
        .layer(observe::tower::ObserveLayer::new())
}

fn dropped(rx: &Receiver, signal: &str) -> f64 {
    rx.metric_points("observe.telemetry.dropped")
        .into_iter()
        .filter(|p| p.attributes["signal"] == signal)
        .map(|p| match p.value {
            RValue::Number(n) => n,
            RValue::Histogram { .. } => f64::NAN,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_black_holed_and_recovering() {
    let rx = Receiver::start();
    let metrics_rx = Receiver::start();
    // A black hole: accepts connections and never answers.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hole_addr = hole.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in hole.incoming().flatten() {
            held.push(conn);
            if held.len() > 64 {
                break;
            }
        }
        std::thread::sleep(Duration::from_secs(600));
    });

    let sink = MemorySink::new();
    let traces = rx.http_endpoint();
    let metrics = metrics_rx.http_endpoint();
    let t = Telemetry::builder("load-test")
        .env_source(env(&[
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                &format!("{traces}/v1/traces"),
            ),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                &format!("{metrics}/v1/metrics"),
            ),
            ("OTEL_LOGS_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
        ]))
        .log_output(LogOutput::Sink(Arc::new(sink.clone())))
        .build()
        .expect("telemetry");
    let (dispatch, guard) = t.into_parts();
    let app = app();
    let rss0 = rss_bytes();

    let (up, down) = observe::tracing::instrument::WithSubscriber::with_subscriber(
        async {
            let up = phase(&app).await;
            rx.set_down(true);
            let down = phase(&app).await;
            (up, down)
        },
        dispatch.clone(),
    )
    .await;
    // Recovery: the receiver answers again and export resumes.
    rx.set_down(false);
    let before = rx.spans().len();
    let recovered = observe::tracing::instrument::WithSubscriber::with_subscriber(
        phase(&app),
        dispatch.clone(),
    )
    .await;
    let _ = guard.flush(Duration::from_secs(10));
    assert!(
        rx.wait_until(Duration::from_secs(10), |r| r.spans().len() > before),
        "export resumed after recovery"
    );
    let rss1 = rss_bytes();
    guard.shutdown(Duration::from_secs(10)).expect("shutdown");

    // Black-holed endpoint, its own telemetry: requests are not slowed.
    let sink2 = MemorySink::new();
    let t2 = Telemetry::builder("load-test")
        .env_source(env(&[
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                &format!("http://{hole_addr}/v1/traces"),
            ),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                &format!("{metrics}/v1/metrics"),
            ),
            ("OTEL_LOGS_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
        ]))
        .log_output(LogOutput::Sink(Arc::new(sink2)))
        .build()
        .expect("telemetry");
    let (dispatch2, guard2) = t2.into_parts();
    let hole_run =
        observe::tracing::instrument::WithSubscriber::with_subscriber(phase(&app), dispatch2).await;
    let t0 = Instant::now();
    let _ = guard2.shutdown(Duration::from_secs(3));
    assert!(t0.elapsed() < Duration::from_secs(6), "shutdown bounded");

    // Accounting for the first telemetry: delivered + counted as dropped = produced.
    let produced = (3 * REQUESTS) as f64;
    let mut ids: Vec<String> = rx.spans().into_iter().map(|s| s.span_id).collect();
    let received = ids.len();
    ids.sort_unstable();
    ids.dedup();
    let delivered = ids.len() as f64;
    let counted = dropped(&metrics_rx, "traces");
    eprintln!(
        "p50/p99 µs: up {up:?}, refusing {down:?}, recovered {recovered:?}, black-holed {hole_run:?}; \
         received {received}, distinct {delivered}, dropped {counted}; rss {} -> {} KiB",
        rss0 / 1024,
        rss1 / 1024
    );
    // Exact accounting across a receiver flapping mid-batch is not there yet
    // (delivered + dropped differs from produced between runs; the figures
    // are printed above and discussed in docs/reliability.md), so only what
    // holds in every run is asserted here.
    assert!(delivered <= produced, "each span at most once");
    assert!(counted > 0.0, "the refused phase is counted as dropped");
    // Latency: the failing receiver does not slow requests (generous bound
    // for a shared 2-core machine; docs/reliability.md has the figures).
    for (name, (_, p99)) in [
        ("refusing", down),
        ("recovered", recovered),
        ("black-holed", hole_run),
    ] {
        assert!(p99 <= up.1 * 3 + 500, "{name}: p99 {p99} µs vs {} µs", up.1);
    }
    assert!(
        rss1.saturating_sub(rss0) < 64 << 20,
        "rss grew {} KiB",
        (rss1 - rss0) / 1024
    );
}
