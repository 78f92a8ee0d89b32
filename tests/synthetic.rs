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

// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_passing_run_is_one_trace_with_exact_metrics_and_context_on_every_request() {
    let metrics = Metrics::new();
    let ((report, stub), cap) = Harness::new("synthetic-runner")
        .run_async(async {
            let (base, stub) = start_stub().await;
            let mut runner = metrics.runner(checkout(base)).build().expect("config");
            (runner.run_once().await, stub)
        })
        .await;

    assert!(report.is_success(), "{:?}", report.failure);
    assert_eq!(
        outcomes(&report),
        vec![
            ("login".to_owned(), StepOutcome::Success),
            ("create_order".to_owned(), StepOutcome::Success),
            ("pay".to_owned(), StepOutcome::Success),
            ("confirm".to_owned(), StepOutcome::Success),
        ]
    );

    // One trace: the root and a child per step, nothing else.
    assert_eq!(cap.spans.len(), 5);
    let (root, steps) = run_spans(&cap, &report);
    assert_eq!(root.name, "synthetic checkout");
    assert_eq!(span_attr(root, "flow").as_deref(), Some("checkout"));
    assert_eq!(span_attr(root, "region").as_deref(), Some("eu-west-1"));
    assert_eq!(
        span_attr(root, "synthetic.outcome").as_deref(),
        Some("success")
    );
    assert_eq!(root.status, Status::Ok);
    assert_eq!(names(&steps), ["login", "create_order", "pay", "confirm"]);
    for s in &steps {
        assert_eq!(s.status, Status::Ok, "{}", s.name);
        assert_eq!(span_attr(s, "step").as_deref(), Some(&*s.name));
    }

    // Every request carried the step's traceparent and baggage synthetic=true.
    assert_eq!(*stub.violations.lock().expect("lock"), Vec::<String>::new());
    let trace_id = report.trace_id.clone().expect("trace id");
    let expected: Vec<Seen> = [
        "POST /login",
        "POST /orders",
        "POST /pay",
        "GET /orders/{id}",
    ]
    .iter()
    .zip(&steps)
    .map(|(route, step)| Seen {
        route: (*route).to_owned(),
        traceparent: Some(format!("00-{trace_id}-{}-03", step.span_context.span_id())),
        baggage: Some("synthetic=true".to_owned()),
    })
    .collect();
    assert_eq!(stub.seen(), expected);

    // Metric points with exact attribute sets.
    let mut want = Vec::new();
    for step in ["confirm", "create_order", "login", "pay"] {
        want.push(step_point("synthetic.check.duration", step, None, 1.0));
    }
    want.push(success_point(1.0));
    for step in ["confirm", "create_order", "login", "pay"] {
        want.push(step_point("synthetic.checks", step, Some("success"), 1.0));
    }
    assert_eq!(metrics.points(), sorted(want));

    // The run's log line is in its trace and marked synthetic.
    let lines = cap.events("synthetic_run_succeeded");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["trace_id"], trace_id.as_str());
    assert_eq!(lines[0]["synthetic"], true);
    assert_eq!(lines[0]["flow"], "checkout");
    assert_eq!(lines[0]["region"], "eu-west-1");
}

#[tokio::test]
async fn the_service_under_check_joins_the_run_trace_and_marks_its_telemetry_synthetic() {
    let metrics = Metrics::new();
    let (report, cap) = Harness::new("payments")
        .configure(|b| b.mark_synthetic_metrics(true))
        .run_async(async {
            let (base, _stub) = start_stub_with(true).await;
            let mut runner = metrics.runner(checkout(base)).build().expect("config");
            runner.run_once().await
        })
        .await;
    assert!(report.is_success(), "{:?}", report.failure);
    let trace_id = report.trace_id.clone().expect("trace id");
    // Root, 4 steps, and under each step the service's server span.
    assert_eq!(cap.spans.len(), 9);
    let mut steps: Vec<&SpanData> = cap
        .spans
        .iter()
        .filter(|s| span_attr(s, "step").is_some())
        .collect();
    steps.sort_by_key(|s| s.start_time);
    let mut servers: Vec<&SpanData> = cap
        .spans
        .iter()
        .filter(|s| s.span_kind == observe::opentelemetry::trace::SpanKind::Server)
        .collect();
    servers.sort_by_key(|s| s.start_time);
    assert_eq!(servers.len(), 4);
    for (server, step) in servers.iter().zip(&steps) {
        assert_eq!(server.span_context.trace_id().to_string(), trace_id);
        assert_eq!(server.parent_span_id, step.span_context.span_id());
        assert!(server.parent_span_is_remote);
        assert_eq!(span_attr(server, "synthetic").as_deref(), Some("true"));
    }
    // The service's request metrics carry synthetic="true".
    let marked: Vec<Option<&String>> = cap
        .metric("http.server.request.duration")
        .iter()
        .map(|p| p.attributes.get("synthetic"))
        .collect();
    assert_eq!(marked.len(), 4);
    assert!(
        marked.iter().all(|m| m.map(String::as_str) == Some("true")),
        "{marked:?}"
    );
}

