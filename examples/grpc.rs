//! gRPC under observe: a tonic payment service (`shop.v1.Payments`) behind
//! `GrpcLayer`, which charges through a bank service (`shop.v1.Bank`, a
//! gateway) over a channel wrapped in `GrpcClientLayer::gateway("bank")`.
//! The bank is down for the second charge; the handler swallows the error
//! and answers OK, which observe counts as `error.type = masked_failure`.
//! A server-streaming call ends with its stream.
//!
//! Everything runs on 127.0.0.1; the JSON log lines go to stdout, and the
//! gRPC series are printed at the end as Prometheus scrapes them
//! (`rpc_server_call_duration_seconds`, `rpc_client_call_duration_seconds`,
//! `external_gateway_requests_total`, `observe_masked_failures_total`, ...).
//!
//! Run it with `cargo run --features grpc --example grpc`.

use observe::export::prometheus::PrometheusExporter;
use observe::tower::grpc::{GrpcClient, GrpcClientLayer, GrpcLayer, GrpcMethods};
use observe_test_grpc::shop::v1::bank_client::BankClient;
use observe_test_grpc::shop::v1::bank_server::{Bank, BankServer};
use observe_test_grpc::shop::v1::payments_client::PaymentsClient;
use observe_test_grpc::shop::v1::payments_server::{Payments, PaymentsServer};
use observe_test_grpc::shop::v1::{
    AuthorizeReply, AuthorizeRequest, ChargeReply, ChargeRequest, ListChargesRequest,
};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio_stream::Stream;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};

/// A bank that is down for every second call.
#[derive(Default)]
struct FlakyBank(AtomicU32);

#[tonic::async_trait]
impl Bank for FlakyBank {
    async fn authorize(
        &self,
        _: Request<AuthorizeRequest>,
    ) -> Result<Response<AuthorizeReply>, Status> {
        if self.0.fetch_add(1, Ordering::Relaxed) % 2 == 1 {
            return Err(Status::unavailable("bank down"));
        }
        Ok(Response::new(AuthorizeReply {
            approved: true,
            ..AuthorizeReply::default()
        }))
    }
}

struct Shop {
    bank: BankClient<GrpcClient<Channel>>,
}

type Charges = Pin<Box<dyn Stream<Item = Result<ChargeReply, Status>> + Send>>;

#[tonic::async_trait]
impl Payments for Shop {
    async fn charge(&self, req: Request<ChargeRequest>) -> Result<Response<ChargeReply>, Status> {
        let r = req.into_inner();
        let authorized = self
            .bank
            .clone()
            .authorize(AuthorizeRequest {
                order_id: r.order_id.clone(),
                amount_cents: r.amount_cents,
            })
            .await;
        // The bug of the article: the failure is logged and swallowed.
        let approved = match authorized {
            Ok(reply) => reply.into_inner().approved,
            Err(status) => {
                observe::warn!("bank_failed_charging_anyway", code = ?status.code());
                true
            }
        };
        observe::info!("charge_done", order_id = %r.order_id, approved = approved);
        Ok(Response::new(ChargeReply {
            charge_id: format!("ch_{}", r.order_id),
            approved,
        }))
    }

    type ListChargesStream = Charges;

    async fn list_charges(
        &self,
        req: Request<ListChargesRequest>,
    ) -> Result<Response<Charges>, Status> {
        let count = req.into_inner().count;
        let stream = tokio_stream::iter((0..count).map(|n| {
            Ok(ChargeReply {
                charge_id: format!("ch_{n}"),
                approved: true,
            })
        }));
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Serves `service` under `GrpcLayer` on an ephemeral 127.0.0.1 port.
async fn serve<S>(service: S, methods: GrpcMethods) -> std::io::Result<SocketAddr>
where
    S: tonic::server::NamedService
        + tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = Server::builder()
        .layer(GrpcLayer::new(methods))
        .add_service(service)
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);
    Ok(addr)
}

/// A channel to `addr`, observed by `layer` (its target names `server.address`).
fn channel(addr: SocketAddr, layer: GrpcClientLayer) -> Result<GrpcClient<Channel>, http::Error> {
    let target: http::Uri = format!("http://{addr}").parse()?;
    let channel = Channel::builder(target.clone()).connect_lazy();
    Ok(tower::ServiceBuilder::new()
        .layer(layer.target(&target))
        .service(channel))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prometheus = PrometheusExporter::new();
    let guard = observe::Telemetry::builder("payment-service")
        .prometheus(&prometheus)
        .init()?;
    // The methods come from the service definitions, never from requests.
    let methods = GrpcMethods::from_file_descriptor_set(observe_test_grpc::FILE_DESCRIPTOR_SET)?;

    let bank_addr = serve(BankServer::new(FlakyBank::default()), methods.clone()).await?;
    let bank = BankClient::new(channel(bank_addr, GrpcClientLayer::gateway("bank"))?);
    let shop_addr = serve(PaymentsServer::new(Shop { bank }), methods).await?;

    let mut client = PaymentsClient::new(channel(shop_addr, GrpcClientLayer::new())?);
    for order_id in ["ord_1", "ord_2"] {
        let req = ChargeRequest {
            order_id: order_id.to_owned(),
            amount_cents: 1299,
        };
        let reply = client.charge(req).await?.into_inner();
        observe::info!("client_got_reply", charge_id = %reply.charge_id);
    }
    let req = ListChargesRequest {
        order_id: "ord_1".to_owned(),
        count: 3,
    };
    let mut stream = client.list_charges(req).await?.into_inner();
    let mut received = 0;
    while stream.message().await?.is_some() {
        received += 1;
    }
    observe::info!("client_stream_done", messages = received);

    // The gRPC series, as a Prometheus scrape shows them.
    let text = prometheus.render_text();
    for line in text.lines().filter(|l| {
        !l.starts_with('#')
            && (l.starts_with("rpc_")
                || l.starts_with("observe_rpc")
                || l.starts_with("observe_masked")
                || l.starts_with("external_gateway_requests"))
            && !l.contains("_bucket")
    }) {
        eprintln!("{line}");
    }
    guard.shutdown(std::time::Duration::from_secs(2))?;
    Ok(())
}
