//! The OpenTelemetry API's global tracer and propagator, joined to
//! observe's spans, both ways:
//!
//! - a span a library starts with `opentelemetry::global::tracer(..)`
//!   without a parent of its own is a child of observe's current span (the
//!   innermost `#[observed]` call, or tracing's current span);
//! - an observe span started while such a span is the API's current one
//!   (`Context::current`, `Tracer::in_span`) is its child;
//! - `global::get_text_map_propagator(|p| p.inject(..))` writes the
//!   context of whichever of the two is innermost (and observe's baggage
//!   when the API's context carries none).
//!
//! Which one is innermost: every observe span remembers the API's current
//! span when it started ([`SpanState::otel_seen`]). The API's current span
//! is newer than an observe span that did not see it. Until a span has
//! been started through the bridge, observe's span path never looks at the
//! API's context (one relaxed atomic load).
//!
//! [`SpanState::otel_seen`]: crate::layer::span_state::SpanState

use crate::layer::span_state::Propagated;
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::propagation::{
    text_map_propagator::FieldIter, Extractor, Injector, TextMapCompositePropagator,
    TextMapPropagator,
};
use opentelemetry::trace::{
    SpanBuilder, SpanContext, TraceContextExt as _, Tracer, TracerProvider,
};
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, Span};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Set once a span has been started through [`BridgeTracer`].
static IN_USE: AtomicBool = AtomicBool::new(false);

/// Whether a span has been started through the global tracer.
#[inline]
pub(crate) fn in_use() -> bool {
    IN_USE.load(Ordering::Relaxed)
}

/// The API's current span on this thread, if valid: (trace id, span id,
/// flags, remote). `None` as well while the thread exits (the API's
/// thread-local may be gone: reading it would panic).
pub(crate) fn current_otel_span() -> Option<(u128, u64, u8, bool)> {
    let read = || {
        Context::map_current(|cx| {
            let span = cx.span();
            let sc = span.span_context();
            sc.is_valid().then(|| ids(sc))
        })
    };
    std::panic::catch_unwind(read).ok().flatten()
}

fn ids(sc: &SpanContext) -> (u128, u64, u8, bool) {
    (
        u128::from_be_bytes(sc.trace_id().to_bytes()),
        u64::from_be_bytes(sc.span_id().to_bytes()),
        sc.trace_flags().to_u8(),
        sc.is_remote(),
    )
}

/// observe's current span, when it is newer than `cx`'s span (or `cx` has
/// none).
struct ObserveParent {
    context: SpanContext,
    /// Its `traceparent`, as observe's client layer writes it (with the
    /// W3C level-2 random flag, which the SDK's propagator drops).
    traceparent: [u8; 55],
    propagated: Option<Arc<Propagated>>,
}

fn observe_parent(cx: &Context) -> Option<ObserveParent> {
    let span = cx.span();
    let otel = span.span_context();
    let otel_id = otel
        .is_valid()
        .then(|| u64::from_be_bytes(otel.span_id().to_bytes()));
    crate::context::with_current(|st| match otel_id {
        Some(id) if st.otel_seen != id => None,
        _ => Some(ObserveParent {
            context: st.span_context(),
            traceparent: crate::w3c::traceparent_bytes(st.ids_hex(), st.flags),
            propagated: st.propagated.clone(),
        }),
    })
    .flatten()
}

/// The tracer provider `init` installs globally: the SDK's, over observe's
/// span processors, whose tracers parent their spans as the module says.
#[derive(Debug)]
pub(crate) struct BridgeProvider(pub(crate) SdkTracerProvider);

impl TracerProvider for BridgeProvider {
    type Tracer = BridgeTracer;

    fn tracer_with_scope(&self, scope: InstrumentationScope) -> BridgeTracer {
        BridgeTracer(self.0.tracer_with_scope(scope))
    }
}

/// A tracer of [`BridgeProvider`].
#[derive(Debug)]
pub(crate) struct BridgeTracer(SdkTracer);

impl Tracer for BridgeTracer {
    type Span = Span;

    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> Span {
        if !IN_USE.load(Ordering::Relaxed) {
            IN_USE.store(true, Ordering::Relaxed);
        }
        match observe_parent(parent_cx) {
            Some(p) => self
                .0
                .build_with_context(builder, &parent_cx.with_remote_span_context(p.context)),
            None => self.0.build_with_context(builder, parent_cx),
        }
    }
}

/// The propagator `init` installs globally: W3C Trace Context and Baggage,
/// injecting observe's current context where it is the innermost.
#[derive(Debug)]
pub(crate) struct BridgePropagator {
    both: TextMapCompositePropagator,
    trace_context: TraceContextPropagator,
    baggage: BaggagePropagator,
}

impl BridgePropagator {
    pub(crate) fn new() -> Self {
        BridgePropagator {
            both: TextMapCompositePropagator::new(vec![
                Box::new(TraceContextPropagator::new()),
                Box::new(BaggagePropagator::new()),
            ]),
            trace_context: TraceContextPropagator::new(),
            baggage: BaggagePropagator::new(),
        }
    }

    /// The SDK propagators `OTEL_PROPAGATORS` enabled.
    fn sdk(&self) -> Option<&dyn TextMapPropagator> {
        match crate::propagation::enabled() {
            (true, true) => Some(&self.both),
            (true, false) => Some(&self.trace_context),
            (false, true) => Some(&self.baggage),
            (false, false) => None,
        }
    }
}

impl TextMapPropagator for BridgePropagator {
    /// observe's context, when it is the innermost, as observe's own
    /// outbound calls carry it (`traceparent`, the `tracestate` it
    /// received, its baggage unless `cx` has baggage of its own); else the
    /// SDK's W3C propagators on `cx`.
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let Some(p) = observe_parent(cx) else {
            if let Some(sdk) = self.sdk() {
                sdk.inject_context(cx, injector);
            }
            return;
        };
        let (trace_context, baggage) = crate::propagation::enabled();
        let propagated = p.propagated.as_deref();
        if trace_context {
            injector.set(
                "traceparent",
                String::from_utf8_lossy(&p.traceparent).into_owned(),
            );
            if let Some(ts) = propagated.and_then(|p| p.tracestate.as_deref()) {
                injector.set("tracestate", ts.to_owned());
            }
        }
        if baggage {
            if !cx.baggage().is_empty() {
                self.baggage.inject_context(cx, injector);
            } else if let Some(b) = propagated.and_then(|p| p.baggage.as_deref()) {
                injector.set("baggage", b.to_owned());
            }
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match self.sdk() {
            Some(sdk) => sdk.extract_with_context(cx, extractor),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        self.both.fields()
    }
}
