//! A real OTLP receiver for the integration tests: a gRPC server (tonic, the
//! generated `TraceService` / `LogsService` / `MetricsService` servers of
//! opentelemetry-proto) and an HTTP server (axum, `POST /v1/{traces,logs,metrics}`
//! decoding the official protobufs with prost), both on 127.0.0.1 ephemeral
//! ports, on a thread of their own with their own runtime, storing every
//! request they get.
#![allow(dead_code, unreachable_pub)]

pub mod load;
pub mod proxy;
pub mod py;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use prost::Message;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Everything received, request by request.
#[derive(Default)]
struct Inbox {
    traces: Vec<ExportTraceServiceRequest>,
    logs: Vec<ExportLogsServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
}

/// How the receiver answers one export request instead of accepting it
/// (see [`Receiver::script`]).
#[derive(Clone, Debug)]
pub enum Answer {
    /// gRPC `UNAVAILABLE`, HTTP 503.
    Unavailable,
    /// gRPC `RESOURCE_EXHAUSTED` with a `RetryInfo` of this delay; HTTP 429
    /// with `Retry-After` in whole seconds.
    Throttled(Duration),
    /// gRPC `RESOURCE_EXHAUSTED` without `RetryInfo` (not retryable).
    Exhausted,
    /// gRPC `INVALID_ARGUMENT`, HTTP 400 with a `google.rpc.Status` body.
    Invalid(&'static str),
    /// Accepted, with a partial success rejecting this many items.
    Partial(i64, &'static str),
}

fn grpc_refusal(a: &Answer) -> Option<tonic::Status> {
    use tonic_types::{ErrorDetails, StatusExt as _};
    match a {
        Answer::Unavailable => Some(tonic::Status::unavailable("receiver down")),
        Answer::Throttled(d) => Some(tonic::Status::with_error_details(
            tonic::Code::ResourceExhausted,
            "slow down",
            ErrorDetails::with_retry_info(Some(*d)),
        )),
        Answer::Exhausted => Some(tonic::Status::resource_exhausted("out of quota")),
        Answer::Invalid(m) => Some(tonic::Status::invalid_argument(*m)),
        Answer::Partial(..) => None,
    }
}

fn http_refusal(a: &Answer) -> Option<axum::response::Response> {
    match a {
        Answer::Unavailable => Some(StatusCode::SERVICE_UNAVAILABLE.into_response()),
        Answer::Throttled(d) => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, d.as_secs().to_string())],
            )
                .into_response(),
        ),
        Answer::Exhausted => Some(StatusCode::TOO_MANY_REQUESTS.into_response()),
        Answer::Invalid(m) => {
            let status = tonic_types::Status {
                code: tonic::Code::InvalidArgument as i32,
                message: (*m).to_owned(),
                details: vec![],
            };
            Some(
                (
                    StatusCode::BAD_REQUEST,
                    [(header::CONTENT_TYPE, "application/x-protobuf")],
                    status.encode_to_vec(),
                )
                    .into_response(),
            )
        }
        Answer::Partial(..) => None,
    }
}

#[derive(Clone, Default)]
struct Store {
    inbox: Arc<Mutex<Inbox>>,
    /// Answers for the next requests, in order (then: accept).
    script: Arc<Mutex<std::collections::VecDeque<Answer>>>,
    /// When each request arrived.
    arrivals: Arc<Mutex<Vec<Instant>>>,
    /// While set, every export is refused (UNAVAILABLE / 503).
    down: Arc<AtomicBool>,
    /// Keep only ids, names and event names of spans and log records (load
    /// tests receive hundreds of thousands).
    lean: Arc<AtomicBool>,
}

fn strip_traces(req: &mut ExportTraceServiceRequest) {
    for rs in &mut req.resource_spans {
        for ss in &mut rs.scope_spans {
            for span in &mut ss.spans {
                span.attributes = Vec::new();
                span.events = Vec::new();
                span.links = Vec::new();
            }
        }
    }
}

