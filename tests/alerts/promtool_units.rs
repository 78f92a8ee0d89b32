//! `promtool test rules`: the alerts replayed against series of the incident, healthy traffic and slow or saturated services.

use super::*;

/// Upper bounds of the SDK's `http.server.request.duration` buckets.
pub(super) const BUCKETS: &[&str] = &[
    "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1", "2.5", "5",
    "7.5", "10", "+Inf",
];

/// Per-minute increments of a counter, phase by phase: `[(minutes, increment)]`.
pub(super) type Phases = [(u32, u64)];

/// Cumulative values, one per minute from t=0 (value 0).
pub(super) fn counter(phases: &Phases) -> String {
    let mut value = 0u64;
    let mut out = vec!["0".to_owned()];
    for &(minutes, inc) in phases {
        for _ in 0..minutes {
            value += inc;
            out.push(value.to_string());
        }
    }
    out.join(" ")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    format!("{{{}}}", inner.join(","))
}

pub(super) struct Series(pub(super) Vec<Value>);

impl Series {
    pub(super) fn add(&mut self, name: &str, labels_: &[(&str, &str)], values: String) {
        self.0
            .push(json!({ "series": format!("{name}{}", labels(labels_)), "values": values }));
    }

    /// A server-request histogram: `phases` gives requests per minute, all of
    /// them taking `fraction_within(le)` cumulative shares (from `latency`).
    fn http(
        &mut self,
        route: &str,
        status: &str,
        error_type: &str,
        synthetic: bool,
        phases: &Phases,
        latency: fn(f64) -> f64,
    ) {
        let base = [
            ("job", JOB),
            ("instance", "app-1:9464"),
            ("http_request_method", "POST"),
            ("http_route", route),
            ("http_response_status_code", status),
            ("error_type", error_type),
            ("synthetic", if synthetic { "true" } else { "" }),
        ];
        for le in BUCKETS {
            let share = if *le == "+Inf" {
                1.0
            } else {
                le.parse::<f64>().map_or(1.0, latency)
            };
            let scaled: Vec<(u32, u64)> = phases
                .iter()
                .map(|&(m, inc)| (m, (inc as f64 * share).floor() as u64))
                .collect();
            let mut with_le = base.to_vec();
            with_le.push(("le", le));
            self.add(
                names::HTTP_SERVER_REQUEST_DURATION_BUCKET,
                &with_le,
                counter(&scaled),
            );
        }
        self.add(
            names::HTTP_SERVER_REQUEST_DURATION_COUNT,
            &base,
            counter(phases),
        );
    }

    fn gateway(&mut self, status: &str, error_type: &str, phases: &Phases) {
        self.add(
            names::EXTERNAL_GATEWAY_REQUESTS_TOTAL,
            &[
                ("job", JOB),
                ("gateway", "bank"),
                ("status", status),
                ("error_type", error_type),
            ],
            counter(phases),
        );
    }

    pub(super) fn gauge(&mut self, name: &str, labels_: &[(&str, &str)], values: &str) {
        self.add(name, labels_, values.to_owned());
    }
}

/// Healthy latency of successful requests: p99 about 0.42 s, nothing above 0.5 s.
pub(super) fn healthy_latency(le: f64) -> f64 {
    match le {
        le if le < 0.025 => 0.0,
        le if le < 0.05 => 0.01,
        le if le < 0.1 => 0.1,
        le if le < 0.25 => 0.5,
        le if le < 0.5 => 0.97,
        _ => 1.0,
    }
}

/// Failing fast: every failure within 10 ms.
pub(super) fn fast(le: f64) -> f64 {
    if le < 0.01 {
        0.0
    } else {
        1.0
    }
}

/// Stuck behind a 30 s gateway timeout: above every finite bucket.
pub(super) fn stuck(_le: f64) -> f64 {
    0.0
}

/// An alert promtool should see firing: its name, full label set and the
/// rendering of `{{ $value ... }}` in its annotations.
#[derive(Clone)]
pub(super) struct Firing {
    name: &'static str,
    labels: Vec<(&'static str, &'static str)>,
    value: &'static str,
}

pub(super) fn firing(
    name: &'static str,
    labels: &[(&'static str, &'static str)],
    value: &'static str,
) -> Firing {
    Firing {
        name,
        labels: labels.to_vec(),
        value,
    }
}

