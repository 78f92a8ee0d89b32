//! Compiled policies: a configuration checked once and turned into rules evaluated per trace.

use super::config::{AndConfig, DropConfig, Policy, PolicyKind, StatusCode, TailSamplingError};
use crate::sampler::ratio_decision;
use opentelemetry::{Key, Value};
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_sdk::Resource;

pub(super) enum Rule {
    Always,
    Status([bool; 3]),
    Latency { lower: u64, upper: u64 },
    Str { key: Key, values: Box<[Box<str>]> },
    Bool { key: Key, value: bool },
    Num { key: Key, min: i64, max: i64 },
    Ratio(f64),
    All(Box<[Rule]>),
}

pub(super) struct Rules {
    /// `drop` policies: (index in `policies`, sub-rules that must all match).
    pub(super) drops: Box<[(usize, Rule)]>,
    /// Every other policy, in order.
    pub(super) samplers: Box<[(usize, Rule)]>,
}

pub(super) enum Verdict {
    Kept(usize),
    Dropped(Option<usize>),
}

pub(super) fn invalid(p: &Policy, reason: &'static str) -> TailSamplingError {
    TailSamplingError::InvalidPolicy {
        name: p.name.clone(),
        reason,
    }
}

pub(super) fn compile(p: &Policy, nested: bool) -> Result<Rule, TailSamplingError> {
    if p.name.trim().is_empty() {
        return Err(invalid(p, "give the policy a name"));
    }
    Ok(match &p.kind {
        PolicyKind::AlwaysSample => Rule::Always,
        PolicyKind::StatusCode(c) => {
            if c.status_codes.is_empty() {
                return Err(invalid(p, "status_codes is empty: list ERROR, OK or UNSET"));
            }
            let mut set = [false; 3];
            for s in &c.status_codes {
                set[*s as usize] = true;
            }
            Rule::Status(set)
        }
        PolicyKind::Latency(c) => {
            if c.upper_threshold_ms != 0 && c.upper_threshold_ms <= c.threshold_ms {
                return Err(invalid(
                    p,
                    "upper_threshold_ms must be 0 (none) or above threshold_ms",
                ));
            }
            Rule::Latency {
                lower: c.threshold_ms,
                upper: c.upper_threshold_ms,
            }
        }
        PolicyKind::StringAttribute(c) => {
            if c.key.is_empty() || c.values.is_empty() {
                return Err(invalid(p, "string_attribute needs a key and values"));
            }
            Rule::Str {
                key: Key::new(c.key.clone()),
                values: c.values.iter().map(|v| v.as_str().into()).collect(),
            }
        }
        PolicyKind::BooleanAttribute(c) => {
            if c.key.is_empty() {
                return Err(invalid(p, "boolean_attribute needs a key"));
            }
            Rule::Bool {
                key: Key::new(c.key.clone()),
                value: c.value,
            }
        }
        PolicyKind::NumericAttribute(c) => {
            if c.key.is_empty() || (c.min_value.is_none() && c.max_value.is_none()) {
                return Err(invalid(
                    p,
                    "numeric_attribute needs a key and min_value or max_value",
                ));
            }
            let (min, max) = (
                c.min_value.unwrap_or(i64::MIN),
                c.max_value.unwrap_or(i64::MAX),
            );
            if min > max {
                return Err(invalid(p, "min_value is above max_value"));
            }
            Rule::Num {
                key: Key::new(c.key.clone()),
                min,
                max,
            }
        }
        PolicyKind::Probabilistic(c) => {
            let pct = c.sampling_percentage;
            if !pct.is_finite() || pct < 0.0 {
                return Err(invalid(p, "sampling_percentage must be between 0 and 100"));
            }
            Rule::Ratio((pct / 100.0).min(1.0))
        }
        PolicyKind::And(AndConfig {
            and_sub_policy: sub,
        })
        | PolicyKind::Drop(DropConfig {
            drop_sub_policy: sub,
        }) => {
            if nested {
                return Err(invalid(
                    p,
                    "and/drop cannot be nested (the Collector rejects it too)",
                ));
            }
            if sub.is_empty() {
                return Err(invalid(p, "and/drop needs at least one sub-policy"));
            }
            Rule::All(
                sub.iter()
                    .map(|s| compile(s, true))
                    .collect::<Result<_, _>>()?,
            )
        }
    })
}

impl Rules {
    pub(super) fn new(policies: &[Policy]) -> Result<Self, TailSamplingError> {
        if policies.is_empty() {
            return Err(TailSamplingError::NoPolicies);
        }
        let mut drops = Vec::new();
        let mut samplers = Vec::new();
        for (i, p) in policies.iter().enumerate() {
            if policies[..i].iter().any(|q| q.name == p.name) {
                return Err(invalid(
                    p,
                    "two policies have this name: names must be unique",
                ));
            }
            let rule = compile(p, false)?;
            if matches!(p.kind, PolicyKind::Drop(_)) {
                drops.push((i, rule));
            } else {
                samplers.push((i, rule));
            }
        }
        Ok(Rules {
            drops: drops.into(),
            samplers: samplers.into(),
        })
    }

    pub(super) fn verdict(&self, id: u128, spans: &[SpanData], res: &Resource) -> Verdict {
        if let Some((i, _)) = self.drops.iter().find(|(_, r)| r.matches(id, spans, res)) {
            return Verdict::Dropped(Some(*i));
        }
        match self
            .samplers
            .iter()
            .find(|(_, r)| r.matches(id, spans, res))
        {
            Some((i, _)) => Verdict::Kept(*i),
            None => Verdict::Dropped(None),
        }
    }
}

/// Whether the resource or any span has `key` with a value satisfying `f`.
pub(super) fn any_attribute(
    spans: &[SpanData],
    res: &Resource,
    key: &Key,
    f: impl Fn(&Value) -> bool,
) -> bool {
    res.get_ref(key).is_some_and(&f)
        || spans.iter().any(|s| {
            s.attributes
                .iter()
                .any(|kv| kv.key.as_str() == key.as_str() && f(&kv.value))
        })
}

impl Rule {
    pub(super) fn matches(&self, id: u128, spans: &[SpanData], res: &Resource) -> bool {
        match self {
            Rule::Always => true,
            Rule::Status(set) => spans
                .iter()
                .any(|s| set[StatusCode::of(&s.status) as usize]),
            Rule::Latency { lower, upper } => {
                let (Some(start), Some(end)) = (
                    spans.iter().map(|s| s.start_time).min(),
                    spans.iter().map(|s| s.end_time).max(),
                ) else {
                    return false;
                };
                let ms = end
                    .duration_since(start)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                if *upper == 0 {
                    ms >= *lower
                } else {
                    *lower < ms && ms <= *upper
                }
            }
            Rule::Str { key, values } => any_attribute(spans, res, key, |v| match v {
                Value::String(s) => values.iter().any(|w| **w == *s.as_str()),
                _ => false,
            }),
            Rule::Bool { key, value } => any_attribute(
                spans,
                res,
                key,
                |v| matches!(v, Value::Bool(b) if b == value),
            ),
            Rule::Num { key, min, max } => any_attribute(
                spans,
                res,
                key,
                |v| matches!(v, Value::I64(n) if (*min..=*max).contains(n)),
            ),
            Rule::Ratio(r) => ratio_decision(*r, id),
            Rule::All(rules) => rules.iter().all(|r| r.matches(id, spans, res)),
        }
    }
}
