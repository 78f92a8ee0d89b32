//! Tail-based sampling: a span processor that decides whether to keep a trace
//! after its local part has ended, and forwards every span of a kept trace to
//! the next processor.
//!
//! ```
//! use observe_core::export::tail::TailSampling;
//! use observe_core::opentelemetry::trace::Status;
//! use observe_core::opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor, SpanProcessor};
//! # use observe_core::opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceFlags, TraceId, TraceState};
//! # use observe_core::opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
//! # use std::time::{Duration, UNIX_EPOCH};
//! # fn span(trace: u128, id: u64, parent: u64, name: &'static str, status: Status) -> SpanData {
//! #     SpanData {
//! #         span_context: SpanContext::new(TraceId::from(trace), SpanId::from(id), TraceFlags::SAMPLED, false, TraceState::default()),
//! #         parent_span_id: SpanId::from(parent), parent_span_is_remote: false,
//! #         span_kind: SpanKind::Internal, name: name.into(),
//! #         start_time: UNIX_EPOCH, end_time: UNIX_EPOCH + Duration::from_millis(40),
//! #         attributes: Vec::new(), dropped_attributes_count: 0,
//! #         events: SpanEvents::default(), links: SpanLinks::default(),
//! #         status, instrumentation_scope: Default::default(),
//! #     }
//! # }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let exporter = InMemorySpanExporter::default();
//! // Observe's defaults: errors, slow (2 s), synthetic, 10% of the rest.
//! let tail = TailSampling::builder(SimpleSpanProcessor::new(exporter.clone())).build()?;
//!
//! let trace = 0x4bf92f3577b34da6a3ce929d0e0e4736; // not in the healthy 10%
//! tail.on_end(span(trace, 2, 1, "charge_card", Status::error("gateway returned 504")));
//! tail.on_end(span(trace, 1, 0, "checkout", Status::Unset)); // the local root
//! tail.force_flush()?; // decide now instead of after `decision_wait`
//!
//! let kept: Vec<_> = exporter.get_finished_spans()?.iter().map(|s| s.name.to_string()).collect();
//! println!("{kept:?} kept by {:?}", tail.counters().decided_by("errors"));
//! # assert_eq!(kept, ["charge_card", "checkout"]);
//! # Ok(())
//! # }
//! ```
//!
//! prints
//!
//! ```text
//! ["charge_card", "checkout"] kept by 1
//! ```
//!
//! # The pipeline
//!
//! ```text
//!  application threads (on_end)           the "observe-tail-sampling" thread
//!  ─────────────────────────────           ──────────────────────────────────
//!  span ends ─▶ shard[trace id] (1 of 16 mutexes)
//!                ├─ pending trace: buffer the SpanData;
//!                │    first local root ended: due = now + decision_wait
//!                ├─ decided recently: follow the decision ─────────────┐
//!                ├─ num_traces or max_spans_per_trace reached:         │
//!                │    decide now, count the overflow ──────────────────┤
//!                └─ new trace: start buffering                         │
//!                                           every tick (≤ 100 ms):     │
//!                                           due traces ─▶ policies     │
//!                                             keep ────────────────────┤
//!                                             drop ─▶ counted          ▼
//!                          downstream.on_end(span) for every span of the trace, in end order
//!                          (usually a BatchSpanProcessor ▶ OTLP exporter)
//! ```
//!
//! # When a trace is decided
//!
//! - `decision_wait` after its first *local root* ended: a span whose parent
//!   is invalid (a new trace) or remote (a request from another service).
//!   Several local roots of one trace (several requests of one trace reaching
//!   this service) are decided together, at the first one's deadline.
//! - `root_wait` after its first span arrived, if no local root has ended by
//!   then (a long-running request, or a root that is not recorded).
//! - At once when `num_traces` traces are pending (the new trace is decided on
//!   its first span) or when a trace reaches `max_spans_per_trace` spans: both
//!   are counted as overflow.
//! - On [`force_flush`](SpanProcessor::force_flush) and
//!   [`shutdown`](SpanProcessor::shutdown_with_timeout): everything pending,
//!   as if the wait had elapsed.
//!
//! Spans that end after their trace was decided follow the decision while it
//! is among the recent decisions (`decision_cache`); a kept late span is
//! forwarded at once, from the thread that ended it. Spans without the
//! sampled flag are ignored (head sampling already dropped their trace).
//!
//! # Policies
//!
//! They mirror the OpenTelemetry Collector's `tail_sampling` processor: same
//! type names, same fields, same combination (a trace is kept when any policy
//! samples it, unless a `drop` policy matched). `docs/sampling.md` has the
//! field-by-field mapping and the differences; `docs/collector/` carries the
//! same defaults as Collector configuration.
//!
//! | policy (`name`) | Collector `type` | keeps |
//! |---|---|---|
//! | `errors` | `status_code` | any span with status Error |
//! | `slow` | `latency` | earliest start to latest end ≥ 2000 ms |
//! | `synthetic` | `boolean_attribute` | a span or resource attribute `synthetic = true` |
//! | `healthy` | `probabilistic` | 10% of trace ids: the SDK's `TraceIdRatioBased` rule, so every service keeps the same ones |
//!
//! # Customization
//!
//! ```
//! use observe_core::export::tail::{Policy, StatusCode, TailSampling};
//! use observe_core::opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor};
//! use std::time::Duration;
//!
//! let tail = TailSampling::builder(SimpleSpanProcessor::new(InMemorySpanExporter::default()))
//!     .decision_wait(Duration::from_secs(2))
//!     .num_traces(20_000)
//!     .policies([
//!         Policy::status_code("errors", [StatusCode::Error]),
//!         Policy::latency("slow", 500),
//!         Policy::string_attribute("vip", "customer.tier", ["gold", "platinum"]),
//!         Policy::drop("no-health-checks", [Policy::string_attribute("health", "http.route", ["/health"])]),
//!         Policy::probabilistic("healthy", 5.0),
//!     ])
//!     .build()?;
//! let counters = tail.counters(); // Arc: keep it to report metrics after moving `tail`
//! # assert_eq!(counters.traces_kept(), 0);
//! # Ok::<(), observe_core::export::tail::TailSamplingError>(())
//! ```

