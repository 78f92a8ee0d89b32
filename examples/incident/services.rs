//! The incident's services as separate processes, for the stack mode of the
//! example (`--stack`) and `tests/stack.rs`:
//!
//! ```text
//!  client ─▶ checkout (Rust, observe) ─▶ fraud (Python, OpenTelemetry SDK) ─▶ payment (Rust, observe) ─▶ bank simulator
//!            POST /checkout               POST /screen                           POST /pay                   POST /charge
//! ```
//!
//! Each Rust service is this same program started again with
//! `--serve checkout|payment`: `observe::init`, one `ObserveLayer`,
//! `#[observed]` handlers, configured only by the standard `OTEL_*`
//! variables the orchestrator sets. The payment handler swallows the bank's
//! failure and answers `200 {"status":"processing"}`, as in the article.
//!
//! The bank simulator runs inside the orchestrator (it is the outside world:
//! no telemetry). It answers by the order id: `…fail…` 504 after a short
//! wait, `…slow…` 200 after 2.1 s, anything else 200 after 5 ms; while the
//! fault is on, every charge is a 504.

#![allow(dead_code)]

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use observe::observed;
use serde::Deserialize;
use std::borrow::Cow;
use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) type BoxError = Box<dyn Error + Send + Sync>;

type HttpClient =
    Client<hyper_util::client::legacy::connect::HttpConnector, Full<axum::body::Bytes>>;

/// How long a slow charge takes: past the tail sampler's 2000 ms threshold.
pub(crate) const SLOW_CHARGE: Duration = Duration::from_millis(2100);

// ------------------------------------------------------------ the bank

/// The bank simulator's switches.
#[derive(Default)]
pub(crate) struct Bank {
    /// Every charge fails with 504 (the incident).
    pub(crate) failing: AtomicBool,
    /// Charges answered.
    pub(crate) charges: AtomicU64,
}

#[derive(Deserialize)]
struct Charge {
    order_id: String,
}

