//! The scenarios of `tests/stack.rs`. Each starts the engines it needs on
//! free ports, drives the services, and asks the engines' own APIs.

use crate::services::{self, Bank, Services, Telemetry, Traffic};
use crate::stack::IncidentStack;
use crate::BoxError;
use observe_stack::{
    Collector, CollectorOptions, Error as StackError, JaegerTrace, Prometheus, VictoriaLogs,
};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), BoxError> {
    if cond {
        Ok(())
    } else {
        Err(msg().into())
    }
}

/// Polls `f` every 250 ms until it returns `Ok`, for at most `timeout`;
/// then the last error.
pub(crate) async fn eventually<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut f: F,
) -> Result<T, BoxError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, BoxError>>,
{
    let t0 = Instant::now();
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if t0.elapsed() >= timeout => {
                return Err(format!("{what}: not so after {timeout:?}: {e}").into())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

pub(crate) fn tempdir(prefix: &str) -> Result<tempfile::TempDir, BoxError> {
    Ok(tempfile::Builder::new().prefix(prefix).tempdir()?)
}

async fn get_text(url: &str) -> Result<String, BoxError> {
    use http_body_util::BodyExt;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let res = client.get(url.parse()?).await?;
    let body = res.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

// ------------------------------------------------------------ faults

/// A Collector config that names a component it does not define stops the
/// start at once, with the Collector's own message.
pub(crate) async fn collector_config_error() -> Result<(), BoxError> {
    let dir = tempdir("observe-bad-config-")?;
    let bad = dir.path().join("collector.yaml");
    std::fs::write(
        &bad,
        "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:0\n\
         exporters:\n  debug: {}\n\
         service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      processors: [tail_sampling_typo]\n      exporters: [debug]\n",
    )?;
    let t0 = Instant::now();
    let err = match Collector::start(CollectorOptions::new().config(&bad)).await {
        Ok(_) => return Err("a config naming an undefined processor started".into()),
        Err(e) => e,
    };
    let waited = t0.elapsed();
    ensure(waited < Duration::from_secs(20), || {
        format!("the start took {waited:?} to fail")
    })?;
    match &err {
        StackError::Exited { output, .. } => ensure(
            output.contains("tail_sampling_typo")
                && output.contains(
                    "references processor \"tail_sampling_typo\" which is not configured",
                ),
            || format!("the Collector's message is not in the error: {err}"),
        ),
        other => Err(format!("expected the Collector to exit, got: {other}").into()),
    }
}

/// With no Collector listening, the services start and answer every
/// request, and payment counts every span and log record it could not send.
pub(crate) async fn collector_down() -> Result<(), BoxError> {
    let dir = tempdir("observe-collector-down-")?;
    let bank = Arc::new(Bank::default());
    let bank_addr = services::start_bank(Arc::clone(&bank)).await?;
    let closed = observe_stack::free_port()?;
    let telemetry = Telemetry {
        otlp_endpoint: format!("http://127.0.0.1:{closed}"),
        metric_interval: Duration::from_millis(500),
        in_process_tail_sampling: false,
        // Refused connections are retried until the export timeout: 1 s
        // here, so that every batch is counted within the wait below.
        extra: vec![("OTEL_EXPORTER_OTLP_TIMEOUT".into(), "1000".into())],
    };
    let mut svcs = Services::start(&telemetry, bank_addr, dir.path())?;
    let client = services::client();
    let orders = 20;
    for n in 0..orders {
        let status =
            services::place_order(&client, &svcs.checkout.url, &format!("down-{n}")).await?;
        ensure(status == "success", || format!("order down-{n}: {status}"))?;
    }
    // payment: 3 spans per order (server, pay, gateway bank); every JSON
    // line it wrote is also a log record.
    let metrics_url = format!("http://{}/metrics", svcs.payment_metrics);
    let payment_log = svcs.payment.log.clone();
    let (spans, logs) = eventually(
        "every span and log record counted as dropped",
        Duration::from_secs(20),
        || {
            let (url, log) = (metrics_url.clone(), payment_log.clone());
            async move {
                let text = get_text(&url).await?;
                let dropped = |signal: &str| {
                    observe_stack::sum_series(
                        &text,
                        "observe_telemetry_dropped_total",
                        &[("signal", signal), ("reason", "export_failed")],
                    )
                };
                let lines = std::fs::read_to_string(&log)?
                    .lines()
                    .filter(|l| l.starts_with('{'))
                    .count() as f64;
                let (spans, logs) = (dropped("traces"), dropped("logs"));
                if spans == f64::from(3 * orders) && logs == lines {
                    Ok((spans, logs))
                } else {
                    Err(format!(
                        "dropped spans {spans} (want {}), log records {logs} (want {lines})",
                        3 * orders
                    )
                    .into())
                }
            }
        },
    )
    .await?;
    println!("  collector down: {orders} orders served, payment counted {spans} spans and {logs} log records as export_failed");
    svcs.stop();
    Ok(())
}

// ------------------------------------------------------------ the incident

/// The alerts the fault must fire, on both metric paths.
const FAULT_ALERTS: [&str; 3] = ["ExternalGatewayErrors", "HighErrorRate", "ErrorBudgetBurn"];

/// Series names the rules select, found in the rule file.
fn selected_series(rules: &str) -> BTreeSet<&'static str> {
    observe::alerts::names::ALL_SERIES
        .iter()
        .copied()
        .filter(|name| {
            rules.match_indices(name).any(|(i, _)| {
                let after = rules[i + name.len()..].chars().next();
                !matches!(after, Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == ':')
            })
        })
        .collect()
}

/// `name → jobs` of the series a Prometheus holds, for `names`.
async fn jobs_of(
    prom: &Prometheus,
    names: &BTreeSet<&'static str>,
) -> Result<BTreeMap<String, BTreeSet<String>>, BoxError> {
    let mut out = BTreeMap::new();
    for name in names {
        let rows = prom.query(&format!("count by (job) ({name})")).await?;
        let jobs: BTreeSet<String> = rows
            .into_iter()
            .filter_map(|(l, _)| l.get("job").cloned())
            .collect();
        out.insert((*name).to_owned(), jobs);
    }
    Ok(out)
}

async fn firing(prom: &Prometheus) -> Result<BTreeSet<String>, BoxError> {
    Ok(prom
        .alerts()
        .await?
        .into_iter()
        .filter(|a| a.state == "firing")
        .map(|a| a.name)
        .collect())
}

fn has_all(set: &BTreeSet<String>, want: &[&str]) -> bool {
    want.iter().all(|w| set.contains(*w))
}

/// The seed's incident across three services and two languages, read back
/// only through the engines' APIs: a healthy run fires nothing; the bank's
/// 504s fire the gateway, error-rate and SLO-burn alerts on both metric
/// paths and reach Alertmanager with the synthetic check's failure; one
/// affected order id leads to its log lines from every service, one trace
/// id, and one whole trace with the cause on it.
pub(crate) async fn incident() -> Result<(), BoxError> {
    const HEALTHY: Duration = Duration::from_secs(20);
    let mut stack = IncidentStack::start(true).await?;
    let (Some(logs), Some(collector), Some(alertmanager), Some(prom_otlp), Some(prom_pull)) = (
        stack.logs.as_ref(),
        stack.collector.as_ref(),
        stack.alertmanager.as_ref(),
        stack.prom_otlp.as_ref(),
        stack.prom_pull.as_ref(),
    ) else {
        return Err(format!("engines missing: {:?}", stack.missing).into());
    };
    let pull_rules = stack.rules.1.clone();
    let bank = Arc::clone(&stack.bank);
    let svcs = &stack.services;

    // Warm-up: every path has data before the healthy run is judged.
    let traffic = Traffic::start(&svcs.checkout.url, 4, Duration::from_millis(50), "ord");
    eventually(
        "both metric paths have payment's requests and the synthetic checks",
        Duration::from_secs(30),
        || async {
            let a = prom_otlp
                .query("sum(http_server_request_duration_seconds_count{job=\"payment\"})")
                .await?;
            let b = prom_pull
                .query("sum(http_server_request_duration_seconds_count{job=\"payment\"})")
                .await?;
            let c = prom_otlp
                .query("synthetic_check_success{flow=\"checkout\"}")
                .await?;
            ensure(!a.is_empty() && !b.is_empty() && !c.is_empty(), || {
                "not yet".to_owned()
            })
        },
    )
    .await?;

    // 1. A healthy run fires nothing.
    tokio::time::sleep(HEALTHY).await;
    let (otlp_alerts, pull_alerts, am_alerts) = (
        prom_otlp.alerts().await?,
        prom_pull.alerts().await?,
        alertmanager.alerts().await?,
    );
    ensure(
        otlp_alerts.is_empty() && pull_alerts.is_empty() && am_alerts.is_empty(),
        || {
            format!("a healthy run raised alerts: Collector path {otlp_alerts:?}, pull path {pull_alerts:?}, Alertmanager {am_alerts:?}")
        },
    )?;
    let healthy_orders = traffic.orders();
    ensure(healthy_orders.iter().all(|o| o.status == "success"), || {
        "a healthy order was not paid".to_owned()
    })?;

    // 2. Both metric paths: the series the rules select exist with the same
    // names and job.
    let series = selected_series(&pull_rules);
    for core in [
        "http_server_request_duration_seconds_count",
        "http_server_request_duration_seconds_bucket",
        "external_gateway_requests_total",
    ] {
        ensure(series.contains(core), || {
            format!("the rules do not select {core}")
        })?;
    }
    let otlp_jobs = jobs_of(prom_otlp, &series).await?;
    let pull_jobs = jobs_of(prom_pull, &series).await?;
    for name in &series {
        let otlp: BTreeSet<&String> = otlp_jobs[*name]
            .iter()
            .filter(|j| *j == "payment")
            .collect();
        let pull: BTreeSet<&String> = pull_jobs[*name].iter().collect();
        ensure(otlp == pull, || {
            format!("{name}: job {otlp:?} through the Collector, {pull:?} from /metrics")
        })?;
    }
    // (The runtime's series too: the Collector's exporter names them as
    // observe's table says, which the HighSaturation rule relies on.)
    for core in [
        "http_server_request_duration_seconds_count",
        "external_gateway_requests_total",
        "tokio_runtime_worker_count",
        "tokio_runtime_worker_busy_time_seconds_total",
    ] {
        ensure(pull_jobs[core].contains("payment"), || {
            format!("no {core}{{job=\"payment\"}}")
        })?;
    }

    // 3. The fault: the bank answers 504; payment swallows it.
    bank.failing.store(true, Ordering::Relaxed);
    let fault_at = Instant::now();
    let first_seen: std::sync::Mutex<BTreeMap<String, Duration>> = Default::default();
    let want_am: Vec<&str> = FAULT_ALERTS
        .iter()
        .copied()
        .chain(["SyntheticCheckFailed"])
        .collect();
    eventually("the fault's alerts fire on both paths and reach Alertmanager", Duration::from_secs(90), || {
        let first_seen = &first_seen;
        let want_am = &want_am;
        async move {
            let otlp = firing(prom_otlp).await?;
            let pull = firing(prom_pull).await?;
            let am: BTreeSet<String> = alertmanager
                .alerts()
                .await?
                .into_iter()
                .filter(|a| a.state == "active")
                .map(|a| a.name)
                .collect();
            if let Ok(mut seen) = first_seen.lock() {
                for (path, set) in [("Prometheus on the Collector's series", &otlp), ("Prometheus on /metrics", &pull), ("Alertmanager", &am)] {
                    for name in set {
                        seen.entry(format!("{path}: {name}"))
                            .or_insert_with(|| fault_at.elapsed());
                    }
                }
            }
            ensure(
                has_all(&otlp, &FAULT_ALERTS) && has_all(&pull, &FAULT_ALERTS) && has_all(&am, want_am),
                || format!("firing: collector path {otlp:?}, pull path {pull:?}; Alertmanager {am:?}"),
            )
        }
    })
    .await?;
    let first_seen = first_seen.into_inner().unwrap_or_default();
    let mut by_time: Vec<(&String, &Duration)> = first_seen.iter().collect();
    by_time.sort_by_key(|(_, at)| **at);
    for (what, at) in by_time {
        println!("  +{:>5.1} s after the fault  {what}", at.as_secs_f64());
    }
    let orders = traffic.stop().await;

    // 4. One lookup, order id to cause.
    let affected = orders
        .iter()
        .filter(|o| o.at > fault_at + Duration::from_secs(1) && o.status == "processing")
        .nth(3)
        .ok_or("no order answered \"processing\" during the fault")?
        .order_id
        .clone();
    lookup(logs, collector, &affected).await?;
    stack.stop_services();
    Ok(())
}

fn field<'a>(line: &'a serde_json::Map<String, serde_json::Value>, key: &str) -> &'a str {
    line.get(key).and_then(|v| v.as_str()).unwrap_or_default()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// From an order id to its lines in every service, to one trace id, to the
/// whole trace with the bank's 504 and payment's masked failure on it.
async fn lookup(logs: &VictoriaLogs, collector: &Collector, order: &str) -> Result<(), BoxError> {
    let by_order = format!("order_id:=\"{order}\"");
    let lines = eventually(
        "the order's lines from every service in the log store",
        Duration::from_secs(20),
        || async {
            let lines = logs.query(&by_order).await?;
            let services: BTreeSet<&str> = lines.iter().map(|l| field(l, "service.name")).collect();
            ensure(services.len() == 3 && lines.len() == 5, || {
                format!("{} lines from {services:?}", lines.len())
            })?;
            Ok(lines)
        },
    )
    .await?;
    let mut events: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (field(l, "service.name"), field(l, "event_name")))
        .collect();
    events.sort();
    ensure(
        events
            == [
                ("checkout", "checkout_answered"),
                ("checkout", "checkout_started"),
                ("fraud", "fraud_screened"),
                ("payment", "gateway_call_failed"),
                ("payment", "payment_failed"),
            ],
        || format!("the order's lines: {events:?}"),
    )?;
    let trace_ids: BTreeSet<&str> = lines.iter().map(|l| field(l, "trace_id")).collect();
    ensure(trace_ids.len() == 1, || {
        format!("one order, trace ids {trace_ids:?}")
    })?;
    let trace_id = trace_ids.into_iter().next().unwrap_or_default().to_owned();
    ensure(is_hex(&trace_id, 32), || format!("trace id {trace_id:?}"))?;

    // The trace id leads to the same lines, each with the mandatory fields.
    let by_trace = logs.query(&format!("trace_id:=\"{trace_id}\"")).await?;
    ensure(by_trace.len() == lines.len(), || {
        format!(
            "{} lines by trace id, {} by order id: {by_trace:#?}",
            by_trace.len(),
            lines.len()
        )
    })?;
    for l in &by_trace {
        for key in [
            "_time",
            "severity_text",
            "service.name",
            "event_name",
            "trace_id",
            "span_id",
            "scope.name",
        ] {
            ensure(!field(l, key).is_empty(), || {
                format!("a line without {key}: {l:?}")
            })?;
        }
        ensure(
            field(l, "trace_id") == trace_id && is_hex(field(l, "span_id"), 16),
            || format!("a line with other ids: {l:?}"),
        )?;
    }
    let failed = by_trace
        .iter()
        .find(|l| field(l, "event_name") == "payment_failed")
        .ok_or("no payment_failed line")?;
    ensure(
        field(failed, "severity_text") == "ERROR"
            && field(failed, "gateway") == "bank"
            && field(failed, "gateway_status_code") == "504",
        || format!("payment_failed: {failed:?}"),
    )?;

    // The trace store holds the whole trace, one tree across three services
    // and two languages, with the cause on it.
    let jaeger = collector.jaeger();
    let trace = eventually(
        "the order's trace in the trace store",
        Duration::from_secs(20),
        || async {
            jaeger
                .trace(&trace_id)
                .await?
                .ok_or_else(|| "not yet".into())
        },
    )
    .await?;
    ensure(trace.tree() == expected_tree(), || {
        format!("trace {trace_id}:\n{}", trace.tree().join("\n"))
    })?;
    let span = |service: &str, name: &str| {
        trace
            .spans
            .iter()
            .find(|s| s.service == service && s.operation_name == name)
            .cloned()
            .ok_or_else(|| format!("no {service}: {name}"))
    };
    let bank_span = span("payment", "gateway bank")?;
    ensure(
        bank_span.is_error()
            && bank_span.tag("error.type").as_deref() == Some("504")
            && bank_span.tag("gateway").as_deref() == Some("bank"),
        || format!("the bank span: {:?}", bank_span.tags),
    )?;
    let server = span("payment", "POST /pay")?;
    ensure(
        server.is_error()
            && server.tag("error.type").as_deref() == Some("masked_failure")
            && server.tag("http.response.status_code").as_deref() == Some("200"),
        || format!("payment's server span: {:?}", server.tags),
    )?;
    println!(
        "  order {order} → trace {trace_id}: {} lines, {} spans; bank span ERROR 504, payment POST /pay masked_failure",
        by_trace.len(),
        trace.spans.len()
    );
    Ok(())
}

