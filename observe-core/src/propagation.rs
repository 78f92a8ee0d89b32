//! W3C Trace Context and Baggage in and out of `http::HeaderMap`s, with
//! observe's own parsers ([`crate::w3c`]): what the server layer reads from
//! a request, and the one call that writes `traceparent`, `tracestate` and
//! `baggage` on an outbound one.
//!
//! | call | use it for |
//! |---|---|
//! | [`extract`] | an incoming request's context (the server layer does this) |
//! | [`inject_current`] | an outbound call made without observe's client layer: the context of the innermost `#[observed]` call, or of tracing's current span |
//! | [`inject`] | the context of one given span |

use crate::layer::span_state::Propagated;
use crate::span::SpanHandle;
use crate::w3c::{self, Baggage, TraceState};
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceFlags, TraceId, TraceState as OtelTraceState,
};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// `traceparent`.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate`.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
/// `baggage`.
pub const BAGGAGE: HeaderName = HeaderName::from_static("baggage");

/// What a request carried.
#[derive(Debug, Default)]
pub struct Extracted {
    /// The remote parent, when `traceparent` is valid.
    pub parent: Option<SpanContext>,
    /// `tracestate` and baggage to carry on.
    pub propagated: Option<Arc<Propagated>>,
    /// Baggage `synthetic=true`: traffic from a synthetic check.
    pub synthetic: bool,
}

/// Reads `traceparent`, `tracestate` and `baggage` from `headers`. An invalid
/// `traceparent` yields no parent (a new trace) and drops `tracestate`;
/// baggage is independent of it. Work is bounded by the parsers' limits.
pub fn extract(headers: &HeaderMap) -> Extracted {
    let (trace_context, baggage) = enabled();
    extract_enabled(headers, trace_context, baggage)
}

/// Which propagators `OTEL_PROPAGATORS` enabled (process-wide; both by default).
static PROPAGATORS: AtomicU8 = AtomicU8::new(ALL);
const TRACE_CONTEXT: u8 = 1;
const BAGGAGE_BIT: u8 = 2;
const ALL: u8 = TRACE_CONTEXT | BAGGAGE_BIT;

/// Whether `traceparent`/`tracestate` and `baggage` are read and written.
pub(crate) fn enabled() -> (bool, bool) {
    let bits = PROPAGATORS.load(Ordering::Relaxed);
    (bits & TRACE_CONTEXT != 0, bits & BAGGAGE_BIT != 0)
}

/// Enables or disables reading and writing `traceparent`/`tracestate` and
/// `baggage`, for the whole process (`OTEL_PROPAGATORS`, read at init).
pub(crate) fn set_propagators(trace_context: bool, baggage: bool) {
    let bits =
        if trace_context { TRACE_CONTEXT } else { 0 } | if baggage { BAGGAGE_BIT } else { 0 };
    PROPAGATORS.store(bits, Ordering::Relaxed);
}

fn extract_enabled(headers: &HeaderMap, trace_context: bool, baggage: bool) -> Extracted {
    if !trace_context && !baggage {
        return Extracted::default();
    }
    let parsed = if trace_context {
        w3c::parse_trace_context(
            headers
                .get_all(TRACEPARENT)
                .iter()
                .map(HeaderValue::as_bytes),
            headers
                .get_all(TRACESTATE)
                .iter()
                .map(HeaderValue::as_bytes),
        )
        .ok()
    } else {
        None
    };
    let (parent, tracestate) = match parsed {
        Some((tp, ts)) => (
            Some(SpanContext::new(
                TraceId::from_bytes(tp.trace_id),
                SpanId::from_bytes(tp.parent_id),
                TraceFlags::new(tp.flags & w3c::TraceParent::KNOWN_FLAGS),
                true,
                OtelTraceState::NONE,
            )),
            ts,
        ),
        None => (None, None),
    };
    let baggage = if baggage && headers.contains_key(BAGGAGE) {
        let b = Baggage::parse_headers(headers.get_all(BAGGAGE).iter().map(HeaderValue::as_bytes));
        (!b.is_empty()).then_some(b)
    } else {
        None
    };
    let synthetic = baggage
        .as_ref()
        .and_then(|b| b.get("synthetic"))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let propagated = if tracestate.is_some() || baggage.is_some() {
        Some(Arc::new(propagated(tracestate.as_ref(), baggage.as_ref())))
    } else {
        None
    };
    Extracted {
        parent,
        propagated,
        synthetic,
    }
}

