//! Golden-signal instruments shared by the server layer, the gateway layer
//! and `#[observed]`: one implementation, so one alert rule covers them all.
//!
//! | OpenTelemetry name | Prometheus name (Collector translation) | unit | attributes |
//! |---|---|---|---|
//! | `http.server.request.duration` | `http_server_request_duration_seconds` | s | `http.request.method`, `http.route`, `http.response.status_code`, `error.type` |
//! | `http.server.active_requests` | `http_server_active_requests` | `{request}` | `http.request.method`, `url.scheme` |
//! | `observe.masked_failures` | `observe_masked_failures_total` | `{failure}` | `http.route` (HTTP) or `rpc.method` (gRPC), `gateway` |
//! | `http.client.request.duration` | `http_client_request_duration_seconds` | s | `http.request.method`, `server.address`, `http.response.status_code`, `error.type`, `gateway` |
//! | `external_gateway.requests` | `external_gateway_requests_total` | `{request}` | `gateway`, `status`, `error.type` |
//! | `external_gateway.request.duration` | `external_gateway_request_duration_seconds` | s | `gateway`, `status` |
//! | `rpc.server.call.duration` | `rpc_server_call_duration_seconds` | s | `rpc.system.name`, `rpc.method`, `rpc.response.status_code`, `error.type` |
//! | `observe.rpc.server.active_calls` | `observe_rpc_server_active_calls` | `{call}` | `rpc.system.name`, `rpc.method` |
//! | `rpc.client.call.duration` | `rpc_client_call_duration_seconds` | s | `rpc.system.name`, `rpc.method`, `rpc.response.status_code`, `error.type`, `server.address`, `gateway` |
//! | `observed.calls` | `observed_calls_total` | `{call}` | `code.function`, `code.namespace`, `result` |
//! | `observed.duration` | `observed_duration_seconds` | s | `code.function`, `code.namespace`, `result` |
//! | `observed.active` | `observed_active` | `{call}` | `code.function`, `code.namespace` |
//! | `observe.resource.utilization` | `observe_resource_utilization` | (none) | `resource` |

use opentelemetry::metrics::{
    BoundCounter, BoundHistogram, BoundUpDownCounter, Counter, Gauge, Histogram, Meter,
    UpDownCounter,
};
use opentelemetry::{Key, KeyValue, StringValue, Value};
use std::borrow::Cow;

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

pub use crate::clock::Stopwatch;
pub use names::HTTP_DURATION_BUCKETS;

pub mod names;
mod rpc;
pub(crate) mod runtime;
mod series;

/// Attribute keys.
pub mod keys {
    use opentelemetry::Key;
    /// `http.request.method`
    pub const HTTP_REQUEST_METHOD: Key = Key::from_static_str("http.request.method");
    /// `http.route`
    pub const HTTP_ROUTE: Key = Key::from_static_str("http.route");
    /// `http.response.status_code`
    pub const HTTP_RESPONSE_STATUS_CODE: Key = Key::from_static_str("http.response.status_code");
    /// `error.type`
    pub const ERROR_TYPE: Key = Key::from_static_str("error.type");
    /// `url.scheme`
    pub const URL_SCHEME: Key = Key::from_static_str("url.scheme");
    /// `server.address`
    pub const SERVER_ADDRESS: Key = Key::from_static_str("server.address");
    /// `gateway`
    pub const GATEWAY: Key = Key::from_static_str("gateway");
    /// `status`
    pub const STATUS: Key = Key::from_static_str("status");
    /// `code.function`
    pub const CODE_FUNCTION: Key = Key::from_static_str("code.function");
    /// `code.namespace`
    pub const CODE_NAMESPACE: Key = Key::from_static_str("code.namespace");
    /// `result`
    pub const RESULT: Key = Key::from_static_str("result");
    /// `resource`
    pub const RESOURCE: Key = Key::from_static_str("resource");
    /// `rpc.system.name`
    pub const RPC_SYSTEM_NAME: Key = Key::from_static_str("rpc.system.name");
    /// `rpc.method`
    pub const RPC_METHOD: Key = Key::from_static_str("rpc.method");
    /// `rpc.response.status_code`
    pub const RPC_RESPONSE_STATUS_CODE: Key = Key::from_static_str("rpc.response.status_code");
    /// `server.port`
    pub const SERVER_PORT: Key = Key::from_static_str("server.port");
    /// `synthetic`
    pub const SYNTHETIC: Key = Key::from_static_str("synthetic");
}

