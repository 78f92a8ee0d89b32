//! Field visitors: tracing field values written straight into JSON bytes
//! (and, when the span or record is exported, into OpenTelemetry values).

use crate::log::json;
pub(crate) use crate::log::line::name_bit;
use crate::log::redact::{Redactor, REDACTED};
use opentelemetry::logs::AnyValue;
use opentelemetry::{Key, KeyValue, StringValue, Value};
use std::cell::{Cell, OnceCell, RefCell};
use std::fmt;
use std::rc::Rc;
use tracing::field::{Field, Visit};

/// Keys every line starts with; a user field with one of these names is
/// written as `field_<name>`.
pub(crate) const RESERVED: &[&str] = &[
    "timestamp",
    "level",
    "service",
    "event",
    "trace_id",
    "span_id",
    "message",
    "target",
    "event_inferred",
];

/// Prefix for user fields whose names collide with [`RESERVED`] keys.
pub(crate) const COLLISION_PREFIX: &str = "field_";

#[inline]
pub(crate) fn is_reserved(name: &str) -> bool {
    // Fast reject: reserved names are 5..=14 bytes and start with one of these.
    match name.as_bytes().first() {
        Some(b't' | b'l' | b's' | b'e' | b'm') => RESERVED.contains(&name),
        _ => false,
    }
}

/// Writes `"name":` (prefixed if reserved).
#[inline]
pub(crate) fn write_field_key(buf: &mut Vec<u8>, name: &str) {
    if is_reserved(name) {
        buf.extend_from_slice(b"\"");
        buf.extend_from_slice(COLLISION_PREFIX.as_bytes());
        json::escape_into(buf, name);
        buf.extend_from_slice(b"\":");
    } else {
        json::write_key(buf, name);
    }
}

/// What observe precomputes once per call site (per thread): which fields are
/// denied, and each field's `,"key":` fragment already escaped and prefixed.
pub(crate) struct CallsiteInfo {
    denied: u64,
    keys: Box<[u8]>,
    offs: Box<[u32]>,
    /// Bloom bits of all field names.
    pub(crate) bloom: u64,
    /// `,"target":"<target>"`, escaped once.
    pub(crate) target_json: Box<[u8]>,
    /// The fallback event name (`"<target in snake_case>"`), quoted.
    pub(crate) inferred_event: Box<[u8]>,
    /// Index of the `message` field, if any (`usize::MAX` otherwise).
    pub(crate) message: usize,
    /// Index of the `event` field, if any (`usize::MAX` otherwise).
    pub(crate) event: usize,
    /// A `log` crate record bridged by tracing-log ([`is_log_callsite`]):
    /// its target is the `log.target` field, not the call site's.
    pub(crate) is_log: bool,
    /// Fields left out of the line: tracing-log's `log.*` fields (the
    /// target is taken from `log.target`, the others say where the record
    /// was written, which observe's lines do not carry for any event).
    skipped: u64,
    /// Index of `log.target` (`usize::MAX` unless `is_log`).
    log_target: usize,
    /// The event name this call site's first fixed-phrase message gave.
    message_event: OnceCell<Box<[u8]>>,
    /// A later message gave another: the message carries a value
    /// (`info!("user {} logged in", name)`), and the target names the
    /// call site's events from then on.
    message_varies: Cell<bool>,
}

/// Whether `meta` is one of tracing-log's call sites: the events it makes
/// of `log` records are named `log event`, have target `log` and the
/// fields `message`, `log.target`, `log.module_path`, `log.file`, `log.line`.
pub(crate) fn is_log_callsite(meta: &tracing::Metadata<'_>) -> bool {
    meta.is_event()
        && meta.name() == "log event"
        && meta.target() == "log"
        && meta.fields().field("log.target").is_some()
}

impl CallsiteInfo {
    fn new(meta: &'static tracing::Metadata<'static>, redactor: &Redactor) -> Self {
        let mut denied = 0u64;
        let mut keys = Vec::new();
        let mut offs = vec![0u32];
        let (mut message, mut event) = (usize::MAX, usize::MAX);
        let mut bloom = 0u64;
        let is_log = is_log_callsite(meta);
        let (mut skipped, mut log_target) = (0u64, usize::MAX);
        for (i, f) in meta.fields().iter().enumerate() {
            if is_log && i < 64 && f.name().starts_with("log.") {
                skipped |= 1 << i;
                if f.name() == "log.target" {
                    log_target = i;
                }
                offs.push(keys.len() as u32);
                continue;
            }
            bloom |= name_bit(f.name());
            match f.name() {
                "message" if message == usize::MAX => message = i,
                "event" if event == usize::MAX => event = i,
                _ => {}
            }
            if i < 64 && redactor.is_denied(f.name()) {
                denied |= 1 << i;
            }
            keys.push(b',');
            write_field_key(&mut keys, f.name());
            offs.push(keys.len() as u32);
        }
        let target_json = crate::log::line::target_json(meta.target());
        let mut inferred_event = Vec::new();
        crate::log::line::write_inferred_event(&mut inferred_event, meta.target());
        CallsiteInfo {
            target_json: target_json.into_boxed_slice(),
            inferred_event: inferred_event.into_boxed_slice(),
            denied,
            keys: keys.into_boxed_slice(),
            offs: offs.into_boxed_slice(),
            bloom,
            message,
            event,
            is_log,
            skipped,
            log_target,
            message_event: OnceCell::new(),
            message_varies: Cell::new(false),
        }
    }

