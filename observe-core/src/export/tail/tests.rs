use super::policy::{compile, Rules, Verdict};
use super::*;
use crate::sampler::ratio_decision;
use opentelemetry::trace::{SpanContext, SpanKind, TraceFlags, TraceId, TraceState};
use opentelemetry::trace::{SpanId, Status};
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
use opentelemetry_sdk::Resource;
use std::path::Path;
use std::time::UNIX_EPOCH;
use yaml_rust2::{Yaml, YamlLoader};

fn span(ms: u64, status: Status, attrs: Vec<KeyValue>) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(7u128),
            SpanId::from(1),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: "root".into(),
        start_time: UNIX_EPOCH,
        end_time: UNIX_EPOCH + Duration::from_millis(ms),
        attributes: attrs,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: Default::default(),
    }
}

fn empty() -> Resource {
    Resource::builder_empty().build()
}

fn matches(p: Policy, spans: &[SpanData], res: &Resource) -> bool {
    let rule = compile(&p, false).expect("valid policy");
    rule.matches(7, spans, res)
}

#[test]
fn latency_bounds_are_the_collectors() {
    let res = empty();
    let lat = |lo, hi| {
        Policy::new(
            "l",
            PolicyKind::Latency(LatencyConfig {
                threshold_ms: lo,
                upper_threshold_ms: hi,
            }),
        )
    };
    let got: Vec<bool> = [1999, 2000, 2001, 3000, 3001]
        .iter()
        .map(|ms| matches(lat(2000, 0), &[span(*ms, Status::Unset, vec![])], &res))
        .collect();
    assert_eq!(got, [false, true, true, true, true]);
    let got: Vec<bool> = [1999, 2000, 2001, 3000, 3001]
        .iter()
        .map(|ms| matches(lat(2000, 3000), &[span(*ms, Status::Unset, vec![])], &res))
        .collect();
    assert_eq!(got, [false, false, true, true, false]);
    // Earliest start to latest end, across spans.
    let mut late = span(1500, Status::Unset, vec![]);
    late.start_time = UNIX_EPOCH + Duration::from_millis(600);
    late.end_time = UNIX_EPOCH + Duration::from_millis(2100);
    assert!(matches(
        lat(2000, 0),
        &[span(1500, Status::Unset, vec![]), late],
        &res
    ));
}

#[test]
fn attribute_policies_match_span_or_resource_attributes() {
    let with = |kv: KeyValue| vec![span(1, Status::Unset, vec![kv])];
    let res = empty();
    let syn = Policy::boolean_attribute("s", "synthetic", true);
    assert!(matches(
        syn.clone(),
        &with(KeyValue::new("synthetic", true)),
        &res
    ));
    assert!(!matches(
        syn.clone(),
        &with(KeyValue::new("synthetic", false)),
        &res
    ));
    assert!(!matches(
        syn.clone(),
        &with(KeyValue::new("synthetic", "true")),
        &res
    ));
    let res_syn = Resource::builder_empty()
        .with_attributes([KeyValue::new("synthetic", true)])
        .build();
    assert!(matches(syn, &[span(1, Status::Unset, vec![])], &res_syn));

    let tier = Policy::string_attribute("t", "tier", ["gold", "platinum"]);
    assert!(matches(
        tier.clone(),
        &with(KeyValue::new("tier", "gold")),
        &res
    ));
    assert!(!matches(tier, &with(KeyValue::new("tier", "silver")), &res));

    let code = Policy::numeric_attribute("n", "http.status_code", Some(500), None);
    assert!(matches(
        code.clone(),
        &with(KeyValue::new("http.status_code", 504)),
        &res
    ));
    assert!(!matches(
        code,
        &with(KeyValue::new("http.status_code", 404)),
        &res
    ));
}

#[test]
fn drop_wins_and_and_needs_every_sub_policy() {
    let res = empty();
    let rules = Rules::new(&[
        Policy::status_code("errors", [StatusCode::Error]),
        Policy::and(
            "slow-checkout",
            [
                Policy::latency("slow", 1000),
                Policy::string_attribute("route", "http.route", ["/checkout"]),
            ],
        ),
        Policy::drop(
            "health",
            [Policy::string_attribute("h", "http.route", ["/health"])],
        ),
    ])
    .expect("valid");
    let route = |r: &'static str| KeyValue::new("http.route", r);
    let v = |spans: &[SpanData]| match rules.verdict(7, spans, &res) {
        Verdict::Kept(i) => format!("kept:{i}"),
        Verdict::Dropped(Some(i)) => format!("dropped:{i}"),
        Verdict::Dropped(None) => "dropped".to_owned(),
    };
    assert_eq!(
        v(&[span(1, Status::error("x"), vec![route("/pay")])]),
        "kept:0"
    );
    assert_eq!(
        v(&[span(1, Status::error("x"), vec![route("/health")])]),
        "dropped:2"
    );
    assert_eq!(
        v(&[span(1500, Status::Unset, vec![route("/checkout")])]),
        "kept:1"
    );
    assert_eq!(
        v(&[span(900, Status::Unset, vec![route("/checkout")])]),
        "dropped"
    );
    assert_eq!(
        v(&[span(1500, Status::Unset, vec![route("/pay")])]),
        "dropped"
    );
}

