//! `/metrics`: the exact exposition (text and OpenMetrics), observe's
//! instruments under the names the OpenTelemetry Collector gives them, the
//! output checked by real parsers (`promtool`, and Python's
//! `prometheus_client` OpenMetrics parser when installed), and a real
//! Prometheus scraping an axum app.
//!
//! `promtool` and `prometheus` come from Debian's `prometheus` package
//! (`scripts/test` installs it). Without them these tests skip locally and
//! fail when `CI=true`.

use axum::routing::get;
use axum::Router;
use observe::exemplars::{AttributesKey, Exemplars};
use observe::export::prometheus::{ExpositionFormat, PrometheusExporter};
use observe::opentelemetry::metrics::MeterProvider as _;
use observe::opentelemetry::{InstrumentationScope, KeyValue};
use observe::opentelemetry_sdk::metrics::SdkMeterProvider;
use observe::opentelemetry_sdk::Resource;
use observe::signals::GatewayStatus;
use observe::testing::Harness;
use observe::testing::TelemetryBuilderExt as _;
use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::{Service, ServiceExt};

const TRACE: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];
const SPAN: [u8; 8] = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];

/// Skips (returns false) when `tool` is missing, unless CI=true, where it fails.
fn have(tool: &str) -> bool {
    if Path::new(tool).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{tool} is required in CI (Debian package `prometheus`, installed by scripts/test)"
    );
    eprintln!("skipping: {tool} not installed");
    false
}

/// A meter provider with a fixed resource and one instrument of each kind.
fn fixture() -> (PrometheusExporter, SdkMeterProvider) {
    let exporter = PrometheusExporter::new();
    let resource = Resource::builder_empty()
        .with_attribute(KeyValue::new("service.name", "payments"))
        .with_attribute(KeyValue::new("service.instance.id", "a1b2"))
        .with_attribute(KeyValue::new("deployment.environment.name", "staging"))
        .with_attribute(KeyValue::new("host.name", "node-1"))
        .build();
    let provider = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(exporter.reader())
        .build();
    let meter = provider.meter_with_scope(
        InstrumentationScope::builder("shop")
            .with_version("1.2.3")
            .build(),
    );

    let orders = meter
        .u64_counter("shop.orders")
        .with_unit("{order}")
        .with_description("Orders placed.")
        .build();
    orders.add(3, &[KeyValue::new("payment.method", "card")]);
    orders.add(
        1,
        &[KeyValue::new(
            "payment.method",
            "say \"hi\"\\ then\nnew line",
        )],
    );
    meter
        .f64_counter("net.io")
        .with_unit("By")
        .with_description("Bytes moved.")
        .build()
        .add(1536.5, &[]);
    let depth = meter
        .i64_up_down_counter("queue.depth")
        .with_unit("{job}")
        .with_description("Jobs waiting.")
        .build();
    depth.add(5, &[KeyValue::new("queue", "mail")]);
    depth.add(-2, &[KeyValue::new("queue", "mail")]);
    meter
        .f64_gauge("cpu.utilization")
        .with_unit("1")
        .with_description("CPU in use,\nfrom 0 to 1 (\"ratio\").")
        .build()
        .record(0.25, &[KeyValue::new("cpu", 0_i64)]);
    let rpc = meter
        .f64_histogram("rpc.duration")
        .with_unit("ms")
        .with_description("RPC latency.")
        .with_boundaries(vec![5.0, 10.0, 100.0])
        .build();
    let attrs = [KeyValue::new("rpc.method", "Pay")];
    for v in [3.0, 7.0, 7.5, 250.0] {
        rpc.record(v, &attrs);
    }
    (exporter, provider)
}

