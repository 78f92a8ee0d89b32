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
    use tracing_log::AsLog as _;
    tracing_log::LogTracer::builder()
        .with_max_level(tracing::level_filters::LevelFilter::current().as_log())
        .init()
}
