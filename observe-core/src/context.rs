//! The current trace, for business records and support tools.

use crate::layer::span_state::SpanState;
use crate::layer::{Shared, TelemetryLayer};
use std::sync::Arc;
use tracing::span::Id;

/// Runs `f` on observe's state of the current span, if any: the innermost
/// `#[observed]` call running in tracing's current span, or that span.
pub(crate) fn with_current<R>(f: impl FnOnce(&SpanState) -> R) -> Option<R> {
    with_current_mut(|st| f(st))
}

/// Runs `f` on observe's state of the current span (see [`with_current`]), mutably.
pub(crate) fn with_current_mut<R>(f: impl FnOnce(&mut SpanState) -> R) -> Option<R> {
    let mut f = Some(f);
    tracing::dispatcher::get_default(|d| {
        let (_, store) = TelemetryLayer::find(d)?;
        let id = store.current();
        let r = crate::layer::local::with_scope(id.as_ref().map(Id::into_u64), |frames| {
            let fr = frames.last_mut()?;
            f.take().map(|f| f(&mut fr.state))
        });
        if r.is_some() {
            return r;
        }
        let mut out = None;
        store.write(&id?, &mut |st| {
            if let Some(f) = f.take() {
                out = Some(f(st));
            }
        });
        out
    })
}

/// The request the current span belongs to.
pub(crate) fn current_request() -> Option<Arc<crate::classify::RequestState>> {
    with_current(|s| s.request.clone()).flatten()
}

/// The telemetry of the current dispatcher, if it is observe's.
pub(crate) fn current_shared() -> Option<Arc<Shared>> {
    tracing::dispatcher::get_default(|d| {
        d.downcast_ref::<TelemetryLayer>()
            .map(|l| Arc::clone(&l.shared))
    })
}

/// The 32-hex-digit trace id of the current span, or `None` outside any span.
///
/// Store it on business records (an order) at creation time, so support can
/// go from an order id to its trace.
///
/// ```
/// # use observe_core::testing::TelemetryBuilderExt as _;
/// # let t = observe_core::Telemetry::builder("doc").env_source(|_| None)
/// #     .log_output(observe_core::LogOutput::Sink(std::sync::Arc::new(observe_core::MemorySink::new())))
/// #     .build().unwrap();
/// # tracing::dispatcher::with_default(t.dispatch(), || {
/// let span = tracing::info_span!("create_order");
/// let _enter = span.enter();
/// let trace_id = observe_core::current_trace_id().expect("inside a span");
/// assert_eq!(trace_id.len(), 32);
/// # });
/// ```
pub fn current_trace_id() -> Option<String> {
    with_current(|s| s.trace_id_hex().to_owned())
}

/// The current span's span id (16 hex digits).
pub fn current_span_id() -> Option<String> {
    with_current(|s| s.span_id_hex().to_owned())
}

/// The W3C `traceparent` of the current span (`00-<trace>-<span>-<flags>`),
/// to record. For an outbound request, use
/// [`propagation::inject_current`](crate::propagation::inject_current),
/// which also carries `tracestate` and baggage.
pub fn current_traceparent() -> Option<String> {
    with_current(|s| {
        String::from_utf8_lossy(&crate::w3c::traceparent_bytes(s.ids_hex(), s.flags)).into_owned()
    })
}

/// The current span's OpenTelemetry span context.
pub fn current_span_context() -> Option<opentelemetry::trace::SpanContext> {
    with_current(SpanState::span_context)
}
