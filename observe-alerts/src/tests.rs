//! Unit tests of the builder, validation and generated rules.

use std::time::Duration;

use super::names::{self, alert};
use super::{AlertSpec, AlertSpecBuilder, AlertSpecError, Rule};

const DAY: u64 = 86_400;
const RUNBOOKS: &str = "https://runbooks.example.com/observe";

fn base() -> AlertSpecBuilder {
    AlertSpec::builder("payment-service").runbook_base_url(RUNBOOKS)
}

fn payments() -> AlertSpecBuilder {
    base()
        .route("/pay")
        .route("/orders")
        .gateway("bank")
        .synthetic_flow("checkout", Duration::from_secs(60))
        .availability_slo(0.999, Duration::from_secs(30 * DAY))
        .latency_slo(0.99, Duration::from_secs(1), Duration::from_secs(30 * DAY))
}

fn err(builder: AlertSpecBuilder) -> AlertSpecError {
    match builder.build() {
        Ok(spec) => panic!("expected an error, built {spec:?}"),
        Err(e) => e,
    }
}

fn field_of(e: &AlertSpecError) -> Option<&str> {
    match e {
        AlertSpecError::EmptyName { field }
        | AlertSpecError::Duplicate { field, .. }
        | AlertSpecError::ThresholdOutOfRange { field, .. }
        | AlertSpecError::InvalidSloTarget { field, .. }
        | AlertSpecError::WindowTooShort { field, .. }
        | AlertSpecError::ZeroDuration { field }
        | AlertSpecError::ZeroCount { field }
        | AlertSpecError::SloPeriodTooShort { field, .. }
        | AlertSpecError::LatencyThresholdNotABucket { field, .. }
        | AlertSpecError::UnreachableBurnRate { field, .. }
        | AlertSpecError::InvalidLabelName { field, .. }
        | AlertSpecError::InvalidBuckets { field } => Some(field),
        AlertSpecError::EmptyService => Some("service"),
        AlertSpecError::InvalidRunbookUrl { .. } => Some("runbook_base_url"),
    }
}

#[test]
fn payments_description_builds() {
    let spec = payments().build().expect("valid");
    assert_eq!(spec.service(), "payment-service");
    let rules = spec.prometheus_rules();
    let groups: Vec<&str> = rules.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        groups,
        [
            "payment-service-golden-signals",
            "payment-service-synthetic",
            "payment-service-slo-availability",
            "payment-service-slo-latency"
        ]
    );
    for name in alert::ALL {
        assert!(rules.alert(name).is_some(), "{name} missing");
    }
    assert_eq!(rules.alerts(alert::ERROR_BUDGET_BURN).count(), 6);
}

#[test]
fn empty_or_blank_service_is_rejected() {
    for service in ["", "   "] {
        let e = err(AlertSpec::builder(service).runbook_base_url(RUNBOOKS));
        assert_eq!(e, AlertSpecError::EmptyService);
        assert!(e.to_string().contains("`service`"));
    }
}

#[test]
fn thresholds_outside_zero_one_are_rejected() {
    type Setter = fn(AlertSpecBuilder, f64) -> AlertSpecBuilder;
    let cases: [(Setter, &str); 3] = [
        (|b, v| b.error_ratio_threshold(v), "error_ratio_threshold"),
        (
            |b, v| b.gateway_error_ratio_threshold(v),
            "gateway_error_ratio_threshold",
        ),
        (
            |b, v| b.resource_saturation_threshold(v),
            "resource_saturation_threshold",
        ),
    ];
    for (set, field) in cases {
        for value in [0.0, 1.0, 1.5, -0.01, f64::NAN, f64::INFINITY] {
            let e = err(set(base(), value));
            assert!(
                matches!(&e, AlertSpecError::ThresholdOutOfRange { field: f, .. } if f == field),
                "{field}={value}: {e:?}"
            );
            assert!(e.to_string().contains(field), "{e}");
        }
        assert!(set(base(), 0.05).build().is_ok());
    }
}

#[test]
fn slo_target_of_100_percent_is_rejected() {
    for target in [1.0, 0.0, 1.2, f64::NAN] {
        let e = err(base().availability_slo(target, Duration::from_secs(30 * DAY)));
        assert!(
            matches!(&e, AlertSpecError::InvalidSloTarget { field, .. } if field == "availability_slo.target"),
            "{e:?}"
        );
        let e = err(base().latency_slo(
            target,
            Duration::from_secs(1),
            Duration::from_secs(30 * DAY),
        ));
        assert_eq!(field_of(&e), Some("latency_slo.target"));
    }
    let e = err(base().availability_slo(1.0, Duration::from_secs(30 * DAY)));
    assert!(e.to_string().contains("100%"), "{e}");
}

