//! The client layer for tonic channels: W3C context into the metadata, a
//! client span `package.Service/Method`, `rpc.client.call.duration`, and,
//! when the channel is a gateway, the gateway metrics and the report of a
//! failure to the enclosing request (masked-failure detection).

use super::body::{CallGuard, GrpcBody, Progress, Stage};
use super::methods::{self, Method, OTHER_METHOD};
use http::{Request, Response};
use observe_core::classify::grpc::{self as grpc_codes, GrpcCode};
use observe_core::classify::{self, Classified, GatewayFailure, GatewayStatus};
use observe_core::opentelemetry::trace::SpanKind;
use observe_core::opentelemetry::{KeyValue, Value};
use observe_core::propagation::inject;
use observe_core::signals::Stopwatch;
use observe_core::signals::{current as signals, keys, Signals};
use observe_core::span::with_span;
use observe_core::tracing::Span;
use pin_project_lite::pin_project;
use std::borrow::Cow;
use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Observes the calls made through a tonic channel (or any gRPC client
/// service): put it between the generated client and the channel.
///
/// ```
/// use observe_tower::grpc::GrpcClientLayer;
/// use tower::ServiceBuilder;
/// # let channel = tower::service_fn(|_req: http::Request<String>| async {
/// #     Ok::<_, std::io::Error>(http::Response::new(String::new()))
/// # });
/// let target = http::Uri::from_static("http://bank.internal:50051");
/// // let channel = tonic::transport::Channel::builder(target.clone()).connect_lazy();
/// let bank = ServiceBuilder::new()
///     .layer(GrpcClientLayer::gateway("bank").target(&target))
///     .service(channel);
/// // let client = BankClient::new(bank);
/// # drop(bank);
/// ```
///
/// A call's outcome is its `grpc-status` (every code but `OK` is a
/// failure named by the code, `DEADLINE_EXCEEDED` a timeout), else the
/// transport error (classified by [`observe_core::classify::error`]; tonic's
/// `TimeoutExpired` is a timeout), else `cancelled` when the caller dropped
/// the call or its response stream before the end.
#[derive(Clone, Debug, Default)]
pub struct GrpcClientLayer {
    gateway: Option<Cow<'static, str>>,
    target: Option<Target>,
}

/// `server.address` and `server.port` of a channel's target.
#[derive(Clone, Copy, Debug)]
struct Target {
    host: &'static str,
    port: Option<u16>,
}

impl GrpcClientLayer {
    /// A client layer: span and `rpc.client.call.duration`.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client layer for the gateway `name` (a fixed, low-cardinality
    /// name: never user input): also `external_gateway.*` and masked-failure
    /// reports.
    pub fn gateway(name: impl Into<Cow<'static, str>>) -> Self {
        GrpcClientLayer {
            gateway: Some(name.into()),
            target: None,
        }
    }

    /// The channel's target (`http://bank.internal:50051`): `server.address`
    /// and `server.port` of its calls. A tonic `Channel` adds the origin
    /// below this layer, so requests here carry only the method's path;
    /// without a target (and without an origin in the request URI) the
    /// calls have no `server.address`.
    pub fn target(mut self, uri: &http::Uri) -> Self {
        self.target = uri.host().map(|h| Target {
            host: intern_host(h),
            port: uri.port_u16(),
        });
        self
    }
}

/// A channel's host name as a `&'static str` (past the interner's cap, `unknown`).
fn intern_host(h: &str) -> &'static str {
    methods::host(h).unwrap_or("unknown")
}

impl<S> Layer<S> for GrpcClientLayer {
    type Service = GrpcClient<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcClient {
            inner,
            gateway: self.gateway.clone(),
            target: self.target,
        }
    }
}

/// The service made by [`GrpcClientLayer`].
#[derive(Clone, Debug)]
pub struct GrpcClient<S> {
    inner: S,
    gateway: Option<Cow<'static, str>>,
    target: Option<Target>,
}

impl<S> GrpcClient<S> {
    crate::macros::inner_service_accessors!();
}

pub(crate) struct ClientGuard {
    pub(crate) span: Span,
    start: Stopwatch,
    method: &'static str,
    server: Option<&'static str>,
    gateway: Option<Cow<'static, str>>,
    signals: Option<Arc<Signals>>,
    /// A transport error's classification (no status then).
    failure: Option<Classified>,
    pub(crate) progress: Progress,
}

