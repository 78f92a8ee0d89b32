//! The server layer end to end on an axum router: W3C context in and out,
//! the server span, golden-signal metrics with exact attribute sets, implicit
//! and masked failures.

use axum::body::Body;
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{Request, StatusCode};
use observe::opentelemetry::trace::{SpanKind, Status};
use observe::testing::{Capture, Harness, MetricValue};
use observe::tower::{GatewayLayer, JsonFailureRule, ObserveLayer};
use std::collections::BTreeMap;
use tower::{Service, ServiceBuilder, ServiceExt};

#[path = "support/pipeline.rs"]
mod pipeline;

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async fn send(app: Router, req: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
    let res = app.oneshot(req).await.expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn durations(cap: &Capture) -> Vec<(BTreeMap<String, String>, u64)> {
    cap.metric("http.server.request.duration")
        .into_iter()
        .map(|p| match &p.value {
            MetricValue::Histogram { count, .. } => (p.attributes.clone(), *count),
            other => panic!("not a histogram: {other:?}"),
        })
        .collect()
}

fn span_attr(span: &observe::opentelemetry_sdk::trace::SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tokio::test]
async fn server_span_continues_the_incoming_trace_and_answers_traceparent() {
    let ((status, headers, _), cap) = Harness::new("payments")
        .run_async(async {
            let app = Router::new()
                .route(
                    "/orders/{id}",
                    get(|| async {
                        observe::info!("order_read");
                        "ok"
                    }),
                )
                .layer(ObserveLayer::new());
            let req = Request::get("/orders/42?x=1")
                .header("traceparent", PARENT)
                .header("tracestate", "vendor=abc")
                .header("host", "shop.example:8080")
                .header("user-agent", "curl/8")
                .body(Body::empty())
                .expect("request");
            send(app, req).await
        })
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cap.spans.len(), 1);
    let span = &cap.spans[0];
    assert_eq!(span.name, "GET /orders/{id}");
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(
        span.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(span.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert!(span.parent_span_is_remote);
    assert_eq!(span.status, Status::Unset);
    let mut got: Vec<(String, String)> = span
        .attributes
        .iter()
        .map(|kv| (kv.key.as_str().to_owned(), kv.value.to_string()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("http.request.method".into(), "GET".into()),
            ("http.response.status_code".into(), "200".into()),
            ("http.route".into(), "/orders/{id}".into()),
            ("server.address".into(), "shop.example".into()),
            ("url.path".into(), "/orders/42".into()),
            ("url.query".into(), "x=1".into()),
            ("url.scheme".into(), "http".into()),
            ("user_agent.original".into(), "curl/8".into()),
        ]
    );
    assert_eq!(
        headers["traceparent"],
        format!(
            "00-{}-{}-01",
            span.span_context.trace_id(),
            span.span_context.span_id()
        )
        .as_str()
    );
    // The handler's log line carries the server span's ids.
    let line = &cap.events("order_read")[0];
    assert_eq!(line["trace_id"], span.span_context.trace_id().to_string());
    assert_eq!(line["span_id"], span.span_context.span_id().to_string());
    assert_eq!(
        durations(&cap),
        vec![(
            attrs(&[
                ("http.request.method", "GET"),
                ("http.response.status_code", "200"),
                ("http.route", "/orders/{id}")
            ]),
            1
        )]
    );
    let active = cap.metric("http.server.active_requests");
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].value, MetricValue::Sum(0.0));
    assert_eq!(
        active[0].attributes,
        attrs(&[("http.request.method", "GET"), ("url.scheme", "http")])
    );
}

#[tokio::test]
async fn invalid_or_absent_context_starts_a_random_trace() {
    let ((_, headers, _), cap) = Harness::new("payments")
        .run_async(async {
            let app = Router::new()
                .route("/", get(|| async { "ok" }))
                .layer(ObserveLayer::new());
            let req = Request::get("/")
                .header(
                    "traceparent",
                    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                )
                .header("tracestate", "vendor=abc")
                .body(Body::empty())
                .expect("request");
            send(app, req).await
        })
        .await;
    let span = &cap.spans[0];
    assert_ne!(
        span.span_context.trace_id().to_string(),
        "00000000000000000000000000000000"
    );
    assert!(!span.parent_span_is_remote);
    assert_eq!(span.parent_span_id.to_string(), "0000000000000000");
    // Sampled and Level 2 `random` flags on the new trace.
    assert!(headers["traceparent"]
        .to_str()
        .expect("ascii")
        .ends_with("-03"));
    assert_eq!(span.span_context.trace_state().header(), "");
}

