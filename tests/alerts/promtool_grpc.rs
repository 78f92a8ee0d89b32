//! `promtool test rules` for the gRPC rules: a service whose `Charge`
//! starts failing with `UNAVAILABLE`, whose `ListCharges` streams are slow,
//! with too many calls in flight, and calls to a method the service does not
//! define (`_OTHER`) that the rules must not count.

use super::promtool_units::{
    counter, fast, firing, healthy_latency, promtool_test, stuck, Phases, Series, BUCKETS,
};
use super::*;

const CHARGE: &str = "shop.v1.Payments/Charge";
const LIST: &str = "shop.v1.Payments/ListCharges";

fn grpc_spec() -> AlertSpec {
    AlertSpec::builder(JOB)
        .grpc_method(CHARGE)
        .grpc_method_pattern(r"shop\.v1\.Payments/List.*")
        .max_active_requests(256)
        .runbook_base_url("https://runbooks.example.com/observe")
        .build()
        .expect("valid")
}

/// A gRPC server-call histogram, as observe records it.
fn grpc(
    s: &mut Series,
    method: &str,
    status: &str,
    error_type: &str,
    phases: &Phases,
    latency: fn(f64) -> f64,
) {
    let base = [
        ("job", JOB),
        ("instance", "app-1:9464"),
        ("rpc_system_name", "grpc"),
        ("rpc_method", method),
        ("rpc_response_status_code", status),
        ("error_type", error_type),
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
        s.add(
            names::RPC_SERVER_CALL_DURATION_BUCKET,
            &with_le,
            counter(&scaled),
        );
    }
    s.add(
        names::RPC_SERVER_CALL_DURATION_COUNT,
        &base,
        counter(phases),
    );
}

#[test]
fn promtool_tests_the_grpc_rules() {
    let minutes = 40;
    let mut s = Series(Vec::new());
    // Charge: 60 OK calls a minute; from minute 10, 30 more fail fast with UNAVAILABLE.
    grpc(&mut s, CHARGE, "OK", "", &[(minutes, 60)], healthy_latency);
    grpc(
        &mut s,
        CHARGE,
        "UNAVAILABLE",
        "UNAVAILABLE",
        &[(10, 0), (minutes - 10, 30)],
        fast,
    );
    // ListCharges: 60 streams a minute, all past the last bucket.
    grpc(&mut s, LIST, "OK", "", &[(minutes, 60)], stuck);
    // Calls to undefined methods: not watched, must not count.
    grpc(
        &mut s,
        "_OTHER",
        "UNIMPLEMENTED",
        "UNIMPLEMENTED",
        &[(minutes, 600)],
        fast,
    );
    s.gauge(
        names::OBSERVE_RPC_SERVER_ACTIVE_CALLS,
        &[
            ("job", JOB),
            ("instance", "app-1:9464"),
            ("rpc_system_name", "grpc"),
            ("rpc_method", LIST),
        ],
        "300x40",
    );
    let grpc_label = ("rpc_system_name", "grpc");
    let latency = firing(
        alert::HIGH_P99_LATENCY,
        &[("job", JOB), ("severity", "warning"), grpc_label],
        "10s",
    );
    let saturation = firing(
        alert::HIGH_SATURATION,
        &[
            ("job", JOB),
            ("instance", "app-1:9464"),
            ("resource", "active_calls"),
            ("severity", "warning"),
            grpc_label,
        ],
        "300",
    );
    let errors = |v| {
        firing(
            alert::HIGH_ERROR_RATE,
            &[("job", JOB), ("severity", "critical"), grpc_label],
            v,
        )
    };
    let expectations = vec![
        // Latency and saturation are pending (for: 5m).
        (3, vec![]),
        (10, vec![latency.clone(), saturation.clone()]),
        // Minute 11: Charge fails; HighErrorRate is pending (for: 2m). The
        // _OTHER calls (600 a minute, all failing) never count.
        (11, vec![latency.clone(), saturation.clone()]),
        // Minute 13: pending for 2m, it fires.
        (
            13,
            vec![errors("13.04%"), latency.clone(), saturation.clone()],
        ),
        (30, vec![errors("20%"), latency, saturation]),
    ];
    let promql = vec![json!({
        "expr": "job:rpc_server_call_duration_seconds:p99_failed_rate5m",
        "eval_time": "30m",
        "exp_samples": [{ "labels": format!("job:rpc_server_call_duration_seconds:p99_failed_rate5m{{job=\"{JOB}\"}}"), "value": 0.00995 }]
    })];
    promtool_test(&grpc_spec(), "grpc", s, expectations, promql);
}

/// The gRPC twin of `HighErrorRate`, exactly.
#[test]
fn golden_grpc_high_error_rate_expression() {
    let rules = grpc_spec().prometheus_rules();
    let grpc: Vec<&AlertingRule> = rules
        .alerts(alert::HIGH_ERROR_RATE)
        .filter(|r| r.labels.get("rpc_system_name").map(String::as_str) == Some("grpc"))
        .collect();
    assert_eq!(grpc.len(), 1);
    assert_eq!(
        grpc[0].expr,
        r#"sum by (job) (rate(rpc_server_call_duration_seconds_count{job="payment-service",rpc_system_name="grpc",rpc_method=~"shop\\.v1\\.Payments/Charge|shop\\.v1\\.Payments/List.*",synthetic!="true",error_type!=""}[5m]))
/
sum by (job) (rate(rpc_server_call_duration_seconds_count{job="payment-service",rpc_system_name="grpc",rpc_method=~"shop\\.v1\\.Payments/Charge|shop\\.v1\\.Payments/List.*",synthetic!="true"}[5m]))
> 0.01"#
    );
    assert_eq!(grpc[0].for_.as_deref(), Some("2m"));
    // Without gRPC methods, no gRPC rule.
    let http_only = payments().prometheus_rules();
    assert!(http_only
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .all(|r| !format!("{r:?}").contains("rpc_")));
}

/// One dashboard row per gRPC method entry, querying only series the SDK
/// emits; promtool parses every query.
#[test]
fn grpc_dashboard_rows_query_the_grpc_series() {
    let dashboard = grpc_spec().grafana_dashboard();
    let panels = dashboard["panels"].as_array().expect("panels");
    let rows: Vec<&str> = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    assert_eq!(
        rows,
        [
            "Service payment-service",
            "All routes",
            "gRPC shop.v1.Payments/Charge",
            r"gRPC methods matching shop\.v1\.Payments/List.*",
        ]
    );
    let mut exprs = Vec::new();
    for p in panels.iter().filter(|p| p["type"] != "row") {
        for t in p["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().expect("expr").to_owned();
            for metric in super::dashboard::metric_names(&expr) {
                assert!(names::ALL_SERIES.contains(&metric.as_str()), "{metric}");
            }
            exprs.push(expr);
        }
    }
    let grpc_exprs: Vec<&String> = exprs
        .iter()
        .filter(|e| e.contains(names::RPC_SERVER_CALL_DURATION))
        .collect();
    assert_eq!(grpc_exprs.len(), 2 * (1 + 3 + 3));
    let Some(promtool) = promtool() else { return };
    let dir = scratch_dir("grpc-dashboard");
    let mut yaml = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in exprs.iter().enumerate() {
        yaml.push_str(&format!(
            "      - record: dashboard:expr_{i}\n        expr: |-\n"
        ));
        for line in expr.lines() {
            yaml.push_str(&format!("          {line}\n"));
        }
    }
    check_rules(&promtool, &dir, "dashboard-rules.yml", &yaml);
    let _ = std::fs::remove_dir_all(&dir);
}
