//! Serde types of a Prometheus rule file, and their YAML rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// A Prometheus rule file: what `rule_files:` in `prometheus.yml` loads and
/// `promtool check rules` checks.
///
/// ```
/// use observe_alerts::AlertSpec;
///
/// let spec = AlertSpec::builder("payment-service")
///     .gateway("bank")
///     .runbook_base_url("https://runbooks.example.com/observe")
///     .build()?;
/// let rules = spec.prometheus_rules();
/// let yaml = rules.to_yaml();
/// assert!(yaml.starts_with("groups:\n"));
/// assert!(rules.alert("ExternalGatewayErrors").is_some());
/// # Ok::<(), observe_alerts::AlertSpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RuleFile {
    /// The rule groups, evaluated independently of each other.
    pub groups: Vec<RuleGroup>,
}

/// A group of rules evaluated in order, at the same interval.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RuleGroup {
    /// Group name, unique within the file.
    pub name: String,
    /// Evaluation interval as a Prometheus duration (`1m`); `None` uses the global one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// The rules, evaluated in this order (recording rules before the alerts that use them).
    pub rules: Vec<Rule>,
}

/// One rule of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Rule {
    /// An alerting rule (`alert:`).
    Alerting(AlertingRule),
    /// A recording rule (`record:`).
    Recording(RecordingRule),
}

/// An alerting rule.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlertingRule {
    /// Alert name (becomes the `alertname` label).
    pub alert: String,
    /// PromQL expression; every series it returns is a pending or firing alert.
    pub expr: String,
    /// How long the expression must hold before the alert fires, as a Prometheus duration.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// Labels added to the alert (`severity`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations (`summary`, `description`, `runbook_url`), Go templates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A recording rule.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RecordingRule {
    /// Name of the recorded series (`level:metric:operations`).
    pub record: String,
    /// PromQL expression to record.
    pub expr: String,
    /// Labels added to the recorded series.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl RuleFile {
    /// Every alerting rule of every group, in file order.
    pub fn alerting_rules(&self) -> impl Iterator<Item = &AlertingRule> + '_ {
        self.groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter_map(|r| match r {
                Rule::Alerting(a) => Some(a),
                Rule::Recording(_) => None,
            })
    }

    /// Every recording rule of every group, in file order.
    pub fn recording_rules(&self) -> impl Iterator<Item = &RecordingRule> + '_ {
        self.groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter_map(|r| match r {
                Rule::Recording(r) => Some(r),
                Rule::Alerting(_) => None,
            })
    }

    /// The first alerting rule named `name`, if any (some alerts, such as
    /// `ErrorBudgetBurn`, have several rules: use [`RuleFile::alerts`]).
    pub fn alert(&self, name: &str) -> Option<&AlertingRule> {
        self.alerting_rules().find(|a| a.alert == name)
    }

    /// Every alerting rule named `name`.
    pub fn alerts<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a AlertingRule> + 'a {
        self.alerting_rules().filter(move |a| a.alert == name)
    }

    /// The recording rule that records `name`, if any.
    pub fn recording(&self, name: &str) -> Option<&RecordingRule> {
        self.recording_rules().find(|r| r.record == name)
    }

    /// Renders the file as Prometheus rule-file YAML.
    ///
    /// Multi-line expressions are written as literal blocks (`|-`), every other
    /// value as a double-quoted string, so no value can be misread as another
    /// YAML type.
    pub fn to_yaml(&self) -> String {
        let mut out = String::from("groups:\n");
        if self.groups.is_empty() {
            return "groups: []\n".to_owned();
        }
        for group in &self.groups {
            let _ = writeln!(out, "  - name: {}", scalar(&group.name, 6));
            if let Some(interval) = &group.interval {
                let _ = writeln!(out, "    interval: {}", scalar(interval, 6));
            }
            if group.rules.is_empty() {
                out.push_str("    rules: []\n");
                continue;
            }
            out.push_str("    rules:\n");
            for rule in &group.rules {
                match rule {
                    Rule::Alerting(a) => {
                        let _ = writeln!(out, "      - alert: {}", scalar(&a.alert, 8));
                        let _ = writeln!(out, "        expr: {}", expr_scalar(&a.expr));
                        if let Some(f) = &a.for_ {
                            let _ = writeln!(out, "        for: {}", scalar(f, 10));
                        }
                        map(&mut out, "labels", &a.labels);
                        map(&mut out, "annotations", &a.annotations);
                    }
                    Rule::Recording(r) => {
                        let _ = writeln!(out, "      - record: {}", scalar(&r.record, 8));
                        let _ = writeln!(out, "        expr: {}", expr_scalar(&r.expr));
                        map(&mut out, "labels", &r.labels);
                    }
                }
            }
        }
        out
    }
}

