//! observe's tower layers: W3C Trace Context in and out, server spans, HTTP
//! golden signals, and the gateway client layer.
#![forbid(unsafe_code)]

pub mod w3c;