#[tokio::test]
async fn trust_boundary_links_instead_of_parenting() {
    let (_, cap) = Harness::new("edge")
        .run_async(async {
            let app = Router::new()
                .route("/", get(|| async { "ok" }))
                .layer(ObserveLayer::new().trust_boundary(true));
            let req = Request::get("/")
                .header("traceparent", PARENT)
                .body(Body::empty())
                .expect("request");
            send(app, req).await
        })
        .await;
    let span = &cap.spans[0];
    assert_ne!(
        span.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(span.links.links.len(), 1);
    assert_eq!(
        span.links.links[0].span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
}

#[tokio::test]
async fn server_errors_and_unmatched_routes() {
    let (_, cap) = Harness::new("payments")
        .run_async(async {
            let app = Router::new()
                .route(
                    "/boom",
                    get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "no") }),
                )
                .route("/bad", get(|| async { (StatusCode::BAD_REQUEST, "no") }))
                .layer(ObserveLayer::new());
            send(app.clone(), get_req("/boom")).await;
            send(app.clone(), get_req("/bad")).await;
            send(app, get_req("/nope/123")).await;
        })
        .await;
    assert_eq!(
        durations(&cap),
        vec![
            (
                attrs(&[
                    ("error.type", "500"),
                    ("http.request.method", "GET"),
                    ("http.response.status_code", "500"),
                    ("http.route", "/boom")
                ]),
                1
            ),
            (
                attrs(&[
                    ("http.request.method", "GET"),
                    ("http.response.status_code", "400"),
                    ("http.route", "/bad")
                ]),
                1
            ),
            (
                attrs(&[
                    ("http.request.method", "GET"),
                    ("http.response.status_code", "404"),
                    ("http.route", "unmatched")
                ]),
                1
            ),
        ]
    );
    let boom = cap.span("GET /boom").expect("span");
    assert!(matches!(boom.status, Status::Error { .. }));
    let bad = cap.span("GET /bad").expect("span");
    assert_eq!(bad.status, Status::Unset, "4xx is not a server error");
    assert!(
        cap.span("GET").is_some(),
        "unmatched requests are named by method"
    );
}

#[tokio::test]
async fn implicit_failures_count_as_errors() {
    let (_, cap) = Harness::new("payments")
        .run_async(async {
            let app = Router::new()
                .route(
                    "/marked",
                    get(|| async {
                        observe::mark_failed("gateway_timeout");
                        "ok"
                    }),
                )
                .route(
                    "/pay",
                    post(|| async { Json(serde_json::json!({"status": "processing"})) }),
                )
                .route(
                    "/paid",
                    post(|| async { Json(serde_json::json!({"status": "success"})) }),
                )
                .layer(ObserveLayer::new().json_failure(JsonFailureRule::new(
                    ["/pay", "/paid"],
                    "status",
                    ["processing", "error"],
                )));
            send(app.clone(), get_req("/marked")).await;
            let post_req = |p: &str| Request::post(p).body(Body::empty()).expect("request");
            send(app.clone(), post_req("/pay")).await;
            send(app, post_req("/paid")).await;
        })
        .await;
    let d = durations(&cap);
    assert!(d.contains(&(
        attrs(&[
            ("error.type", "gateway_timeout"),
            ("http.request.method", "GET"),
            ("http.response.status_code", "200"),
            ("http.route", "/marked")
        ]),
        1
    )));
    assert!(d.contains(&(
        attrs(&[
            ("error.type", "status_processing"),
            ("http.request.method", "POST"),
            ("http.response.status_code", "200"),
            ("http.route", "/pay")
        ]),
        1
    )));
    assert!(d.contains(&(
        attrs(&[
            ("http.request.method", "POST"),
            ("http.response.status_code", "200"),
            ("http.route", "/paid")
        ]),
        1
    )));
    let pay = cap.span("POST /pay").expect("span");
    assert!(matches!(pay.status, Status::Error { .. }));
    assert_eq!(
        span_attr(pay, "error.type").as_deref(),
        Some("status_processing")
    );
}