async fn bank_charge(
    State(bank): State<Arc<Bank>>,
    Json(c): Json<Charge>,
) -> (http::StatusCode, &'static str) {
    bank.charges.fetch_add(1, Ordering::Relaxed);
    if bank.failing.load(Ordering::Relaxed) || c.order_id.contains("fail") {
        tokio::time::sleep(Duration::from_millis(30)).await;
        (http::StatusCode::GATEWAY_TIMEOUT, "upstream timeout")
    } else if c.order_id.contains("slow") {
        tokio::time::sleep(SLOW_CHARGE).await;
        (http::StatusCode::OK, r#"{"approved":true}"#)
    } else {
        tokio::time::sleep(Duration::from_millis(5)).await;
        (http::StatusCode::OK, r#"{"approved":true}"#)
    }
}

/// Serves the bank on a free port of 127.0.0.1.
pub(crate) async fn start_bank(bank: Arc<Bank>) -> Result<SocketAddr, BoxError> {
    let app = Router::new()
        .route("/charge", post(bank_charge))
        .with_state(bank);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

// ------------------------------------------------------------ payment

#[derive(Clone)]
struct Payment {
    bank_url: String,
    client: HttpClient,
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

/// The bank call: a client span, gateway metrics, and the failure recorded
/// in the enclosing request even though the caller swallows it.
#[observed(gateway = "bank", timeout = "3s")]
async fn charge(app: &Payment, order_id: &str, amount_cents: u64) -> Result<(), BankError> {
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
async fn pay(State(app): State<Payment>, Json(req): Json<PayRequest>) -> Json<serde_json::Value> {
    match charge(&app, &req.order_id, req.amount_cents).await {
        Ok(()) => {
            observe::info!(
                "payment_succeeded",
                order_id = %req.order_id,
                amount_cents = req.amount_cents
            );
            Json(serde_json::json!({"status": "success"}))
        }
        Err(e) => {
            observe::error!(
                "payment_failed",
                order_id = %req.order_id,
                gateway = "bank",
                gateway_status_code = match &e { BankError::Status(s) => u64::from(*s), _ => 0 },
                amount_cents = req.amount_cents,
                error = %e,
                "payment failed; answering processing"
            );
            Json(serde_json::json!({"status": "processing"}))
        }
    }
}

// ------------------------------------------------------------ checkout

#[derive(Clone)]
struct Checkout {
    fraud_url: String,
    fraud: observe::tower::Gateway<HttpClient>,
}

#[derive(Deserialize)]
struct CheckoutRequest {
    order_id: String,
    amount_cents: u64,
}

#[observed(fields(order_id = %req.order_id))]
async fn checkout(
    State(app): State<Checkout>,
    Json(req): Json<CheckoutRequest>,
) -> (http::StatusCode, Json<serde_json::Value>) {
    use tower::ServiceExt;
    observe::info!(
        "checkout_started",
        order_id = %req.order_id,
        amount_cents = req.amount_cents
    );
    let body = serde_json::json!({"order_id": req.order_id, "amount_cents": req.amount_cents});
    let call = async {
        let r = http::Request::post(format!("{}/screen", app.fraud_url))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::from(body.to_string()))?;
        let res = app.fraud.clone().oneshot(r).await?;
        let status = res.status();
        let bytes = res.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(format!("fraud answered {status}").into());
        }
        Ok::<_, BoxError>(serde_json::from_slice::<serde_json::Value>(&bytes)?)
    };
    match call.await {
        Ok(answer) => {
            let status = answer["status"].as_str().unwrap_or("unknown").to_owned();
            observe::info!(
                "checkout_answered",
                order_id = %req.order_id,
                payment_status = %status
            );
            (
                http::StatusCode::OK,
                Json(serde_json::json!({"order_id": req.order_id, "status": status})),
            )
        }
        Err(e) => {
            observe::error!(
                "checkout_failed",
                order_id = %req.order_id,
                error = %e,
                "fraud screening unreachable"
            );
            (
                http::StatusCode::BAD_GATEWAY,
                Json(serde_json::json!({"order_id": req.order_id, "status": "error"})),
            )
        }
    }
}

async fn healthz() -> &'static str {
    "ok"
}

fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Runs one Rust service until its stdin closes: `--serve <role> --listen
/// <addr> [--upstream <url>] [--in-process-tail-sampling]`. Returns the
/// process's exit code.
pub(crate) fn serve(args: &[String]) -> std::process::ExitCode {
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let Some(role) = arg("--serve") else {
        eprintln!("usage: --serve checkout|payment|payment-bare|bank|synthetic [--listen ADDR] --upstream URL");
        return std::process::ExitCode::from(2);
    };
    let listen = arg("--listen").unwrap_or_default();
    let upstream = arg("--upstream").unwrap_or_default();
    let tail = args.iter().any(|a| a == "--in-process-tail-sampling");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{role}: no runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // The outside world and the uninstrumented baseline: no telemetry.
    if role == "bank" || role == "payment-bare" {
        let result = runtime.block_on(serve_plain(&role, &listen, &upstream));
        return match result {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{role}: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    // One init, configured by the environment (OTEL_*, OBSERVE_METRICS_ADDR).
    // It runs before the runtime is entered: name the runtime whose
    // saturation (tokio.runtime.*) it records.
    let mut builder =
        observe::Telemetry::builder(role.clone()).tokio_runtime(Some(runtime.handle().clone()));
    if tail {
        builder = builder.tail_sampling(observe::export::tail::TailSamplingConfig::default());
    }
    let guard = match builder.init() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{role}: observe: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result: Result<(), BoxError> = runtime.block_on(async {
        if role == "synthetic" {
            return run_synthetic(&upstream, arg("--alertmanager"), arg("--interval-ms")).await;
        }
        let router = match role.as_str() {
            "payment" => Router::new().route("/pay", post(pay)).with_state(Payment {
                bank_url: upstream,
                client: http_client(),
            }),
            "checkout" => Router::new()
                .route("/checkout", post(checkout))
                .with_state(Checkout {
                    fraud_url: upstream,
                    fraud: tower::ServiceBuilder::new()
                        .layer(observe::tower::GatewayLayer::new("fraud"))
                        .service(http_client()),
                }),
            other => return Err(format!("unknown role {other}").into()),
        };
        let app = router
            .layer(observe::tower::ObserveLayer::new())
            .route("/healthz", get(healthz));
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        observe::info!("service_started", listen = %listen);
        // Stops when the orchestrator closes our stdin (or exits).
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stdin_closed.await;
            })
            .await?;
        Ok(())
    });
    let shutdown = guard.shutdown(Duration::from_secs(10));
    match (result, shutdown) {
        (Ok(()), Ok(())) => std::process::ExitCode::SUCCESS,
        (Err(e), _) => {
            eprintln!("{role}: {e}");
            std::process::ExitCode::FAILURE
        }
        (_, Err(e)) => {
            eprintln!("{role}: telemetry shutdown: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

// ------------------------------------------------------------ baselines

/// payment without observe (the same handler, no layer, no `#[observed]`):
/// the baseline of the saturation figures in docs/performance.md.
async fn pay_bare(
    State(app): State<Payment>,
    Json(req): Json<PayRequest>,
) -> Json<serde_json::Value> {
    let body =
        serde_json::json!({"order_id": req.order_id, "amount_cents": req.amount_cents}).to_string();
    let ok = match http::Request::post(format!("{}/charge", app.bank_url))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::from(body))
    {
        Ok(r) => match app.client.request(r).await {
            Ok(res) => {
                let ok = res.status().is_success();
                let _ = res.into_body().collect().await;
                ok
            }
            Err(_) => false,
        },
        Err(_) => false,
    };
    Json(serde_json::json!({"status": if ok { "success" } else { "processing" }}))
}

/// The bank simulator, or payment without observe, as a process of its own.
async fn serve_plain(role: &str, listen: &str, upstream: &str) -> Result<(), BoxError> {
    let app = match role {
        "bank" => Router::new()
            .route("/charge", post(bank_charge))
            .with_state(Arc::new(Bank::default())),
        _ => Router::new()
            .route("/pay", post(pay_bare))
            .with_state(Payment {
                bank_url: upstream.to_owned(),
                client: http_client(),
            }),
    };
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = stdin_closed.await;
        })
        .await?;
    Ok(())
}

// ------------------------------------------------------------ synthetic checkout

/// The synthetic checkout of the seed: one order through the front door,
/// which must answer `"status":"success"`.
fn checkout_flow(base: String) -> observe::synthetic::Flow {
    use observe::synthetic::{Flow, Step};
    let runs = Arc::new(AtomicU64::new(0));
    Flow::new("checkout", move |ctx| {
        let base = base.clone();
        let n = runs.fetch_add(1, Ordering::Relaxed);
        async move {
            ctx.step(Step::new("checkout").objective(Duration::from_secs(2)), async {
                let res = ctx
                    .http()
                    .post(format!("{base}/checkout"))
                    .json(&serde_json::json!({"order_id": format!("synthetic-{n}"), "amount_cents": 100}))
                    .send()
                    .await?;
                res.expect_status(200)?;
                res.expect_json("status", "success")?;
                Ok(())
            })
            .await?;
            Ok(())
        }
    })
}

/// The synthetic runner as its own process (it runs outside the service, as
/// in production): its metrics go to the Collector, its alerts straight to
/// Alertmanager after two failed runs.
async fn run_synthetic(
    checkout: &str,
    alertmanager: Option<String>,
    interval_ms: Option<String>,
) -> Result<(), BoxError> {
    use observe::synthetic::{Alertmanager, Runner};
    let interval = Duration::from_millis(
        interval_ms
            .as_deref()
            .unwrap_or("1000")
            .parse()
            .map_err(|e| format!("--interval-ms: {e}"))?,
    );
    let mut builder = Runner::builder(checkout_flow(checkout.to_owned()))
        .interval(interval)
        .step_timeout(Duration::from_secs(5))
        .region("stack")
        .alert_after(2);
    if let Some(url) = alertmanager {
        builder = builder.alert_sink(Alertmanager::new(&url)?);
    }
    let mut runner = builder.build()?;
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    });
    runner
        .run_until(async {
            let _ = stdin_closed.await;
        })
        .await;
    Ok(())
}

// ------------------------------------------------------------ orchestration

/// A service process; stopped (stdin closed, then killed after 15 s) when dropped.
pub(crate) struct Service {
    pub(crate) name: &'static str,
    pub(crate) url: String,
    child: Option<Child>,
    pub(crate) log: PathBuf,
}

impl Service {
    /// Stops it the way a deployment does: it finishes in-flight requests
    /// and flushes its telemetry, then exits.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        drop(child.stdin.take());
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The end of what it printed.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where the services send telemetry and how often.
#[derive(Clone, Debug)]
pub(crate) struct Telemetry {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (OTLP/HTTP).
    pub(crate) otlp_endpoint: String,
    /// `OTEL_METRIC_EXPORT_INTERVAL`.
    pub(crate) metric_interval: Duration,
    /// observe's in-process tail sampler in the Rust services.
    pub(crate) in_process_tail_sampling: bool,
    /// More variables for every service (`OTEL_EXPORTER_OTLP_TIMEOUT`,
    /// `OTEL_EXPORTER_OTLP_COMPRESSION`, ...).
    pub(crate) extra: Vec<(String, String)>,
}

impl Telemetry {
    fn vars(&self, service: &str) -> Vec<(String, String)> {
        let mut vars = vec![
            ("OTEL_SERVICE_NAME".into(), service.into()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                self.otlp_endpoint.clone(),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL".into(), "http/protobuf".into()),
            (
                "OTEL_METRIC_EXPORT_INTERVAL".into(),
                self.metric_interval.as_millis().to_string(),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "200".into()),
            ("OTEL_BLRP_SCHEDULE_DELAY".into(), "200".into()),
            (
                "OTEL_RESOURCE_ATTRIBUTES".into(),
                "deployment.environment.name=stack-demo".into(),
            ),
            ("OBSERVE_EXPORT_DIR".into(), "none".into()),
            (
                "OBSERVE_PSEUDONYM_KEY".into(),
                "incident-stack-pseudonym-key".into(),
            ),
        ];
        vars.extend(self.extra.iter().cloned());
        vars
    }
}

fn wait_healthy(svc: &mut Service, timeout: Duration) -> Result<(), BoxError> {
    let addr = svc.url.trim_start_matches("http://").to_owned();
    let t0 = Instant::now();
    loop {
        if let Some(child) = svc.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "{} exited during start-up ({status}):\n{}",
                    svc.name,
                    svc.log_tail(20)
                )
                .into());
            }
        }
        if std::net::TcpStream::connect(&addr).is_ok() {
            return Ok(());
        }
        if t0.elapsed() > timeout {
            return Err(format!(
                "{} did not listen on {addr} within {timeout:?}:\n{}",
                svc.name,
                svc.log_tail(20)
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The Python interpreter with the OpenTelemetry SDK (`scripts/python-venv`).
pub(crate) fn python() -> Result<PathBuf, BoxError> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidate = std::env::var_os("OBSERVE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/py-venv/bin/python"));
    let ok = Command::new(&candidate)
        .args([
            "-c",
            "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(candidate)
    } else {
        Err(format!(
            "no Python with the OpenTelemetry SDK at {} (build it with ./scripts/python-venv, or set OBSERVE_TEST_PYTHON)",
            candidate.display()
        )
        .into())
    }
}

fn spawn(
    name: &'static str,
    mut cmd: Command,
    port: Option<u16>,
    dir: &Path,
) -> Result<Service, BoxError> {
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log)?;
    let err = out.try_clone()?;
    let child = cmd
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    let mut svc = Service {
        name,
        url: port.map_or_else(String::new, |p| format!("http://127.0.0.1:{p}")),
        child: Some(child),
        log,
    };
    if port.is_some() {
        wait_healthy(&mut svc, Duration::from_secs(30))?;
    }
    Ok(svc)
}

fn free_port() -> Result<u16, BoxError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The three services of one run, from the bank up; `dir` receives their
/// output (`<name>.log`: JSON lines of the Rust services).
pub(crate) struct Services {
    pub(crate) payment: Service,
    pub(crate) fraud: Service,
    pub(crate) checkout: Service,
    /// `payment`'s own `/metrics` (the pull path).
    pub(crate) payment_metrics: SocketAddr,
}

impl Services {
    pub(crate) fn start(
        telemetry: &Telemetry,
        bank: SocketAddr,
        dir: &Path,
    ) -> Result<Services, BoxError> {
        let exe = std::env::current_exe()?;
        let rust = |role: &'static str, port: u16, upstream: String| {
            let mut cmd = Command::new(&exe);
            cmd.args(["--serve", role, "--listen", &format!("127.0.0.1:{port}")])
                .args(["--upstream", &upstream])
                .envs(telemetry.vars(role));
            if telemetry.in_process_tail_sampling {
                cmd.arg("--in-process-tail-sampling");
            }
            cmd
        };
        let metrics_port = free_port()?;
        let payment_port = free_port()?;
        let mut cmd = rust("payment", payment_port, format!("http://{bank}"));
        cmd.env("OBSERVE_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"));
        let payment = spawn("payment", cmd, Some(payment_port), dir)?;

        let fraud_port = free_port()?;
        let mut cmd = Command::new(python()?);
        cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/incident/fraud.py"))
            .args(["--listen", &format!("127.0.0.1:{fraud_port}")])
            .args(["--payment", &payment.url])
            .envs(telemetry.vars("fraud"))
            // The Python SDK batches on its own schedule; make it as prompt
            // as observe's.
            .env("OTEL_BSP_SCHEDULE_DELAY", "200")
            .env("OTEL_BLRP_SCHEDULE_DELAY", "200");
        let fraud = spawn("fraud", cmd, Some(fraud_port), dir)?;

        let checkout_port = free_port()?;
        let cmd = rust("checkout", checkout_port, fraud.url.clone());
        let checkout = spawn("checkout", cmd, Some(checkout_port), dir)?;
        Ok(Services {
            payment,
            fraud,
            checkout,
            payment_metrics: SocketAddr::from(([127, 0, 0, 1], metrics_port)),
        })
    }

    /// Starts the synthetic checkout against `checkout`, one run every
    /// `interval`, alerting `alertmanager` after two failed runs.
    pub(crate) fn start_synthetic(
        telemetry: &Telemetry,
        checkout: &str,
        alertmanager: &str,
        interval: Duration,
        dir: &Path,
    ) -> Result<Service, BoxError> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["--serve", "synthetic", "--upstream", checkout])
            .args(["--alertmanager", alertmanager])
            .args(["--interval-ms", &interval.as_millis().to_string()])
            .envs(telemetry.vars("synthetic-checkout"));
        spawn("synthetic-checkout", cmd, None, dir)
    }

    /// Stops them front to back, so no request is cut half-way.
    pub(crate) fn stop(&mut self) {
        self.checkout.stop();
        self.fraud.stop();
        self.payment.stop();
    }
}