fn sv(v: Cow<'static, str>) -> Value {
    Value::String(match v {
        Cow::Borrowed(s) => StringValue::from(s),
        Cow::Owned(s) => StringValue::from(s),
    })
}

fn kv(k: Key, v: Cow<'static, str>) -> KeyValue {
    KeyValue::new(k, sv(v))
}

/// An attribute set of at most `N` attributes, on the stack: a measurement
/// allocates no vector.
struct StackAttrs<const N: usize> {
    kvs: [KeyValue; N],
    len: usize,
}

impl<const N: usize> StackAttrs<N> {
    fn new() -> Self {
        StackAttrs {
            kvs: std::array::from_fn(|_| KeyValue::new(keys::SYNTHETIC, "")),
            len: 0,
        }
    }

    /// Adds `kv` (past `N`, nothing: every caller adds at most `N`).
    fn push(&mut self, kv: KeyValue) {
        if let Some(slot) = self.kvs.get_mut(self.len) {
            *slot = kv;
            self.len += 1;
        }
    }

    /// `http.response.status_code` and `error.type`, each when known.
    fn status_and_error(&mut self, status: Option<u16>, error_type: Option<Cow<'static, str>>) {
        if let Some(s) = status {
            self.push(KeyValue::new(keys::HTTP_RESPONSE_STATUS_CODE, i64::from(s)));
        }
        if let Some(e) = error_type {
            self.push(kv(keys::ERROR_TYPE, e));
        }
    }

    fn as_slice(&self) -> &[KeyValue] {
        &self.kvs[..self.len]
    }
}

pub use crate::classify::GatewayStatus;

/// The golden-signal instruments of the current telemetry (`None` when the
/// SDK is disabled or observe is not installed): what observe's layers and
/// the synthetic runner record into.
///
/// ```
/// # let (_, cap) = observe_core::testing::capture(|| {
/// if let Some(signals) = observe_core::signals::current() {
///     signals.utilization("db_pool".into(), 0.5);
/// }
/// # });
/// # assert_eq!(cap.metric("observe.resource.utilization").len(), 1);
/// ```
#[inline]
pub fn current() -> Option<std::sync::Arc<Signals>> {
    crate::context::current_shared().and_then(|s| s.signals.clone())
}

/// Instruments made from rows of the [`names`] table (name, unit, description).
pub(crate) struct Builders<'a>(pub(crate) &'a Meter);

impl Builders<'_> {
    fn unit<'m, T>(
        b: opentelemetry::metrics::InstrumentBuilder<'m, T>,
        row: &names::Instrument,
    ) -> opentelemetry::metrics::InstrumentBuilder<'m, T> {
        if row.unit.is_empty() {
            b
        } else {
            b.with_unit(row.unit)
        }
    }

    /// A duration histogram with [`HTTP_DURATION_BUCKETS`].
    pub(crate) fn histogram(&self, row: &names::Instrument) -> Histogram<f64> {
        self.0
            .f64_histogram(row.name)
            .with_unit(row.unit)
            .with_description(row.description)
            .with_boundaries(HTTP_DURATION_BUCKETS.to_vec())
            .build()
    }

    pub(crate) fn u64_counter(&self, row: &names::Instrument) -> Counter<u64> {
        Self::unit(self.0.u64_counter(row.name), row)
            .with_description(row.description)
            .build()
    }

    pub(crate) fn i64_up_down(&self, row: &names::Instrument) -> UpDownCounter<i64> {
        Self::unit(self.0.i64_up_down_counter(row.name), row)
            .with_description(row.description)
            .build()
    }

    pub(crate) fn f64_gauge(&self, row: &names::Instrument) -> Gauge<f64> {
        Self::unit(self.0.f64_gauge(row.name), row)
            .with_description(row.description)
            .build()
    }
}