use crate::sampler::ratio_decision;
use opentelemetry::trace::{SpanId, Status};
use opentelemetry::{Context, Key, Value};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Default `decision_wait`: how long after a trace's first local root ended.
pub const DEFAULT_DECISION_WAIT: Duration = Duration::from_secs(1);
/// Default `num_traces`: most traces pending at once.
pub const DEFAULT_NUM_TRACES: usize = 10_000;
/// Default `decision_cache.sampled_cache_size`.
pub const DEFAULT_SAMPLED_CACHE_SIZE: usize = 10_000;
/// Default `decision_cache.non_sampled_cache_size`.
pub const DEFAULT_NON_SAMPLED_CACHE_SIZE: usize = 50_000;
/// Default `root_wait` (observe only): the Collector's default `decision_wait`.
pub const DEFAULT_ROOT_WAIT: Duration = Duration::from_secs(30);
/// Default `max_spans_per_trace` (observe only).
pub const DEFAULT_MAX_SPANS_PER_TRACE: usize = 1_000;
/// Default `threshold_ms` of the `slow` policy.
pub const DEFAULT_LATENCY_THRESHOLD_MS: u64 = 2_000;
/// Default `sampling_percentage` of the `healthy` policy.
pub const DEFAULT_SAMPLING_PERCENTAGE: f64 = 10.0;

const SHARDS: usize = 16;

// ---------------------------------------------------------------------------
// Configuration: the Collector's names.
// ---------------------------------------------------------------------------

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
    pub decision_cache: DecisionCacheCfg,
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
            decision_cache: DecisionCacheCfg::default(),
            policies: default_policies(),
            root_wait: DEFAULT_ROOT_WAIT,
            max_spans_per_trace: DEFAULT_MAX_SPANS_PER_TRACE,
        }
    }
}

/// `decision_cache`: sizes of the two caches of recent decisions (0 disables one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecisionCacheCfg {
    /// Trace ids kept.
    pub sampled_cache_size: usize,
    /// Trace ids dropped.
    pub non_sampled_cache_size: usize,
}

impl Default for DecisionCacheCfg {
    fn default() -> Self {
        DecisionCacheCfg {
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
    StatusCode(StatusCodeCfg),
    /// `latency`.
    Latency(LatencyCfg),
    /// `string_attribute` (exact values; no regex).
    StringAttribute(StringAttributeCfg),
    /// `boolean_attribute`.
    BooleanAttribute(BooleanAttributeCfg),
    /// `numeric_attribute` (integer attributes).
    NumericAttribute(NumericAttributeCfg),
    /// `probabilistic`.
    Probabilistic(ProbabilisticCfg),
    /// `and`: samples when every sub-policy does.
    And(AndCfg),
    /// `drop`: drops the trace when every sub-policy samples it.
    Drop(DropCfg),
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

    fn of(status: &Status) -> Self {
        match status {
            Status::Unset => StatusCode::Unset,
            Status::Ok => StatusCode::Ok,
            Status::Error { .. } => StatusCode::Error,
        }
    }
}

/// `status_code: { status_codes: [...] }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusCodeCfg {
    /// Keep when any span has one of these.
    pub status_codes: Vec<StatusCode>,
}

/// `latency: { threshold_ms, upper_threshold_ms }`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencyCfg {
    /// Keep when the trace lasted at least this long (without an upper bound).
    pub threshold_ms: u64,
    /// When not 0: keep when `threshold_ms < duration <= upper_threshold_ms`.
    pub upper_threshold_ms: u64,
}

/// `string_attribute: { key, values }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StringAttributeCfg {
    /// The attribute (span or resource).
    pub key: String,
    /// Keep when its string value is one of these.
    pub values: Vec<String>,
}

/// `boolean_attribute: { key, value }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BooleanAttributeCfg {
    /// The attribute (span or resource).
    pub key: String,
    /// Keep when its boolean value is this.
    pub value: bool,
}

/// `numeric_attribute: { key, min_value, max_value }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NumericAttributeCfg {
    /// The attribute (span or resource), an integer.
    pub key: String,
    /// Inclusive lower bound.
    pub min_value: Option<i64>,
    /// Inclusive upper bound.
    pub max_value: Option<i64>,
}