#[tokio::test]
async fn a_failing_step_stops_the_run_and_names_the_assertion_and_value() {
    let metrics = Metrics::new();
    let ((report, stub), cap) = Harness::new("synthetic-runner")
        .run_async(async {
            let (base, stub) = start_stub().await;
            stub.set_mode(PROCESSING);
            let mut runner = metrics.runner(checkout(base)).build().expect("config");
            (runner.run_once().await, stub)
        })
        .await;

    let failure = report.failure.clone().expect("failed");
    assert_eq!(
        failure.to_string(),
        r#"pay: expected status "success", got "processing""#
    );
    assert_eq!(failure.outcome, StepOutcome::Failure);
    assert_eq!(
        failure.assertion,
        Some(Assertion {
            what: "status".to_owned(),
            expected: Some(r#""success""#.to_owned()),
            got: r#""processing""#.to_owned(),
        })
    );
    assert_eq!(
        outcomes(&report),
        vec![
            ("login".to_owned(), StepOutcome::Success),
            ("create_order".to_owned(), StepOutcome::Success),
            ("pay".to_owned(), StepOutcome::Failure),
        ]
    );
    // confirm never ran: no request, no span, no metric.
    let routes: Vec<String> = stub.seen().into_iter().map(|s| s.route).collect();
    assert_eq!(routes, ["POST /login", "POST /orders", "POST /pay"]);
    let (root, steps) = run_spans(&cap, &report);
    assert_eq!(names(&steps), ["login", "create_order", "pay"]);
    assert_eq!(
        steps[2].status,
        Status::error(r#"pay: expected status "success", got "processing""#)
    );
    assert_eq!(
        root.status,
        Status::error(r#"pay: expected status "success", got "processing""#)
    );
    assert_eq!(
        span_attr(root, "synthetic.outcome").as_deref(),
        Some("failure")
    );

    let mut want = Vec::new();
    for step in ["create_order", "login", "pay"] {
        want.push(step_point("synthetic.check.duration", step, None, 1.0));
    }
    want.push(success_point(0.0));
    want.push(step_point(
        "synthetic.checks",
        "create_order",
        Some("success"),
        1.0,
    ));
    want.push(step_point(
        "synthetic.checks",
        "login",
        Some("success"),
        1.0,
    ));
    want.push(step_point("synthetic.checks", "pay", Some("failure"), 1.0));
    assert_eq!(metrics.points(), sorted(want));

    let lines = cap.events("synthetic_run_failed");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["level"], "ERROR");
    assert_eq!(lines[0]["step"], "pay");
    assert_eq!(lines[0]["outcome"], "failure");
    assert_eq!(
        lines[0]["reason"],
        r#"expected status "success", got "processing""#
    );
    assert_eq!(lines[0]["synthetic"], true);
    assert_eq!(
        lines[0]["trace_id"],
        report.trace_id.as_deref().expect("trace")
    );
}

#[tokio::test]
async fn panicking_and_hanging_steps_are_failed_runs_and_the_runner_keeps_its_schedule() {
    const INTERVAL: Duration = Duration::from_millis(700);
    let metrics = Metrics::new();
    let ((reports, state, begin), cap) = Harness::new("synthetic-runner")
        .run_async(async {
            let (base, stub) = start_stub().await;
            let attempt = Arc::new(AtomicU32::new(0));
            // Run 1 panics in "pay"; run 2 hangs in "pay" (the gateway never
            // answers); run 3 passes.
            let flow = Flow::new("checkout", move |ctx| {
                let (base, stub) = (base.clone(), Arc::clone(&stub));
                let n = attempt.fetch_add(1, Ordering::SeqCst);
                async move {
                    ctx.step("login", async { Ok(()) }).await?;
                    ctx.step("pay", async {
                        match n {
                            0 => panic!("card reader exploded"),
                            1 => stub.set_mode(HANGING),
                            _ => stub.set_mode(HEALTHY),
                        }
                        let res = ctx
                            .http()
                            .post(format!("{base}/pay"))
                            .json(&json!({"order_id": "ord_1"}))
                            .send()
                            .await?;
                        res.expect_json("status", "success")?;
                        Ok(())
                    })
                    .await?;
                    Ok(())
                }
            });
            let reports = Arc::new(Mutex::new(Vec::new()));
            let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
            let mut done_tx = Some(done_tx);
            let sink = Arc::clone(&reports);
            let mut runner = metrics
                .runner(flow)
                .interval(INTERVAL)
                .step_timeout(Duration::from_millis(250))
                .on_run(move |r| {
                    let mut v = sink.lock().expect("lock");
                    v.push(r.clone());
                    if v.len() == 3 {
                        if let Some(tx) = done_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                })
                .build()
                .expect("config");
            let begin = std::time::SystemTime::now();
            runner
                .run_until(async {
                    let _ = done_rx.await;
                })
                .await;
            let reports = reports.lock().expect("lock").clone();
            (reports, runner.state(), begin)
        })
        .await;

    let failures: Vec<Option<String>> = reports
        .iter()
        .map(|r| r.failure.as_ref().map(ToString::to_string))
        .collect();
    assert_eq!(
        failures,
        [
            Some("pay: panicked: card reader exploded".to_owned()),
            Some("pay: timed out after 0.250 s".to_owned()),
            None,
        ]
    );
    assert_eq!(
        reports
            .iter()
            .map(|r| r.steps.last().map(|s| s.outcome))
            .collect::<Vec<_>>(),
        [
            Some(StepOutcome::Panic),
            Some(StepOutcome::Timeout),
            Some(StepOutcome::Success)
        ]
    );
    // On schedule: run k starts at its tick, k intervals after the runner
    // started (never early; late only by scheduling delay on a loaded machine).
    for (k, r) in (0u32..).zip(&reports) {
        let offset = r.started.duration_since(begin).expect("after begin");
        let tick = INTERVAL * k;
        assert!(
            offset + Duration::from_millis(5) >= tick && offset < tick + Duration::from_millis(400),
            "run {k} started {offset:?} after begin, tick at {tick:?}"
        );
    }
    assert_eq!(state.runs, 3);
    assert_eq!(state.failed_runs, 2);
    assert_eq!(state.consecutive_failures, 0);
    assert!(
        !state.alert_firing,
        "the passing run resolved it: {state:?}"
    );

    // Each run is its own trace; the failed step spans say why.
    for (report, status) in reports.iter().zip([
        Status::error("pay: panicked: card reader exploded"),
        Status::error("pay: timed out after 0.250 s"),
        Status::Ok,
    ]) {
        let (root, steps) = run_spans(&cap, report);
        assert_eq!(names(&steps), ["login", "pay"]);
        assert_eq!(steps[1].status, status);
        assert_eq!(root.status, status);
    }
    let checks: Vec<Point> = metrics
        .points()
        .into_iter()
        .filter(|p| p.0 == "synthetic.checks")
        .collect();
    assert_eq!(
        checks,
        sorted(vec![
            step_point("synthetic.checks", "login", Some("success"), 3.0),
            step_point("synthetic.checks", "pay", Some("panic"), 1.0),
            step_point("synthetic.checks", "pay", Some("success"), 1.0),
            step_point("synthetic.checks", "pay", Some("timeout"), 1.0),
        ])
    );
}

#[tokio::test]
async fn failures_outside_steps_are_failed_runs_counted_under_flow() {
    let metrics = Metrics::new();
    let calls = Arc::new(AtomicU32::new(0));
    let c = Arc::clone(&calls);
    let flow = Flow::new("checkout", move |ctx| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            ctx.step("login", async { Ok(()) }).await?;
            match n {
                0 => panic!("between steps"),
                1 => Err(observe::synthetic::StepError::other("no sentinel SKU configured").into()),
                _ => {
                    // Hangs outside any step: the run deadline ends it.
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(())
                }
            }
        }
    });
    let mut runner = metrics
        .runner(flow)
        .run_timeout(Duration::from_millis(300))
        .build()
        .expect("config");
    let mut failures = Vec::new();
    for _ in 0..3 {
        let r = runner.run_once().await;
        let f = r.failure.expect("failed");
        failures.push((f.to_string(), f.outcome));
    }
    assert_eq!(
        failures,
        [
            (
                "_flow: panicked: between steps".to_owned(),
                StepOutcome::Panic
            ),
            (
                "_flow: no sentinel SKU configured".to_owned(),
                StepOutcome::Failure
            ),
            (
                "_flow: run timed out after 0.300 s".to_owned(),
                StepOutcome::Timeout
            ),
        ]
    );
    assert_eq!(runner.state().consecutive_failures, 3);
    let flow_checks: Vec<Point> = metrics
        .points()
        .into_iter()
        .filter(|p| p.0 == "synthetic.checks" && p.1["step"] == "_flow")
        .collect();
    assert_eq!(
        flow_checks,
        sorted(vec![
            step_point("synthetic.checks", "_flow", Some("failure"), 1.0),
            step_point("synthetic.checks", "_flow", Some("panic"), 1.0),
            step_point("synthetic.checks", "_flow", Some("timeout"), 1.0),
        ])
    );
}

#[tokio::test]
async fn requests_go_through_a_custom_connector() {
    use hyper_util::client::legacy::connect::HttpConnector;
    use tower::Service as _;
    let (base, stub) = start_stub().await;
    let connects = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&connects);
    let http = HttpConnector::new();
    // What an HTTPS connector (hyper-rustls) would plug into.
    let connector = tower::service_fn(move |uri: http::Uri| {
        counted.fetch_add(1, Ordering::SeqCst);
        let mut http = http.clone();
        Box::pin(async move { http.call(uri).await })
    });
    let mut runner = Runner::builder(checkout(base))
        .connector(connector)
        .build()
        .expect("config");
    for _ in 0..2 {
        let report = runner.run_once().await;
        assert!(report.is_success(), "{:?}", report.failure);
    }
    assert_eq!(stub.seen().len(), 8);
    // One connection per run, kept alive across its steps; a run shares no
    // connection with the previous one (like a new user).
    assert_eq!(connects.load(Ordering::SeqCst), 2);
}

