//! The tracing layer at the heart of observe: it gives every span W3C ids,
//! exports recorded spans to OpenTelemetry span processors, and writes every
//! event as one JSON line.
//!
//! ```text
//!  tracing::span! ──on_new_span──▶ SpanState { ids, JSON fields, SpanRecord? }
//!  span.record()  ──on_record───▶ append JSON field / attribute
//!  tracing::info! ──on_event────▶ one JSON line ──▶ LineSink (stdout)
//!                                     └─(OTLP on)─▶ SdkLogger::emit
//!  span closed    ──on_close────▶ SpanData ──▶ SpanProcessor::on_end (batch / tail sampler)
//! ```
//!
//! All callbacks run synchronously on the thread that created, entered or
//! logged in the span, usually a request's: nothing here blocks, and a warm
//! event allocates nothing (the line is built in a per-thread buffer).

pub(crate) mod fields;
pub(crate) mod local;
pub(crate) mod span_state;

use crate::ids::{random_u64, IdSource, Rng};
use crate::log::json;
use crate::log::redact::Redactor;
use crate::log::sampling::{self, LogSampling, RequestState, SamplingState};
use crate::log::timestamp::write_rfc3339_micros;
use crate::log::writer::LineSink;
use crate::metrics::Instruments;
use crate::sampler::HeadSampler;
use crate::span::RemoteContext;
use fields::{EventFieldSink, SpanFieldSink, SpanSpecial, Visitor};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId,
};
use opentelemetry::{Key, KeyValue};
use opentelemetry_sdk::logs::SdkLogger;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks, SpanProcessor};
use span_state::{SiteFields, SpanRecord, SpanState, FLAG_RANDOM, FLAG_SAMPLED};
use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event as TracingEvent, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

/// Where timestamps come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A fixed instant, for golden tests.
    Fixed(SystemTime),
}

impl Clock {
    #[inline]
    pub(crate) fn now(&self) -> SystemTime {
        match self {
            Clock::System => crate::clock::wall_now(),
            Clock::Fixed(t) => *t,
        }
    }

    /// The time of a clock reading already taken (`None`: read it now).
    #[inline]
    pub(crate) fn at(&self, reading: Option<crate::clock::Instant>) -> SystemTime {
        match (self, reading) {
            (Clock::System, Some(at)) => crate::clock::wall_at(at),
            _ => self.now(),
        }
    }
}

/// Span export: the processors that receive ended spans.
pub(crate) struct TracePipeline {
    pub(crate) processors: Vec<Arc<dyn SpanProcessor>>,
    pub(crate) sampler: HeadSampler,
}

/// Everything the layer needs, shared with the guard and the runtime helpers.
pub(crate) struct Shared {
    pub(crate) service: Box<str>,
    /// `","level":"<LEVEL>","service":"<name>","event":` per level, escaped once.
    after_timestamp: [Box<[u8]>; 5],
    pub(crate) sink: Arc<dyn LineSink>,
    pub(crate) clock: Clock,
    pub(crate) value_cap: usize,
    pub(crate) redactor: Redactor,
    pub(crate) traces: Option<TracePipeline>,
    pub(crate) otel_logs: Option<SdkLogger>,
    pub(crate) log_sampling: Option<LogSampling>,
    pub(crate) sampling_state: SamplingState,
    pub(crate) metrics: Option<Instruments>,
    pub(crate) signals: Option<Arc<crate::signals::Signals>>,
    seeded: Option<Mutex<Rng>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("service", &self.service)
            .field("traces", &self.traces.is_some())
            .field("otel_logs", &self.otel_logs.is_some())
            .finish_non_exhaustive()
    }
}

pub(crate) struct SharedParts {
    pub(crate) service: String,
    pub(crate) sink: Arc<dyn LineSink>,
    pub(crate) clock: Clock,
    pub(crate) value_cap: usize,
    pub(crate) redactor: Redactor,
    pub(crate) traces: Option<TracePipeline>,
    pub(crate) otel_logs: Option<SdkLogger>,
    pub(crate) log_sampling: Option<LogSampling>,
    pub(crate) metrics: Option<Instruments>,
    pub(crate) signals: Option<Arc<crate::signals::Signals>>,
    pub(crate) ids: IdSource,
}

