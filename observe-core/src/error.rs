//! Typed errors of init and shutdown. Each says what to fix.

use std::time::Duration;

/// Why [`TelemetryBuilder::init`](crate::TelemetryBuilder::init) or
/// [`TelemetryBuilder::build`](crate::TelemetryBuilder::build) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// A global subscriber or telemetry was already installed in this process.
    #[error("observe is already initialised in this process: call observe::init once, at the start of main, and keep its guard; in tests use observe::testing or TelemetryBuilder::build with a scoped dispatcher")]
    AlreadyInitialized,
    /// The service name is empty or not printable.
    #[error("the service name {name:?} is invalid: use a short printable name such as \"payment-service\"")]
    InvalidServiceName {
        /// The rejected name.
        name: String,
    },
    /// An OTLP endpoint is not an `http://` or `https://` URL with a host.
    #[error("{variable} = {value:?} is not a valid OTLP endpoint: write a URL such as http://127.0.0.1:4317 (gRPC) or http://127.0.0.1:4318 (HTTP)")]
    InvalidEndpoint {
        /// Where the value came from (an environment variable or the builder).
        variable: &'static str,
        /// The rejected value.
        value: String,
    },
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` names a protocol observe does not speak.
    #[error("OTLP protocol {value:?} is not supported: use \"grpc\" or \"http/protobuf\"")]
    UnsupportedProtocol {
        /// The rejected value.
        value: String,
    },
    /// `OTEL_EXPORTER_OTLP_COMPRESSION` (or a signal's) names a compression
    /// observe does not send.
    #[error(
        "{variable} = {value:?} is not a supported OTLP compression: use \"gzip\" or \"none\""
    )]
    UnsupportedCompression {
        /// The variable it was read from.
        variable: String,
        /// The rejected value.
        value: String,
    },
    /// `OTEL_EXPORTER_OTLP_HEADERS` is not a list of `key=value` pairs.
    #[error("OTLP headers {value:?} are malformed: write key=value pairs separated by commas, values percent-encoded")]
    InvalidHeaders {
        /// The rejected value.
        value: String,
    },
    /// `OTEL_TRACES_SAMPLER` names an unknown sampler.
    #[error("unknown sampler {name:?}: use always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio")]
    UnknownSampler {
        /// The rejected name.
        name: String,
    },
    /// `OTEL_TRACES_SAMPLER_ARG` is not a ratio between 0 and 1.
    #[error("sampler argument {value:?} is not a number between 0 and 1")]
    InvalidSamplerArg {
        /// The rejected value.
        value: String,
    },
    /// A level filter (`RUST_LOG` or the builder) does not parse.
    #[error("log filter {value:?} is invalid ({reason}): use directives such as \"info\" or \"info,my_crate=debug\"")]
    InvalidLogFilter {
        /// The rejected filter.
        value: String,
        /// The parser's explanation.
        reason: String,
    },
    /// A log sampling rule does not parse or has a rate outside 0..=1.
    #[error("log sampling rule {value:?} is invalid: write e.g. \"error=1,warn=0.1,info=0.01,event:health_check_ok=0.0001\"")]
    InvalidLogSampling {
        /// The rejected rule.
        value: String,
    },
    /// `OTEL_RESOURCE_ATTRIBUTES` is not a list of `key=value` pairs.
    #[error("OTEL_RESOURCE_ATTRIBUTES = {value:?} is malformed: write key=value pairs separated by commas")]
    InvalidResourceAttributes {
        /// The rejected value.
        value: String,
    },
    /// In a `production` environment a pseudonym key is required.
    #[error("no pseudonym key in a production environment: set OBSERVE_PSEUDONYM_KEY (at least 16 bytes) or call TelemetryBuilder::pseudonym_key, so pseudonyms stay stable across restarts and replicas")]
    MissingPseudonymKey,
    /// The pseudonym key is too short.
    #[error("the pseudonym key is {len} bytes long: use at least 16 random bytes")]
    WeakPseudonymKey {
        /// Its length.
        len: usize,
    },
    /// The tail sampling configuration is invalid.
    #[error("the tail sampling configuration is invalid: {reason}")]
    TailSampling {
        /// What is wrong, naming the setting.
        reason: String,
    },
    /// A TLS file (`OTEL_EXPORTER_OTLP_CERTIFICATE`, `_CLIENT_CERTIFICATE`,
    /// `_CLIENT_KEY`, a signal's, or the builder's) cannot be used.
    #[error("{variable} = {path:?} {reason}: give a PEM file")]
    TlsFile {
        /// Where the path came from (an environment variable or the builder).
        variable: String,
        /// The path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A client certificate without its key, or a key without its certificate.
    #[error(
        "{given} is set without {missing}: mutual TLS needs the client's certificate and its key"
    )]
    TlsIdentity {
        /// The setting that was given.
        given: String,
        /// The one that is missing.
        missing: String,
    },
    /// A variable set to a value observe does not accept (a batch size, a
    /// delay, a temporality, a propagator, a limit, a log level).
    #[error("{variable} = {value:?} is not valid: use {accepted}")]
    InvalidVariable {
        /// The variable.
        variable: String,
        /// The rejected value.
        value: String,
        /// What it accepts.
        accepted: String,
    },
    /// A boolean variable (`OTEL_EXPORTER_OTLP_INSECURE`, ...) that is neither `true` nor `false`.
    #[error("{variable} = {value:?} is not a boolean: use \"true\" or \"false\"")]
    InvalidBool {
        /// The variable.
        variable: String,
        /// The rejected value.
        value: String,
    },
    /// The OTLP exporter could not be built.
    #[error("could not build the OTLP {signal} exporter: {reason}")]
    Exporter {
        /// `traces`, `metrics` or `logs`.
        signal: &'static str,
        /// The exporter's message.
        reason: String,
    },
    /// A log file could not be opened.
    #[error("could not open log file {path:?}: {source}")]
    LogFile {
        /// The path.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A background thread could not be started.
    #[error("could not start the {what} thread: {source}")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Why [`TelemetryGuard::shutdown`](crate::TelemetryGuard::shutdown) did not finish cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShutdownError {
    /// The deadline passed before every signal was flushed.
    #[error("shutdown did not finish within {deadline:?}: {pending}")]
    Timeout {
        /// The deadline given.
        deadline: Duration,
        /// What was still pending.
        pending: String,
    },
    /// A provider reported an error while flushing.
    #[error("flushing {signal} failed: {reason}")]
    Flush {
        /// `traces`, `metrics`, `logs` or `stdout`.
        signal: &'static str,
        /// The reason.
        reason: String,
    },
}
