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

// ---------------------------------------------------------------- spans

#[tokio::test]
async fn span_is_named_module_and_function_and_carries_code_function_only() {
    let (r, cap) = Harness::new("shop")
        .run_async(shop::reserve("sku_1", 3))
        .await;
    assert_eq!(r.ok(), Some(3));
    assert_eq!(cap.spans.len(), 1);
    let s = span(&cap, "observed::shop::reserve");
    assert_eq!(s.span_kind, SpanKind::Internal);
    assert_eq!(s.status, Status::Unset);
    // No argument is recorded by default.
    assert_eq!(span_attrs(s), attrs(&[("code.function", "reserve")]));
    assert!(s.events.is_empty());
    assert!(cap.lines.is_empty());
}

#[test]
fn sync_fn_span_and_question_mark_path() {
    let (r, cap) = Harness::new("shop").run(|| shop::price(4));
    assert_eq!(r.ok(), Some(1000));
    let s = span(&cap, "observed::shop::price");
    assert_eq!(s.span_kind, SpanKind::Internal);
    assert_eq!(s.status, Status::Unset);
    assert_eq!(span_attrs(s), attrs(&[("code.function", "price")]));
    assert_eq!(
        calls(&cap),
        vec![("price".into(), "observed::shop".into(), "ok".into(), 1.0)]
    );
}

#[tokio::test]
async fn arguments_are_not_recorded_unless_named() {
    let (r, cap) = Harness::new("auth")
        .run_async(secret("hunter2", 4242))
        .await;
    assert_eq!(r.ok(), Some(11));
    let s = span(&cap, "observed::secret");
    assert_eq!(span_attrs(s), attrs(&[("code.function", "secret")]));
}

#[tokio::test]
async fn nested_calls_are_parent_and_children_in_one_trace() {
    let order = Order {
        id: 42,
        email: "ada@example.com".into(),
    };
    let (r, cap) = Harness::new("checkout")
        .run_async(place_order(&order, 2))
        .await;
    assert_eq!(r.ok(), Some(500));
    let outer = span(&cap, "checkout.place_order");
    let reserve = span(&cap, "observed::shop::reserve");
    let price = span(&cap, "observed::shop::price");
    assert_eq!(
        span_attrs(outer),
        attrs(&[("code.function", "place_order"), ("order_id", "42")])
    );
    assert_eq!(outer.parent_span_id.to_string(), "0000000000000000");
    for child in [reserve, price] {
        assert_eq!(child.span_context.trace_id(), outer.span_context.trace_id());
        assert_eq!(child.parent_span_id, outer.span_context.span_id());
    }
    // Children end before their parent.
    let order_of_end: Vec<&str> = cap.spans.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(
        order_of_end,
        [
            "observed::shop::reserve",
            "observed::shop::price",
            "checkout.place_order"
        ]
    );
    // The line logged between the children belongs to the outer span.
    let line = cap.events("order_reserved")[0];
    assert_eq!(line_ids(line), ids(outer));
    assert_eq!(
        stable(line),
        json!({
            "level": "INFO",
            "service": "checkout",
            "event": "order_reserved",
            "target": "observed",
            "reserved": 2,
            "code.function": "place_order",
            "order_id": 42,
        })
    );
    assert_eq!(
        calls(&cap),
        vec![
            ("place_order".into(), "observed".into(), "ok".into(), 1.0),
            ("price".into(), "observed::shop".into(), "ok".into(), 1.0),
            ("reserve".into(), "observed::shop".into(), "ok".into(), 1.0),
        ]
    );
}

