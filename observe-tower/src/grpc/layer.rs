//! [`GrpcLayer`] and its builder methods.

use super::methods::GrpcMethods;
use super::service::GrpcObserve;
use observe_core::classify::grpc::GrpcCodes;
use std::sync::Arc;
use tower_layer::Layer;

/// Settings shared by every [`GrpcObserve`] service a layer makes.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) methods: GrpcMethods,
    pub(crate) server_errors: GrpcCodes,
    pub(crate) trust_boundary: bool,
}

/// Observes every call of the wrapped gRPC server (a tonic `Server`, its
/// router, or one generated service): W3C context from the metadata, a
/// server span `package.Service/Method`, `rpc.server.call.duration` and
/// active calls, implicit and masked failures.
///
/// ```
/// use observe_tower::grpc::{GrpcLayer, GrpcMethods};
///
/// let methods = GrpcMethods::new().service("shop.v1.Payments", ["Charge", "ListCharges"])?;
/// let layer = GrpcLayer::new(methods);
/// // tonic::transport::Server::builder().layer(layer).add_service(..)
/// # drop(layer);
/// # Ok::<(), observe_tower::grpc::GrpcMethodsError>(())
/// ```
#[derive(Clone, Debug)]
pub struct GrpcLayer {
    pub(crate) config: Arc<Config>,
}

impl GrpcLayer {
    /// A layer recognising `methods` (every other path is `_OTHER`); the
    /// server errors of the semantic conventions; incoming context trusted.
    pub fn new(methods: GrpcMethods) -> Self {
        GrpcLayer {
            config: Arc::new(Config {
                methods,
                server_errors: GrpcCodes::SERVER_ERRORS,
                trust_boundary: false,
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// The codes that are failures of this server (`error.type`, span
    /// status Error); default [`GrpcCodes::SERVER_ERRORS`].
    pub fn server_errors(mut self, codes: GrpcCodes) -> Self {
        self.config_mut().server_errors = codes;
        self
    }

    /// At a trust boundary: start a new trace for every call and keep the
    /// incoming context as a span link instead of a parent.
    pub fn trust_boundary(mut self, yes: bool) -> Self {
        self.config_mut().trust_boundary = yes;
        self
    }
}

impl<S> Layer<S> for GrpcLayer {
    type Service = GrpcObserve<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcObserve {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}