fn propagated(ts: Option<&TraceState>, baggage: Option<&Baggage>) -> Propagated {
    let trace_state = ts
        .and_then(|t| OtelTraceState::from_key_value(t.iter()).ok())
        .unwrap_or(OtelTraceState::NONE);
    Propagated {
        trace_state,
        tracestate: ts
            .filter(|t| !t.is_empty())
            .map(|t| t.header_value().into()),
        baggage: baggage
            .map(Baggage::header_value)
            .filter(|v| !v.is_empty())
            .map(String::into_boxed_str),
    }
}

/// The `traceparent` header value of a span: `00-<trace>-<span>-<flags>`.
pub fn traceparent(span: &SpanHandle<'_>) -> Option<HeaderValue> {
    traceparent_value(span.ids_hex(), span.flags())
}

pub(crate) fn traceparent_value(ids_hex: &[u8; 48], flags: u8) -> Option<HeaderValue> {
    HeaderValue::from_bytes(&w3c::traceparent_bytes(ids_hex, flags)).ok()
}

/// Writes the current context of `span` into `headers` (replacing any
/// `traceparent`, `tracestate` and `baggage` already there).
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    let _ = crate::span::with_span(span, |h| write_context(&h, headers));
}

/// Writes the context of the current span into `headers`: the innermost
/// `#[observed]` call running now, or else tracing's current span (the
/// request). For outbound calls made without observe's client layer.
///
/// ```
/// # let (_, _cap) = observe_core::testing::capture(|| {
/// let mut headers = http::HeaderMap::new();
/// let request = tracing::info_span!("request");
/// let _entered = request.enter();
/// observe_core::propagation::inject_current(&mut headers);
/// assert!(headers.contains_key("traceparent"));
/// # });
/// ```
pub fn inject_current(headers: &mut HeaderMap) {
    let _ = crate::span::with_current_span(|h| write_context(&h, headers));
}

fn write_context(h: &SpanHandle<'_>, headers: &mut HeaderMap) {
    let (trace_context, baggage) = enabled();
    if trace_context {
        if let Some(v) = traceparent_value(h.ids_hex(), h.flags()) {
            headers.insert(TRACEPARENT, v);
        }
        headers.remove(TRACESTATE);
    }
    if baggage {
        headers.remove(BAGGAGE);
    }
    if let Some(p) = h.propagated() {
        if let Some(ts) = p.tracestate.as_deref().filter(|_| trace_context) {
            if let Ok(v) = HeaderValue::from_str(ts) {
                headers.insert(TRACESTATE, v);
            }
        }
        if let Some(b) = p.baggage.as_deref().filter(|_| baggage) {
            if let Ok(v) = HeaderValue::from_str(b) {
                headers.insert(BAGGAGE, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn valid_context_with_state_and_baggage() {
        let e = extract(&headers(&[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
            ),
            ("tracestate", "foo=1"),
            ("tracestate", "bar=2"),
            ("baggage", "synthetic=true,user=psn_1"),
        ]));
        let p = e.parent.expect("parent");
        assert_eq!(p.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(p.span_id().to_string(), "00f067aa0ba902b7");
        assert_eq!(p.trace_flags().to_u8(), 3);
        assert!(e.synthetic);
        let prop = e.propagated.expect("propagated");
        assert_eq!(prop.tracestate.as_deref(), Some("foo=1,bar=2"));
        assert_eq!(prop.baggage.as_deref(), Some("synthetic=true,user=psn_1"));
    }

    #[test]
    fn invalid_traceparent_drops_tracestate_keeps_baggage() {
        let e = extract(&headers(&[
            (
                "traceparent",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            ),
            ("tracestate", "foo=1"),
            ("baggage", "k=v"),
        ]));
        assert!(e.parent.is_none());
        let prop = e.propagated.expect("baggage kept");
        assert_eq!(prop.tracestate, None);
        assert_eq!(prop.baggage.as_deref(), Some("k=v"));
        assert!(!e.synthetic);
    }

    #[test]
    fn traceparent_formatting() {
        let ids = *b"4bf92f3577b34da6a3ce929d0e0e473600f067aa0ba902b7";
        let v = traceparent_value(&ids, 0x83).expect("value");
        assert_eq!(v, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
    }
}
