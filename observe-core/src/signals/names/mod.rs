//! Every instrument observe records, in one table ([`ALL`]): its
//! OpenTelemetry name, kind, unit and description. The Prometheus name each
//! is exposed under (what alert rules and dashboards query) follows from the
//! table through the Collector's naming translation
//! ([`Instrument::prometheus_name`]).
//!
//! ```
//! use observe_core::signals::names;
//!
//! let duration = names::instrument(names::HTTP_SERVER_REQUEST_DURATION).expect("in the table");
//! assert_eq!(duration.unit, "s");
//! assert_eq!(duration.prometheus_name(), "http_server_request_duration_seconds");
//! assert_eq!(
//!     names::instrument(names::GATEWAY_REQUESTS).map(|i| i.prometheus_name()).as_deref(),
//!     Some("external_gateway_requests_total"),
//! );
//! ```

mod prometheus;

pub(crate) use prometheus::{label_name, metric_name, Kind};

/// Server request duration.
pub const HTTP_SERVER_REQUEST_DURATION: &str = "http.server.request.duration";
/// In-flight server requests.
pub const HTTP_SERVER_ACTIVE_REQUESTS: &str = "http.server.active_requests";
/// Requests answered 2xx although a gateway call inside them failed.
pub const MASKED_FAILURES: &str = "observe.masked_failures";
/// Client request duration.
pub const HTTP_CLIENT_REQUEST_DURATION: &str = "http.client.request.duration";
/// Gateway calls by outcome.
pub const GATEWAY_REQUESTS: &str = "external_gateway.requests";
/// Gateway call duration.
pub const GATEWAY_REQUEST_DURATION: &str = "external_gateway.request.duration";
/// gRPC server call duration, until the response stream ended (semantic
/// conventions v1.44.0 `rpc.server.call.duration`).
pub const RPC_SERVER_CALL_DURATION: &str = "rpc.server.call.duration";
/// gRPC server calls in progress (observe's: the conventions define none).
pub const RPC_SERVER_ACTIVE_CALLS: &str = "observe.rpc.server.active_calls";
/// gRPC client call duration (semantic conventions v1.44.0 `rpc.client.call.duration`).
pub const RPC_CLIENT_CALL_DURATION: &str = "rpc.client.call.duration";
/// `#[observed]` calls by result.
pub const OBSERVED_CALLS: &str = "observed.calls";
/// `#[observed]` call duration.
pub const OBSERVED_DURATION: &str = "observed.duration";
/// `#[observed]` calls in progress.
pub const OBSERVED_ACTIVE: &str = "observed.active";
/// Utilisation of a constrained resource, 0..1.
pub const RESOURCE_UTILIZATION: &str = "observe.resource.utilization";
/// Log lines not written (`reason` = `sampled` | `request_buffer_full` | `queue_full`).
pub const LOGS_DROPPED: &str = "observe.logs.dropped";
/// Sampled-out lines held in a request's buffer (`outcome` = `written` | `discarded`).
pub const LOGS_BUFFERED: &str = "observe.logs.buffered";
/// Telemetry items that never reached the receiver (`signal`, `reason`).
pub const TELEMETRY_DROPPED: &str = "observe.telemetry.dropped";
/// OTLP export attempts made again after a retryable failure (`signal`).
pub const TELEMETRY_EXPORT_RETRIES: &str = "observe.telemetry.export.retries";
/// Traces decided by the tail sampler (`decision`).
pub const TAIL_SAMPLING_TRACES: &str = "observe.tail_sampling.traces";
/// Spans forwarded or dropped by the tail sampler (`decision`).
pub const TAIL_SAMPLING_SPANS: &str = "observe.tail_sampling.spans";
/// Traces decided, by the policy that kept them (`policy`).
pub const TAIL_SAMPLING_DECISIONS: &str = "observe.tail_sampling.decisions";
/// Traces decided early because a buffer limit was reached (`reason`).
pub const TAIL_SAMPLING_OVERFLOW: &str = "observe.tail_sampling.overflow";
/// Traces waiting for their tail-sampling decision.
pub const TAIL_SAMPLING_PENDING_TRACES: &str = "observe.tail_sampling.pending_traces";
/// Duration of each step of a synthetic flow, in seconds.
pub const SYNTHETIC_CHECK_DURATION: &str = "synthetic.check.duration";
/// Steps of synthetic flows run, by outcome.
pub const SYNTHETIC_CHECKS: &str = "synthetic.checks";
/// 1 if the flow's last run succeeded, 0 if it failed (like the blackbox
/// exporter's `probe_success`).
pub const SYNTHETIC_CHECK_SUCCESS: &str = "synthetic.check.success";

