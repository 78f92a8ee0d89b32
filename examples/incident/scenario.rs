//! The seed incident, replayed in one process: a payments service that lies,
//! a bank gateway that starts answering 504, users who retry, a synthetic
//! checkout, and the alert expressions observe generates, evaluated on the
//! service's own metrics (or by a real Prometheus when one is available).
//!
//! Shared by `examples/incident/main.rs` (the 90-second demo) and
//! `tests/incident.rs` (the same scenario with short timings).

#![allow(dead_code)]

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use observe::metrics::{MetricPoint, MetricValue, SnapshotReader};
use observe::observed;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) type BoxError = Box<dyn Error + Send + Sync>;

type HttpClient =
    Client<hyper_util::client::legacy::connect::HttpConnector, Full<axum::body::Bytes>>;

/// Timings of one run (the real incident scaled down).
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// When the bank starts failing, from the start.
    pub(crate) fault_after: Duration,
    /// Whole run.
    pub(crate) duration: Duration,
    /// How long the failing bank waits before its 504 (30 s in the incident).
    pub(crate) bank_delay: Duration,
    /// Concurrent users.
    pub(crate) users: usize,
    /// Pause between a user's payments.
    pub(crate) think_time: Duration,
    /// Synthetic checkout interval.
    pub(crate) synthetic_interval: Duration,
    /// Alert rate window (5m in production) and `for` (2m).
    pub(crate) window: Duration,
    /// How long an alert expression must hold before it fires.
    pub(crate) for_: Duration,
    /// Evaluation / scrape interval.
    pub(crate) tick: Duration,
}

impl Config {
    /// The 90-second demo.
    pub(crate) fn demo() -> Self {
        Config {
            fault_after: Duration::from_secs(30),
            duration: Duration::from_secs(90),
            bank_delay: Duration::from_millis(300),
            users: 8,
            think_time: Duration::from_millis(150),
            synthetic_interval: Duration::from_secs(3),
            window: Duration::from_secs(10),
            for_: Duration::from_secs(5),
            tick: Duration::from_secs(1),
        }
    }

    /// The integration test's timings.
    pub(crate) fn short() -> Self {
        Config {
            fault_after: Duration::from_secs(4),
            duration: Duration::from_secs(14),
            bank_delay: Duration::from_millis(50),
            users: 4,
            think_time: Duration::from_millis(50),
            synthetic_interval: Duration::from_secs(1),
            window: Duration::from_secs(3),
            for_: Duration::from_secs(1),
            tick: Duration::from_millis(250),
        }
    }
}

// ----------------------------------------------------------------- the bank

#[derive(Default)]
struct Bank {
    failing: AtomicBool,
    delay_ms: AtomicU64,
}

async fn bank_charge(State(bank): State<Arc<Bank>>) -> (http::StatusCode, &'static str) {
    if bank.failing.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(bank.delay_ms.load(Ordering::Relaxed))).await;
        (http::StatusCode::GATEWAY_TIMEOUT, "upstream timeout")
    } else {
        tokio::time::sleep(Duration::from_millis(5)).await;
        (http::StatusCode::OK, r#"{"approved":true}"#)
    }
}

// ------------------------------------------------------- the payments service

#[derive(Clone, Debug, Serialize)]
struct Order {
    id: String,
    status: &'static str,
    /// What support looks up: the trace of the last payment attempt.
    payment_trace_id: Option<String>,
}

#[derive(Clone)]
struct App {
    bank_url: String,
    client: HttpClient,
    orders: Arc<Mutex<HashMap<String, Order>>>,
    next_id: Arc<AtomicU64>,
}

#[derive(Debug)]
enum BankError {
    Status(u16),
    Transport(String),
    Timeout,
}

impl std::fmt::Display for BankError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BankError::Status(s) => write!(f, "bank answered {s}"),
            BankError::Transport(e) => write!(f, "bank unreachable: {e}"),
            BankError::Timeout => f.write_str("bank timed out"),
        }
    }
}

impl observe::ErrorType for BankError {
    fn error_type(&self) -> Cow<'static, str> {
        match self {
            BankError::Status(s) => Cow::Owned(s.to_string()),
            BankError::Transport(_) => Cow::Borrowed("transport_error"),
            BankError::Timeout => Cow::Borrowed("timeout"),
        }
    }

    fn is_timeout(&self) -> bool {
        matches!(self, BankError::Timeout)
    }
}

