//! `#[observed]` at run time: span names, kinds, parents and attributes; the
//! result on the span, in metrics and in one error line; gateway metrics and
//! timeouts; panics and cancelled futures; fields on log lines; disabled
//! telemetry. Every value is asserted exactly.

use observe::observed;
use observe::opentelemetry::trace::{SpanKind, Status};
use observe::opentelemetry_sdk::trace::SpanData;
use observe::testing::{Capture, Harness, MetricValue};
use serde_json::json;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

// ---------------------------------------------------------------- fixtures

#[derive(Debug, PartialEq)]
enum BankError {
    Declined,
    Unavailable,
    TimedOut,
}

impl std::fmt::Display for BankError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BankError::Declined => f.write_str("card declined"),
            BankError::Unavailable => f.write_str("bank unavailable"),
            BankError::TimedOut => f.write_str("bank timed out"),
        }
    }
}

impl observe::ErrorType for BankError {
    fn error_type(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            BankError::Declined => "declined",
            BankError::Unavailable => "unavailable",
            BankError::TimedOut => "timeout",
        })
    }

    fn is_timeout(&self) -> bool {
        *self == BankError::TimedOut
    }
}

impl From<tokio::time::error::Elapsed> for BankError {
    fn from(_: tokio::time::error::Elapsed) -> Self {
        BankError::TimedOut
    }
}

/// An error without `ErrorType`: `error.type` is its type name.
#[derive(Debug, PartialEq)]
struct StockError;

impl std::fmt::Display for StockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("out of stock")
    }
}

#[derive(Debug)]
struct Order {
    id: u64,
    email: String,
}

mod shop {
    use super::{observed, StockError};

    #[observed]
    pub(crate) async fn reserve(sku: &str, qty: u32) -> Result<u32, StockError> {
        tokio::task::yield_now().await;
        if sku.is_empty() {
            return Err(StockError);
        }
        Ok(qty)
    }

    #[observed]
    pub(crate) fn price(qty: u32) -> Result<u64, StockError> {
        let unit: u64 = "250".parse().map_err(|_| StockError)?;
        Ok(unit * u64::from(qty))
    }
}

#[observed(name = "checkout.place_order", fields(order_id = order.id))]
async fn place_order(order: &Order, qty: u32) -> Result<u64, StockError> {
    let reserved = shop::reserve("sku_1", qty).await?;
    observe::info!("order_reserved", reserved);
    shop::price(reserved)
}

/// A gateway call made with a client observe does not wrap: it injects the
/// current context itself and returns the `traceparent` it sent.
#[observed(gateway = "ledger")]
async fn post_ledger() -> Result<String, StockError> {
    let mut headers = http::HeaderMap::new();
    observe::tower::propagation::inject_current(&mut headers);
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or(StockError)
}

/// A sync call that logs and marks its work as failed although it returns.
#[observed(fields(sku = sku))]
fn soft_reserve(sku: &str) -> u32 {
    observe::warn!("stock_low", left = 1u64);
    observe::mark_failed("stock_low");
    1
}

/// Opens a tracing span inside the call, logs in it and after it, and
/// reports what `current_span_id()` says inside the call.
#[observed(fields(order_id = order_id))]
async fn query_order(order_id: u64) -> Result<String, StockError> {
    {
        let db = tracing::info_span!("db.query", table = "orders");
        let _entered = db.enter();
        observe::info!("query_done", rows = 1u64);
    }
    tokio::task::yield_now().await;
    observe::info!("order_loaded");
    observe::current_span_id().ok_or(StockError)
}

#[observed(gateway = "bank", fields(order_id = order_id))]
async fn charge(order_id: u64, outcome: Option<BankError>) -> Result<String, BankError> {
    tokio::task::yield_now().await;
    match outcome {
        Some(e) => Err(e),
        None => Ok(format!("rcpt_{order_id}")),
    }
}

#[observed(gateway = "bank", timeout = "50ms")]
async fn slow_charge(delay: Duration) -> Result<(), BankError> {
    tokio::time::sleep(delay).await;
    Ok(())
}

#[observed(log_errors = false)]
async fn quiet_lookup(id: u64) -> Result<u64, StockError> {
    let _ = id;
    Err(StockError)
}

#[observed]
fn explode(fail: bool) -> u32 {
    if fail {
        panic!("boom");
    }
    1
}

/// Logs when dropped: a cancelled call's clean-up.
struct LogsOnDrop;

impl Drop for LogsOnDrop {
    fn drop(&mut self) {
        observe::warn!("reservation_released");
    }
}

#[observed]
async fn wait_forever() -> Result<(), StockError> {
    let _held = LogsOnDrop;
    std::future::pending::<()>().await;
    Ok(())
}