/// The golden-signal instruments of one telemetry instance, made by the
/// builder; reach the current one with [`current`] (what observe's layers
/// and the synthetic runner record into).
#[derive(Debug)]
pub struct Signals {
    server_duration: Histogram<f64>,
    server_active: UpDownCounter<i64>,
    /// `server_active` bound to each (method, scheme) of
    /// [`ACTIVE_METHODS`] × `http`/`https`, on first use: a request's
    /// `+1`/`-1` is then an atomic update, no attribute-set lookup.
    server_active_bound: [std::sync::OnceLock<BoundUpDownCounter<i64>>; 2 * ACTIVE_METHODS.len()],
    masked: Counter<u64>,
    client_duration: Histogram<f64>,
    gateway_requests: Counter<u64>,
    gateway_duration: Histogram<f64>,
    observed_calls: Counter<u64>,
    observed_duration: Histogram<f64>,
    observed_active: UpDownCounter<i64>,
    utilization: Gauge<f64>,
    /// The gRPC instruments (`rpc.rs`).
    rpc: rpc::RpcInstruments,
    /// Mark synthetic requests' server metrics with `synthetic="true"`.
    pub(crate) mark_synthetic: bool,
    /// Unique per instance (addresses are reused; ids are not).
    id: u64,
    /// The meter these instruments come from (for other observe components).
    meter: Meter,
    /// `trace_id` exemplars for the Prometheus/OpenMetrics exposition.
    exemplars: Option<crate::exemplars::Exemplars>,
}

/// The `http.request.method` values whose active-request counters are
/// bound (the semantic conventions' known methods and `_OTHER`).
const ACTIVE_METHODS: [&str; 10] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "_OTHER",
];

/// Trace and span id of the span a measurement belongs to (sampled spans
/// only), for exemplars: what [`SpanHandle::sampled_ids`](crate::span::SpanHandle::sampled_ids) returns.
pub type SpanIds = Option<([u8; 16], [u8; 8])>;

impl Signals {
    pub(crate) fn new(
        meter: &Meter,
        mark_synthetic: bool,
        exemplars: Option<crate::exemplars::Exemplars>,
    ) -> Self {
        let b = Builders(meter);
        Signals {
            server_duration: b.histogram(names::row_of!(names::HTTP_SERVER_REQUEST_DURATION)),
            server_active: b.i64_up_down(names::row_of!(names::HTTP_SERVER_ACTIVE_REQUESTS)),
            server_active_bound: std::array::from_fn(|_| std::sync::OnceLock::new()),
            masked: b.u64_counter(names::row_of!(names::MASKED_FAILURES)),
            client_duration: b.histogram(names::row_of!(names::HTTP_CLIENT_REQUEST_DURATION)),
            gateway_requests: b.u64_counter(names::row_of!(names::GATEWAY_REQUESTS)),
            gateway_duration: b.histogram(names::row_of!(names::GATEWAY_REQUEST_DURATION)),
            observed_calls: b.u64_counter(names::row_of!(names::OBSERVED_CALLS)),
            observed_duration: b.histogram(names::row_of!(names::OBSERVED_DURATION)),
            observed_active: b.i64_up_down(names::row_of!(names::OBSERVED_ACTIVE)),
            utilization: b.f64_gauge(names::row_of!(names::RESOURCE_UTILIZATION)),
            rpc: rpc::RpcInstruments::new(&b),
            mark_synthetic,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            meter: meter.clone(),
            exemplars,
        }
    }

    /// Whether measurements should carry span ids (exemplars are on).
    #[inline]
    pub fn wants_exemplars(&self) -> bool {
        self.exemplars.is_some()
    }

    #[inline]
    fn exemplar(&self, instrument: &'static str, attrs: &[KeyValue], value: f64, ids: SpanIds) {
        if self.exemplars.is_some() && ids.is_some() {
            let key = crate::exemplars::AttributesKey::of(attrs);
            self.exemplar_of(instrument, key, value, ids);
        }
    }

    /// [`Self::exemplar`] with the attribute set's key already known.
    #[inline]
    fn exemplar_of(
        &self,
        instrument: &'static str,
        attrs: crate::exemplars::AttributesKey,
        value: f64,
        ids: SpanIds,
    ) {
        if let (Some(ex), Some((t, s))) = (&self.exemplars, ids) {
            ex.record(
                instrument,
                attrs,
                value,
                t,
                s,
                crate::exemplars::now_unix_nanos(),
            );
        }
    }

