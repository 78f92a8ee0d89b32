//! Saturated requests/s over real TCP, measured by `wrk` (Debian's): the
//! handler of `http_layer` (one JSON log line per request) served by axum
//! on one tokio worker thread, as
//!
//! - `bare`: the router alone (the handler's line goes nowhere);
//! - `peer_stack_shipped`: axum-tracing-opentelemetry + axum-prometheus,
//!   JSON lines (tracing-subscriber), spans through tracing-opentelemetry
//!   into the SDK's `BatchSpanProcessor` (defaults) and a counting
//!   discarding exporter;
//! - `observe_shipped`: `ObserveLayer` with what `init` installs (its span
//!   pipeline into a counting discarding exporter, the Prometheus reader
//!   with exemplars, the non-blocking line writer into a counting sink);
//!   delivered + counted dropped = requests served is asserted.
//!
//! wrk runs 1 thread and 32 connections, every request carrying a
//! `traceparent`; after a 2 s warm-up each server gets `RUNS` runs (3) of
//! `SECS` seconds (10), taken in turn so that drift of the machine hits all
//! three alike. Everything shares the machine's cores.
//!
//! Run: `cargo bench -p observe-bench --bench tcp` (needs `wrk`: `apt-get
//! install wrk`; without it the bench says so and measures nothing).
//! Figures: docs/performance.md.

use axum::Router;
use observe::tracing;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use std::net::SocketAddr;
use std::process::Command;

mod common;

/// Serves `app` on 127.0.0.1 from a runtime of one worker thread whose
/// default subscriber is `dispatch`; returns its address and the runtime.
fn serve(app: Router, dispatch: tracing::Dispatch) -> (SocketAddr, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .on_thread_start(move || {
            // The thread's subscriber for its whole life.
            std::mem::forget(tracing::dispatcher::set_default(&dispatch));
        })
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, rt)
}

/// One wrk run against `addr` for `secs`: its requests/s.
fn wrk(addr: SocketAddr, secs: u64) -> f64 {
    let out = Command::new("wrk")
        .args(["-t1", "-c32", &format!("-d{secs}s")])
        .args([
            "-H",
            "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ])
        .arg(format!("http://{addr}/pay/42"))
        .output()
        .expect("wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("Non-2xx"),
        "wrk saw error responses:\n{text}"
    );
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"))
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    if !bench {
        // `cargo test --benches`: nothing to check without wrk's load.
        return;
    }
    if Command::new("wrk").arg("--version").output().is_err() {
        println!("wrk not found (apt-get install wrk): nothing measured");
        return;
    }
    let runs = env_u64("RUNS", 3);
    let secs = env_u64("SECS", 10);

    let bare = serve(common::router(), tracing::Dispatch::none());

    let delivered = common::Counting::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(delivered.clone()).build())
        .build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let peer = {
        // axum-prometheus's layer needs a runtime to build its recorder.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (prom_layer, handle) = {
            let _rt = rt.enter();
            axum_prometheus::PrometheusMetricLayer::pair()
        };
        let (dispatch, app) = common::peer_stack(&provider);
        (serve(app.layer(prom_layer), dispatch), handle)
    };

    let shipped = common::Shipped::new("payment-service");
    let observe = serve(
        common::router().layer(observe::tower::ObserveLayer::new()),
        shipped.dispatch.clone(),
    );

    let servers = [
        ("bare", bare.0),
        ("peer_stack_shipped", (peer.0).0),
        ("observe_shipped", observe.0),
    ];
    for (_, addr) in servers {
        wrk(addr, 2);
    }
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
    for _ in 0..runs {
        for (i, (_, addr)) in servers.iter().enumerate() {
            figures[i].push(wrk(*addr, secs));
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = median(&figures[0]);
    println!("server               runs (req/s)                     median    / bare");
    for ((name, _), f) in servers.iter().zip(&figures) {
        let runs: Vec<String> = f.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "{name:20} {:32} {:>8.0} {:>8.3}",
            runs.join(" "),
            median(f),
            median(f) / base
        );
    }

    // What observe's server produced: one server span per request it served.
    drop(observe.1);
    let _ = provider.shutdown();
    eprintln!(
        "peer_stack_shipped: {} spans delivered (the SDK counts no loss)",
        delivered.get()
    );
    let _ = peer;
    let _ = bare;
    let observe_served = shipped_requests(&shipped);
    shipped.check("observe_shipped", observe_served);
}

/// Requests observe's server answered: its `http.server.request.duration`
/// count, read from the Prometheus exposition of the shipped setup.
fn shipped_requests(shipped: &common::Shipped) -> u64 {
    let text = shipped.prometheus_text();
    text.lines()
        .filter(|l| l.starts_with("http_server_request_duration_seconds_count{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