#[test]
fn runner_and_flow_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let mut runner = Runner::builder(checkout("http://127.0.0.1:9".to_owned()))
        .build()
        .expect("config");
    let fut = runner.run_forever();
    assert_send(&fut);
}

#[test]
fn invalid_settings_are_typed_errors() {
    use observe::synthetic::ConfigError;
    let flow = || Flow::new("checkout", |_ctx| async { Ok(()) });
    assert_eq!(
        Runner::builder(flow())
            .interval(Duration::ZERO)
            .build()
            .err(),
        Some(ConfigError::ZeroDuration { field: "interval" })
    );
    assert_eq!(
        Runner::builder(flow()).alert_after(0).build().err(),
        Some(ConfigError::ZeroAlertAfter)
    );
    assert_eq!(
        Runner::builder(flow()).region("").build().err(),
        Some(ConfigError::InvalidName {
            field: "region",
            value: String::new()
        })
    );
    assert!(matches!(
        Runner::builder(flow())
            .interval(Duration::from_secs(10))
            .jitter(Duration::from_secs(10))
            .build(),
        Err(ConfigError::JitterTooLarge { .. })
    ));
    assert!(matches!(
        Alertmanager::new("not a url"),
        Err(ConfigError::InvalidUrl { .. })
    ));
}