/// Worker threads of the tokio runtime (`RuntimeMetrics::num_workers`).
pub const TOKIO_WORKER_COUNT: &str = "tokio.runtime.worker.count";
/// Tasks alive in the tokio runtime: spawned, not yet completed
/// (`RuntimeMetrics::num_alive_tasks`).
pub const TOKIO_TASK_COUNT: &str = "tokio.runtime.task.count";
/// Tasks waiting in the runtime's global (injection) queue
/// (`RuntimeMetrics::global_queue_depth`).
pub const TOKIO_GLOBAL_QUEUE_DEPTH: &str = "tokio.runtime.global_queue.depth";
/// Time the runtime's workers spent busy, summed over the workers
/// (`RuntimeMetrics::worker_total_busy_duration`).
pub const TOKIO_WORKER_BUSY_TIME: &str = "tokio.runtime.worker.busy_time";
/// Times the runtime's workers parked (ran out of work), summed over the
/// workers (`RuntimeMetrics::worker_park_count`).
pub const TOKIO_WORKER_PARK_COUNT: &str = "tokio.runtime.worker.park.count";

/// Semantic-convention bucket boundaries for HTTP durations (seconds): the
/// bounds of every duration histogram observe records.
pub const HTTP_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// How an instrument aggregates (what decides its Prometheus type and suffix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstrumentKind {
    /// A monotonic sum (synchronous or observable): a Prometheus counter, `_total`.
    Counter,
    /// A sum that goes up and down: a Prometheus gauge.
    UpDownCounter,
    /// An explicit-bucket histogram: `_bucket`, `_count`, `_sum`.
    Histogram,
    /// A last value: a Prometheus gauge.
    Gauge,
}

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instrument {
    /// The OpenTelemetry name.
    pub name: &'static str,
    /// How it aggregates.
    pub kind: InstrumentKind,
    /// Its UCUM unit (`""` for none).
    pub unit: &'static str,
    /// What it measures (the Prometheus `# HELP`).
    pub description: &'static str,
}

impl Instrument {
    /// The Prometheus metric family name the OpenTelemetry Collector (and
    /// observe's own exporter) exposes it under: dots become underscores,
    /// the unit a suffix, counters end in `_total`.
    pub fn prometheus_name(&self) -> String {
        let kind = match self.kind {
            InstrumentKind::Counter => Kind::MonotonicCounter,
            InstrumentKind::UpDownCounter => Kind::NonMonotonicCounter,
            InstrumentKind::Histogram => Kind::Histogram,
            InstrumentKind::Gauge => Kind::Gauge,
        };
        metric_name(self.name, self.unit, kind).unwrap_or_default()
    }
}

const fn row(
    name: &'static str,
    kind: InstrumentKind,
    unit: &'static str,
    description: &'static str,
) -> Instrument {
    Instrument {
        name,
        kind,
        unit,
        description,
    }
}

use InstrumentKind::{Counter, Gauge, Histogram, UpDownCounter};

/// Every instrument observe records: the golden signals, observe's own
/// health, the tail sampler's counters and the synthetic checks.
pub const ALL: &[Instrument] = &[
    row(HTTP_SERVER_REQUEST_DURATION, Histogram, "s", "Duration of HTTP server requests, until the response body ended."),
    row(HTTP_SERVER_ACTIVE_REQUESTS, UpDownCounter, "{request}", "Number of active HTTP server requests."),
    row(MASKED_FAILURES, Counter, "{failure}", "Requests answered 2xx although a gateway call inside them failed."),
    row(HTTP_CLIENT_REQUEST_DURATION, Histogram, "s", "Duration of HTTP client requests."),
    row(GATEWAY_REQUESTS, Counter, "{request}", "Calls to external gateways, by outcome."),
    row(GATEWAY_REQUEST_DURATION, Histogram, "s", "Duration of calls to external gateways."),
    row(RPC_SERVER_CALL_DURATION, Histogram, "s", "Duration of gRPC server calls, until the response stream ended."),
    row(RPC_SERVER_ACTIVE_CALLS, UpDownCounter, "{call}", "Number of gRPC server calls in progress."),
    row(RPC_CLIENT_CALL_DURATION, Histogram, "s", "Duration of gRPC client calls, until the response stream ended."),
    row(OBSERVED_CALLS, Counter, "{call}", "Calls of #[observed] functions, by result."),
    row(OBSERVED_DURATION, Histogram, "s", "Duration of #[observed] functions."),
    row(OBSERVED_ACTIVE, UpDownCounter, "{call}", "#[observed] calls in progress."),
    row(RESOURCE_UTILIZATION, Gauge, "", "Utilisation of a constrained resource, from 0 to 1."),
    row(LOGS_DROPPED, Counter, "{line}", "Log lines not written, by reason."),
    row(LOGS_BUFFERED, Counter, "{line}", "Sampled-out lines held in a request's buffer, by outcome."),
    row(TELEMETRY_DROPPED, Counter, "{item}", "Spans, log records and metric points that never reached the receiver, by signal and reason."),
    row(TELEMETRY_EXPORT_RETRIES, Counter, "{retry}", "OTLP export attempts made again after a retryable failure (receiver unavailable or throttling), by signal."),
    row(TAIL_SAMPLING_TRACES, Counter, "{trace}", "Traces decided by the tail sampler, by decision."),
    row(TAIL_SAMPLING_SPANS, Counter, "{span}", "Spans forwarded or dropped by the tail sampler (late ones included)."),
    row(TAIL_SAMPLING_DECISIONS, Counter, "{trace}", "Traces decided, by the policy that kept them (the first that sampled them), or `none` for the ones no policy sampled."),
    row(TAIL_SAMPLING_OVERFLOW, Counter, "{trace}", "Traces decided early because a buffer limit was reached, by limit."),
    row(TAIL_SAMPLING_PENDING_TRACES, Gauge, "{trace}", "Traces buffered by the tail sampler, waiting for their decision."),
    row(SYNTHETIC_CHECK_DURATION, Histogram, "s", "Duration of each step of a synthetic flow."),
    row(SYNTHETIC_CHECKS, Counter, "{check}", "Steps of synthetic flows run, by outcome."),
    row(SYNTHETIC_CHECK_SUCCESS, Gauge, "", "1 if the last run of a synthetic flow succeeded, else 0."),
    row(TOKIO_WORKER_COUNT, Gauge, "{worker}", "Worker threads of the tokio runtime."),
    row(TOKIO_TASK_COUNT, Gauge, "{task}", "Tasks alive in the tokio runtime (spawned, not yet completed)."),
    row(TOKIO_GLOBAL_QUEUE_DEPTH, Gauge, "{task}", "Tasks waiting in the tokio runtime's global queue."),
    row(TOKIO_WORKER_BUSY_TIME, Counter, "s", "Time the tokio runtime's workers spent busy, summed over the workers."),
    row(TOKIO_WORKER_PARK_COUNT, Counter, "{park}", "Times the tokio runtime's workers parked, summed over the workers."),
];

