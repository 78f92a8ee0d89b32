//! The gateway middleware for reqwest clients (feature `reqwest`): context
//! injected, client span, gateway metrics, masked failure in the caller.
#![cfg(feature = "reqwest")]

use axum::routing::post;
use axum::Router;
use observe::testing::{Harness, MetricValue};
use std::collections::BTreeMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_calls_are_gateway_calls() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    let bank = Router::new().route(
        "/charge",
        post(move |headers: http::HeaderMap| {
            let seen = seen2.clone();
            async move {
                if let Some(tp) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
                    seen.lock().expect("lock").push(tp.to_owned());
                }
                (http::StatusCode::GATEWAY_TIMEOUT, "timeout")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, bank).await });

    let ((trace_id, status), cap) = Harness::new("payments")
        .run_async(async move {
            let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                .with(observe::tower::reqwest::GatewayMiddleware::new("bank"))
                .build();
            let span = observe::tracing::info_span!("checkout");
            let trace_id = span.in_scope(observe::current_trace_id);
            let res = observe::tracing::Instrument::instrument(
                client.post(format!("http://{addr}/charge")).send(),
                span,
            )
            .await
            .expect("response");
            (trace_id.expect("trace id"), res.status())
        })
        .await;
    assert_eq!(status, reqwest::StatusCode::GATEWAY_TIMEOUT);
    let client = cap.span("POST").expect("client span");
    assert_eq!(client.span_context.trace_id().to_string(), trace_id);
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        seen,
        vec![format!(
            "00-{}-{}-03",
            trace_id,
            client.span_context.span_id()
        )]
    );
    let gw = cap.metric("external_gateway.requests");
    let expected: BTreeMap<String, String> = [
        ("error.type", "504"),
        ("gateway", "bank"),
        ("status", "error"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(gw.len(), 1);
    assert_eq!(gw[0].attributes, expected);
    assert_eq!(gw[0].value, MetricValue::Sum(1.0));
}
