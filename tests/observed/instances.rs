//! Disabled telemetry, several telemetry instances, and no observe at all.

use super::*;

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