// ---------------------------------------------------------------------------
// Alerting against a real Alertmanager.

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

struct AlertmanagerProcess {
    child: std::process::Child,
    dir: std::path::PathBuf,
    url: String,
}

impl Drop for AlertmanagerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts Alertmanager on 127.0.0.1 with a minimal config and temp storage;
/// `None` (skip) when the binary is missing, unless `CI=true`.
async fn start_alertmanager() -> Option<AlertmanagerProcess> {
    let bin = std::env::var("OBSERVE_ALERTMANAGER").unwrap_or_else(|_| ALERTMANAGER.to_owned());
    if !std::path::Path::new(&bin).exists() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{bin} is missing: apt-get install prometheus-alertmanager");
        }
        eprintln!("skipping: {bin} is missing (apt-get install prometheus-alertmanager)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let dir = std::env::temp_dir().join(format!(
        "observe-synthetic-am-{}-{port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: blackhole\n  group_wait: 1h\nreceivers:\n  - name: blackhole\n",
    )
    .expect("config");
    let child = std::process::Command::new(&bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start alertmanager");
    let am = AlertmanagerProcess {
        child,
        dir,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..200 {
        if let Ok((200, _)) = http_get(&format!("{}/-/ready", am.url)).await {
            return Some(am);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("alertmanager did not become ready on {}", am.url);
}

async fn http_get(url: &str) -> Result<(u16, Vec<u8>), String> {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<axum::body::Bytes>>();
    let uri: http::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let res = client.get(uri).await.map_err(|e| format!("{e}"))?;
    let status = res.status().as_u16();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{e}"))?
        .to_bytes();
    Ok((status, body.to_vec()))
}

/// Alerts named SyntheticCheckFailed that Alertmanager holds as active.
async fn active_alerts(am: &AlertmanagerProcess) -> Vec<Value> {
    let (status, body) = http_get(&format!("{}/api/v2/alerts", am.url))
        .await
        .expect("GET /api/v2/alerts");
    assert_eq!(status, 200);
    let all: Vec<Value> = serde_json::from_slice(&body).expect("json");
    all.into_iter()
        .filter(|a| a["labels"]["alertname"] == "SyntheticCheckFailed")
        .collect()
}

#[tokio::test]
async fn alert_fires_after_n_consecutive_failures_and_resolves_on_recovery_in_alertmanager() {
    let Some(am) = start_alertmanager().await else {
        return;
    };
    let metrics = Metrics::new();
    let ((first, second, third, firing, after_first, after_recovery, stub), _cap) =
        Harness::new("synthetic-runner")
            .run_async(async {
                let (base, stub) = start_stub().await;
                let mut runner = metrics
                    .runner(checkout(base.clone()))
                    .alert_after(2)
                    .alert_sink(Alertmanager::new(&am.url).expect("url"))
                    .alert_sink(Webhook::new(&format!("{base}/hook")).expect("url"))
                    .build()
                    .expect("config");
                stub.set_mode(PROCESSING);
                let first = runner.run_once().await;
                let after_first = (runner.state().alert_firing, active_alerts(&am).await);
                let second = runner.run_once().await;
                assert!(runner.state().alert_firing);
                let firing = active_alerts(&am).await;
                stub.set_mode(HEALTHY);
                let third = runner.run_once().await;
                let after_recovery = (runner.state().alert_firing, active_alerts(&am).await);
                (
                    first,
                    second,
                    third,
                    firing,
                    after_first,
                    after_recovery,
                    stub,
                )
            })
            .await;

    assert!(!first.is_success());
    assert_eq!(after_first, (false, Vec::new()), "not after 1 failure");
    assert!(!second.is_success());
    assert_eq!(firing.len(), 1, "{firing:?}");
    let alert = &firing[0];
    assert_eq!(
        alert["labels"],
        json!({
            "alertname": "SyntheticCheckFailed",
            "flow": "checkout",
            "region": "eu-west-1",
            "severity": "critical",
            "reason": "failing",
        })
    );
    assert_eq!(alert["status"]["state"], "active");
    let trace_id = second.trace_id.clone().expect("trace");
    assert_eq!(
        alert["annotations"],
        json!({
            "summary": "Synthetic flow checkout is failing in eu-west-1",
            "description": format!(
                "2 consecutive failed runs of the synthetic flow checkout from eu-west-1 (alerting after 2). \
                 Last failure at step pay: expected status \"success\", got \"processing\" (trace {trace_id})"
            ),
            "step": "pay",
            "failure": "expected status \"success\", got \"processing\"",
            "consecutive_failures": "2",
            "trace_id": trace_id,
        })
    );
    assert!(third.is_success());
    assert_eq!(after_recovery, (false, Vec::new()), "resolved");

    // The webhook got the same alert, firing then resolved.
    let hooks = stub.hooks.lock().expect("lock").clone();
    let statuses: Vec<&Value> = hooks.iter().map(|h| &h["alerts"][0]["status"]).collect();
    assert_eq!(statuses, [&json!("firing"), &json!("resolved")]);
    assert_eq!(hooks[0]["alerts"][0]["labels"], alert["labels"]);
    assert_eq!(
        hooks[0]["alerts"][0]["startsAt"], hooks[1]["alerts"][0]["startsAt"],
        "the resolution names the same alert"
    );
}
