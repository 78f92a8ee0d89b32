//! The generated expressions, word for word, and the description errors.

use super::*;

#[test]
fn golden_high_error_rate_expression() {
    let rules = payments().prometheus_rules();
    let rule = rules.alert(alert::HIGH_ERROR_RATE).expect("HighErrorRate");
    assert_eq!(
        rule.expr,
        r#"sum by (job) (rate(http_server_request_duration_seconds_count{job="payment-service",http_route=~"/pay|/orders",synthetic!="true",error_type!=""}[5m]))
/
sum by (job) (rate(http_server_request_duration_seconds_count{job="payment-service",http_route=~"/pay|/orders",synthetic!="true"}[5m]))
> 0.01"#
    );
    assert_eq!(rule.for_.as_deref(), Some("2m"));
    assert_eq!(
        rule.labels.get("severity").map(String::as_str),
        Some("critical")
    );
}

#[test]
fn golden_external_gateway_errors_expression() {
    let rules = payments().prometheus_rules();
    let rule = rules
        .alert(alert::EXTERNAL_GATEWAY_ERRORS)
        .expect("ExternalGatewayErrors");
    assert_eq!(
        rule.expr,
        r#"sum by (job, gateway) (rate(external_gateway_requests_total{job="payment-service",gateway="bank",status!="success"}[5m]))
/
sum by (job, gateway) (rate(external_gateway_requests_total{job="payment-service",gateway="bank"}[5m]))
> 0.05"#
    );
    assert_eq!(rule.for_.as_deref(), Some("2m"));
    assert_eq!(
        rule.labels.get("severity").map(String::as_str),
        Some("critical")
    );
}

#[test]
fn every_alert_has_severity_templated_annotations_and_runbook() {
    let rules = payments().prometheus_rules();
    let mut seen = Vec::new();
    for rule in rules.alerting_rules() {
        assert!(alert::ALL.contains(&rule.alert.as_str()), "{}", rule.alert);
        seen.push(rule.alert.clone());
        assert!(rule.labels.contains_key("severity"), "{}", rule.alert);
        for key in ["summary", "description"] {
            assert!(
                rule.annotations
                    .get(key)
                    .is_some_and(|t| t.contains("{{ $")),
                "{} has no templated {key}",
                rule.alert
            );
        }
        assert_eq!(
            rule.annotations.get("runbook_url"),
            Some(&format!(
                "https://runbooks.example.com/observe/{}",
                rule.alert
            ))
        );
    }
    for name in alert::ALL {
        assert!(seen.iter().any(|s| s == name), "{name} not generated");
    }
}

#[test]
fn bad_descriptions_are_typed_errors() {
    let base = || AlertSpec::builder(JOB).runbook_base_url("https://runbooks.example.com");
    assert_eq!(
        AlertSpec::builder("")
            .runbook_base_url("https://x.example")
            .build(),
        Err(AlertSpecError::EmptyService)
    );
    assert!(matches!(
        base().gateway_error_ratio_threshold(5.0).build(),
        Err(AlertSpecError::ThresholdOutOfRange { field, .. }) if field == "gateway_error_ratio_threshold"
    ));
    assert!(matches!(
        base().availability_slo(1.0, Duration::from_secs(30 * DAY)).build(),
        Err(AlertSpecError::InvalidSloTarget { field, .. }) if field == "availability_slo.target"
    ));
    assert!(matches!(
        base()
            .scrape_interval(Duration::from_secs(60))
            .synthetic_flow("checkout", Duration::from_secs(20))
            .synthetic_consecutive_failures(2)
            .build(),
        Err(AlertSpecError::WindowTooShort { field, .. }) if field == "synthetic_flow(\"checkout\").interval"
    ));
}