const GOLDEN_TEXT: &str = r#"# HELP cpu_utilization_ratio CPU in use,\nfrom 0 to 1 ("ratio").
# TYPE cpu_utilization_ratio gauge
cpu_utilization_ratio{cpu="0",otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3"} 0.25
# HELP net_io_bytes_total Bytes moved.
# TYPE net_io_bytes_total counter
net_io_bytes_total{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3"} 1536.5
# HELP queue_depth Jobs waiting.
# TYPE queue_depth gauge
queue_depth{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3",queue="mail"} 3
# HELP rpc_duration_milliseconds RPC latency.
# TYPE rpc_duration_milliseconds histogram
rpc_duration_milliseconds_bucket{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3",rpc_method="Pay",le="5"} 1
rpc_duration_milliseconds_bucket{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3",rpc_method="Pay",le="10"} 3
rpc_duration_milliseconds_bucket{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3",rpc_method="Pay",le="100"} 3
rpc_duration_milliseconds_bucket{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3",rpc_method="Pay",le="+Inf"} 4
rpc_duration_milliseconds_sum{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3",rpc_method="Pay"} 267.5
rpc_duration_milliseconds_count{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3",rpc_method="Pay"} 4
# HELP shop_orders_total Orders placed.
# TYPE shop_orders_total counter
shop_orders_total{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3",payment_method="card"} 3
shop_orders_total{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3",payment_method="say \"hi\"\\ then\nnew line"} 1
# HELP target_info Target metadata
# TYPE target_info gauge
target_info{deployment_environment_name="staging",host_name="node-1"} 1
"#;

#[test]
fn text_exposition_is_exactly_what_the_collector_writes() {
    let (exporter, _provider) = fixture();
    assert_eq!(exporter.render_text(), GOLDEN_TEXT);
    assert_eq!(
        exporter.render(ExpositionFormat::Text).expect("collects"),
        GOLDEN_TEXT
    );
}

#[test]
fn openmetrics_exposition_has_exemplars_on_buckets() {
    let (exporter, _provider) = fixture();
    let key = AttributesKey::of(&[KeyValue::new("rpc.method", "Pay")]);
    let ex = exporter.exemplars();
    // Recorded with the default bounds; rendered in the data point's buckets.
    ex.record(
        "rpc.duration",
        key,
        7.5,
        TRACE,
        SPAN,
        1_700_000_000_123_456_789,
    );
    ex.record(
        "rpc.duration",
        key,
        250.0,
        [0x11; 16],
        [0x22; 8],
        1_700_000_001_000_000_000,
    );
    // Another attribute set: no data point, not rendered.
    let other = AttributesKey::of(&[KeyValue::new("rpc.method", "Refund")]);
    ex.record("rpc.duration", other, 3.0, [0x33; 16], [0x44; 8], 1);

    let want = r#"# HELP cpu_utilization_ratio CPU in use,\nfrom 0 to 1 (\"ratio\").
# TYPE cpu_utilization_ratio gauge
cpu_utilization_ratio{cpu="0",otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3"} 0.25
# HELP net_io_bytes Bytes moved.
# TYPE net_io_bytes counter
net_io_bytes_total{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3"} 1536.5
# HELP queue_depth Jobs waiting.
# TYPE queue_depth gauge
queue_depth{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3",queue="mail"} 3.0
# HELP rpc_duration_milliseconds RPC latency.
# TYPE rpc_duration_milliseconds histogram
rpc_duration_milliseconds_bucket{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3",rpc_method="Pay",le="5.0"} 1
rpc_duration_milliseconds_bucket{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3",rpc_method="Pay",le="10.0"} 3 # {span_id="00f067aa0ba902b7",trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 7.5 1.7000000001234567e+09
rpc_duration_milliseconds_bucket{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3",rpc_method="Pay",le="100.0"} 3
rpc_duration_milliseconds_bucket{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3",rpc_method="Pay",le="+Inf"} 4 # {span_id="2222222222222222",trace_id="11111111111111111111111111111111"} 250.0 1.700000001e+09
rpc_duration_milliseconds_sum{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3",rpc_method="Pay"} 267.5
rpc_duration_milliseconds_count{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3",rpc_method="Pay"} 4
# HELP shop_orders Orders placed.
# TYPE shop_orders counter
shop_orders_total{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3",payment_method="card"} 3.0
shop_orders_total{otel_scope_name="shop",otel_scope_schema_url="",otel_scope_version="1.2.3",payment_method="say \"hi\"\\ then\nnew line"} 1.0
# HELP target_info Target metadata
# TYPE target_info gauge
target_info{deployment_environment_name="staging",host_name="node-1"} 1.0
# EOF
"#;
    assert_eq!(exporter.render_openmetrics(), want);
}

/// The Prometheus names of observe's instruments, recorded through observe.
#[test]
fn observe_instruments_have_the_collectors_names() {
    let exporter = PrometheusExporter::new();
    let reader = exporter.reader();
    // Built inside a tokio runtime, as a service is: its metrics too.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let _in_runtime = rt.enter();
    let (text, _) = Harness::new("payments")
        .configure(move |b| b.metric_reader(reader))
        .run(|| {
            let s = observe::signals::current().expect("signals");
            s.server_request("GET", "/pay".into(), Some(200), None, false, 0.012, None);
            s.server_active("GET", "http", 1);
            s.masked_failure("/pay".into(), "bank".into());
            s.client_request(
                "POST",
                "bank.example".into(),
                Some(504),
                Some("504".into()),
                "bank".into(),
                0.3,
                None,
            );
            s.gateway_call(
                "bank".into(),
                GatewayStatus::Timeout,
                Some("timeout".into()),
                1.5,
                None,
            );
            s.rpc_server_call(
                "shop.v1.Payments/Charge".into(),
                Some(observe::classify::grpc::GrpcCode::Ok),
                None,
                false,
                0.004,
                None,
            );
            s.rpc_server_active("shop.v1.Payments/Charge".into(), 1);
            s.rpc_client_call(
                "shop.v1.Bank/Authorize".into(),
                Some("bank.example".into()),
                Some(observe::classify::grpc::GrpcCode::Unavailable),
                Some("UNAVAILABLE".into()),
                Some("bank".into()),
                0.02,
                None,
            );
            s.observed_call("charge", "payments::billing", true, 0.002);
            s.observed_active("charge", "payments::billing", 1);
            observe::saturation("db_pool").record(3, 4);
            exporter.render_text()
        });
    let families: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .collect();
    let want: BTreeSet<&str> = [
        "external_gateway_request_duration_seconds histogram",
        "external_gateway_requests_total counter",
        "http_client_request_duration_seconds histogram",
        "http_server_active_requests gauge",
        "http_server_request_duration_seconds histogram",
        "observe_logs_buffered_total counter",
        "observe_logs_dropped_total counter",
        "observe_masked_failures_total counter",
        "observe_resource_utilization gauge",
        "observed_active gauge",
        "observed_calls_total counter",
        "observed_duration_seconds histogram",
        "observe_rpc_server_active_calls gauge",
        "rpc_client_call_duration_seconds histogram",
        "rpc_server_call_duration_seconds histogram",
        "target_info gauge",
        "tokio_runtime_global_queue_depth gauge",
        "tokio_runtime_task_count gauge",
        "tokio_runtime_worker_busy_time_seconds_total counter",
        "tokio_runtime_worker_count gauge",
        "tokio_runtime_worker_park_count_total counter",
    ]
    .into();
    let missing: Vec<_> = want.difference(&families).collect();
    assert!(missing.is_empty(), "missing {missing:?} in\n{text}");
    // Whatever else observe registers follows the same rules.
    for f in &families {
        let (name, ty) = f.split_once(' ').expect("name and type");
        assert_eq!(ty == "counter", name.ends_with("_total"), "{f}");
        assert!(!name.contains('.'), "{f}");
    }

    // Every series the alert rules expect is there.
    let series: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    for name in observe::alerts::names::ALL_SERIES {
        if name.starts_with("synthetic_") {
            continue; // written by synthetic checks, not by the service
        }
        assert!(series.contains(name), "{name} missing from\n{text}");
    }
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .to_owned()
    };
    assert_eq!(
        line("rpc_server_call_duration_seconds_count{"),
        r#"rpc_server_call_duration_seconds_count{otel_scope_name="observe",otel_scope_schema_url="",otel_scope_version="0.1.0",rpc_method="shop.v1.Payments/Charge",rpc_response_status_code="OK",rpc_system_name="grpc"} 1"#
    );
    assert_eq!(
        line("http_server_request_duration_seconds_count{"),
        r#"http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200",http_route="/pay",otel_scope_name="observe",otel_scope_schema_url="",otel_scope_version="0.1.0"} 1"#
    );
    assert_eq!(
        line("http_server_request_duration_seconds_bucket{"),
        r#"http_server_request_duration_seconds_bucket{http_request_method="GET",http_response_status_code="200",http_route="/pay",otel_scope_name="observe",otel_scope_schema_url="",otel_scope_version="0.1.0",le="0.005"} 0"#
    );
    assert_eq!(
        line("external_gateway_requests_total{"),
        r#"external_gateway_requests_total{error_type="timeout",gateway="bank",otel_scope_name="observe",otel_scope_schema_url="",otel_scope_version="0.1.0",status="timeout"} 1"#
    );
    assert_eq!(
        line("observe_resource_utilization{"),
        r#"observe_resource_utilization{otel_scope_name="observe",otel_scope_schema_url="",otel_scope_version="0.1.0",resource="db_pool"} 0.75"#
    );
    // Resource attributes go to target_info; service.name and the instance id do not.
    let target = line("target_info{");
    assert!(
        target.contains(r#"telemetry_sdk_name="observe""#),
        "{target}"
    );
    assert!(!target.contains("service_name") && !target.contains("service_instance_id"));
    assert!(!text.contains("job=") && !text.contains("instance="));
}

/// Runs `promtool check metrics`: a parse error fails; lint problems fail
/// unless listed in `allowed` (the Collector's own names trip some lints,
/// such as `_milliseconds` for unit `ms`).
fn check_with_promtool(exposition: &str, allowed: &[&str]) {
    let mut child = Command::new("/usr/bin/promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit code 3 is "lint problems"; anything else non-zero is a parse error.
    let linted_only = out.status.success() || out.status.code() == Some(3);
    assert!(
        linted_only,
        "promtool could not parse:\n{report}\n{exposition}"
    );
    let problems: Vec<&str> = report
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !allowed.iter().any(|a| l.contains(a)))
        .collect();
    assert!(
        problems.is_empty(),
        "promtool lint:\n{report}\n{exposition}"
    );
}

#[test]
fn promtool_accepts_the_text_exposition() {
    if !have("/usr/bin/promtool") {
        return;
    }
    let (exporter, _provider) = fixture();
    check_with_promtool(
        &exporter.render_text(),
        &[r#"rpc_duration_milliseconds use base unit "seconds" instead of "milliseconds""#],
    );
    // observe's own instruments are lint-clean.
    let observe = PrometheusExporter::new();
    let reader = observe.reader();
    let (text, _) = Harness::new("payments")
        .configure(move |b| b.metric_reader(reader))
        .run(|| {
            let s = observe::signals::current().expect("signals");
            s.server_request("GET", "/pay".into(), Some(200), None, false, 0.012, None);
            s.server_active("GET", "http", 1);
            s.gateway_call("bank".into(), GatewayStatus::Success, None, 0.2, None);
            observe.render_text()
        });
    check_with_promtool(&text, &[]);
}

/// promtool 2.42 reads only the text format; the OpenMetrics output goes
/// through Python's strict OpenMetrics parser when it is installed (Debian
/// `python3-prometheus-client`) and through a real Prometheus scrape below.
#[test]
fn openmetrics_parser_accepts_the_openmetrics_exposition() {
    let (exporter, _provider) = fixture();
    let key = AttributesKey::of(&[KeyValue::new("rpc.method", "Pay")]);
    exporter.exemplars().record(
        "rpc.duration",
        key,
        7.5,
        TRACE,
        SPAN,
        1_700_000_000_123_456_789,
    );
    let om = exporter.render_openmetrics();
    let script = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
fams = list(text_string_to_metric_families(sys.stdin.read()))
ex = [s.exemplar for f in fams for s in f.samples if s.exemplar]
print(len(fams), len(ex), ex[0].labels["trace_id"] if ex else "")
"#;
    let probe = Command::new("python3")
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipping: python3 prometheus_client not installed");
        return;
    }
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(om.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "OpenMetrics parser rejected:\n{}\n{om}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "6 1 4bf92f3577b34da6a3ce929d0e0e4736"
    );
}

#[tokio::test]
async fn metrics_service_negotiates_the_format() {
    let (exporter, provider) = fixture();
    let mut svc = exporter.service();
    let req = |accept: &str| {
        http::Request::get("/metrics")
            .header("accept", accept)
            .body(())
            .expect("request")
    };
    let res = ServiceExt::<http::Request<()>>::ready(&mut svc)
        .await
        .expect("ready")
        .call(req(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        ))
        .await
        .expect("infallible");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(res.body().ends_with("# EOF\n"));
    let res = svc.call(req("text/plain")).await.expect("infallible");
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(res.body(), GOLDEN_TEXT);
    let post = http::Request::post("/metrics").body(()).expect("request");
    assert_eq!(svc.call(post).await.expect("infallible").status(), 405);

    // On an axum router.
    let app = Router::new().route_service("/metrics", exporter.service());
    let res = app
        .oneshot(
            http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(res.status(), 200);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    assert_eq!(body, GOLDEN_TEXT.as_bytes());

    // A shut-down provider is a 503, not a panic.
    provider.shutdown().expect("shutdown");
    let res = svc.call(req("text/plain")).await.expect("infallible");
    assert_eq!(res.status(), 503);
}

#[test]
fn standalone_server_serves_metrics_until_dropped() {
    let (exporter, _provider) = fixture();
    let handle = exporter
        .serve("127.0.0.1:0".parse().expect("addr"))
        .expect("serve");
    let addr = handle.local_addr();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (status, body) = rt
        .block_on(http_get(addr, "/metrics", "text/plain"))
        .expect("scrape");
    assert_eq!((status, body.as_str()), (200, GOLDEN_TEXT));
    let (status, _) = rt.block_on(http_get(addr, "/other", "")).expect("404");
    assert_eq!(status, 404);
    // A taken port is an error at once.
    assert!(exporter.serve(addr).is_err());
    handle.shutdown();
    assert!(rt.block_on(http_get(addr, "/metrics", "")).is_err());
}

/// A minimal HTTP/1.0 GET (the tests' only client): status and body.
async fn http_get(
    addr: std::net::SocketAddr,
    path_and_query: &str,
    accept: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!(
        "GET {path_and_query} HTTP/1.0\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut raw))
        .await
        .map_err(|_| std::io::Error::other("timeout"))??;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no response: {raw:?}")))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    Ok((status, body.to_owned()))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Kills Prometheus when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A real Prometheus scrapes an axum app instrumented by observe (it asks
/// for OpenMetrics, so this also runs its OpenMetrics parser) and answers
/// queries with the exact series, labels and exemplars.
#[tokio::test(flavor = "current_thread")]
async fn prometheus_scrapes_an_axum_app() {
    if !have("/usr/bin/prometheus") {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(30);

    // The app: observe's server layer on /pay, /metrics beside it.
    let exporter = PrometheusExporter::with_exemplars(Exemplars::new());
    let telemetry = observe::Telemetry::builder("payments")
        .env_source(|_| None)
        .log_output(observe::LogOutput::Sink(std::sync::Arc::new(
            observe::MemorySink::new(),
        )))
        .metric_reader(exporter.reader())
        .build()
        .expect("telemetry");
    // Current-thread runtime: the server's tasks run on this thread, under this dispatcher.
    let _dispatch = observe::tracing::dispatcher::set_default(telemetry.dispatch());
    let app = Router::new()
        .route("/pay", get(|| async { "paid" }))
        .layer(observe::tower::ObserveLayer::new())
        .route_service("/metrics", exporter.service());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let app_addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    for _ in 0..3 {
        let (status, body) = http_get(app_addr, "/pay", "").await.expect("GET /pay");
        assert_eq!((status, body.as_str()), (200, "paid"));
    }
    let now_nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64;
    let key = AttributesKey::of(&[
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("http.route", "/pay"),
        KeyValue::new("http.response.status_code", 200_i64),
    ]);
    exporter.exemplars().record(
        "http.server.request.duration",
        key,
        0.003,
        TRACE,
        SPAN,
        now_nanos,
    );

    // Prometheus, scraping every second.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: payments\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    static_configs:\n      - targets: ['{app_addr}']\n"
        ),
    )
    .expect("config");
    let prom_addr: std::net::SocketAddr =
        format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let _prometheus = Killed(
        Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .arg("--enable-feature=exemplar-storage")
            .arg("--log.level=error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );

    // Wait for a scrape that has the series.
    let query = format!(
        "/api/v1/query?query={}",
        urlencode("http_server_request_duration_seconds_count")
    );
    let result = loop {
        assert!(Instant::now() < deadline, "no scrape within 30 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok((200, body)) = http_get(prom_addr, &query, "").await else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
        if !result.is_empty() {
            break result;
        }
    };
    assert_eq!(result.len(), 1, "{result:?}");
    assert_eq!(
        result[0]["metric"],
        serde_json::json!({
            "__name__": "http_server_request_duration_seconds_count",
            "http_request_method": "GET",
            "http_response_status_code": "200",
            "http_route": "/pay",
            "instance": app_addr.to_string(),
            "job": "payments",
            "otel_scope_name": "observe",
            "otel_scope_version": "0.1.0",
        })
    );
    assert_eq!(result[0]["value"][1], "3");

    // The scrape was OpenMetrics, and the exemplar made it to storage.
    let (_, body) = http_get(prom_addr, "/api/v1/targets", "")
        .await
        .expect("targets");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let target = &v["data"]["activeTargets"][0];
    assert_eq!(target["health"], "up", "{target}");
    assert_eq!(target["lastError"], "", "{target}");
    let now = now_nanos / 1_000_000_000;
    let exemplars = loop {
        assert!(Instant::now() < deadline, "no exemplar within 30 s");
        let q = format!(
            "/api/v1/query_exemplars?query={}&start={}&end={}",
            urlencode("http_server_request_duration_seconds_bucket"),
            now - 600,
            now + 600
        );
        let (_, body) = http_get(prom_addr, &q, "").await.expect("exemplars");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let data = v["data"].as_array().cloned().unwrap_or_default();
        if !data.is_empty() {
            break data;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(exemplars[0]["seriesLabels"]["le"], "0.005", "{exemplars:?}");
    assert_eq!(exemplars[0]["seriesLabels"]["http_route"], "/pay");
    let e = &exemplars[0]["exemplars"][0];
    assert_eq!(e["labels"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(e["labels"]["span_id"], "00f067aa0ba902b7");
    assert_eq!(e["value"], "0.003");
}
