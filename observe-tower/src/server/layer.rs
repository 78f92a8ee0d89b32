//! [`ObserveLayer`] and its builder methods.

use super::classify::{JsonFailureRule, MatchedPathRoute, RouteClassifier};
use super::Observe;
use std::sync::Arc;
use tower_layer::Layer;

/// Settings shared by every [`Observe`] service a layer makes.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) route: Arc<dyn RouteClassifier>,
    pub(crate) trust_boundary: bool,
    pub(crate) json_rules: Vec<Arc<JsonFailureRule>>,
}

/// Observes every request of the wrapped HTTP service: W3C context in and
/// out, a server span, golden-signal metrics, implicit and masked failures.
///
/// ```
/// use axum::{routing::get, Router};
/// let app: Router = Router::new()
///     .route("/pay", get(|| async { "ok" }))
///     .layer(observe_tower::ObserveLayer::new());
/// ```
#[derive(Clone)]
pub struct ObserveLayer {
    pub(crate) config: Arc<Config>,
}

impl std::fmt::Debug for ObserveLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserveLayer")
            .field("trust_boundary", &self.config.trust_boundary)
            .field("json_rules", &self.config.json_rules.len())
            .finish()
    }
}

impl Default for ObserveLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ObserveLayer {
    /// Routes from axum's `MatchedPath`; incoming context trusted as parent.
    pub fn new() -> Self {
        ObserveLayer {
            config: Arc::new(Config {
                route: Arc::new(MatchedPathRoute),
                trust_boundary: false,
                json_rules: Vec::new(),
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Names routes with `classifier` (for frameworks without `MatchedPath`).
    pub fn route_classifier(mut self, classifier: impl RouteClassifier) -> Self {
        self.config_mut().route = Arc::new(classifier);
        self
    }

    /// At a trust boundary: start a new trace for every request and keep the
    /// incoming context as a span link instead of a parent.
    pub fn trust_boundary(mut self, yes: bool) -> Self {
        self.config_mut().trust_boundary = yes;
        self
    }

    /// Treats JSON responses matching `rule` as implicit failures.
    pub fn json_failure(mut self, rule: JsonFailureRule) -> Self {
        self.config_mut().json_rules.push(Arc::new(rule));
        self
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}
