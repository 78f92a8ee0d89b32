//! The SDK variables besides the exporter's, end to end: each one set
//! changes what reaches a real OTLP receiver (tests/support), and each one
//! set to a value observe does not accept fails init with an error naming
//! the variable, the value and what is accepted. `OTEL_PROPAGATORS` and
//! `OTEL_LOG_LEVEL` are process-wide: tests/process_vars.rs.

mod support;

use observe::testing::TelemetryBuilderExt as _;
use observe::{LogOutput, MemorySink, Telemetry, TelemetryGuard};
use opentelemetry_proto::tonic::metrics::v1::{metric, AggregationTemporality};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{env, Receiver};

fn start(rx: &Receiver, vars: &[(&str, &str)]) -> (observe::tracing::Dispatch, TelemetryGuard) {
    let mut all = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.http_endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
    ];
    all.extend(vars.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Telemetry::builder("vars-test")
        .env_source(env(&pairs))
        .log_output(LogOutput::Sink(Arc::new(MemorySink::new())))
        .build()
        .expect("valid configuration")
        .into_parts()
}

fn init_error(vars: &[(&str, &str)]) -> String {
    Telemetry::builder("vars-test")
        .env_source(env(vars))
        .log_output(LogOutput::Sink(Arc::new(MemorySink::new())))
        .build()
        .err()
        .unwrap_or_else(|| panic!("{vars:?} was accepted"))
        .to_string()
}

#[test]
fn bad_values_fail_init_naming_the_variable_the_value_and_what_is_accepted() {
    let ms = "a whole number of milliseconds, at least 1";
    let cases: &[(&str, &str, &str)] = &[
        ("OTEL_BSP_SCHEDULE_DELAY", "5s", ms),
        ("OTEL_BSP_EXPORT_TIMEOUT", "0", ms),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "lots", "a whole number, at least 1"),
        (
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            "4096",
            "a whole number from 1 to the queue size (2048, OTEL_BSP_MAX_QUEUE_SIZE)",
        ),
        ("OTEL_BLRP_SCHEDULE_DELAY", "-1", ms),
        ("OTEL_BLRP_EXPORT_TIMEOUT", "1.5", ms),
        ("OTEL_BLRP_MAX_QUEUE_SIZE", "0", "a whole number, at least 1"),
        (
            "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
            "0",
            "a whole number from 1 to the queue size (2048, OTEL_BLRP_MAX_QUEUE_SIZE)",
        ),
        ("OTEL_METRIC_EXPORT_INTERVAL", "1m", ms),
        ("OTEL_METRIC_EXPORT_TIMEOUT", "never", ms),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s", ms),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "x", ms),
        (
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
            "deltaish",
            "cumulative, delta or lowmemory",
        ),
        (
            "OTEL_PROPAGATORS",
            "tracecontext,b3",
            "a comma-separated list of tracecontext and baggage, or none (b3, jaeger, xray and ottrace are not supported)",
        ),
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "0", "a whole number, at least 1"),
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "many", "a whole number"),
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "-3", "a whole number"),
        ("OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", "big", "a whole number, at least 1"),
        ("OTEL_LOG_LEVEL", "verbose", "debug, info, warn, error or none"),
        (
            "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
            "base2_exponential_bucket_histogram",
            "explicit_bucket_histogram (observe's alert rules and dashboards query its explicit \
             buckets; base2_exponential_bucket_histogram is not supported)",
        ),
    ];
    for (variable, value, accepted) in cases {
        let mut vars = vec![(*variable, *value)];
        if variable.starts_with("OTEL_EXPORTER_OTLP_") && variable.ends_with("TIMEOUT") {
            vars.push(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"));
        }
        assert_eq!(
            init_error(&vars),
            format!("{variable} = {value:?} is not valid: use {accepted}"),
        );
    }
    // Read even when the SDK is disabled: a typo is found before it matters.
    assert_eq!(
        init_error(&[
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "lots")
        ]),
        "OTEL_BSP_MAX_QUEUE_SIZE = \"lots\" is not valid: use a whole number, at least 1"
    );
}

