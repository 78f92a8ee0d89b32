//! The process-wide install: once, and a clear error the second time. (Its
//! own test binary: it installs a global subscriber.)

use observe::InitError;
use std::sync::Arc;

#[test]
fn init_twice_is_a_typed_error_and_the_first_install_works() {
    let sink = observe::MemorySink::new();
    let guard = observe::Telemetry::builder("payment-service")
        .env_source(|_| None)
        .log_output(observe::LogOutput::Sink(Arc::new(sink.clone())))
        .init()
        .expect("first init");
    let second = observe::Telemetry::builder("payment-service")
        .env_source(|_| None)
        .log_output(observe::LogOutput::Sink(Arc::new(
            observe::MemorySink::new(),
        )))
        .init();
    assert!(matches!(second, Err(InitError::AlreadyInitialized)));
    let span = observe::tracing::info_span!("create_order");
    let (trace_id, traceparent) = span.in_scope(|| {
        observe::info!("order_created", order_id = "ord_1");
        (observe::current_trace_id(), observe::current_traceparent())
    });
    drop(span);
    guard
        .shutdown(std::time::Duration::from_secs(2))
        .expect("clean shutdown");
    let lines = sink.lines();
    let line: serde_json::Value = serde_json::from_str(
        lines
            .iter()
            .find(|l| l.contains("order_created"))
            .expect("line written before shutdown"),
    )
    .expect("json");
    let trace_id = trace_id.expect("inside a span");
    assert_eq!(line["trace_id"], trace_id.as_str());
    assert_eq!(
        traceparent.expect("traceparent"),
        format!(
            "00-{}-{}-03",
            trace_id,
            line["span_id"].as_str().expect("span id")
        )
    );
}
