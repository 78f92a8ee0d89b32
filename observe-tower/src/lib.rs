//! observe's tower layers: W3C Trace Context in and out, server spans, HTTP
//! golden signals, and the gateway client layer.
#![forbid(unsafe_code)]

pub mod client;
#[cfg(feature = "grpc")]
pub mod grpc;
mod macros;
mod masked;
#[cfg(feature = "reqwest")]
pub mod reqwest;
pub mod server;

/// W3C Trace Context and Baggage in and out of header maps (observe-core's).
pub use observe_core::propagation;
/// The W3C `traceparent`, `tracestate` and `baggage` parsers (observe-core's).
pub use observe_core::w3c;

pub use client::{Gateway, GatewayLayer};
pub use server::{JsonFailureRule, Observe, ObserveLayer, RouteClassifier};
