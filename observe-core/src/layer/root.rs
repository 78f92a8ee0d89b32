//! Where a new span's ids come from: its parent's trace, or for a local
//! root the remote context handed over by [`with_pending`] (a valid
//! `traceparent`, a link, `tracestate` and baggage), or a fresh trace.

use super::span_state::{Propagated, SpanState};
use super::Shared;
use crate::classify::RequestState;
use crate::span::RemoteContext;
use crate::w3c::TraceParent;
use opentelemetry::trace::{Link, SpanContext};
use std::cell::RefCell;
use std::sync::Arc;

thread_local! {
    static PENDING: RefCell<Option<RemoteContext>> = const { RefCell::new(None) };
}

/// Runs `f` (which creates a span) with `cx` as that span's remote parent.
pub(crate) fn with_pending<R>(cx: RemoteContext, f: impl FnOnce() -> R) -> R {
    let _ = PENDING.try_with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            *p = Some(cx);
        }
    });
    let r = f();
    let _ = PENDING.try_with(|p| p.try_borrow_mut().map(|mut p| p.take()));
    r
}

/// What a new span takes from its parent, or, for a local root, from the
/// remote context handed over by [`with_pending`].
pub(crate) struct Inherited {
    pub(super) trace_id: u128,
    /// The new span's id, when drawn together with a new trace id.
    pub(super) span_id: Option<u64>,
    pub(super) parent_span_id: u64,
    pub(super) parent_remote: bool,
    pub(super) flags: u8,
    pub(super) parent_sampled: Option<bool>,
    pub(super) propagated: Option<Arc<Propagated>>,
    pub(super) request: Option<Arc<RequestState>>,
    pub(super) synthetic: bool,
    pub(super) local_root: bool,
    pub(super) is_request: bool,
    pub(super) links: Vec<Link>,
    /// The parent's [`SpanState::otel_seen`].
    pub(super) otel_seen: u64,
}

impl Inherited {
    /// A span that starts the local part of its trace.
    #[inline]
    pub(super) fn local_root(trace_id: u128, span_id: Option<u64>) -> Self {
        Inherited {
            trace_id,
            span_id,
            parent_span_id: 0,
            parent_remote: false,
            flags: TraceParent::FLAG_RANDOM,
            parent_sampled: None,
            propagated: None,
            request: None,
            synthetic: false,
            local_root: true,
            is_request: false,
            links: Vec::new(),
            otel_seen: 0,
        }
    }

    /// A child of `parent`.
    #[inline]
    pub(crate) fn child_of(parent: &SpanState) -> Self {
        Inherited {
            trace_id: parent.trace_id,
            span_id: None,
            parent_span_id: parent.span_id,
            parent_remote: false,
            flags: parent.flags,
            parent_sampled: Some(parent.flags & TraceParent::FLAG_SAMPLED != 0),
            propagated: parent.propagated.clone(),
            request: parent.request.clone(),
            synthetic: parent.synthetic,
            local_root: false,
            is_request: false,
            links: Vec::new(),
            otel_seen: parent.otel_seen,
        }
    }

    /// Under the OpenTelemetry API's current span `otel` (trace id, span
    /// id, flags, remote) when that span is newer than the parent (it
    /// started inside it: the parent did not see it): a span a library
    /// made with the global tracer is the parent of the observe spans made
    /// inside it. A remote parent handed over by a request stays the parent.
    #[cold]
    pub(crate) fn under_otel_span(mut self, otel: Option<(u128, u64, u8, bool)>) -> Self {
        let Some((trace_id, span_id, flags, remote)) = otel else {
            self.otel_seen = 0;
            return self;
        };
        if !self.parent_remote && self.otel_seen != span_id {
            self.trace_id = trace_id;
            self.parent_span_id = span_id;
            self.parent_remote = remote;
            self.flags = flags;
            self.parent_sampled = Some(flags & TraceParent::FLAG_SAMPLED != 0);
        }
        self.otel_seen = span_id;
        self
    }
}

impl Shared {
    /// A local root: the remote parent handed over by [`with_pending`], if
    /// valid, or a fresh trace.
    #[inline]
    pub(crate) fn root(&self) -> Inherited {
        let pending = PENDING
            .try_with(|p| match p.try_borrow_mut() {
                Ok(mut p) if p.is_some() => p.take(),
                _ => None,
            })
            .ok()
            .flatten();
        let Some(pending) = pending else {
            // The common case (a call or a span outside any request): a new
            // trace, built in one piece.
            return self.new_trace();
        };
        self.root_from(pending)
    }

    /// A local root of a new trace.
    #[inline]
    fn new_trace(&self) -> Inherited {
        let (trace_id, span_id) = self.new_trace_ids();
        Inherited::local_root(trace_id, Some(span_id))
    }

    /// A new trace id and its first span id, drawn together.
    #[inline]
    fn new_trace_ids(&self) -> (u128, u64) {
        let [hi, lo, span_id] = self.next_ids::<3>();
        (((hi as u128) << 64) | lo as u128, span_id)
    }

    /// A local root under the context handed over by [`with_pending`].
    #[cold]
    #[inline(never)]
    fn root_from(&self, p: RemoteContext) -> Inherited {
        let mut inherited = Inherited::local_root(0, None);
        inherited.synthetic = p.synthetic;
        inherited.is_request = p.request;
        let propagated = p.propagated;
        if let Some(l) = p.link {
            inherited.links.push(Link::with_context(l));
        }
        let remote = p.parent.filter(SpanContext::is_valid);
        match remote {
            Some(r) => {
                let f = r.trace_flags().to_u8();
                inherited.trace_id = u128::from_be_bytes(r.trace_id().to_bytes());
                inherited.parent_span_id = u64::from_be_bytes(r.span_id().to_bytes());
                inherited.parent_remote = true;
                inherited.flags = f;
                inherited.parent_sampled = Some(f & TraceParent::FLAG_SAMPLED != 0);
                inherited.propagated = propagated;
            }
            None => {
                let (trace_id, span_id) = self.new_trace_ids();
                inherited.trace_id = trace_id;
                inherited.span_id = Some(span_id);
                // A fresh trace keeps the baggage it came with (not the
                // tracestate: that belongs to the discarded parent).
                inherited.propagated = propagated.and_then(|p| {
                    p.baggage.as_ref().map(|b| {
                        Arc::new(Propagated {
                            baggage: Some(b.clone()),
                            ..Default::default()
                        })
                    })
                });
            }
        }
        inherited
    }
}
