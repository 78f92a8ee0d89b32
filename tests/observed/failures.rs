//! Failures: `Err`, implicit failures, panics and cancellations.

use super::*;

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