#[test]
fn invalid_configurations_say_what_to_fix() {
    let err = |policies: Vec<Policy>| match Rules::new(&policies) {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        err(vec![]),
        "tail sampling has no policies: keep the defaults or give at least one policy"
    );
    assert_eq!(
        err(vec![Policy::always_sample("a"), Policy::always_sample("a")]),
        "tail sampling policy \"a\": two policies have this name: names must be unique"
    );
    assert_eq!(
        err(vec![Policy::probabilistic("p", f64::NAN)]),
        "tail sampling policy \"p\": sampling_percentage must be between 0 and 100"
    );
    assert_eq!(
        err(vec![Policy::and(
            "a",
            [Policy::drop("d", [Policy::always_sample("x")])]
        )]),
        "tail sampling policy \"d\": and/drop cannot be nested (the Collector rejects it too)"
    );
    assert_eq!(
        err(vec![Policy::numeric_attribute("n", "k", None, None)]),
        "tail sampling policy \"n\": numeric_attribute needs a key and min_value or max_value"
    );
    let zero = TailSampling::builder(opentelemetry_sdk::trace::SimpleSpanProcessor::new(
        opentelemetry_sdk::trace::InMemorySpanExporter::default(),
    ))
    .num_traces(0)
    .build();
    assert!(matches!(
        zero,
        Err(TailSamplingError::Zero {
            field: "num_traces"
        })
    ));
}

#[test]
fn probabilistic_is_the_head_samplers_ratio_rule() {
    let res = empty();
    let rule = compile(&Policy::probabilistic("p", 10.0), false).expect("valid");
    for i in 0..1000u128 {
        let id = i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834);
        assert_eq!(rule.matches(id, &[], &res), ratio_decision(0.1, id));
    }
}

// ---- docs/collector: every YAML file parses, its pipelines name defined
// components, and its tail_sampling policies are observe's defaults.

fn collector_files() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/collector");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("docs/collector exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

fn text(y: &Yaml, what: &str) -> String {
    y.as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, found {y:?}"))
        .to_owned()
}

fn number(y: &Yaml) -> Option<f64> {
    match y {
        Yaml::Integer(i) => Some(*i as f64),
        Yaml::Real(_) => y.as_f64(),
        _ => None,
    }
}

/// The Collector's policy YAML as observe's `Policy`.
fn policy_from_yaml(p: &Yaml) -> Policy {
    let name = text(&p["name"], "policy name");
    let ty = text(&p["type"], "policy type");
    let cfg = &p[ty.as_str()];
    let key = || text(&cfg["key"], "key");
    let kind = match ty.as_str() {
        "always_sample" => PolicyKind::AlwaysSample,
        "status_code" => PolicyKind::StatusCode(StatusCodeConfig {
            status_codes: cfg["status_codes"]
                .as_vec()
                .expect("status_codes is a list")
                .iter()
                .map(|c| match c.as_str() {
                    Some("ERROR") => StatusCode::Error,
                    Some("OK") => StatusCode::Ok,
                    Some("UNSET") => StatusCode::Unset,
                    other => panic!("status code {other:?}"),
                })
                .collect(),
        }),
        "latency" => PolicyKind::Latency(LatencyConfig {
            threshold_ms: cfg["threshold_ms"].as_i64().expect("threshold_ms") as u64,
            upper_threshold_ms: cfg["upper_threshold_ms"].as_i64().unwrap_or(0) as u64,
        }),
        "boolean_attribute" => PolicyKind::BooleanAttribute(BooleanAttributeConfig {
            key: key(),
            value: cfg["value"].as_bool().expect("value is a boolean"),
        }),
        "string_attribute" => PolicyKind::StringAttribute(StringAttributeConfig {
            key: key(),
            values: cfg["values"]
                .as_vec()
                .expect("values is a list")
                .iter()
                .map(|v| text(v, "value"))
                .collect(),
        }),
        "numeric_attribute" => PolicyKind::NumericAttribute(NumericAttributeConfig {
            key: key(),
            min_value: cfg["min_value"].as_i64(),
            max_value: cfg["max_value"].as_i64(),
        }),
        "probabilistic" => PolicyKind::Probabilistic(ProbabilisticConfig {
            sampling_percentage: number(&cfg["sampling_percentage"])
                .expect("sampling_percentage is a number"),
        }),
        "and" => PolicyKind::And(AndConfig {
            and_sub_policy: cfg["and_sub_policy"]
                .as_vec()
                .expect("and_sub_policy")
                .iter()
                .map(policy_from_yaml)
                .collect(),
        }),
        "drop" => PolicyKind::Drop(DropConfig {
            drop_sub_policy: cfg["drop_sub_policy"]
                .as_vec()
                .expect("drop_sub_policy")
                .iter()
                .map(policy_from_yaml)
                .collect(),
        }),
        other => panic!("policy {name:?}: type {other:?} has no observe equivalent"),
    };
    Policy { name, kind }
}

