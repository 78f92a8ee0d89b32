//! Export end to end: an axum app with `ObserveLayer`, configured only by
//! `OTEL_*` variables, sends its spans, metrics and log records to a real
//! OTLP receiver (tests/support), once over gRPC and once over
//! HTTP/protobuf; and the embedded file default writes OTLP/JSON that the
//! official protobuf types decode to exactly what the OTLP exporter sends.

mod support;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use http::Request;
use observe::export::file::{read_log_records, read_spans, StoredStatus};
use observe::opentelemetry::trace::SpanKind;
use observe::testing::TelemetryBuilderExt as _;
use observe::tower::ObserveLayer;
use observe::tracing::instrument::WithSubscriber;
use observe::tracing::Instrument;
use observe::{LogOutput, MemorySink, Telemetry};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use support::{env, RPoint, RValue, Receiver};
use tower::ServiceExt;

async fn order(Path(id): Path<String>) -> &'static str {
    let span = observe::tracing::info_span!("load_order", order_id = %id);
    async {
        observe::info!("order_loaded", order_id = %id, "order loaded");
    }
    .instrument(span)
    .await;
    "ok"
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// One request through the app, then the guard's shutdown; returns the log lines.
async fn one_request(vars: &[(&str, &str)]) -> Vec<String> {
    let sink = MemorySink::new();
    // A Deployment's downward-API variables, beside the test's own.
    let mut vars = vars.to_vec();
    vars.extend(K8S_VARS);
    let telemetry = Telemetry::builder("checkout")
        .service_version("1.4.2")
        .env_source(env(&vars))
        .log_output(LogOutput::Sink(Arc::new(sink.clone())))
        .build()
        .expect("valid configuration");
    let (dispatch, guard) = telemetry.into_parts();
    let app = Router::new()
        .route("/orders/{id}", get(order))
        .layer(ObserveLayer::new());
    let status = async {
        let res = app
            .oneshot(
                Request::get("/orders/ord_1")
                    .body(axum::body::Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        let status = res.status();
        axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .expect("body");
        status
    }
    .with_subscriber(dispatch.clone())
    .await;
    assert_eq!(status, 200);
    // Nothing is exported before the guard flushes (5 s batch delay, 60 s
    // metric interval): shutdown alone must deliver everything.
    tokio::task::spawn_blocking(move || guard.shutdown(Duration::from_secs(10)))
        .await
        .expect("join")
        .expect("clean shutdown");
    drop(dispatch);
    sink.lines()
}

const K8S_VARS: [(&str, &str); 3] = [
    ("K8S_POD_NAME", "checkout-7d9f8b6c5-x2x4q"),
    ("K8S_NAMESPACE_NAME", "shop"),
    ("K8S_NODE_NAME", "node-3"),
];

fn assert_received(rx: &Receiver) {
    // Spans: the server span and its child, one trace.
    let spans = rx.spans();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let server = spans
        .iter()
        .find(|s| s.name == "GET /orders/{id}")
        .expect("server span");
    let child = spans
        .iter()
        .find(|s| s.name == "load_order")
        .expect("child span");
    assert_eq!(server.kind, 2, "server");
    assert_eq!(child.kind, 1, "internal");
    assert_eq!(server.parent_span_id, "", "root");
    assert_eq!(child.parent_span_id, server.span_id);
    assert_eq!(child.trace_id, server.trace_id);
    assert_eq!(server.service, "checkout");
    assert_eq!(
        child.attributes.get("order_id").map(String::as_str),
        Some("ord_1")
    );
    for (k, v) in [
        ("service.name", "checkout"),
        ("service.version", "1.4.2"),
        ("process.runtime.name", "rustc"),
        ("telemetry.sdk.name", "observe"),
        ("os.type", std::env::consts::OS),
    ] {
        assert_eq!(server.resource.get(k).map(String::as_str), Some(v), "{k}");
    }
    for k in [
        "service.instance.id",
        "host.name",
        "host.arch",
        "process.pid",
        "process.executable.name",
        "process.runtime.version",
        "process.runtime.description",
    ] {
        assert!(server.resource.contains_key(k), "resource {k}");
    }
    for (k, v) in [
        ("k8s.pod.name", "checkout-7d9f8b6c5-x2x4q"),
        ("k8s.namespace.name", "shop"),
        ("k8s.node.name", "node-3"),
        ("process.pid", &std::process::id().to_string()),
    ] {
        assert_eq!(server.resource.get(k).map(String::as_str), Some(v), "{k}");
    }
    // The same resource on every signal.
    for s in &spans {
        assert_eq!(s.resource, server.resource);
    }
    for l in rx.log_records() {
        assert_eq!(l.resource, server.resource);
    }
    let metric_resources = rx.metric_resources();
    assert!(!metric_resources.is_empty());
    for r in metric_resources {
        assert_eq!(r, server.resource);
    }

    // Log records: the handler's event, with the child span's ids.
    let logs = rx.log_records();
    let loaded: Vec<_> = logs
        .iter()
        .filter(|l| l.event_name == "order_loaded")
        .collect();
    assert_eq!(loaded.len(), 1, "{logs:#?}");
    assert_eq!(loaded[0].trace_id, server.trace_id);
    assert_eq!(loaded[0].span_id, child.span_id);
    assert_eq!(loaded[0].body, "order loaded");
    assert_eq!(loaded[0].severity_text, "INFO");
    assert_eq!(loaded[0].service, "checkout");
    assert_eq!(
        loaded[0].attributes.get("order_id").map(String::as_str),
        Some("ord_1")
    );

    // Metrics: the request's duration with its exact attributes.
    let duration = rx.metric_points("http.server.request.duration");
    assert_eq!(duration.len(), 1, "{duration:?}");
    assert_eq!(
        duration[0].attributes,
        attrs(&[
            ("http.request.method", "GET"),
            ("http.response.status_code", "200"),
            ("http.route", "/orders/{id}"),
        ])
    );
    assert!(matches!(
        duration[0].value,
        RValue::Histogram { count: 1, .. }
    ));
    // Nothing was dropped, and that is reported too.
    let dropped = rx.metric_points("observe.telemetry.dropped");
    let mut expected = Vec::new();
    for signal in ["logs", "metrics", "traces"] {
        for reason in [
            "export_failed",
            "queue_full",
            "rejected",
            "shutdown_timeout",
        ] {
            expected.push(RPoint {
                attributes: attrs(&[("reason", reason), ("signal", signal)]),
                value: RValue::Number(0.0),
            });
        }
    }
    expected.sort_by(|a, b| a.attributes.cmp(&b.attributes));
    assert_eq!(dropped, expected);
    // Nor retried.
    let retries = rx.metric_points("observe.telemetry.export.retries");
    let expected: Vec<RPoint> = ["logs", "metrics", "traces"]
        .into_iter()
        .map(|signal| RPoint {
            attributes: attrs(&[("signal", signal)]),
            value: RValue::Number(0.0),
        })
        .collect();
    assert_eq!(retries, expected);

    // Saturation from the runtime the service ran in (the test's: two
    // workers), read at the final collection.
    let number = |name: &str| match rx.metric_points(name).as_slice() {
        [RPoint {
            attributes,
            value: RValue::Number(v),
        }] if attributes.is_empty() => *v,
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(number("tokio.runtime.worker.count"), 2.0);
    assert!(number("tokio.runtime.task.count") >= 0.0);
    assert!(number("tokio.runtime.global_queue.depth") >= 0.0);
    assert!(number("tokio.runtime.worker.busy_time") > 0.0);
    assert!(number("tokio.runtime.worker.park.count") >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_export_of_spans_metrics_and_log_records() {
    let rx = Receiver::start();
    let endpoint = rx.grpc_endpoint();
    let lines = one_request(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ])
    .await;
    assert_received(&rx);
    assert!(
        !lines.iter().any(|l| l.contains("telemetry_dropped")),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_export_of_spans_metrics_and_log_records() {
    let rx = Receiver::start();
    let endpoint = rx.http_endpoint();
    one_request(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ])
    .await;
    assert_received(&rx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_signal_endpoints_win_over_the_general_one() {
    let grpc = Receiver::start();
    let http = Receiver::start();
    let traces = format!("{}/v1/traces", http.http_endpoint());
    let general = grpc.grpc_endpoint();
    one_request(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &general),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &traces),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ("OTEL_LOGS_EXPORTER", "none"),
    ])
    .await;
    assert_eq!(http.spans().len(), 2);
    assert_eq!(http.requests(), (1, 0, 0));
    let (t, l, m) = grpc.requests();
    assert_eq!(
        (t, l),
        (0, 0),
        "traces went to their own endpoint, logs off"
    );
    assert!(m >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_export_needs_no_runtime_of_the_users() {
    // A plain thread, no tokio anywhere: observe's pipeline threads own theirs.
    let rx = Receiver::start();
    let endpoint = rx.grpc_endpoint();
    std::thread::spawn(move || {
        let telemetry = Telemetry::builder("batch-job")
            .env_source(env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ]))
            .log_output(LogOutput::Sink(Arc::new(MemorySink::new())))
            .build()
            .expect("build");
        let (dispatch, guard) = telemetry.into_parts();
        observe::tracing::dispatcher::with_default(&dispatch, || {
            let _s = observe::tracing::info_span!("nightly_run").entered();
            observe::info!("run_started");
        });
        guard.shutdown(Duration::from_secs(10)).expect("shutdown");
    })
    .join()
    .expect("thread");
    let spans = rx.spans();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "nightly_run");
    assert_eq!(rx.log_records()[0].span_id, spans[0].span_id);
}

/// The file default, read three ways: by the official protobuf JSON decoder
/// (compared with what the OTLP exporter would send), by `read_spans`, and by
/// `read_log_records`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_default_is_otlp_json_the_proto_types_decode() {
    use observe::opentelemetry_sdk::logs::{InMemoryLogExporter, SimpleLogProcessor};
    use observe::opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor};
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    use opentelemetry_proto::tonic::trace::v1::Span;

    let dir = tempfile::tempdir().expect("tempdir");
    let dir_s = dir.path().to_string_lossy().into_owned();
    let spans_mem = InMemorySpanExporter::default();
    let logs_mem = InMemoryLogExporter::default();
    let telemetry = Telemetry::builder("checkout")
        .env_source(env(&[("OBSERVE_EXPORT_DIR", &dir_s)]))
        .log_output(LogOutput::Sink(Arc::new(MemorySink::new())))
        .span_processor(SimpleSpanProcessor::new(spans_mem.clone()))
        .log_processor(SimpleLogProcessor::new(logs_mem.clone()))
        .build()
        .expect("build");
    let (dispatch, guard) = telemetry.into_parts();
    let app = Router::new()
        .route("/orders/{id}", get(order))
        .layer(ObserveLayer::new());
    async {
        for path in ["/orders/ord_1", "/orders/ord_2"] {
            let res = app
                .clone()
                .oneshot(
                    Request::get(path)
                        .body(axum::body::Body::empty())
                        .expect("req"),
                )
                .await
                .expect("infallible");
            axum::body::to_bytes(res.into_body(), 1 << 16)
                .await
                .expect("body");
        }
        observe::error!(
            "payment_failed",
            gateway_status_code = 504,
            ratio = 0.25,
            retry = true
        );
    }
    .with_subscriber(dispatch.clone())
    .await;
    // The in-memory exporters forget everything on shutdown: read them first.
    let guard = tokio::task::spawn_blocking(move || {
        guard.flush(Duration::from_secs(10)).expect("flush");
        guard
    })
    .await
    .expect("join");
    let finished = spans_mem.get_finished_spans().expect("spans");
    let emitted = logs_mem.get_emitted_logs().expect("logs");
    tokio::task::spawn_blocking(move || guard.shutdown(Duration::from_secs(10)))
        .await
        .expect("join")
        .expect("shutdown");
    drop(dispatch);

    // Every line decodes as an ExportTraceServiceRequest whose spans equal
    // opentelemetry-proto's own transform of the same SpanData.
    let text = std::fs::read_to_string(dir.path().join("traces.jsonl")).expect("traces.jsonl");
    let mut from_file: Vec<Span> = Vec::new();
    for line in text.lines() {
        let req: ExportTraceServiceRequest = serde_json::from_str(line).expect("OTLP/JSON");
        for rs in req.resource_spans {
            let res = rs.resource.expect("resource");
            assert!(res.attributes.iter().any(|kv| kv.key == "service.name"));
            for ss in rs.scope_spans {
                assert_eq!(ss.scope.as_ref().map(|s| s.name.as_str()), Some("observe"));
                from_file.extend(ss.spans);
            }
        }
    }
    let mut expected: Vec<Span> = finished.into_iter().map(Span::from).collect();
    from_file.sort_by(|a, b| a.span_id.cmp(&b.span_id));
    expected.sort_by(|a, b| a.span_id.cmp(&b.span_id));
    assert_eq!(from_file.len(), 4);
    assert_eq!(from_file, expected);

    let text = std::fs::read_to_string(dir.path().join("logs.jsonl")).expect("logs.jsonl");
    let mut from_file: Vec<LogRecord> = Vec::new();
    for line in text.lines() {
        let req: ExportLogsServiceRequest = serde_json::from_str(line).expect("OTLP/JSON");
        for rl in req.resource_logs {
            for sl in rl.scope_logs {
                from_file.extend(sl.log_records);
            }
        }
    }
    let expected: Vec<LogRecord> = emitted.iter().map(|l| LogRecord::from(&l.record)).collect();
    assert_eq!(from_file.len(), 3);
    assert_eq!(from_file, expected);

    // And observe's own reader.
    let spans = read_spans(dir.path()).expect("read_spans");
    assert_eq!(spans.len(), 4);
    let roots: Vec<_> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_none())
        .collect();
    assert_eq!(roots.len(), 2);
    for root in roots {
        assert_eq!(root.name, "GET /orders/{id}");
        assert_eq!(root.kind, SpanKind::Server);
        assert_eq!(root.service_name.as_deref(), Some("checkout"));
        assert_eq!(root.status, StoredStatus::Unset);
        assert!(root.end_unix_nanos >= root.start_unix_nanos);
        let child = spans
            .iter()
            .find(|s| s.parent_span_id.as_deref() == Some(root.span_id.as_str()))
            .expect("child");
        assert_eq!(child.name, "load_order");
        assert_eq!(child.trace_id, root.trace_id);
        assert_eq!(child.kind, SpanKind::Internal);
    }
    let logs = read_log_records(dir.path()).expect("read_log_records");
    let failed = logs
        .iter()
        .find(|l| l.event_name == "payment_failed")
        .expect("payment_failed");
    assert_eq!(failed.severity_text, "ERROR");
    assert_eq!(failed.trace_id, None);
    assert_eq!(failed.attributes["gateway_status_code"], 504);
    assert_eq!(failed.attributes["ratio"], 0.25);
    assert_eq!(failed.attributes["retry"], true);
    let loaded: Vec<_> = logs
        .iter()
        .filter(|l| l.event_name == "order_loaded")
        .collect();
    assert_eq!(loaded.len(), 2);
    assert!(loaded.iter().all(|l| spans.iter().any(
        |s| Some(&s.span_id) == l.span_id.as_ref() && Some(&s.trace_id) == l.trace_id.as_ref()
    )));
}

