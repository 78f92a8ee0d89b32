//! `observe::synthetic` end to end: a checkout flow against a payments stub
//! (axum, on 127.0.0.1) that checks every request's trace context, the span
//! tree and metric points of a run, failures that stop a run, panics and
//! hangs that do not stop the runner, and alerting through a real
//! Alertmanager (`/usr/bin/prometheus-alertmanager`, Debian package
//! `prometheus-alertmanager`; skipped when missing unless `CI=true`).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use observe::metrics::SnapshotReader;
use observe::opentelemetry::trace::{SpanId, Status};
use observe::opentelemetry_sdk::metrics::SdkMeterProvider;
use observe::opentelemetry_sdk::trace::SpanData;
use observe::synthetic::{
    Alertmanager, Assertion, Flow, RunReport, Runner, RunnerBuilder, Step, StepOutcome, Webhook,
};
use observe::testing::{Capture, Harness, MetricValue};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------------------
// The payments stub.

const HEALTHY: u8 = 0;
/// `/pay` answers 200 `{"status":"processing"}`: the gateway is timing out.
const PROCESSING: u8 = 1;
/// `/pay` never answers.
const HANGING: u8 = 2;

/// One request as the stub saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    route: String,
    traceparent: Option<String>,
    baggage: Option<String>,
}

#[derive(Default)]
struct Stub {
    mode: AtomicU8,
    seen: Mutex<Vec<Seen>>,
    /// Violations found by the stub itself (bad or missing context).
    violations: Mutex<Vec<String>>,
    hooks: Mutex<Vec<Value>>,
}

impl Stub {
    fn see(&self, route: &str, headers: &HeaderMap) {
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let seen = Seen {
            route: route.to_owned(),
            traceparent: h("traceparent"),
            baggage: h("baggage"),
        };
        let tp_ok = seen.traceparent.as_deref().is_some_and(|tp| {
            let parts: Vec<&str> = tp.split('-').collect();
            parts.len() == 4
                && parts[0] == "00"
                && parts[1].len() == 32
                && parts[2].len() == 16
                && parts[1] != "0".repeat(32)
        });
        if !tp_ok {
            self.violations
                .lock()
                .expect("lock")
                .push(format!("{route}: bad traceparent {:?}", seen.traceparent));
        }
        if seen.baggage.as_deref() != Some("synthetic=true") {
            self.violations
                .lock()
                .expect("lock")
                .push(format!("{route}: bad baggage {:?}", seen.baggage));
        }
        self.seen.lock().expect("lock").push(seen);
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    fn set_mode(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

async fn start_stub() -> (String, Arc<Stub>) {
    start_stub_with(false).await
}

/// The stub; with `observed`, behind observe's server layer, recording into
/// the current dispatcher (the harness's).
async fn start_stub_with(observed: bool) -> (String, Arc<Stub>) {
    let stub = Arc::new(Stub::default());
    let app = Router::new()
        .route(
            "/login",
            post(
                |State(s): State<Arc<Stub>>, h: HeaderMap, Json(body): Json<Value>| async move {
                    s.see("POST /login", &h);
                    assert_eq!(body["username"], "synthetic-user");
                    Json(json!({"session": "tok_synthetic"}))
                },
            ),
        )
        .route(
            "/orders",
            post(
                |State(s): State<Arc<Stub>>, h: HeaderMap, Json(body): Json<Value>| async move {
                    s.see("POST /orders", &h);
                    assert_eq!(body, json!({"sku": "SYNTHETIC-SKU", "qty": 1}));
                    assert_eq!(
                        h.get("authorization").and_then(|v| v.to_str().ok()),
                        Some("Bearer tok_synthetic")
                    );
                    Json(json!({"id": "ord_1", "status": "created"}))
                },
            ),
        )
        .route(
            "/pay",
            post(
                |State(s): State<Arc<Stub>>, h: HeaderMap, Json(body): Json<Value>| async move {
                    s.see("POST /pay", &h);
                    assert_eq!(body["order_id"], "ord_1");
                    match s.mode.load(Ordering::SeqCst) {
                        PROCESSING => Json(json!({"status": "processing"})),
                        HANGING => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            Json(json!({"status": "success"}))
                        }
                        _ => Json(json!({"status": "success"})),
                    }
                },
            ),
        )
        .route(
            "/orders/{id}",
            get(
                |State(s): State<Arc<Stub>>, h: HeaderMap, Path(id): Path<String>| async move {
                    s.see("GET /orders/{id}", &h);
                    Json(json!({"id": id, "status": "paid"}))
                },
            ),
        )
        .route(
            "/hook",
            post(
                |State(s): State<Arc<Stub>>, Json(body): Json<Value>| async move {
                    s.hooks.lock().expect("lock").push(body);
                    "ok"
                },
            ),
        )
        .with_state(Arc::clone(&stub));
    let app = if observed {
        use observe::tracing::instrument::WithSubscriber;
        let dispatch = observe::tracing::dispatcher::get_default(Clone::clone);
        app.layer(observe::tower::ObserveLayer::new())
            .layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    next.run(req).with_subscriber(dispatch.clone())
                },
            ))
    } else {
        app
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, stub)
}