/// Component ids (`otlp`, `otlp/jaeger`, ...) defined under a top-level section.
fn ids(doc: &Yaml, section: &str) -> Vec<String> {
    doc[section]
        .as_hash()
        .map(|h| {
            h.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn collector_configs_parse_and_carry_observes_default_policies() {
    let files = collector_files();
    assert!(
        files.len() >= 2,
        "agent and gateway configurations: {files:?}"
    );
    let mut tail_samplers = 0;
    for file in &files {
        let src = std::fs::read_to_string(file).expect("readable");
        let docs =
            YamlLoader::load_from_str(&src).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(docs.len(), 1, "{}: one document", file.display());
        let doc = &docs[0];

        // Every pipeline names defined components; connectors are both ends.
        let connectors = ids(doc, "connectors");
        let pipelines = doc["service"]["pipelines"]
            .as_hash()
            .unwrap_or_else(|| panic!("{}: service.pipelines", file.display()));
        assert!(!pipelines.is_empty());
        for (name, pipeline) in pipelines {
            for (role, section) in [
                ("receivers", "receivers"),
                ("processors", "processors"),
                ("exporters", "exporters"),
            ] {
                let defined = ids(doc, section);
                for c in pipeline[role].as_vec().into_iter().flatten() {
                    let c = text(c, role);
                    let ok =
                        defined.contains(&c) || (role != "processors" && connectors.contains(&c));
                    assert!(
                        ok,
                        "{}: pipeline {name:?} uses undefined {c:?}",
                        file.display()
                    );
                }
            }
            assert!(
                pipeline["receivers"]
                    .as_vec()
                    .is_some_and(|v| !v.is_empty())
                    && pipeline["exporters"]
                        .as_vec()
                        .is_some_and(|v| !v.is_empty()),
                "{}: pipeline {name:?} needs receivers and exporters",
                file.display()
            );
        }

        for id in ids(doc, "processors") {
            if id != "tail_sampling" && !id.starts_with("tail_sampling/") {
                continue;
            }
            tail_samplers += 1;
            let ts = &doc["processors"][id.as_str()];
            let policies: Vec<Policy> = ts["policies"]
                .as_vec()
                .expect("policies is a list")
                .iter()
                .map(policy_from_yaml)
                .collect();
            assert_eq!(policies, default_policies(), "{}: {id}", file.display());
            // The documented defaults, figure by figure.
            assert_eq!(policies[0].kind.type_name(), "status_code");
            assert_eq!(
                ts["policies"][1]["latency"]["threshold_ms"].as_i64(),
                Some(2000)
            );
            assert_eq!(
                number(&ts["policies"][3]["probabilistic"]["sampling_percentage"]),
                Some(10.0)
            );
            let wait = text(&ts["decision_wait"], "decision_wait");
            // `${env:NAME:-10s}`: the value used when NAME is unset.
            let wait = wait
                .strip_prefix("${env:")
                .and_then(|r| r.split_once(":-"))
                .map(|(_, d)| d.trim_end_matches('}').to_owned())
                .unwrap_or(wait);
            assert!(
                wait.ends_with('s'),
                "{}: decision_wait {wait:?}",
                file.display()
            );
            assert!(ts["num_traces"].as_i64().is_some_and(|n| n > 0));
            Rules::new(&policies).expect("observe accepts the Collector's policies");
        }
    }
    assert!(
        tail_samplers >= 1,
        "no tail_sampling processor in docs/collector"
    );
}

#[test]
fn default_policy_names_and_types() {
    let names: Vec<String> = default_policies()
        .iter()
        .map(|p| format!("{}:{}", p.name, p.kind.type_name()))
        .collect();
    assert_eq!(
        names,
        [
            "errors:status_code",
            "slow:latency",
            "synthetic:boolean_attribute",
            "healthy:probabilistic"
        ]
    );
}
