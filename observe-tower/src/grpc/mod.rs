//! gRPC (tonic) server and client layers (feature `grpc`): the same
//! spans, golden signals, masked failures and alerts as HTTP, named by the
//! OpenTelemetry semantic conventions for RPC and gRPC, v1.44.0.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use observe_tower::grpc::{GrpcLayer, GrpcMethods};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! // A gRPC server answering `INTERNAL` in a trailers-only response.
//! let server = tower::service_fn(|_req: http::Request<String>| async {
//!     let res = http::Response::builder()
//!         .header("content-type", "application/grpc")
//!         .header("grpc-status", "13")
//!         .body(String::new())?;
//!     Ok::<_, http::Error>(res)
//! });
//! let methods = GrpcMethods::new().service("shop.v1.Payments", ["Charge"])?;
//! let (_, cap) = observe_core::testing::Harness::new("payments").run_async(async {
//!     let svc = ServiceBuilder::new().layer(GrpcLayer::new(methods)).service(server);
//!     let req = http::Request::post("/shop.v1.Payments/Charge").body(String::new()).unwrap();
//!     let _ = svc.oneshot(req).await;
//! }).await;
//! let span = &cap.spans[0];
//! assert_eq!(span.name, "shop.v1.Payments/Charge");
//! let error_type = span.attributes.iter().find(|kv| kv.key.as_str() == "error.type");
//! assert_eq!(error_type.map(|kv| kv.value.to_string()).as_deref(), Some("INTERNAL"));
//! # Ok(())
//! # }
//! ```
//!
//! | layer | put it | records |
//! |---|---|---|
//! | [`GrpcLayer`] | `tonic::transport::Server::builder().layer(..)` (or around one service) | server span, `rpc.server.call.duration`, `observe.rpc.server.active_calls`, `observe.masked_failures{rpc.method}` |
//! | [`GrpcClientLayer`] | between a generated client and its `Channel` | client span, W3C context into the metadata, `rpc.client.call.duration`; with [`GrpcClientLayer::gateway`] also `external_gateway.requests` / `.request.duration` |
//!
//! # Names (semantic conventions v1.44.0)
//! - Span name `{rpc.method}` (`shop.v1.Payments/Charge`); `grpc` for a
//!   method the server does not define.
//! - Span attributes: `rpc.system.name` = `grpc`, `rpc.method`,
//!   `rpc.response.status_code` (`OK`, `NOT_FOUND`, ...), `error.type`
//!   when the call failed, `server.address` / `server.port`; for an unknown
//!   method `rpc.method = _OTHER` and `rpc.method_original` (spans only).
//! - `rpc.method` values come only from the service definitions
//!   ([`GrpcMethods`], e.g. from a `FileDescriptorSet`) on the server and
//!   from the generated client (`tonic::GrpcMethod`) on the client: never
//!   from a request path.
//!
//! # When things are recorded
//! - A call starts when the request reaches the layer and ends when its
//!   response stream ends (after the trailers) or is dropped: a streaming
//!   call's duration covers every message.
//! - The status is `grpc-status` from the response headers (a
//!   trailers-only response) or the trailers. On the server, `error.type` is
//!   the code's name when it is one of the server errors
//!   ([`GrpcCodes::SERVER_ERRORS`](observe_core::classify::grpc::GrpcCodes::SERVER_ERRORS):
//!   `UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`,
//!   `UNAVAILABLE`, `DATA_LOSS`; [`GrpcLayer::server_errors`] changes the
//!   set); `panic` when the handler panicked; `masked_failure` when the
//!   call answered `OK` although a gateway call inside it failed; an
//!   implicit failure's reason. A call the client cancelled (before the
//!   response or mid-stream) is `CANCELLED`, not a server error by default.
//! - On the client every code but `OK` is a failure; `cancelled` when the
//!   caller dropped the call or the stream early.

mod body;
mod client;
mod future;
mod guard;
mod layer;
mod methods;
mod service;

pub use body::GrpcBody;
pub use client::{GrpcClient, GrpcClientFuture, GrpcClientLayer};
pub use future::GrpcResponseFuture;
pub use layer::GrpcLayer;
pub use methods::{GrpcMethods, GrpcMethodsError, OTHER_METHOD};
pub use observe_core::classify::grpc::{GrpcCode, GrpcCodes};
pub use service::GrpcObserve;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}
    fn assert_sync<T: Sync>() {}

    #[test]
    fn layers_services_and_futures_are_send_and_sync() {
        assert_send::<GrpcLayer>();
        assert_sync::<GrpcLayer>();
        assert_send::<GrpcClientLayer>();
        assert_sync::<GrpcClientLayer>();
        assert_send::<GrpcObserve<()>>();
        assert_sync::<GrpcObserve<()>>();
        assert_send::<GrpcClient<()>>();
        assert_send::<GrpcBody<String>>();
        assert_send::<GrpcResponseFuture<std::future::Ready<()>>>();
        assert_send::<GrpcClientFuture<std::future::Ready<()>>>();
    }
}
