//! A span's end: its request's held-back lines are written (if it failed)
//! or discarded, and a recorded span becomes `SpanData` for the processors.

use super::span_state::{SpanRecord, SpanState};
use super::{Clock, Shared};
use crate::classify::RequestState;
use crate::telemetry::vars::Limits;
use opentelemetry::trace::{SpanId, Status};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use std::time::SystemTime;

impl Shared {
    /// Ends a span `elapsed` after its start and exports it, if it was
    /// recorded. The export data (352 bytes) is built in the processor
    /// call's argument, never moved on the way.
    #[inline]
    pub(crate) fn finish_and_export(&self, state: &mut SpanState, elapsed: std::time::Duration) {
        self.end_request(state);
        let Some(trace) = &self.traces else { return };
        let Some(rec) = state.record.take() else {
            return;
        };
        let end_time = match self.clock {
            Clock::System => rec.start.checked_add(elapsed).unwrap_or(rec.start),
            Clock::Fixed(t) => t,
        };
        // One processor (the common case) gets the span built in its
        // call's argument, without going through `export`'s fan-out; when
        // it is observe's pipeline, the call site's attributes are added on
        // its thread.
        let limits = self.span_limits;
        if let Some(direct) = &trace.direct {
            if site_fits(&rec, limits) {
                let site = rec.site_attributes;
                direct.push_ended(span_data(state, rec, end_time, limits, true), site);
                return;
            }
        }
        let data = |rec| span_data(state, rec, end_time, limits, false);
        match trace.processors.as_slice() {
            [only] => only.on_end(data(rec)),
            _ => self.export(data(rec)),
        }
    }

    /// Ends a span: flushes its request's held-back lines and returns its
    /// export data, if it was recorded.
    pub(crate) fn finish(
        &self,
        state: &mut SpanState,
        end: Option<crate::clock::Instant>,
    ) -> Option<SpanData> {
        self.end_request(state);
        self.traces.as_ref()?;
        let rec = state.record.take()?;
        Some(span_data(
            state,
            rec,
            self.clock.at(end),
            self.span_limits,
            false,
        ))
    }

    /// A failed span fails its request; a local root ends it.
    #[inline]
    fn end_request(&self, state: &SpanState) {
        if let Some(req) = &state.request {
            let failed = state
                .record
                .as_ref()
                .is_some_and(|r| matches!(r.status, Status::Error { .. }));
            if failed {
                req.lock().failed = true;
            }
            if state.local_root {
                self.finish_request(req);
            }
        }
    }

    /// The local root of a request ended: write its held-back lines if it failed.
    fn finish_request(&self, req: &RequestState) {
        let sh = self;
        let mut lines = req.lock();
        let held = lines.lines as u64;
        if lines.failed {
            if !lines.bytes.is_empty() {
                sh.sink.write_line(&lines.bytes);
            }
            if let Some(m) = &sh.metrics {
                m.logs_buffered(held, "written");
            }
        } else if let Some(m) = &sh.metrics {
            m.logs_buffered(held, "discarded");
            m.logs_dropped(held, "sampled");
        }
        if let Some(m) = &sh.metrics {
            m.logs_dropped(lines.overflow, "request_buffer_full");
        }
        lines.bytes = Vec::new();
        lines.lines = 0;
        lines.overflow = 0;
    }
}

/// Whether a span's call-site attributes can be added after its own went
/// through the limits: all of them fit the count limit and the site's
/// values fit the length limit (nothing the limits would cut is left to add).
#[inline]
fn site_fits(rec: &SpanRecord, limits: Limits) -> bool {
    let site = rec.site_attributes;
    site.is_empty()
        || (site.len() + rec.attributes.len() <= limits.count
            && limits.value_len.is_none_or(|cap| {
                site.iter().all(|kv| match &kv.value {
                    Value::String(s) => s.as_str().len() <= cap,
                    _ => true,
                })
            }))
}

/// The export data of a recorded span (its record moves into it whole),
/// with its call site's attributes unless `site_later` (the pipeline's
/// thread adds them: [`site_fits`] holds).
#[inline(always)]
fn span_data(
    state: &SpanState,
    rec: SpanRecord,
    end_time: SystemTime,
    limits: Limits,
    site_later: bool,
) -> SpanData {
    let SpanRecord {
        name,
        kind,
        start,
        parent_span_id,
        parent_remote,
        attributes,
        site_attributes,
        events,
        links,
        status,
    } = rec;
    let attributes = if site_later || site_attributes.is_empty() {
        attributes
    } else {
        crate::export::span::with_site_attributes(site_attributes, attributes)
    };
    let (attributes, dropped_attributes_count) = limited(attributes, limits);
    let mut span_events = SpanEvents::default();
    span_events.events = events;
    let mut span_links = SpanLinks::default();
    span_links.links = links;
    SpanData {
        span_context: state.span_context(),
        parent_span_id: SpanId::from(parent_span_id),
        parent_span_is_remote: parent_remote,
        span_kind: kind,
        name,
        start_time: start,
        end_time,
        attributes,
        dropped_attributes_count,
        events: span_events,
        links: span_links,
        status,
        instrumentation_scope: crate::scope::instrumentation_scope(),
    }
}

/// The span's attributes within `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT` (the first
/// ones kept, the rest counted) and `_VALUE_LENGTH_LIMIT` (string values cut
/// at a character boundary; checked only when a limit is set).
#[inline]
fn limited(mut attributes: Vec<KeyValue>, limits: Limits) -> (Vec<KeyValue>, u32) {
    let mut dropped = 0;
    if attributes.len() > limits.count {
        dropped = u32::try_from(attributes.len() - limits.count).unwrap_or(u32::MAX);
        attributes.truncate(limits.count);
    }
    if let Some(cap) = limits.value_len {
        for kv in &mut attributes {
            if let Value::String(s) = &kv.value {
                if s.as_str().len() > cap {
                    kv.value =
                        Value::String(super::fields::within(s.as_str(), cap).to_owned().into());
                }
            }
        }
    }
    (attributes, dropped)
}