impl Shared {
    pub(crate) fn new(p: SharedParts) -> Self {
        let after_timestamp = LEVEL_JSON.map(|level| {
            let mut v = b"\",\"level\":".to_vec();
            v.extend_from_slice(level);
            v.extend_from_slice(b",\"service\":");
            json::write_str(&mut v, &p.service, 256);
            v.extend_from_slice(b",\"event\":");
            v.into_boxed_slice()
        });
        Shared {
            service: p.service.into_boxed_str(),
            after_timestamp,
            sink: p.sink,
            clock: p.clock,
            value_cap: p.value_cap,
            redactor: p.redactor,
            traces: p.traces,
            otel_logs: p.otel_logs,
            log_sampling: p.log_sampling,
            sampling_state: SamplingState::default(),
            metrics: p.metrics,
            signals: p.signals,
            seeded: match p.ids {
                IdSource::Random => None,
                IdSource::Seeded(s) => Some(Mutex::new(Rng::from_seed(s))),
            },
        }
    }

    #[inline]
    fn next_id(&self) -> u64 {
        match &self.seeded {
            None => random_u64(),
            Some(m) => {
                let mut rng = m.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    let v = rng.next_u64();
                    if v != 0 {
                        return v;
                    }
                }
            }
        }
    }

    /// `N` ids at once (one access to the thread's generator).
    #[inline]
    fn next_ids<const N: usize>(&self) -> [u64; N] {
        match &self.seeded {
            None => crate::ids::random_u64s(),
            Some(_) => std::array::from_fn(|_| self.next_id()),
        }
    }

    /// Hands an ended span to every processor.
    #[inline]
    pub(crate) fn export(&self, data: SpanData) {
        if let Some(t) = &self.traces {
            if let Some((last, rest)) = t.processors.split_last() {
                for p in rest {
                    p.on_end(data.clone());
                }
                last.on_end(data);
            }
        }
    }
}

/// What a new span takes from its parent, or, for a local root, from the
/// remote context handed over by [`with_pending`].
pub(crate) struct Inherited {
    trace_id: u128,
    /// The new span's id, when drawn together with a new trace id.
    span_id: Option<u64>,
    parent_span_id: u64,
    parent_remote: bool,
    flags: u8,
    parent_sampled: Option<bool>,
    propagated: Option<Arc<span_state::Propagated>>,
    request: Option<Arc<RequestState>>,
    synthetic: bool,
    local_root: bool,
    is_request: bool,
    links: Vec<Link>,
}