#[test]
fn batch_sizes_shape_the_export_requests() {
    let rx = Receiver::start();
    let (dispatch, guard) = start(
        &rx,
        &[
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2"),
            ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "3"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ],
    );
    observe::tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..5 {
            observe::tracing::info_span!("job", i).in_scope(|| observe::info!("job_done"));
        }
    });
    guard.flush(Duration::from_secs(10)).expect("flush");
    // Up to 4 exports are in flight at once (environment.md#retries), so
    // requests may arrive in any order: their sizes are what is compared.
    let mut spans: Vec<usize> = rx.trace_requests().iter().map(span_count).collect();
    spans.sort_unstable();
    assert_eq!(spans, vec![1, 2, 2]);
    let mut records: Vec<usize> = rx.log_requests().iter().map(record_count).collect();
    records.sort_unstable();
    assert_eq!(records, vec![2, 3]);
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
}

#[test]
fn the_metric_interval_and_temporality_are_what_the_variables_say() {
    let rx = Receiver::start();
    let (dispatch, guard) = start(
        &rx,
        &[
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
            ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta"),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_LOGS_EXPORTER", "none"),
        ],
    );
    observe::tracing::dispatcher::with_default(&dispatch, || {
        observe::tracing::info_span!("job").in_scope(|| {});
    });
    // Two exports without a flush: the 200 ms interval, not the 60 s default.
    let t0 = Instant::now();
    assert!(
        rx.wait_until(Duration::from_secs(5), |r| r.requests().2 >= 2),
        "metrics exported every 200 ms"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    let sums: Vec<i32> = rx
        .metric_requests()
        .iter()
        .flat_map(|r| &r.resource_metrics)
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .filter_map(|m| match &m.data {
            Some(metric::Data::Sum(s)) if s.is_monotonic => Some(s.aggregation_temporality),
            Some(metric::Data::Histogram(h)) => Some(h.aggregation_temporality),
            _ => None,
        })
        .collect();
    assert!(!sums.is_empty());
    assert!(
        sums.iter()
            .all(|t| *t == AggregationTemporality::Delta as i32),
        "{sums:?}"
    );
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
}

#[test]
fn attribute_limits_cut_spans_and_log_records() {
    let rx = Receiver::start();
    let (dispatch, guard) = start(
        &rx,
        &[
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "2"),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4"),
            ("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", "1"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ],
    );
    observe::tracing::dispatcher::with_default(&dispatch, || {
        observe::tracing::info_span!("job", a = "héllo", b = 12345, c = "third").in_scope(|| {
            observe::info!("job_done", x = "abcdef", y = "second");
        });
    });
    guard.flush(Duration::from_secs(10)).expect("flush");
    let reqs = rx.trace_requests();
    let span = &reqs[0].resource_spans[0].scope_spans[0].spans[0];
    let attrs: Vec<(String, String)> = span
        .attributes
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                format!("{:?}", kv.value.as_ref().and_then(|v| v.value.as_ref())),
            )
        })
        .collect();
    assert_eq!(
        attrs,
        vec![
            ("a".to_owned(), "Some(StringValue(\"hél\"))".to_owned()),
            ("b".to_owned(), "Some(IntValue(12345))".to_owned()),
        ],
        "the first two, strings cut to 4 bytes at a character boundary"
    );
    assert_eq!(span.dropped_attributes_count, 1);
    let logs = rx.log_requests();
    let record = &logs[0].resource_logs[0].scope_logs[0].log_records[0];
    let keys: Vec<(&str, String)> = record
        .attributes
        .iter()
        .map(|kv| {
            (
                kv.key.as_str(),
                format!("{:?}", kv.value.as_ref().and_then(|v| v.value.as_ref())),
            )
        })
        .collect();
    assert_eq!(keys, vec![("x", "Some(StringValue(\"abcd\"))".to_owned())]);
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
}

fn span_count(
    r: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
) -> usize {
    r.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum()
}

fn record_count(
    r: &opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest,
) -> usize {
    r.resource_logs
        .iter()
        .flat_map(|rl| &rl.scope_logs)
        .map(|sl| sl.log_records.len())
        .sum()
}