/// The seed incident: the bank answers 504, the handler swallows it and
/// answers 200 {"status":"processing"}. observe records a masked failure.
#[tokio::test]
async fn masked_gateway_failure_is_an_error() {
    let ((status, _, body), cap) = Harness::new("payment-service")
        .run_async(async {
            let bank = tower::service_fn(|req: Request<String>| async move {
                assert!(
                    req.headers().contains_key("traceparent"),
                    "context injected"
                );
                Ok::<_, std::io::Error>(
                    http::Response::builder()
                        .status(StatusCode::GATEWAY_TIMEOUT)
                        .body(String::new())
                        .expect("response"),
                )
            });
            let bank = ServiceBuilder::new()
                .layer(GatewayLayer::new("bank"))
                .service(bank);
            let app = Router::new()
                .route(
                    "/pay",
                    post(move || {
                        let mut bank = bank.clone();
                        async move {
                            let req = Request::post("http://bank.internal:9000/charge")
                                .body(String::from("{}"))
                                .expect("request");
                            let res = bank.ready().await.expect("ready").call(req).await;
                            match res {
                                Ok(r) if r.status().is_success() => {
                                    Json(serde_json::json!({"status": "success"}))
                                }
                                _ => {
                                    // The handler that lied: swallow and answer 200.
                                    Json(serde_json::json!({"status": "processing"}))
                                }
                            }
                        }
                    }),
                )
                .layer(ObserveLayer::new());
            send(
                app,
                Request::post("/pay").body(Body::empty()).expect("request"),
            )
            .await
        })
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, r#"{"status":"processing"}"#);
    assert_eq!(
        durations(&cap),
        vec![(
            attrs(&[
                ("error.type", "masked_failure"),
                ("http.request.method", "POST"),
                ("http.response.status_code", "200"),
                ("http.route", "/pay")
            ]),
            1
        )]
    );
    let masked = cap.metric("observe.masked_failures");
    assert_eq!(masked.len(), 1);
    assert_eq!(
        masked[0].attributes,
        attrs(&[("gateway", "bank"), ("http.route", "/pay")])
    );
    assert_eq!(masked[0].value, MetricValue::Sum(1.0));
    let gw = cap.metric("external_gateway.requests");
    assert_eq!(gw.len(), 1);
    assert_eq!(
        gw[0].attributes,
        attrs(&[
            ("error.type", "504"),
            ("gateway", "bank"),
            ("status", "error")
        ])
    );
    // Span tree: POST /pay (server) → POST (client, gateway=bank).
    let server = cap.span("POST /pay").expect("server span");
    let client = cap.span("POST").expect("client span");
    assert_eq!(client.span_kind, SpanKind::Client);
    assert_eq!(client.parent_span_id, server.span_context.span_id());
    assert_eq!(
        client.span_context.trace_id(),
        server.span_context.trace_id()
    );
    assert_eq!(span_attr(client, "gateway").as_deref(), Some("bank"));
    assert_eq!(
        span_attr(client, "http.response.status_code").as_deref(),
        Some("504")
    );
    assert!(matches!(client.status, Status::Error { .. }));
    assert!(matches!(server.status, Status::Error { .. }));
    let ev = server
        .events
        .events
        .iter()
        .find(|e| e.name == "masked_failure")
        .expect("masked_failure event");
    let ev_attrs: BTreeMap<String, String> = ev
        .attributes
        .iter()
        .map(|kv| (kv.key.as_str().to_owned(), kv.value.to_string()))
        .collect();
    assert_eq!(
        ev_attrs,
        attrs(&[
            ("error.type", "504"),
            ("gateway", "bank"),
            ("gateway.failures", "1"),
            ("gateway.status", "error")
        ])
    );
}

#[tokio::test]
async fn client_that_goes_away_mid_body_is_recorded_once() {
    let (_, cap) = Harness::new("payments")
        .run_async(async {
            let app = Router::new()
                .route(
                    "/stream",
                    get(|| async {
                        let chunks = futures_like_stream();
                        Body::from_stream(chunks)
                    }),
                )
                .layer(ObserveLayer::new());
            let res = app.oneshot(get_req("/stream")).await.expect("response");
            // Read one frame, then drop the body: the client went away.
            let mut body = res.into_body();
            let _ = http_body_util::BodyExt::frame(&mut body).await;
            drop(body);
        })
        .await;
    assert_eq!(
        durations(&cap),
        vec![(
            attrs(&[
                ("error.type", "response_aborted"),
                ("http.request.method", "GET"),
                ("http.response.status_code", "200"),
                ("http.route", "/stream")
            ]),
            1
        )]
    );
    assert_eq!(
        cap.metric("http.server.active_requests")[0].value,
        MetricValue::Sum(0.0)
    );
}

