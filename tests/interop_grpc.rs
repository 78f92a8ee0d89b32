//! gRPC across languages: a Python client (the OpenTelemetry SDK and
//! `opentelemetry-instrumentation-grpc` from PyPI) calls a tonic service
//! under observe (`GrpcLayer`, configured only by `OTEL_*` variables), which
//! calls a Python gRPC bank (instrumented the same way) through
//! `GrpcClientLayer::gateway`. Every side exports its spans over OTLP/HTTP
//! to the test's receiver; the test checks one trace across the three
//! processes and each parent link:
//!
//! ```text
//! py-client "checkout" ─▶ py-client CLIENT ─▶ rust SERVER shop.v1.Payments/Charge
//!     ─▶ rust CLIENT shop.v1.Bank/Authorize ─▶ py-bank SERVER
//! ```
//!
//! The Python stubs are generated at test time from
//! `observe-test-grpc/proto/shop.proto` (grpcio-tools); Python comes from
//! the venv of `scripts/python-venv` (`support::py`): without it the test
//! prints a notice and passes, unless `CI=true`: then it fails.
//! (Its own test binary: it installs observe globally, as a service does.)

mod support;

use observe::testing::TelemetryBuilderExt as _;
use observe::tower::grpc::{GrpcClient, GrpcClientLayer, GrpcLayer, GrpcMethods};
use observe_test_grpc::shop::v1::bank_client::BankClient;
use observe_test_grpc::shop::v1::payments_server::{Payments, PaymentsServer};
use observe_test_grpc::shop::v1::{
    AuthorizeRequest, ChargeReply, ChargeRequest, ListChargesRequest,
};
use std::process::Command;
use std::time::Duration;
use support::py::{python, script, PyServer};
use support::{env, Receiver};
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};

/// The Rust payment service: charges through the Python bank.
struct Payment {
    bank: BankClient<GrpcClient<Channel>>,
}

#[tonic::async_trait]
impl Payments for Payment {
    async fn charge(&self, req: Request<ChargeRequest>) -> Result<Response<ChargeReply>, Status> {
        let r = req.into_inner();
        let reply = self
            .bank
            .clone()
            .authorize(AuthorizeRequest {
                order_id: r.order_id,
                amount_cents: r.amount_cents,
            })
            .await?
            .into_inner();
        Ok(Response::new(ChargeReply {
            // The bank's server span, for the test to compare.
            charge_id: format!("ch_{}", reply.span_id),
            approved: reply.approved,
        }))
    }

    type ListChargesStream = tokio_stream::Empty<Result<ChargeReply, Status>>;

    async fn list_charges(
        &self,
        _: Request<ListChargesRequest>,
    ) -> Result<Response<Self::ListChargesStream>, Status> {
        Ok(Response::new(tokio_stream::empty()))
    }
}

#[test]
fn one_trace_across_python_rust_and_python_over_grpc() {
    let Some(python) = python(
        "interop_grpc",
        "opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http, grpc, grpc_tools, opentelemetry.instrumentation.grpc",
    ) else {
        return;
    };
    let rx = Receiver::start();
    let otlp = rx.http_endpoint();
    let proto_dir = observe_test_grpc::PROTO_DIR;

    // The Rust service: observe from OTEL_* variables only, installed globally.
    let guard = observe::Telemetry::builder("rust-payments")
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

    let bank = PyServer::start(&python, "grpc_bank.py", &[&otlp, proto_dir]);
    let bank_target: http::Uri = format!("http://127.0.0.1:{}", bank.port)
        .parse()
        .expect("uri");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (addr, server) = rt.block_on(async {
        let channel = Channel::builder(bank_target.clone()).connect_lazy();
        let bank = BankClient::new(
            tower::ServiceBuilder::new()
                .layer(GrpcClientLayer::gateway("bank").target(&bank_target))
                .service(channel),
        );
        let methods = GrpcMethods::from_file_descriptor_set(observe_test_grpc::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(
            Server::builder()
                .layer(GrpcLayer::new(methods))
                .add_service(PaymentsServer::new(Payment { bank }))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        (addr, server)
    });

    // The Python client calls the Rust service.
    let out = Command::new(&python)
        .arg(script("grpc_client.py"))
        .arg(&otlp)
        .arg(proto_dir)
        .arg(addr.to_string())
        .output()
        .expect("run grpc_client.py");
    assert!(
        out.status.success(),
        "grpc_client.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("grpc_client.py prints JSON");
    assert_eq!(client["approved"], true, "{client}");

    server.abort();
    drop(rt);
    guard
        .shutdown(Duration::from_secs(10))
        .expect("clean shutdown");
    drop(bank);

    // Five spans, three processes, one trace.
    assert!(
        rx.wait_until(Duration::from_secs(10), |r| r.spans().len() >= 5),
        "{:#?}",
        rx.spans()
    );
    let spans = rx.spans();
    assert_eq!(spans.len(), 5, "{spans:#?}");
    let find = |service: &str, kind: i32| {
        spans
            .iter()
            .find(|s| s.service == service && s.kind == kind)
            .unwrap_or_else(|| panic!("no {service} span of kind {kind}: {spans:#?}"))
    };
    let checkout = find("py-client", 1);
    let py_client = find("py-client", 3);
    let rust_server = find("rust-payments", 2);
    let rust_client = find("rust-payments", 3);
    let py_bank = find("py-bank", 2);

    let trace_id = client["trace_id"].as_str().expect("trace id");
    for s in [checkout, py_client, rust_server, rust_client, py_bank] {
        assert_eq!(s.trace_id, trace_id, "{} {}", s.service, s.name);
    }
    assert_eq!(
        checkout.span_id,
        client["span_id"].as_str().expect("span id")
    );
    assert_eq!(
        checkout.parent_span_id, "",
        "the Python client starts the trace"
    );
    assert_eq!(py_client.parent_span_id, checkout.span_id);
    assert_eq!(rust_server.parent_span_id, py_client.span_id);
    assert_eq!(rust_client.parent_span_id, rust_server.span_id);
    assert_eq!(py_bank.parent_span_id, rust_client.span_id);
    assert_eq!(
        client["charge_id"].as_str(),
        Some(format!("ch_{}", py_bank.span_id).as_str()),
        "the bank answered from its server span"
    );
    // observe's spans, named and attributed by the semantic conventions.
    assert_eq!(rust_server.name, "shop.v1.Payments/Charge");
    assert_eq!(rust_client.name, "shop.v1.Bank/Authorize");
    let attr = |s: &support::RSpan, k: &str| s.attributes.get(k).cloned().unwrap_or_default();
    assert_eq!(attr(rust_server, "rpc.system.name"), "grpc");
    assert_eq!(attr(rust_server, "rpc.method"), "shop.v1.Payments/Charge");
    assert_eq!(attr(rust_server, "rpc.response.status_code"), "OK");
    assert_eq!(attr(rust_client, "rpc.method"), "shop.v1.Bank/Authorize");
    assert_eq!(attr(rust_client, "rpc.response.status_code"), "OK");
    assert_eq!(attr(rust_client, "gateway"), "bank");
    assert_eq!(attr(rust_client, "server.address"), "127.0.0.1");
    // The Python instrumentation names its spans after the full method path.
    assert!(
        py_client.name.ends_with("shop.v1.Payments/Charge"),
        "{py_client:?}"
    );
    assert!(
        py_bank.name.ends_with("shop.v1.Bank/Authorize"),
        "{py_bank:?}"
    );
}
