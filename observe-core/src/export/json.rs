//! OTLP/JSON encoding of spans and log records, as the Collector's `file`
//! exporter writes it: one `ExportTraceServiceRequest` /
//! `ExportLogsServiceRequest` object per line, lowerCamelCase field names,
//! hex trace and span ids, enums as integers, 64-bit integers as decimal
//! strings, and fields at their default value left out.
//!
//! Why observe's own writer rather than opentelemetry-proto's serde: that
//! needs the generated protobuf types (feature `gen-tonic`, prost and tonic
//! in every service) and a full copy of each batch into them before
//! serialising; this writes the bytes straight from the SDK's data on the
//! pipeline's thread. `tests/otlp.rs` decodes every line with
//! opentelemetry-proto's own types and compares the spans and records with
//! opentelemetry-proto's transform of the same data
//! (`the_file_default_is_otlp_json_the_proto_types_decode`).

use opentelemetry::logs::AnyValue;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::logs::SdkLogRecord;
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_sdk::Resource;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// `"resource":{...}` (with its leading key), encoded once per resource.
pub(crate) fn resource(r: &Resource) -> Vec<u8> {
    let mut out = b"\"resource\":{".to_vec();
    let mut attrs: Vec<(&opentelemetry::Key, &Value)> = r.iter().collect();
    attrs.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    if !attrs.is_empty() {
        out.extend_from_slice(b"\"attributes\":[");
        for (i, (k, v)) in attrs.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            key_value(&mut out, k.as_str(), v);
        }
        out.push(b']');
    }
    out.push(b'}');
    if let Some(url) = r.schema_url() {
        if !url.is_empty() {
            out.extend_from_slice(b",\"schemaUrl\":");
            string(&mut out, url);
        }
    }
    out
}

/// Appends one `ExportTraceServiceRequest` line (with `\n`) for `spans`.
pub(crate) fn trace_request(out: &mut Vec<u8>, resource: &[u8], spans: &[SpanData]) {
    out.extend_from_slice(b"{\"resourceSpans\":[{");
    out.extend_from_slice(resource);
    out.extend_from_slice(b",\"scopeSpans\":[");
    // Spans grouped by scope, in the order scopes first appear.
    let mut scopes: Vec<&InstrumentationScope> = Vec::new();
    for s in spans {
        if !scopes.contains(&&s.instrumentation_scope) {
            scopes.push(&s.instrumentation_scope);
        }
    }
    for (i, scope_ref) in scopes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{");
        scope(out, scope_ref.name(), scope_ref);
        out.extend_from_slice(b",\"spans\":[");
        let mut first = true;
        for s in spans
            .iter()
            .filter(|s| &&s.instrumentation_scope == scope_ref)
        {
            if !first {
                out.push(b',');
            }
            first = false;
            span(out, s);
        }
        out.push(b']');
        if let Some(url) = scope_ref.schema_url().filter(|u| !u.is_empty()) {
            out.extend_from_slice(b",\"schemaUrl\":");
            string(out, url);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}]}\n");
}

/// Appends one `ExportLogsServiceRequest` line (with `\n`). Records are
/// grouped by scope, the scope named after the record's target (as the OTLP
/// exporter does).
pub(crate) fn logs_request(
    out: &mut Vec<u8>,
    resource: &[u8],
    records: &[(&SdkLogRecord, &InstrumentationScope)],
) {
    let scope_name = |(r, s): &(&SdkLogRecord, &InstrumentationScope)| -> String {
        r.target()
            .map(|t| t.to_string())
            .unwrap_or_else(|| s.name().to_owned())
    };
    out.extend_from_slice(b"{\"resourceLogs\":[{");
    out.extend_from_slice(resource);
    out.extend_from_slice(b",\"scopeLogs\":[");
    let mut groups: Vec<(String, &InstrumentationScope)> = Vec::new();
    for item in records {
        let name = scope_name(item);
        if !groups.iter().any(|(n, s)| *n == name && *s == item.1) {
            groups.push((name, item.1));
        }
    }
    for (i, (name, sc)) in groups.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'{');
        scope(out, name, sc);
        out.extend_from_slice(b",\"logRecords\":[");
        let mut first = true;
        for item in records
            .iter()
            .filter(|item| item.1 == *sc && scope_name(item) == *name)
        {
            if !first {
                out.push(b',');
            }
            first = false;
            log_record(out, item.0);
        }
        out.push(b']');
        if let Some(url) = sc.schema_url().filter(|u| !u.is_empty()) {
            out.extend_from_slice(b",\"schemaUrl\":");
            string(out, url);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}]}\n");
}

