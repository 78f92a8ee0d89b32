//! The client layer for outbound calls to a gateway (an external dependency):
//! injects W3C context, makes a client span, records
//! `http.client.request.duration` and the gateway metrics, and reports
//! failures to the enclosing request (masked-failure detection).
//!
//! ```
//! use tower::ServiceBuilder;
//! # let client = tower::service_fn(|_req: http::Request<String>| async {
//! #     Ok::<_, std::io::Error>(http::Response::new(String::new()))
//! # });
//! let bank = ServiceBuilder::new()
//!     .layer(observe_tower::GatewayLayer::new("bank"))
//!     .service(client);
//! ```
//!
//! 2xx and 3xx are `success`; 4xx and 5xx `error` with `error.type` = the
//! code; transport errors `timeout` (a timed-out I/O error or an elapsed
//! timer in the error's source chain) or `error` (named after the I/O error
//! kind), as [`observe_core::classify`] decides for every layer. Replace the
//! classification with [`GatewayLayer::classifier`].

use http::{Request, Response};
use observe_core::classify::{self, Classified, GatewayFailure, GatewayStatus};
use observe_core::opentelemetry::trace::SpanKind;
use observe_core::opentelemetry::KeyValue;
use observe_core::propagation::inject;
use observe_core::signals::keys;
use observe_core::signals::Stopwatch;
use observe_core::signals::{current as signals, Signals};
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

