//! observe's state of a span, for the crates built on core (the tower
//! layers, the synthetic runner) and for code that shapes the exported span:
//! its name, kind, attributes, status and events, its ids and flags, the
//! request it belongs to, and the remote context the next span starts under.
//!
//! | call | what for |
//! |---|---|
//! | [`with_span`] | one given tracing span |
//! | [`with_current_span`] | the innermost `#[observed]` call running now, else tracing's current span |
//! | [`with_remote_context`] | the next span created on this thread becomes a local root under a remote parent (or a link), with the request's `tracestate` and baggage |
//!
//! Everything here runs on the calling thread, takes no lock beyond the
//! span's own and allocates nothing unless an attribute or event is added.

use crate::classify::RequestState;
pub use crate::layer::span_state::Propagated;
use crate::layer::span_state::SpanState;
use opentelemetry::trace::{Event, SpanContext, SpanKind, Status};
use opentelemetry::KeyValue;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

/// The context a new local root starts under (see [`with_remote_context`]).
#[derive(Clone, Debug, Default)]
pub struct RemoteContext {
    /// The remote parent (a valid `traceparent`); `None` starts a new trace.
    pub parent: Option<SpanContext>,
    /// A context to link to instead of continuing it (at a trust boundary).
    pub link: Option<SpanContext>,
    /// `tracestate` and baggage to carry on (a new trace keeps only the baggage).
    pub propagated: Option<Arc<Propagated>>,
    /// Synthetic traffic (baggage `synthetic=true`): marked on spans and lines.
    pub synthetic: bool,
    /// The span is a request (a server span): it gets the per-request
    /// failure bookkeeping the server layer reads at the end.
    pub request: bool,
}

/// Runs `make_span`, so that the span it creates (if it is a local root)
/// starts under `cx`.
///
/// ```
/// use observe_core::span::{with_remote_context, RemoteContext};
/// # let (_, cap) = observe_core::testing::capture(|| {
/// let span = with_remote_context(RemoteContext { synthetic: true, ..Default::default() }, || {
///     tracing::info_span!("synthetic_check")
/// });
/// # drop(span);
/// # });
/// # assert!(cap.spans[0].parent_span_id == opentelemetry::trace::SpanId::INVALID);
/// ```
pub fn with_remote_context<R>(cx: RemoteContext, make_span: impl FnOnce() -> R) -> R {
    crate::layer::with_pending(cx, make_span)
}

/// Mutable access to observe's state of one span.
pub struct SpanHandle<'a> {
    st: &'a mut SpanState,
}

impl std::fmt::Debug for SpanHandle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanHandle")
            .field("trace_id", &self.st.trace_id_hex())
            .field("span_id", &self.st.span_id_hex())
            .finish()
    }
}

impl<'a> SpanHandle<'a> {
    pub(crate) fn new(st: &'a mut SpanState) -> Self {
        SpanHandle { st }
    }
}

impl SpanHandle<'_> {
    /// Whether the span is recorded (sampled) and will be exported.
    pub fn is_recording(&self) -> bool {
        self.st.record.is_some()
    }

    /// The span's context (for `traceparent`).
    pub fn span_context(&self) -> SpanContext {
        self.st.span_context()
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> &str {
        self.st.trace_id_hex()
    }

    /// Trace and span id as bytes, when the span is recorded (for exemplars).
    pub fn sampled_ids(&self) -> crate::signals::SpanIds {
        self.st.record.is_some().then(|| {
            (
                self.st.trace_id.to_be_bytes(),
                self.st.span_id.to_be_bytes(),
            )
        })
    }

    /// The span's W3C flags byte.
    pub fn flags(&self) -> u8 {
        self.st.flags
    }

    /// Trace id and span id as lowercase hex (`[u8; 48]`: 32 then 16).
    pub fn ids_hex(&self) -> &[u8; 48] {
        self.st.ids_hex()
    }

    /// The request this span belongs to.
    pub fn request(&self) -> Option<&Arc<RequestState>> {
        self.st.request.as_ref()
    }

    /// `tracestate` and baggage to forward on outbound calls.
    pub fn propagated(&self) -> Option<&Arc<Propagated>> {
        self.st.propagated.as_ref()
    }

    /// Whether the span is synthetic traffic.
    pub fn is_synthetic(&self) -> bool {
        self.st.synthetic
    }

    /// Renames the exported span.
    pub fn set_name(&mut self, name: impl Into<Cow<'static, str>>) {
        if let Some(r) = self.st.record.as_mut() {
            r.name = name.into();
        }
    }

    /// Sets the span kind.
    pub fn set_kind(&mut self, kind: SpanKind) {
        if let Some(r) = self.st.record.as_mut() {
            r.kind = kind;
        }
    }

    /// Reserves room for `n` more attributes.
    pub fn reserve_attributes(&mut self, n: usize) {
        if let Some(r) = self.st.record.as_mut() {
            if r.attributes.capacity() == 0 {
                // A vector the export thread handed back, if one waits.
                r.attributes = crate::export::recycle::vector(n);
            } else {
                r.attributes.reserve(n);
            }
        }
    }

    /// Sets (or replaces) an attribute of the exported span only (not logged).
    pub fn set_attribute(&mut self, kv: KeyValue) {
        if let Some(r) = self.st.record.as_mut() {
            match r.attributes.iter_mut().find(|a| a.key == kv.key) {
                Some(a) => a.value = kv.value,
                None => r.attributes.push(kv),
            }
        }
    }

    /// Sets status Error with a description.
    pub fn set_error(&mut self, description: impl Into<Cow<'static, str>>) {
        if let Some(r) = self.st.record.as_mut() {
            r.status = Status::error(description);
        }
        if let Some(req) = &self.st.request {
            req.lock().failed = true;
        }
    }

    /// Sets status Ok (overrides a later Error only if set after it).
    pub fn set_ok(&mut self) {
        if let Some(r) = self.st.record.as_mut() {
            r.status = Status::Ok;
        }
    }

    /// Adds an event to the exported span.
    pub fn add_event(&mut self, name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>) {
        if let Some(r) = self.st.record.as_mut() {
            if r.events.len() < 128 {
                r.events
                    .push(Event::new(name, SystemTime::now(), attributes, 0));
            }
        }
    }
}

/// Runs `f` on observe's state of `span` (`None` if `span` is not observe's).
///
/// ```
/// # let (_, cap) = observe_core::testing::capture(|| {
/// let span = tracing::info_span!("charge");
/// observe_core::span::with_span(&span, |mut h| {
///     h.set_kind(opentelemetry::trace::SpanKind::Client);
///     h.set_attribute(opentelemetry::KeyValue::new("gateway", "bank"));
/// });
/// # });
/// # assert_eq!(cap.spans[0].span_kind, opentelemetry::trace::SpanKind::Client);
/// ```
pub fn with_span<R>(span: &tracing::Span, f: impl FnOnce(SpanHandle<'_>) -> R) -> Option<R> {
    let mut f = Some(f);
    span.with_subscriber(|(id, d)| {
        let (_, store) = crate::layer::TelemetryLayer::find(d)?;
        let mut out = None;
        store.write(id, &mut |st| {
            if let Some(f) = f.take() {
                out = Some(f(SpanHandle { st }));
            }
        });
        out
    })
    .flatten()
}

/// Runs `f` on observe's state of the current span: the innermost
/// `#[observed]` call running in tracing's current span, or that span.
pub fn with_current_span<R>(f: impl FnOnce(SpanHandle<'_>) -> R) -> Option<R> {
    crate::context::with_current_mut(|st| f(SpanHandle::new(st)))
}
