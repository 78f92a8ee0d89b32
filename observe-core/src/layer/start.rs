//! A span's start: its ids and sampling decision, the export record of a
//! sampled span, and its fields (pre-serialised for log lines, attributes
//! for the exported span).

use super::fields::{self, SpanFieldSink, SpanSpecial};
use super::root::Inherited;
use super::span_state::{SiteFields, SpanRecord, SpanState};
use super::Shared;
use crate::classify::RequestState;
use crate::w3c::TraceParent;
use opentelemetry::trace::{SpanKind, Status};
use std::borrow::Cow;
use std::sync::Arc;

impl Shared {
    /// The state of a new span: its ids, the sampling decision, and the
    /// fields `record` writes into the sink.
    pub(crate) fn new_state(
        &self,
        inherited: Inherited,
        meta: &'static tracing::Metadata<'static>,
        record: impl FnOnce(&mut SpanFieldSink<'_>),
    ) -> SpanState {
        let mut state = SpanState::new(0, 0, 0);
        self.fill_state(&mut state, inherited, meta, None, None);
        if !meta.fields().is_empty() {
            self.record_fields(&mut state, meta, record);
        }
        state
    }

    /// A new span's ids, sampling decision and export record (without its
    /// fields: [`Shared::record_fields`] adds those), written into a fresh
    /// `state` (`SpanState::new(0, 0, 0)`) where it already lives: a boxed
    /// `#[observed]` span is built in its box, not moved there. `site` and
    /// `site_start` are given for `#[observed]` spans (fixed fields encoded
    /// once per call site, and the clock reading the call already took).
    #[inline]
    pub(crate) fn fill_state(
        &self,
        state: &mut SpanState,
        inherited: Inherited,
        meta: &'static tracing::Metadata<'static>,
        site: Option<&'static SiteFields>,
        site_start: Option<crate::clock::Instant>,
    ) {
        let sh = self;
        let inherited = if crate::bridge::otel::in_use() {
            inherited.under_otel_span(crate::bridge::otel::current_otel_span())
        } else {
            inherited
        };
        let Inherited {
            trace_id,
            span_id,
            parent_span_id,
            parent_remote,
            flags,
            parent_sampled,
            propagated,
            request,
            synthetic,
            local_root,
            is_request,
            links,
            otel_seen,
        } = inherited;
        let span_id = span_id.unwrap_or_else(|| sh.next_id());
        let sampled = match &sh.traces {
            Some(t) => t.sampler.should_sample(parent_sampled, trace_id),
            None => false,
        };
        let flags = if sampled {
            flags | TraceParent::FLAG_SAMPLED
        } else {
            flags & !TraceParent::FLAG_SAMPLED
        };
        let request = match request {
            Some(r) => Some(r),
            None if local_root && (is_request || sh.log_sampling.is_some()) => {
                Some(Arc::new(RequestState::new()))
            }
            None => None,
        };
        state.trace_id = trace_id;
        state.span_id = span_id;
        state.flags = flags;
        state.propagated = propagated;
        state.site = site;
        state.request = request;
        state.local_root = local_root;
        state.synthetic = synthetic;
        state.otel_seen = otel_seen;
        if sampled {
            // Room for every field (none: no allocation). The site's
            // attributes are added when the span is exported.
            let attributes = Vec::with_capacity(meta.fields().len());
            state.record = Some(SpanRecord {
                name: Cow::Borrowed(meta.name()),
                kind: site.map_or(SpanKind::Internal, SiteFields::kind),
                start: sh.clock.at(site_start),
                parent_span_id,
                parent_remote,
                attributes,
                site_attributes: site.map_or(&[], |s| &s.attributes),
                events: Vec::new(),
                links,
                status: Status::Unset,
            });
        }
    }

    /// Records fields on a span after its start (`span.record(..)`, or an
    /// `#[observed]` call's `fields(..)`): a field recorded again replaces
    /// its value; `otel.*` fields steer the exported span.
    pub(crate) fn record_fields(
        &self,
        st: &mut SpanState,
        meta: &'static tracing::Metadata<'static>,
        record: impl FnOnce(&mut SpanFieldSink<'_>),
    ) {
        let sh = self;
        let mut special = SpanSpecial::default();
        let SpanState {
            fields,
            index,
            bloom,
            record: rec,
            ..
        } = st;
        {
            let info = fields::callsite_info(meta, &sh.redactor);
            let mut sink = SpanFieldSink {
                json: fields,
                index,
                attrs: rec.as_mut().map(|r| &mut r.attributes),
                special: &mut special,
                redactor: &sh.redactor,
                info: &info,
                cap: sh.value_cap,
            };
            record(&mut sink);
        }
        *bloom = index.iter().fold(0, |acc, e| acc | e.3);
        if let Some(r) = rec.as_mut() {
            if let Some(n) = special.name {
                r.name = Cow::Owned(n);
            }
            if let Some(k) = special.kind {
                r.kind = k;
            }
            match special.status_error {
                Some(true) => {
                    r.status = Status::error(special.status_description.unwrap_or_default())
                }
                Some(false) => r.status = Status::Ok,
                None => {}
            }
        }
    }
}
