//! [`GrpcObserve`]: the service made by [`GrpcLayer`](super::GrpcLayer).

use super::body::{CallGuard, GrpcBody, Progress};
use super::future::GrpcResponseFuture;
use super::guard::ServerGuard;
use super::layer::Config;
use super::methods::{self, OTHER_METHOD};
use http::{header, Request, Response};
use observe_core::opentelemetry::trace::SpanKind;
use observe_core::opentelemetry::{KeyValue, Value};
use observe_core::propagation::extract;
use observe_core::signals::current as signals;
use observe_core::signals::keys;
use observe_core::signals::Stopwatch;
use observe_core::span::{with_remote_context, with_span, RemoteContext};
use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_service::Service;

/// Observes each call of the gRPC server `S`. Made by [`GrpcLayer`](super::GrpcLayer).
#[derive(Clone)]
pub struct GrpcObserve<S> {
    pub(crate) inner: S,
    pub(crate) config: Arc<Config>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for GrpcObserve<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcObserve")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> GrpcObserve<S> {
    /// Wraps `inner`, recognising `methods`.
    pub fn new(inner: S, methods: super::GrpcMethods) -> Self {
        use tower_layer::Layer;
        super::GrpcLayer::new(methods).layer(inner)
    }

    /// The layer, for `ServiceBuilder` or `Server::builder().layer(..)`.
    pub fn layer(methods: super::GrpcMethods) -> super::GrpcLayer {
        super::GrpcLayer::new(methods)
    }

    crate::macros::inner_service_accessors!();
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for GrpcObserve<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: http_body::Body,
{
    type Response = Response<GrpcBody<ResB>>;
    type Error = S::Error;
    type Future = GrpcResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let start = Stopwatch::start();
        let known = self.config.methods.get(req.uri().path());
        // Span name `{rpc.method}`, or `{rpc.system.name}` for `_OTHER`.
        let (method, span_name) = match known {
            Some(m) => (m.full, m.full),
            None => (OTHER_METHOD, "grpc"),
        };
        let ctx = extract(req.headers());
        let (parent, link) = if self.config.trust_boundary {
            (None, ctx.parent)
        } else {
            (ctx.parent, None)
        };
        let synthetic = ctx.synthetic;
        let remote = RemoteContext {
            parent,
            link,
            propagated: ctx.propagated,
            synthetic,
            request: true,
        };
        let span = with_remote_context(remote, || {
            observe_core::tracing::info_span!("rpc.server.call")
        });
        let signals = signals();
        if let Some(s) = &signals {
            s.rpc_server_active(Cow::Borrowed(method), 1);
        }
        let _ = with_span(&span, |mut h| {
            if !h.is_recording() {
                return;
            }
            h.reserve_attributes(8);
            h.set_kind(SpanKind::Server);
            h.set_name(span_name);
            h.set_attribute(KeyValue::new(keys::RPC_SYSTEM_NAME, "grpc"));
            h.set_attribute(KeyValue::new(keys::RPC_METHOD, method));
            if known.is_none() {
                h.set_attribute(KeyValue::new(
                    "rpc.method_original",
                    methods::original(req.uri().path()),
                ));
            }
            let (host, port) = authority(&req);
            if let Some(host) = host {
                h.set_attribute(KeyValue::new(keys::SERVER_ADDRESS, host));
                if let Some(p) = port {
                    h.set_attribute(KeyValue::new(keys::SERVER_PORT, i64::from(p)));
                }
            }
            if synthetic {
                h.set_attribute(KeyValue::new(keys::SYNTHETIC, true));
            }
        });
        let guard = ServerGuard {
            span: span.clone(),
            start,
            method,
            signals,
            synthetic,
            server_errors: self.config.server_errors,
            progress: Progress::new(),
        };
        let inner = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        GrpcResponseFuture {
            inner,
            span,
            guard: Some(CallGuard::Server(guard)),
        }
    }
}

/// The address the client used (`:authority`, else `Host`) and its port;
/// the host interned (a span attribute without an allocation).
fn authority<B>(req: &Request<B>) -> (Option<Value>, Option<u16>) {
    let value = |h: &str| match methods::host(h) {
        Some(s) => Value::from(s),
        None => Value::from(h.to_owned()),
    };
    if let Some(host) = req.uri().host() {
        return (Some(value(host)), req.uri().port_u16());
    }
    let parsed = req
        .headers()
        .get(header::HOST)
        .and_then(|v| http::uri::Authority::try_from(v.as_bytes()).ok());
    match parsed {
        Some(a) => (Some(value(a.host())), a.port_u16()),
        None => (None, None),
    }
}