#[tokio::test]
async fn tracing_spans_lines_and_helpers_inside_a_call_belong_to_it() {
    use tracing::Instrument as _;
    let (r, cap) = Harness::new("orders")
        .run_async(async {
            // Made inside the harness's dispatcher (when first polled).
            query_order(9)
                .instrument(tracing::info_span!("request"))
                .await
        })
        .await;
    let current = r.expect("a span is current inside the call");
    let request = span(&cap, "request");
    let call = span(&cap, "observed::query_order");
    let db = span(&cap, "db.query");
    // One trace: request → call → db.query, and the call is what
    // `current_span_id()` sees inside it.
    assert_eq!(request.parent_span_id.to_string(), "0000000000000000");
    assert_eq!(call.parent_span_id, request.span_context.span_id());
    assert_eq!(db.parent_span_id, call.span_context.span_id());
    for s in [call, db] {
        assert_eq!(s.span_context.trace_id(), request.span_context.trace_id());
    }
    assert_eq!(current, call.span_context.span_id().to_string());
    assert_eq!(span_attrs(db), attrs(&[("table", "orders")]));
    // The line in db.query carries its fields and those of the call around it.
    let inner = cap.events("query_done")[0];
    assert_eq!(line_ids(inner), ids(db));
    assert_eq!(
        stable(inner),
        json!({
            "level": "INFO",
            "service": "orders",
            "event": "query_done",
            "target": "observed",
            "rows": 1,
            "table": "orders",
            "code.function": "query_order",
            "order_id": 9,
        })
    );
    // After db.query ends, lines are the call's again.
    let after = cap.events("order_loaded")[0];
    assert_eq!(line_ids(after), ids(call));
    assert_eq!(
        stable(after),
        json!({
            "level": "INFO",
            "service": "orders",
            "event": "order_loaded",
            "target": "observed",
            "code.function": "query_order",
            "order_id": 9,
        })
    );
}

#[test]
fn sync_call_is_current_for_its_lines_and_mark_failed() {
    let (r, cap) = Harness::new("stock").run(|| {
        let request = tracing::info_span!("request");
        let _entered = request.enter();
        soft_reserve("sku_9")
    });
    assert_eq!(r, 1);
    let request = span(&cap, "request");
    let call = span(&cap, "observed::soft_reserve");
    assert_eq!(call.parent_span_id, request.span_context.span_id());
    // `mark_failed` fails the innermost span: the call, not the request.
    assert_eq!(call.status, Status::error("implicit failure"));
    assert_eq!(request.status, Status::Unset);
    // The warning is an event of the call's span, and its line is the call's.
    assert_eq!(event_names(call), ["stock_low"]);
    let line = cap.events("stock_low")[0];
    assert_eq!(line_ids(line), ids(call));
    assert_eq!(
        stable(line),
        json!({
            "level": "WARN",
            "service": "stock",
            "event": "stock_low",
            "target": "observed",
            "left": 1,
            "code.function": "soft_reserve",
            "sku": "sku_9",
        })
    );
}

#[tokio::test]
async fn outbound_context_injected_inside_a_gateway_call_is_the_call() {
    use tracing::Instrument as _;
    let (r, cap) = Harness::new("books")
        .run_async(async {
            post_ledger()
                .instrument(tracing::info_span!("request"))
                .await
        })
        .await;
    let sent = r.expect("a traceparent");
    let call = span(&cap, "gateway ledger");
    assert_eq!(
        sent,
        format!(
            // Sampled, and a trace id observe made (W3C `random` flag).
            "00-{}-{}-03",
            call.span_context.trace_id(),
            call.span_context.span_id()
        )
    );
}

