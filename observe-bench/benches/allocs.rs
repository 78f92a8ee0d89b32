//! Heap allocations per request, for the rows of `http_layer` that users
//! run: how many allocations and bytes the request thread makes, and how
//! many of its blocks are freed by another thread (the export worker). A
//! block freed by another thread costs glibc's malloc its arena lock on both
//! threads, which `perf` shows as futex wake-ups on the request path.
//!
//! It counts, it does not time: a global allocator counts per thread, and
//! each row sends the same requests as `http_layer` after a warm-up.
//! Run: `cargo bench -p observe-bench --bench allocs`. Figures:
//! docs/performance.md.

use axum::Router;
use observe::tracing;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use std::sync::Mutex;

mod common;

const WARM_UP: u64 = 20_000;
const REQUESTS: u64 = 100_000;

/// Per request, on the request thread: allocations, bytes, and blocks
/// allocated that this thread did not free (another thread freed them, or
/// they are still held).
struct Row {
    allocs: f64,
    bytes: f64,
    left: f64,
}

/// Sends [`REQUESTS`] requests through `app` under `dispatch` after a
/// warm-up, counting the request thread's allocations.
fn measure(rt: &tokio::runtime::Runtime, dispatch: &tracing::Dispatch, mut app: Router) -> Row {
    tracing::dispatcher::with_default(dispatch, || {
        for _ in 0..WARM_UP {
            rt.block_on(common::one(&mut app));
        }
        let info = allocation_counter::measure(|| {
            for _ in 0..REQUESTS {
                rt.block_on(common::one(&mut app));
            }
        });
        let n = REQUESTS as f64;
        Row {
            allocs: info.count_total as f64 / n,
            bytes: info.bytes_total as f64 / n,
            left: info.count_current as f64 / n,
        }
    })
}

fn print(name: &str, r: &Row) {
    println!(
        "allocs/{name:<20} {:>6.2} allocations {:>8.1} bytes {:>6.2} not freed by the request thread (per request)",
        r.allocs, r.bytes, r.left
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // gets no run.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let none = tracing::Dispatch::none();
    print("bare", &measure(&rt, &none, common::router()));

    let sub = tracing_subscriber::fmt()
        .json()
        .with_writer(Mutex::new(common::sink()))
        .finish();
    let d = tracing::Dispatch::new(sub);
    let app = common::router().layer(tower_http::trace::TraceLayer::new_for_http());
    print("tower_http_trace", &measure(&rt, &d, app));

    let (prom_layer, _prom_handle) = {
        let _rt = rt.enter();
        axum_prometheus::PrometheusMetricLayer::pair()
    };
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(common::Counting::default()).build())
        .build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let (d, app) = common::peer_stack(&provider);
    print(
        "peer_stack_shipped",
        &measure(&rt, &d, app.layer(prom_layer)),
    );

    let shipped = common::Shipped::new("payment-service");
    let app = common::router().layer(observe::tower::ObserveLayer::new());
    let row = measure(&rt, &shipped.dispatch, app);
    print("observe_shipped", &row);
    shipped.check("observe_shipped", WARM_UP + REQUESTS);
}
