//! Prometheus names of everything the SDK emits, and the alert names that
//! [`AlertSpec`](super::AlertSpec) generates.
//!
//! These are the names as the OpenTelemetry Collector's Prometheus exporter
//! translates the SDK's OpenTelemetry instruments (dots become underscores,
//! units become suffixes, counters get `_total`, histograms are exposed as
//! `_bucket`/`_count`/`_sum`). The service is the `job` label, which is what
//! Prometheus and the Collector derive from `service.name`.
//!
//! They are a fixed interface: generated rules, dashboards and tests all use
//! these constants, never string literals. Each is the translation of a row
//! of observe's one table of instruments (`observe_core::signals::names`),
//! which a test asserts, so the rules cannot drift from what is recorded.
//!
//! ```
//! use observe_alerts::names;
//!
//! assert_eq!(names::HTTP_SERVER_REQUEST_DURATION_COUNT, "http_server_request_duration_seconds_count");
//! assert!(names::ALL_SERIES.contains(&names::EXTERNAL_GATEWAY_REQUESTS_TOTAL));
//! ```

/// Histogram of server request durations, in seconds (OTel `http.server.request.duration`).
///
/// Labels: `http_request_method`, `http_route`, `http_response_status_code`,
/// `error_type` (absent or empty on success), `job`, `instance`, optional `synthetic="true"`.
pub const HTTP_SERVER_REQUEST_DURATION: &str = "http_server_request_duration_seconds";
/// `_bucket` series of [`HTTP_SERVER_REQUEST_DURATION`].
pub const HTTP_SERVER_REQUEST_DURATION_BUCKET: &str = "http_server_request_duration_seconds_bucket";
/// `_count` series of [`HTTP_SERVER_REQUEST_DURATION`]: the request counter.
pub const HTTP_SERVER_REQUEST_DURATION_COUNT: &str = "http_server_request_duration_seconds_count";
/// `_sum` series of [`HTTP_SERVER_REQUEST_DURATION`].
pub const HTTP_SERVER_REQUEST_DURATION_SUM: &str = "http_server_request_duration_seconds_sum";

/// Gauge of in-flight server requests. Labels: `http_request_method`, `job`, `instance`.
pub const HTTP_SERVER_ACTIVE_REQUESTS: &str = "http_server_active_requests";

/// Histogram of gRPC server call durations, in seconds (OTel
/// `rpc.server.call.duration`, semantic conventions v1.44.0).
///
/// Labels: `rpc_system_name` (`grpc`), `rpc_method` (`package.Service/Method`
/// or `_OTHER`), `rpc_response_status_code` (`OK`, `NOT_FOUND`, ...),
/// `error_type` (absent on success), `job`, `instance`, optional `synthetic="true"`.
pub const RPC_SERVER_CALL_DURATION: &str = "rpc_server_call_duration_seconds";
/// `_bucket` series of [`RPC_SERVER_CALL_DURATION`].
pub const RPC_SERVER_CALL_DURATION_BUCKET: &str = "rpc_server_call_duration_seconds_bucket";
/// `_count` series of [`RPC_SERVER_CALL_DURATION`]: the call counter.
pub const RPC_SERVER_CALL_DURATION_COUNT: &str = "rpc_server_call_duration_seconds_count";
/// `_sum` series of [`RPC_SERVER_CALL_DURATION`].
pub const RPC_SERVER_CALL_DURATION_SUM: &str = "rpc_server_call_duration_seconds_sum";

/// Gauge of gRPC server calls in progress (OTel `observe.rpc.server.active_calls`).
/// Labels: `rpc_system_name`, `rpc_method`, `job`, `instance`.
pub const OBSERVE_RPC_SERVER_ACTIVE_CALLS: &str = "observe_rpc_server_active_calls";

/// Histogram of gRPC client call durations, in seconds (OTel `rpc.client.call.duration`).
/// Labels: `rpc_system_name`, `rpc_method`, `rpc_response_status_code`,
/// `error_type`, `server_address`, `gateway`, `job`.
pub const RPC_CLIENT_CALL_DURATION: &str = "rpc_client_call_duration_seconds";
/// `_bucket` series of [`RPC_CLIENT_CALL_DURATION`].
pub const RPC_CLIENT_CALL_DURATION_BUCKET: &str = "rpc_client_call_duration_seconds_bucket";
/// `_count` series of [`RPC_CLIENT_CALL_DURATION`].
pub const RPC_CLIENT_CALL_DURATION_COUNT: &str = "rpc_client_call_duration_seconds_count";
/// `_sum` series of [`RPC_CLIENT_CALL_DURATION`].
pub const RPC_CLIENT_CALL_DURATION_SUM: &str = "rpc_client_call_duration_seconds_sum";

/// Counter of calls to external gateways.
///
/// Labels: `gateway`, `status` (`success`, `error` or `timeout`), `error_type`, `job`.
pub const EXTERNAL_GATEWAY_REQUESTS_TOTAL: &str = "external_gateway_requests_total";

