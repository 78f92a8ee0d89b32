//! The server layer: W3C Trace Context in and out, a server span per
//! request, HTTP golden signals, implicit and masked failures.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use axum::{routing::get, Router};
//! use tower::ServiceExt;
//!
//! let (_, cap) = observe_core::testing::Harness::new("payments").run_async(async {
//!     let app = Router::new()
//!         .route("/pay", get(|| async { "ok" }))
//!         .layer(observe_tower::ObserveLayer::new());
//!     let res = app
//!         .oneshot(http::Request::get("/pay").body(axum::body::Body::empty()).unwrap())
//!         .await
//!         .unwrap();
//!     assert!(res.headers().contains_key("traceparent"));
//!     let _ = axum::body::to_bytes(res.into_body(), 1024).await;
//! }).await;
//! assert_eq!(cap.spans[0].name, "GET /pay");
//! # }
//! ```
//!
//! # When things are recorded
//! - The span starts when the request reaches the layer and ends when the
//!   response body ends or is dropped; so does `http.server.request.duration`.
//! - `error.type` is the status code for 5xx; the reason for an implicit
//!   failure ([`observe_core::mark_failed`], an [`observe_core::ImplicitFailure`]
//!   response extension, a [`JsonFailureRule`]); `masked_failure` when a
//!   gateway call inside failed and the response is 2xx/3xx; `cancelled` when
//!   the client went away before the response, `response_aborted` during the body.

mod body;
mod classify;
mod future;
mod guard;
mod intern;
mod layer;
mod service;

pub use body::ResponseBody;
pub(crate) use classify::method_name;
pub use classify::{JsonFailureRule, MatchedPathRoute, RouteClassifier, UNMATCHED_ROUTE};
pub use future::ResponseFuture;
pub use layer::ObserveLayer;
pub use service::Observe;
