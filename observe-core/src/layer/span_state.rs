//! What observe keeps per tracing span (in the registry's extensions).

use crate::classify::RequestState;
use crate::log::line::{LineSource, SpanFields};
use opentelemetry::trace::{Event, Link, SpanKind, Status, TraceState};
use opentelemetry::KeyValue;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

/// Ids and log context of one span; export data when it is recorded.
pub(crate) struct SpanState {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    pub(crate) flags: u8,
    /// `tracestate` and baggage received from the remote parent, shared by the local trace.
    pub(crate) propagated: Option<Arc<Propagated>>,
    /// `trace_id` (32) then `span_id` (16), lowercase hex: encoded when
    /// first needed (most spans never write a line or inject a header).
    ids_hex: std::sync::OnceLock<[u8; 48]>,
    /// `,"k":v` entries; `index` gives each entry's name and range, `bloom`
    /// the Bloom bits of all names.
    pub(crate) fields: Vec<u8>,
    /// (name, start, end, Bloom bit of the name).
    pub(crate) index: Vec<(&'static str, u32, u32, u64)>,
    pub(crate) bloom: u64,
    /// Fields of the `#[observed]` call site that made this span (encoded
    /// once per site), written before `fields`.
    pub(crate) site: Option<&'static SiteFields>,
    pub(crate) record: Option<SpanRecord>,
    /// Per-request state (server requests and log sampling); shared by a local trace.
    pub(crate) request: Option<Arc<RequestState>>,
    /// This span started the local part of its trace.
    pub(crate) local_root: bool,
    /// Synthetic traffic (baggage `synthetic=true`), inherited by children.
    pub(crate) synthetic: bool,
    /// The span id of the OpenTelemetry API's current span when this span
    /// started (0: none): that span is older than this one
    /// ([`crate::bridge::otel`]).
    pub(crate) otel_seen: u64,
}

/// The fixed fields of one `#[observed]` call site (`code.function`, and
/// `gateway` in gateway mode), encoded once instead of on every call.
#[derive(Debug)]
pub(crate) struct SiteFields {
    /// `,"k":v` entries, as in [`SpanState::fields`].
    pub(crate) json: Box<[u8]>,
    pub(crate) index: Box<[(&'static str, u32, u32, u64)]>,
    pub(crate) bloom: u64,
    pub(crate) gateway: Option<&'static str>,
    /// The exported span's attributes for these fields.
    pub(crate) attributes: Box<[KeyValue]>,
}

impl SiteFields {
    pub(crate) fn new(function: &'static str, gateway: Option<&'static str>) -> Self {
        let mut json = Vec::new();
        let mut index = Vec::new();
        let mut bloom = 0;
        let entries =
            std::iter::once(("code.function", function)).chain(gateway.map(|g| ("gateway", g)));
        for (name, value) in entries {
            let start = json.len() as u32;
            json.push(b',');
            crate::layer::fields::write_field_key(&mut json, name);
            crate::log::json::write_str(&mut json, value, usize::MAX);
            let bit = crate::log::line::name_bit(name);
            index.push((name, start, json.len() as u32, bit));
            bloom |= bit;
        }
        SiteFields {
            json: json.into_boxed_slice(),
            index: index.into_boxed_slice(),
            bloom,
            gateway,
            attributes: std::iter::once(KeyValue::new("code.function", function))
                .chain(gateway.map(|g| KeyValue::new("gateway", g)))
                .collect(),
        }
    }

    pub(crate) fn kind(&self) -> SpanKind {
        if self.gateway.is_some() {
            SpanKind::Client
        } else {
            SpanKind::Internal
        }
    }
}

/// Context received with a request that goes on with every outbound call.
#[derive(Debug, Default)]
pub struct Propagated {
    /// The `tracestate` as an OpenTelemetry value (for exported spans).
    pub trace_state: TraceState,
    /// The `tracestate` header to forward, as received (validated, combined).
    pub tracestate: Option<Box<str>>,
    /// The `baggage` header to forward (validated, re-serialised).
    pub baggage: Option<Box<str>>,
}

/// Export data of a recorded span.
pub(crate) struct SpanRecord {
    pub(crate) name: Cow<'static, str>,
    pub(crate) kind: SpanKind,
    pub(crate) start: SystemTime,
    pub(crate) parent_span_id: u64,
    pub(crate) parent_remote: bool,
    /// The span's own attributes (its fields, what the layers set).
    pub(crate) attributes: Vec<KeyValue>,
    /// Its call site's attributes, which go before its own when it is
    /// exported: added on the export thread when the span is queued on
    /// observe's pipeline directly, else when it ends
    /// ([`with_site_attributes`](crate::export::span::with_site_attributes)).
    pub(crate) site_attributes: &'static [KeyValue],
    pub(crate) events: Vec<Event>,
    pub(crate) links: Vec<Link>,
    pub(crate) status: Status,
}

impl SpanState {
    /// The state of a new span, without fields.
    pub(crate) fn new(trace_id: u128, span_id: u64, flags: u8) -> Self {
        SpanState {
            trace_id,
            span_id,
            flags,
            propagated: None,
            ids_hex: std::sync::OnceLock::new(),
            fields: Vec::new(),
            index: Vec::new(),
            bloom: 0,
            site: None,
            record: None,
            request: None,
            local_root: false,
            synthetic: false,
            otel_seen: 0,
        }
    }

    /// Makes an ended span's state fresh again (as [`SpanState::new`]),
    /// keeping small field buffers; `false` if it holds large ones (drop
    /// it instead).
    #[inline]
    pub(crate) fn reset(&mut self) -> bool {
        const KEEP_BYTES: usize = 4096;
        if self.fields.capacity() > KEEP_BYTES || self.index.capacity() > 64 {
            return false;
        }
        self.trace_id = 0;
        self.span_id = 0;
        self.flags = 0;
        self.propagated = None;
        self.ids_hex = std::sync::OnceLock::new();
        self.fields.clear();
        self.index.clear();
        self.bloom = 0;
        self.site = None;
        self.record = None;
        self.request = None;
        self.local_root = false;
        self.synthetic = false;
        self.otel_seen = 0;
        true
    }

    /// `trace_id` (32) then `span_id` (16), lowercase hex.
    #[inline]
    pub(crate) fn ids_hex(&self) -> &[u8; 48] {
        self.ids_hex
            .get_or_init(|| crate::hex::ids(self.trace_id, self.span_id))
    }

    pub(crate) fn trace_id_hex(&self) -> &str {
        std::str::from_utf8(&self.ids_hex()[..32]).unwrap_or_default()
    }

    pub(crate) fn span_id_hex(&self) -> &str {
        std::str::from_utf8(&self.ids_hex()[32..]).unwrap_or_default()
    }

    #[inline]
    pub(crate) fn span_context(&self) -> opentelemetry::trace::SpanContext {
        opentelemetry::trace::SpanContext::new(
            opentelemetry::trace::TraceId::from(self.trace_id),
            opentelemetry::trace::SpanId::from(self.span_id),
            opentelemetry::trace::TraceFlags::new(self.flags),
            false,
            self.trace_state(),
        )
    }

    /// Appends the fields of `parent` (its call site's, then its own) whose
    /// names this span does not have yet: a child that tracing's scope will
    /// not connect to `parent` still writes them on its lines.
    pub(crate) fn inherit_fields(&mut self, parent: &SpanState) {
        let site = parent.site.map(|s| (&s.json[..], &s.index[..]));
        let own = Some((&parent.fields[..], &parent.index[..]));
        for (json, index) in site.into_iter().chain(own) {
            for &(name, start, end, bit) in index {
                if self.index.iter().any(|e| e.0 == name) {
                    continue;
                }
                let at = self.fields.len() as u32;
                self.fields
                    .extend_from_slice(&json[start as usize..end as usize]);
                self.index.push((name, at, self.fields.len() as u32, bit));
                self.bloom |= bit;
            }
        }
    }

    #[inline]
    pub(crate) fn trace_state(&self) -> TraceState {
        self.propagated
            .as_ref()
            .map_or(TraceState::NONE, |p| p.trace_state.clone())
    }
}

impl LineSource for SpanState {
    #[inline]
    fn trace(&self) -> (u128, u64, u8) {
        (self.trace_id, self.span_id, self.flags)
    }
    #[inline]
    fn ids_hex(&self) -> &[u8; 48] {
        SpanState::ids_hex(self)
    }
    #[inline]
    fn request(&self) -> Option<&Arc<RequestState>> {
        self.request.as_ref()
    }
    #[inline]
    fn synthetic(&self) -> bool {
        self.synthetic
    }
    #[inline]
    fn recorded(&self) -> bool {
        self.record.is_some()
    }
    #[inline]
    fn fields(&self) -> [Option<SpanFields<'_>>; 2] {
        let site = self.site.map(|s| SpanFields {
            json: &s.json,
            index: &s.index,
            bloom: s.bloom,
        });
        let own = SpanFields {
            json: &self.fields,
            index: &self.index,
            bloom: self.bloom,
        };
        [site, Some(own)]
    }
}