/// `TelemetryBuilder::tail_sampling`: the tail sampler sits in front of
/// observe's own OTLP pipeline. With decisions due only later, shutdown
/// decides the pending traces before the pipeline shuts down: the failed
/// trace reaches the receiver whole, the healthy ones never do.
#[test]
fn tail_sampling_switch_keeps_the_failed_trace_through_otlp() {
    use observe::export::tail::{Policy, StatusCode, TailSamplingConfig};
    let rx = Receiver::start();
    let endpoint = rx.grpc_endpoint();
    let config = TailSamplingConfig {
        policies: vec![Policy::status_code("errors", [StatusCode::Error])],
        decision_wait: Duration::from_secs(60),
        ..TailSamplingConfig::default()
    };
    let (dispatch, guard) = Telemetry::builder("checkout")
        .env_source(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]))
        .log_output(LogOutput::Sink(Arc::new(MemorySink::new())))
        .tail_sampling(config)
        .build()
        .expect("build")
        .into_parts();
    let failed_trace = observe::tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..10 {
            let _s = observe::tracing::info_span!("healthy_request", i).entered();
            observe::tracing::info_span!("lookup").in_scope(|| {});
        }
        let s = observe::tracing::info_span!("failed_request", otel.status_code = "error");
        let _e = s.enter();
        observe::tracing::info_span!("lookup").in_scope(|| {});
        observe::current_trace_id().expect("in a span")
    });
    guard.shutdown(Duration::from_secs(10)).expect("shutdown");
    let mut got: Vec<(String, String)> = rx
        .spans()
        .into_iter()
        .map(|s| (s.trace_id, s.name))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (failed_trace.clone(), "failed_request".to_owned()),
            (failed_trace, "lookup".to_owned()),
        ]
    );
    // The sampler's own counters, in the last metric export.
    let points = |name: &str| -> Vec<(Vec<(String, String)>, f64)> {
        let mut v: Vec<_> = rx
            .metric_points(name)
            .into_iter()
            .map(|p| {
                let value = match p.value {
                    RValue::Number(n) => n,
                    RValue::Histogram { .. } => f64::NAN,
                };
                (p.attributes.into_iter().collect::<Vec<_>>(), value)
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let kv = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
    assert_eq!(
        points("observe.tail_sampling.traces"),
        vec![
            (kv("decision", "dropped"), 10.0),
            (kv("decision", "kept"), 1.0)
        ]
    );
    assert_eq!(
        points("observe.tail_sampling.spans"),
        vec![
            (kv("decision", "dropped"), 20.0),
            (kv("decision", "kept"), 2.0)
        ]
    );
    assert_eq!(
        points("observe.tail_sampling.decisions"),
        vec![(kv("policy", "errors"), 1.0), (kv("policy", "none"), 10.0)]
    );
    assert_eq!(
        points("observe.tail_sampling.pending_traces"),
        vec![(vec![], 0.0)]
    );
}
