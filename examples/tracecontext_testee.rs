//! W3C Trace Context conformance testee: the service the official W3C test
//! suite (<https://github.com/w3c/trace-context>, `test/`) drives to check
//! that observe takes `traceparent`/`tracestate` in and sends them out as the
//! specification (Level 2) says.
//!
//! It shows the two tower layers working together and nothing else:
//! `ObserveLayer` extracts the incoming context and opens the server span;
//! each outbound call goes through a hyper client wrapped in
//! `GatewayLayer`, which opens a client span (a child of the server span)
//! and injects that span's `traceparent`, plus the `tracestate` and baggage
//! that came in. The handler never touches a trace header itself.
//!
//! Protocol: `POST /test` with a JSON array of `{"url": ..., "arguments": ...}`;
//! for each item, in order, the testee POSTs the JSON of `arguments` to `url`
//! (`Content-Type: application/json`), then answers 200.
//!
//! Run it by hand (listens on `127.0.0.1:$TESTEE_PORT`, default 7777; log
//! lines go to stderr, at `warn` unless `RUST_LOG` says otherwise):
//!
//! ```text
//! TESTEE_PORT=7777 cargo run --example tracecontext_testee
//! ```
//!
//! or let `scripts/w3c-tracecontext` build it, start it and run the suite
//! against it.

use axum::body::Bytes;
use axum::http::{header, Request, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use observe::tower::{GatewayLayer, ObserveLayer};
use serde::Deserialize;
use std::error::Error;
use tower::{Service, ServiceBuilder, ServiceExt};

type BoxError = Box<dyn Error + Send + Sync>;

/// One instruction of the harness: call `url` with `arguments` as the body.
#[derive(Debug, Deserialize)]
struct Action {
    url: String,
    #[serde(default)]
    arguments: serde_json::Value,
}

/// The outbound client: hyper's pooled HTTP/1 client under the gateway layer.
type Harness = observe::tower::Gateway<
    hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
>;

async fn call(client: &mut Harness, action: &Action) -> Result<StatusCode, BoxError> {
    let body = serde_json::to_vec(&action.arguments)?;
    let req = Request::post(action.url.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let res = client.ready().await?.call(req).await?;
    let status = res.status();
    // Read the answer to its end so the connection goes back to the pool.
    res.into_body().collect().await?;
    Ok(status)
}

async fn test(client: Harness, Json(actions): Json<Vec<Action>>) -> StatusCode {
    let mut client = client;
    for action in &actions {
        if let Err(e) = call(&mut client, action).await {
            observe::warn!("harness_call_failed", url = %action.url, error = %e);
        }
    }
    StatusCode::OK
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // Quiet logs (`RUST_LOG` still wins); the level filter never turns off
    // observe's own spans, so propagation is unaffected.
    let mut builder =
        observe::Telemetry::builder("tracecontext-testee").log_output(observe::LogOutput::Stderr);
    if std::env::var_os("RUST_LOG").is_none() {
        builder = builder.log_filter("warn");
    }
    let guard = builder.init()?;

    let port: u16 = match std::env::var("TESTEE_PORT") {
        Ok(p) => p.parse()?,
        Err(_) => 7777,
    };
    let client: Harness = ServiceBuilder::new()
        .layer(GatewayLayer::new("tracecontext_harness"))
        .service(Client::builder(TokioExecutor::new()).build_http());

    let app = Router::new()
        .route(
            "/test",
            post(move |body| {
                let client = client.clone();
                test(client, body)
            }),
        )
        .layer(ObserveLayer::new());

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("tracecontext testee listening on http://127.0.0.1:{port}/test");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;

    guard.shutdown(std::time::Duration::from_secs(2))?;
    Ok(())
}
