//! `async_trait` methods.

use super::*;

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