    /// Writes the event name of an event of this call site without an
    /// `event` field: its message, when it is a fixed phrase
    /// ([`write_message_event`](crate::log::line::write_message_event)) and
    /// the same as the call site's earlier ones; else the target's.
    #[inline]
    pub(crate) fn write_unnamed_event(&self, buf: &mut Vec<u8>, message: &[u8]) {
        let start = buf.len();
        if !self.message_varies.get() && crate::log::line::write_message_event(buf, message) {
            let name = &buf[start..];
            if **self.message_event.get_or_init(|| name.into()) == *name {
                return;
            }
            self.message_varies.set(true);
            buf.truncate(start);
        }
        buf.extend_from_slice(&self.inferred_event);
    }

    /// Whether `field` is denied.
    #[inline]
    pub(crate) fn is_denied(&self, field: &Field, redactor: &Redactor) -> bool {
        let i = field.index();
        if i < 64 {
            self.denied & (1 << i) != 0
        } else {
            redactor.is_denied(field.name())
        }
    }

    /// `,"key":` for `field`.
    #[inline]
    pub(crate) fn key(&self, field: &Field) -> &[u8] {
        let i = field.index();
        match (self.offs.get(i), self.offs.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.keys[a as usize..b as usize],
            _ => &[],
        }
    }
}

const CALLSITE_SLOTS: usize = 256;

type CallsiteSlot = Option<(usize, u32, Rc<CallsiteInfo>)>;

thread_local! {
    static CALLSITES: RefCell<Vec<CallsiteSlot>> = const { RefCell::new(Vec::new()) };
}

/// A direct-mapped cache of compiled call sites, owned by the caller's
/// per-thread buffers (the event path: no extra thread-local access, no refcount).
#[derive(Default)]
pub(crate) struct CallsiteCache {
    slots: Vec<Option<(usize, u32, Box<CallsiteInfo>)>>,
}