#[tokio::test]
async fn async_span_is_entered_on_every_poll_of_interleaved_calls() {
    let a = Order {
        id: 1,
        email: "a@example.com".into(),
    };
    let b = Order {
        id: 2,
        email: "b@example.com".into(),
    };
    let (_, cap) = Harness::new("checkout")
        .run_async(async {
            let (x, y) = tokio::join!(annotated(&a, 10, "x"), annotated(&b, 20, "y"));
            assert!(x.is_ok() && y.is_ok());
        })
        .await;
    assert_eq!(cap.spans.len(), 2);
    // Both calls interleave at the yield (join! picks who goes first), and
    // each line carries its own call's span.
    let steps: Vec<(String, String)> = cap
        .lines
        .iter()
        .map(|l| {
            (
                l["event"].as_str().unwrap_or_default().to_owned(),
                l["order.id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let mut firsts = [steps[0].clone(), steps[1].clone()];
    let mut seconds = [steps[2].clone(), steps[3].clone()];
    firsts.sort();
    seconds.sort();
    assert_eq!(steps.len(), 4);
    assert_eq!(
        firsts,
        [
            ("first_step".to_owned(), "1".to_owned()),
            ("first_step".to_owned(), "2".to_owned())
        ]
    );
    assert_eq!(
        seconds,
        [
            ("second_step".to_owned(), "1".to_owned()),
            ("second_step".to_owned(), "2".to_owned())
        ]
    );
    for line in &cap.lines {
        let id = line["order.id"].as_str().unwrap_or_default();
        let owner = cap
            .spans
            .iter()
            .find(|s| span_attrs(s)["order.id"] == id)
            .expect("a span per order");
        assert_eq!(line_ids(line), ids(owner));
    }
}

#[tokio::test]
async fn fields_go_on_the_span_and_on_every_line_inside_the_call() {
    let order = Order {
        id: 7,
        email: "ada@example.com".into(),
    };
    let (r, cap) = Harness::new("checkout")
        .run_async(async {
            let expected_user = observe::pseudonym("ada@example.com");
            (annotated(&order, 1299, "gift wrap").await, expected_user)
        })
        .await;
    let (result, user) = r;
    assert!(result.is_ok());
    assert!(user.starts_with("psn_"));
    let s = span(&cap, "observed::annotated");
    assert_eq!(
        span_attrs(s),
        attrs(&[
            ("code.function", "annotated"),
            ("order.id", "7"),
            ("user", &user),
            ("amount_cents", "1299"),
            ("debug_note", "\"gift wrap\""),
        ])
    );
    assert_eq!(cap.lines.len(), 2);
    for (line, event) in cap.lines.iter().zip(["first_step", "second_step"]) {
        assert_eq!(line_ids(line), ids(s));
        assert_eq!(
            stable(line),
            json!({
                "level": "INFO",
                "service": "checkout",
                "event": event,
                "target": "observed",
                "code.function": "annotated",
                "order.id": "7",
                "user": user,
                "amount_cents": 1299,
                "debug_note": "\"gift wrap\"",
            })
        );
    }
}

// ---------------------------------------------------------------- failures

#[tokio::test]
async fn err_sets_status_error_type_exception_event_and_one_error_line() {
    let (r, cap) = Harness::new("shop").run_async(shop::reserve("", 1)).await;
    assert!(r.is_err());
    let s = span(&cap, "observed::shop::reserve");
    assert_eq!(
        s.status,
        Status::Error {
            description: "out of stock".into()
        }
    );
    assert_eq!(
        span_attrs(s),
        attrs(&[("code.function", "reserve"), ("error.type", "StockError")])
    );
    assert_eq!(
        exceptions(s),
        vec![attrs(&[
            ("exception.type", "StockError"),
            ("exception.message", "out of stock"),
        ])]
    );
    assert_eq!(cap.lines.len(), 1);
    let line = cap.events("call_failed")[0];
    assert_eq!(line_ids(line), ids(s));
    assert_eq!(
        stable(line),
        json!({
            "level": "ERROR",
            "service": "shop",
            "event": "call_failed",
            "target": "observe_core::observed",
            "code.function": "reserve",
            "code.namespace": "observed::shop",
            "error.type": "StockError",
            "error.message": "out of stock",
            "implicit": false,
        })
    );
    assert_eq!(
        calls(&cap),
        vec![(
            "reserve".into(),
            "observed::shop".into(),
            "error".into(),
            1.0
        )]
    );
    assert_eq!(
        points(&cap, "observed.duration"),
        vec![(
            attrs(&[
                ("code.function", "reserve"),
                ("code.namespace", "observed::shop"),
                ("result", "error"),
            ]),
            1.0
        )]
    );
    assert_eq!(
        points(&cap, "observed.active"),
        vec![(
            attrs(&[
                ("code.function", "reserve"),
                ("code.namespace", "observed::shop")
            ]),
            0.0
        )]
    );
    // Not a gateway: no gateway metrics.
    assert!(cap.metric("external_gateway.requests").is_empty());
}

#[tokio::test]
async fn log_errors_false_keeps_status_and_metrics_but_writes_no_line() {
    let (r, cap) = Harness::new("shop").run_async(quiet_lookup(9)).await;
    assert!(r.is_err());
    let s = span(&cap, "observed::quiet_lookup");
    assert_eq!(
        s.status,
        Status::Error {
            description: "out of stock".into()
        }
    );
    assert_eq!(event_names(s), ["exception"]);
    assert!(cap.lines.is_empty(), "{:?}", cap.raw_lines);
    assert_eq!(
        calls(&cap),
        vec![(
            "quiet_lookup".into(),
            "observed".into(),
            "error".into(),
            1.0
        )]
    );
}

#[test]
fn implicit_failure_of_an_ok_value_is_a_failure() {
    let (r, cap) = Harness::new("payments").run(|| {
        let ok = confirm("success").map(|r| r.status);
        let pending = confirm("processing").map(|r| r.status);
        (ok, pending)
    });
    assert_eq!(r, (Ok("success"), Ok("processing")));
    let results: Vec<String> = cap
        .spans
        .iter()
        .map(|s| format!("{:?}", span_attrs(s).get("error.type")))
        .collect();
    assert_eq!(results, ["None", "Some(\"payment_not_confirmed\")"]);
    let line = cap.events("call_failed")[0];
    assert_eq!(line["error.type"], "payment_not_confirmed");
    assert_eq!(line["implicit"], true);
    assert_eq!(
        calls(&cap),
        vec![
            ("confirm".into(), "observed".into(), "error".into(), 1.0),
            ("confirm".into(), "observed".into(), "ok".into(), 1.0),
        ]
    );
}

#[test]
fn sync_panic_ends_the_span_with_error_type_panic() {
    let (r, cap) = Harness::new("worker").run(|| {
        let first = explode(false);
        let second = std::panic::catch_unwind(|| explode(true));
        (first, second.is_err())
    });
    assert_eq!(r, (1, true));
    assert_eq!(cap.spans.len(), 2);
    let panicked = &cap.spans[1];
    assert_eq!(panicked.name, "observed::explode");
    assert_eq!(
        panicked.status,
        Status::Error {
            description: "the function panicked".into()
        }
    );
    assert_eq!(
        span_attrs(panicked),
        attrs(&[("code.function", "explode"), ("error.type", "panic")])
    );
    let line = cap.events("call_failed")[0];
    assert_eq!(line["error.type"], "panic");
    assert_eq!(
        calls(&cap),
        vec![
            ("explode".into(), "observed".into(), "error".into(), 1.0),
            ("explode".into(), "observed".into(), "ok".into(), 1.0),
        ]
    );
    assert_eq!(
        points(&cap, "observed.active"),
        vec![(
            attrs(&[("code.function", "explode"), ("code.namespace", "observed")]),
            0.0
        )]
    );
}

#[tokio::test]
async fn dropped_future_is_cancelled_and_no_longer_active() {
    let (_, cap) = Harness::new("worker")
        .run_async(async {
            tokio::select! {
                _ = wait_forever() => unreachable!("never finishes"),
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        })
        .await;
    let s = span(&cap, "observed::wait_forever");
    assert_eq!(
        s.status,
        Status::Error {
            description: "the call was dropped before it finished".into()
        }
    );
    assert_eq!(
        span_attrs(s),
        attrs(&[
            ("code.function", "wait_forever"),
            ("error.type", "cancelled")
        ])
    );
    assert_eq!(cap.events("call_failed")[0]["error.type"], "cancelled");
    // The future's destructors ran inside the call's span.
    let released = cap.events("reservation_released");
    assert_eq!(released.len(), 1);
    assert_eq!(line_ids(released[0]), ids(s));
    assert_eq!(released[0]["code.function"], "wait_forever");
    assert_eq!(
        calls(&cap),
        vec![(
            "wait_forever".into(),
            "observed".into(),
            "error".into(),
            1.0
        )]
    );
    assert_eq!(
        points(&cap, "observed.active"),
        vec![(
            attrs(&[
                ("code.function", "wait_forever"),
                ("code.namespace", "observed")
            ]),
            0.0
        )]
    );
}

// ---------------------------------------------------------------- gateways

#[tokio::test]
async fn gateway_span_is_a_client_span_named_after_the_gateway() {
    let (r, cap) = Harness::new("payments").run_async(charge(5, None)).await;
    assert_eq!(r.ok().as_deref(), Some("rcpt_5"));
    let s = span(&cap, "gateway bank");
    assert_eq!(s.span_kind, SpanKind::Client);
    assert_eq!(s.status, Status::Unset);
    assert_eq!(
        span_attrs(s),
        attrs(&[
            ("code.function", "charge"),
            ("gateway", "bank"),
            ("order_id", "5")
        ])
    );
    assert_eq!(
        points(&cap, "external_gateway.requests"),
        vec![(attrs(&[("gateway", "bank"), ("status", "success")]), 1.0)]
    );
    assert_eq!(
        points(&cap, "external_gateway.request.duration"),
        vec![(attrs(&[("gateway", "bank"), ("status", "success")]), 1.0)]
    );
    assert!(cap.lines.is_empty());
}

/// The span's times come from the clock reads the call makes for its
/// duration: wall-clock instants around the call, and the same duration as
/// `observed.duration` records.
#[tokio::test]
async fn span_times_are_wall_clock_and_match_the_recorded_duration() {
    let before = std::time::SystemTime::now();
    let (r, cap) = Harness::new("payments")
        .run_async(slow_charge(Duration::from_millis(30)))
        .await;
    let after = std::time::SystemTime::now();
    assert_eq!(r, Ok(()));
    let s = span(&cap, "gateway bank");
    let tolerance = Duration::from_millis(2);
    assert!(
        s.start_time + tolerance >= before,
        "{:?} < {before:?}",
        s.start_time
    );
    assert!(
        s.end_time <= after + tolerance,
        "{:?} > {after:?}",
        s.end_time
    );
    let span_secs = s
        .end_time
        .duration_since(s.start_time)
        .expect("end after start")
        .as_secs_f64();
    assert!(span_secs >= 0.030, "{span_secs}");
    let recorded: Vec<f64> = cap
        .metric("observed.duration")
        .into_iter()
        .map(|p| match p.value {
            MetricValue::Histogram { sum, .. } => sum,
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    // Same two clock reads; only the per-thread wall-clock anchor may move.
    assert!(
        (recorded[0] - span_secs).abs() < 0.001,
        "{recorded:?} vs {span_secs}"
    );
}

#[tokio::test]
async fn gateway_success_error_and_timeout_are_counted_apart() {
    let (r, cap) = Harness::new("payments")
        .run_async(async {
            (
                charge(1, None).await,
                charge(2, Some(BankError::Declined)).await,
                charge(3, Some(BankError::Declined)).await,
                slow_charge(Duration::from_secs(5)).await,
                slow_charge(Duration::ZERO).await,
            )
        })
        .await;
    assert_eq!(
        r,
        (
            Ok("rcpt_1".to_owned()),
            Err(BankError::Declined),
            Err(BankError::Declined),
            Err(BankError::TimedOut),
            Ok(())
        )
    );
    assert_eq!(
        points(&cap, "external_gateway.requests"),
        vec![
            (
                attrs(&[
                    ("error.type", "declined"),
                    ("gateway", "bank"),
                    ("status", "error")
                ]),
                2.0
            ),
            (
                attrs(&[
                    ("error.type", "timeout"),
                    ("gateway", "bank"),
                    ("status", "timeout")
                ]),
                1.0
            ),
            (attrs(&[("gateway", "bank"), ("status", "success")]), 2.0),
        ]
    );
    assert_eq!(
        points(&cap, "external_gateway.request.duration"),
        vec![
            (attrs(&[("gateway", "bank"), ("status", "error")]), 2.0),
            (attrs(&[("gateway", "bank"), ("status", "success")]), 2.0),
            (attrs(&[("gateway", "bank"), ("status", "timeout")]), 1.0),
        ]
    );
    assert_eq!(
        calls(&cap),
        vec![
            ("charge".into(), "observed".into(), "error".into(), 2.0),
            ("charge".into(), "observed".into(), "ok".into(), 1.0),
            ("slow_charge".into(), "observed".into(), "error".into(), 1.0),
            ("slow_charge".into(), "observed".into(), "ok".into(), 1.0),
        ]
    );

    // One line per failure, gateway flavour.
    let failed = cap.events("gateway_call_failed");
    assert_eq!(failed.len(), 3);
    assert_eq!(
        stable(failed[0]),
        json!({
            "level": "ERROR",
            "service": "payments",
            "event": "gateway_call_failed",
            "target": "observe_core::observed",
            "gateway": "bank",
            "code.function": "charge",
            "code.namespace": "observed",
            "error.type": "declined",
            "error.message": "card declined",
            "timeout": false,
            "order_id": 2,
        })
    );
    let timed_out = failed[2];
    assert!(timed_out["duration_ms"].as_u64().is_some_and(|d| d >= 50));
    assert_eq!(
        stable(timed_out),
        json!({
            "level": "ERROR",
            "service": "payments",
            "event": "gateway_call_failed",
            "target": "observe_core::observed",
            "gateway": "bank",
            "code.function": "slow_charge",
            "code.namespace": "observed",
            "error.type": "timeout",
            "error.message": "timed out",
            "timeout": true,
        })
    );
    let timeout_span = cap
        .spans
        .iter()
        .find(|s| span_attrs(s).get("error.type").map(String::as_str) == Some("timeout"))
        .expect("the timed-out span");
    assert_eq!(timeout_span.name, "gateway bank");
    assert_eq!(
        timeout_span.status,
        Status::Error {
            description: "timed out".into()
        }
    );
    assert_eq!(
        span_attrs(timeout_span),
        attrs(&[
            ("code.function", "slow_charge"),
            ("error.type", "timeout"),
            ("gateway", "bank"),
        ])
    );
}

// ---------------------------------------------------------------- async_trait

#[tokio::test]
async fn async_trait_methods_are_observed_as_futures() {
    let books = Books { account: "acc_9" };
    let (r, cap) = Harness::new("ledger")
        .run_async(async {
            let ledger: &(dyn Ledger + Sync) = &books;
            (ledger.post(300).await, ledger.post(-1).await)
        })
        .await;
    assert_eq!(r, (Ok(300), Err(BankError::Unavailable)));
    assert_eq!(cap.spans.len(), 2);
    let ok = &cap.spans[0];
    assert_eq!(ok.name, "observed::post");
    assert_eq!(ok.status, Status::Unset);
    assert_eq!(
        span_attrs(ok),
        attrs(&[
            ("code.function", "post"),
            ("account", "acc_9"),
            ("amount_cents", "300")
        ])
    );
    let failed = &cap.spans[1];
    assert_eq!(
        span_attrs(failed),
        attrs(&[
            ("code.function", "post"),
            ("account", "acc_9"),
            ("amount_cents", "-1"),
            ("error.type", "unavailable"),
        ])
    );
    assert_eq!(
        stable(cap.events("call_failed")[0]),
        json!({
            "level": "ERROR",
            "service": "ledger",
            "event": "call_failed",
            "target": "observe_core::observed",
            "code.function": "post",
            "code.namespace": "observed",
            "error.type": "unavailable",
            "error.message": "bank unavailable",
            "implicit": false,
            "account": "acc_9",
            "amount_cents": -1,
        })
    );
}

// ---------------------------------------------------------------- disabled

#[tokio::test]
async fn disabled_telemetry_records_no_span_and_keeps_results() {
    let order = Order {
        id: 3,
        email: "x@example.com".into(),
    };
    let (r, cap) = Harness::new("checkout")
        .configure(|b| b.disabled(true))
        .run_async(async {
            (
                place_order(&order, 1).await,
                charge(1, Some(BankError::Declined)).await,
                shop::reserve("", 1).await.is_err(),
            )
        })
        .await;
    assert_eq!(r, (Ok(250), Err(BankError::Declined), true));
    assert!(cap.spans.is_empty());
    assert!(cap.metric("observed.calls").is_empty());
    assert!(cap.metric("external_gateway.requests").is_empty());
    // JSON logs stay on; the error lines of #[observed] need the SDK.
    assert_eq!(
        cap.lines
            .iter()
            .map(|l| l["event"].as_str().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["order_reserved"]
    );
}

#[observed]
fn tally(fail: bool) -> Result<(), StockError> {
    if fail {
        Err(StockError)
    } else {
        Ok(())
    }
}

/// A call site binds its instruments to the first few telemetry instances
/// that call it and records through unbound ones after that: either way,
/// every instance counts exactly its own calls.
#[test]
fn every_telemetry_instance_counts_only_its_own_calls() {
    for n in 1..=7u32 {
        let ((), cap) = Harness::new("shop").run(|| {
            for i in 0..2 * n {
                let _ = tally(i % 2 == 1);
            }
        });
        let mut got = calls(&cap);
        got.sort_by(|a, b| a.2.cmp(&b.2));
        assert_eq!(
            got,
            vec![
                (
                    "tally".into(),
                    "observed".into(),
                    "error".into(),
                    f64::from(n)
                ),
                ("tally".into(), "observed".into(), "ok".into(), f64::from(n)),
            ],
            "instance {n}"
        );
        assert_eq!(
            points(&cap, "observed.active"),
            vec![(
                attrs(&[("code.function", "tally"), ("code.namespace", "observed")]),
                0.0
            )],
            "instance {n}"
        );
        assert_eq!(cap.spans.len(), 2 * n as usize);
    }
}

#[test]
fn without_observe_installed_functions_just_run() {
    assert_eq!(shop::price(2).ok(), Some(500));
    assert_eq!(explode(false), 1);
}