#[test]
fn windows_shorter_than_the_scrape_interval_are_rejected() {
    // Synthetic window: 1 failure x 10s < 30s scrape interval.
    let e = err(base()
        .synthetic_flow("checkout", Duration::from_secs(10))
        .synthetic_consecutive_failures(1));
    assert_eq!(
        e,
        AlertSpecError::WindowTooShort {
            field: "synthetic_flow(\"checkout\").interval".into(),
            window: Duration::from_secs(10),
            scrape_interval: Duration::from_secs(30),
            min_scrapes: 1,
        }
    );
    // rate() needs two samples.
    let e = err(base().rate_window(Duration::from_secs(45)));
    assert!(
        matches!(&e, AlertSpecError::WindowTooShort { field, min_scrapes: 2, .. } if field == "rate_window"),
        "{e:?}"
    );
    assert!(base().rate_window(Duration::from_secs(60)).build().is_ok());
    // The SLO's shortest (5m) window with a 5m scrape interval.
    let e = err(base()
        .scrape_interval(Duration::from_secs(300))
        .rate_window(Duration::from_secs(600))
        .availability_slo(0.999, Duration::from_secs(30 * DAY)));
    assert_eq!(field_of(&e), Some("availability_slo.short_window"));
    // Zero durations.
    assert_eq!(
        field_of(&err(base().scrape_interval(Duration::ZERO))),
        Some("scrape_interval")
    );
    assert_eq!(
        field_of(&err(base().synthetic_flow("checkout", Duration::ZERO))),
        Some("synthetic_flow(\"checkout\").interval")
    );
    assert_eq!(
        field_of(&err(base().p99_latency_threshold(Duration::ZERO))),
        Some("p99_latency_threshold")
    );
}

#[test]
fn names_must_be_present_and_unique() {
    assert_eq!(field_of(&err(base().route(""))), Some("route"));
    assert_eq!(field_of(&err(base().gateway(" "))), Some("gateway"));
    assert_eq!(
        err(base().route("/pay").route_pattern("/pay")),
        AlertSpecError::Duplicate {
            field: "route".into(),
            value: "/pay".into()
        }
    );
    assert_eq!(
        field_of(&err(base().gateway("bank").gateway("bank"))),
        Some("gateway")
    );
    assert_eq!(
        field_of(&err(base()
            .synthetic_flow("checkout", Duration::from_secs(60))
            .synthetic_flow("checkout", Duration::from_secs(30)))),
        Some("synthetic_flow")
    );
}

#[test]
fn counts_must_be_positive() {
    assert_eq!(
        field_of(&err(base().synthetic_consecutive_failures(0))),
        Some("synthetic_consecutive_failures")
    );
    assert_eq!(
        field_of(&err(base().max_active_requests(0))),
        Some("max_active_requests")
    );
}

#[test]
fn slo_periods_and_burn_rates_must_make_sense() {
    let e = err(base().availability_slo(0.999, Duration::from_secs(DAY)));
    assert_eq!(field_of(&e), Some("availability_slo.period"));
    // 90% over 30 days: the 14.4x alert would need a 144% error ratio.
    let e = err(base().availability_slo(0.9, Duration::from_secs(30 * DAY)));
    match e {
        AlertSpecError::UnreachableBurnRate {
            field,
            burn_rate,
            required,
            ..
        } => {
            assert_eq!(field, "availability_slo.target");
            assert_eq!(burn_rate, 14.4);
            assert!((required - 1.44).abs() < 1e-9);
        }
        other => panic!("{other:?}"),
    }
    assert!(base()
        .availability_slo(0.95, Duration::from_secs(30 * DAY))
        .build()
        .is_ok());
}