impl CallsiteCache {
    /// The cached info of `meta`, if it is in the cache.
    #[inline]
    pub(crate) fn peek(&self, meta: &'static tracing::Metadata<'static>) -> Option<&CallsiteInfo> {
        let ptr = meta as *const _ as usize;
        let idx = (ptr >> 4).wrapping_mul(0x9e37_79b9) % CALLSITE_SLOTS;
        match self.slots.get(idx) {
            Some(Some((p, _, info))) if *p == ptr => Some(info),
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn get(
        &mut self,
        meta: &'static tracing::Metadata<'static>,
        redactor: &Redactor,
    ) -> &CallsiteInfo {
        let ptr = meta as *const _ as usize;
        let idx = (ptr >> 4).wrapping_mul(0x9e37_79b9) % CALLSITE_SLOTS;
        let gen = redactor.generation();
        if self.slots.is_empty() {
            self.slots.resize_with(CALLSITE_SLOTS, || None);
        }
        let slot = &mut self.slots[idx];
        if !matches!(slot, Some((p, g, _)) if *p == ptr && *g == gen) {
            *slot = None;
        }
        let entry =
            slot.get_or_insert_with(|| (ptr, gen, Box::new(CallsiteInfo::new(meta, redactor))));
        &entry.2
    }
}

/// The compiled info of a call site, from a per-thread direct-mapped cache.
#[inline]
pub(crate) fn callsite_info(
    meta: &'static tracing::Metadata<'static>,
    redactor: &Redactor,
) -> Rc<CallsiteInfo> {
    let ptr = meta as *const _ as usize;
    let idx = (ptr >> 4).wrapping_mul(0x9e37_79b9) % CALLSITE_SLOTS;
    let gen = redactor.generation();
    let cached = CALLSITES.try_with(|c| {
        let mut c = c.try_borrow_mut().ok()?;
        if c.is_empty() {
            c.resize(CALLSITE_SLOTS, None);
        }
        Some(match &c[idx] {
            Some((p, g, info)) if *p == ptr && *g == gen => Rc::clone(info),
            _ => {
                let info = Rc::new(CallsiteInfo::new(meta, redactor));
                c[idx] = Some((ptr, gen, Rc::clone(&info)));
                info
            }
        })
    });
    match cached {
        Ok(Some(info)) => info,
        // The cache is in use further up, or the thread is exiting.
        _ => Rc::new(CallsiteInfo::new(meta, redactor)),
    }
}

/// A value in its native JSON type.
pub(crate) enum Val<'a> {
    Str(&'a str),
    Fmt(fmt::Arguments<'a>),
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F64(f64),
    Bool(bool),
}

#[inline]
pub(crate) fn write_val(buf: &mut Vec<u8>, v: &Val<'_>, cap: usize) {
    match v {
        Val::Str(s) => json::write_str(buf, s, cap),
        Val::Fmt(a) => match a.as_str() {
            // A literal message with no arguments: no formatting machinery.
            Some(lit) => json::write_str(buf, lit, cap),
            None => json::EscapingWriter::write_quoted(buf, cap, *a),
        },
        Val::I64(i) => json::write_int(buf, *i),
        Val::U64(i) => json::write_int(buf, *i),
        Val::I128(i) => json::write_int(buf, *i),
        Val::U128(i) => json::write_int(buf, *i),
        Val::F64(f) => json::write_f64(buf, *f),
        Val::Bool(b) => buf.extend_from_slice(if *b { b"true" } else { b"false" }),
    }
}

pub(crate) fn otel_value(v: &Val<'_>, cap: usize) -> Value {
    match v {
        Val::Str(s) => Value::String(StringValue::from(truncate(s, cap).into_owned())),
        Val::Fmt(a) => Value::String(StringValue::from(
            truncate(&a.to_string(), cap).into_owned(),
        )),
        Val::I64(i) => Value::I64(*i),
        Val::U64(i) => {
            i64::try_from(*i).map_or_else(|_| Value::String(i.to_string().into()), Value::I64)
        }
        Val::I128(i) => {
            i64::try_from(*i).map_or_else(|_| Value::String(i.to_string().into()), Value::I64)
        }
        Val::U128(i) => {
            i64::try_from(*i).map_or_else(|_| Value::String(i.to_string().into()), Value::I64)
        }
        Val::F64(f) => Value::F64(*f),
        Val::Bool(b) => Value::Bool(*b),
    }
}

pub(crate) fn any_value(v: &Val<'_>, cap: usize) -> AnyValue {
    match otel_value(v, cap) {
        Value::Bool(b) => AnyValue::Boolean(b),
        Value::I64(i) => AnyValue::Int(i),
        Value::F64(f) => AnyValue::Double(f),
        Value::String(s) => AnyValue::String(s),
        other => AnyValue::String(other.to_string().into()),
    }
}

fn truncate(s: &str, cap: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= cap {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(format!("{}{}", within(s, cap), json::TRUNCATED_MARKER))
}

/// The longest prefix of `s` of at most `cap` bytes that ends at a
/// character boundary.
pub(crate) fn within(s: &str, cap: usize) -> &str {
    if s.len() <= cap {
        return s;
    }
    let mut i = cap;
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}

/// Receives each field of a span or event once, already typed.
pub(crate) trait FieldSink {
    fn field(&mut self, field: &Field, v: Val<'_>);
}

/// Adapts a [`FieldSink`] to tracing's `Visit`.
pub(crate) struct Visitor<'a, S>(pub(crate) &'a mut S);

impl<S: FieldSink> Visit for Visitor<'_, S> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.field(field, Val::Fmt(format_args!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.field(field, Val::Str(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.field(field, Val::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.field(field, Val::U64(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.0.field(field, Val::I128(value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.0.field(field, Val::U128(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.field(field, Val::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.field(field, Val::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.field(field, Val::Fmt(format_args!("{value}")));
    }
}

/// Span fields: a JSON fragment for log lines (one entry per field, indexed
/// for de-duplication) and, when the span is recorded, OpenTelemetry attributes.
pub(crate) struct SpanFieldSink<'a> {
    pub(crate) json: &'a mut Vec<u8>,
    pub(crate) index: &'a mut Vec<(&'static str, u32, u32, u64)>,
    pub(crate) attrs: Option<&'a mut Vec<KeyValue>>,
    pub(crate) special: &'a mut SpanSpecial,
    pub(crate) redactor: &'a Redactor,
    pub(crate) info: &'a CallsiteInfo,
    pub(crate) cap: usize,
}

