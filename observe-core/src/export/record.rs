//! OpenTelemetry log records: each event, when log records are exported,
//! also goes to the SDK logger with the line's trace ids, level, event name,
//! message and fields.

use crate::intern::Interner;
use crate::telemetry::vars::Limits;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
use opentelemetry::Key;
use opentelemetry_sdk::logs::{SdkLogRecord, SdkLogger};
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

/// Adds the span fields of a line's tail (`,"k":v,...`, already redacted,
/// capped and de-duplicated against the event's fields) to an OTLP log
/// record: a log store then finds a record by its request's fields
/// (`order_id`) as the JSON line is found. Strings, integers, floats and
/// booleans keep their type; anything else is its JSON text.
fn span_fields_as_attributes(tail: &[u8], rec: &mut SdkLogRecord, room: &mut usize, cap: usize) {
    if tail.len() < 2 || *room == 0 {
        return;
    }
    let mut object = Vec::with_capacity(tail.len() + 1);
    object.push(b'{');
    object.extend_from_slice(&tail[1..]);
    object.push(b'}');
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(&object) else {
        return;
    };
    for (k, v) in fields {
        let value = match v {
            serde_json::Value::String(s) => AnyValue::from(s),
            serde_json::Value::Bool(b) => AnyValue::from(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => AnyValue::from(i),
                None => AnyValue::from(n.as_f64().unwrap_or(f64::NAN)),
            },
            other => AnyValue::from(other.to_string()),
        };
        if *room == 0 {
            return;
        }
        *room -= 1;
        rec.add_attribute(Key::from(k), limited(value, cap));
    }
}

/// A string value cut to `cap` bytes at a character boundary.
fn limited(v: AnyValue, cap: usize) -> AnyValue {
    match v {
        AnyValue::String(s) if s.as_str().len() > cap => {
            AnyValue::from(crate::layer::fields::within(s.as_str(), cap).to_owned())
        }
        other => other,
    }
}

/// One event as a log record.
pub(crate) struct Record<'a, A> {
    pub(crate) level: Level,
    /// The call site's target, or a `log` record's own.
    pub(crate) target: std::borrow::Cow<'static, str>,
    pub(crate) time: SystemTime,
    pub(crate) event: &'a str,
    pub(crate) message: Option<String>,
    pub(crate) attributes: A,
    /// The event was not given a name.
    pub(crate) inferred: bool,
    /// Trace id, span id and flags of the innermost span.
    pub(crate) trace: Option<(u128, u64, u8)>,
    /// The enclosing spans' fields as the line has them (`,"k":v,...`).
    pub(crate) span_fields: &'a [u8],
    /// `OTEL_LOGRECORD_ATTRIBUTE_*` / `OTEL_ATTRIBUTE_*`.
    pub(crate) limits: Limits,
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
    let cap = r.limits.value_len.unwrap_or(usize::MAX);
    let mut room = r.limits.count;
    for (k, v) in r.attributes {
        if room == 0 {
            break;
        }
        room -= 1;
        rec.add_attribute(k, limited(v, cap));
    }
    // The enclosing spans' fields, as in the line (an event field of the
    // same name was kept instead).
    span_fields_as_attributes(r.span_fields, &mut rec, &mut room, cap);
    if r.inferred && room > 0 {
        rec.add_attribute("event_inferred", true);
    }
    if let Some((t, s, f)) = r.trace {
        rec.set_trace_context(TraceId::from(t), SpanId::from(s), Some(TraceFlags::new(f)));
    }
    logger.emit(rec);
}