impl From<tokio::time::error::Elapsed> for BankError {
    fn from(_: tokio::time::error::Elapsed) -> Self {
        BankError::Timeout
    }
}

/// The bank call: a client span `gateway bank`, gateway metrics, and the
/// failure recorded in the enclosing request even if the caller swallows it.
#[observed(gateway = "bank", timeout = "2s")]
async fn charge(app: &App, order_id: &str, amount_cents: u64) -> Result<(), BankError> {
    let body = serde_json::json!({"order_id": order_id, "amount_cents": amount_cents}).to_string();
    let req = http::Request::post(format!("{}/charge", app.bank_url))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::from(body))
        .map_err(|e| BankError::Transport(e.to_string()))?;
    let res = app
        .client
        .request(req)
        .await
        .map_err(|e| BankError::Transport(e.to_string()))?;
    let status = res.status();
    let _ = res.into_body().collect().await;
    if status.is_success() {
        Ok(())
    } else {
        Err(BankError::Status(status.as_u16()))
    }
}

#[derive(Deserialize)]
struct PayRequest {
    order_id: String,
    amount_cents: u64,
}

/// What the real handler did: catch the gateway failure, log it, answer 200
/// `{"status":"processing"}`. observe still sees the masked failure.
#[observed(fields(order_id = %req.order_id))]
async fn pay(State(app): State<App>, Json(req): Json<PayRequest>) -> Json<serde_json::Value> {
    let trace_id = observe::current_trace_id();
    let result = charge(&app, &req.order_id, req.amount_cents).await;
    let status = if result.is_ok() { "paid" } else { "processing" };
    if let Ok(mut orders) = app.orders.lock() {
        if let Some(o) = orders.get_mut(&req.order_id) {
            o.status = status;
            o.payment_trace_id = trace_id;
        }
    }
    match result {
        Ok(()) => {
            observe::info!("payment_succeeded", amount_cents = req.amount_cents);
            Json(serde_json::json!({"status": "success"}))
        }
        Err(e) => {
            observe::error!(
                "payment_failed",
                gateway = "bank",
                amount_cents = req.amount_cents,
                error = %e,
                "payment failed; answering processing"
            );
            Json(serde_json::json!({"status": "processing"}))
        }
    }
}

#[observed]
async fn create_order(State(app): State<App>) -> Json<serde_json::Value> {
    let id = format!("ord_{}", app.next_id.fetch_add(1, Ordering::Relaxed));
    if let Ok(mut orders) = app.orders.lock() {
        orders.insert(
            id.clone(),
            Order {
                id: id.clone(),
                status: "created",
                payment_trace_id: None,
            },
        );
    }
    observe::info!("order_created", order_id = %id);
    Json(serde_json::json!({"id": id}))
}

async fn get_order(State(app): State<App>, Path(id): Path<String>) -> Json<serde_json::Value> {
    let order = app.orders.lock().ok().and_then(|o| o.get(&id).cloned());
    match order {
        Some(o) => Json(serde_json::json!({"id": o.id, "status": o.status})),
        None => Json(serde_json::json!({"error": "not_found"})),
    }
}

async fn login() -> Json<serde_json::Value> {
    Json(serde_json::json!({"session": "synthetic-session"}))
}

// ------------------------------------------------------------- the timeline

/// A traced span read back from the export.
#[derive(Clone, Debug)]
pub(crate) struct SpanRow {
    pub(crate) name: String,
    pub(crate) span_id: String,
    pub(crate) parent_span_id: String,
    pub(crate) start_ns: u64,
    pub(crate) end_ns: u64,
    pub(crate) error: Option<String>,
    pub(crate) attributes: BTreeMap<String, String>,
}

/// One affected order, from order id to the spans of its payment.
#[derive(Clone, Debug)]
pub(crate) struct TracedOrder {
    pub(crate) order_id: String,
    pub(crate) trace_id: String,
    pub(crate) spans: Vec<SpanRow>,
}