/// One checkout through the front door: the payment status it answers.
pub(crate) async fn place_order(
    client: &HttpClient,
    checkout: &str,
    order_id: &str,
) -> Result<String, BoxError> {
    let req = http::Request::post(format!("{checkout}/checkout"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::from(
            serde_json::json!({"order_id": order_id, "amount_cents": 4999}).to_string(),
        ))?;
    let res = client.request(req).await?;
    let status = res.status();
    let bytes = res.into_body().collect().await?.to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("checkout answered {status} with {bytes:?}: {e}"))?;
    Ok(v["status"].as_str().unwrap_or("unknown").to_owned())
}

/// A plain client for the orchestrator.
pub(crate) fn client() -> HttpClient {
    http_client()
}

/// One order placed by [`Traffic`] and what checkout answered.
#[derive(Clone, Debug)]
pub(crate) struct OrderOutcome {
    pub(crate) order_id: String,
    /// `success`, `processing`, `error`, or the client's error.
    pub(crate) status: String,
    /// When the answer came.
    pub(crate) at: Instant,
}

/// Users placing orders through checkout until stopped: each places one,
/// waits `think`, places the next (`<prefix>-<user>-<n>`).
pub(crate) struct Traffic {
    stop: Arc<AtomicBool>,
    handles: Vec<tokio::task::JoinHandle<()>>,
    orders: Arc<std::sync::Mutex<Vec<OrderOutcome>>>,
}