/// The rule an expected alert comes from: same name, static labels all
/// present (the most specific such rule).
fn rule_of<'a>(rules: &'a RuleFile, f: &Firing) -> &'a AlertingRule {
    rules
        .alerts(f.name)
        .filter(|r| {
            r.labels
                .iter()
                .all(|(k, v)| f.labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .max_by_key(|r| r.labels.len())
        .unwrap_or_else(|| panic!("no {} rule matches {:?}", f.name, f.labels))
}

/// Renders an annotation template the way Prometheus will for this alert:
/// `{{ $labels.x }}` from the labels, every `{{ $value ... }}` as `value`.
fn render(template: &str, f: &Firing) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("closed action") + start;
        let action = rest[start + 2..end].trim();
        if let Some(label) = action.strip_prefix("$labels.") {
            let v = f
                .labels
                .iter()
                .find(|(k, _)| *k == label)
                .map_or("", |(_, v)| *v);
            out.push_str(v);
        } else if action.starts_with("$value") {
            out.push_str(f.value);
        } else {
            panic!("unexpected template action {action:?}");
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Runs `promtool test rules` with `series`, asserting at each evaluation
/// minute exactly the firing alerts listed (for every alert name).
pub(super) fn promtool_test(
    spec: &AlertSpec,
    test: &str,
    series: Series,
    expectations: Vec<(u32, Vec<Firing>)>,
    promql: Vec<Value>,
) {
    let Some(promtool) = promtool() else { return };
    let rules = spec.prometheus_rules();
    let dir = scratch_dir(test);
    check_rules(&promtool, &dir, "rules.yml", &rules.to_yaml());

    let mut alert_tests = Vec::new();
    for (minute, alerts) in &expectations {
        for name in alert::ALL {
            let exp: Vec<Value> = alerts
                .iter()
                .filter(|f| f.name == *name)
                .map(|f| {
                    let rule = rule_of(&rules, f);
                    let annotations: BTreeMap<&String, String> = rule
                        .annotations
                        .iter()
                        .map(|(k, v)| (k, render(v, f)))
                        .collect();
                    let labels: BTreeMap<&str, &str> = f.labels.iter().copied().collect();
                    json!({ "exp_labels": labels, "exp_annotations": annotations })
                })
                .collect();
            alert_tests.push(json!({
                "eval_time": format!("{minute}m"),
                "alertname": name,
                "exp_alerts": exp,
            }));
        }
    }
    // JSON is YAML: promtool reads it as is.
    let file = json!({
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "name": test,
            "interval": "1m",
            "input_series": series.0,
            "alert_rule_test": alert_tests,
            "promql_expr_test": promql,
        }]
    });
    let text = serde_json::to_string_pretty(&file).expect("serialize");
    std::fs::write(dir.join("test.yml"), &text).expect("write test");
    let (ok, out) = run(&promtool, &["test", "rules", "test.yml"], &dir);
    assert!(
        ok,
        "promtool test rules ({test}) failed:\n{out}\n(files in {})",
        dir.display()
    );
    assert!(out.contains("SUCCESS"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn synthetic(series: &mut Series, phases: &str) {
    for region in ["eu-west", "us-east"] {
        series.gauge(
            names::SYNTHETIC_CHECK_SUCCESS,
            &[
                ("job", "synthetic-runner"),
                ("flow", "checkout"),
                ("region", region),
            ],
            phases,
        );
    }
}

const MINUTES: u32 = 60;

/// The 2 AM incident: from minute 10 the bank answers 504 (timeout) to every
/// payment and the /pay handler masks it as a 200 with
/// `error_type="masked_failure"`, after waiting 30 s. /orders stays healthy.
#[test]
fn promtool_replays_the_gateway_incident() {
    let mut s = Series(Vec::new());
    let before = 10;
    let after = MINUTES - before;
    s.http(
        "/orders",
        "200",
        "",
        false,
        &[(MINUTES, 60)],
        healthy_latency,
    );
    s.http(
        "/pay",
        "200",
        "",
        false,
        &[(before, 60), (after, 0)],
        healthy_latency,
    );
    s.http(
        "/pay",
        "200",
        names::ERROR_TYPE_MASKED_FAILURE,
        false,
        &[(before, 0), (after, 60)],
        stuck,
    );
    s.gateway("success", "", &[(before, 60), (after, 0)]);
    s.gateway("timeout", "gateway_timeout", &[(before, 0), (after, 60)]);
    s.add(
        names::OBSERVE_MASKED_FAILURES_TOTAL,
        &[("job", JOB), ("http_route", "/pay"), ("gateway", "bank")],
        counter(&[(before, 0), (after, 60)]),
    );
    s.gauge(
        names::OBSERVE_RESOURCE_UTILIZATION,
        &[("job", JOB), ("resource", "db_connections")],
        "0.4x60",
    );
    s.gauge(
        names::HTTP_SERVER_ACTIVE_REQUESTS,
        &[
            ("job", JOB),
            ("instance", "app-1:9464"),
            ("http_request_method", "POST"),
        ],
        "3x9 30x50",
    );
    // The synthetic checkout run every minute fails from minute 10 on.
    synthetic(&mut s, "1x9 0x50");

    let burn =
        |long: &'static str, short: &'static str, severity: &'static str, value: &'static str| {
            firing(
                alert::ERROR_BUDGET_BURN,
                &[
                    ("job", JOB),
                    ("severity", severity),
                    ("slo", "availability"),
                    ("long_window", long),
                    ("short_window", short),
                ],
                value,
            )
        };
    let synthetic_failed = |region: &'static str| {
        firing(
            alert::SYNTHETIC_CHECK_FAILED,
            &[
                ("flow", "checkout"),
                ("region", region),
                ("reason", "failing"),
                ("severity", "critical"),
            ],
            "0",
        )
    };
    let high_error_rate = |v| {
        firing(
            alert::HIGH_ERROR_RATE,
            &[("job", JOB), ("severity", "critical")],
            v,
        )
    };
    let gateway_errors = |v| {
        firing(
            alert::EXTERNAL_GATEWAY_ERRORS,
            &[("job", JOB), ("gateway", "bank"), ("severity", "critical")],
            v,
        )
    };

    let expectations = vec![
        // Before the incident nothing fires.
        (5, vec![]),
        (10, vec![]),
        // Minute 11: the first masked failures are in. The fast burn (1h/5m at
        // 14.4x) pages at once, and so do the slower windows (with only 11
        // minutes of history, every long window holds the same 60 failures
        // out of 1320 requests: 45.45x the 0.1% budget).
        // HighErrorRate and ExternalGatewayErrors are pending (for: 2m).
        (
            11,
            vec![
                burn("1h", "5m", "critical", "45.45"),
                burn("6h", "30m", "critical", "45.45"),
                burn("3d", "6h", "warning", "45.45"),
            ],
        ),
        // Minute 12: two failed synthetic runs (minutes 10 and 11) fill the 2m window.
        (
            12,
            vec![
                synthetic_failed("eu-west"),
                synthetic_failed("us-east"),
                burn("1h", "5m", "critical", "83.33"),
                burn("6h", "30m", "critical", "83.33"),
                burn("3d", "6h", "warning", "83.33"),
            ],
        ),
        // Minute 13: pending for 2m, the golden-signal alerts fire — 3 minutes
        // into the incident instead of a Twitter thread.
        (
            13,
            vec![
                high_error_rate("30%"),
                gateway_errors("60%"),
                synthetic_failed("eu-west"),
                synthetic_failed("us-east"),
                burn("1h", "5m", "critical", "115.4"),
                burn("6h", "30m", "critical", "115.4"),
                burn("3d", "6h", "warning", "115.4"),
            ],
        ),
        // Steady state: half of all requests fail (every /pay), the gateway fails 100%.
        // HighP99Latency stays quiet: the 30 s requests are failures, not slow successes.
        (
            30,
            vec![
                high_error_rate("50%"),
                gateway_errors("100%"),
                synthetic_failed("eu-west"),
                synthetic_failed("us-east"),
                burn("1h", "5m", "critical", "333.3"),
                burn("6h", "30m", "critical", "333.3"),
                burn("3d", "6h", "warning", "333.3"),
            ],
        ),
    ];
    let promql = vec![
        // Failed-request latency has its own recording rule (30 s is past the last bucket, 10 s).
        json!({
            "expr": "job:http_server_request_duration_seconds:p99_failed_rate5m",
            "eval_time": "30m",
            "exp_samples": [{ "labels": format!("job:http_server_request_duration_seconds:p99_failed_rate5m{{job=\"{JOB}\"}}"), "value": 10 }]
        }),
        json!({
            "expr": "job:slo_availability_error_ratio:rate5m",
            "eval_time": "30m",
            "exp_samples": [{ "labels": format!("job:slo_availability_error_ratio:rate5m{{job=\"{JOB}\"}}"), "value": 0.5 }]
        }),
    ];
    promtool_test(&payments(), "incident", s, expectations, promql);
}

/// Healthy traffic: 1000 requests a minute on each route, of which
/// `pay_errors` and `orders_errors` fail fast with a 500; p99 about 420 ms; a
/// healthy gateway; passing synthetic checks; and failing synthetic requests
/// that the rules must ignore.
fn healthy_series(pay_errors: u64, orders_errors: u64) -> Series {
    let mut s = Series(Vec::new());
    let minutes = 120;
    s.http(
        "/pay",
        "200",
        "",
        false,
        &[(minutes, 1000 - pay_errors)],
        healthy_latency,
    );
    s.http("/pay", "500", "500", false, &[(minutes, pay_errors)], fast);
    s.http(
        "/orders",
        "200",
        "",
        false,
        &[(minutes, 1000 - orders_errors)],
        healthy_latency,
    );
    s.http(
        "/orders",
        "500",
        "500",
        false,
        &[(minutes, orders_errors)],
        fast,
    );
    // Synthetic traffic (excluded from golden signals and SLOs): would be a 3% error ratio.
    s.http("/pay", "500", "500", true, &[(minutes, 60)], fast);
    s.gateway("success", "", &[(minutes, 999)]);
    s.gateway("error", "500", &[(minutes, 1)]);
    s.gauge(
        names::OBSERVE_RESOURCE_UTILIZATION,
        &[("job", JOB), ("resource", "db_connections")],
        "0.5x120",
    );
    s.gauge(
        names::OBSERVE_RESOURCE_UTILIZATION,
        &[("job", JOB), ("resource", "cpu")],
        "0.7x120",
    );
    // Four tokio workers, half busy.
    tokio_workers(&mut s, 4, &[(minutes, 120)]);
    s.gauge(
        names::HTTP_SERVER_ACTIVE_REQUESTS,
        &[
            ("job", JOB),
            ("instance", "app-1:9464"),
            ("http_request_method", "POST"),
        ],
        "12x120",
    );
    synthetic(&mut s, "1x120");
    s
}

/// Healthy traffic at 0.2% errors and p99 ~420 ms: no golden-signal,
/// gateway, saturation, synthetic or paging alert fires.
///
/// The one alert that does fire is the availability *ticket* (3d/6h at 1x):
/// 0.2% errors against a 99.9% SLO is a 2x burn that would exhaust the 30-day
/// budget in 15 days, which is exactly what that ticket is for.
#[test]
fn promtool_healthy_traffic_pages_nobody() {
    let ticket = || {
        firing(
            alert::ERROR_BUDGET_BURN,
            &[
                ("job", JOB),
                ("severity", "warning"),
                ("slo", "availability"),
                ("long_window", "3d"),
                ("short_window", "6h"),
            ],
            "2",
        )
    };
    let expectations = vec![
        (5, vec![ticket()]),
        (30, vec![ticket()]),
        (119, vec![ticket()]),
    ];
    // p99 of successful requests is about 420 ms; error ratio 0.2%.
    let promql = vec![
        json!({
            "expr": "count(job:http_server_request_duration_seconds:p99_success_rate5m > 0.4 and job:http_server_request_duration_seconds:p99_success_rate5m < 0.45)",
            "eval_time": "60m",
            "exp_samples": [{ "labels": "{}", "value": 1 }]
        }),
        json!({
            "expr": "job:slo_availability_error_ratio:rate5m",
            "eval_time": "60m",
            "exp_samples": [{ "labels": format!("job:slo_availability_error_ratio:rate5m{{job=\"{JOB}\"}}"), "value": 0.002 }]
        }),
    ];
    promtool_test(
        &payments(),
        "healthy",
        healthy_series(2, 2),
        expectations,
        promql,
    );
}

/// Healthy traffic within the error budget (0.05% errors): nothing fires at all.
#[test]
fn promtool_traffic_within_budget_fires_nothing() {
    let expectations = vec![(5, vec![]), (30, vec![]), (119, vec![])];
    promtool_test(
        &payments(),
        "quiet",
        healthy_series(1, 0),
        expectations,
        vec![],
    );
}

/// `workers` tokio workers of instance `app-1:9464`, busy `phases`
/// seconds per minute (summed over the workers).
fn tokio_workers(s: &mut Series, workers: u32, phases: &Phases) {
    let minutes: u32 = phases.iter().map(|p| p.0).sum();
    let labels = [("job", JOB), ("instance", "app-1:9464")];
    s.gauge(
        names::TOKIO_RUNTIME_WORKER_COUNT,
        &labels,
        &format!("{workers}x{minutes}"),
    );
    s.add(
        names::TOKIO_RUNTIME_WORKER_BUSY_TIME_SECONDS_TOTAL,
        &labels,
        counter(phases),
    );
}

/// Slow successes: p99 4.75 s, while failures answer in 10 ms. A saturated
/// connection pool (95%), 300 requests in flight (limit 256), and both
/// tokio workers 95% busy.
#[test]
fn promtool_slow_successes_and_saturation() {
    let mut s = Series(Vec::new());
    let minutes = 30;
    s.http("/orders", "200", "", false, &[(minutes, 1000)], slow);
    s.http("/orders", "500", "500", false, &[(minutes, 1)], fast);
    s.gauge(
        names::OBSERVE_RESOURCE_UTILIZATION,
        &[("job", JOB), ("resource", "db_connections")],
        "0.95x30",
    );
    s.gauge(
        names::HTTP_SERVER_ACTIVE_REQUESTS,
        &[
            ("job", JOB),
            ("instance", "app-1:9464"),
            ("http_request_method", "POST"),
        ],
        "300x30",
    );
    tokio_workers(&mut s, 2, &[(minutes, 114)]);
    s.gateway("success", "", &[(minutes, 100)]);
    synthetic(&mut s, "1x30");

    let saturated = || {
        vec![
            firing(
                alert::HIGH_SATURATION,
                &[
                    ("job", JOB),
                    ("resource", "db_connections"),
                    ("severity", "warning"),
                ],
                "95%",
            ),
            firing(
                alert::HIGH_SATURATION,
                &[
                    ("job", JOB),
                    ("instance", "app-1:9464"),
                    ("resource", "active_requests"),
                    ("severity", "warning"),
                ],
                "300",
            ),
        ]
    };
    // Every successful request is slower than the 1 s latency SLO: 100x its 1% budget.
    let latency_burn = |long: &'static str, short: &'static str, severity: &'static str| {
        firing(
            alert::ERROR_BUDGET_BURN,
            &[
                ("job", JOB),
                ("severity", severity),
                ("slo", "latency"),
                ("long_window", long),
                ("short_window", short),
            ],
            "100",
        )
    };
    let burns = || {
        vec![
            latency_burn("1h", "5m", "critical"),
            latency_burn("6h", "30m", "critical"),
            latency_burn("3d", "6h", "warning"),
        ]
    };
    let p99 = || {
        firing(
            alert::HIGH_P99_LATENCY,
            &[("job", JOB), ("severity", "warning")],
            "4.75s",
        )
    };
    // The workers' busy share reaches 95% once rate()'s 5m window is full
    // of samples (at 5m: the counter starts at 0, so earlier windows count
    // from 0); for: 5m.
    let workers_busy = || {
        firing(
            alert::HIGH_SATURATION,
            &[
                ("job", JOB),
                ("instance", "app-1:9464"),
                ("resource", "tokio_workers"),
                ("severity", "warning"),
            ],
            "95%",
        )
    };
    let expectations = vec![
        // The p99 condition holds from minute 1 (two samples for rate()); for: 5m.
        (4, burns()),
        (5, [burns(), saturated()].concat()),
        (6, [burns(), saturated(), vec![p99()]].concat()),
        (9, [burns(), saturated(), vec![p99()]].concat()),
        (
            10,
            [burns(), saturated(), vec![p99(), workers_busy()]].concat(),
        ),
        (
            20,
            [burns(), saturated(), vec![p99(), workers_busy()]].concat(),
        ),
    ];
    promtool_test(&payments(), "slow", s, expectations, vec![]);
}

/// Slow successful requests: 90% within 2.5 s, all within 5 s.
fn slow(le: f64) -> f64 {
    if le < 2.5 {
        0.0
    } else if le < 5.0 {
        0.9
    } else {
        1.0
    }
}