/// What happened, in seconds since the start.
#[derive(Clone, Debug, Default)]
pub(crate) struct Timeline {
    pub(crate) fault_at: f64,
    pub(crate) first_synthetic_failure: Option<f64>,
    pub(crate) gateway_alert: Option<f64>,
    pub(crate) error_ratio_alert: Option<f64>,
    pub(crate) alerts_from_prometheus: bool,
    pub(crate) requests: u64,
    pub(crate) status_code_errors: u64,
    pub(crate) observe_errors: u64,
    pub(crate) masked_failures: u64,
    pub(crate) gateway_failure_ratio_peak: f64,
    pub(crate) traced_order: Option<TracedOrder>,
}

/// Counters read from the service's own metrics at one instant.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    at: f64,
    gateway_total: f64,
    gateway_failed: f64,
    requests: f64,
    errors: f64,
    status_errors: f64,
    masked: f64,
    synthetic_ok: Option<f64>,
}

fn sample(points: &[MetricPoint], at: f64) -> Sample {
    let mut s = Sample {
        at,
        ..Sample::default()
    };
    for p in points {
        match (p.name.as_str(), &p.value) {
            ("external_gateway.requests", MetricValue::Sum(v)) => {
                s.gateway_total += v;
                if p.attributes.get("status").map(String::as_str) != Some("success") {
                    s.gateway_failed += v;
                }
            }
            ("http.server.request.duration", MetricValue::Histogram { count, .. }) => {
                if p.attributes.contains_key("synthetic") {
                    continue;
                }
                let n = *count as f64;
                s.requests += n;
                if p.attributes.contains_key("error.type") {
                    s.errors += n;
                }
                let code: u16 = p
                    .attributes
                    .get("http.response.status_code")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                if code >= 500 {
                    s.status_errors += n;
                }
            }
            ("observe.masked_failures", MetricValue::Sum(v)) => s.masked += v,
            ("synthetic.check.success", MetricValue::Gauge(v)) => {
                s.synthetic_ok = Some(s.synthetic_ok.map_or(*v, |o: f64| o.min(*v)));
            }
            _ => {}
        }
    }
    s
}

/// `for`-style alert state on a ratio over a window, as Prometheus evaluates it.
#[derive(Debug, Default)]
struct AlertState {
    pending_since: Option<f64>,
    fired_at: Option<f64>,
}

impl AlertState {
    fn update(&mut self, now: f64, active: bool, for_: f64) {
        if self.fired_at.is_some() {
            return;
        }
        match (active, self.pending_since) {
            (true, None) => self.pending_since = Some(now),
            (true, Some(since)) if now - since >= for_ => self.fired_at = Some(now),
            (false, _) => self.pending_since = None,
            _ => {}
        }
    }
}

fn ratio(new: f64, old: f64, new_total: f64, old_total: f64) -> Option<f64> {
    let d = new_total - old_total;
    (d > 0.0).then(|| (new - old) / d)
}

// ----------------------------------------------------------------- servers

async fn serve(app: Router) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("server stopped: {e}");
        }
    });
    Ok((addr, handle))
}

/// The payments service as deployed: one layer, `#[observed]` handlers.
fn payments_router(app: App, metrics: Option<Router>) -> Router {
    let router = Router::new()
        .route("/login", post(login))
        .route("/orders", post(create_order))
        .route("/orders/{id}", get(get_order))
        .route("/pay", post(pay))
        .with_state(app)
        .layer(observe::tower::ObserveLayer::new());
    match metrics {
        Some(m) => router.merge(m),
        None => router,
    }
}

async fn post_json(
    client: &HttpClient,
    url: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value, BoxError> {
    let req = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::from(body.to_string()))?;
    let res = client.request(req).await?;
    let bytes = res.into_body().collect().await?.to_bytes();
    Ok(serde_json::from_slice(&bytes)?)
}

