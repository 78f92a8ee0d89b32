//! The gRPC layers end to end: a tonic server (`shop.v1.Payments`) under
//! `GrpcLayer` on a real 127.0.0.1 socket, called through tonic channels
//! (with and without `GrpcClientLayer`), or driven in process for hostile
//! metadata. Every span, attribute set and metric point is asserted exactly.
//!
//! | file | what |
//! |---|---|
//! | `server.rs` | unary and server-streaming calls, W3C context from metadata, every status code, a panicking handler, a client cancelling mid-stream |
//! | `client.rs` | the client layer: injection, client span, client and gateway metrics; masked failures (a gRPC gateway and `#[observed(gateway)]`) |
//! | `hostile.rs` | the W3C hostile cases through metadata; unknown methods as one `_OTHER` |

mod client;
mod hostile;
mod server;

use observe::opentelemetry_sdk::trace::SpanData;
use observe::testing::{Capture, Harness, MetricValue};
use observe::tower::grpc::{GrpcClient, GrpcClientLayer, GrpcLayer, GrpcMethods};
use observe_test_grpc::shop::v1::bank_client::BankClient;
use observe_test_grpc::shop::v1::payments_server::{Payments, PaymentsServer};
use observe_test_grpc::shop::v1::{ChargeReply, ChargeRequest, ListChargesRequest};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_stream::Stream;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status};

pub(crate) const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
pub(crate) const CHARGE: &str = "shop.v1.Payments/Charge";
pub(crate) const LIST: &str = "shop.v1.Payments/ListCharges";

/// The methods of `shop.proto`, from its descriptor set.
pub(crate) fn methods() -> GrpcMethods {
    GrpcMethods::from_file_descriptor_set(observe_test_grpc::FILE_DESCRIPTOR_SET)
        .expect("shop.proto's descriptor set")
}

/// Sends a signal when dropped (a stream the server dropped).
pub(crate) struct OnDrop(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// The payment service of the tests. What a call does is chosen by its
/// `order_id`:
///
/// | `order_id` | `Charge` | `ListCharges` |
/// |---|---|---|
/// | `code:N` | answers status `N` (0: a reply) | — |
/// | `panic` | panics | — |
/// | `swallow-grpc` | calls the bank (a gRPC gateway), ignores its failure, answers OK | — |
/// | `swallow-observed` | calls an `#[observed(gateway = "bank")]` function that fails, answers OK | — |
/// | `pending` | answers OK after `observe::mark_failed("payment_pending")` (an implicit failure) | — |
/// | `fail-at-end` | — | `count` messages, then `INTERNAL` in the trailers |
/// | `forever` | — | a message every 2 ms until the client goes away |
/// | anything else | a reply | `count` messages, then `OK` |
#[derive(Clone, Default)]
pub(crate) struct Shop {
    pub(crate) bank: Option<BankClient<GrpcClient<Channel>>>,
    /// For each finite stream (by `order_id`): from the handler's start to its last message.
    pub(crate) stream_times: Arc<Mutex<BTreeMap<String, Duration>>>,
    /// Signalled when a `forever` stream is dropped by the server.
    pub(crate) dropped: Arc<Mutex<Option<tokio::sync::oneshot::Sender<()>>>>,
}

#[observe::observed(gateway = "bank")]
async fn authorize_with_observed() -> Result<(), std::io::Error> {
    Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
}

type ChargeStream = Pin<Box<dyn Stream<Item = Result<ChargeReply, Status>> + Send>>;

#[tonic::async_trait]
impl Payments for Shop {
    async fn charge(&self, req: Request<ChargeRequest>) -> Result<Response<ChargeReply>, Status> {
        let r = req.into_inner();
        let reply = ChargeReply {
            charge_id: format!("ch_{}", r.amount_cents),
            approved: true,
        };
        observe::info!("charge_received", amount_cents = r.amount_cents);
        match r.order_id.as_str() {
            "panic" => panic!("the handler panicked"),
            "swallow-grpc" => {
                let mut bank = self.bank.clone().expect("a bank client");
                let req = observe_test_grpc::shop::v1::AuthorizeRequest {
                    order_id: r.order_id.clone(),
                    amount_cents: r.amount_cents,
                };
                if bank.authorize(req).await.is_err() {
                    observe::warn!("bank_failed_charging_anyway");
                }
                Ok(Response::new(reply))
            }
            "swallow-observed" => {
                let _ = authorize_with_observed().await;
                Ok(Response::new(reply))
            }
            "pending" => {
                observe::mark_failed("payment_pending");
                Ok(Response::new(reply))
            }
            s => match s.strip_prefix("code:").and_then(|n| n.parse::<i32>().ok()) {
                Some(0) | None => Ok(Response::new(reply)),
                Some(n) => Err(Status::new(Code::from_i32(n), "as asked")),
            },
        }
    }

    type ListChargesStream = ChargeStream;

    async fn list_charges(
        &self,
        req: Request<ListChargesRequest>,
    ) -> Result<Response<ChargeStream>, Status> {
        let r = req.into_inner();
        let started = Instant::now();
        if r.order_id == "forever" {
            let signal = OnDrop(self.dropped.lock().expect("lock").take());
            let s = futures_util::stream::unfold((0u32, signal), |(n, signal)| async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                let reply = ChargeReply {
                    charge_id: format!("ch_{n}"),
                    approved: true,
                };
                Some((Ok(reply), (n + 1, signal)))
            });
            return Ok(Response::new(Box::pin(s)));
        }
        let count = r.count;
        let fail = r.order_id == "fail-at-end";
        let times = Arc::clone(&self.stream_times);
        let order_id = r.order_id;
        let s = futures_util::stream::unfold(0u32, move |n| {
            let times = Arc::clone(&times);
            let order_id = order_id.clone();
            async move {
                if n > count {
                    return None;
                }
                if n == count {
                    return fail.then(|| (Err(Status::internal("ledger lost")), n + 1));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                observe::info!("charge_streamed", n = n);
                if n + 1 == count {
                    times
                        .lock()
                        .expect("lock")
                        .insert(order_id, started.elapsed());
                }
                let reply = ChargeReply {
                    charge_id: format!("ch_{n}"),
                    approved: true,
                };
                Some((Ok(reply), n + 1))
            }
        });
        Ok(Response::new(Box::pin(s)))
    }
}

/// Serves `shop` under `layer` on an ephemeral 127.0.0.1 port.
pub(crate) async fn serve(shop: Shop, layer: GrpcLayer) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = Server::builder()
        .layer(layer)
        .add_service(PaymentsServer::new(shop))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);
    addr
}

