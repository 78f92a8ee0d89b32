//! What the rest of the process emits, joined to observe's spans and
//! lines: records of crates that log through the `log` crate ([`log`],
//! through tracing-log), and spans of libraries that use the OpenTelemetry
//! API's global tracer and propagator ([`otel`]). `init` installs both;
//! spans and events of other crates that use `tracing` need no bridge
//! (observe's layer sees them as it sees its own).

pub(crate) mod log;
pub(crate) mod otel;
