//! Per-call overhead of the gRPC server layer on a tonic-generated service
//! (`shop.v1.Payments/Charge`, unary) driven in process (`tower::ServiceExt`:
//! a length-prefixed protobuf request in, the response body and its
//! trailers read to the end), for observe and its peers in the same run:
//!
//! | case | what it does |
//! |---|---|
//! | `bare` | the generated server alone; the handler's log line goes nowhere |
//! | `tonic_tracing_opentelemetry` | `OtelGrpcLayer` (davidB's tonic-tracing-opentelemetry): a server span with the extracted parent through tracing-opentelemetry into a discarding processor, JSON log lines (tracing-subscriber); no metrics |
//! | `observe` | `GrpcLayer`: server span with extracted parent, `grpc-status` from the trailers, `rpc.server.call.duration` and active calls, one JSON line with trace ids, spans into a discarding processor |
//!
//! Every call carries a `traceparent`; every handler writes one log line.
//! Run: `cargo bench -p observe-bench --bench grpc_layer`. Figures: docs/performance.md.

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt, Full};
use observe::testing::TelemetryBuilderExt as _;
use observe::tracing;
use observe_test_grpc::shop::v1::payments_server::{Payments, PaymentsServer};
use observe_test_grpc::shop::v1::{ChargeReply, ChargeRequest, ListChargesRequest};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanProcessor};
use prost::Message as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower::{Service, ServiceExt};

mod common;

/// Receives ended spans and drops them, counting (nothing is dropped silently).
#[derive(Debug, Default, Clone)]
struct Discard(Arc<AtomicU64>);

impl SpanProcessor for Discard {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
    fn on_end(&self, span: SpanData) {
        std::hint::black_box(span);
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

struct Shop;

#[tonic::async_trait]
impl Payments for Shop {
    async fn charge(
        &self,
        req: tonic::Request<ChargeRequest>,
    ) -> Result<tonic::Response<ChargeReply>, tonic::Status> {
        let r = req.into_inner();
        tracing::info!(
            event = "payment_accepted",
            amount_cents = r.amount_cents,
            "payment accepted"
        );
        Ok(tonic::Response::new(ChargeReply {
            charge_id: String::new(),
            approved: true,
        }))
    }

    type ListChargesStream = tokio_stream::Empty<Result<ChargeReply, tonic::Status>>;

    async fn list_charges(
        &self,
        _: tonic::Request<ListChargesRequest>,
    ) -> Result<tonic::Response<Self::ListChargesStream>, tonic::Status> {
        Ok(tonic::Response::new(tokio_stream::empty()))
    }
}

/// The framed request message (built once: only the layers are measured).
fn message() -> Bytes {
    let body = ChargeRequest {
        order_id: "ord_42".into(),
        amount_cents: 1299,
    }
    .encode_to_vec();
    let mut b = BytesMut::with_capacity(5 + body.len());
    b.put_u8(0);
    b.put_u32(u32::try_from(body.len()).expect("small"));
    b.put_slice(&body);
    b.freeze()
}

fn request(body: &Bytes) -> http::Request<Full<Bytes>> {
    http::Request::post("/shop.v1.Payments/Charge")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(Full::new(body.clone()))
        .expect("request")
}

/// One call through `svc`, response body and trailers consumed.
async fn one<S, B>(svc: &mut S, body: &Bytes)
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let res = ServiceExt::<http::Request<Full<Bytes>>>::ready(svc)
        .await
        .expect("ready")
        .call(request(body))
        .await
        .expect("infallible");
    let collected = res.into_body().collect().await.expect("body");
    std::hint::black_box(collected.trailers().is_some());
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let body = message();
    let mut g = c.benchmark_group("grpc_layer");

    // The generated server alone.
    {
        let mut svc = PaymentsServer::new(Shop);
        g.bench_function("bare", |b| b.iter(|| rt.block_on(one(&mut svc, &body))));
    }

    // tonic-tracing-opentelemetry (davidB) with JSON logs.
    {
        let discard = Discard::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(discard.clone())
            .build();
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let d = common::peer_dispatch(&provider);
        let mut svc = tower::ServiceBuilder::new()
            .layer(tonic_tracing_opentelemetry::middleware::server::OtelGrpcLayer::default())
            .service(PaymentsServer::new(Shop));
        let mut calls = 0u64;
        tracing::dispatcher::with_default(&d, || {
            g.bench_function("tonic_tracing_opentelemetry", |b| {
                b.iter(|| {
                    calls += 1;
                    rt.block_on(one(&mut svc, &body))
                })
            });
        });
        // Report (not assert) what the peer's processor received.
        if calls > 0 {
            eprintln!(
                "tonic_tracing_opentelemetry: {} spans for {calls} calls",
                discard.0.load(Ordering::Relaxed)
            );
        }
    }

    // observe.
    {
        let discard = Discard::default();
        let t = observe::Telemetry::builder("payment-service")
            .env_source(|_| None)
            .log_output(observe::LogOutput::Sink(Arc::new(
                observe::SyncWriter::new(common::sink()),
            )))
            .span_processor(discard.clone())
            .build()
            .expect("telemetry");
        let methods = observe::tower::grpc::GrpcMethods::from_file_descriptor_set(
            observe_test_grpc::FILE_DESCRIPTOR_SET,
        )
        .expect("descriptor set");
        let mut svc = tower::ServiceBuilder::new()
            .layer(observe::tower::grpc::GrpcLayer::new(methods))
            .service(PaymentsServer::new(Shop));
        let before = discard.0.load(Ordering::Relaxed);
        let mut calls = 0u64;
        tracing::dispatcher::with_default(t.dispatch(), || {
            g.bench_function("observe", |b| {
                b.iter(|| {
                    calls += 1;
                    rt.block_on(one(&mut svc, &body))
                })
            });
        });
        // Every call's span reached the processor: none dropped silently.
        assert_eq!(discard.0.load(Ordering::Relaxed) - before, calls);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