impl Inherited {
    /// A span that starts the local part of its trace.
    #[inline]
    fn local_root(trace_id: u128, span_id: Option<u64>) -> Self {
        Inherited {
            trace_id,
            span_id,
            parent_span_id: 0,
            parent_remote: false,
            flags: FLAG_RANDOM,
            parent_sampled: None,
            propagated: None,
            request: None,
            synthetic: false,
            local_root: true,
            is_request: false,
            links: Vec::new(),
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
            parent_sampled: Some(parent.flags & FLAG_SAMPLED != 0),
            propagated: parent.propagated.clone(),
            request: parent.request.clone(),
            synthetic: parent.synthetic,
            local_root: false,
            is_request: false,
            links: Vec::new(),
        }
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
                inherited.parent_sampled = Some(f & FLAG_SAMPLED != 0);
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
                        Arc::new(span_state::Propagated {
                            baggage: Some(b.clone()),
                            ..Default::default()
                        })
                    })
                });
            }
        }
        inherited
    }

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
        } = inherited;
        let span_id = span_id.unwrap_or_else(|| sh.next_id());
        let sampled = match &sh.traces {
            Some(t) => t.sampler.should_sample(parent_sampled, trace_id),
            None => false,
        };
        let flags = if sampled {
            flags | FLAG_SAMPLED
        } else {
            flags & !FLAG_SAMPLED
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
        if sampled {
            // Room for the site's attributes and every field.
            let mut attributes =
                Vec::with_capacity(site.map_or(0, |s| s.index.len()) + meta.fields().len());
            if let Some(site) = site {
                site.attributes(&mut attributes);
            }
            state.record = Some(SpanRecord {
                name: Cow::Borrowed(meta.name()),
                kind: site.map_or(SpanKind::Internal, SiteFields::kind),
                start: sh.clock.at(site_start),
                parent_span_id,
                parent_remote,
                attributes,
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

    /// Ends a span `elapsed` after its start and exports it, if it was
    /// recorded. The export data is built in the processor call's argument
    /// (it is 352 bytes: each move of it showed in the `#[observed]`
    /// benchmark).
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
        // call's argument; going through `export` measured 10-25 ns more
        // per span in the `#[observed]` benchmark's span-part rows.
        let data = |rec| span_data(state, rec, end_time);
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
        Some(span_data(state, rec, self.clock.at(end)))
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

/// The export data of a recorded span (its record moves into it whole).
#[inline(always)]
fn span_data(state: &SpanState, rec: SpanRecord, end_time: SystemTime) -> SpanData {
    let SpanRecord {
        name,
        kind,
        start,
        parent_span_id,
        parent_remote,
        attributes,
        events,
        links,
        status,
    } = rec;
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
        dropped_attributes_count: 0,
        events: span_events,
        links: span_links,
        status,
        instrumentation_scope: crate::scope::instrumentation_scope(),
    }
}

thread_local! {
    static PENDING: RefCell<Option<RemoteContext>> = const { RefCell::new(None) };
    static BUFS: RefCell<LineBufs> = RefCell::new(LineBufs::default());
}

#[derive(Default)]
struct LineBufs {
    line: Vec<u8>,
    fields: Vec<u8>,
    message: Vec<u8>,
    event: Vec<u8>,
    names: Vec<&'static str>,
    otel: Vec<(Key, AnyValue)>,
    callsites: fields::CallsiteCache,
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

/// The tracing [`Layer`](tracing_subscriber::Layer) of observe. Built by
/// [`TelemetryBuilder`](crate::TelemetryBuilder); users rarely name it.
#[derive(Clone, Debug)]
pub struct ObserveLayer {
    pub(crate) shared: Arc<Shared>,
}

const LEVEL_JSON: [&[u8]; 5] = [
    b"\"ERROR\"",
    b"\"WARN\"",
    b"\"INFO\"",
    b"\"DEBUG\"",
    b"\"TRACE\"",
];

fn level_idx(l: &Level) -> usize {
    match *l {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 2,
        Level::DEBUG => 3,
        _ => 4,
    }
}

fn severity(l: &Level) -> (Severity, &'static str) {
    match *l {
        Level::ERROR => (Severity::Error, "ERROR"),
        Level::WARN => (Severity::Warn, "WARN"),
        Level::INFO => (Severity::Info, "INFO"),
        Level::DEBUG => (Severity::Debug, "DEBUG"),
        _ => (Severity::Trace, "TRACE"),
    }
}

/// The fallback event name of a plain tracing event: its target in snake_case
/// (`hyper_util::client::legacy` → `hyper_util_client_legacy`).
pub(crate) fn write_inferred_event(buf: &mut Vec<u8>, target: &str) {
    buf.push(b'"');
    let mut last_us = true;
    let start = buf.len();
    for &b in target.as_bytes().iter().take(96) {
        if b.is_ascii_alphanumeric() {
            buf.push(b.to_ascii_lowercase());
            last_us = false;
        } else if !last_us {
            buf.push(b'_');
            last_us = true;
        }
    }
    while buf.len() > start && buf.last() == Some(&b'_') {
        buf.pop();
    }
    if buf.len() == start {
        buf.extend_from_slice(b"log");
    }
    buf.push(b'"');
}

static EVENT_NAMES: std::sync::OnceLock<Mutex<Vec<&'static str>>> = std::sync::OnceLock::new();

/// Interns low-cardinality event names for OTLP log records (`&'static str`
/// in the API); after 4096 distinct names, further ones are not interned.
fn intern_event(name: &str) -> Option<&'static str> {
    let m = EVENT_NAMES.get_or_init(|| Mutex::new(Vec::new()));
    let mut v = m.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = v.iter().find(|s| **s == name) {
        return Some(s);
    }
    if v.len() >= 4096 {
        return None;
    }
    let s: &'static str = Box::leak(name.to_owned().into_boxed_str());
    v.push(s);
    Some(s)
}

impl ObserveLayer {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        ObserveLayer { shared }
    }

    fn new_state<S>(&self, attrs: &Attributes<'_>, id: &Id, ctx: &Context<'_, S>) -> SpanState
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let sh = &*self.shared;
        let new = |inherited| {
            sh.new_state(inherited, attrs.metadata(), |sink| {
                attrs.record(&mut Visitor(sink))
            })
        };
        // A contextual span started inside an `#[observed]` call is that
        // call's child, and carries its fields (and those of the calls
        // around it), which tracing's scope will not show.
        if attrs.is_contextual() && local::any_entered() {
            let current = ctx.current_span().id().map(Id::into_u64);
            let from_local = local::with_scope(current, |frames| {
                let mut state = new(Inherited::child_of(&frames.last()?.state));
                for fr in frames.iter().rev() {
                    state.inherit_fields(&fr.state);
                }
                Some(state)
            });
            if let Some(state) = from_local {
                return state;
            }
        }
        let parent = ctx.span(id).and_then(|s| s.parent());
        let inherited = parent
            .as_ref()
            .and_then(|p| p.extensions().get::<SpanState>().map(Inherited::child_of))
            .unwrap_or_else(|| sh.root());
        new(inherited)
    }

    fn write_event<S>(&self, event: &TracingEvent<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        // The event's spans, innermost first (deeper ones lend no fields):
        // the `#[observed]` calls running in tracing's current span, then
        // tracing's scope.
        let mut spans: [Option<SpanRef<'_, S>>; MAX_SCOPE] = [const { None }; MAX_SCOPE];
        if let Some(scope) = ctx.event_scope(event) {
            for (slot, span) in spans.iter_mut().zip(scope) {
                *slot = Some(span);
            }
        }
        if event.is_contextual() && local::any_entered() {
            let current = spans[0].as_ref().map(|s| s.id().into_u64());
            local::with_scope(current, |locals| self.write_line(event, &spans, locals));
        } else {
            self.write_line(event, &spans, &mut []);
        }
    }

    fn write_line<S>(
        &self,
        event: &TracingEvent<'_>,
        spans: &[Option<SpanRef<'_, S>>; MAX_SCOPE],
        locals: &mut [local::Frame],
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let sh = &*self.shared;
        let meta = event.metadata();
        let level = meta.level();
        let mut write = |b: &mut LineBufs| {
            b.line.clear();
            b.fields.clear();
            b.message.clear();
            b.event.clear();
            b.names.clear();
            b.otel.clear();
            // One pass over the event's fields: they go straight into the
            // line's tail; `message` and `event` are kept for the head.
            let mut bloom;
            {
                let info = b.callsites.get(meta, &sh.redactor);
                bloom = info.bloom;
                let mut sink = EventFieldSink {
                    out: &mut b.fields,
                    message: &mut b.message,
                    event: &mut b.event,
                    names: &mut b.names,
                    otel: if sh.otel_logs.is_some() {
                        Some(&mut b.otel)
                    } else {
                        None
                    },
                    redactor: &sh.redactor,
                    info,
                    cap: sh.value_cap,
                };
                event.record(&mut Visitor(&mut sink));
            }
            let named = !b.event.is_empty();
            if !named {
                match b.callsites.peek(meta) {
                    Some(info) => b.event.extend_from_slice(&info.inferred_event),
                    None => write_inferred_event(&mut b.event, meta.target()),
                }
            }
            // The head: mandatory keys, message, target.
            let line = &mut b.line;
            line.extend_from_slice(b"{\"timestamp\":\"");
            let now = sh.clock.now();
            write_rfc3339_micros(line, now);
            // `","level":"INFO","service":"<name>","event":` in one copy.
            line.extend_from_slice(&sh.after_timestamp[level_idx(level)]);
            line.extend_from_slice(&b.event);
            let mut trace: Option<(u128, u64, u8)> = None;
            let mut request: Option<Arc<RequestState>> = None;
            let mut synthetic = false;
            let mut recorded = false;
            // One walk over the spans: ids of the innermost into the head,
            // every span's fields into the tail (the innermost value of a name wins).
            let tail = &mut b.fields;
            let mut visit = |st: &SpanState| {
                if trace.is_none() {
                    trace = Some((st.trace_id, st.span_id, st.flags));
                    line.extend_from_slice(b",\"trace_id\":\"");
                    line.extend_from_slice(&st.ids_hex()[..32]);
                    line.extend_from_slice(b"\",\"span_id\":\"");
                    line.extend_from_slice(&st.ids_hex()[32..]);
                    line.push(b'"');
                    request.clone_from(&st.request);
                    synthetic = st.synthetic;
                    recorded = st.record.is_some();
                }
                if let Some(site) = st.site {
                    append_fields(
                        tail,
                        &mut b.names,
                        &mut bloom,
                        &site.json,
                        &site.index,
                        site.bloom,
                    );
                }
                append_fields(
                    tail,
                    &mut b.names,
                    &mut bloom,
                    &st.fields,
                    &st.index,
                    st.bloom,
                );
            };
            for fr in locals.iter().rev() {
                visit(&fr.state);
            }
            for span in spans.iter().flatten() {
                if let Some(st) = span.extensions().get::<SpanState>() {
                    visit(st);
                }
            }
            if trace.is_none() {
                line.extend_from_slice(b",\"trace_id\":null,\"span_id\":null");
            }
            if !named {
                line.extend_from_slice(b",\"event_inferred\":true");
            }
            if !b.message.is_empty() {
                line.extend_from_slice(b",\"message\":");
                line.extend_from_slice(&b.message);
            }
            match b.callsites.peek(meta) {
                Some(info) => line.extend_from_slice(&info.target_json),
                None => {
                    line.extend_from_slice(b",\"target\":");
                    json::write_str(line, meta.target(), 256);
                }
            }
            if synthetic && !b.names.contains(&"synthetic") {
                tail.extend_from_slice(b",\"synthetic\":true");
            }
            tail.extend_from_slice(b"}\n");

            // Sampling.
            let keep = match &sh.log_sampling {
                None => true,
                Some(cfg) => {
                    if sh.sampling_state.full_fidelity() {
                        true
                    } else {
                        let ev = &b.event[1..b.event.len().saturating_sub(1)];
                        let rate = cfg.rate(*level, ev);
                        let u = match trace {
                            Some((t, _, _)) => sampling::uniform_from_trace(t),
                            None => random_u64(),
                        };
                        sampling::keep(rate, u)
                    }
                }
            };
            if keep {
                sh.sink.write_parts(line, tail);
            } else if let (Some(req), Some(cfg)) = (&request, &sh.log_sampling) {
                let mut held = req.lock();
                if held.lines < cfg.request_buffer_lines
                    && held.bytes.len() + line.len() + tail.len() <= cfg.request_buffer_bytes
                {
                    held.bytes.extend_from_slice(line);
                    held.bytes.extend_from_slice(tail);
                    held.lines += 1;
                } else {
                    held.overflow += 1;
                }
            } else if let Some(m) = &sh.metrics {
                m.logs_dropped(1, "sampled");
            }

            let event_name = || {
                std::str::from_utf8(&b.event[1..b.event.len().saturating_sub(1)]).unwrap_or("log")
            };
            let message = || -> Option<String> {
                if b.message.is_empty() {
                    None
                } else {
                    serde_json::from_slice::<String>(&b.message).ok()
                }
            };

            // Errors and warnings also become events of the innermost recorded span.
            if recorded && *level <= Level::WARN {
                let add = |rec: &mut SpanRecord| {
                    if rec.events.len() < MAX_SPAN_EVENTS {
                        let mut attrs = vec![KeyValue::new("level", level.as_str())];
                        if let Some(m) = message() {
                            attrs.push(KeyValue::new("message", m));
                        }
                        rec.events
                            .push(Event::new(event_name().to_owned(), now, attrs, 0));
                    }
                };
                if let Some(fr) = locals.last_mut() {
                    if let Some(rec) = fr.state.record.as_mut() {
                        add(rec);
                    }
                } else if let Some(span) = spans.iter().flatten().next() {
                    let mut ext = span.extensions_mut();
                    if let Some(rec) = ext.get_mut::<SpanState>().and_then(|s| s.record.as_mut()) {
                        add(rec);
                    }
                }
            }

            // OTLP log record (same trace ids).
            if let Some(logger) = &sh.otel_logs {
                let mut rec = logger.create_log_record();
                let (sev, text) = severity(level);
                rec.set_severity_number(sev);
                rec.set_severity_text(text);
                rec.set_timestamp(now);
                rec.set_observed_timestamp(now);
                rec.set_target(meta.target().to_owned());
                if let Some(name) = intern_event(event_name()) {
                    rec.set_event_name(name);
                }
                if let Some(body) = message() {
                    rec.set_body(AnyValue::from(body));
                }
                rec.add_attributes(b.otel.drain(..));
                if !named {
                    rec.add_attribute("event_inferred", true);
                }
                if let Some((t, s, f)) = trace {
                    rec.set_trace_context(
                        TraceId::from(t),
                        SpanId::from(s),
                        Some(TraceFlags::new(f)),
                    );
                }
                logger.emit(rec);
            }
        };
        // A line logged while this thread's buffers are in use (re-entrant
        // logging from inside a Debug impl) is skipped rather than panic; one
        // logged while the thread exits, after the buffers are gone, gets
        // buffers of its own.
        let done = BUFS.try_with(|bufs| {
            if let Ok(mut bufs) = bufs.try_borrow_mut() {
                write(&mut bufs);
            }
        });
        if done.is_err() {
            write(&mut LineBufs::default());
        }
    }
}

/// Appends a span's `,"k":v` entries whose names are not on the line yet.
#[inline]
fn append_fields(
    tail: &mut Vec<u8>,
    names: &mut Vec<&'static str>,
    bloom: &mut u64,
    json: &[u8],
    index: &[(&'static str, u32, u32, u64)],
    part_bloom: u64,
) {
    if *bloom & part_bloom == 0 {
        // No name of this part was written yet: copy all its fields at once.
        tail.extend_from_slice(json);
        names.extend(index.iter().map(|e| e.0));
        *bloom |= part_bloom;
        return;
    }
    for &(name, start, end, bit) in index {
        if *bloom & bit != 0 && seen(names, name) {
            continue;
        }
        *bloom |= bit;
        tail.extend_from_slice(&json[start as usize..end as usize]);
        names.push(name);
    }
}

/// Whether `name` was written already (same address first: call-site names are static).
#[inline]
fn seen(names: &[&'static str], name: &'static str) -> bool {
    names
        .iter()
        .any(|n| std::ptr::eq(n.as_ptr(), name.as_ptr()) && n.len() == name.len() || *n == name)
}

/// Spans of an event's scope that lend fields to its line.
const MAX_SCOPE: usize = 8;
/// Most events kept on one span.
const MAX_SPAN_EVENTS: usize = 128;

impl<S> tracing_subscriber::Layer<S> for ObserveLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let state = self.new_state(attrs, id, &ctx);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(state);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(st) = ext.get_mut::<SpanState>() {
            self.shared.record_fields(st, span.metadata(), |sink| {
                values.record(&mut Visitor(sink))
            });
        }
    }

    fn on_event(&self, event: &TracingEvent<'_>, ctx: Context<'_, S>) {
        self.write_event(event, &ctx);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        // Finished in place: the registry frees the state with the span.
        let mut ext = span.extensions_mut();
        let data = ext
            .get_mut::<SpanState>()
            .and_then(|st| self.shared.finish(st, None));
        drop(ext);
        if let Some(data) = data {
            self.shared.export(data);
        }
    }
}