/// A handler that panics: the panic goes on to the caller (no catch layer),
/// the server span ends with status Error and `error.type` = `panic`, the
/// request is counted once and the active-requests gauge is back to zero.
#[tokio::test]
async fn handler_panic_ends_the_span_as_error_and_is_counted_once() {
    let (joined, cap) = Harness::new("payments")
        .run_async(async {
            let app = Router::new()
                .route(
                    "/boom",
                    get(|| async {
                        if std::hint::black_box(true) {
                            panic!("handler bug");
                        }
                        "ok"
                    }),
                )
                .layer(ObserveLayer::new());
            let fut = app.oneshot(get_req("/boom"));
            tokio::spawn(observe::tracing::instrument::WithSubscriber::with_current_subscriber(fut))
                .await
        })
        .await;
    assert!(joined.expect_err("the handler panicked").is_panic());
    assert_eq!(
        durations(&cap),
        vec![(
            attrs(&[
                ("error.type", "panic"),
                ("http.request.method", "GET"),
                ("http.route", "/boom")
            ]),
            1
        )]
    );
    assert_eq!(
        cap.metric("http.server.active_requests")[0].value,
        MetricValue::Sum(0.0)
    );
    assert_eq!(cap.spans.len(), 1);
    let span = &cap.spans[0];
    assert_eq!(span.name, "GET /boom");
    assert_eq!(span_attr(span, "error.type").as_deref(), Some("panic"));
    assert!(
        matches!(
            span.status,
            observe::opentelemetry::trace::Status::Error { .. }
        ),
        "{:?}",
        span.status
    );
}

fn futures_like_stream(
) -> impl futures_util::Stream<Item = Result<axum::body::Bytes, std::io::Error>> + Send {
    futures_util::stream::iter(vec![
        Ok(axum::body::Bytes::from_static(b"a")),
        Ok(axum::body::Bytes::from_static(b"b")),
    ])
}

/// Turning logs down must not switch off tracing, propagation or metrics.
#[tokio::test]
async fn quiet_log_filter_keeps_spans_and_context() {
    let ((_, headers, _), cap) = Harness::new("payments")
        .configure(|b| b.log_filter("warn"))
        .run_async(async {
            let app = Router::new()
                .route(
                    "/",
                    get(|| async {
                        observe::info!("not_written");
                        observe::warn!("written");
                        "ok"
                    }),
                )
                .layer(ObserveLayer::new());
            let req = Request::get("/")
                .header("traceparent", PARENT)
                .body(Body::empty())
                .expect("request");
            send(app, req).await
        })
        .await;
    assert_eq!(cap.spans.len(), 1);
    assert!(headers["traceparent"]
        .to_str()
        .expect("ascii")
        .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    let events: Vec<_> = cap.lines.iter().map(|l| l["event"].clone()).collect();
    assert_eq!(events, vec![serde_json::json!("written")]);
    assert_eq!(cap.lines[0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(durations(&cap).len(), 1);
}

/// Raw paths never become labels, and every instrument has a hard cap on
/// attribute sets: past it, points fold into one overflow series.
#[tokio::test]
async fn metric_cardinality_is_capped() {
    let (_, cap) = Harness::new("payments")
        .configure(|b| b.metric_cardinality_limit(3))
        .run_async(async {
            // A classifier that (wrongly) returns raw paths.
            let app = Router::new().fallback(|| async { "ok" }).layer(
                ObserveLayer::new().route_classifier(
                    |_: &http::Method, uri: &http::Uri, _: &http::Extensions| {
                        Some(std::borrow::Cow::Owned(uri.path().to_owned()))
                    },
                ),
            );
            for i in 0..20 {
                send(app.clone(), get_req(&format!("/items/{i}"))).await;
            }
        })
        .await;
    let points = durations(&cap);
    // Three attribute sets, then one overflow series.
    assert_eq!(points.len(), 4, "{points:?}");
    let overflow = points
        .iter()
        .find(|(a, _)| a.get("otel.metric.overflow").map(String::as_str) == Some("true"))
        .expect("overflow series");
    let total: u64 = points.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 20, "every request is still counted");
    assert_eq!(overflow.1, 17, "{points:?}");
}

/// OpenMetrics exposition carries the request's trace id as an exemplar on
/// its duration bucket.
#[tokio::test]
async fn duration_buckets_carry_trace_id_exemplars() {
    let exporter = observe::export::prometheus::PrometheusExporter::new();
    let ex = exporter.clone();
    let (((_, headers, _), text), cap) = Harness::new("payments")
        .configure(move |b| b.prometheus(&ex))
        .run_async(async {
            let app = Router::new()
                .route("/pay", get(|| async { "ok" }))
                .layer(ObserveLayer::new());
            let res = send(app, get_req("/pay")).await;
            (res, exporter.render_openmetrics())
        })
        .await;
    let trace_id = cap.spans[0].span_context.trace_id().to_string();
    assert!(headers["traceparent"]
        .to_str()
        .expect("ascii")
        .contains(&trace_id));
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("http_server_request_duration_seconds_bucket{")
                && l.contains(&format!("trace_id=\"{trace_id}\""))
        })
        .unwrap_or_else(|| panic!("no exemplar for {trace_id} in:\n{text}"));
    assert!(line.contains("http_route=\"/pay\""), "{line}");
}

