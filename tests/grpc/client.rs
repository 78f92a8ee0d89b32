//! The client layer, and masked failures: a call answered `OK` although a
//! gateway call inside it failed.

use super::*;
use observe::opentelemetry::trace::{SpanKind, Status as SpanStatus};
use observe_test_grpc::shop::v1::bank_server::{Bank, BankServer};
use observe_test_grpc::shop::v1::payments_client::PaymentsClient;
use observe_test_grpc::shop::v1::{AuthorizeReply, AuthorizeRequest};

const AUTHORIZE: &str = "shop.v1.Bank/Authorize";

/// A bank that is down.
struct DownBank;

#[tonic::async_trait]
impl Bank for DownBank {
    async fn authorize(
        &self,
        _: Request<AuthorizeRequest>,
    ) -> Result<Response<AuthorizeReply>, Status> {
        Err(Status::unavailable("bank down"))
    }
}

async fn serve_bank() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = Server::builder()
        .layer(GrpcLayer::new(methods()))
        .add_service(BankServer::new(DownBank))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);
    addr
}

fn charge(order_id: &str) -> ChargeRequest {
    ChargeRequest {
        order_id: order_id.to_owned(),
        amount_cents: 500,
    }
}

/// Injection (the server span is the client span's child), the client
/// span's attributes, `rpc.client.call.duration` and the gateway metrics
/// for OK, an error code, a deadline and a refused connection.
#[test]
fn client_layer_injects_context_and_records_each_outcome() {
    let (ports, cap) = run(async {
        let addr = serve(Shop::default(), GrpcLayer::new(methods())).await;
        let gateway = |addr: SocketAddr| {
            let target: http::Uri = format!("http://{addr}").parse().expect("uri");
            PaymentsClient::new(
                tower::ServiceBuilder::new()
                    .layer(GrpcClientLayer::gateway("payments").target(&target))
                    .service(channel(addr)),
            )
        };
        let mut client = gateway(addr);
        for order in ["ord_1", "code:5", "code:4"] {
            let _ = client.charge(charge(order)).await;
        }
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let closed_addr = closed.local_addr().expect("addr");
        drop(closed);
        let err = gateway(closed_addr)
            .charge(charge("ord_2"))
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        (addr.port(), closed_addr.port())
    });
    let (port, closed_port) = ports;
    let clients = spans(&cap, CHARGE, SpanKind::Client);
    assert_eq!(clients.len(), 4, "{:#?}", cap.spans);
    let base = |port: u16| {
        attrs(&[
            ("gateway", "payments"),
            ("rpc.method", CHARGE),
            ("rpc.system.name", "grpc"),
            ("server.address", "127.0.0.1"),
            ("server.port", &port.to_string()),
        ])
    };
    let with = |port: u16, extra: &[(&str, &str)]| {
        let mut a = base(port);
        a.extend(attrs(extra));
        a
    };
    let mut got: Vec<_> = clients
        .iter()
        .map(|s| (span_attrs(s), s.status.clone()))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want = vec![
        (
            with(port, &[("rpc.response.status_code", "OK")]),
            SpanStatus::Unset,
        ),
        (
            with(
                port,
                &[
                    ("rpc.response.status_code", "NOT_FOUND"),
                    ("error.type", "NOT_FOUND"),
                ],
            ),
            SpanStatus::error("NOT_FOUND"),
        ),
        (
            with(
                port,
                &[
                    ("rpc.response.status_code", "DEADLINE_EXCEEDED"),
                    ("error.type", "DEADLINE_EXCEEDED"),
                ],
            ),
            SpanStatus::error("DEADLINE_EXCEEDED"),
        ),
        (
            with(closed_port, &[("error.type", "connection_refused")]),
            SpanStatus::error("connection_refused"),
        ),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want);
    // Each server span is the child of its client span, in its trace.
    let servers = spans(&cap, CHARGE, SpanKind::Server);
    assert_eq!(servers.len(), 3);
    for s in servers {
        let parent = clients
            .iter()
            .find(|c| c.span_context.span_id() == s.parent_span_id)
            .expect("a client parent");
        assert_eq!(parent.span_context.trace_id(), s.span_context.trace_id());
        assert!(s.parent_span_is_remote);
    }
    let client_point = |extra: &[(&str, &str)]| {
        let mut a = attrs(&[
            ("gateway", "payments"),
            ("rpc.method", CHARGE),
            ("rpc.system.name", "grpc"),
            ("server.address", "127.0.0.1"),
        ]);
        a.extend(attrs(extra));
        (a, 1)
    };
    let mut want_points = vec![
        client_point(&[("rpc.response.status_code", "OK")]),
        client_point(&[
            ("rpc.response.status_code", "NOT_FOUND"),
            ("error.type", "NOT_FOUND"),
        ]),
        client_point(&[
            ("rpc.response.status_code", "DEADLINE_EXCEEDED"),
            ("error.type", "DEADLINE_EXCEEDED"),
        ]),
        client_point(&[("error.type", "connection_refused")]),
    ];
    want_points.sort();
    assert_eq!(counts(&cap, "rpc.client.call.duration"), want_points);
    // The gateway metrics use the HTTP gateway's status values.
    assert_eq!(
        sums(&cap, "external_gateway.requests"),
        vec![
            (
                attrs(&[
                    ("error.type", "DEADLINE_EXCEEDED"),
                    ("gateway", "payments"),
                    ("status", "timeout")
                ]),
                1.0
            ),
            (
                attrs(&[
                    ("error.type", "NOT_FOUND"),
                    ("gateway", "payments"),
                    ("status", "error")
                ]),
                1.0
            ),
            (
                attrs(&[
                    ("error.type", "connection_refused"),
                    ("gateway", "payments"),
                    ("status", "error")
                ]),
                1.0
            ),
            (
                attrs(&[("gateway", "payments"), ("status", "success")]),
                1.0
            ),
        ]
    );
    assert_eq!(
        counts(&cap, "external_gateway.request.duration"),
        vec![
            (attrs(&[("gateway", "payments"), ("status", "error")]), 2),
            (attrs(&[("gateway", "payments"), ("status", "success")]), 1),
            (attrs(&[("gateway", "payments"), ("status", "timeout")]), 1),
        ]
    );
}