/// Histogram of external gateway call durations, in seconds. Labels: `gateway`, `status`, `job`.
pub const EXTERNAL_GATEWAY_REQUEST_DURATION: &str = "external_gateway_request_duration_seconds";
/// `_bucket` series of [`EXTERNAL_GATEWAY_REQUEST_DURATION`].
pub const EXTERNAL_GATEWAY_REQUEST_DURATION_BUCKET: &str =
    "external_gateway_request_duration_seconds_bucket";
/// `_count` series of [`EXTERNAL_GATEWAY_REQUEST_DURATION`].
pub const EXTERNAL_GATEWAY_REQUEST_DURATION_COUNT: &str =
    "external_gateway_request_duration_seconds_count";
/// `_sum` series of [`EXTERNAL_GATEWAY_REQUEST_DURATION`].
pub const EXTERNAL_GATEWAY_REQUEST_DURATION_SUM: &str =
    "external_gateway_request_duration_seconds_sum";

/// Counter of failures that a handler masked (for example a 200 answer after
/// a failed gateway call). Labels: `http_route` (HTTP) or `rpc_method`
/// (gRPC), `gateway`, `job`.
pub const OBSERVE_MASKED_FAILURES_TOTAL: &str = "observe_masked_failures_total";

/// Gauge (0..1) of how full a constrained resource is. Labels: `resource`, `job`.
pub const OBSERVE_RESOURCE_UTILIZATION: &str = "observe_resource_utilization";

/// Gauge: worker threads of the service's tokio runtime. Labels: `job`, `instance`.
pub const TOKIO_RUNTIME_WORKER_COUNT: &str = "tokio_runtime_worker_count";
/// Counter (seconds): time the runtime's workers spent busy, summed over
/// the workers. Labels: `job`, `instance`.
pub const TOKIO_RUNTIME_WORKER_BUSY_TIME_SECONDS_TOTAL: &str =
    "tokio_runtime_worker_busy_time_seconds_total";

/// Gauge (0 or 1): did the last run of a synthetic flow succeed. Labels: `flow`, `region`.
pub const SYNTHETIC_CHECK_SUCCESS: &str = "synthetic_check_success";
/// Counter of synthetic check steps. Labels: `flow`, `step`, `region`, `outcome`.
pub const SYNTHETIC_CHECKS_TOTAL: &str = "synthetic_checks_total";
/// Histogram of synthetic step durations, in seconds. Labels: `flow`, `step`, `region`.
pub const SYNTHETIC_CHECK_DURATION: &str = "synthetic_check_duration_seconds";
/// `_bucket` series of [`SYNTHETIC_CHECK_DURATION`].
pub const SYNTHETIC_CHECK_DURATION_BUCKET: &str = "synthetic_check_duration_seconds_bucket";
/// `_count` series of [`SYNTHETIC_CHECK_DURATION`].
pub const SYNTHETIC_CHECK_DURATION_COUNT: &str = "synthetic_check_duration_seconds_count";
/// `_sum` series of [`SYNTHETIC_CHECK_DURATION`].
pub const SYNTHETIC_CHECK_DURATION_SUM: &str = "synthetic_check_duration_seconds_sum";

/// Counter of calls to `#[observe]`-instrumented functions.
/// Labels: `code_function`, `code_namespace`, `result`.
pub const OBSERVED_CALLS_TOTAL: &str = "observed_calls_total";
/// Histogram of instrumented function durations, in seconds.
/// Labels: `code_function`, `code_namespace`, `result`.
pub const OBSERVED_DURATION: &str = "observed_duration_seconds";
/// `_bucket` series of [`OBSERVED_DURATION`].
pub const OBSERVED_DURATION_BUCKET: &str = "observed_duration_seconds_bucket";
/// `_count` series of [`OBSERVED_DURATION`].
pub const OBSERVED_DURATION_COUNT: &str = "observed_duration_seconds_count";
/// `_sum` series of [`OBSERVED_DURATION`].
pub const OBSERVED_DURATION_SUM: &str = "observed_duration_seconds_sum";