fn scope(out: &mut Vec<u8>, name: &str, s: &InstrumentationScope) {
    out.extend_from_slice(b"\"scope\":{");
    let mut sep = Sep::default();
    if !name.is_empty() {
        sep.key(out, "name");
        string(out, name);
    }
    if let Some(v) = s.version().filter(|v| !v.is_empty()) {
        sep.key(out, "version");
        string(out, v);
    }
    let attrs: Vec<&KeyValue> = s.attributes().collect();
    if !attrs.is_empty() {
        sep.key(out, "attributes");
        key_values(out, attrs.into_iter());
    }
    out.push(b'}');
}

/// Writes `,` before every key but the first of an object.
#[derive(Default)]
struct Sep(bool);

impl Sep {
    fn key(&mut self, out: &mut Vec<u8>, k: &str) {
        if self.0 {
            out.push(b',');
        }
        self.0 = true;
        out.push(b'"');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
    }
}

fn span(out: &mut Vec<u8>, s: &SpanData) {
    let cx = &s.span_context;
    out.push(b'{');
    let mut sep = Sep::default();
    sep.key(out, "traceId");
    hex(out, &cx.trace_id().to_bytes());
    sep.key(out, "spanId");
    hex(out, &cx.span_id().to_bytes());
    let state = cx.trace_state().header();
    if !state.is_empty() {
        sep.key(out, "traceState");
        string(out, &state);
    }
    if s.parent_span_id != opentelemetry::trace::SpanId::INVALID {
        sep.key(out, "parentSpanId");
        hex(out, &s.parent_span_id.to_bytes());
    }
    sep.key(out, "flags");
    number(
        out,
        span_flags(s.parent_span_is_remote, cx.trace_flags().to_u8()),
    );
    sep.key(out, "name");
    string(out, &s.name);
    sep.key(out, "kind");
    number(out, kind(&s.span_kind));
    sep.key(out, "startTimeUnixNano");
    nanos(out, s.start_time);
    sep.key(out, "endTimeUnixNano");
    nanos(out, s.end_time);
    if !s.attributes.is_empty() {
        sep.key(out, "attributes");
        key_values(out, s.attributes.iter());
    }
    if s.dropped_attributes_count > 0 {
        sep.key(out, "droppedAttributesCount");
        number(out, s.dropped_attributes_count);
    }
    if !s.events.events.is_empty() {
        sep.key(out, "events");
        out.push(b'[');
        for (i, e) in s.events.events.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'{');
            let mut es = Sep::default();
            es.key(out, "timeUnixNano");
            nanos(out, e.timestamp);
            es.key(out, "name");
            string(out, &e.name);
            if !e.attributes.is_empty() {
                es.key(out, "attributes");
                key_values(out, e.attributes.iter());
            }
            if e.dropped_attributes_count > 0 {
                es.key(out, "droppedAttributesCount");
                number(out, e.dropped_attributes_count);
            }
            out.push(b'}');
        }
        out.push(b']');
    }
    if s.events.dropped_count > 0 {
        sep.key(out, "droppedEventsCount");
        number(out, s.events.dropped_count);
    }
    if !s.links.links.is_empty() {
        sep.key(out, "links");
        out.push(b'[');
        for (i, l) in s.links.links.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'{');
            let mut ls = Sep::default();
            let lc = &l.span_context;
            ls.key(out, "traceId");
            hex(out, &lc.trace_id().to_bytes());
            ls.key(out, "spanId");
            hex(out, &lc.span_id().to_bytes());
            let st = lc.trace_state().header();
            if !st.is_empty() {
                ls.key(out, "traceState");
                string(out, &st);
            }
            if !l.attributes.is_empty() {
                ls.key(out, "attributes");
                key_values(out, l.attributes.iter());
            }
            if l.dropped_attributes_count > 0 {
                ls.key(out, "droppedAttributesCount");
                number(out, l.dropped_attributes_count);
            }
            ls.key(out, "flags");
            number(out, span_flags(lc.is_remote(), lc.trace_flags().to_u8()));
            out.push(b'}');
        }
        out.push(b']');
    }
    if s.links.dropped_count > 0 {
        sep.key(out, "droppedLinksCount");
        number(out, s.links.dropped_count);
    }
    sep.key(out, "status");
    match &s.status {
        Status::Unset => out.extend_from_slice(b"{}"),
        Status::Ok => out.extend_from_slice(b"{\"code\":1}"),
        Status::Error { description } => {
            out.push(b'{');
            if !description.is_empty() {
                out.extend_from_slice(b"\"message\":");
                string(out, description);
                out.push(b',');
            }
            out.extend_from_slice(b"\"code\":2}");
        }
    }
    out.push(b'}');
}

