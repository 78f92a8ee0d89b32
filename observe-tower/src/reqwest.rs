//! The gateway client layer as a `reqwest-middleware` middleware (feature
//! `reqwest`): the same client span, context injection, metrics and
//! masked-failure bookkeeping as [`GatewayLayer`](crate::GatewayLayer).
//!
//! ```no_run
//! # async fn run() -> Result<(), reqwest_middleware::Error> {
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(observe_tower::reqwest::GatewayMiddleware::new("bank"))
//!     .build();
//! let _res = client.post("http://bank.internal/charge").send().await?;
//! # Ok(()) }
//! ```

use crate::client::{CallGuard, DefaultGatewayClassifier, GatewayClassifier};
use observe_core::tracing::Instrument;
use reqwest_middleware::{Middleware, Next};
use std::borrow::Cow;
use std::sync::Arc;

/// Observes the calls of a `reqwest_middleware::ClientWithMiddleware` to one gateway.
#[derive(Clone)]
pub struct GatewayMiddleware {
    name: Cow<'static, str>,
    classifier: Arc<dyn GatewayClassifier>,
}

impl std::fmt::Debug for GatewayMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayMiddleware")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl GatewayMiddleware {
    /// For the gateway `name` (a fixed, low-cardinality name).
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        GatewayMiddleware {
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

#[async_trait::async_trait]
impl Middleware for GatewayMiddleware {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let uri: http::Uri = req.url().as_str().parse().unwrap_or_default();
        let method = req.method().clone();
        let mut guard = CallGuard::start(self.name.clone(), &method, &uri, req.headers_mut());
        let span = guard.span.clone();
        let result = next.run(req, extensions).instrument(span).await;
        match &result {
            Ok(r) => guard.set_outcome(
                Some(r.status().as_u16()),
                self.classifier.classify_status(r.status()),
            ),
            // The classifier sees the reqwest error itself (the middleware
            // error is transparent: its source chain starts below it).
            Err(reqwest_middleware::Error::Reqwest(e)) => guard.set_outcome(
                e.status().map(|s| s.as_u16()),
                self.classifier.classify_error(e),
            ),
            Err(e) => guard.set_outcome(None, self.classifier.classify_error(e)),
        }
        drop(guard);
        result
    }
}