    /// The meter of this telemetry instance.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// This instance's unique id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// One finished server request (`status` is `None` when the service
    /// failed before producing a response).
    // One flat call per request on the hot path: no intermediate struct.
    #[allow(clippy::too_many_arguments)]
    pub fn server_request(
        &self,
        method: &'static str,
        route: Cow<'static, str>,
        status: Option<u16>,
        error_type: Option<Cow<'static, str>>,
        synthetic: bool,
        seconds: f64,
        ids: SpanIds,
    ) {
        let synthetic = synthetic && self.mark_synthetic;
        let key = series::ServerKey::new(self.id, method, &route, status, &error_type, synthetic);
        let attrs = |route: Cow<'static, str>, error_type: Option<Cow<'static, str>>| {
            let mut attrs = StackAttrs::<5>::new();
            attrs.push(KeyValue::new(keys::HTTP_REQUEST_METHOD, method));
            attrs.push(kv(keys::HTTP_ROUTE, route));
            attrs.status_and_error(status, error_type);
            if synthetic {
                attrs.push(KeyValue::new(keys::SYNTHETIC, "true"));
            }
            attrs
        };
        const NAME: &str = names::HTTP_SERVER_REQUEST_DURATION;
        // An attribute set seen before on this thread: bound.
        if let Some(key) = key {
            // The key holds only borrowed strings: these clones copy no text.
            let bind = || {
                let attrs = attrs(route.clone(), error_type.clone());
                series::Series {
                    duration: self.server_duration.bind(attrs.as_slice()),
                    exemplar: crate::exemplars::AttributesKey::of(attrs.as_slice()),
                }
            };
            let recorded = series::with_server(key, bind, |s| {
                s.duration.record(seconds);
                self.exemplar_of(NAME, s.exemplar, seconds, ids);
            });
            if recorded {
                return;
            }
        }
        let attrs = attrs(route, error_type);
        self.server_duration.record(seconds, attrs.as_slice());
        self.exemplar(NAME, attrs.as_slice(), seconds, ids);
    }

    /// A server request started (`+1`) or ended (`-1`).
    pub fn server_active(&self, method: &'static str, scheme: &'static str, delta: i64) {
        let attrs = || {
            [
                KeyValue::new(keys::HTTP_REQUEST_METHOD, method),
                KeyValue::new(keys::URL_SCHEME, scheme),
            ]
        };
        let m = ACTIVE_METHODS.iter().position(|k| *k == method);
        let s = match scheme {
            "http" => Some(0),
            "https" => Some(1),
            _ => None,
        };
        match (m, s) {
            (Some(m), Some(s)) => self.server_active_bound[2 * m + s]
                .get_or_init(|| self.server_active.bind(&attrs()))
                .add(delta),
            _ => self.server_active.add(delta, &attrs()),
        }
    }

    /// A 2xx request inside which `gateway` failed.
    pub fn masked_failure(&self, route: Cow<'static, str>, gateway: Cow<'static, str>) {
        self.masked.add(
            1,
            &[kv(keys::HTTP_ROUTE, route), kv(keys::GATEWAY, gateway)],
        );
    }

    /// One HTTP client request (`http.client.request.duration`).
    #[allow(clippy::too_many_arguments)]
    pub fn client_request(
        &self,
        method: &'static str,
        server_address: Cow<'static, str>,
        status: Option<u16>,
        error_type: Option<Cow<'static, str>>,
        gateway: Cow<'static, str>,
        seconds: f64,
        ids: SpanIds,
    ) {
        let mut attrs = StackAttrs::<5>::new();
        attrs.push(KeyValue::new(keys::HTTP_REQUEST_METHOD, method));
        attrs.push(kv(keys::SERVER_ADDRESS, server_address));
        attrs.status_and_error(status, error_type);
        attrs.push(kv(keys::GATEWAY, gateway));
        let attrs = attrs.as_slice();
        self.client_duration.record(seconds, attrs);
        self.exemplar(names::HTTP_CLIENT_REQUEST_DURATION, attrs, seconds, ids);
    }