#[test]
fn latency_slo_threshold_must_be_a_bucket_boundary() {
    let e = err(base().latency_slo(
        0.99,
        Duration::from_millis(300),
        Duration::from_secs(30 * DAY),
    ));
    assert_eq!(field_of(&e), Some("latency_slo.threshold"));
    assert!(e.to_string().contains("0.3s"), "{e}");
    let spec = base()
        .histogram_buckets([0.1, 0.3, 1.0])
        .latency_slo(
            0.99,
            Duration::from_millis(300),
            Duration::from_secs(30 * DAY),
        )
        .build()
        .expect("0.3 is a bucket now");
    let rules = spec.prometheus_rules();
    let ratio = rules
        .recording("job:slo_latency_error_ratio:rate5m")
        .expect("recorded");
    assert!(ratio.expr.contains(r#"le=~"0\\.3""#), "{}", ratio.expr);
    // Whole seconds match Prometheus 2 (`1`) and 3 (`1.0`) spellings.
    let rules = payments().build().expect("valid").prometheus_rules();
    let ratio = rules
        .recording("job:slo_latency_error_ratio:rate5m")
        .expect("recorded");
    assert!(ratio.expr.contains(r#"le=~"1|1\\.0""#), "{}", ratio.expr);
    assert_eq!(
        field_of(&err(base().histogram_buckets([1.0, 0.5]))),
        Some("histogram_buckets")
    );
    assert_eq!(
        field_of(&err(base().histogram_buckets([]))),
        Some("histogram_buckets")
    );
}

#[test]
fn runbook_url_and_labels_are_checked() {
    assert_eq!(
        err(AlertSpec::builder("svc")),
        AlertSpecError::InvalidRunbookUrl {
            value: String::new()
        }
    );
    assert_eq!(
        field_of(&err(base().runbook_base_url("runbooks.example.com"))),
        Some("runbook_base_url")
    );
    assert_eq!(
        field_of(&err(base().label("team-name", "x"))),
        Some("label")
    );
    assert_eq!(field_of(&err(base().label("severity", "x"))), Some("label"));
    assert_eq!(field_of(&err(base().label("__x", "x"))), Some("label"));
    let spec = base().label("team", "payments").build().expect("valid");
    for rule in spec.prometheus_rules().alerting_rules() {
        assert_eq!(rule.labels["team"], "payments");
    }
}

#[test]
fn golden_high_error_rate() {
    let rules = payments().build().expect("valid").prometheus_rules();
    let rule = rules.alert(alert::HIGH_ERROR_RATE).expect("generated");
    assert_eq!(
        rule.expr,
        "sum by (job) (rate(http_server_request_duration_seconds_count{job=\"payment-service\",http_route=~\"/pay|/orders\",synthetic!=\"true\",error_type!=\"\"}[5m]))\n\
         /\n\
         sum by (job) (rate(http_server_request_duration_seconds_count{job=\"payment-service\",http_route=~\"/pay|/orders\",synthetic!=\"true\"}[5m]))\n\
         > 0.01"
    );
    assert_eq!(rule.for_.as_deref(), Some("2m"));
    assert_eq!(rule.labels["severity"], "critical");
}

#[test]
fn golden_external_gateway_errors() {
    let rules = payments().build().expect("valid").prometheus_rules();
    let rule = rules
        .alert(alert::EXTERNAL_GATEWAY_ERRORS)
        .expect("generated");
    assert_eq!(
        rule.expr,
        "sum by (job, gateway) (rate(external_gateway_requests_total{job=\"payment-service\",gateway=\"bank\",status!=\"success\"}[5m]))\n\
         /\n\
         sum by (job, gateway) (rate(external_gateway_requests_total{job=\"payment-service\",gateway=\"bank\"}[5m]))\n\
         > 0.05"
    );
    assert_eq!(rule.for_.as_deref(), Some("2m"));
    assert_eq!(rule.labels["severity"], "critical");
}

#[test]
fn golden_latency_and_burn_rate() {
    let rules = payments().build().expect("valid").prometheus_rules();
    let p99 = rules.alert(alert::HIGH_P99_LATENCY).expect("generated");
    assert_eq!(
        p99.expr,
        "histogram_quantile(0.99, sum by (job, le) (rate(http_server_request_duration_seconds_bucket{job=\"payment-service\",http_route=~\"/pay|/orders\",synthetic!=\"true\",error_type=\"\"}[5m])))\n> 3"
    );
    assert!(rules
        .recording("job:http_server_request_duration_seconds:p99_failed_rate5m")
        .is_some_and(|r| r.expr.contains("error_type!=\"\"")));
    let burns: Vec<_> = rules.alerts(alert::ERROR_BUDGET_BURN).collect();
    assert_eq!(
        burns[0].expr,
        "job:slo_availability_error_ratio:rate1h{job=\"payment-service\"} / 0.001 > 14.4\nand\njob:slo_availability_error_ratio:rate5m{job=\"payment-service\"} / 0.001 > 14.4"
    );
    let windows: Vec<(&str, &str, &str, &str)> = burns
        .iter()
        .map(|r| {
            (
                r.labels["slo"].as_str(),
                r.labels["long_window"].as_str(),
                r.labels["short_window"].as_str(),
                r.labels["severity"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        windows,
        [
            ("availability", "1h", "5m", "critical"),
            ("availability", "6h", "30m", "critical"),
            ("availability", "3d", "6h", "warning"),
            ("latency", "1h", "5m", "critical"),
            ("latency", "6h", "30m", "critical"),
            ("latency", "3d", "6h", "warning"),
        ]
    );
    assert!(burns[1].expr.contains("/ 0.001 > 6\n"));
    assert!(burns[2].expr.ends_with("/ 0.001 > 1"));
    assert!(burns[3].expr.contains("/ 0.01 > 14.4"));
    let d = &burns[0].annotations["description"];
    assert!(d.contains("1 - 99.9% = 0.1%"), "{d}");
    assert!(d.contains("0.02 x 720h / 1h = 14.4"), "{d}");
    assert!(d.contains("14.4 x 0.1% = 1.44%"), "{d}");
}

#[test]
fn burn_rates_follow_the_slo_period() {
    let spec = base()
        .availability_slo(0.999, Duration::from_secs(28 * DAY))
        .build()
        .expect("valid");
    let rules = spec.prometheus_rules();
    let exprs: Vec<&str> = rules
        .alerts(alert::ERROR_BUDGET_BURN)
        .map(|r| r.expr.as_str())
        .collect();
    assert!(exprs[0].ends_with("> 13.44"), "{}", exprs[0]);
    assert!(exprs[1].ends_with("> 5.6"), "{}", exprs[1]);
    assert!(exprs[2].ends_with("> 0.933333333333"), "{}", exprs[2]);
    assert!(rules
        .recording("job:slo_availability_error_ratio:rate28d")
        .is_some());
}

#[test]
fn every_alert_is_documented_and_templated() {
    let spec = payments().max_active_requests(256).build().expect("valid");
    for rule in spec.prometheus_rules().alerting_rules() {
        assert!(names::alert::ALL.contains(&rule.alert.as_str()));
        let severity = rule.labels.get("severity").map(String::as_str);
        assert!(
            matches!(severity, Some("critical" | "warning")),
            "{}",
            rule.alert
        );
        for key in ["summary", "description"] {
            let text = &rule.annotations[key];
            assert!(text.contains("{{ $"), "{} {key}: {text}", rule.alert);
        }
        assert!(rule.annotations["description"].contains("{{ $value"));
        assert_eq!(
            rule.annotations["runbook_url"],
            format!("{RUNBOOKS}/{}", rule.alert)
        );
    }
}

#[test]
fn routes_gateways_and_synthetic_traffic_selection() {
    // No route: every route; synthetic traffic kept on request.
    let spec = base()
        .exclude_synthetic_traffic(false)
        .build()
        .expect("valid");
    let rules = spec.prometheus_rules();
    let expr = &rules.alert(alert::HIGH_ERROR_RATE).expect("generated").expr;
    assert!(
        !expr.contains("http_route") && !expr.contains("synthetic"),
        "{expr}"
    );
    // No gateway: every gateway of the job.
    let gw = &rules
        .alert(alert::EXTERNAL_GATEWAY_ERRORS)
        .expect("generated")
        .expr;
    assert!(
        gw.contains(r#"{job="payment-service",status!="success"}"#),
        "{gw}"
    );

    // Route templates are escaped, patterns are not.
    let spec = base()
        .route("/users/{id}")
        .route_pattern("/api/v1/.*")
        .gateway("bank")
        .gateway("card.network")
        .build()
        .expect("valid");
    let rules = spec.prometheus_rules();
    let expr = &rules.alert(alert::HIGH_ERROR_RATE).expect("generated").expr;
    assert!(
        expr.contains(r#"http_route=~"/users/\\{id\\}|/api/v1/.*""#),
        "{expr}"
    );
    let gw = &rules
        .alert(alert::EXTERNAL_GATEWAY_ERRORS)
        .expect("generated")
        .expr;
    assert!(gw.contains(r#"gateway=~"bank|card\\.network""#), "{gw}");
}

#[test]
fn saturation_and_synthetic_rules() {
    let spec = payments()
        .max_active_requests(256)
        .synthetic_consecutive_failures(3)
        .build()
        .expect("valid");
    let rules = spec.prometheus_rules();
    let sat: Vec<_> = rules.alerts(alert::HIGH_SATURATION).collect();
    assert_eq!(sat.len(), 3);
    assert_eq!(
        sat[0].expr,
        "max by (job, resource) (observe_resource_utilization{job=\"payment-service\"})\n> 0.9"
    );
    assert_eq!(
        sat[1].expr,
        "sum by (job, instance) (rate(tokio_runtime_worker_busy_time_seconds_total{job=\"payment-service\"}[5m]))\n/\n\
         max by (job, instance) (tokio_runtime_worker_count{job=\"payment-service\"})\n> 0.9"
    );
    assert_eq!(sat[1].labels["resource"], "tokio_workers");
    assert_eq!(sat[1].labels["severity"], "warning");
    assert_eq!(
        sat[2].expr,
        "sum by (job, instance) (http_server_active_requests{job=\"payment-service\"})\n> 256"
    );
    assert_eq!(sat[2].labels["resource"], "active_requests");
    let syn: Vec<_> = rules.alerts(alert::SYNTHETIC_CHECK_FAILED).collect();
    assert_eq!(
        syn[0].expr,
        "max by (flow, region) (max_over_time(synthetic_check_success{flow=\"checkout\"}[3m]))\n== 0"
    );
    assert_eq!(syn[0].for_, None);
    assert_eq!(syn[0].labels["reason"], "failing");
    assert_eq!(
        syn[1].expr,
        "absent_over_time(synthetic_check_success{flow=\"checkout\"}[3m])"
    );
    assert_eq!(syn[1].labels["severity"], "warning");
}

#[test]
fn recording_rules_precede_the_alerts_that_use_them() {
    let rules = payments().build().expect("valid").prometheus_rules();
    for group in &rules.groups {
        let mut recorded = Vec::new();
        for rule in &group.rules {
            match rule {
                Rule::Recording(r) => recorded.push(r.record.clone()),
                Rule::Alerting(a) => {
                    for name in a
                        .expr
                        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    {
                        if name.starts_with("job:") {
                            assert!(
                                recorded.iter().any(|r| r == name),
                                "{name} used before recorded"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn yaml_is_stable_and_readable() {
    let yaml = payments()
        .build()
        .expect("valid")
        .prometheus_rules()
        .to_yaml();
    assert!(yaml.starts_with("groups:\n  - name: \"payment-service-golden-signals\"\n    rules:\n"));
    assert!(yaml.contains(
        "      - alert: \"HighErrorRate\"\n        expr: |-\n          sum by (job) (rate(http_server_request_duration_seconds_count{"
    ));
    assert!(
        yaml.contains("        for: \"2m\"\n        labels:\n          severity: \"critical\"\n")
    );
    assert!(!yaml.contains('\t'));
}

#[test]
fn dashboard_panels_all_use_the_datasource_variable() {
    let spec = payments().max_active_requests(256).build().expect("valid");
    let dashboard = spec.grafana_dashboard();
    assert!(dashboard["schemaVersion"].as_u64() >= Some(39));
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = std::collections::BTreeSet::new();
    for panel in panels {
        assert!(ids.insert(panel["id"].as_u64().expect("id")));
        let grid = &panel["gridPos"];
        assert!(grid["x"].as_u64().unwrap_or(99) + grid["w"].as_u64().unwrap_or(99) <= 24);
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}");
        assert_eq!(panel["datasource"]["type"], "prometheus");
        for target in panel["targets"].as_array().expect("targets") {
            assert_eq!(target["datasource"], panel["datasource"]);
            assert!(!target["expr"].as_str().unwrap_or("").is_empty());
        }
    }
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for title in [
        "Route /pay",
        "Route /orders",
        "Gateway bank",
        "Synthetic flows",
        "SLOs and error budgets",
    ] {
        assert!(titles.contains(&title), "{title} missing from {titles:?}");
    }
}

/// The Prometheus names the rules query are the Collector's translation of
/// the names observe records (one table: `signals::names`).
#[test]
fn prometheus_names_are_the_translation_of_the_instrument_table() {
    use observe_core::signals::names as otel;
    let family = |n: &str| {
        otel::instrument(n)
            .map(otel::Instrument::prometheus_name)
            .unwrap_or_else(|| panic!("{n} is not in signals::names::ALL"))
    };
    let histograms = [
        (
            otel::HTTP_SERVER_REQUEST_DURATION,
            names::HTTP_SERVER_REQUEST_DURATION,
            [
                names::HTTP_SERVER_REQUEST_DURATION_BUCKET,
                names::HTTP_SERVER_REQUEST_DURATION_COUNT,
                names::HTTP_SERVER_REQUEST_DURATION_SUM,
            ],
        ),
        (
            otel::RPC_SERVER_CALL_DURATION,
            names::RPC_SERVER_CALL_DURATION,
            [
                names::RPC_SERVER_CALL_DURATION_BUCKET,
                names::RPC_SERVER_CALL_DURATION_COUNT,
                names::RPC_SERVER_CALL_DURATION_SUM,
            ],
        ),
        (
            otel::RPC_CLIENT_CALL_DURATION,
            names::RPC_CLIENT_CALL_DURATION,
            [
                names::RPC_CLIENT_CALL_DURATION_BUCKET,
                names::RPC_CLIENT_CALL_DURATION_COUNT,
                names::RPC_CLIENT_CALL_DURATION_SUM,
            ],
        ),
        (
            otel::GATEWAY_REQUEST_DURATION,
            names::EXTERNAL_GATEWAY_REQUEST_DURATION,
            [
                names::EXTERNAL_GATEWAY_REQUEST_DURATION_BUCKET,
                names::EXTERNAL_GATEWAY_REQUEST_DURATION_COUNT,
                names::EXTERNAL_GATEWAY_REQUEST_DURATION_SUM,
            ],
        ),
        (
            otel::SYNTHETIC_CHECK_DURATION,
            names::SYNTHETIC_CHECK_DURATION,
            [
                names::SYNTHETIC_CHECK_DURATION_BUCKET,
                names::SYNTHETIC_CHECK_DURATION_COUNT,
                names::SYNTHETIC_CHECK_DURATION_SUM,
            ],
        ),
        (
            otel::OBSERVED_DURATION,
            names::OBSERVED_DURATION,
            [
                names::OBSERVED_DURATION_BUCKET,
                names::OBSERVED_DURATION_COUNT,
                names::OBSERVED_DURATION_SUM,
            ],
        ),
    ];
    let mut translated = Vec::new();
    for (otel_name, prom, series) in histograms {
        assert_eq!(prom, family(otel_name));
        for (s, suffix) in series.iter().zip(["_bucket", "_count", "_sum"]) {
            assert_eq!(*s, format!("{prom}{suffix}"));
            translated.push(*s);
        }
    }
    for (otel_name, prom) in [
        (
            otel::HTTP_SERVER_ACTIVE_REQUESTS,
            names::HTTP_SERVER_ACTIVE_REQUESTS,
        ),
        (
            otel::GATEWAY_REQUESTS,
            names::EXTERNAL_GATEWAY_REQUESTS_TOTAL,
        ),
        (otel::MASKED_FAILURES, names::OBSERVE_MASKED_FAILURES_TOTAL),
        (
            otel::RESOURCE_UTILIZATION,
            names::OBSERVE_RESOURCE_UTILIZATION,
        ),
        (
            otel::SYNTHETIC_CHECK_SUCCESS,
            names::SYNTHETIC_CHECK_SUCCESS,
        ),
        (otel::TOKIO_WORKER_COUNT, names::TOKIO_RUNTIME_WORKER_COUNT),
        (
            otel::TOKIO_WORKER_BUSY_TIME,
            names::TOKIO_RUNTIME_WORKER_BUSY_TIME_SECONDS_TOTAL,
        ),
        (otel::SYNTHETIC_CHECKS, names::SYNTHETIC_CHECKS_TOTAL),
        (otel::OBSERVED_CALLS, names::OBSERVED_CALLS_TOTAL),
        (
            otel::RPC_SERVER_ACTIVE_CALLS,
            names::OBSERVE_RPC_SERVER_ACTIVE_CALLS,
        ),
    ] {
        assert_eq!(prom, family(otel_name));
        translated.push(prom);
    }
    // Every series the rules may query is one of those.
    let mut all = names::ALL_SERIES.to_vec();
    all.sort_unstable();
    translated.sort_unstable();
    assert_eq!(all, translated);
}
