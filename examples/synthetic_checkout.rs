//! A synthetic checkout check: logs in as the synthetic user, creates an
//! order for the sentinel SKU, pays with the gateway's test card and checks
//! that the order is `paid`, once or every interval, from outside the service.
//! Each run is one trace (its `traceparent` and baggage `synthetic=true` go
//! out with every request), writes one JSON log line and records the
//! `synthetic.*` metrics; after N consecutive failed runs it alerts
//! Alertmanager and/or a webhook, and resolves the alert on recovery.
//!
//! Start the payments service (`cargo run --features alerts,synthetic --example incident`), then:
//!
//! ```text
//! cargo run --features synthetic --example synthetic_checkout -- --once                  # CI / cron: exit 1 on failure
//! cargo run --features synthetic --example synthetic_checkout -- --interval 60s --region eu-west-1 \
//!     --alertmanager http://127.0.0.1:9093
//! ```
//!
//! Options: `--base-url URL` (default http://127.0.0.1:3000), `--once`,
//! `--interval 60s`, `--jitter 0s`, `--step-timeout 10s`, `--region NAME`,
//! `--alert-after N` (default 2), `--alertmanager URL`, `--webhook URL`.
//! The synthetic user's credentials come from `SYNTHETIC_USER` and
//! `SYNTHETIC_PASSWORD`. Telemetry goes where `observe::init` sends it
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, ...).

use observe::synthetic::{Alertmanager, Flow, Runner, Step, Webhook};
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;

/// The sentinel SKU: orders for it are excluded from business metrics.
const SYNTHETIC_SKU: &str = "SYNTHETIC-SKU";
/// What the sentinel order costs.
const AMOUNT_CENTS: u64 = 4999;
/// The payment gateway's test-mode card: exercises the whole payment path
/// without moving money.
const TEST_CARD: &str = "4242424242424242";

struct Args {
    base_url: String,
    once: bool,
    interval: Duration,
    jitter: Duration,
    step_timeout: Duration,
    region: String,
    alert_after: u32,
    alertmanager: Option<String>,
    webhook: Option<String>,
}

const USAGE: &str = "usage: synthetic_checkout [--base-url URL] [--once] [--interval 60s] \
[--jitter 0s] [--step-timeout 10s] [--region NAME] [--alert-after N] \
[--alertmanager URL] [--webhook URL]";

/// `60`, `60s`, `500ms`, `2m`.
fn duration(v: &str) -> Result<Duration, String> {
    let (num, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => v.split_at(i),
        None => (v, "s"),
    };
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {v:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        _ => Err(format!("invalid duration {v:?} (use 500ms, 30s or 2m)")),
    }
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        base_url: "http://127.0.0.1:3000".to_owned(),
        once: false,
        interval: Duration::from_secs(60),
        jitter: Duration::ZERO,
        step_timeout: Duration::from_secs(10),
        region: "local".to_owned(),
        alert_after: 2,
        alertmanager: None,
        webhook: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--once" {
            a.once = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--base-url" => a.base_url = value.trim_end_matches('/').to_owned(),
            "--interval" => a.interval = duration(&value)?,
            "--jitter" => a.jitter = duration(&value)?,
            "--step-timeout" => a.step_timeout = duration(&value)?,
            "--region" => a.region = value,
            "--alert-after" => {
                a.alert_after = value
                    .parse()
                    .map_err(|_| format!("--alert-after: not a number: {value:?}"))?;
            }
            "--alertmanager" => a.alertmanager = Some(value),
            "--webhook" => a.webhook = Some(value),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(a)
}

/// The checkout flow against the payments service at `base`.
fn checkout(base: String, user: String, password: String) -> Flow {
    Flow::new("checkout", move |ctx| {
        let (base, user, password) = (base.clone(), user.clone(), password.clone());
        async move {
            let token = ctx
                .step(
                    Step::new("login").objective(Duration::from_millis(500)),
                    async {
                        let res = ctx
                            .http()
                            .post(format!("{base}/login"))
                            .json(&json!({"username": user, "password": password}))
                            .send()
                            .await?;
                        res.expect_status(200)?;
                        let session = res.json_field("session")?;
                        Ok(session.as_str().unwrap_or_default().to_owned())
                    },
                )
                .await?;
            let order_id = ctx
                .step(
                    Step::new("create_order").objective(Duration::from_millis(800)),
                    async {
                        let res = ctx
                            .http()
                            .post(format!("{base}/orders"))
                            .bearer_auth(&token)
                            .json(&json!({"sku": SYNTHETIC_SKU, "qty": 1}))
                            .send()
                            .await?;
                        res.expect_status(200)?;
                        let id = res.json_field("id")?;
                        Ok(id.as_str().map_or_else(|| id.to_string(), str::to_owned))
                    },
                )
                .await?;
            ctx.step(Step::new("pay").objective(Duration::from_secs(2)), async {
                let res = ctx
                    .http()
                    .post(format!("{base}/pay"))
                    .bearer_auth(&token)
                    .json(&json!({"order_id": order_id, "amount_cents": AMOUNT_CENTS, "card": TEST_CARD}))
                    .send()
                    .await?;
                res.expect_status(200)?;
                res.expect_json("status", "success")?;
                Ok(())
            })
            .await?;
            ctx.step(
                Step::new("confirm").objective(Duration::from_millis(500)),
                async {
                    let res = ctx
                        .http()
                        .get(format!("{base}/orders/{order_id}"))
                        .bearer_auth(&token)
                        .send()
                        .await?;
                    res.expect_status(200)?;
                    res.expect_json("status", "paid")?;
                    Ok(())
                },
            )
            .await?;
            Ok(())
        }
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let guard = match observe::init("synthetic-checkout") {
        Ok(g) => g,
        Err(e) => {
            eprintln!("observe: {e}");
            return ExitCode::from(2);
        }
    };
    let user = std::env::var("SYNTHETIC_USER").unwrap_or_else(|_| "synthetic-user".to_owned());
    let password =
        std::env::var("SYNTHETIC_PASSWORD").unwrap_or_else(|_| "synthetic-password".to_owned());
    let mut builder = Runner::builder(checkout(args.base_url, user, password))
        .interval(args.interval)
        .jitter(args.jitter)
        .step_timeout(args.step_timeout)
        .region(args.region)
        .alert_after(args.alert_after);
    let sinks = (
        args.alertmanager
            .as_deref()
            .map(Alertmanager::new)
            .transpose(),
        args.webhook.as_deref().map(Webhook::new).transpose(),
    );
    match sinks {
        (Ok(am), Ok(hook)) => {
            if let Some(am) = am {
                builder = builder.alert_sink(am);
            }
            if let Some(hook) = hook {
                builder = builder.alert_sink(hook);
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    }
    let mut runner = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let code = if args.once {
        let report = runner.run_once().await;
        match &report.failure {
            None => ExitCode::SUCCESS,
            Some(f) => {
                eprintln!("synthetic checkout failed: {f}");
                ExitCode::FAILURE
            }
        }
    } else {
        runner
            .run_until(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
        ExitCode::SUCCESS
    };
    if let Err(e) = guard.shutdown(Duration::from_secs(5)) {
        eprintln!("observe: {e}");
    }
    code
}