/// Every series name (as stored in Prometheus) that the SDK emits.
pub const ALL_SERIES: &[&str] = &[
    HTTP_SERVER_REQUEST_DURATION_BUCKET,
    HTTP_SERVER_REQUEST_DURATION_COUNT,
    HTTP_SERVER_REQUEST_DURATION_SUM,
    HTTP_SERVER_ACTIVE_REQUESTS,
    RPC_SERVER_CALL_DURATION_BUCKET,
    RPC_SERVER_CALL_DURATION_COUNT,
    RPC_SERVER_CALL_DURATION_SUM,
    OBSERVE_RPC_SERVER_ACTIVE_CALLS,
    RPC_CLIENT_CALL_DURATION_BUCKET,
    RPC_CLIENT_CALL_DURATION_COUNT,
    RPC_CLIENT_CALL_DURATION_SUM,
    EXTERNAL_GATEWAY_REQUESTS_TOTAL,
    EXTERNAL_GATEWAY_REQUEST_DURATION_BUCKET,
    EXTERNAL_GATEWAY_REQUEST_DURATION_COUNT,
    EXTERNAL_GATEWAY_REQUEST_DURATION_SUM,
    OBSERVE_MASKED_FAILURES_TOTAL,
    OBSERVE_RESOURCE_UTILIZATION,
    TOKIO_RUNTIME_WORKER_COUNT,
    TOKIO_RUNTIME_WORKER_BUSY_TIME_SECONDS_TOTAL,
    SYNTHETIC_CHECK_SUCCESS,
    SYNTHETIC_CHECKS_TOTAL,
    SYNTHETIC_CHECK_DURATION_BUCKET,
    SYNTHETIC_CHECK_DURATION_COUNT,
    SYNTHETIC_CHECK_DURATION_SUM,
    OBSERVED_CALLS_TOTAL,
    OBSERVED_DURATION_BUCKET,
    OBSERVED_DURATION_COUNT,
    OBSERVED_DURATION_SUM,
];

/// Label names used by the SDK's metrics.
pub mod label {
    /// The service (`service.name` as translated by Prometheus / the Collector).
    pub const JOB: &str = "job";
    /// The scraped process.
    pub const INSTANCE: &str = "instance";
    /// HTTP method of a server request.
    pub const HTTP_REQUEST_METHOD: &str = "http_request_method";
    /// Route template of a server request, e.g. `/orders/{id}`.
    pub const HTTP_ROUTE: &str = "http_route";
    /// HTTP status code the server answered with.
    pub const HTTP_RESPONSE_STATUS_CODE: &str = "http_response_status_code";
    /// The RPC system of a gRPC measurement (`grpc`).
    pub const RPC_SYSTEM_NAME: &str = "rpc_system_name";
    /// Full gRPC method of a call (`package.Service/Method`, or `_OTHER`).
    pub const RPC_METHOD: &str = "rpc_method";
    /// gRPC status code name a call ended with (`OK`, `UNAVAILABLE`, ...).
    pub const RPC_RESPONSE_STATUS_CODE: &str = "rpc_response_status_code";
    /// Failure class; absent or empty on success, set on explicit, implicit and masked failures.
    pub const ERROR_TYPE: &str = "error_type";
    /// `"true"` on requests made by a synthetic check.
    pub const SYNTHETIC: &str = "synthetic";
    /// Name of an external gateway.
    pub const GATEWAY: &str = "gateway";
    /// Outcome of a gateway call: `success`, `error` or `timeout`.
    pub const STATUS: &str = "status";
    /// Constrained resource measured by `observe_resource_utilization`.
    pub const RESOURCE: &str = "resource";
    /// Synthetic flow name.
    pub const FLOW: &str = "flow";
    /// Step of a synthetic flow.
    pub const STEP: &str = "step";
    /// Region a synthetic check ran from.
    pub const REGION: &str = "region";
    /// Outcome of a synthetic step.
    pub const OUTCOME: &str = "outcome";
    /// Histogram bucket upper bound.
    pub const LE: &str = "le";
}

/// The `error_type` value the SDK sets on a masked failure (a success answer hiding a failure).
pub const ERROR_TYPE_MASKED_FAILURE: &str = "masked_failure";

/// Names of the generated alerts. They are part of the interface: routing
/// trees, silences and runbooks refer to them.
pub mod alert {
    /// Error ratio of a service above its threshold.
    pub const HIGH_ERROR_RATE: &str = "HighErrorRate";
    /// p99 latency of successful requests above its threshold.
    pub const HIGH_P99_LATENCY: &str = "HighP99Latency";
    /// Failure ratio of an external gateway above its threshold.
    pub const EXTERNAL_GATEWAY_ERRORS: &str = "ExternalGatewayErrors";
    /// A resource, or the number of in-flight requests, is near its limit.
    pub const HIGH_SATURATION: &str = "HighSaturation";
    /// A synthetic flow failed on consecutive runs (or stopped reporting).
    pub const SYNTHETIC_CHECK_FAILED: &str = "SyntheticCheckFailed";
    /// An SLO's error budget is burning too fast (multi-window, multi-burn-rate).
    pub const ERROR_BUDGET_BURN: &str = "ErrorBudgetBurn";

    /// All alert names, in the order the rule file lists them.
    pub const ALL: &[&str] = &[
        HIGH_ERROR_RATE,
        HIGH_P99_LATENCY,
        EXTERNAL_GATEWAY_ERRORS,
        HIGH_SATURATION,
        SYNTHETIC_CHECK_FAILED,
        ERROR_BUDGET_BURN,
    ];
}
