//! [`Observe`]: the service made by [`ObserveLayer`](super::ObserveLayer).

use super::classify::{method_name, UNMATCHED_ROUTE};
use super::future::ResponseFuture;
use super::guard::{RequestGuard, Stage};
use super::intern;
use super::layer::Config;
use http::{header, Request, Response};
use observe_core::opentelemetry::trace::SpanKind;
use observe_core::opentelemetry::KeyValue;
use observe_core::propagation::{extract, traceparent};
use observe_core::signals::current as signals;
use observe_core::signals::keys;
use observe_core::signals::Stopwatch;
use observe_core::span::{with_remote_context, with_span, RemoteContext};
use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_service::Service;

/// Observes each request of `S`. Made by [`ObserveLayer`](super::ObserveLayer).
#[derive(Clone)]
pub struct Observe<S> {
    pub(crate) inner: S,
    pub(crate) config: Arc<Config>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Observe<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observe")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> Observe<S> {
    /// Wraps `inner` with default settings.
    pub fn new(inner: S) -> Self {
        use tower_layer::Layer;
        super::ObserveLayer::new().layer(inner)
    }

    /// The layer, for `ServiceBuilder`.
    pub fn layer() -> super::ObserveLayer {
        super::ObserveLayer::new()
    }

    crate::macros::inner_service_accessors!();
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Observe<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: http_body::Body,
{
    type Response = Response<super::ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let start = Stopwatch::start();
        let method = method_name(req.method());
        let (route, span_name) =
            match self
                .config
                .route
                .route(req.method(), req.uri(), req.extensions())
            {
                Some(r) => intern::names(method, &r),
                None => (Cow::Borrowed(UNMATCHED_ROUTE), Cow::Borrowed(method)),
            };
        let scheme = match req.uri().scheme_str() {
            Some("https") => "https",
            _ => "http",
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
            observe_core::tracing::info_span!("http.server.request")
        });
        let signals = signals();
        if let Some(s) = &signals {
            s.server_active(method, scheme, 1);
        }
        let inspect = self
            .config
            .json_rules
            .iter()
            .find(|r| r.applies(&route))
            .map(|r| (Arc::clone(r), Vec::new()));
        let traceparent = with_span(&span, |mut h| {
            let traceparent = traceparent(&h);
            if !h.is_recording() {
                return traceparent;
            }
            h.reserve_attributes(12);
            h.set_kind(SpanKind::Server);
            h.set_name(span_name);
            h.set_attribute(KeyValue::new(keys::HTTP_REQUEST_METHOD, method));
            h.set_attribute(KeyValue::new(keys::HTTP_ROUTE, cow_value(route.clone())));
            h.set_attribute(KeyValue::new(
                "url.path",
                path_value(req.uri().path(), &route),
            ));
            h.set_attribute(KeyValue::new(keys::URL_SCHEME, scheme));
            if let Some(q) = req.uri().query() {
                h.set_attribute(KeyValue::new("url.query", q.to_owned()));
            }
            let host = req.uri().host().map(str::to_owned).or_else(|| {
                req.headers()
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .map(|h| h.rsplit_once(':').map_or(h, |(a, _)| a).to_owned())
            });
            if let Some(host) = host {
                h.set_attribute(KeyValue::new(keys::SERVER_ADDRESS, host));
            }
            if let Some(ua) = req
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
            {
                h.set_attribute(KeyValue::new("user_agent.original", ua.to_owned()));
            }
            #[cfg(feature = "axum")]
            if let Some(ci) = req
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            {
                h.set_attribute(KeyValue::new("client.address", ci.0.ip().to_string()));
                h.set_attribute(KeyValue::new("client.port", i64::from(ci.0.port())));
            }
            if synthetic {
                h.set_attribute(KeyValue::new(keys::SYNTHETIC, true));
            }
            traceparent
        })
        .flatten();
        let guard = RequestGuard {
            span: span.clone(),
            start,
            method,
            scheme,
            route,
            signals,
            synthetic,
            status: None,
            error_type: None,
            stage: Stage::Pending,
            inspect,
            traceparent,
        };
        let inner = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        ResponseFuture {
            inner,
            span,
            guard: Some(guard),
        }
    }
}

/// `url.path`: the interned route itself when the path is the route (a
/// route without parameters), so such a request copies no path. (The `Cow`
/// says whether the route is interned, that is `'static`.)
#[allow(clippy::ptr_arg)]
fn path_value(path: &str, route: &Cow<'static, str>) -> observe_core::opentelemetry::Value {
    match route {
        Cow::Borrowed(r) if *r == path => observe_core::opentelemetry::Value::from(*r),
        _ => observe_core::opentelemetry::Value::from(path.to_owned()),
    }
}

/// A span attribute value from a route without copying an interned one.
fn cow_value(c: Cow<'static, str>) -> observe_core::opentelemetry::Value {
    match c {
        Cow::Borrowed(s) => observe_core::opentelemetry::Value::from(s),
        Cow::Owned(s) => observe_core::opentelemetry::Value::from(s),
    }
}