/// A channel to `addr` (connected on first use).
pub(crate) fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_lazy()
}

/// A client of the payment service through `GrpcClientLayer::new()`.
pub(crate) fn observed_client(
    addr: SocketAddr,
) -> observe_test_grpc::shop::v1::payments_client::PaymentsClient<GrpcClient<Channel>> {
    let svc = tower::ServiceBuilder::new()
        .layer(GrpcClientLayer::new())
        .service(channel(addr));
    observe_test_grpc::shop::v1::payments_client::PaymentsClient::new(svc)
}

/// Runs `f` under a fresh harness on a current-thread runtime: every task
/// it spawns (the server's connections too) runs on this thread, under the
/// harness's dispatcher. The runtime is dropped before the capture is read.
/// Level `info`: the debug and trace spans of h2, hyper and tower stay out.
pub(crate) fn run<F: Future>(f: F) -> (F::Output, Capture) {
    let harness = Harness::new("payments").configure(|b| b.log_filter("info"));
    harness.run(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let out = rt.block_on(f);
        drop(rt);
        out
    })
}

pub(crate) fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub(crate) fn span_attrs(span: &SpanData) -> BTreeMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.as_str().to_owned(), kv.value.to_string()))
        .collect()
}

/// Histogram points of `name`: attributes and count, sorted.
pub(crate) fn counts(cap: &Capture, name: &str) -> Vec<(BTreeMap<String, String>, u64)> {
    let mut v: Vec<_> = cap
        .metric(name)
        .into_iter()
        .map(|p| match &p.value {
            MetricValue::Histogram { count, .. } => (p.attributes.clone(), *count),
            MetricValue::Sum(s) => (p.attributes.clone(), *s as u64),
            other => panic!("{name}: {other:?}"),
        })
        .collect();
    v.sort();
    v
}

/// Sum points of `name` (counters, up-down counters): attributes and value, sorted.
pub(crate) fn sums(cap: &Capture, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let mut v: Vec<_> = cap
        .metric(name)
        .into_iter()
        .map(|p| match &p.value {
            MetricValue::Sum(s) => (p.attributes.clone(), *s),
            other => panic!("{name}: {other:?}"),
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The spans of kind `kind` named `name`.
pub(crate) fn spans<'a>(
    cap: &'a Capture,
    name: &str,
    kind: observe::opentelemetry::trace::SpanKind,
) -> Vec<&'a SpanData> {
    cap.spans
        .iter()
        .filter(|s| s.name == name && s.span_kind == kind)
        .collect()
}
