//! Another language on both sides: a Python client (the OpenTelemetry SDK
//! from PyPI, W3C propagator) calls a Rust service (axum + `ObserveLayer`,
//! configured only by `OTEL_*` variables), which calls a Python service
//! through `GatewayLayer`. Every side exports its spans over OTLP/HTTP to
//! the test's receiver; the test checks one trace id across the three
//! processes and each parent link:
//!
//! ```text
//! py-client CLIENT ─▶ rust SERVER "GET /checkout" ─▶ rust CLIENT "GET" ─▶ py-inventory SERVER
//! ```
//!
//! Python comes from the venv `scripts/python-venv` builds (`support::py`):
//! without it the test prints a notice and passes, unless `CI=true`: then
//! it fails.
//! (Its own test binary: it installs observe globally, as a service does.)

mod support;

use axum::body::Bytes;
use axum::routing::get;
use axum::Router;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use observe::testing::TelemetryBuilderExt as _;
use observe::tower::{GatewayLayer, ObserveLayer};
use std::process::Command;
use std::time::Duration;
use support::py::{python, script, PyServer};
use support::{env, Receiver};
use tower::{Service, ServiceBuilder, ServiceExt};

type Gateway = observe::tower::Gateway<
    Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
>;

async fn checkout(mut inventory: Gateway, url: String) -> (http::StatusCode, String) {
    let req = http::Request::get(url.as_str())
        .body(Empty::<Bytes>::new())
        .expect("request");
    let res = match inventory.ready().await {
        Ok(svc) => svc.call(req).await,
        Err(e) => Err(e),
    };
    match res {
        Ok(res) => {
            let status = res.status();
            let body = res
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            (status, body)
        }
        Err(e) => (http::StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

#[test]
fn one_trace_across_python_rust_and_python() {
    let Some(python) = python(
        "interop_python",
        "opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http",
    ) else {
        return;
    };
    let rx = Receiver::start();
    let otlp = rx.http_endpoint();

    // The Rust service: observe from OTEL_* variables only, installed globally.
    let guard = observe::Telemetry::builder("rust-checkout")
        .env_source(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ]))
        .log_output(observe::LogOutput::Sink(std::sync::Arc::new(
            observe::MemorySink::new(),
        )))
        .init()
        .expect("init");

    let inventory = PyServer::start(&python, "server.py", &[&otlp]);
    let inventory_url = format!("http://127.0.0.1:{}/inventory", inventory.port);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (addr, server) = rt.block_on(async {
        let client: Gateway = ServiceBuilder::new()
            .layer(GatewayLayer::new("inventory"))
            .service(Client::builder(TokioExecutor::new()).build_http());
        let app = Router::new()
            .route(
                "/checkout",
                get(move || checkout(client.clone(), inventory_url.clone())),
            )
            .layer(ObserveLayer::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, server)
    });

    // The Python client calls the Rust service.
    let out = Command::new(&python)
        .arg(script("client.py"))
        .arg(&otlp)
        .arg(format!("http://{addr}/checkout"))
        .output()
        .expect("run client.py");
    assert!(
        out.status.success(),
        "client.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("client.py prints JSON");
    assert_eq!(client["status"], 200, "{client}");
    let answer: serde_json::Value =
        serde_json::from_str(client["body"].as_str().expect("body")).expect("inventory JSON");
    assert_eq!(answer["in_stock"], 3);

    server.abort();
    drop(rt);
    guard
        .shutdown(Duration::from_secs(10))
        .expect("clean shutdown");
    drop(inventory);

    // Four spans, three services, one trace.
    assert!(
        rx.wait_until(Duration::from_secs(10), |r| r.spans().len() >= 4),
        "{:#?}",
        rx.spans()
    );
    let spans = rx.spans();
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let find = |service: &str, kind: i32| {
        spans
            .iter()
            .find(|s| s.service == service && s.kind == kind)
            .unwrap_or_else(|| panic!("no {service} span of kind {kind}: {spans:#?}"))
    };
    let py_client = find("py-client", 3);
    let rust_server = find("rust-checkout", 2);
    let rust_client = find("rust-checkout", 3);
    let py_server = find("py-inventory", 2);

    let trace_id = client["trace_id"].as_str().expect("trace id");
    for s in [py_client, rust_server, rust_client, py_server] {
        assert_eq!(s.trace_id, trace_id, "{} {}", s.service, s.name);
    }
    assert_eq!(
        py_client.span_id,
        client["span_id"].as_str().expect("span id")
    );
    assert_eq!(
        py_client.parent_span_id, "",
        "the Python client starts the trace"
    );
    assert_eq!(rust_server.parent_span_id, py_client.span_id);
    assert_eq!(rust_client.parent_span_id, rust_server.span_id);
    assert_eq!(py_server.parent_span_id, rust_client.span_id);
    assert_eq!(answer["span_id"], py_server.span_id.as_str());
    assert_eq!(rust_server.name, "GET /checkout");
    assert_eq!(rust_client.name, "GET");
}