/// `otel.*` fields that steer the exported span instead of becoming attributes.
#[derive(Default)]
pub(crate) struct SpanSpecial {
    pub(crate) name: Option<String>,
    pub(crate) kind: Option<opentelemetry::trace::SpanKind>,
    pub(crate) status_error: Option<bool>,
    pub(crate) status_description: Option<String>,
}

fn val_to_string(v: &Val<'_>) -> String {
    match v {
        Val::Str(s) => (*s).to_owned(),
        Val::Fmt(a) => a.to_string(),
        Val::I64(i) => i.to_string(),
        Val::U64(i) => i.to_string(),
        Val::I128(i) => i.to_string(),
        Val::U128(i) => i.to_string(),
        Val::F64(f) => f.to_string(),
        Val::Bool(b) => b.to_string(),
    }
}

impl FieldSink for SpanFieldSink<'_> {
    fn field(&mut self, field: &Field, v: Val<'_>) {
        let name = field.name();
        if let Some(rest) = name.strip_prefix("otel.") {
            let s = val_to_string(&v);
            match rest {
                "name" => self.special.name = Some(s),
                "kind" => {
                    use opentelemetry::trace::SpanKind;
                    self.special.kind = Some(match s.to_ascii_lowercase().as_str() {
                        "server" => SpanKind::Server,
                        "client" => SpanKind::Client,
                        "producer" => SpanKind::Producer,
                        "consumer" => SpanKind::Consumer,
                        _ => SpanKind::Internal,
                    })
                }
                "status_code" => {
                    self.special.status_error = match s.to_ascii_lowercase().as_str() {
                        "error" => Some(true),
                        "ok" => Some(false),
                        _ => None,
                    }
                }
                "status_description" | "status_message" => {
                    self.special.status_description = Some(s)
                }
                _ => {}
            }
            return;
        }
        let denied = self.info.is_denied(field, self.redactor);
        let v = if denied { Val::Str(REDACTED) } else { v };
        // A field recorded again replaces its earlier value.
        if let Some(pos) = self.index.iter().position(|(n, ..)| *n == name) {
            let (_, start, end, _) = self.index.remove(pos);
            let (start, end) = (start as usize, end as usize);
            let removed = end - start;
            self.json.drain(start..end);
            for e in self.index.iter_mut() {
                if e.1 as usize >= end {
                    e.1 -= removed as u32;
                    e.2 -= removed as u32;
                }
            }
        }
        let start = self.json.len() as u32;
        // Stored with its leading comma, so a whole span copies in one go.
        self.json.extend_from_slice(self.info.key(field));
        write_val(self.json, &v, self.cap);
        self.index
            .push((name, start, self.json.len() as u32, name_bit(name)));
        if let Some(attrs) = self.attrs.as_deref_mut() {
            let value = otel_value(&v, self.cap);
            let key = Key::from_static_str(name);
            if let Some(kv) = attrs.iter_mut().find(|kv| kv.key == key) {
                kv.value = value;
            } else {
                attrs.push(KeyValue::new(key, value));
            }
        }
    }
}

/// Event fields: written straight into the line's tail, with `message` and
/// a string `event` captured separately (they go in the head).
pub(crate) struct EventFieldSink<'a> {
    pub(crate) out: &'a mut Vec<u8>,
    pub(crate) message: &'a mut Vec<u8>,
    pub(crate) event: &'a mut Vec<u8>,
    pub(crate) names: &'a mut Vec<&'static str>,
    /// A `log` record's target (the `log.target` field).
    pub(crate) log_target: &'a mut String,
    pub(crate) otel: Option<&'a mut Vec<(Key, AnyValue)>>,
    pub(crate) redactor: &'a Redactor,
    pub(crate) info: &'a CallsiteInfo,
    pub(crate) cap: usize,
}

impl FieldSink for EventFieldSink<'_> {
    fn field(&mut self, field: &Field, v: Val<'_>) {
        let name = field.name();
        let i = field.index();
        if i < 64 && self.info.skipped & (1 << i) != 0 {
            if i == self.info.log_target {
                if let Val::Str(s) = v {
                    self.log_target.push_str(s);
                }
            }
            return;
        }
        if i == self.info.message {
            write_val(self.message, &v, self.cap);
            return;
        }
        if i == self.info.event {
            if let Val::Str(s) = v {
                json::write_str(self.event, s, 128);
                return;
            }
        }
        let denied = self.info.is_denied(field, self.redactor);
        let v = if denied { Val::Str(REDACTED) } else { v };
        self.out.extend_from_slice(self.info.key(field));
        write_val(self.out, &v, self.cap);
        self.names.push(name);
        if let Some(otel) = self.otel.as_deref_mut() {
            otel.push((Key::from_static_str(name), any_value(&v, self.cap)));
        }
    }
}
