//! `OTEL_PROPAGATORS` and `OTEL_LOG_LEVEL`: process-wide variables (as in
//! every OpenTelemetry SDK), so they have this test binary to themselves.

mod support;

use axum::routing::get;
use axum::Router;
use http::Request;
use observe::testing::TelemetryBuilderExt as _;
use observe::tower::ObserveLayer;
use observe::tracing::instrument::WithSubscriber;
use observe::{LogOutput, MemorySink, Telemetry};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{env, Answer, Receiver};
use tower::ServiceExt;

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// One request carrying `traceparent` and `baggage` through an app whose
/// handler makes an outbound call; returns the outbound call's headers and
/// the response's trace id.
async fn round_trip(vars: &[(&str, &str)]) -> (http::HeaderMap, String) {
    let (dispatch, guard) = Telemetry::builder("propagators-test")
        .env_source(env(vars))
        .log_output(LogOutput::Sink(Arc::new(MemorySink::new())))
        .build()
        .expect("valid configuration")
        .into_parts();
    let outbound = Arc::new(Mutex::new(http::HeaderMap::new()));
    let seen = Arc::clone(&outbound);
    let app = Router::new()
        .route(
            "/pay",
            get(move || {
                let seen = Arc::clone(&seen);
                async move {
                    let mut headers = http::HeaderMap::new();
                    observe::propagation::inject_current(&mut headers);
                    *seen.lock().expect("lock") = headers;
                    "ok"
                }
            }),
        )
        .layer(ObserveLayer::new());
    let res = async {
        app.oneshot(
            Request::get("/pay")
                .header("traceparent", PARENT)
                .header("baggage", "tenant=acme")
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible")
    }
    .with_subscriber(dispatch)
    .await;
    let trace_id = res
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(3..35))
        .expect("traceparent on the response")
        .to_owned();
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
    let headers = outbound.lock().expect("lock").clone();
    (headers, trace_id)
}

#[tokio::test]
async fn otel_propagators_chooses_the_headers_read_and_written() {
    // Default: both, in and out.
    let (out, trace) = round_trip(&[]).await;
    assert_eq!(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(out["traceparent"].to_str().expect("ascii").contains(&trace));
    assert_eq!(out["baggage"], "tenant=acme");

    // Baggage only: a new trace, baggage carried on.
    let (out, trace) = round_trip(&[("OTEL_PROPAGATORS", "baggage")]).await;
    assert_ne!(
        trace, "4bf92f3577b34da6a3ce929d0e0e4736",
        "traceparent not read"
    );
    assert!(
        !out.contains_key("traceparent"),
        "traceparent not written: {out:?}"
    );
    assert_eq!(out["baggage"], "tenant=acme");

    // Trace context only.
    let (out, trace) = round_trip(&[("OTEL_PROPAGATORS", "tracecontext")]).await;
    assert_eq!(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(out.contains_key("traceparent"));
    assert!(!out.contains_key("baggage"), "baggage not carried: {out:?}");

    // None.
    let (out, trace) = round_trip(&[("OTEL_PROPAGATORS", "none")]).await;
    assert_ne!(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(out.is_empty(), "{out:?}");

    // Back to both, for whatever runs next in this process.
    let (out, _) = round_trip(&[("OTEL_PROPAGATORS", "tracecontext,baggage")]).await;
    assert!(out.contains_key("traceparent") && out.contains_key("baggage"));
}

#[test]
fn otel_log_level_error_silences_observes_own_warnings_not_its_counts() {
    for (level, lines) in [("error", 0), ("warn", 1)] {
        let rx = Receiver::start();
        rx.script([Answer::Invalid("no")]);
        let sink = MemorySink::new();
        let (dispatch, guard) = Telemetry::builder("log-level-test")
            .env_source(env(&[
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    &format!("{}/v1/traces", rx.http_endpoint()),
                ),
                ("OTEL_LOG_LEVEL", level),
            ]))
            .log_output(LogOutput::Sink(Arc::new(sink.clone())))
            .build()
            .expect("valid configuration")
            .into_parts();
        observe::tracing::dispatcher::with_default(&dispatch, || {
            observe::tracing::info_span!("job").in_scope(|| {});
        });
        assert!(guard.flush(Duration::from_secs(10)).is_err());
        let stats = guard.export_stats(observe::export::Signal::Traces);
        assert_eq!(stats.rejected, 1, "{level}: counted whatever the level");
        guard.shutdown(Duration::from_secs(5)).ok();
        let said = sink
            .lines()
            .iter()
            .filter(|l| l.contains("\"event\":\"telemetry_dropped\""))
            .count();
        assert_eq!(said, lines, "OTEL_LOG_LEVEL={level}");
    }
}
