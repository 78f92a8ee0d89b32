//! The Grafana dashboard: valid JSON, on the metric names observe records.

use super::*;

const PROMQL_KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
];

/// Metric names an expression selects (identifiers that are not functions,
/// keywords, label names, strings, durations or numbers).
pub(super) fn metric_names(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    let mut skip_label_list = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '"' {
                        i += 1;
                        while i < chars.len() && chars[i] != '"' {
                            if chars[i] == '\\' {
                                i += 1;
                            }
                            i += 1;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if skip_label_list => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                skip_label_list = false;
                i += 1;
            }
            c if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                if matches!(
                    word.as_str(),
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                ) {
                    // A label list follows, except after a bare group_left/group_right.
                    skip_label_list = next == Some(&'(');
                } else if next != Some(&'(') && !PROMQL_KEYWORDS.contains(&word.as_str()) {
                    names.push(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn metric_name_extraction_works() {
    assert_eq!(
        metric_names(
            r#"sum by (status) (rate(a_total{x="{y}"}[5m])) / ignoring (status) group_left sum (rate(b[1h])) > 0.5"#
        ),
        ["a_total", "b"]
    );
    assert_eq!(
        metric_names("histogram_quantile(0.99, sum by (le) (rate(c_bucket[5m])))"),
        ["c_bucket"]
    );
}

#[test]
fn dashboard_is_valid_grafana_json_on_the_sdk_metrics() {
    let spec = payments();
    let text = serde_json::to_string_pretty(&spec.grafana_dashboard()).expect("serialize");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");

    assert!(dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 39));
    assert!(dashboard["uid"]
        .as_str()
        .is_some_and(|u| !u.is_empty() && u.len() <= 40));
    let variable = &dashboard["templating"]["list"][0];
    assert_eq!(variable["type"], "datasource");
    assert_eq!(variable["query"], "prometheus");
    let uid = format!("${{{}}}", variable["name"].as_str().expect("variable name"));

    let panels = dashboard["panels"].as_array().expect("panels");
    let mut exprs = Vec::new();
    let mut rows = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().expect("title");
        if panel["type"] == "row" {
            assert!(panel.get("targets").is_none(), "row {title} has queries");
            rows.push(title.to_owned());
            continue;
        }
        assert_eq!(panel["datasource"]["type"], "prometheus", "panel {title}");
        assert_eq!(panel["datasource"]["uid"], uid.as_str(), "panel {title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {title} has no query");
        for target in targets {
            assert_eq!(
                target["datasource"], panel["datasource"],
                "query of {title}"
            );
            let expr = target["expr"].as_str().expect("expr");
            for metric in metric_names(expr) {
                assert!(
                    names::ALL_SERIES.contains(&metric.as_str()),
                    "panel {title} queries {metric}, which the SDK does not emit"
                );
            }
            exprs.push(expr.to_owned());
        }
    }
    assert_eq!(
        rows,
        [
            "Service payment-service",
            "Route /pay",
            "Route /orders",
            "Gateway bank",
            "Synthetic flows",
            "SLOs and error budgets"
        ]
    );
    // Errors split into status-code, implicit and masked failures, per route.
    for route in ["/pay", "/orders"] {
        let errors = panels
            .iter()
            .find(|p| p["title"] == format!("Errors — {route}"))
            .expect("errors panel");
        let legends: Vec<&str> = errors["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .filter_map(|t| t["legendFormat"].as_str())
            .collect();
        assert_eq!(
            legends,
            [
                "{{http_route}} status code",
                "{{http_route}} implicit",
                "{{http_route}} masked"
            ]
        );
    }

    // promtool parses every query: one recording rule per panel expression.
    let Some(promtool) = promtool() else { return };
    let dir = scratch_dir("dashboard");
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
