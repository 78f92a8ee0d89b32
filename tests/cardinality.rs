//! Cardinality attack: 100 000 requests with distinct raw paths, distinct
//! baggage values and a gateway named from user input. Metric series stay
//! within the configured cap (plus one overflow series per instrument) and
//! resident memory stays bounded. Its own test binary: resident memory is
//! per process, and no other test may run beside it.

mod support;

use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use http::Request;
use observe::metrics::SnapshotReader;
use observe::opentelemetry::Context;
use observe::opentelemetry_sdk::error::OTelSdkResult;
use observe::opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use observe::testing::TelemetryBuilderExt as _;
use observe::tower::{GatewayLayer, ObserveLayer};
use observe::{LogOutput, SyncWriter, Telemetry};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use support::rss_bytes;
use tower::{ServiceBuilder, ServiceExt};

/// Series cap configured for the attack.
const LIMIT: usize = 100;
const REQUESTS: u32 = 100_000;

#[derive(Debug)]
struct Discard;

impl SpanProcessor for Discard {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}
    fn on_end(&self, _span: SpanData) {}
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// A handler that calls a "partner" gateway whose name comes from the path.
async fn partner(Path(name): Path<String>) -> &'static str {
    let client = ServiceBuilder::new()
        .layer(GatewayLayer::new(name))
        .service(tower::service_fn(|_req: Request<String>| async {
            Ok::<_, std::io::Error>(
                http::Response::builder()
                    .status(503)
                    .body(String::new())
                    .expect("response"),
            )
        }));
    let _ = client.oneshot(Request::new(String::new())).await;
    "ok"
}

async fn attack(app: &Router, from: u32, to: u32) {
    for i in from..to {
        let path = match i % 3 {
            0 => format!("/orders/{i}"),
            1 => format!("/attack/{i}?q={i}"),
            _ => format!("/partners/partner-{i}"),
        };
        let req = Request::get(path)
            .header("baggage", format!("user={i},session={i}"))
            .body(Body::empty())
            .expect("request");
        let res = app.clone().oneshot(req).await.expect("infallible");
        let _ = axum::body::to_bytes(res.into_body(), 64).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn cardinality_attack_keeps_series_capped_and_memory_bounded() {
    let reader = SnapshotReader::new();
    let telemetry = Telemetry::builder("svc")
        .env_source(|_| None)
        .log_output(LogOutput::Sink(Arc::new(SyncWriter::new(std::io::sink()))))
        .span_processor(Discard)
        .metric_reader(reader.clone())
        .metric_cardinality_limit(LIMIT)
        .build()
        .expect("telemetry");
    let (dispatch, _guard) = telemetry.into_parts();
    let app = Router::new()
        .route("/orders/{id}", get(|| async { "ok" }))
        .route("/partners/{name}", get(partner))
        .layer(ObserveLayer::new());

    let run = async {
        // Warm-up: the cap is reached and the allocator has its arenas.
        attack(&app, 0, 10_000).await;
        let _ = reader.points();
        let warm = rss_bytes();
        attack(&app, 10_000, REQUESTS).await;
        let _ = reader.points();
        (warm, rss_bytes())
    };
    let (warm, after) =
        observe::tracing::instrument::WithSubscriber::with_subscriber(run, dispatch).await;

    let points = reader.points();
    let mut series: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for p in &points {
        for v in p.attributes.values() {
            assert!(
                !v.contains("attack") && !v.starts_with("user=") && !v.contains("session"),
                "user input became a label: {p:?}"
            );
        }
        series
            .entry(p.name.as_str())
            .or_default()
            .insert(format!("{:?}", p.attributes));
    }
    let counts: BTreeMap<&str, usize> = series.iter().map(|(k, v)| (*k, v.len())).collect();
    eprintln!(
        "cardinality: {REQUESTS} requests; series per instrument {counts:?}; \
         rss after warm-up {} KiB, after {} KiB",
        warm / 1024,
        after / 1024
    );
    for (name, n) in &counts {
        assert!(*n <= LIMIT + 1, "{name}: {n} series (cap {LIMIT})");
    }
    // Routes: the template and `unmatched`, whatever the paths.
    let routes: BTreeSet<&str> = points
        .iter()
        .filter(|p| p.name == "http.server.request.duration")
        .filter_map(|p| p.attributes.get("http.route").map(String::as_str))
        .collect();
    assert_eq!(
        routes,
        BTreeSet::from(["/orders/{id}", "/partners/{name}", "unmatched"])
    );
    // Gateway names from user input hit the cap and fold into the overflow series.
    let gateways = &series["external_gateway.requests"];
    assert_eq!(gateways.len(), LIMIT + 1, "{gateways:?}");
    assert!(
        gateways.iter().any(|s| s.contains("otel.metric.overflow")),
        "{gateways:?}"
    );
    // 90 000 further requests with new paths, baggage and gateway names.
    assert!(
        after.saturating_sub(warm) < 16 << 20,
        "rss grew {} KiB",
        after.saturating_sub(warm) / 1024
    );
}