/// The outcome of a gateway call: status and `error.type`.
pub type Classification = (GatewayStatus, Option<Cow<'static, str>>);

/// Decides a gateway call's outcome from its response status or its error.
pub trait GatewayClassifier: Send + Sync + 'static {
    /// Classifies a response status.
    fn classify_status(&self, status: http::StatusCode) -> Classification;
    /// Classifies a transport error.
    fn classify_error(&self, error: &(dyn StdError + 'static)) -> Classification;
}

/// The default classification (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultGatewayClassifier;

impl GatewayClassifier for DefaultGatewayClassifier {
    fn classify_status(&self, status: http::StatusCode) -> Classification {
        classification(classify::response(status))
    }

    fn classify_error(&self, error: &(dyn StdError + 'static)) -> Classification {
        classification(classify::error(error))
    }
}

/// A classified result as a gateway call's status and `error.type`.
fn classification(c: Classified) -> Classification {
    c.into_gateway_outcome()
}

/// Observes calls to the gateway `name` through any tower HTTP client.
#[derive(Clone)]
pub struct GatewayLayer {
    name: Cow<'static, str>,
    classifier: Arc<dyn GatewayClassifier>,
}

impl std::fmt::Debug for GatewayLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayLayer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl GatewayLayer {
    /// A layer for the gateway `name` (a fixed, low-cardinality name: never user input).
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        GatewayLayer {
            name: name.into(),
            classifier: Arc::new(DefaultGatewayClassifier),
        }
    }

    /// Replaces the outcome classification.
    pub fn classifier(mut self, c: impl GatewayClassifier) -> Self {
        self.classifier = Arc::new(c);
        self
    }
}

impl<S> Layer<S> for GatewayLayer {
    type Service = Gateway<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Gateway {
            inner,
            name: self.name.clone(),
            classifier: Arc::clone(&self.classifier),
        }
    }
}

/// The service made by [`GatewayLayer`].
#[derive(Clone)]
pub struct Gateway<S> {
    inner: S,
    name: Cow<'static, str>,
    classifier: Arc<dyn GatewayClassifier>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Gateway<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("inner", &self.inner)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<S> Gateway<S> {
    crate::macros::inner_service_accessors!();
}

pub(crate) struct CallGuard {
    pub(crate) span: Span,
    start: Stopwatch,
    method: &'static str,
    server: Cow<'static, str>,
    gateway: Cow<'static, str>,
    signals: Option<Arc<Signals>>,
    outcome: Option<(Option<u16>, Classification)>,
}

impl CallGuard {
    /// Opens the client span of a call to `gateway` and injects its context
    /// into `headers`.
    pub(crate) fn start(
        gateway: Cow<'static, str>,
        method: &http::Method,
        uri: &http::Uri,
        headers: &mut http::HeaderMap,
    ) -> Self {
        let method = crate::server::method_name(method);
        let server: Cow<'static, str> = uri
            .host()
            .map_or(Cow::Borrowed("unknown"), |h| Cow::Owned(h.to_owned()));
        let span = observe_core::tracing::info_span!("http.client.request");
        let _ = with_span(&span, |mut h| {
            if !h.is_recording() {
                return;
            }
            h.reserve_attributes(8);
            h.set_kind(SpanKind::Client);
            h.set_name(method);
            h.set_attribute(KeyValue::new(keys::HTTP_REQUEST_METHOD, method));
            h.set_attribute(KeyValue::new(keys::SERVER_ADDRESS, server.to_string()));
            if let Some(p) = uri.port_u16() {
                h.set_attribute(KeyValue::new("server.port", i64::from(p)));
            }
            h.set_attribute(KeyValue::new("url.full", uri.to_string()));
            h.set_attribute(KeyValue::new(keys::GATEWAY, gateway.to_string()));
        });
        inject(&span, headers);
        CallGuard {
            span,
            start: Stopwatch::start(),
            method,
            server,
            gateway,
            signals: signals(),
            outcome: None,
        }
    }

    /// Records the call's outcome (recorded when the guard drops).
    pub(crate) fn set_outcome(&mut self, status_code: Option<u16>, c: Classification) {
        self.outcome = Some((status_code, c));
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        let secs = self.start.elapsed_secs();
        let (status_code, (status, error_type)) = self.outcome.take().unwrap_or((
            None,
            (GatewayStatus::Error, Some(Cow::Borrowed("cancelled"))),
        ));
        let (request, ids) = with_span(&self.span, |mut h| {
            if let Some(c) = status_code {
                h.set_attribute(KeyValue::new(keys::HTTP_RESPONSE_STATUS_CODE, i64::from(c)));
            }
            if let Some(e) = &error_type {
                h.set_attribute(KeyValue::new(keys::ERROR_TYPE, e.to_string()));
                h.set_error(e.clone());
            }
            (h.request().cloned(), h.sampled_ids())
        })
        .unwrap_or_default();
        if let Some(s) = &self.signals {
            s.client_request(
                self.method,
                self.server.clone(),
                status_code,
                error_type.clone(),
                self.gateway.clone(),
                secs,
                ids,
            );
            s.gateway_call(self.gateway.clone(), status, error_type.clone(), secs, ids);
        }
        if status != GatewayStatus::Success {
            if let Some(req) = request {
                req.record_gateway_failure(GatewayFailure {
                    gateway: self.gateway.clone(),
                    status,
                    error_type: error_type.unwrap_or(Cow::Borrowed("error")),
                });
            }
        }
    }
}

pin_project! {
    /// The response future of [`Gateway`].
    pub struct GatewayFuture<F> {
        #[pin]
        inner: F,
        guard: Option<CallGuard>,
        classifier: Arc<dyn GatewayClassifier>,
    }
}

impl<F> std::fmt::Debug for GatewayFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for GatewayFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    type Output = Result<Response<B>, Box<dyn StdError + Send + Sync>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.guard.as_ref() {
            Some(g) => {
                let _e = g.span.enter();
                ready!(this.inner.poll(cx))
            }
            None => ready!(this.inner.poll(cx)),
        };
        let result = result.map_err(Into::into);
        if let Some(mut g) = this.guard.take() {
            match &result {
                Ok(r) => g.set_outcome(
                    Some(r.status().as_u16()),
                    this.classifier.classify_status(r.status()),
                ),
                Err(e) => g.set_outcome(None, this.classifier.classify_error(e.as_ref())),
            }
        }
        Poll::Ready(result)
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Gateway<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Response = Response<ResB>;
    type Error = Box<dyn StdError + Send + Sync>;
    type Future = GatewayFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let (method, uri) = (req.method().clone(), req.uri().clone());
        let guard = CallGuard::start(self.name.clone(), &method, &uri, req.headers_mut());
        let span = guard.span.clone();
        let inner = {
            let _e = span.enter();
            self.inner.call(req)
        };
        GatewayFuture {
            inner,
            guard: Some(guard),
            classifier: Arc::clone(&self.classifier),
        }
    }
}