impl Traffic {
    pub(crate) fn start(checkout: &str, users: usize, think: Duration, prefix: &str) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let orders = Arc::new(std::sync::Mutex::new(Vec::new()));
        let handles = (0..users)
            .map(|u| {
                let (stop, orders) = (Arc::clone(&stop), Arc::clone(&orders));
                let (checkout, prefix) = (checkout.to_owned(), prefix.to_owned());
                tokio::spawn(async move {
                    let client = http_client();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let order_id = format!("{prefix}-{u}-{n}");
                        n += 1;
                        let status = place_order(&client, &checkout, &order_id)
                            .await
                            .unwrap_or_else(|e| format!("client error: {e}"));
                        if let Ok(mut o) = orders.lock() {
                            o.push(OrderOutcome {
                                order_id,
                                status,
                                at: Instant::now(),
                            });
                        }
                        tokio::time::sleep(think).await;
                    }
                })
            })
            .collect();
        Traffic {
            stop,
            handles,
            orders,
        }
    }

    /// Orders answered so far.
    pub(crate) fn orders(&self) -> Vec<OrderOutcome> {
        self.orders.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Stops the users after their current order; every order placed.
    pub(crate) async fn stop(self) -> Vec<OrderOutcome> {
        self.stop.store(true, Ordering::Relaxed);
        let orders = Arc::clone(&self.orders);
        for h in self.handles {
            let _ = h.await;
        }
        let all = orders.lock().map(|o| o.clone()).unwrap_or_default();
        all
    }
}