fn log_record(out: &mut Vec<u8>, r: &SdkLogRecord) {
    out.push(b'{');
    let mut sep = Sep::default();
    if let Some(t) = r.timestamp() {
        sep.key(out, "timeUnixNano");
        nanos(out, t);
    }
    if let Some(t) = r.observed_timestamp() {
        sep.key(out, "observedTimeUnixNano");
        nanos(out, t);
    }
    if let Some(s) = r.severity_number() {
        sep.key(out, "severityNumber");
        number(out, s as i32);
    }
    if let Some(t) = r.severity_text().filter(|t| !t.is_empty()) {
        sep.key(out, "severityText");
        string(out, t);
    }
    if let Some(b) = r.body() {
        sep.key(out, "body");
        any_value(out, b);
    }
    let mut attrs = r.attributes_iter().peekable();
    if attrs.peek().is_some() {
        sep.key(out, "attributes");
        out.push(b'[');
        any_key_values(out, attrs.map(|(k, v)| (k.as_str(), v)));
        out.push(b']');
    }
    if let Some(cx) = r.trace_context() {
        let flags = cx.trace_flags.map_or(0, |f| f.to_u8());
        if flags != 0 {
            sep.key(out, "flags");
            number(out, flags);
        }
        sep.key(out, "traceId");
        hex(out, &cx.trace_id.to_bytes());
        sep.key(out, "spanId");
        hex(out, &cx.span_id.to_bytes());
    }
    if let Some(name) = r.event_name().filter(|n| !n.is_empty()) {
        sep.key(out, "eventName");
        string(out, name);
    }
    out.push(b'}');
}

/// OTLP `Span.flags`: the W3C trace flags, plus "has is-remote" (bit 8) and
/// "is remote" (bit 9), as opentelemetry-proto's transform sets them.
fn span_flags(remote: bool, trace_flags: u8) -> u32 {
    u32::from(trace_flags) | 0x100 | if remote { 0x200 } else { 0 }
}

fn kind(k: &SpanKind) -> u8 {
    match k {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn key_values<'a>(out: &mut Vec<u8>, kvs: impl Iterator<Item = &'a KeyValue>) {
    out.push(b'[');
    for (i, kv) in kvs.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        key_value(out, kv.key.as_str(), &kv.value);
    }
    out.push(b']');
}

fn key_value(out: &mut Vec<u8>, k: &str, v: &Value) {
    out.extend_from_slice(b"{\"key\":");
    string(out, k);
    out.extend_from_slice(b",\"value\":");
    value(out, v);
    out.push(b'}');
}

fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Bool(b) => bool_value(out, *b),
        Value::I64(i) => int_value(out, *i),
        Value::F64(f) => double_value(out, *f),
        Value::String(s) => string_value(out, s.as_str()),
        Value::Array(a) => {
            out.extend_from_slice(b"{\"arrayValue\":{\"values\":[");
            match a {
                Array::Bool(v) => list(out, v, |o, b| bool_value(o, *b)),
                Array::I64(v) => list(out, v, |o, i| int_value(o, *i)),
                Array::F64(v) => list(out, v, |o, f| double_value(o, *f)),
                Array::String(v) => list(out, v, |o, s| string_value(o, s.as_str())),
                other => list(out, &[other], |o, a| string_value(o, &a.to_string())),
            }
            out.extend_from_slice(b"]}}");
        }
        other => string_value(out, &other.to_string()),
    }
}

fn any_value(out: &mut Vec<u8>, v: &AnyValue) {
    match v {
        AnyValue::Int(i) => int_value(out, *i),
        AnyValue::Double(f) => double_value(out, *f),
        AnyValue::String(s) => string_value(out, s.as_str()),
        AnyValue::Boolean(b) => bool_value(out, *b),
        AnyValue::Bytes(b) => {
            out.extend_from_slice(b"{\"bytesValue\":\"");
            base64(out, b);
            out.extend_from_slice(b"\"}");
        }
        AnyValue::ListAny(items) => {
            out.extend_from_slice(b"{\"arrayValue\":{\"values\":[");
            list(out, items, any_value);
            out.extend_from_slice(b"]}}");
        }
        AnyValue::Map(m) => {
            let mut entries: Vec<_> = m.iter().collect();
            entries.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            out.extend_from_slice(b"{\"kvlistValue\":{\"values\":[");
            any_key_values(out, entries.into_iter().map(|(k, v)| (k.as_str(), v)));
            out.extend_from_slice(b"]}}");
        }
        other => string_value(out, &format!("{other:?}")),
    }
}

/// `{"key":k,"value":v},…` for log-record values.
fn any_key_values<'a>(out: &mut Vec<u8>, entries: impl Iterator<Item = (&'a str, &'a AnyValue)>) {
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"key\":");
        string(out, k);
        out.extend_from_slice(b",\"value\":");
        any_value(out, v);
        out.push(b'}');
    }
}

