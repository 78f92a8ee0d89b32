//! Hostile metadata and hostile paths, driven in process through the
//! layer and the generated server (gRPC metadata are the HTTP/2 headers the
//! layer reads).

use super::*;
use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderValue;
use http_body_util::{BodyExt, Full};
use observe::opentelemetry::trace::SpanKind;
use observe::tower::grpc::GrpcObserve;
use prost::Message;
use tower::{Service, ServiceExt};

type Svc = GrpcObserve<PaymentsServer<Shop>>;

fn service() -> Svc {
    GrpcObserve::new(PaymentsServer::new(Shop::default()), methods())
}

/// One length-prefixed, uncompressed gRPC message.
fn framed(msg: &impl Message) -> Bytes {
    let body = msg.encode_to_vec();
    let mut b = BytesMut::with_capacity(5 + body.len());
    b.put_u8(0);
    b.put_u32(u32::try_from(body.len()).expect("small"));
    b.put_slice(&body);
    b.freeze()
}

/// Calls `path` with `headers`; returns the `grpc-status` of the trailers
/// (or of a trailers-only response).
async fn call(svc: &mut Svc, path: &str, headers: Vec<(&'static str, HeaderValue)>) -> String {
    let msg = ChargeRequest {
        order_id: "ord_1".into(),
        amount_cents: 100,
    };
    let mut req = http::Request::post(path)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(framed(&msg)))
        .expect("request");
    for (k, v) in headers {
        req.headers_mut().append(k, v);
    }
    let res = ServiceExt::<http::Request<Full<Bytes>>>::ready(svc)
        .await
        .expect("ready")
        .call(req)
        .await
        .expect("infallible");
    let head = res.headers().get("grpc-status").cloned();
    let collected = res.into_body().collect().await.expect("body");
    let status = collected
        .trailers()
        .and_then(|t| t.get("grpc-status").cloned())
        .or(head)
        .expect("a grpc-status");
    status.to_str().expect("ascii").to_owned()
}

/// The reliability suite's hostile W3C headers, as gRPC metadata: a 1 MiB
/// `traceparent`, 10 000 `tracestate` members, non-UTF-8 bytes, repeated
/// `traceparent`s, oversized baggage, upper-case hex, version `ff`, a zero
/// trace id. Every call is answered; only the valid `traceparent` is
/// continued, and its oversized `tracestate` is dropped.
#[test]
fn hostile_metadata_starts_fresh_traces() {
    let huge = "0".repeat(1 << 20);
    let many_members: String = (0..10_000)
        .map(|i| format!("k{i}=v{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let big_baggage: String = (0..5_000)
        .map(|i| format!("key{i}=value{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let valid = HeaderValue::from_static(PARENT);
    let v = |s: &str| HeaderValue::from_str(s).expect("ascii");
    let cases: Vec<Vec<(&'static str, HeaderValue)>> = vec![
        vec![("traceparent", v(&huge))],
        vec![
            ("traceparent", valid.clone()),
            ("tracestate", v(&many_members)),
        ],
        vec![(
            "traceparent",
            HeaderValue::from_bytes(b"00-\xff\xfe-\x80-01").expect("opaque bytes"),
        )],
        vec![("traceparent", valid.clone()), ("traceparent", valid)],
        vec![("baggage", v(&big_baggage))],
        vec![(
            "traceparent",
            v("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"),
        )],
        vec![(
            "traceparent",
            v("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        )],
        vec![(
            "traceparent",
            v("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        )],
    ];
    let n = cases.len();
    let (statuses, cap) = run(async move {
        let mut svc = service();
        let mut out = Vec::new();
        for headers in cases {
            out.push(call(&mut svc, "/shop.v1.Payments/Charge", headers).await);
        }
        out
    });
    assert_eq!(statuses, vec!["0"; n]);
    let servers = spans(&cap, CHARGE, SpanKind::Server);
    assert_eq!(servers.len(), n);
    let continued: Vec<bool> = cap
        .spans
        .iter()
        .map(|s| s.span_context.trace_id().to_string() == "4bf92f3577b34da6a3ce929d0e0e4736")
        .collect();
    assert_eq!(
        continued,
        vec![false, true, false, false, false, false, false, false]
    );
    assert!(cap.spans[1].parent_span_is_remote);
    assert_eq!(cap.spans[1].span_context.trace_state().header(), "");
    for (i, s) in cap.spans.iter().enumerate() {
        if i != 1 {
            assert!(!s.parent_span_is_remote, "case {i}");
        }
        assert_eq!(span_attrs(s)["rpc.response.status_code"], "OK");
    }
}

/// Methods come only from the service definition: 500 calls to methods
/// the server does not define (in a known service and in made-up ones) are
/// one `_OTHER` series; their paths are on the spans only.
#[test]
fn unknown_methods_are_one_other_value() {
    let (_, cap) = run(async {
        let mut svc = service();
        for i in 0..500u32 {
            let path = if i % 2 == 0 {
                format!("/shop.v1.Payments/Steal{i}")
            } else {
                format!("/evil{i}.Svc/Method{i}")
            };
            let status = call(&mut svc, &path, Vec::new()).await;
            assert_eq!(status, "12", "{path}");
            let status = call(&mut svc, "/shop.v1.Payments/Charge", Vec::new()).await;
            assert_eq!(status, "0");
        }
    });
    assert_eq!(
        counts(&cap, "rpc.server.call.duration"),
        vec![
            (
                attrs(&[
                    ("error.type", "UNIMPLEMENTED"),
                    ("rpc.method", "_OTHER"),
                    ("rpc.response.status_code", "UNIMPLEMENTED"),
                    ("rpc.system.name", "grpc"),
                ]),
                500
            ),
            (
                attrs(&[
                    ("rpc.method", CHARGE),
                    ("rpc.response.status_code", "OK"),
                    ("rpc.system.name", "grpc"),
                ]),
                500
            ),
        ]
    );
    assert_eq!(
        sums(&cap, "observe.rpc.server.active_calls"),
        vec![
            (
                attrs(&[("rpc.method", "_OTHER"), ("rpc.system.name", "grpc")]),
                0.0
            ),
            (
                attrs(&[("rpc.method", CHARGE), ("rpc.system.name", "grpc")]),
                0.0
            ),
        ]
    );
    for m in &cap.metrics {
        for v in m.attributes.values() {
            assert!(!v.contains("Steal") && !v.contains("evil"), "{m:?}");
        }
    }
    let other = spans(&cap, "grpc", SpanKind::Server);
    assert_eq!(other.len(), 500);
    assert_eq!(
        span_attrs(other[0]),
        attrs(&[
            ("error.type", "UNIMPLEMENTED"),
            ("rpc.method", "_OTHER"),
            ("rpc.method_original", "shop.v1.Payments/Steal0"),
            ("rpc.response.status_code", "UNIMPLEMENTED"),
            ("rpc.system.name", "grpc"),
        ])
    );
}
