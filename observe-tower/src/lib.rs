//! observe's tower layers: W3C Trace Context in and out, server spans, HTTP
//! golden signals, and the gateway client layer.
#![forbid(unsafe_code)]

pub mod client;
pub mod propagation;
#[cfg(feature = "reqwest")]
pub mod reqwest;
pub mod server;
pub mod w3c;

pub use client::{Gateway, GatewayLayer};
pub use server::{JsonFailureRule, Observe, ObserveLayer, RouteClassifier};