fn map(out: &mut String, key: &str, map: &BTreeMap<String, String>) {
    if map.is_empty() {
        return;
    }
    let _ = writeln!(out, "        {key}:");
    for (k, v) in map {
        let _ = writeln!(out, "          {}: {}", key_scalar(k), scalar(v, 12));
    }
}

fn key_scalar(key: &str) -> String {
    let mut chars = key.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        key.to_owned()
    } else {
        double_quoted(key)
    }
}

/// An expression: a literal block whenever possible, so PromQL reads as written.
fn expr_scalar(expr: &str) -> String {
    if block_ok(expr) {
        block(expr, 10)
    } else {
        double_quoted(expr)
    }
}

/// A YAML scalar: a literal block for clean multi-line text, else double-quoted.
fn scalar(value: &str, indent: usize) -> String {
    if value.contains('\n') && block_ok(value) {
        block(value, indent)
    } else {
        double_quoted(value)
    }
}

/// Whether `value` survives a `|-` literal block unchanged.
fn block_ok(value: &str) -> bool {
    !value.is_empty()
        && !value.starts_with([' ', '\n'])
        && !value.ends_with('\n')
        && value
            .lines()
            .all(|l| !l.ends_with(' ') && l.chars().all(|c| !c.is_control() && !is_yaml_special(c)))
}

/// Characters YAML treats as line breaks or byte-order marks.
fn is_yaml_special(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

fn block(value: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::from("|-");
    for line in value.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    out
}

fn double_quoted(value: &str) -> String {
    super::promql::quote_escaping(value, |c| c.is_control() || is_yaml_special(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_shape() {
        let file = RuleFile {
            groups: vec![RuleGroup {
                name: "g".into(),
                interval: None,
                rules: vec![
                    Rule::Recording(RecordingRule {
                        record: "job:x:rate5m".into(),
                        expr: "sum by (job) (rate(x[5m]))".into(),
                        labels: BTreeMap::new(),
                    }),
                    Rule::Alerting(AlertingRule {
                        alert: "A".into(),
                        expr: "a\n/\nb > 0.01".into(),
                        for_: Some("2m".into()),
                        labels: BTreeMap::from([("severity".into(), "critical".into())]),
                        annotations: BTreeMap::from([(
                            "summary".into(),
                            "{{ $labels.job }} is \"bad\"".into(),
                        )]),
                    }),
                ],
            }],
        };
        let expected = r#"groups:
  - name: "g"
    rules:
      - record: "job:x:rate5m"
        expr: |-
          sum by (job) (rate(x[5m]))
      - alert: "A"
        expr: |-
          a
          /
          b > 0.01
        for: "2m"
        labels:
          severity: "critical"
        annotations:
          summary: "{{ $labels.job }} is \"bad\""
"#;
        assert_eq!(file.to_yaml(), expected);
    }

    #[test]
    fn awkward_multiline_falls_back_to_quotes() {
        assert_eq!(scalar(" a\nb", 4), "\" a\\nb\"");
        assert_eq!(scalar("a \nb", 4), "\"a \\nb\"");
        assert_eq!(scalar("a\n\nb", 2), "|-\n  a\n\n  b");
        assert_eq!(key_scalar("a-b"), "\"a-b\"");
    }

    #[test]
    fn json_round_trip() -> Result<(), serde_json::Error> {
        let file = RuleFile {
            groups: vec![RuleGroup {
                name: "g".into(),
                interval: Some("1m".into()),
                rules: vec![
                    Rule::Alerting(AlertingRule {
                        alert: "A".into(),
                        expr: "up == 0".into(),
                        ..AlertingRule::default()
                    }),
                    Rule::Recording(RecordingRule {
                        record: "r".into(),
                        expr: "up".into(),
                        labels: BTreeMap::new(),
                    }),
                ],
            }],
        };
        let json = serde_json::to_string(&file)?;
        assert!(json.contains(r#""alert":"A""#) && !json.contains("for_"));
        let back: RuleFile = serde_json::from_str(&json)?;
        assert_eq!(back, file);
        Ok(())
    }
}