/// A route without parameters: `url.path` is the path (taken from the
/// interned route, which it equals), beside `http.route`.
#[tokio::test]
async fn a_route_without_parameters_has_its_path_as_url_path() {
    let (_, cap) = Harness::new("payments")
        .run_async(async {
            let app = Router::new()
                .route("/health", get(|| async { "ok" }))
                .layer(ObserveLayer::new());
            for _ in 0..2 {
                let req = Request::get("/health")
                    .body(Body::empty())
                    .expect("request");
                send(app.clone(), req).await;
            }
        })
        .await;
    let paths: Vec<(String, String)> = cap
        .spans
        .iter()
        .map(|s| {
            let get = |k: &str| {
                s.attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == k)
                    .map(|kv| kv.value.to_string())
                    .unwrap_or_default()
            };
            (get("url.path"), get("http.route"))
        })
        .collect();
    let health = ("/health".to_owned(), "/health".to_owned());
    assert_eq!(paths, vec![health.clone(), health]);
}

/// Through observe's own pipeline the export thread hands each server
/// span's attribute vector back for a later request to reuse: every span
/// still has exactly its own attributes, none left from the request whose
/// vector it reuses (the first has a query, host and user agent; the next
/// ones do not).
#[tokio::test]
async fn server_spans_on_observes_pipeline_have_only_their_own_attributes() {
    use observe::tracing::instrument::WithSubscriber as _;
    let (dispatch, guard, exporter) = pipeline::on_observes_pipeline(|_| None);
    let app = Router::new()
        .route("/orders/{id}", get(|| async { "ok" }))
        .layer(ObserveLayer::new());
    let requests = [
        Request::get("/orders/1?full=true")
            .header("host", "shop.example")
            .header("user-agent", "curl/8")
            .body(Body::empty())
            .expect("request"),
        get_req("/orders/2"),
        get_req("/orders/3"),
    ];
    let mut got = Vec::new();
    for req in requests {
        send(app.clone(), req)
            .with_subscriber(dispatch.clone())
            .await;
        // Exported now: its vector goes back before the next request.
        guard
            .flush(std::time::Duration::from_secs(10))
            .expect("flushed");
        let spans = exporter.get_finished_spans().expect("spans");
        exporter.reset();
        for s in spans {
            let mut a: Vec<(String, String)> = s
                .attributes
                .iter()
                .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                .collect();
            a.sort();
            got.push(a);
        }
    }
    let span = |path: &str, extra: &[(&str, &str)]| {
        let mut a: Vec<(String, String)> = [
            ("http.request.method", "GET"),
            ("http.response.status_code", "200"),
            ("http.route", "/orders/{id}"),
            ("url.path", path),
            ("url.scheme", "http"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        a.sort();
        a
    };
    assert_eq!(
        got,
        vec![
            span(
                "/orders/1",
                &[
                    ("server.address", "shop.example"),
                    ("url.query", "full=true"),
                    ("user_agent.original", "curl/8")
                ]
            ),
            span("/orders/2", &[]),
            span("/orders/3", &[]),
        ]
    );
}
