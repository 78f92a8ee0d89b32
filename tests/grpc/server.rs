//! The server layer: spans, metrics and classification of unary and
//! server-streaming calls.

use super::*;
use observe::opentelemetry::trace::{SpanKind, Status as SpanStatus};
use observe::tower::grpc::{GrpcCode, GrpcCodes};
use observe_test_grpc::shop::v1::payments_client::PaymentsClient;
use tonic::metadata::MetadataValue;

fn charge(order_id: &str) -> ChargeRequest {
    ChargeRequest {
        order_id: order_id.to_owned(),
        amount_cents: 1299,
    }
}

#[test]
fn unary_call_continues_the_trace_from_metadata() {
    let (reply, cap) = run(async {
        let addr = serve(Shop::default(), GrpcLayer::new(methods())).await;
        let mut client = PaymentsClient::new(channel(addr));
        let mut req = Request::new(charge("ord_1"));
        req.metadata_mut()
            .insert("traceparent", MetadataValue::from_static(PARENT));
        req.metadata_mut()
            .insert("tracestate", MetadataValue::from_static("vendor=abc"));
        let reply = client.charge(req).await.expect("reply").into_inner();
        (reply, addr.port())
    });
    let (reply, port) = reply;
    assert_eq!(reply.charge_id, "ch_1299");
    assert_eq!(cap.spans.len(), 1, "{:#?}", cap.spans);
    let span = &cap.spans[0];
    assert_eq!(span.name, CHARGE);
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(
        span.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(span.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert!(span.parent_span_is_remote);
    assert_eq!(span.span_context.trace_state().header(), "vendor=abc");
    assert_eq!(span.status, SpanStatus::Unset);
    assert_eq!(
        span_attrs(span),
        attrs(&[
            ("rpc.method", CHARGE),
            ("rpc.response.status_code", "OK"),
            ("rpc.system.name", "grpc"),
            ("server.address", "127.0.0.1"),
            ("server.port", &port.to_string()),
        ])
    );
    // The handler's line carries the server span's ids.
    let line = &cap.events("charge_received")[0];
    assert_eq!(line["trace_id"], span.span_context.trace_id().to_string());
    assert_eq!(line["span_id"], span.span_context.span_id().to_string());
    assert_eq!(
        counts(&cap, "rpc.server.call.duration"),
        vec![(
            attrs(&[
                ("rpc.method", CHARGE),
                ("rpc.response.status_code", "OK"),
                ("rpc.system.name", "grpc"),
            ]),
            1
        )]
    );
    assert_eq!(
        sums(&cap, "observe.rpc.server.active_calls"),
        vec![(
            attrs(&[("rpc.method", CHARGE), ("rpc.system.name", "grpc")]),
            0.0
        )]
    );
    let unit = cap.metric("rpc.server.call.duration")[0].unit.clone();
    assert_eq!(unit, "s");
}

/// Every code: the status on the span and the metric, `error.type` and
/// span status Error only for the server errors of the conventions.
#[test]
fn every_status_code_is_classified_by_the_server_error_set() {
    let (_, cap) = run(async {
        let addr = serve(Shop::default(), GrpcLayer::new(methods())).await;
        let mut client = PaymentsClient::new(channel(addr));
        for code in GrpcCode::ALL {
            let _ = client
                .charge(charge(&format!("code:{}", code.as_u32())))
                .await;
        }
    });
    let server_errors = [
        "UNKNOWN",
        "DEADLINE_EXCEEDED",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
    ];
    let mut got: Vec<(String, Option<String>, bool)> = spans(&cap, CHARGE, SpanKind::Server)
        .into_iter()
        .map(|s| {
            let a = span_attrs(s);
            (
                a["rpc.response.status_code"].clone(),
                a.get("error.type").cloned(),
                matches!(s.status, SpanStatus::Error { .. }),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, Option<String>, bool)> = GrpcCode::ALL
        .iter()
        .map(|c| {
            let failed = server_errors.contains(&c.as_str());
            (
                c.as_str().to_owned(),
                failed.then(|| c.as_str().to_owned()),
                failed,
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
    let mut want_points: Vec<(BTreeMap<String, String>, u64)> = GrpcCode::ALL
        .iter()
        .map(|c| {
            let mut a = attrs(&[
                ("rpc.method", CHARGE),
                ("rpc.response.status_code", c.as_str()),
                ("rpc.system.name", "grpc"),
            ]);
            if server_errors.contains(&c.as_str()) {
                a.insert("error.type".into(), c.as_str().into());
            }
            (a, 1)
        })
        .collect();
    want_points.sort();
    assert_eq!(counts(&cap, "rpc.server.call.duration"), want_points);
}

#[test]
fn the_server_error_set_is_configurable() {
    let errors = GrpcCodes::SERVER_ERRORS
        .with(GrpcCode::ResourceExhausted)
        .without(GrpcCode::Unimplemented);
    let (_, cap) = run(async move {
        let layer = GrpcLayer::new(methods()).server_errors(errors);
        let addr = serve(Shop::default(), layer).await;
        let mut client = PaymentsClient::new(channel(addr));
        for code in [GrpcCode::ResourceExhausted, GrpcCode::Unimplemented] {
            let _ = client
                .charge(charge(&format!("code:{}", code.as_u32())))
                .await;
        }
    });
    let mut got: Vec<(String, Option<String>)> = spans(&cap, CHARGE, SpanKind::Server)
        .into_iter()
        .map(|s| {
            let a = span_attrs(s);
            (
                a["rpc.response.status_code"].clone(),
                a.get("error.type").cloned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "RESOURCE_EXHAUSTED".into(),
                Some("RESOURCE_EXHAUSTED".into())
            ),
            ("UNIMPLEMENTED".into(), None),
        ]
    );
}

/// Reads a `ListCharges` stream of 3 to its end: messages and final code.
async fn receive(mut client: PaymentsClient<Channel>, order_id: &str) -> (u32, Code) {
    let req = ListChargesRequest {
        order_id: order_id.to_owned(),
        count: 3,
    };
    let mut stream = client.list_charges(req).await.expect("stream").into_inner();
    let mut n = 0;
    loop {
        match stream.message().await {
            Ok(Some(_)) => n += 1,
            Ok(None) => return (n, Code::Ok),
            Err(s) => return (n, s.code()),
        }
    }
}

/// A server stream: the call ends with the stream (after the last message,
/// with the trailers' status), its messages are made inside the span.
#[test]
fn server_streaming_ends_when_the_stream_ends_with_the_trailers_status() {
    let shop = Shop::default();
    let times = Arc::clone(&shop.stream_times);
    let ((ok, failed), cap) = run(async move {
        let addr = serve(shop, GrpcLayer::new(methods())).await;
        let client = PaymentsClient::new(channel(addr));
        let ok = receive(client.clone(), "ord_1").await;
        let failed = receive(client, "fail-at-end").await;
        (ok, failed)
    });
    assert_eq!(ok, (3, Code::Ok));
    assert_eq!(failed, (3, Code::Internal));
    let streams = spans(&cap, LIST, SpanKind::Server);
    assert_eq!(streams.len(), 2);
    let by_status = |code: &str| {
        streams
            .iter()
            .find(|s| span_attrs(s)["rpc.response.status_code"] == code)
            .unwrap_or_else(|| panic!("no {code} span: {streams:#?}"))
    };
    let ok_span = by_status("OK");
    assert_eq!(ok_span.status, SpanStatus::Unset);
    let failed_span = by_status("INTERNAL");
    assert_eq!(span_attrs(failed_span)["error.type"], "INTERNAL");
    assert_eq!(failed_span.status, SpanStatus::error("INTERNAL"));
    // The stream's log lines are inside the server span.
    let lines = cap.events("charge_streamed");
    assert_eq!(lines.len(), 6);
    for s in [ok_span, failed_span] {
        let inside = lines
            .iter()
            .filter(|l| l["span_id"] == s.span_context.span_id().to_string())
            .count();
        assert_eq!(inside, 3, "{lines:#?}");
    }
    // The recorded durations cover the handler's work up to the last
    // message (the layer's clock reads are before the handler starts and
    // after the stream ends).
    let times = times.lock().expect("lock").clone();
    let recorded: BTreeMap<String, f64> = cap
        .metric("rpc.server.call.duration")
        .into_iter()
        .filter(|p| p.attributes["rpc.method"] == LIST)
        .map(|p| match p.value {
            MetricValue::Histogram { sum, .. } => {
                (p.attributes["rpc.response.status_code"].clone(), sum)
            }
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(recorded.len(), 2);
    for (status, order_id) in [("OK", "ord_1"), ("INTERNAL", "fail-at-end")] {
        let handler = times[order_id].as_secs_f64();
        assert!(
            recorded[status] >= handler,
            "{status}: recorded {recorded:?}, handler {handler}"
        );
    }
}

/// The client goes away mid-stream: the server's call ends when its stream
/// is dropped, as `CANCELLED` (not a server error), and active calls return to 0.
#[test]
fn a_client_cancelling_mid_stream_ends_the_call_as_cancelled() {
    let shop = Shop::default();
    let (tx, rx) = tokio::sync::oneshot::channel();
    *shop.dropped.lock().expect("lock") = Some(tx);
    let (first, cap) = run(async move {
        let addr = serve(shop, GrpcLayer::new(methods())).await;
        let mut client = observed_client(addr);
        let req = ListChargesRequest {
            order_id: "forever".into(),
            count: 0,
        };
        let mut stream = client.list_charges(req).await.expect("stream").into_inner();
        let first = stream
            .message()
            .await
            .expect("message")
            .map(|m| m.charge_id);
        drop(stream);
        tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .expect("the server drops the stream")
            .expect("signal");
        first
    });
    assert_eq!(first.as_deref(), Some("ch_0"));
    let server = spans(&cap, LIST, SpanKind::Server);
    assert_eq!(server.len(), 1, "{:#?}", cap.spans);
    let server = server[0];
    assert_eq!(span_attrs(server)["rpc.response.status_code"], "CANCELLED");
    assert!(!span_attrs(server).contains_key("error.type"));
    assert_eq!(server.status, SpanStatus::Unset);
    // The client span: the caller dropped its stream.
    let client = spans(&cap, LIST, SpanKind::Client);
    assert_eq!(client.len(), 1);
    assert_eq!(server.parent_span_id, client[0].span_context.span_id());
    assert_eq!(span_attrs(client[0])["error.type"], "cancelled");
    assert_eq!(client[0].status, SpanStatus::error("cancelled"));
    assert_eq!(
        counts(&cap, "rpc.server.call.duration"),
        vec![(
            attrs(&[
                ("rpc.method", LIST),
                ("rpc.response.status_code", "CANCELLED"),
                ("rpc.system.name", "grpc"),
            ]),
            1
        )]
    );
    assert_eq!(
        sums(&cap, "observe.rpc.server.active_calls"),
        vec![(
            attrs(&[("rpc.method", LIST), ("rpc.system.name", "grpc")]),
            0.0
        )]
    );
}

/// A panicking handler: no status was sent; the call is `error.type = panic`.
#[test]
fn a_panicking_handler_is_an_error_of_type_panic() {
    let (code, cap) = run(async {
        let addr = serve(Shop::default(), GrpcLayer::new(methods())).await;
        let mut client = PaymentsClient::new(channel(addr));
        let err = client.charge(charge("panic")).await.expect_err("no reply");
        // The server is still up.
        let ok = client
            .charge(charge("ord_2"))
            .await
            .map(|_| ())
            .map_err(|s| s.code());
        (err.code(), ok)
    });
    assert_ne!(code.0, Code::Ok);
    assert_eq!(code.1, Ok(()));
    let mut got: Vec<BTreeMap<String, String>> = spans(&cap, CHARGE, SpanKind::Server)
        .into_iter()
        .map(span_attrs)
        .collect();
    got.sort();
    assert_eq!(got.len(), 2);
    assert!(got.contains(&attrs(&[
        ("error.type", "panic"),
        ("rpc.method", CHARGE),
        ("rpc.system.name", "grpc"),
        ("server.address", "127.0.0.1"),
        ("server.port", &got[0]["server.port"]),
    ])));
    let panicked = spans(&cap, CHARGE, SpanKind::Server)
        .into_iter()
        .find(|s| span_attrs(s).contains_key("error.type"))
        .expect("the panicked call");
    assert_eq!(panicked.status, SpanStatus::error("panic"));
    assert_eq!(
        counts(&cap, "rpc.server.call.duration"),
        vec![
            (
                attrs(&[
                    ("error.type", "panic"),
                    ("rpc.method", CHARGE),
                    ("rpc.system.name", "grpc"),
                ]),
                1
            ),
            (
                attrs(&[
                    ("rpc.method", CHARGE),
                    ("rpc.response.status_code", "OK"),
                    ("rpc.system.name", "grpc"),
                ]),
                1
            ),
        ]
    );
    assert_eq!(
        sums(&cap, "observe.rpc.server.active_calls"),
        vec![(
            attrs(&[("rpc.method", CHARGE), ("rpc.system.name", "grpc")]),
            0.0
        )]
    );
}

/// An implicit failure reported inside an OK call is its `error.type`.
#[test]
fn an_implicit_failure_inside_an_ok_call_is_its_error_type() {
    let (_, cap) = run(async {
        let addr = serve(Shop::default(), GrpcLayer::new(methods())).await;
        PaymentsClient::new(channel(addr))
            .charge(charge("pending"))
            .await
            .expect("answered OK");
    });
    let s = spans(&cap, CHARGE, SpanKind::Server);
    assert_eq!(s.len(), 1);
    let a = span_attrs(s[0]);
    assert_eq!(a["rpc.response.status_code"], "OK");
    assert_eq!(a["error.type"], "payment_pending");
    assert_eq!(s[0].status, SpanStatus::error("payment_pending"));
    assert_eq!(
        counts(&cap, "rpc.server.call.duration"),
        vec![(
            attrs(&[
                ("error.type", "payment_pending"),
                ("rpc.method", CHARGE),
                ("rpc.response.status_code", "OK"),
                ("rpc.system.name", "grpc"),
            ]),
            1
        )]
    );
}

/// At a trust boundary the caller's context is a link, not the parent;
/// baggage `synthetic=true` marks the span.
#[test]
fn trust_boundary_links_and_synthetic_baggage_marks() {
    let (_, cap) = run(async {
        let layer = GrpcLayer::new(methods()).trust_boundary(true);
        let addr = serve(Shop::default(), layer).await;
        let mut req = Request::new(charge("ord_3"));
        req.metadata_mut()
            .insert("traceparent", MetadataValue::from_static(PARENT));
        req.metadata_mut()
            .insert("baggage", MetadataValue::from_static("synthetic=true"));
        PaymentsClient::new(channel(addr))
            .charge(req)
            .await
            .expect("reply");
    });
    let s = spans(&cap, CHARGE, SpanKind::Server);
    assert_eq!(s.len(), 1);
    let span = s[0];
    assert_ne!(
        span.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert!(!span.parent_span_is_remote);
    assert_eq!(span.links.links.len(), 1);
    assert_eq!(
        span.links.links[0].span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(span_attrs(span)["synthetic"], "true");
}
