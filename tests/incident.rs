//! The incident scenario with short timings: the masked failures are counted,
//! the gateway failure ratio crosses 5% soon after the fault, the synthetic
//! check fails, and the trace of a failed order contains the bank span with
//! the gateway error. (Its own test binary: it installs telemetry globally.)

#[path = "../examples/incident/scenario.rs"]
mod scenario;

use observe::testing::TelemetryBuilderExt as _;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incident_is_caught() {
    let snapshot = observe::metrics::SnapshotReader::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let export_dir = dir.path().to_owned();
    let guard = observe::Telemetry::builder("payment-service")
        .env_source(|_| None)
        .pseudonym_key("incident-test-pseudonym-key")
        .log_output(observe::LogOutput::Sink(Arc::new(
            observe::MemorySink::new(),
        )))
        .metric_reader(snapshot.clone())
        .export_dir(&export_dir)
        .init()
        .expect("telemetry");
    let guard = Arc::new(guard);
    let flusher = Arc::clone(&guard);
    let cfg = scenario::Config::short();
    let t = scenario::run(
        &cfg,
        scenario::Handles {
            snapshot,
            metrics_router: None,
            // Read back from the OTLP-JSON export files.
            spans: Arc::new(move |id| scenario::spans_from_files(&export_dir, id)),
            flush: Arc::new(move || {
                flusher
                    .flush(std::time::Duration::from_secs(5))
                    .expect("flush");
            }),
            prometheus: None,
            progress: Arc::new(|at, msg| eprintln!("{at:>5.1} s  {msg}")),
        },
    )
    .await
    .expect("scenario");
    drop(guard);

    // A status-code-only metric sees nothing; observe sees the masked failures.
    assert!(t.requests > 50, "{t:?}");
    assert_eq!(t.status_code_errors, 0, "the service never answered 5xx");
    assert!(t.masked_failures > 10, "{t:?}");
    assert!(t.observe_errors >= t.masked_failures, "{t:?}");
    assert_eq!(t.gateway_failure_ratio_peak, 1.0, "every bank call fails");
    // Detection: the gateway alert and the synthetic check, within seconds.
    let gw = t.gateway_alert.expect("ExternalGatewayErrors fired");
    assert!(gw > t.fault_at && gw - t.fault_at < 5.0, "{t:?}");
    let er = t.error_ratio_alert.expect("HighErrorRate fired");
    assert!(er > t.fault_at && er - t.fault_at < 5.0, "{t:?}");
    let syn = t.first_synthetic_failure.expect("synthetic check failed");
    assert!(syn > t.fault_at && syn - t.fault_at < 3.0, "{t:?}");
    // From the order id to the bank span.
    let order = t.traced_order.expect("an affected order");
    let names: Vec<&str> = order.spans.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"POST /pay"), "{names:?}");
    let bank = order
        .spans
        .iter()
        .find(|s| s.name == "gateway bank")
        .expect("bank span");
    assert_eq!(bank.error.as_deref(), Some("504"));
    assert_eq!(
        bank.attributes.get("gateway").map(String::as_str),
        Some("bank")
    );
    let server = order
        .spans
        .iter()
        .find(|s| s.name == "POST /pay")
        .expect("server span");
    assert_eq!(server.error.as_deref(), Some("masked_failure"));
}