// ---------------------------------------------------------------------------
// The flow under test: the seed's synthetic_checkout_flow.

fn checkout(base: String) -> Flow {
    Flow::new("checkout", move |ctx| {
        let base = base.clone();
        async move {
            let token = ctx
                .step(
                    Step::new("login").objective(Duration::from_secs(2)),
                    async {
                        let res = ctx
                            .http()
                            .post(format!("{base}/login"))
                            .json(&json!({"username": "synthetic-user", "password": "s3cret"}))
                            .send()
                            .await?;
                        res.expect_status(200)?;
                        Ok(res
                            .json_field("session")?
                            .as_str()
                            .unwrap_or_default()
                            .to_owned())
                    },
                )
                .await?;
            let order_id = ctx
                .step("create_order", async {
                    let res = ctx
                        .http()
                        .post(format!("{base}/orders"))
                        .bearer_auth(&token)
                        .json(&json!({"sku": "SYNTHETIC-SKU", "qty": 1}))
                        .send()
                        .await?;
                    res.expect_status(200)?;
                    Ok(res
                        .json_field("id")?
                        .as_str()
                        .unwrap_or_default()
                        .to_owned())
                })
                .await?;
            ctx.step("pay", async {
                let res = ctx
                    .http()
                    .post(format!("{base}/pay"))
                    .bearer_auth(&token)
                    .json(&json!({"order_id": order_id, "amount_cents": 4999, "card": "4242424242424242"}))
                    .send()
                    .await?;
                res.expect_status(200)?;
                res.expect_json("status", "success")?;
                Ok(())
            })
            .await?;
            ctx.step("confirm", async {
                let res = ctx
                    .http()
                    .get(format!("{base}/orders/{order_id}"))
                    .bearer_auth(&token)
                    .send()
                    .await?;
                res.expect_status(200)?;
                res.expect_json("status", "paid")?;
                Ok(())
            })
            .await?;
            Ok(())
        }
    })
}

// ---------------------------------------------------------------------------
// Metrics: the runner records on the meter it is given; read it back.
// (A run cannot reach the harness telemetry's own meter: no core hook yet.)

/// A point: (name, attributes, value); histograms give their count.
type Point = (String, BTreeMap<String, String>, f64);

struct Metrics {
    reader: SnapshotReader,
    provider: SdkMeterProvider,
}

impl Metrics {
    fn new() -> Self {
        let reader = SnapshotReader::new();
        let provider = SdkMeterProvider::builder()
            .with_reader(reader.clone())
            .build();
        Metrics { reader, provider }
    }

    fn runner(&self, flow: Flow) -> RunnerBuilder {
        use observe::opentelemetry::metrics::MeterProvider as _;
        Runner::builder(flow)
            .region("eu-west-1")
            .meter(self.provider.meter("observe"))
    }

    /// The synthetic points, sorted by name and attributes.
    fn points(&self) -> Vec<Point> {
        self.reader
            .points()
            .into_iter()
            .map(|p| {
                let v = match p.value {
                    MetricValue::Sum(v) | MetricValue::Gauge(v) => v,
                    MetricValue::Histogram { count, .. } => count as f64,
                };
                (p.name, p.attributes, v)
            })
            .collect()
    }
}

fn sorted(mut points: Vec<Point>) -> Vec<Point> {
    points.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    points
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn step_point(name: &str, step: &str, outcome: Option<&str>, value: f64) -> Point {
    let mut a = attrs(&[
        ("flow", "checkout"),
        ("step", step),
        ("region", "eu-west-1"),
    ]);
    if let Some(o) = outcome {
        a.insert("outcome".to_owned(), o.to_owned());
    }
    (name.to_owned(), a, value)
}

fn success_point(value: f64) -> Point {
    (
        "synthetic.check.success".to_owned(),
        attrs(&[("flow", "checkout"), ("region", "eu-west-1")]),
        value,
    )
}

// ---------------------------------------------------------------------------
// Spans.

fn span_attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// The spans of one run's trace: (root, steps in start order).
fn run_spans<'a>(cap: &'a Capture, report: &RunReport) -> (&'a SpanData, Vec<&'a SpanData>) {
    let trace_id = report.trace_id.as_deref().expect("trace id");
    let mut spans: Vec<&SpanData> = cap
        .spans
        .iter()
        .filter(|s| s.span_context.trace_id().to_string() == trace_id)
        .collect();
    spans.sort_by_key(|s| s.start_time);
    let root = spans.remove(0);
    assert_eq!(
        root.parent_span_id,
        SpanId::INVALID,
        "the root has no parent"
    );
    for s in &spans {
        assert_eq!(s.parent_span_id, root.span_context.span_id(), "{}", s.name);
    }
    (root, spans)
}

fn names(spans: &[&SpanData]) -> Vec<String> {
    spans.iter().map(|s| s.name.to_string()).collect()
}

fn outcomes(report: &RunReport) -> Vec<(String, StepOutcome)> {
    report
        .steps
        .iter()
        .map(|s| (s.name.to_string(), s.outcome))
        .collect()
}

mod alertmanager;
mod runs;