/// The handler calls the bank over gRPC (a gateway), ignores `UNAVAILABLE`
/// and answers OK: the call is `error.type = masked_failure`.
#[test]
fn ok_after_a_swallowed_grpc_gateway_failure_is_a_masked_failure() {
    let (_, cap) = run(async {
        let bank_addr = serve_bank().await;
        let bank = BankClient::new(
            tower::ServiceBuilder::new()
                .layer(GrpcClientLayer::gateway("bank"))
                .service(channel(bank_addr)),
        );
        let shop = Shop {
            bank: Some(bank),
            ..Shop::default()
        };
        let addr = serve(shop, GrpcLayer::new(methods())).await;
        let reply = PaymentsClient::new(channel(addr))
            .charge(charge("swallow-grpc"))
            .await
            .expect("answered OK");
        assert!(reply.into_inner().approved);
    });
    // payments SERVER ─▶ bank CLIENT ─▶ bank SERVER, one trace.
    let payments = spans(&cap, CHARGE, SpanKind::Server);
    let bank_client = spans(&cap, AUTHORIZE, SpanKind::Client);
    let bank_server = spans(&cap, AUTHORIZE, SpanKind::Server);
    assert_eq!(
        (
            payments.len(),
            bank_client.len(),
            bank_server.len(),
            cap.spans.len()
        ),
        (1, 1, 1, 3)
    );
    let (payments, bank_client, bank_server) = (payments[0], bank_client[0], bank_server[0]);
    assert_eq!(bank_client.parent_span_id, payments.span_context.span_id());
    assert_eq!(
        bank_server.parent_span_id,
        bank_client.span_context.span_id()
    );
    let trace = payments.span_context.trace_id();
    assert!([bank_client, bank_server]
        .iter()
        .all(|s| s.span_context.trace_id() == trace));
    let a = span_attrs(payments);
    assert_eq!(a["rpc.response.status_code"], "OK");
    assert_eq!(a["error.type"], "masked_failure");
    assert_eq!(payments.status, SpanStatus::error("masked_failure"));
    let events: Vec<(String, BTreeMap<String, String>)> = payments
        .events
        .iter()
        .map(|e| {
            (
                e.name.to_string(),
                e.attributes
                    .iter()
                    .map(|kv| (kv.key.as_str().to_owned(), kv.value.to_string()))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![
            (
                "bank_failed_charging_anyway".into(),
                attrs(&[("level", "WARN")])
            ),
            (
                "masked_failure".into(),
                attrs(&[
                    ("error.type", "UNAVAILABLE"),
                    ("gateway", "bank"),
                    ("gateway.failures", "1"),
                    ("gateway.status", "error"),
                ])
            )
        ]
    );
    assert_eq!(span_attrs(bank_client)["error.type"], "UNAVAILABLE");
    assert_eq!(span_attrs(bank_server)["error.type"], "UNAVAILABLE");
    assert_eq!(
        sums(&cap, "observe.masked_failures"),
        vec![(attrs(&[("gateway", "bank"), ("rpc.method", CHARGE)]), 1.0)]
    );
    assert_eq!(
        sums(&cap, "external_gateway.requests"),
        vec![(
            attrs(&[
                ("error.type", "UNAVAILABLE"),
                ("gateway", "bank"),
                ("status", "error")
            ]),
            1.0
        )]
    );
    assert_eq!(
        counts(&cap, "rpc.server.call.duration"),
        vec![
            (
                attrs(&[
                    ("error.type", "UNAVAILABLE"),
                    ("rpc.method", AUTHORIZE),
                    ("rpc.response.status_code", "UNAVAILABLE"),
                    ("rpc.system.name", "grpc"),
                ]),
                1
            ),
            (
                attrs(&[
                    ("error.type", "masked_failure"),
                    ("rpc.method", CHARGE),
                    ("rpc.response.status_code", "OK"),
                    ("rpc.system.name", "grpc"),
                ]),
                1
            ),
        ]
    );
    // The warning the handler logged is in the failing request's trace.
    let line = &cap.events("bank_failed_charging_anyway")[0];
    assert_eq!(line["trace_id"], trace.to_string());
}

/// The same through `#[observed(gateway = "bank")]`.
#[test]
fn ok_after_a_swallowed_observed_gateway_failure_is_a_masked_failure() {
    let (_, cap) = run(async {
        let addr = serve(Shop::default(), GrpcLayer::new(methods())).await;
        PaymentsClient::new(channel(addr))
            .charge(charge("swallow-observed"))
            .await
            .expect("answered OK");
    });
    let payments = spans(&cap, CHARGE, SpanKind::Server);
    assert_eq!(payments.len(), 1);
    assert_eq!(span_attrs(payments[0])["error.type"], "masked_failure");
    let gateway = cap.span("gateway bank").expect("the gateway span");
    assert_eq!(gateway.parent_span_id, payments[0].span_context.span_id());
    assert_eq!(
        sums(&cap, "observe.masked_failures"),
        vec![(attrs(&[("gateway", "bank"), ("rpc.method", CHARGE)]), 1.0)]
    );
    assert_eq!(
        sums(&cap, "external_gateway.requests"),
        vec![(
            attrs(&[
                ("error.type", "connection_refused"),
                ("gateway", "bank"),
                ("status", "error")
            ]),
            1.0
        )]
    );
    assert_eq!(
        counts(&cap, "rpc.server.call.duration"),
        vec![(
            attrs(&[
                ("error.type", "masked_failure"),
                ("rpc.method", CHARGE),
                ("rpc.response.status_code", "OK"),
                ("rpc.system.name", "grpc"),
            ]),
            1
        )]
    );
}
