//! Decision counters and the instruments that report them.

use super::config::Policy;
use crate::signals::names::{self, row_of};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Decision counters, updated with relaxed atomics; read them at any time
/// from any thread (for metrics: each getter is a monotonic counter except
/// [`pending_traces`](Self::pending_traces), a gauge).
///
/// Every decided trace is counted once, as kept or dropped, with one reason:
/// [`decided_by`](Self::decided_by) the first sampling policy (kept), the
/// first matching `drop` policy (dropped), or [`dropped_unmatched`](Self::dropped_unmatched).
#[derive(Debug)]
pub struct TailCounters {
    pub(super) traces_kept: AtomicU64,
    pub(super) traces_dropped: AtomicU64,
    pub(super) spans_kept: AtomicU64,
    pub(super) spans_dropped: AtomicU64,
    pub(super) late_spans_kept: AtomicU64,
    pub(super) late_spans_dropped: AtomicU64,
    pub(super) overflow_num_traces: AtomicU64,
    pub(super) overflow_max_spans: AtomicU64,
    pub(super) dropped_unmatched: AtomicU64,
    pub(super) pending_traces: AtomicUsize,
    pub(super) decided_by: Box<[(Box<str>, AtomicU64)]>,
}

impl TailCounters {
    pub(super) fn new(policies: &[Policy]) -> Self {
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

    pub(super) fn add(c: &AtomicU64, n: usize) {
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
            .u64_observable_counter(names::TAIL_SAMPLING_TRACES)
            .with_description(row_of!(names::TAIL_SAMPLING_TRACES).description)
            .with_unit(row_of!(names::TAIL_SAMPLING_TRACES).unit)
            .with_callback(move |o| {
                o.observe(c.traces_kept(), &[KeyValue::new("decision", "kept")]);
                o.observe(c.traces_dropped(), &[KeyValue::new("decision", "dropped")]);
            })
            .build();
        let c = Arc::clone(self);
        let spans = meter
            .u64_observable_counter(names::TAIL_SAMPLING_SPANS)
            .with_description(row_of!(names::TAIL_SAMPLING_SPANS).description)
            .with_unit(row_of!(names::TAIL_SAMPLING_SPANS).unit)
            .with_callback(move |o| {
                o.observe(c.spans_kept(), &[KeyValue::new("decision", "kept")]);
                o.observe(c.spans_dropped(), &[KeyValue::new("decision", "dropped")]);
            })
            .build();
        let c = Arc::clone(self);
        let decisions = meter
            .u64_observable_counter(names::TAIL_SAMPLING_DECISIONS)
            .with_description(row_of!(names::TAIL_SAMPLING_DECISIONS).description)
            .with_unit(row_of!(names::TAIL_SAMPLING_DECISIONS).unit)
            .with_callback(move |o| {
                for (policy, n) in c.policies() {
                    o.observe(n, &[KeyValue::new("policy", policy.to_owned())]);
                }
                o.observe(c.dropped_unmatched(), &[KeyValue::new("policy", "none")]);
            })
            .build();
        let c = Arc::clone(self);
        let overflow = meter
            .u64_observable_counter(names::TAIL_SAMPLING_OVERFLOW)
            .with_description(row_of!(names::TAIL_SAMPLING_OVERFLOW).description)
            .with_unit(row_of!(names::TAIL_SAMPLING_OVERFLOW).unit)
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
            .u64_observable_gauge(names::TAIL_SAMPLING_PENDING_TRACES)
            .with_description(row_of!(names::TAIL_SAMPLING_PENDING_TRACES).description)
            .with_unit(row_of!(names::TAIL_SAMPLING_PENDING_TRACES).unit)
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
    pub(super) _counters: [opentelemetry::metrics::ObservableCounter<u64>; 4],
    pub(super) _pending: opentelemetry::metrics::ObservableGauge<u64>,
}
