//! Configuration in the Collector's names: the policies, their settings and the errors of a bad one.

use opentelemetry::trace::Status;

use super::{
    DEFAULT_DECISION_WAIT, DEFAULT_LATENCY_THRESHOLD_MS, DEFAULT_MAX_SPANS_PER_TRACE,
    DEFAULT_NON_SAMPLED_CACHE_SIZE, DEFAULT_NUM_TRACES, DEFAULT_ROOT_WAIT,
    DEFAULT_SAMPLED_CACHE_SIZE, DEFAULT_SAMPLING_PERCENTAGE,
};
use std::time::Duration;

/// The whole configuration; field names are the Collector's `tail_sampling`
/// keys, except the two marked "observe only".
#[derive(Clone, Debug, PartialEq)]
pub struct TailSamplingConfig {
    /// Wait after the first local root of a trace ended, for late children.
    /// (The Collector counts from the first span it received.)
    pub decision_wait: Duration,
    /// Most traces buffered at once; a new trace beyond it is decided at once.
    pub num_traces: usize,
    /// How many recent decisions are remembered for late spans.
    pub decision_cache: DecisionCacheConfig,
    /// The policies, in order (the first sampling one is the reported reason).
    pub policies: Vec<Policy>,
    /// Observe only: longest wait for a local root after a trace's first span.
    pub root_wait: Duration,
    /// Observe only: a trace reaching this many spans is decided at once.
    pub max_spans_per_trace: usize,
}

impl Default for TailSamplingConfig {
    /// Observe's defaults: [`default_policies`] and the `DEFAULT_*` constants.
    fn default() -> Self {
        TailSamplingConfig {
            decision_wait: DEFAULT_DECISION_WAIT,
            num_traces: DEFAULT_NUM_TRACES,
            decision_cache: DecisionCacheConfig::default(),
            policies: default_policies(),
            root_wait: DEFAULT_ROOT_WAIT,
            max_spans_per_trace: DEFAULT_MAX_SPANS_PER_TRACE,
        }
    }
}

/// `decision_cache`: sizes of the two caches of recent decisions (0 disables one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecisionCacheConfig {
    /// Trace ids kept.
    pub sampled_cache_size: usize,
    /// Trace ids dropped.
    pub non_sampled_cache_size: usize,
}

impl Default for DecisionCacheConfig {
    fn default() -> Self {
        DecisionCacheConfig {
            sampled_cache_size: DEFAULT_SAMPLED_CACHE_SIZE,
            non_sampled_cache_size: DEFAULT_NON_SAMPLED_CACHE_SIZE,
        }
    }
}

/// Observe's default policies, the same as in `docs/collector/`:
/// `errors`, `slow`, `synthetic`, `healthy`.
pub fn default_policies() -> Vec<Policy> {
    vec![
        Policy::status_code("errors", [StatusCode::Error]),
        Policy::latency("slow", DEFAULT_LATENCY_THRESHOLD_MS),
        Policy::boolean_attribute("synthetic", "synthetic", true),
        Policy::probabilistic("healthy", DEFAULT_SAMPLING_PERCENTAGE),
    ]
}

/// One entry of `policies`: a `name` and a `type` with its settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// The policy's name (reported in the counters).
    pub name: String,
    /// The Collector's `type` and the settings under the key of that name.
    pub kind: PolicyKind,
}

/// The policy types, named as the Collector's (`type: status_code` is
/// `PolicyKind::StatusCode` with the settings of the `status_code:` key).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PolicyKind {
    /// `always_sample`.
    AlwaysSample,
    /// `status_code`.
    StatusCode(StatusCodeConfig),
    /// `latency`.
    Latency(LatencyConfig),
    /// `string_attribute` (exact values; no regex).
    StringAttribute(StringAttributeConfig),
    /// `boolean_attribute`.
    BooleanAttribute(BooleanAttributeConfig),
    /// `numeric_attribute` (integer attributes).
    NumericAttribute(NumericAttributeConfig),
    /// `probabilistic`.
    Probabilistic(ProbabilisticConfig),
    /// `and`: samples when every sub-policy does.
    And(AndConfig),
    /// `drop`: drops the trace when every sub-policy samples it.
    Drop(DropConfig),
}

impl PolicyKind {
    /// The Collector's `type` value.
    pub fn type_name(&self) -> &'static str {
        match self {
            PolicyKind::AlwaysSample => "always_sample",
            PolicyKind::StatusCode(_) => "status_code",
            PolicyKind::Latency(_) => "latency",
            PolicyKind::StringAttribute(_) => "string_attribute",
            PolicyKind::BooleanAttribute(_) => "boolean_attribute",
            PolicyKind::NumericAttribute(_) => "numeric_attribute",
            PolicyKind::Probabilistic(_) => "probabilistic",
            PolicyKind::And(_) => "and",
            PolicyKind::Drop(_) => "drop",
        }
    }
}

/// A span status, as written in `status_codes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusCode {
    /// `UNSET`.
    Unset,
    /// `OK`.
    Ok,
    /// `ERROR`.
    Error,
}

impl StatusCode {
    /// The Collector's spelling: `UNSET`, `OK`, `ERROR`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusCode::Unset => "UNSET",
            StatusCode::Ok => "OK",
            StatusCode::Error => "ERROR",
        }
    }

    pub(super) fn of(status: &Status) -> Self {
        match status {
            Status::Unset => StatusCode::Unset,
            Status::Ok => StatusCode::Ok,
            Status::Error { .. } => StatusCode::Error,
        }
    }
}