fn list<T>(out: &mut Vec<u8>, items: &[T], f: impl Fn(&mut Vec<u8>, &T)) {
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        f(out, it);
    }
}

fn bool_value(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b {
        b"{\"boolValue\":true}"
    } else {
        b"{\"boolValue\":false}"
    });
}

fn int_value(out: &mut Vec<u8>, i: i64) {
    out.extend_from_slice(b"{\"intValue\":\"");
    out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
    out.extend_from_slice(b"\"}");
}

fn double_value(out: &mut Vec<u8>, f: f64) {
    out.extend_from_slice(b"{\"doubleValue\":");
    if f.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 {
            b"\"Infinity\""
        } else {
            b"\"-Infinity\""
        });
    } else {
        out.extend_from_slice(ryu::Buffer::new().format_finite(f).as_bytes());
    }
    out.push(b'}');
}

fn string_value(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(b"{\"stringValue\":");
    string(out, s);
    out.push(b'}');
}

fn string(out: &mut Vec<u8>, s: &str) {
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn number(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn nanos(out: &mut Vec<u8>, t: SystemTime) {
    let n = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    out.push(b'"');
    number(out, n);
    out.push(b'"');
}

/// A quoted lowercase hex string (trace and span ids).
fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    crate::hex::push(out, bytes);
    out.push(b'"');
}

fn base64(out: &mut Vec<u8>, bytes: &[u8]) {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let _ = out.write_all(&[
            T[(n >> 18) as usize & 63],
            T[(n >> 12) as usize & 63],
            if chunk.len() > 1 {
                T[(n >> 6) as usize & 63]
            } else {
                b'='
            },
            if chunk.len() > 2 {
                T[n as usize & 63]
            } else {
                b'='
            },
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Event, SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::borrow::Cow;
    use std::time::Duration;

    fn at(ns: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(ns)
    }

    fn sample_span() -> SpanData {
        let mut events = SpanEvents::default();
        events.events.push(Event::new(
            "payment_failed",
            at(1_544_712_660_500_000_000),
            vec![KeyValue::new("level", "ERROR")],
            0,
        ));
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(0x5b8efff798038103d269b633813fc60c_u128),
                SpanId::from(0xeee19b7ec3c1b174_u64),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::from(0xeee19b7ec3c1b173_u64),
            parent_span_is_remote: true,
            span_kind: SpanKind::Server,
            name: Cow::Borrowed("GET /orders/{id}"),
            start_time: at(1_544_712_660_000_000_000),
            end_time: at(1_544_712_661_000_000_000),
            attributes: vec![
                KeyValue::new("http.response.status_code", 504_i64),
                KeyValue::new("ratio", 0.5),
                KeyValue::new("ok", false),
                KeyValue::new("q", "a\"b"),
            ],
            dropped_attributes_count: 0,
            events,
            links: SpanLinks::default(),
            status: Status::error("gateway timeout"),
            instrumentation_scope: InstrumentationScope::builder("observe")
                .with_version("0.1.0")
                .build(),
        }
    }

    #[test]
    fn a_span_line_is_collector_otlp_json() {
        let res = resource(
            &Resource::builder_empty()
                .with_attribute(KeyValue::new("service.name", "checkout"))
                .build(),
        );
        let mut out = Vec::new();
        trace_request(&mut out, &res, &[sample_span()]);
        let expected = concat!(
            r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},"#,
            r#""scopeSpans":[{"scope":{"name":"observe","version":"0.1.0"},"spans":[{"#,
            r#""traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"eee19b7ec3c1b173","#,
            r#""flags":769,"name":"GET /orders/{id}","kind":2,"#,
            r#""startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000","#,
            r#""attributes":[{"key":"http.response.status_code","value":{"intValue":"504"}},{"key":"ratio","value":{"doubleValue":0.5}},"#,
            r#"{"key":"ok","value":{"boolValue":false}},{"key":"q","value":{"stringValue":"a\"b"}}],"#,
            r#""events":[{"timeUnixNano":"1544712660500000000","name":"payment_failed","attributes":[{"key":"level","value":{"stringValue":"ERROR"}}]}],"#,
            r#""status":{"message":"gateway timeout","code":2}}]}]}]}"#,
            "\n"
        );
        assert_eq!(String::from_utf8_lossy(&out), expected);
    }

    #[test]
    fn base64_pads() {
        for (input, want) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
        ] {
            let mut out = Vec::new();
            base64(&mut out, input);
            assert_eq!(String::from_utf8_lossy(&out), want);
        }
    }
}
