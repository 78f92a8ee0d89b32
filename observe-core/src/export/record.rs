//! OpenTelemetry log records: each event, when log records are exported,
//! also goes to the SDK logger with the line's trace ids, level, event name,
//! message and fields.

use crate::intern::Interner;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
use opentelemetry::Key;
use opentelemetry_sdk::logs::SdkLogger;
use std::time::SystemTime;
use tracing::Level;

/// Event names of log records (`&'static str` in the API): after 4096
/// distinct names, further ones are sent without one.
static EVENT_NAMES: Interner = Interner::new(4096);

fn severity(l: Level) -> (Severity, &'static str) {
    match l {
        Level::ERROR => (Severity::Error, "ERROR"),
        Level::WARN => (Severity::Warn, "WARN"),
        Level::INFO => (Severity::Info, "INFO"),
        Level::DEBUG => (Severity::Debug, "DEBUG"),
        _ => (Severity::Trace, "TRACE"),
    }
}

/// One event as a log record.
pub(crate) struct Record<'a, A> {
    pub(crate) level: Level,
    pub(crate) target: &'static str,
    pub(crate) time: SystemTime,
    pub(crate) event: &'a str,
    pub(crate) message: Option<String>,
    pub(crate) attributes: A,
    /// The event was not given a name.
    pub(crate) inferred: bool,
    /// Trace id, span id and flags of the innermost span.
    pub(crate) trace: Option<(u128, u64, u8)>,
}

/// Emits `r` through `logger` (on the calling thread: the log processors
/// take it from there).
pub(crate) fn emit<A>(logger: &SdkLogger, r: Record<'_, A>)
where
    A: IntoIterator<Item = (Key, AnyValue)>,
{
    let mut rec = logger.create_log_record();
    let (sev, text) = severity(r.level);
    rec.set_severity_number(sev);
    rec.set_severity_text(text);
    rec.set_timestamp(r.time);
    rec.set_observed_timestamp(r.time);
    rec.set_target(r.target);
    if let Some(name) = EVENT_NAMES.intern(&[r.event]) {
        rec.set_event_name(name);
    }
    if let Some(body) = r.message {
        rec.set_body(AnyValue::from(body));
    }
    rec.add_attributes(r.attributes);
    if r.inferred {
        rec.add_attribute("event_inferred", true);
    }
    if let Some((t, s, f)) = r.trace {
        rec.set_trace_context(TraceId::from(t), SpanId::from(s), Some(TraceFlags::new(f)));
    }
    logger.emit(rec);
}