/// A user: create an order, pay, retry a "processing" payment up to 3 times.
async fn user(client: HttpClient, base: String, stop: Arc<AtomicBool>, think: Duration) {
    while !stop.load(Ordering::Relaxed) {
        let order = post_json(&client, &format!("{base}/orders"), serde_json::json!({})).await;
        let Some(id) = order
            .ok()
            .and_then(|o| o.get("id").and_then(|v| v.as_str()).map(str::to_owned))
        else {
            tokio::time::sleep(think).await;
            continue;
        };
        for _attempt in 0..4 {
            let reply = post_json(
                &client,
                &format!("{base}/pay"),
                serde_json::json!({"order_id": id, "amount_cents": 4999}),
            )
            .await;
            let paid = reply
                .ok()
                .and_then(|r| {
                    r.get("status")
                        .and_then(|s| s.as_str())
                        .map(|s| s == "success")
                })
                .unwrap_or(false);
            if paid || stop.load(Ordering::Relaxed) {
                break;
            }
            tokio::time::sleep(think).await;
        }
        tokio::time::sleep(think).await;
    }
}

// --------------------------------------------------------- synthetic check

/// The seed's synthetic checkout: login, create an order, pay with the test
/// card, confirm. Its `pay` step asserts `status == "success"`.
fn checkout_flow(base: String) -> observe::synthetic::Flow {
    use observe::synthetic::{Flow, Step};
    Flow::new("checkout", move |ctx| {
        let base = base.clone();
        async move {
            ctx.step(Step::new("login"), async {
                let res = ctx
                    .http()
                    .post(format!("{base}/login"))
                    .json(&serde_json::json!({"username": "synthetic-user"}))
                    .send()
                    .await?;
                res.expect_status(200)?;
                Ok(())
            })
            .await?;
            let order_id = ctx
                .step(Step::new("create_order"), async {
                    let res = ctx
                        .http()
                        .post(format!("{base}/orders"))
                        .json(&serde_json::json!({"sku": "SYNTHETIC-SKU"}))
                        .send()
                        .await?;
                    res.expect_status(200)?;
                    let id = res.json_field("id")?;
                    Ok(id.as_str().unwrap_or_default().to_owned())
                })
                .await?;
            ctx.step(Step::new("pay").objective(Duration::from_secs(2)), async {
                let res = ctx
                    .http()
                    .post(format!("{base}/pay"))
                    .json(&serde_json::json!({"order_id": order_id, "amount_cents": 100}))
                    .send()
                    .await?;
                res.expect_status(200)?;
                res.expect_json("status", "success")?;
                Ok(())
            })
            .await?;
            ctx.step(Step::new("confirm"), async {
                let res = ctx
                    .http()
                    .get(format!("{base}/orders/{order_id}"))
                    .send()
                    .await?;
                res.expect_json("status", "paid")?;
                Ok(())
            })
            .await?;
            Ok(())
        }
    })
}

// ------------------------------------------------------------------- run

/// Reads back one trace's exported spans.
pub(crate) type SpanSource = Arc<dyn Fn(&str) -> Vec<SpanRow> + Send + Sync>;
/// Receives (seconds since start, message).
pub(crate) type Progress = Arc<dyn Fn(f64, &str) + Send + Sync>;

/// What the run needs from its host (the example's `main` or the test).
pub(crate) struct Handles {
    /// Reads the service's metrics (registered with the telemetry).
    pub(crate) snapshot: SnapshotReader,
    /// Mounted on the service at `/metrics`, for a real Prometheus.
    pub(crate) metrics_router: Option<Router>,
    /// Reads back one trace's exported spans.
    pub(crate) spans: SpanSource,
    /// Flushes exported spans before they are read back.
    pub(crate) flush: Arc<dyn Fn() + Send + Sync>,
    /// A Prometheus binary to evaluate the generated rules for real.
    pub(crate) prometheus: Option<std::path::PathBuf>,
    /// Called with (seconds since start, message) as things happen.
    pub(crate) progress: Progress,
}