impl ClientGuard {
    /// The call's status, `error.type` and gateway status.
    fn outcome(&mut self) -> (Option<GrpcCode>, Option<Cow<'static, str>>, GatewayStatus) {
        let status = self.progress.status.code();
        let failed = |error_type| Classified::Failed {
            error_type,
            message: String::new(),
            timeout: false,
            implicit: false,
        };
        let classified = match (status, self.failure.take(), self.progress.error.take()) {
            (Some(code), _, _) => grpc_codes::response(code),
            (None, Some(c), _) => c,
            (None, None, Some(e)) => failed(e),
            (None, None, None) if self.progress.stage == Stage::Done => {
                failed(Cow::Borrowed("missing_grpc_status"))
            }
            // The caller dropped the call or its response stream first.
            (None, None, None) => failed(Cow::Borrowed("cancelled")),
        };
        let (gateway_status, error_type) = classified.into_gateway_outcome();
        (status, error_type, gateway_status)
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let secs = self.start.elapsed_secs();
        let (status, error_type, gateway_status) = self.outcome();
        let (request, ids) = with_span(&self.span, |mut h| {
            if let Some(c) = status {
                h.set_attribute(KeyValue::new(keys::RPC_RESPONSE_STATUS_CODE, c.as_str()));
            }
            if let Some(e) = &error_type {
                h.set_attribute(KeyValue::new(keys::ERROR_TYPE, e.to_string()));
                h.set_error(e.clone());
            }
            (h.request().cloned(), h.sampled_ids())
        })
        .unwrap_or_default();
        if let Some(s) = &self.signals {
            s.rpc_client_call(
                Cow::Borrowed(self.method),
                self.server.map(Cow::Borrowed),
                status,
                error_type.clone(),
                self.gateway.clone(),
                secs,
                ids,
            );
            if let Some(g) = &self.gateway {
                s.gateway_call(g.clone(), gateway_status, error_type.clone(), secs, ids);
            }
        }
        if let (Some(g), Some(req)) = (&self.gateway, request) {
            if gateway_status != GatewayStatus::Success {
                req.record_gateway_failure(GatewayFailure {
                    gateway: g.clone(),
                    status: gateway_status,
                    error_type: error_type.unwrap_or(Cow::Borrowed("error")),
                });
            }
        }
    }
}

/// A transport error: tonic's `TimeoutExpired` anywhere in the source
/// chain is a timeout; else what observe's classification says.
fn classify_error(e: &(dyn StdError + 'static)) -> Classified {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<tonic::TimeoutExpired>() {
            return Classified::Failed {
                error_type: Cow::Borrowed("timeout"),
                message: err.to_string(),
                timeout: true,
                implicit: false,
            };
        }
        cur = err.source();
    }
    classify::error(e)
}

pin_project! {
    /// The response future of [`GrpcClient`].
    pub struct GrpcClientFuture<F> {
        #[pin]
        inner: F,
        span: Span,
        guard: Option<CallGuard>,
    }
}

impl<F> std::fmt::Debug for GrpcClientFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcClientFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for GrpcClientFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
    B: http_body::Body,
{
    type Output = Result<Response<GrpcBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.span.enter();
            ready!(this.inner.poll(cx))
        };
        let guard = this.guard.take();
        match result {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                let body = match guard {
                    Some(mut g) => {
                        g.progress().headers(&parts.headers);
                        GrpcBody::new(body, g)
                    }
                    None => GrpcBody {
                        inner: body,
                        guard: None,
                    },
                };
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
            Err(e) => {
                let e: BoxError = e.into();
                if let Some(CallGuard::Client(mut g)) = guard {
                    g.failure = Some(classify_error(e.as_ref()));
                    g.progress.stage = Stage::Done;
                }
                Poll::Ready(Err(e))
            }
        }
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for GrpcClient<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    ResB: http_body::Body,
{
    type Response = Response<GrpcBody<ResB>>;
    type Error = BoxError;
    type Future = GrpcClientFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let start = Stopwatch::start();
        // The generated client names the method it calls (tonic's `GrpcMethod`).
        let known = req
            .extensions()
            .get::<tonic::GrpcMethod<'static>>()
            .and_then(|m| Method::intern(m.service(), m.method()));
        let (method, span_name) = match known {
            Some(m) => (m.full, m.full),
            None => (OTHER_METHOD, "grpc"),
        };
        // The request's own origin, else the configured target.
        let target = match req.uri().host() {
            Some(h) => Some(Target {
                host: intern_host(h),
                port: req.uri().port_u16(),
            }),
            None => self.target,
        };
        let span = observe_core::tracing::info_span!("rpc.client.call");
        let _ = with_span(&span, |mut h| {
            if !h.is_recording() {
                return;
            }
            h.reserve_attributes(8);
            h.set_kind(SpanKind::Client);
            h.set_name(span_name);
            h.set_attribute(KeyValue::new(keys::RPC_SYSTEM_NAME, "grpc"));
            h.set_attribute(KeyValue::new(keys::RPC_METHOD, method));
            if known.is_none() {
                h.set_attribute(KeyValue::new(
                    "rpc.method_original",
                    methods::original(req.uri().path()),
                ));
            }
            if let Some(t) = target {
                h.set_attribute(KeyValue::new(keys::SERVER_ADDRESS, t.host));
                if let Some(p) = t.port {
                    h.set_attribute(KeyValue::new(keys::SERVER_PORT, i64::from(p)));
                }
            }
            if let Some(g) = &self.gateway {
                let v = match g {
                    Cow::Borrowed(s) => Value::from(*s),
                    Cow::Owned(s) => Value::from(s.clone()),
                };
                h.set_attribute(KeyValue::new(keys::GATEWAY, v));
            }
        });
        inject(&span, req.headers_mut());
        let guard = ClientGuard {
            span: span.clone(),
            start,
            method,
            server: target.map(|t| t.host),
            gateway: self.gateway.clone(),
            signals: signals(),
            failure: None,
            progress: Progress::new(),
        };
        let inner = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        GrpcClientFuture {
            inner,
            span,
            guard: Some(CallGuard::Client(guard)),
        }
    }
}