/// `status_code: { status_codes: [...] }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusCodeConfig {
    /// Keep when any span has one of these.
    pub status_codes: Vec<StatusCode>,
}

/// `latency: { threshold_ms, upper_threshold_ms }`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencyConfig {
    /// Keep when the trace lasted at least this long (without an upper bound).
    pub threshold_ms: u64,
    /// When not 0: keep when `threshold_ms < duration <= upper_threshold_ms`.
    pub upper_threshold_ms: u64,
}

/// `string_attribute: { key, values }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StringAttributeConfig {
    /// The attribute (span or resource).
    pub key: String,
    /// Keep when its string value is one of these.
    pub values: Vec<String>,
}

/// `boolean_attribute: { key, value }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BooleanAttributeConfig {
    /// The attribute (span or resource).
    pub key: String,
    /// Keep when its boolean value is this.
    pub value: bool,
}

/// `numeric_attribute: { key, min_value, max_value }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NumericAttributeConfig {
    /// The attribute (span or resource), an integer.
    pub key: String,
    /// Inclusive lower bound.
    pub min_value: Option<i64>,
    /// Inclusive upper bound.
    pub max_value: Option<i64>,
}

/// `probabilistic: { sampling_percentage }`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProbabilisticConfig {
    /// Share of trace ids kept, 0 to 100 (the TraceIdRatio rule, not the Collector's hash).
    pub sampling_percentage: f64,
}

/// `and: { and_sub_policy: [...] }`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AndConfig {
    /// Every one must sample the trace.
    pub and_sub_policy: Vec<Policy>,
}

/// `drop: { drop_sub_policy: [...] }`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DropConfig {
    /// When every one samples the trace, it is dropped, whatever other policies say.
    pub drop_sub_policy: Vec<Policy>,
}

impl Policy {
    /// `type: always_sample`.
    pub fn always_sample(name: impl Into<String>) -> Self {
        Self::new(name, PolicyKind::AlwaysSample)
    }

    /// `type: status_code`.
    pub fn status_code(
        name: impl Into<String>,
        status_codes: impl IntoIterator<Item = StatusCode>,
    ) -> Self {
        Self::new(
            name,
            PolicyKind::StatusCode(StatusCodeConfig {
                status_codes: status_codes.into_iter().collect(),
            }),
        )
    }

    /// `type: latency` with only `threshold_ms`.
    pub fn latency(name: impl Into<String>, threshold_ms: u64) -> Self {
        Self::new(
            name,
            PolicyKind::Latency(LatencyConfig {
                threshold_ms,
                upper_threshold_ms: 0,
            }),
        )
    }

    /// `type: string_attribute`.
    pub fn string_attribute<V: Into<String>>(
        name: impl Into<String>,
        key: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        Self::new(
            name,
            PolicyKind::StringAttribute(StringAttributeConfig {
                key: key.into(),
                values: values.into_iter().map(Into::into).collect(),
            }),
        )
    }

    /// `type: boolean_attribute`.
    pub fn boolean_attribute(name: impl Into<String>, key: impl Into<String>, value: bool) -> Self {
        Self::new(
            name,
            PolicyKind::BooleanAttribute(BooleanAttributeConfig {
                key: key.into(),
                value,
            }),
        )
    }

    /// `type: numeric_attribute`.
    pub fn numeric_attribute(
        name: impl Into<String>,
        key: impl Into<String>,
        min_value: Option<i64>,
        max_value: Option<i64>,
    ) -> Self {
        Self::new(
            name,
            PolicyKind::NumericAttribute(NumericAttributeConfig {
                key: key.into(),
                min_value,
                max_value,
            }),
        )
    }

    /// `type: probabilistic`.
    pub fn probabilistic(name: impl Into<String>, sampling_percentage: f64) -> Self {
        Self::new(
            name,
            PolicyKind::Probabilistic(ProbabilisticConfig {
                sampling_percentage,
            }),
        )
    }

    /// `type: and`.
    pub fn and(name: impl Into<String>, sub: impl IntoIterator<Item = Policy>) -> Self {
        Self::new(
            name,
            PolicyKind::And(AndConfig {
                and_sub_policy: sub.into_iter().collect(),
            }),
        )
    }

    /// `type: drop`.
    pub fn drop(name: impl Into<String>, sub: impl IntoIterator<Item = Policy>) -> Self {
        Self::new(
            name,
            PolicyKind::Drop(DropConfig {
                drop_sub_policy: sub.into_iter().collect(),
            }),
        )
    }

    pub(super) fn new(name: impl Into<String>, kind: PolicyKind) -> Self {
        Policy {
            name: name.into(),
            kind,
        }
    }
}

/// Why [`TailSamplingBuilder::build`](super::TailSamplingBuilder::build) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TailSamplingError {
    /// `policies` is empty.
    #[error("tail sampling has no policies: keep the defaults or give at least one policy")]
    NoPolicies,
    /// A policy's settings cannot work.
    #[error("tail sampling policy {name:?}: {reason}")]
    InvalidPolicy {
        /// The policy's name.
        name: String,
        /// What to fix.
        reason: &'static str,
    },
    /// `num_traces` or `max_spans_per_trace` is 0.
    #[error("tail sampling: {field} must be at least 1")]
    Zero {
        /// The setting.
        field: &'static str,
    },
    /// The decision thread could not be started.
    #[error("tail sampling: the decision thread could not start: {0}")]
    Thread(#[source] std::io::Error),
}