/// Every order's trace: checkout (observe) → fraud (Python) → payment (observe).
fn expected_tree() -> Vec<String> {
    [
        "checkout: POST /checkout",
        "  checkout: stack::services::checkout",
        "    checkout: POST",
        "      fraud: POST /screen",
        "        fraud: POST",
        "          payment: POST /pay",
        "            payment: stack::services::pay",
        "              payment: gateway bank",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

// ------------------------------------------------------------ tail sampling

/// Orders of the tail-sampling runs: how many of each kind.
const TAIL_OK: usize = 1130;
const TAIL_FAIL: usize = 40;
const TAIL_SLOW: usize = 30;

/// The `(lo, hi)` such that a Binomial(`n`, `p`) count falls below `lo` or
/// above `hi` with probability at most `(1 - level) / 2` each.
pub(crate) fn binomial_interval(n: u64, p: f64, level: f64) -> (u64, u64) {
    let tail = (1.0 - level) / 2.0;
    let mut pmf = (1.0 - p).powf(n as f64);
    let mut cdf = 0.0;
    let mut lo = None;
    for k in 0..=n {
        cdf += pmf;
        if lo.is_none() && cdf > tail {
            lo = Some(k);
        }
        if cdf >= 1.0 - tail {
            return (lo.unwrap_or(k), k);
        }
        pmf *= (n - k) as f64 / (k + 1) as f64 * p / (1.0 - p);
    }
    (lo.unwrap_or(n), n)
}

/// The order ids of one run, kinds interleaved (every 28th fails, every
/// 38th is slow), the same in every run.
fn tail_orders() -> Vec<String> {
    let (mut ok, mut fail, mut slow) = (0, 0, 0);
    let mut out = Vec::with_capacity(TAIL_OK + TAIL_FAIL + TAIL_SLOW);
    for i in 0.. {
        if out.len() == TAIL_OK + TAIL_FAIL + TAIL_SLOW {
            break;
        }
        if i % 28 == 5 && fail < TAIL_FAIL {
            out.push(format!("tail-fail-{fail}"));
            fail += 1;
        } else if i % 38 == 7 && slow < TAIL_SLOW {
            out.push(format!("tail-slow-{slow}"));
            slow += 1;
        } else if ok < TAIL_OK {
            out.push(format!("tail-ok-{ok}"));
            ok += 1;
        } else if fail < TAIL_FAIL {
            out.push(format!("tail-fail-{fail}"));
            fail += 1;
        } else {
            out.push(format!("tail-slow-{slow}"));
            slow += 1;
        }
    }
    out
}

/// What the trace store held after one run, by order id (every span of a
/// trace carries its order id on at least one span per service).
struct Stored {
    /// Order id → the stored trace.
    by_order: BTreeMap<String, JaegerTrace>,
    /// Traces whose spans carry no order id.
    anonymous: usize,
}

impl Stored {
    fn of_kind(&self, kind: &str) -> Vec<&JaegerTrace> {
        self.by_order
            .iter()
            .filter(|(o, _)| o.starts_with(&format!("tail-{kind}-")))
            .map(|(_, t)| t)
            .collect()
    }
}

/// Whole: exactly the eight spans of an order, in one tree.
fn complete(t: &JaegerTrace) -> bool {
    t.tree() == expected_tree()
}

fn services_of(t: &JaegerTrace) -> BTreeSet<&str> {
    t.spans.iter().map(|s| s.service.as_str()).collect()
}

/// One run of the tail-sampling traffic through the whole stack; returns
/// what the trace store holds once its count has stopped moving.
async fn tail_run(in_process: bool) -> Result<Stored, BoxError> {
    let dir = tempdir("observe-tail-")?;
    let mut options = CollectorOptions::new().decision_wait(Duration::from_secs(4));
    if in_process {
        // The comparison: the Collector keeps whatever observe's in-process
        // samplers let through.
        options = options.override_yaml(
            "processors::tail_sampling::policies: [{name: keep-all, type: always_sample}]",
        );
    }
    let collector = Collector::start(options).await?;
    let bank = Arc::new(Bank::default());
    let bank_addr = services::start_bank(Arc::clone(&bank)).await?;
    let telemetry = Telemetry {
        otlp_endpoint: collector.otlp_http_url(),
        metric_interval: Duration::from_secs(5),
        in_process_tail_sampling: in_process,
        extra: Vec::new(),
    };
    let mut svcs = Services::start(&telemetry, bank_addr, dir.path())?;
    let queue = Arc::new(std::sync::Mutex::new(tail_orders()));
    let wrong = Arc::new(std::sync::Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (queue, wrong) = (Arc::clone(&queue), Arc::clone(&wrong));
            let checkout = svcs.checkout.url.clone();
            tokio::spawn(async move {
                let client = services::client();
                loop {
                    let Some(order) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                        return;
                    };
                    let want = if order.contains("fail") {
                        "processing"
                    } else {
                        "success"
                    };
                    let got = services::place_order(&client, &checkout, &order)
                        .await
                        .unwrap_or_else(|e| e.to_string());
                    if got != want {
                        if let Ok(mut w) = wrong.lock() {
                            w.push(format!("{order}: {got}"));
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await?;
    }
    let wrong = wrong.lock().map(|w| w.clone()).unwrap_or_default();
    ensure(wrong.is_empty(), || format!("wrong answers: {wrong:?}"))?;
    // A deployment's stop: each service flushes what it holds (observe's
    // in-process sampler decides its pending traces first).
    svcs.stop();

    let jaeger = collector.jaeger();
    let last = std::cell::Cell::new((usize::MAX, Instant::now()));
    let stored = eventually(
        "the trace store's count to settle",
        Duration::from_secs(60),
        || {
            let (jaeger, last) = (&jaeger, &last);
            async move {
                let mut all: BTreeMap<String, JaegerTrace> = BTreeMap::new();
                for service in ["checkout", "fraud", "payment"] {
                    for t in jaeger.find_traces(service, &[]).await? {
                        all.insert(t.trace_id.clone(), t);
                    }
                }
                let spans: usize = all.values().map(|t| t.spans.len()).sum();
                let (seen, since) = last.get();
                if spans != seen {
                    last.set((spans, Instant::now()));
                    return Err(format!("{} traces, {spans} spans, still moving", all.len()).into());
                }
                if since.elapsed() < Duration::from_secs(6) {
                    return Err("settling".into());
                }
                Ok(all)
            }
        },
    )
    .await?;
    let mut by_order = BTreeMap::new();
    let mut anonymous = 0;
    for (_, t) in stored {
        let orders: BTreeSet<String> = t.spans.iter().filter_map(|s| s.tag("order_id")).collect();
        match orders.len() {
            0 => anonymous += 1,
            1 => {
                let order = orders.into_iter().next().unwrap_or_default();
                ensure(!by_order.contains_key(&order), || {
                    format!("two traces for {order}")
                })?;
                by_order.insert(order, t);
            }
            _ => return Err(format!("one trace, several orders: {orders:?}").into()),
        }
    }
    Ok(Stored {
        by_order,
        anonymous,
    })
}

/// The seed's tail sampling in the Collector keeps 100% of error and slow
/// traces, each whole across the three services, and ~10% of the rest; the
/// same traffic through observe's in-process samplers keeps the failing
/// service's part of each error trace, not the whole trace.
pub(crate) async fn tail_sampling() -> Result<(), BoxError> {
    let total = TAIL_OK + TAIL_FAIL + TAIL_SLOW;
    let (lo, hi) = binomial_interval(TAIL_OK as u64, 0.1, 0.999);
    // The interval, computed with exact fractions in Python for n = 1130.
    ensure((lo, hi) == (81, 147), || {
        format!("binomial interval ({lo}, {hi})")
    })?;
    ensure(binomial_interval(10, 0.5, 0.9) == (2, 8), || {
        "binomial interval of 10 coins".to_owned()
    })?;
    let collector = tail_run(false).await?;
    let fail = collector.of_kind("fail");
    let slow = collector.of_kind("slow");
    let ok = collector.of_kind("ok");
    ensure(
        fail.len() == TAIL_FAIL && fail.iter().all(|t| complete(t)),
        || {
            format!(
                "error traces: {} stored of {TAIL_FAIL}, {} whole",
                fail.len(),
                fail.iter().filter(|t| complete(t)).count()
            )
        },
    )?;
    ensure(
        slow.len() == TAIL_SLOW && slow.iter().all(|t| complete(t)),
        || {
            format!(
                "slow traces: {} stored of {TAIL_SLOW}, {} whole",
                slow.len(),
                slow.iter().filter(|t| complete(t)).count()
            )
        },
    )?;
    ensure(slow.iter().all(|t| t.duration_us() >= 2_000_000), || {
        "a slow trace under 2 s".to_owned()
    })?;
    ensure(ok.iter().all(|t| complete(t)), || {
        format!(
            "{} of {} kept OK traces are not whole",
            ok.iter().filter(|t| !complete(t)).count(),
            ok.len()
        )
    })?;
    ensure((lo..=hi).contains(&(ok.len() as u64)), || {
        format!(
            "{} of {TAIL_OK} OK traces kept: outside the 99.9% interval [{lo}, {hi}] around 10%",
            ok.len()
        )
    })?;
    ensure(collector.anonymous == 0, || {
        format!("{} traces without an order", collector.anonymous)
    })?;
    println!(
        "  Collector tail sampling, {total} orders: errors {}/{TAIL_FAIL} whole, slow {}/{TAIL_SLOW} whole, OK {}/{TAIL_OK} kept ({:.1}%, 99.9% interval [{lo}, {hi}]), all whole",
        fail.len(),
        slow.len(),
        ok.len(),
        ok.len() as f64 * 100.0 / TAIL_OK as f64
    );

    // The same traffic, sampled in each Rust service by observe instead.
    let observe = tail_run(true).await?;
    let fail = observe.of_kind("fail");
    let slow = observe.of_kind("slow");
    let ok = observe.of_kind("ok");
    let with = |ts: &[&JaegerTrace], service: &str| {
        ts.iter()
            .filter(|t| services_of(t).contains(service))
            .count()
    };
    let whole = |ts: &[&JaegerTrace]| ts.iter().filter(|t| complete(t)).count();
    // Payment saw the error: it keeps its part of every error trace; the
    // Python service samples nothing away; checkout saw a 200 and keeps its
    // part only at the healthy rate.
    ensure(
        fail.len() == TAIL_FAIL
            && with(&fail, "payment") == TAIL_FAIL
            && with(&fail, "fraud") == TAIL_FAIL,
        || {
            format!(
                "in-process: error traces {} stored, {} with payment's spans",
                fail.len(),
                with(&fail, "payment")
            )
        },
    )?;
    ensure(whole(&fail) < TAIL_FAIL, || {
        "in-process sampling kept every error trace whole".to_owned()
    })?;
    ensure(slow.len() == TAIL_SLOW && whole(&slow) == TAIL_SLOW, || {
        format!(
            "in-process: slow traces {} stored, {} whole",
            slow.len(),
            whole(&slow)
        )
    })?;
    ensure(with(&ok, "fraud") == TAIL_OK, || {
        format!(
            "in-process: fraud's spans in {} OK traces",
            with(&ok, "fraud")
        )
    })?;
    println!(
        "  observe in-process sampling, same traffic: errors {}/{TAIL_FAIL} whole (payment's part in {}, checkout's in {}), slow {}/{TAIL_SLOW} whole, \
         OK: observe's parts in {} ({:.1}%), whole {}, fraud-only {}",
        whole(&fail),
        with(&fail, "payment"),
        with(&fail, "checkout"),
        whole(&slow),
        with(&ok, "checkout"),
        with(&ok, "checkout") as f64 * 100.0 / TAIL_OK as f64,
        whole(&ok),
        ok.iter().filter(|t| services_of(t) == BTreeSet::from(["fraud"])).count()
    );
    Ok(())
}
