//! `log` records as observe lines: tracing-log's `LogTracer` turns each
//! record into a tracing event, which observe's layer writes like any other
//! (mandatory fields, the current `trace_id` and `span_id`, `RUST_LOG`
//! applied to the record's target). The line's `target` is the record's
//! target and its `event` that target in snake_case (the rule for every
//! event without an `event` field): `hyper_util::client::legacy::pool` →
//! `hyper_util_client_legacy_pool`. tracing-log's `log.module_path`,
//! `log.file` and `log.line` fields are left out (see
//! `layer::fields::is_log_callsite`).

/// Installs the bridge as the process's `log` logger, with `log`'s own
/// maximum level set to tracing's (a `log::debug!` below it costs one
/// comparison, as without a logger). An error if another logger is
/// installed already (its records do not reach observe).
pub(crate) fn install() -> Result<(), ::log::SetLoggerError> {
    let max = match tracing::level_filters::LevelFilter::current().into_level() {
        None => ::log::LevelFilter::Off,
        Some(tracing::Level::ERROR) => ::log::LevelFilter::Error,
        Some(tracing::Level::WARN) => ::log::LevelFilter::Warn,
        Some(tracing::Level::INFO) => ::log::LevelFilter::Info,
        Some(tracing::Level::DEBUG) => ::log::LevelFilter::Debug,
        Some(tracing::Level::TRACE) => ::log::LevelFilter::Trace,
    };
    tracing_log::LogTracer::builder().with_max_level(max).init()
}