fn strip_logs(req: &mut ExportLogsServiceRequest) {
    for rl in &mut req.resource_logs {
        for sl in &mut rl.scope_logs {
            for l in &mut sl.log_records {
                l.attributes = Vec::new();
                l.body = None;
            }
        }
    }
}

impl Store {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes the request's arrival and takes its scripted answer, if any.
    fn next(&self) -> Option<Answer> {
        self.arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Instant::now());
        self.script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }
}

fn partial_of(a: &Option<Answer>) -> Option<(i64, String)> {
    match a {
        Some(Answer::Partial(n, m)) => Some((*n, (*m).to_owned())),
        _ => None,
    }
}

#[tonic::async_trait]
impl TraceService for Store {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        if self.down.load(Ordering::SeqCst) {
            return Err(tonic::Status::unavailable("receiver down"));
        }
        let answer = self.next();
        if let Some(status) = answer.as_ref().and_then(grpc_refusal) {
            return Err(status);
        }
        let mut req = req.into_inner();
        if self.lean.load(Ordering::Relaxed) {
            strip_traces(&mut req);
        }
        self.lock().traces.push(req);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: partial_of(&answer).map(|(n, m)| {
                opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess {
                    rejected_spans: n,
                    error_message: m,
                }
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Store {
    async fn export(
        &self,
        req: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        if self.down.load(Ordering::SeqCst) {
            return Err(tonic::Status::unavailable("receiver down"));
        }
        let answer = self.next();
        if let Some(status) = answer.as_ref().and_then(grpc_refusal) {
            return Err(status);
        }
        let mut req = req.into_inner();
        if self.lean.load(Ordering::Relaxed) {
            strip_logs(&mut req);
        }
        self.lock().logs.push(req);
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: partial_of(&answer).map(|(n, m)| {
                opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess {
                    rejected_log_records: n,
                    error_message: m,
                }
            }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Store {
    async fn export(
        &self,
        req: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        if self.down.load(Ordering::SeqCst) {
            return Err(tonic::Status::unavailable("receiver down"));
        }
        self.lock().metrics.push(req.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn protobuf(body: Vec<u8>) -> axum::response::Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        body,
    )
        .into_response()
}

async fn http_traces(State(s): State<Store>, body: Bytes) -> axum::response::Response {
    if s.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let answer = s.next();
    if let Some(r) = answer.as_ref().and_then(http_refusal) {
        return r;
    }
    match ExportTraceServiceRequest::decode(body) {
        Ok(mut req) => {
            if s.lean.load(Ordering::Relaxed) {
                strip_traces(&mut req);
            }
            s.lock().traces.push(req);
            protobuf(
                ExportTraceServiceResponse {
                    partial_success: partial_of(&answer).map(|(n, m)| {
                        opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess {
                            rejected_spans: n,
                            error_message: m,
                        }
                    }),
                }
                .encode_to_vec(),
            )
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn http_logs(State(s): State<Store>, body: Bytes) -> axum::response::Response {
    if s.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let answer = s.next();
    if let Some(r) = answer.as_ref().and_then(http_refusal) {
        return r;
    }
    match ExportLogsServiceRequest::decode(body) {
        Ok(mut req) => {
            if s.lean.load(Ordering::Relaxed) {
                strip_logs(&mut req);
            }
            s.lock().logs.push(req);
            protobuf(
                ExportLogsServiceResponse {
                    partial_success: partial_of(&answer).map(|(n, m)| {
                        opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess {
                            rejected_log_records: n,
                            error_message: m,
                        }
                    }),
                }
                .encode_to_vec(),
            )
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn http_metrics(State(s): State<Store>, body: Bytes) -> axum::response::Response {
    if s.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match ExportMetricsServiceRequest::decode(body) {
        Ok(req) => {
            s.lock().metrics.push(req);
            protobuf(ExportMetricsServiceResponse::default().encode_to_vec())
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    store: Store,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Starts both servers on ephemeral 127.0.0.1 ports.
    pub fn start() -> Receiver {
        let store = Store::default();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let s = store.clone();
        let thread = std::thread::Builder::new()
            .name("otlp-receiver".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("receiver runtime");
                rt.block_on(async move {
                    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind grpc");
                    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind http");
                    addr_tx
                        .send((
                            grpc.local_addr().expect("addr"),
                            http.local_addr().expect("addr"),
                        ))
                        .expect("send addrs");
                    let grpc_server = tonic::transport::Server::builder()
                        .add_service(TraceServiceServer::new(s.clone()))
                        .add_service(LogsServiceServer::new(s.clone()))
                        .add_service(MetricsServiceServer::new(s.clone()))
                        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(grpc));
                    let app = Router::new()
                        .route("/v1/traces", post(http_traces))
                        .route("/v1/logs", post(http_logs))
                        .route("/v1/metrics", post(http_metrics))
                        .with_state(s.clone());
                    let http_server = axum::serve(http, app);
                    tokio::select! {
                        r = grpc_server => r.expect("grpc server"),
                        r = http_server => r.expect("http server"),
                        _ = stop_rx => {}
                    }
                });
            })
            .expect("receiver thread");
        let (grpc_addr, http_addr) = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("receiver started");
        Receiver {
            grpc_addr,
            http_addr,
            store,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<grpc port>`.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// `http://127.0.0.1:<http port>` (the exporter appends `/v1/<signal>`).
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// From now on, keeps only ids, names and event names of spans and log
    /// records.
    pub fn set_lean(&self) {
        self.store.lean.store(true, Ordering::Relaxed);
    }

    /// While `down`, every export is refused.
    pub fn set_down(&self, down: bool) {
        self.store.down.store(down, Ordering::SeqCst);
    }

    /// Answers the next export requests (any signal, gRPC or HTTP) with
    /// `answers`, in order; later ones are accepted as usual.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.store
            .script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(answers);
    }

    /// When each export request arrived (any signal), in order.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.store
            .arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every trace export request received, as sent.
    pub fn trace_requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.store.lock().traces.clone()
    }

    /// Every log export request received, as sent.
    pub fn log_requests(&self) -> Vec<ExportLogsServiceRequest> {
        self.store.lock().logs.clone()
    }

    /// Every metric export request received, as sent.
    pub fn metric_requests(&self) -> Vec<ExportMetricsServiceRequest> {
        self.store.lock().metrics.clone()
    }

    /// Number of export requests per signal: (traces, logs, metrics).
    pub fn requests(&self) -> (usize, usize, usize) {
        let i = self.store.lock();
        (i.traces.len(), i.logs.len(), i.metrics.len())
    }

    /// How many spans were received: counted under the store's lock without
    /// copying them, so an export arriving meanwhile is not held up (a
    /// [`spans`](Self::spans) snapshot of a long run holds it long enough to
    /// outlast an exporter's timeout).
    pub fn span_count(&self) -> usize {
        let i = self.store.lock();
        i.traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum()
    }

    /// Every span received, in arrival order.
    pub fn spans(&self) -> Vec<RSpan> {
        let i = self.store.lock();
        let mut out = Vec::new();
        for req in &i.traces {
            for rs in &req.resource_spans {
                let resource = rs
                    .resource
                    .as_ref()
                    .map(|r| attrs(&r.attributes))
                    .unwrap_or_default();
                for ss in &rs.scope_spans {
                    for s in &ss.spans {
                        out.push(RSpan {
                            service: resource.get("service.name").cloned().unwrap_or_default(),
                            trace_id: hex(&s.trace_id),
                            span_id: hex(&s.span_id),
                            parent_span_id: hex(&s.parent_span_id),
                            name: s.name.clone(),
                            kind: s.kind,
                            attributes: attrs(&s.attributes),
                            resource: resource.clone(),
                            status_code: s.status.as_ref().map_or(0, |st| st.code),
                        });
                    }
                }
            }
        }
        out
    }

    /// Every log record received, in arrival order.
    pub fn log_records(&self) -> Vec<RLog> {
        let i = self.store.lock();
        let mut out = Vec::new();
        for req in &i.logs {
            for rl in &req.resource_logs {
                let resource = rl
                    .resource
                    .as_ref()
                    .map(|r| attrs(&r.attributes))
                    .unwrap_or_default();
                let service = resource.get("service.name").cloned().unwrap_or_default();
                for sl in &rl.scope_logs {
                    for l in &sl.log_records {
                        out.push(RLog {
                            service: service.clone(),
                            trace_id: hex(&l.trace_id),
                            span_id: hex(&l.span_id),
                            event_name: l.event_name.clone(),
                            severity_text: l.severity_text.clone(),
                            body: l.body.as_ref().map(value).unwrap_or_default(),
                            attributes: attrs(&l.attributes),
                            resource: resource.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// The metric points of the last request that carried each metric name
    /// (cumulative temporality: the last is the total).
    pub fn metric_points(&self, name: &str) -> Vec<RPoint> {
        let i = self.store.lock();
        let mut last = Vec::new();
        for req in &i.metrics {
            for rm in &req.resource_metrics {
                for sm in &rm.scope_metrics {
                    for m in sm.metrics.iter().filter(|m| m.name == name) {
                        last = points(m);
                    }
                }
            }
        }
        last
    }

    /// The resource of every metrics request received, in arrival order.
    pub fn metric_resources(&self) -> Vec<BTreeMap<String, String>> {
        let i = self.store.lock();
        i.metrics
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .map(|rm| {
                rm.resource
                    .as_ref()
                    .map(|r| attrs(&r.attributes))
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Names of every metric received.
    pub fn metric_names(&self) -> Vec<String> {
        let i = self.store.lock();
        let mut names: Vec<String> = i
            .metrics
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics)
            .map(|m| m.name.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Waits until `cond` holds (true) or `timeout` passes (false).
    pub fn wait_until(&self, timeout: Duration, cond: impl Fn(&Receiver) -> bool) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if cond(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        cond(self)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A received span, flattened.
#[derive(Clone, Debug)]
pub struct RSpan {
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root.
    pub parent_span_id: String,
    pub name: String,
    /// OTLP `SpanKind`: 1 internal, 2 server, 3 client.
    pub kind: i32,
    pub attributes: BTreeMap<String, String>,
    pub resource: BTreeMap<String, String>,
    /// 0 unset, 1 ok, 2 error.
    pub status_code: i32,
}

/// A received log record, flattened.
#[derive(Clone, Debug)]
pub struct RLog {
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    pub event_name: String,
    pub severity_text: String,
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    pub resource: BTreeMap<String, String>,
}

/// A received metric point.
#[derive(Clone, Debug, PartialEq)]
pub struct RPoint {
    pub attributes: BTreeMap<String, String>,
    pub value: RValue,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RValue {
    Number(f64),
    Histogram { count: u64, sum: f64 },
}

fn points(m: &opentelemetry_proto::tonic::metrics::v1::Metric) -> Vec<RPoint> {
    let number = |p: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint| RPoint {
        attributes: attrs(&p.attributes),
        value: RValue::Number(match p.value {
            Some(number_data_point::Value::AsDouble(d)) => d,
            Some(number_data_point::Value::AsInt(i)) => i as f64,
            None => f64::NAN,
        }),
    };
    let mut out: Vec<RPoint> = match &m.data {
        Some(metric::Data::Sum(s)) => s.data_points.iter().map(number).collect(),
        Some(metric::Data::Gauge(g)) => g.data_points.iter().map(number).collect(),
        Some(metric::Data::Histogram(h)) => h
            .data_points
            .iter()
            .map(|p| RPoint {
                attributes: attrs(&p.attributes),
                value: RValue::Histogram {
                    count: p.count,
                    sum: p.sum.unwrap_or_default(),
                },
            })
            .collect(),
        _ => Vec::new(),
    };
    out.sort_by(|a, b| a.attributes.cmp(&b.attributes));
    out
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(value).unwrap_or_default(),
            )
        })
        .collect()
}

fn value(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// An environment for `Telemetry::builder(..).env_source(..)`.
pub fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

/// This process's resident memory, from `/proc/self/statm`.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}