#[observed(fields(
    order.id = %order.id,
    user = observe::pseudonym(&order.email),
    amount_cents = amount,
    debug_note = ?note,
))]
async fn annotated(order: &Order, amount: u64, note: &str) -> Result<(), StockError> {
    observe::info!("first_step");
    tokio::task::yield_now().await;
    observe::info!("second_step");
    Ok(())
}

#[observed]
async fn secret(password: &str, card_number: u64) -> Result<usize, StockError> {
    Ok(password.len() + card_number.to_string().len())
}

/// A reply whose payload can say the work failed although the call returned.
struct PaymentReply {
    status: &'static str,
}

impl observe::Outcome for PaymentReply {
    fn failure(&self) -> Option<Cow<'static, str>> {
        (self.status != "success").then_some(Cow::Borrowed("payment_not_confirmed"))
    }
}

#[observed]
fn confirm(status: &'static str) -> Result<PaymentReply, BankError> {
    Ok(PaymentReply { status })
}

#[async_trait::async_trait]
trait Ledger {
    async fn post(&self, amount_cents: i64) -> Result<u64, BankError>;
}

struct Books {
    account: &'static str,
}

#[async_trait::async_trait]
impl Ledger for Books {
    #[observed(fields(account = self.account, amount_cents))]
    async fn post(&self, amount_cents: i64) -> Result<u64, BankError> {
        tokio::task::yield_now().await;
        if amount_cents < 0 {
            return Err(BankError::Unavailable);
        }
        Ok(amount_cents.unsigned_abs())
    }
}

/// Counted per telemetry instance (`instances.rs`); defined here so its
/// `code.namespace` is the test crate's.
#[observed]
fn tally(fail: bool) -> Result<(), StockError> {
    if fail {
        Err(StockError)
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------- helpers

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn span_attrs(span: &SpanData) -> BTreeMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.as_str().to_owned(), kv.value.to_string()))
        .collect()
}

fn span<'a>(cap: &'a Capture, name: &str) -> &'a SpanData {
    match cap.span(name) {
        Some(s) => s,
        None => panic!(
            "no span {name:?} among {:?}",
            cap.spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        ),
    }
}

fn event_names(span: &SpanData) -> Vec<&str> {
    span.events.iter().map(|e| e.name.as_ref()).collect()
}

/// `(name, attributes)` of every exception event.
fn exceptions(span: &SpanData) -> Vec<BTreeMap<String, String>> {
    span.events
        .iter()
        .filter(|e| e.name == "exception")
        .map(|e| {
            e.attributes
                .iter()
                .map(|kv| (kv.key.as_str().to_owned(), kv.value.to_string()))
                .collect()
        })
        .collect()
}

/// Every point of `name` as (attributes, value), histograms as their count.
fn points(cap: &Capture, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    cap.metric(name)
        .into_iter()
        .map(|p| {
            let v = match &p.value {
                MetricValue::Sum(v) | MetricValue::Gauge(v) => *v,
                MetricValue::Histogram { count, .. } => *count as f64,
            };
            (p.attributes.clone(), v)
        })
        .collect()
}

/// `(function, namespace, result)` with the call count, for `observed.calls`.
fn calls(cap: &Capture) -> Vec<(String, String, String, f64)> {
    points(cap, "observed.calls")
        .into_iter()
        .map(|(a, v)| {
            assert_eq!(a.len(), 3, "{a:?}");
            (
                a["code.function"].clone(),
                a["code.namespace"].clone(),
                a["result"].clone(),
                v,
            )
        })
        .collect()
}

/// A log line without its timestamp and ids, for exact comparison;
/// `duration_ms` must be a whole number and is removed too.
fn stable(line: &serde_json::Value) -> serde_json::Value {
    let mut l = line.clone();
    let obj = l.as_object_mut().expect("a JSON object");
    assert!(obj.remove("timestamp").is_some_and(|t| t.is_string()));
    assert!(obj.remove("trace_id").is_some_and(|t| t.is_string()));
    assert!(obj.remove("span_id").is_some_and(|t| t.is_string()));
    if let Some(d) = obj.remove("duration_ms") {
        assert!(d.is_u64(), "duration_ms is {d}");
    }
    l
}

fn ids(span: &SpanData) -> (String, String) {
    (
        span.span_context.trace_id().to_string(),
        span.span_context.span_id().to_string(),
    )
}

fn line_ids(line: &serde_json::Value) -> (String, String) {
    (
        line["trace_id"].as_str().unwrap_or_default().to_owned(),
        line["span_id"].as_str().unwrap_or_default().to_owned(),
    )
}

mod failures;
mod gateways;
mod instances;
#[path = "../support/pipeline.rs"]
mod pipeline;
mod spans;
mod trait_methods;