/// The row of the instrument called `name`.
pub const fn instrument(name: &str) -> Option<&'static Instrument> {
    let mut i = 0;
    while i < ALL.len() {
        if bytes_eq(ALL[i].name.as_bytes(), name.as_bytes()) {
            return Some(&ALL[i]);
        }
        i += 1;
    }
    None
}

const fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The row of `name`, checked when observe is compiled: every instrument
/// observe creates goes through this, so none is missing from the table.
macro_rules! row_of {
    ($name:expr) => {{
        const ROW: &$crate::signals::names::Instrument =
            match $crate::signals::names::instrument($name) {
                Some(r) => r,
                None => panic!("an instrument missing from signals::names::ALL"),
            };
        ROW
    }};
}
pub(crate) use row_of;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_translate_to_prometheus_names() {
        for (i, a) in ALL.iter().enumerate() {
            assert!(ALL[i + 1..].iter().all(|b| b.name != a.name), "{}", a.name);
            let p = a.prometheus_name();
            assert!(!p.is_empty() && !p.contains('.'), "{} -> {p}", a.name);
            assert_eq!(
                a.kind == InstrumentKind::Counter,
                p.ends_with("_total"),
                "{p}"
            );
        }
        let p = |n| instrument(n).map(Instrument::prometheus_name);
        assert_eq!(p(OBSERVED_ACTIVE).as_deref(), Some("observed_active"));
        assert_eq!(
            p(RESOURCE_UTILIZATION).as_deref(),
            Some("observe_resource_utilization")
        );
        assert_eq!(
            p(SYNTHETIC_CHECK_SUCCESS).as_deref(),
            Some("synthetic_check_success")
        );
        assert_eq!(
            p(TELEMETRY_DROPPED).as_deref(),
            Some("observe_telemetry_dropped_total")
        );
        assert_eq!(
            p(TELEMETRY_EXPORT_RETRIES).as_deref(),
            Some("observe_telemetry_export_retries_total")
        );
        assert_eq!(
            p(RPC_SERVER_CALL_DURATION).as_deref(),
            Some("rpc_server_call_duration_seconds")
        );
        assert_eq!(
            p(RPC_SERVER_ACTIVE_CALLS).as_deref(),
            Some("observe_rpc_server_active_calls")
        );
        assert_eq!(
            p(RPC_CLIENT_CALL_DURATION).as_deref(),
            Some("rpc_client_call_duration_seconds")
        );
        assert_eq!(
            p(TOKIO_WORKER_COUNT).as_deref(),
            Some("tokio_runtime_worker_count")
        );
        assert_eq!(
            p(TOKIO_TASK_COUNT).as_deref(),
            Some("tokio_runtime_task_count")
        );
        assert_eq!(
            p(TOKIO_GLOBAL_QUEUE_DEPTH).as_deref(),
            Some("tokio_runtime_global_queue_depth")
        );
        assert_eq!(
            p(TOKIO_WORKER_BUSY_TIME).as_deref(),
            Some("tokio_runtime_worker_busy_time_seconds_total")
        );
        assert_eq!(
            p(TOKIO_WORKER_PARK_COUNT).as_deref(),
            Some("tokio_runtime_worker_park_count_total")
        );
        assert_eq!(instrument("no.such.instrument"), None);
    }
}
