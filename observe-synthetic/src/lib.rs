//! Synthetic monitoring: user flows written as async Rust, run on a schedule
//! from outside the service, with one trace per run, metrics and alerts.
//! It runs in its own process (or a task of one), never inside the service
//! it checks, and talks to observe-core only through its public interface
//! (`observe_core::span`, `propagation`, `signals::current`).
//!
//! ```
//! use observe_synthetic::{Flow, Runner, Step};
//! use std::time::Duration;
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! # rt.block_on(async {
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! # let base = format!("http://{}", listener.local_addr().unwrap());
//! # tokio::spawn(async move {
//! #     use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! #     while let Ok((mut s, _)) = listener.accept().await {
//! #         let mut buf = [0u8; 4096];
//! #         let _ = s.read(&mut buf).await;
//! #         let body = r#"{"status":"processing"}"#;
//! #         let res = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
//! #         let _ = s.write_all(res.as_bytes()).await;
//! #     }
//! # });
//!
//! let flow = Flow::new("checkout", move |ctx| {
//!     let base = base.clone();
//!     async move {
//!         ctx.step(Step::new("pay").objective(Duration::from_secs(2)), async {
//!             let res = ctx
//!                 .http()
//!                 .post(format!("{base}/pay"))
//!                 .json(&serde_json::json!({"order_id": "ord_1"}))
//!                 .send()
//!                 .await?;
//!             res.expect_status(200)?;
//!             res.expect_json("status", "success")?;
//!             Ok(())
//!         })
//!         .await?;
//!         Ok(())
//!     }
//! });
//! let mut runner = Runner::builder(flow).region("eu-west-1").build()?;
//! let report = runner.run_once().await;
//! let failure = report.failure.expect("the payment is still processing");
//! assert_eq!(failure.to_string(), r#"pay: expected status "success", got "processing""#);
//! assert_eq!(runner.state().consecutive_failures, 1);
//! # Ok::<(), observe_synthetic::ConfigError>(())
//! # }).unwrap();
//! ```
//!
//! # What a run records
//!
//! * One trace: a root span `synthetic <flow>` (attributes `flow`, `region`,
//!   `synthetic.outcome`) and one child span per step that ran (named after
//!   the step; `step`, `synthetic.outcome`; status Error with the reason on
//!   failure). Every request a step sends carries that step's
//!   `traceparent` and baggage `synthetic=true`, so the service's server
//!   spans join the run's trace and are marked synthetic.
//! * Metrics ([`metrics`]): `synthetic.check.duration` and `synthetic.checks`
//!   per step that ran, `synthetic.check.success` (0/1) per run.
//! * Log lines `synthetic_run_succeeded` / `synthetic_run_failed` (with
//!   `step`, `outcome`, `reason`) in the run's trace, with `"synthetic":true`.
//!
//! # When a run fails
//!
//! The first failing step ends the run; later [`FlowContext::step`] calls
//! return that failure without running. A step fails when its body returns an
//! error (an [`Assertion`] says what was expected and what came back), when
//! it takes longer than its latency objective (`failure`), when it exceeds its
//! timeout (`timeout`) or when it panics (`panic`). A failure outside any step
//! (the flow's own code, or the run's deadline) is counted under
//! `step` = [`OUTSIDE_STEPS`]. None of them stops the runner.
//!
//! # Alerts
//!
//! The generated Prometheus rule `SyntheticCheckFailed` ([`observe_alerts`])
//! alerts on `synthetic_check_success`; the runner can also alert directly
//! ([`Alertmanager`], [`Webhook`]) after
//! [`alert_after`](RunnerBuilder::alert_after) consecutive failed runs, and
//! resolves the alert on the first successful run.

#![forbid(unsafe_code)]

mod alert;
mod flow;
mod http;
pub mod metrics;
mod report;
mod runner;

pub use alert::{
    Alert, AlertError, AlertSink, AlertStatus, Alertmanager, Webhook, DELIVERY_TIMEOUT,
};
pub use flow::{Flow, FlowContext, Step};
pub use http::{Http, RequestBuilder, Response, MAX_RESPONSE_BODY};
pub use metrics::SyntheticInstruments;
pub use report::{
    expect_eq, Assertion, BoxFuture, ConfigError, Failure, FlowError, HttpError, StepError,
    StepFailed, StepOutcome, StepReport, OUTSIDE_STEPS,
};
pub use runner::{
    RunReport, Runner, RunnerBuilder, RunnerState, DEFAULT_ALERT_AFTER, DEFAULT_INTERVAL,
    DEFAULT_REGION, DEFAULT_SEVERITY, DEFAULT_STEP_TIMEOUT, MAX_NAME_LEN,
};
