//! Init: environment variables, typed errors, and one global install per process.

use observe::testing::TelemetryBuilderExt as _;
use observe::{InitError, Telemetry};
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

fn build(pairs: &[(&str, &str)]) -> Result<Telemetry, InitError> {
    Telemetry::builder("payment-service")
        .env_source(env(pairs))
        .log_output(observe::LogOutput::Sink(std::sync::Arc::new(
            observe::MemorySink::new(),
        )))
        .build()
}

#[test]
fn typed_errors_say_what_to_fix() {
    let cases: Vec<(&[(&str, &str)], &str)> = vec![
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")],
            "OTEL_EXPORTER_OTLP_ENDPOINT = \"collector:4317\" is not a valid OTLP endpoint",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
            "OTLP protocol \"http/json\" is not supported",
        ),
        (
            &[("OTEL_TRACES_SAMPLER", "jaeger_remote")],
            "unknown sampler \"jaeger_remote\"",
        ),
        (
            &[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ],
            "sampler argument \"2\" is not a number between 0 and 1",
        ),
        (
            &[("RUST_LOG", "info,[")],
            "log filter \"info,[\" is invalid",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_HEADERS", "novalue")],
            "OTLP headers \"novalue\" are malformed",
        ),
        (
            &[("OTEL_RESOURCE_ATTRIBUTES", "a")],
            "OTEL_RESOURCE_ATTRIBUTES = \"a\" is malformed",
        ),
        (
            &[(
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment.name=production",
            )],
            "no pseudonym key in a production environment",
        ),
        (
            &[("OBSERVE_PSEUDONYM_KEY", "short")],
            "the pseudonym key is 5 bytes long",
        ),
        (
            &[("OBSERVE_LOG_SAMPLING", "info=2")],
            "log sampling rule \"info=2\" is invalid",
        ),
    ];
    for (vars, expected) in cases {
        let err = build(vars).expect_err("must fail");
        assert!(err.to_string().starts_with(expected), "{vars:?}: got {err}");
    }
    assert!(matches!(
        Telemetry::builder("").env_source(env(&[])).build(),
        Err(InitError::InvalidServiceName { .. })
    ));
}

#[test]
fn builder_values_override_the_environment() {
    let (_, cap) = observe::testing::Harness::new("svc")
        .configure(|b| {
            // The environment says always_on and error; the builder says otherwise.
            b.env_source(env(&[
                ("OTEL_TRACES_SAMPLER", "always_on"),
                ("RUST_LOG", "error"),
            ]))
            .sampler(observe::HeadSampler::AlwaysOff)
            .log_filter("info")
        })
        .run(|| {
            observe::tracing::info_span!("op").in_scope(|| observe::info!("kept_by_builder_filter"))
        });
    assert!(cap.spans.is_empty(), "builder sampler wins");
    assert_eq!(cap.lines.len(), 1, "builder filter wins");
    // Trace ids are still assigned when not sampled.
    assert_eq!(cap.lines[0]["trace_id"].as_str().map(str::len), Some(32));
}

#[test]
fn environment_configures_without_code() {
    let (_, cap) = observe::testing::Harness::new("svc")
        .configure(|b| {
            b.env_source(env(&[
                ("RUST_LOG", "warn"),
                ("OTEL_TRACES_SAMPLER", "always_off"),
                ("OBSERVE_LOG_SAMPLING", "warn=1"),
            ]))
        })
        .run(|| {
            observe::tracing::info_span!("op").in_scope(|| {
                observe::info!("dropped_by_rust_log");
                observe::warn!("kept");
            })
        });
    assert!(cap.spans.is_empty(), "OTEL_TRACES_SAMPLER=always_off");
    let events: Vec<_> = cap.lines.iter().map(|l| l["event"].clone()).collect();
    assert_eq!(events, vec![serde_json::json!("kept")]);
}

#[test]
fn sdk_disabled_keeps_logs_and_drops_telemetry() {
    let (_, cap) = observe::testing::Harness::new("svc")
        .configure(|b| b.env_source(env(&[("OTEL_SDK_DISABLED", "true")])))
        .run(|| {
            observe::tracing::info_span!("op").in_scope(|| observe::info!("still_logged"));
            observe::saturation("db_pool").record(1, 2);
        });
    assert!(cap.spans.is_empty());
    assert!(cap.metrics.is_empty());
    assert_eq!(cap.lines.len(), 1);
    assert_eq!(cap.lines[0]["event"], "still_logged");
}

#[test]
fn metrics_listener_serves_prometheus_text() {
    use std::io::{Read, Write};
    let t = Telemetry::builder("payment-service")
        .env_source(env(&[("OBSERVE_METRICS_ADDR", "127.0.0.1:0")]))
        .log_output(observe::LogOutput::Sink(std::sync::Arc::new(
            observe::MemorySink::new(),
        )))
        .build()
        .expect("valid");
    let addr = t.guard().metrics_addr().expect("listener started");
    observe::tracing::dispatcher::with_default(t.dispatch(), || {
        observe::saturation("db_pool").record(42, 100);
    });
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut body = String::new();
    conn.read_to_string(&mut body).expect("response");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(
        body.contains("observe_resource_utilization{")
            && body.contains("resource=\"db_pool\"")
            && body.contains("} 0.42"),
        "{body}"
    );
    let bad = Telemetry::builder("svc")
        .env_source(env(&[("OBSERVE_METRICS_ADDR", "not an address")]))
        .build();
    assert!(matches!(
        bad,
        Err(InitError::Exporter {
            signal: "metrics",
            ..
        })
    ));
}
