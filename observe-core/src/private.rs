//! The runtime that generated code (the `#[observed]` macro, the log macros)
//! and observe's own crates call. Not a public API: names may change in any release.

pub use crate::log::sampling::{GatewayFailure, RequestState};
pub use crate::macros::is_snake_case;
pub use crate::signals::{GatewayStatus, Signals};
pub use tokio;
pub use tracing;
pub use tracing_core;

pub use crate::observed;

/// Result classification used by generated code.
pub mod classify {
    pub use crate::outcome::{
        Classified, ClassifyAny, ClassifyL1, ClassifyL2, ClassifyL3, ClassifyL4, ClassifyOutcome,
        Probe,
    };
}

pub use crate::layer::span_state::Propagated;
use crate::layer::span_state::SpanState;
use crate::layer::PendingContext;
use opentelemetry::trace::{Event, SpanContext, SpanKind, Status};
use opentelemetry::KeyValue;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

/// Runs `make_span` so that the span it creates (if it is a local root) gets
/// `parent` as its remote parent, or a fresh trace with `link` as a span
/// link, and a [`RequestState`].
pub fn with_remote_context<R>(
    parent: Option<SpanContext>,
    link: Option<SpanContext>,
    propagated: Option<Arc<Propagated>>,
    synthetic: bool,
    make_span: impl FnOnce() -> R,
) -> R {
    crate::layer::with_pending(
        PendingContext {
            parent,
            link,
            synthetic,
            request: true,
            propagated,
        },
        make_span,
    )
}

/// The golden-signal instruments of the current telemetry (`None` when the
/// SDK is disabled or observe is not installed).
#[inline]
pub fn signals() -> Option<Arc<Signals>> {
    crate::context::current_shared().and_then(|s| s.signals.clone())
}

/// Whether the current dispatcher is observe's with the SDK enabled.
#[inline]
pub fn enabled() -> bool {
    tracing::dispatcher::get_default(|d| {
        d.downcast_ref::<crate::layer::ObserveLayer>()
            .is_some_and(|l| l.shared.traces.is_some())
    })
}

/// The request the current span belongs to.
pub fn current_request() -> Option<Arc<RequestState>> {
    crate::context::with_current(|s| s.request.clone()).flatten()
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
            r.attributes.reserve(n);
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
pub fn with_span<R>(span: &tracing::Span, f: impl FnOnce(SpanHandle<'_>) -> R) -> Option<R> {
    use tracing_subscriber::registry::LookupSpan;
    span.with_subscriber(|(id, d)| {
        let reg = d.downcast_ref::<tracing_subscriber::Registry>()?;
        let s = reg.span(id)?;
        let mut ext = s.extensions_mut();
        ext.get_mut::<SpanState>().map(|st| f(SpanHandle { st }))
    })
    .flatten()
}

/// Runs `f` on observe's state of the current span: the innermost
/// `#[observed]` call running in tracing's current span, or that span.
pub fn with_current_span<R>(f: impl FnOnce(SpanHandle<'_>) -> R) -> Option<R> {
    crate::context::with_current_mut(|st| f(SpanHandle::new(st)))
}

/// Records a failed gateway call in the enclosing request, if any.
pub fn record_gateway_failure(
    gateway: Cow<'static, str>,
    status: GatewayStatus,
    error_type: Cow<'static, str>,
) {
    if let Some(req) = current_request() {
        req.record_gateway_failure(GatewayFailure {
            gateway,
            status: status.as_str(),
            error_type,
        });
    }
}
