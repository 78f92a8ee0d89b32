//! Spans: names, parents, fields, and what is current inside a call.

use super::*;

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
