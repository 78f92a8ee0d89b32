//! Quickstart: init, a request-like span with `order_id`, a few events, one
//! pseudonymised user. Every line on stdout is one JSON object.
//!
//! Run it with `cargo run --example quickstart`.

use observe::tracing;

fn main() -> Result<(), observe::InitError> {
    let guard = observe::Telemetry::builder("payment-service")
        .service_version(env!("CARGO_PKG_VERSION"))
        .environment("development")
        .init()?;

    observe::info!("service_started", port = 8080, "payment service ready");

    let user = observe::pseudonym("ada@example.com");
    let request = tracing::info_span!("POST /pay", order_id = "ord_123", user = %user);
    request.in_scope(|| {
        // Store this on the order: support goes from order id to trace.
        let trace_id = observe::current_trace_id().unwrap_or_default();
        observe::info!("order_created", amount_cents = 1299, currency = "EUR", trace_id_on_order = %trace_id);
        observe::warn!("gateway_slow", gateway = "bank", latency_ms = 2300);
        observe::error!(
            "payment_failed",
            gateway = "bank",
            gateway_status_code = 504,
            card_number = "4111 1111 1111 1111",
            "bank gateway timed out"
        );
    });

    // End the request span so it is exported, then flush every signal
    // before exiting (dropping the guard does the same).
    drop(request);
    if let Err(e) = guard.shutdown(std::time::Duration::from_secs(2)) {
        eprintln!("telemetry shutdown: {e}");
    }
    Ok(())
}