/// `probabilistic: { sampling_percentage }`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProbabilisticCfg {
    /// Share of trace ids kept, 0 to 100 (the TraceIdRatio rule, not the Collector's hash).
    pub sampling_percentage: f64,
}

/// `and: { and_sub_policy: [...] }`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AndCfg {
    /// Every one must sample the trace.
    pub and_sub_policy: Vec<Policy>,
}

/// `drop: { drop_sub_policy: [...] }`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DropCfg {
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
            PolicyKind::StatusCode(StatusCodeCfg {
                status_codes: status_codes.into_iter().collect(),
            }),
        )
    }

    /// `type: latency` with only `threshold_ms`.
    pub fn latency(name: impl Into<String>, threshold_ms: u64) -> Self {
        Self::new(
            name,
            PolicyKind::Latency(LatencyCfg {
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
            PolicyKind::StringAttribute(StringAttributeCfg {
                key: key.into(),
                values: values.into_iter().map(Into::into).collect(),
            }),
        )
    }

    /// `type: boolean_attribute`.
    pub fn boolean_attribute(name: impl Into<String>, key: impl Into<String>, value: bool) -> Self {
        Self::new(
            name,
            PolicyKind::BooleanAttribute(BooleanAttributeCfg {
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
            PolicyKind::NumericAttribute(NumericAttributeCfg {
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
            PolicyKind::Probabilistic(ProbabilisticCfg {
                sampling_percentage,
            }),
        )
    }

    /// `type: and`.
    pub fn and(name: impl Into<String>, sub: impl IntoIterator<Item = Policy>) -> Self {
        Self::new(
            name,
            PolicyKind::And(AndCfg {
                and_sub_policy: sub.into_iter().collect(),
            }),
        )
    }

    /// `type: drop`.
    pub fn drop(name: impl Into<String>, sub: impl IntoIterator<Item = Policy>) -> Self {
        Self::new(
            name,
            PolicyKind::Drop(DropCfg {
                drop_sub_policy: sub.into_iter().collect(),
            }),
        )
    }

    fn new(name: impl Into<String>, kind: PolicyKind) -> Self {
        Policy {
            name: name.into(),
            kind,
        }
    }
}

/// Why [`TailSamplingBuilder::build`] failed.
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

// ---------------------------------------------------------------------------
// Compiled policies.
// ---------------------------------------------------------------------------

enum Rule {
    Always,
    Status([bool; 3]),
    Latency { lower: u64, upper: u64 },
    Str { key: Key, values: Box<[Box<str>]> },
    Bool { key: Key, value: bool },
    Num { key: Key, min: i64, max: i64 },
    Ratio(f64),
    All(Box<[Rule]>),
}

struct Rules {
    /// `drop` policies: (index in `policies`, sub-rules that must all match).
    drops: Box<[(usize, Rule)]>,
    /// Every other policy, in order.
    samplers: Box<[(usize, Rule)]>,
}

enum Verdict {
    Kept(usize),
    Dropped(Option<usize>),
}

fn invalid(p: &Policy, reason: &'static str) -> TailSamplingError {
    TailSamplingError::InvalidPolicy {
        name: p.name.clone(),
        reason,
    }
}

fn compile(p: &Policy, nested: bool) -> Result<Rule, TailSamplingError> {
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
        PolicyKind::And(AndCfg {
            and_sub_policy: sub,
        })
        | PolicyKind::Drop(DropCfg {
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
    fn new(policies: &[Policy]) -> Result<Self, TailSamplingError> {
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

    fn verdict(&self, id: u128, spans: &[SpanData], res: &Resource) -> Verdict {
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
fn any_attribute(
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
    fn matches(&self, id: u128, spans: &[SpanData], res: &Resource) -> bool {
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

// ---------------------------------------------------------------------------
// Counters.
// ---------------------------------------------------------------------------

/// Decision counters, updated with relaxed atomics; read them at any time
/// from any thread (for metrics: each getter is a monotonic counter except
/// [`pending_traces`](Self::pending_traces), a gauge).
///
/// Every decided trace is counted once, as kept or dropped, with one reason:
/// [`decided_by`](Self::decided_by) the first sampling policy (kept), the
/// first matching `drop` policy (dropped), or [`dropped_unmatched`](Self::dropped_unmatched).
#[derive(Debug)]
pub struct TailCounters {
    traces_kept: AtomicU64,
    traces_dropped: AtomicU64,
    spans_kept: AtomicU64,
    spans_dropped: AtomicU64,
    late_spans_kept: AtomicU64,
    late_spans_dropped: AtomicU64,
    overflow_num_traces: AtomicU64,
    overflow_max_spans: AtomicU64,
    dropped_unmatched: AtomicU64,
    pending_traces: AtomicUsize,
    decided_by: Box<[(Box<str>, AtomicU64)]>,
}

impl TailCounters {
    fn new(policies: &[Policy]) -> Self {
        TailCounters {
            traces_kept: AtomicU64::new(0),
            traces_dropped: AtomicU64::new(0),
            spans_kept: AtomicU64::new(0),
            spans_dropped: AtomicU64::new(0),
            late_spans_kept: AtomicU64::new(0),
            late_spans_dropped: AtomicU64::new(0),
            overflow_num_traces: AtomicU64::new(0),
            overflow_max_spans: AtomicU64::new(0),
            dropped_unmatched: AtomicU64::new(0),
            pending_traces: AtomicUsize::new(0),
            decided_by: policies
                .iter()
                .map(|p| (p.name.as_str().into(), AtomicU64::new(0)))
                .collect(),
        }
    }

    /// Traces kept (forwarded downstream).
    pub fn traces_kept(&self) -> u64 {
        self.traces_kept.load(Ordering::Relaxed)
    }

    /// Traces dropped.
    pub fn traces_dropped(&self) -> u64 {
        self.traces_dropped.load(Ordering::Relaxed)
    }

    /// Spans forwarded downstream (late ones included).
    pub fn spans_kept(&self) -> u64 {
        self.spans_kept.load(Ordering::Relaxed)
    }

    /// Spans dropped (late ones included).
    pub fn spans_dropped(&self) -> u64 {
        self.spans_dropped.load(Ordering::Relaxed)
    }

    /// Spans that ended after their trace was kept, forwarded at once.
    pub fn late_spans_kept(&self) -> u64 {
        self.late_spans_kept.load(Ordering::Relaxed)
    }

    /// Spans that ended after their trace was dropped.
    pub fn late_spans_dropped(&self) -> u64 {
        self.late_spans_dropped.load(Ordering::Relaxed)
    }

    /// Overflow, reason `num_traces`: traces decided on their first span
    /// because `num_traces` traces were pending.
    pub fn overflow_num_traces(&self) -> u64 {
        self.overflow_num_traces.load(Ordering::Relaxed)
    }

    /// Overflow, reason `max_spans_per_trace`: traces decided early because
    /// they reached that many spans.
    pub fn overflow_max_spans(&self) -> u64 {
        self.overflow_max_spans.load(Ordering::Relaxed)
    }

    /// Traces dropped because no policy sampled them.
    pub fn dropped_unmatched(&self) -> u64 {
        self.dropped_unmatched.load(Ordering::Relaxed)
    }

    /// Traces decided by the policy named `policy` (0 for an unknown name).
    pub fn decided_by(&self, policy: &str) -> u64 {
        self.decided_by
            .iter()
            .find(|(n, _)| &**n == policy)
            .map_or(0, |(_, c)| c.load(Ordering::Relaxed))
    }

    /// Every policy's name and [`decided_by`](Self::decided_by) count, in order.
    pub fn policies(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.decided_by
            .iter()
            .map(|(n, c)| (&**n, c.load(Ordering::Relaxed)))
    }

    /// Traces buffered now, waiting for their decision.
    pub fn pending_traces(&self) -> usize {
        self.pending_traces.load(Ordering::Relaxed)
    }

    fn add(c: &AtomicU64, n: usize) {
        c.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Reports these counters on `meter` (what
    /// [`TelemetryBuilder::tail_sampling`](crate::TelemetryBuilder::tail_sampling)
    /// does): `observe.tail_sampling.traces{decision}`,
    /// `observe.tail_sampling.spans{decision}`,
    /// `observe.tail_sampling.decisions{policy}`,
    /// `observe.tail_sampling.overflow{reason}` (counters) and
    /// `observe.tail_sampling.pending_traces` (gauge). Keep the returned
    /// instruments as long as the meter reports them.
    pub fn register(self: &Arc<Self>, meter: &opentelemetry::metrics::Meter) -> TailInstruments {
        use opentelemetry::KeyValue;
        let c = Arc::clone(self);
        let traces = meter
            .u64_observable_counter("observe.tail_sampling.traces")
            .with_description("Traces decided by the tail sampler, by decision.")
            .with_unit("{trace}")
            .with_callback(move |o| {
                o.observe(c.traces_kept(), &[KeyValue::new("decision", "kept")]);
                o.observe(c.traces_dropped(), &[KeyValue::new("decision", "dropped")]);
            })
            .build();
        let c = Arc::clone(self);
        let spans = meter
            .u64_observable_counter("observe.tail_sampling.spans")
            .with_description(
                "Spans forwarded or dropped by the tail sampler (late ones included).",
            )
            .with_unit("{span}")
            .with_callback(move |o| {
                o.observe(c.spans_kept(), &[KeyValue::new("decision", "kept")]);
                o.observe(c.spans_dropped(), &[KeyValue::new("decision", "dropped")]);
            })
            .build();
        let c = Arc::clone(self);
        let decisions = meter
            .u64_observable_counter("observe.tail_sampling.decisions")
            .with_description("Traces decided, by the policy that kept them (the first that sampled them), or `none` for the ones no policy sampled.")
            .with_unit("{trace}")
            .with_callback(move |o| {
                for (policy, n) in c.policies() {
                    o.observe(n, &[KeyValue::new("policy", policy.to_owned())]);
                }
                o.observe(c.dropped_unmatched(), &[KeyValue::new("policy", "none")]);
            })
            .build();
        let c = Arc::clone(self);
        let overflow = meter
            .u64_observable_counter("observe.tail_sampling.overflow")
            .with_description("Traces decided early because a buffer limit was reached, by limit.")
            .with_unit("{trace}")
            .with_callback(move |o| {
                o.observe(
                    c.overflow_num_traces(),
                    &[KeyValue::new("reason", "num_traces")],
                );
                o.observe(
                    c.overflow_max_spans(),
                    &[KeyValue::new("reason", "max_spans_per_trace")],
                );
            })
            .build();
        let c = Arc::clone(self);
        let pending = meter
            .u64_observable_gauge("observe.tail_sampling.pending_traces")
            .with_description("Traces buffered by the tail sampler, waiting for their decision.")
            .with_unit("{trace}")
            .with_callback(move |o| o.observe(c.pending_traces() as u64, &[]))
            .build();
        TailInstruments {
            _counters: [traces, spans, decisions, overflow],
            _pending: pending,
        }
    }
}

/// The instruments [`TailCounters::register`] made; they report while kept.
#[derive(Debug)]
pub struct TailInstruments {
    _counters: [opentelemetry::metrics::ObservableCounter<u64>; 4],
    _pending: opentelemetry::metrics::ObservableGauge<u64>,
}

// ---------------------------------------------------------------------------
// Sharded state.
// ---------------------------------------------------------------------------

/// A keyed, seeded hash of trace ids: one 64×64→128 multiply (trace ids come
/// from remote headers, so the seed keeps collisions unpredictable).
#[derive(Clone, Copy)]
struct IdHash {
    k0: u64,
    k1: u64,
}

impl IdHash {
    fn random() -> Self {
        let s = RandomState::new();
        IdHash {
            k0: s.hash_one(0x9e37_79b9_u64) | 1,
            k1: s.hash_one(0x7f4a_7c15_u64) | 1,
        }
    }

    #[inline]
    fn of(&self, id: u128) -> u64 {
        fold_mul((id as u64) ^ self.k0, ((id >> 64) as u64) ^ self.k1)
    }
}

#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

struct IdHasher {
    keys: IdHash,
    h: u64,
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.h = fold_mul(self.h ^ u64::from_le_bytes(b) ^ self.keys.k0, self.keys.k1);
        }
    }

    #[inline]
    fn write_u128(&mut self, id: u128) {
        self.h = self.keys.of(id);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.h
    }
}

impl BuildHasher for IdHash {
    type Hasher = IdHasher;

    #[inline]
    fn build_hasher(&self) -> IdHasher {
        IdHasher { keys: *self, h: 0 }
    }
}

struct Pending {
    /// In end order.
    spans: Vec<SpanData>,
    first_seen: Instant,
    /// Set when the first local root ended.
    deadline: Option<Instant>,
}

/// Recent decisions: one map, two FIFO queues bounding it.
struct Decisions {
    map: HashMap<u128, bool, IdHash>,
    kept: VecDeque<u128>,
    dropped: VecDeque<u128>,
    kept_cap: usize,
    dropped_cap: usize,
}

impl Decisions {
    fn insert(&mut self, id: u128, keep: bool) {
        let (queue, cap) = if keep {
            (&mut self.kept, self.kept_cap)
        } else {
            (&mut self.dropped, self.dropped_cap)
        };
        if cap == 0 {
            return;
        }
        if queue.len() >= cap {
            if let Some(old) = queue.pop_front() {
                if self.map.get(&old) == Some(&keep) {
                    self.map.remove(&old);
                }
            }
        }
        queue.push_back(id);
        self.map.insert(id, keep);
    }
}

struct Shard {
    pending: HashMap<u128, Pending, IdHash>,
    decided: Decisions,
    /// Traces whose first local root ended, in deadline order.
    due: VecDeque<(Instant, u128)>,
}

struct Worker {
    stop: bool,
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    shard_hash: IdHash,
    rules: Rules,
    decision_wait: Duration,
    root_wait: Duration,
    num_traces: usize,
    max_spans: usize,
    tick: Duration,
    scan_every: Duration,
    counters: Arc<TailCounters>,
    downstream: RwLock<Box<dyn SpanProcessor>>,
    resource: RwLock<Resource>,
    /// Serialises decision passes (the thread's, force_flush's, shutdown's);
    /// holds the time of the last scan for traces without a local root.
    deciding: Mutex<Instant>,
    worker: Mutex<Worker>,
    wake: Condvar,
    shut: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    #[inline]
    fn shard(&self, id: u128) -> &Mutex<Shard> {
        &self.shards[(self.shard_hash.of(id) >> 60) as usize % SHARDS]
    }

    /// Applies the policies to a whole trace and counts the decision.
    fn judge(&self, id: u128, spans: &[SpanData], res: &Resource) -> bool {
        let c = &*self.counters;
        match self.rules.verdict(id, spans, res) {
            Verdict::Kept(i) => {
                TailCounters::add(&c.traces_kept, 1);
                TailCounters::add(&c.spans_kept, spans.len());
                TailCounters::add(&c.decided_by[i].1, 1);
                true
            }
            Verdict::Dropped(why) => {
                TailCounters::add(&c.traces_dropped, 1);
                TailCounters::add(&c.spans_dropped, spans.len());
                match why {
                    Some(i) => TailCounters::add(&c.decided_by[i].1, 1),
                    None => TailCounters::add(&c.dropped_unmatched, 1),
                }
                false
            }
        }
    }

    fn forward(&self, spans: impl IntoIterator<Item = SpanData>) {
        let d = read(&self.downstream);
        for s in spans {
            d.on_end(s);
        }
    }

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() || self.shut.load(Ordering::Relaxed) {
            return;
        }
        let id = u128::from_be_bytes(span.span_context.trace_id().to_bytes());
        let local_root = span.parent_span_id == SpanId::INVALID || span.parent_span_is_remote;
        let mut guard = lock(self.shard(id));
        let shard = &mut *guard;
        if let Some(p) = shard.pending.get_mut(&id) {
            if p.spans.len() == p.spans.capacity() {
                // Grow by half, not double: a 9-span trace fills 4, 6, 9 slots
                // instead of 16 (a slot is a whole SpanData, ~350 bytes).
                p.spans.reserve_exact((p.spans.len() / 2).max(1));
            }
            p.spans.push(span);
            if local_root && p.deadline.is_none() {
                let due = Instant::now() + self.decision_wait;
                p.deadline = Some(due);
                shard.due.push_back((due, id));
            }
            if p.spans.len() < self.max_spans {
                return;
            }
            // Too many spans: decide now on what has arrived.
            let Some(p) = shard.pending.remove(&id) else {
                return;
            };
            self.counters.pending_traces.fetch_sub(1, Ordering::Relaxed);
            TailCounters::add(&self.counters.overflow_max_spans, 1);
            self.decide_now(guard, id, p.spans);
            return;
        }
        if let Some(&keep) = shard.decided.map.get(&id) {
            drop(guard);
            let c = &*self.counters;
            if keep {
                TailCounters::add(&c.late_spans_kept, 1);
                TailCounters::add(&c.spans_kept, 1);
                self.forward([span]);
            } else {
                TailCounters::add(&c.late_spans_dropped, 1);
                TailCounters::add(&c.spans_dropped, 1);
            }
            return;
        }
        let pending = &self.counters.pending_traces;
        if pending.fetch_add(1, Ordering::Relaxed) >= self.num_traces {
            pending.fetch_sub(1, Ordering::Relaxed);
            TailCounters::add(&self.counters.overflow_num_traces, 1);
            self.decide_now(guard, id, vec![span]);
            return;
        }
        let now = Instant::now();
        let deadline = local_root.then(|| now + self.decision_wait);
        if let Some(due) = deadline {
            shard.due.push_back((due, id));
        }
        let mut spans = Vec::with_capacity(4);
        spans.push(span);
        shard.pending.insert(
            id,
            Pending {
                spans,
                first_seen: now,
                deadline,
            },
        );
    }

    /// Overflow: decides a trace on the calling thread, under its shard's lock.
    fn decide_now(&self, mut shard: MutexGuard<'_, Shard>, id: u128, spans: Vec<SpanData>) {
        let keep = self.judge(id, &spans, &read(&self.resource));
        shard.decided.insert(id, keep);
        drop(shard);
        if keep {
            self.forward(spans);
        }
    }

    /// Decides the traces that are due at `now` (or all pending ones).
    fn decide(&self, now: Instant, all: bool) {
        let mut last_scan = lock(&self.deciding);
        let scan = all || now.saturating_duration_since(*last_scan) >= self.scan_every;
        if scan {
            *last_scan = now;
        }
        let res = read(&self.resource).clone();
        let mut ready: Vec<(u128, Vec<SpanData>)> = Vec::new();
        let mut kept: Vec<SpanData> = Vec::new();
        let mut trash: Vec<Vec<SpanData>> = Vec::new();
        for shard in self.shards.iter() {
            {
                let mut guard = lock(shard);
                let s = &mut *guard;
                if all {
                    ready.extend(s.pending.drain().map(|(id, p)| (id, p.spans)));
                    s.due.clear();
                } else {
                    while let Some(&(due, id)) = s.due.front() {
                        if due > now {
                            break;
                        }
                        s.due.pop_front();
                        if s.pending.get(&id).is_some_and(|p| p.deadline == Some(due)) {
                            if let Some(p) = s.pending.remove(&id) {
                                ready.push((id, p.spans));
                            }
                        }
                    }
                    if scan {
                        let root_wait = self.root_wait;
                        s.pending.retain(|id, p| {
                            let orphan = p.deadline.is_none()
                                && now.saturating_duration_since(p.first_seen) >= root_wait;
                            if orphan {
                                ready.push((*id, std::mem::take(&mut p.spans)));
                            }
                            !orphan
                        });
                    }
                }
                if ready.is_empty() {
                    continue;
                }
                self.counters
                    .pending_traces
                    .fetch_sub(ready.len(), Ordering::Relaxed);
                for (id, spans) in ready.drain(..) {
                    let keep = self.judge(id, &spans, &res);
                    s.decided.insert(id, keep);
                    if keep {
                        kept.extend(spans);
                    } else {
                        trash.push(spans);
                    }
                }
            }
            // Outside the shard's lock: forward, and free dropped spans.
            self.forward(kept.drain(..));
            trash.clear();
        }
    }
}

fn run(inner: Arc<Inner>) {
    loop {
        {
            let guard = lock(&inner.worker);
            if guard.stop {
                return;
            }
            let (guard, _) = inner
                .wake
                .wait_timeout(guard, inner.tick)
                .unwrap_or_else(PoisonError::into_inner);
            if guard.stop {
                return;
            }
        }
        inner.decide(Instant::now(), false);
    }
}

// ---------------------------------------------------------------------------
// The processor.
// ---------------------------------------------------------------------------

/// The tail-sampling span processor. See the [module docs](self).
///
/// ```
/// use observe_core::export::tail::TailSampling;
/// use observe_core::opentelemetry_sdk::trace::{BatchSpanProcessor, InMemorySpanExporter};
///
/// // Kept traces go on to a batch processor and its exporter (OTLP in production).
/// let batch = BatchSpanProcessor::builder(InMemorySpanExporter::default()).build();
/// let tail = TailSampling::builder(batch).build()?;
/// assert_eq!(tail.counters().pending_traces(), 0);
/// # Ok::<(), observe_core::export::tail::TailSamplingError>(())
/// ```
pub struct TailSampling {
    inner: Arc<Inner>,
    config: TailSamplingConfig,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for TailSampling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TailSampling")
            .field("config", &self.config)
            .field("counters", &self.inner.counters)
            .finish_non_exhaustive()
    }
}

/// Builds a [`TailSampling`]; starts from observe's defaults.
#[derive(Debug)]
pub struct TailSamplingBuilder {
    downstream: Box<dyn SpanProcessor>,
    config: TailSamplingConfig,
}

impl TailSampling {
    /// A builder with observe's defaults, forwarding kept traces to `downstream`.
    pub fn builder(downstream: impl SpanProcessor + 'static) -> TailSamplingBuilder {
        TailSamplingBuilder {
            downstream: Box::new(downstream),
            config: TailSamplingConfig::default(),
        }
    }

    /// The decision counters (shared: keep the `Arc` to read them later).
    pub fn counters(&self) -> Arc<TailCounters> {
        Arc::clone(&self.inner.counters)
    }

    /// The configuration in force.
    pub fn config(&self) -> &TailSamplingConfig {
        &self.config
    }

    fn stop_thread(&self, timeout: Duration) -> OTelSdkResult {
        lock(&self.inner.worker).stop = true;
        self.inner.wake.notify_all();
        let Some(handle) = lock(&self.thread).take() else {
            return Ok(());
        };
        let start = Instant::now();
        while !handle.is_finished() {
            if start.elapsed() >= timeout {
                return Err(OTelSdkError::Timeout(timeout));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        handle
            .join()
            .map_err(|_| OTelSdkError::InternalFailure("tail sampling thread panicked".into()))
    }
}

impl TailSamplingBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: TailSamplingConfig) -> Self {
        self.config = config;
        self
    }

    /// `decision_wait`: wait after a trace's first local root ended (default 1 s).
    pub fn decision_wait(mut self, wait: Duration) -> Self {
        self.config.decision_wait = wait;
        self
    }

    /// `num_traces`: most traces buffered at once (default 10 000).
    pub fn num_traces(mut self, n: usize) -> Self {
        self.config.num_traces = n;
        self
    }

    /// `decision_cache`: recent decisions remembered for late spans.
    pub fn decision_cache(
        mut self,
        sampled_cache_size: usize,
        non_sampled_cache_size: usize,
    ) -> Self {
        self.config.decision_cache = DecisionCacheCfg {
            sampled_cache_size,
            non_sampled_cache_size,
        };
        self
    }

    /// `policies`: replaces the default policies.
    pub fn policies(mut self, policies: impl IntoIterator<Item = Policy>) -> Self {
        self.config.policies = policies.into_iter().collect();
        self
    }

    /// Appends one policy to the current list (the defaults, unless replaced).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.config.policies.push(policy);
        self
    }

    /// Observe only: longest wait for a local root (default 30 s).
    pub fn root_wait(mut self, wait: Duration) -> Self {
        self.config.root_wait = wait;
        self
    }

    /// Observe only: a trace with this many spans is decided at once (default 1 000).
    pub fn max_spans_per_trace(mut self, n: usize) -> Self {
        self.config.max_spans_per_trace = n;
        self
    }

    /// Checks the policies and starts the decision thread.
    pub fn build(self) -> Result<TailSampling, TailSamplingError> {
        let cfg = self.config;
        let rules = Rules::new(&cfg.policies)?;
        if cfg.num_traces == 0 {
            return Err(TailSamplingError::Zero {
                field: "num_traces",
            });
        }
        if cfg.max_spans_per_trace == 0 {
            return Err(TailSamplingError::Zero {
                field: "max_spans_per_trace",
            });
        }
        let map_hash = IdHash::random();
        let per_shard = |n: usize| n.div_ceil(SHARDS);
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    pending: HashMap::with_hasher(map_hash),
                    decided: Decisions {
                        map: HashMap::with_hasher(map_hash),
                        kept: VecDeque::new(),
                        dropped: VecDeque::new(),
                        kept_cap: per_shard(cfg.decision_cache.sampled_cache_size),
                        dropped_cap: per_shard(cfg.decision_cache.non_sampled_cache_size),
                    },
                    due: VecDeque::new(),
                })
            })
            .collect();
        let inner = Arc::new(Inner {
            shards,
            shard_hash: IdHash::random(),
            rules,
            decision_wait: cfg.decision_wait,
            root_wait: cfg.root_wait,
            num_traces: cfg.num_traces,
            max_spans: cfg.max_spans_per_trace,
            tick: (cfg.decision_wait / 8)
                .clamp(Duration::from_millis(1), Duration::from_millis(100)),
            scan_every: (cfg.root_wait / 8).clamp(Duration::from_millis(1), Duration::from_secs(1)),
            counters: Arc::new(TailCounters::new(&cfg.policies)),
            downstream: RwLock::new(self.downstream),
            resource: RwLock::new(Resource::builder_empty().build()),
            deciding: Mutex::new(Instant::now()),
            worker: Mutex::new(Worker { stop: false }),
            wake: Condvar::new(),
            shut: AtomicBool::new(false),
        });
        let for_thread = Arc::clone(&inner);
        let handle = std::thread::Builder::new()
            .name("observe-tail-sampling".into())
            .spawn(move || run(for_thread))
            .map_err(TailSamplingError::Thread)?;
        Ok(TailSampling {
            inner,
            config: cfg,
            thread: Mutex::new(Some(handle)),
        })
    }
}

impl SpanProcessor for TailSampling {
    /// Called on the thread that starts a span (OpenTelemetry API spans only;
    /// observe's layer does not call it). Passes it to the downstream
    /// processor; does not block.
    fn on_start(&self, span: &mut Span, cx: &Context) {
        read(&self.inner.downstream).on_start(span, cx);
    }

    /// Called on the thread that ended the span: a request's. Locks one of 16
    /// shards for a hash-map lookup and a push (no allocation beyond the
    /// buffer's amortised growth); never waits for the decision thread.
    /// Overflowed traces and late spans of kept traces are passed to the
    /// downstream `on_end` from this thread.
    fn on_end(&self, span: SpanData) {
        self.inner.on_end(span);
    }

    /// Called from any thread (the telemetry guard's flush). Decides every
    /// pending trace now, as if its wait had elapsed, forwards the kept ones,
    /// then flushes downstream: blocks for as long as that takes.
    fn force_flush(&self) -> OTelSdkResult {
        if self.inner.shut.load(Ordering::Acquire) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        self.inner.decide(Instant::now(), true);
        read(&self.inner.downstream).force_flush()
    }

    /// Called once, from any thread (the telemetry guard). Decides every
    /// pending trace, stops the decision thread, then shuts down downstream
    /// with what is left of `timeout`. Blocks; later spans are ignored.
    /// A second call returns `AlreadyShutdown`.
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let start = Instant::now();
        if self.inner.shut.swap(true, Ordering::AcqRel) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        self.inner.decide(Instant::now(), true);
        let stopped = self.stop_thread(timeout);
        let left = timeout.saturating_sub(start.elapsed());
        let down = read(&self.inner.downstream).shutdown_with_timeout(left);
        stopped.and(down)
    }

    /// Called once while the pipeline is built, before any span. Attribute
    /// policies also match the resource's attributes; passed downstream.
    fn set_resource(&mut self, resource: &Resource) {
        *write(&self.inner.resource) = resource.clone();
        write(&self.inner.downstream).set_resource(resource);
    }
}

impl Drop for TailSampling {
    /// Decides what is pending and shuts down downstream, unless already shut down.
    fn drop(&mut self) {
        if !self.inner.shut.load(Ordering::Acquire) {
            let _ = self.shutdown_with_timeout(Duration::from_secs(5));
        }
        let _ = self.stop_thread(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanKind, TraceFlags, TraceId, TraceState};
    use opentelemetry::KeyValue;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
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
                PolicyKind::Latency(LatencyCfg {
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
            "status_code" => PolicyKind::StatusCode(StatusCodeCfg {
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
            "latency" => PolicyKind::Latency(LatencyCfg {
                threshold_ms: cfg["threshold_ms"].as_i64().expect("threshold_ms") as u64,
                upper_threshold_ms: cfg["upper_threshold_ms"].as_i64().unwrap_or(0) as u64,
            }),
            "boolean_attribute" => PolicyKind::BooleanAttribute(BooleanAttributeCfg {
                key: key(),
                value: cfg["value"].as_bool().expect("value is a boolean"),
            }),
            "string_attribute" => PolicyKind::StringAttribute(StringAttributeCfg {
                key: key(),
                values: cfg["values"]
                    .as_vec()
                    .expect("values is a list")
                    .iter()
                    .map(|v| text(v, "value"))
                    .collect(),
            }),
            "numeric_attribute" => PolicyKind::NumericAttribute(NumericAttributeCfg {
                key: key(),
                min_value: cfg["min_value"].as_i64(),
                max_value: cfg["max_value"].as_i64(),
            }),
            "probabilistic" => PolicyKind::Probabilistic(ProbabilisticCfg {
                sampling_percentage: number(&cfg["sampling_percentage"])
                    .expect("sampling_percentage is a number"),
            }),
            "and" => PolicyKind::And(AndCfg {
                and_sub_policy: cfg["and_sub_policy"]
                    .as_vec()
                    .expect("and_sub_policy")
                    .iter()
                    .map(policy_from_yaml)
                    .collect(),
            }),
            "drop" => PolicyKind::Drop(DropCfg {
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
            let docs = YamlLoader::load_from_str(&src)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
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
                        let ok = defined.contains(&c)
                            || (role != "processors" && connectors.contains(&c));
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
                // The exact figures the issue names.
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
}