/// Replays the incident and returns its timeline.
pub(crate) async fn run(cfg: &Config, h: Handles) -> Result<Timeline, BoxError> {
    let start = Instant::now();
    let since = move || start.elapsed().as_secs_f64();
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();

    let bank = Arc::new(Bank::default());
    bank.delay_ms
        .store(cfg.bank_delay.as_millis() as u64, Ordering::Relaxed);
    let bank_router = Router::new()
        .route("/charge", post(bank_charge))
        .with_state(Arc::clone(&bank));
    let (bank_addr, _bank_task) = serve(bank_router).await?;

    let app = App {
        bank_url: format!("http://{bank_addr}"),
        client: client.clone(),
        orders: Arc::new(Mutex::new(HashMap::new())),
        next_id: Arc::new(AtomicU64::new(1)),
    };
    let (pay_addr, _pay_task) =
        serve(payments_router(app.clone(), h.metrics_router.clone())).await?;
    let base = format!("http://{pay_addr}");
    (h.progress)(
        since(),
        &format!("payments service on {base}, bank gateway on http://{bank_addr}"),
    );

    let prom = match &h.prometheus {
        Some(bin) => match prometheus::Prometheus::start(bin, pay_addr, cfg).await {
            Ok(p) => {
                (h.progress)(
                    since(),
                    &format!("Prometheus {} evaluating the generated rules", p.url),
                );
                Some(p)
            }
            Err(e) => {
                (h.progress)(
                    since(),
                    &format!("Prometheus not started ({e}); evaluating the rules in process"),
                );
                None
            }
        },
        None => None,
    };

    // Users who retry.
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..cfg.users {
        tasks.push(tokio::spawn(user(
            client.clone(),
            base.clone(),
            Arc::clone(&stop),
            cfg.think_time,
        )));
    }

    // The synthetic checkout, every few seconds, from its own task.
    let first_synthetic_failure: Arc<Mutex<Option<(f64, String)>>> = Arc::new(Mutex::new(None));
    let sf = Arc::clone(&first_synthetic_failure);
    let progress = Arc::clone(&h.progress);
    let mut runner = observe::synthetic::Runner::builder(checkout_flow(base.clone()))
        .interval(cfg.synthetic_interval)
        .step_timeout(Duration::from_secs(5))
        .region("local")
        .on_run(move |report| {
            if let Some(f) = &report.failure {
                if let Ok(mut first) = sf.lock() {
                    if first.is_none() {
                        let at = since();
                        progress(at, &format!("synthetic checkout FAILED: {f}"));
                        *first = Some((at, f.to_string()));
                    }
                }
            }
        })
        .build()?;
    let synth_stop = Arc::clone(&stop);
    let synth = tokio::spawn(async move {
        runner
            .run_until(async move {
                while !synth_stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
            .await;
    });

    // Evaluate the alert expressions every tick; inject the fault on time.
    let mut samples: Vec<Sample> = Vec::new();
    let mut gateway_alert = AlertState::default();
    let mut error_alert = AlertState::default();
    let mut fault_at = None;
    let mut peak = 0.0f64;
    let window = cfg.window.as_secs_f64();
    let for_ = cfg.for_.as_secs_f64();
    let mut prom_gateway = None;
    let mut prom_error = None;
    while start.elapsed() < cfg.duration {
        tokio::time::sleep(cfg.tick).await;
        let now = since();
        if fault_at.is_none() && start.elapsed() >= cfg.fault_after {
            bank.failing.store(true, Ordering::Relaxed);
            fault_at = Some(now);
            (h.progress)(
                now,
                &format!(
                    "FAULT: the bank gateway now answers 504 after {} ms (30 s in the incident)",
                    cfg.bank_delay.as_millis()
                ),
            );
        }
        let s = sample(&h.snapshot.points(), now);
        let old = samples
            .iter()
            .rev()
            .find(|o| now - o.at >= window)
            .copied()
            .unwrap_or_default();
        samples.push(s);
        let gw = ratio(
            s.gateway_failed,
            old.gateway_failed,
            s.gateway_total,
            old.gateway_total,
        );
        let er = ratio(s.errors, old.errors, s.requests, old.requests);
        if let Some(g) = gw {
            peak = peak.max(g);
        }
        let was_gw = gateway_alert.fired_at.is_some();
        let was_er = error_alert.fired_at.is_some();
        gateway_alert.update(now, gw.is_some_and(|r| r > 0.05), for_);
        error_alert.update(now, er.is_some_and(|r| r > 0.01), for_);
        if !was_gw && gateway_alert.fired_at.is_some() {
            (h.progress)(now, &format!(
                "ALERT ExternalGatewayErrors (in process): gateway failure ratio {:.0}% > 5% for {}s",
                gw.unwrap_or(0.0) * 100.0,
                cfg.for_.as_secs()
            ));
        }
        if !was_er && error_alert.fired_at.is_some() {
            (h.progress)(
                now,
                &format!(
                    "ALERT HighErrorRate (in process): error ratio {:.0}% > 1% for {}s",
                    er.unwrap_or(0.0) * 100.0,
                    cfg.for_.as_secs()
                ),
            );
        }
        if let Some(p) = &prom {
            if let Ok(firing) = p.firing().await {
                if prom_gateway.is_none() && firing.iter().any(|a| a == "ExternalGatewayErrors") {
                    prom_gateway = Some(now);
                    (h.progress)(now, "ALERT ExternalGatewayErrors firing in Prometheus");
                }
                if prom_error.is_none() && firing.iter().any(|a| a == "HighErrorRate") {
                    prom_error = Some(now);
                    (h.progress)(now, "ALERT HighErrorRate firing in Prometheus");
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), synth).await;

    let last = sample(&h.snapshot.points(), since());
    (h.flush)();
    let traced_order = {
        let candidate = app.orders.lock().ok().and_then(|orders| {
            let mut failed: Vec<&Order> = orders
                .values()
                .filter(|o| o.status == "processing" && o.payment_trace_id.is_some())
                .collect();
            failed.sort_by(|a, b| a.id.cmp(&b.id));
            failed
                .first()
                .map(|o| (o.id.clone(), o.payment_trace_id.clone()))
        });
        match candidate {
            Some((order_id, Some(trace_id))) => {
                let spans = (h.spans)(&trace_id);
                Some(TracedOrder {
                    order_id,
                    trace_id,
                    spans,
                })
            }
            _ => None,
        }
    };
    let fault_at = fault_at.unwrap_or(cfg.fault_after.as_secs_f64());
    let first_synthetic_failure = first_synthetic_failure
        .lock()
        .ok()
        .and_then(|f| f.as_ref().map(|(at, _)| *at));
    Ok(Timeline {
        fault_at,
        first_synthetic_failure,
        gateway_alert: prom_gateway.or(gateway_alert.fired_at),
        error_ratio_alert: prom_error.or(error_alert.fired_at),
        alerts_from_prometheus: prom.is_some(),
        requests: last.requests as u64,
        status_code_errors: last.status_errors as u64,
        observe_errors: last.errors as u64,
        masked_failures: last.masked as u64,
        gateway_failure_ratio_peak: peak,
        traced_order,
    })
}

/// A real Prometheus evaluating the generated rules, when its binary exists.
mod prometheus {
    use super::{BoxError, Config};
    use http_body_util::BodyExt;
    use std::net::SocketAddr;
    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    pub(super) struct Prometheus {
        child: Child,
        pub(super) url: String,
        _dir: TempDir,
    }

    /// A directory removed on drop.
    struct TempDir(std::path::PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    impl Drop for Prometheus {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn free_port() -> Result<u16, BoxError> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    }

    /// The payments example's rules, with windows scaled to the demo.
    pub(super) fn rules(cfg: &Config) -> Result<String, BoxError> {
        let spec = observe::alerts::AlertSpec::builder("payment-service")
            .route("/pay")
            .route("/orders")
            .gateway("bank")
            .synthetic_flow("checkout", cfg.synthetic_interval)
            .scrape_interval(cfg.tick)
            .rate_window(cfg.window)
            .runbook_base_url("https://runbooks.example.com/payments")
            .build()?;
        let mut file = spec.prometheus_rules();
        let for_ = format!("{}s", cfg.for_.as_secs().max(1));
        for g in &mut file.groups {
            for r in &mut g.rules {
                if let observe::alerts::Rule::Alerting(a) = r {
                    if a.for_.is_some() {
                        a.for_ = Some(for_.clone());
                    }
                }
            }
        }
        Ok(file.to_yaml())
    }

    impl Prometheus {
        pub(super) async fn start(
            bin: &Path,
            target: SocketAddr,
            cfg: &Config,
        ) -> Result<Prometheus, BoxError> {
            let dir = std::env::temp_dir().join(format!("observe-incident-{}", std::process::id()));
            std::fs::create_dir_all(dir.join("data"))?;
            let dir = TempDir(dir);
            std::fs::write(dir.0.join("rules.yml"), rules(cfg)?)?;
            let tick = format!("{}ms", cfg.tick.as_millis().max(100));
            std::fs::write(
                dir.0.join("prometheus.yml"),
                format!(
                    "global:\n  scrape_interval: {tick}\n  evaluation_interval: {tick}\n\
                     rule_files:\n  - {rules}\n\
                     scrape_configs:\n  - job_name: payment-service\n    static_configs:\n      - targets: ['{target}']\n",
                    rules = dir.0.join("rules.yml").display()
                ),
            )?;
            let port = free_port()?;
            let child = Command::new(bin)
                .arg(format!(
                    "--config.file={}",
                    dir.0.join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.0.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            let p = Prometheus {
                child,
                url: format!("http://127.0.0.1:{port}"),
                _dir: dir,
            };
            for _ in 0..100 {
                if p.get("/-/ready").await.is_ok() {
                    return Ok(p);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err("Prometheus did not become ready in 10 s".into())
        }

        async fn get(&self, path: &str) -> Result<String, BoxError> {
            let client: hyper_util::client::legacy::Client<
                _,
                http_body_util::Empty<axum::body::Bytes>,
            > = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
            let res = client.get(format!("{}{path}", self.url).parse()?).await?;
            if !res.status().is_success() {
                return Err(format!("{path}: {}", res.status()).into());
            }
            let body = res.into_body().collect().await?.to_bytes();
            Ok(String::from_utf8_lossy(&body).into_owned())
        }

        /// Names of the alerts firing now.
        pub(super) async fn firing(&self) -> Result<Vec<String>, BoxError> {
            let body: serde_json::Value = serde_json::from_str(&self.get("/api/v1/alerts").await?)?;
            Ok(body["data"]["alerts"]
                .as_array()
                .map(|alerts| {
                    alerts
                        .iter()
                        .filter(|a| a["state"] == "firing")
                        .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default())
        }
    }
}

/// One trace's spans from an in-memory exporter, as rows.
pub(crate) fn spans_of(
    exporter: &observe::opentelemetry_sdk::trace::InMemorySpanExporter,
    trace_id: &str,
) -> Vec<SpanRow> {
    let nanos = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    };
    exporter
        .get_finished_spans()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.span_context.trace_id().to_string() == trace_id)
        .map(|s| SpanRow {
            name: s.name.to_string(),
            span_id: s.span_context.span_id().to_string(),
            parent_span_id: s.parent_span_id.to_string(),
            start_ns: nanos(s.start_time),
            end_ns: nanos(s.end_time),
            error: match &s.status {
                observe::opentelemetry::trace::Status::Error { description } => Some(
                    s.attributes
                        .iter()
                        .find(|kv| kv.key.as_str() == "error.type")
                        .map(|kv| kv.value.to_string())
                        .unwrap_or_else(|| description.to_string()),
                ),
                _ => None,
            },
            attributes: s
                .attributes
                .iter()
                .map(|kv| (kv.key.as_str().to_owned(), kv.value.to_string()))
                .collect(),
        })
        .collect()
}

/// One trace's spans read back from observe's OTLP-JSON export files.
pub(crate) fn spans_from_files(dir: &std::path::Path, trace_id: &str) -> Vec<SpanRow> {
    use observe::export::file::StoredStatus;
    let spans = match observe::export::file::read_spans(dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("reading {}: {e}", dir.display());
            return Vec::new();
        }
    };
    spans
        .into_iter()
        .filter(|s| s.trace_id == trace_id)
        .map(|s| {
            let attributes: BTreeMap<String, String> = s
                .attributes
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )
                })
                .collect();
            SpanRow {
                error: match &s.status {
                    StoredStatus::Error(d) => Some(
                        attributes
                            .get("error.type")
                            .cloned()
                            .unwrap_or_else(|| d.clone()),
                    ),
                    _ => None,
                },
                name: s.name,
                span_id: s.span_id,
                parent_span_id: s.parent_span_id.unwrap_or_default(),
                start_ns: s.start_unix_nanos,
                end_ns: s.end_unix_nanos,
                attributes,
            }
        })
        .collect()
}