    /// One gateway call: `external_gateway.requests` and `.request.duration`.
    pub fn gateway_call(
        &self,
        gateway: Cow<'static, str>,
        status: GatewayStatus,
        error_type: Option<Cow<'static, str>>,
        seconds: f64,
        ids: SpanIds,
    ) {
        let g = kv(keys::GATEWAY, gateway);
        let s = KeyValue::new(keys::STATUS, status.as_str());
        match error_type {
            Some(e) => self
                .gateway_requests
                .add(1, &[g.clone(), s.clone(), kv(keys::ERROR_TYPE, e)]),
            None => self.gateway_requests.add(1, &[g.clone(), s.clone()]),
        }
        let attrs = [g, s];
        self.gateway_duration.record(seconds, &attrs);
        self.exemplar(names::GATEWAY_REQUEST_DURATION, &attrs, seconds, ids);
    }

    /// Instruments pre-bound to one `#[observed]` function's attribute sets:
    /// a call then costs atomic updates, no attribute lookup. The `ok` and
    /// `error` sets are bound on first use, so no empty series appear.
    pub fn bind_observed(&self, function: &'static str, namespace: &'static str) -> ObservedBound {
        let active = [
            KeyValue::new(keys::CODE_FUNCTION, function),
            KeyValue::new(keys::CODE_NAMESPACE, namespace),
        ];
        ObservedBound {
            function,
            namespace,
            calls: self.observed_calls.clone(),
            duration: self.observed_duration.clone(),
            ok: std::sync::OnceLock::new(),
            error: std::sync::OnceLock::new(),
            active: self.observed_active.bind(&active),
        }
    }

    /// One `#[observed]` call ended.
    pub fn observed_call(
        &self,
        function: &'static str,
        namespace: &'static str,
        ok: bool,
        seconds: f64,
    ) {
        let attrs = [
            KeyValue::new(keys::CODE_FUNCTION, function),
            KeyValue::new(keys::CODE_NAMESPACE, namespace),
            KeyValue::new(keys::RESULT, if ok { "ok" } else { "error" }),
        ];
        self.observed_calls.add(1, &attrs);
        self.observed_duration.record(seconds, &attrs);
    }

    /// An `#[observed]` call started (`+1`) or ended (`-1`).
    pub fn observed_active(&self, function: &'static str, namespace: &'static str, delta: i64) {
        self.observed_active.add(
            delta,
            &[
                KeyValue::new(keys::CODE_FUNCTION, function),
                KeyValue::new(keys::CODE_NAMESPACE, namespace),
            ],
        );
    }

    /// Records a resource's utilisation (clamped to 0..1).
    pub fn utilization(&self, resource: Cow<'static, str>, ratio: f64) {
        let r = if ratio.is_finite() {
            ratio.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.utilization.record(r, &[kv(keys::RESOURCE, resource)]);
    }
}

/// `observed.*` instruments bound to one function, from
/// [`Signals::bind_observed`] (what `#[observed]` call sites keep).
pub struct ObservedBound {
    function: &'static str,
    namespace: &'static str,
    calls: Counter<u64>,
    duration: Histogram<f64>,
    ok: std::sync::OnceLock<(BoundCounter<u64>, BoundHistogram<f64>)>,
    error: std::sync::OnceLock<(BoundCounter<u64>, BoundHistogram<f64>)>,
    active: BoundUpDownCounter<i64>,
}

impl std::fmt::Debug for ObservedBound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservedBound")
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}

impl ObservedBound {
    /// A call started.
    #[inline]
    pub fn start(&self) {
        self.active.add(1);
    }

    /// A call ended.
    #[inline]
    pub fn end(&self, ok: bool, seconds: f64) {
        let (cell, result) = if ok {
            (&self.ok, "ok")
        } else {
            (&self.error, "error")
        };
        let (calls, duration) = cell.get_or_init(|| {
            let attrs = [
                KeyValue::new(keys::CODE_FUNCTION, self.function),
                KeyValue::new(keys::CODE_NAMESPACE, self.namespace),
                KeyValue::new(keys::RESULT, result),
            ];
            (self.calls.bind(&attrs), self.duration.bind(&attrs))
        });
        calls.add(1);
        duration.record(seconds);
        self.active.add(-1);
    }
}
