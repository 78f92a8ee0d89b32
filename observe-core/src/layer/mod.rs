//! The tracing layer at the heart of observe: it gives every span W3C ids,
//! exports recorded spans to OpenTelemetry span processors, and writes every
//! event as one JSON line.
//!
//! ```text
//!  tracing::span! ──on_new_span──▶ SpanState { ids, JSON fields, SpanRecord? }   root.rs, start.rs
//!  span.record()  ──on_record───▶ append JSON field / attribute                  start.rs, fields.rs
//!  tracing::info! ──on_event────▶ one JSON line ──▶ LineSink (stdout)            event.rs, log/line.rs
//!                                     └─(OTLP on)─▶ SdkLogger::emit             export/record.rs
//!  span closed    ──on_close────▶ SpanData ──▶ SpanProcessor::on_end             finish.rs
//!  #[observed]    ──(no registry)─▶ the call's own span on a per-thread stack     local.rs
//! ```
//!
//! All callbacks run synchronously on the thread that created, entered or
//! logged in the span, usually a request's: nothing here blocks, and a warm
//! event allocates nothing (the line is built in a per-thread buffer).

mod event;
pub(crate) mod fields;
mod finish;
pub(crate) mod local;
mod root;
mod shared;
pub(crate) mod span_state;
mod start;
mod store;

pub(crate) use crate::clock::Clock;
pub(crate) use root::{with_pending, Inherited};
pub(crate) use shared::{Shared, SharedParts, TracePipeline};

pub(crate) use store::{SpanStore, Spans};

use crate::export::dropped::DropStats;
use crate::filter::LogFilter;
use fields::Visitor;
use span_state::SpanState;
use std::fmt;
use std::sync::Arc;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event as TracingEvent, Metadata, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// observe's tracing [`Layer`]: W3C ids and export for every span, one JSON
/// line per event, the level filter (`RUST_LOG`, never applied to
/// observe's own spans).
///
/// [`TelemetryBuilder::build`](crate::TelemetryBuilder::build) and
/// [`init`](crate::TelemetryBuilder::init) put it over a registry of their
/// own; [`build_layer`](crate::TelemetryBuilder::build_layer) hands it to
/// you, to add to your own registry next to other layers:
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt as _;
/// # use observe_core::testing::TelemetryBuilderExt as _;
///
/// let (layer, _guard) = observe_core::Telemetry::builder("checkout")
/// #   .env_source(|_| None)
/// #   .log_output(observe_core::LogOutput::Sink(std::sync::Arc::new(observe_core::MemorySink::new())))
///     .build_layer()?;
/// let subscriber = tracing_subscriber::registry()
///     .with(layer)
///     .with(tracing_subscriber::filter::LevelFilter::INFO); // and your own layers
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!("request");
///     let _e = span.enter();
///     assert!(observe_core::current_trace_id().is_some());
/// });
/// # Ok::<(), observe_core::InitError>(())
/// ```
///
/// [`Layer`]: tracing_subscriber::Layer
pub struct TelemetryLayer {
    pub(crate) shared: Arc<Shared>,
    filter: LogFilter,
    /// The subscriber this layer was added to (set by `on_layer`).
    spans: Option<Spans>,
    /// observe's pipelines, told where to log what they drop.
    drop_stats: Vec<Arc<DropStats>>,
}

impl fmt::Debug for TelemetryLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryLayer")
            .field("service", &self.shared.service)
            .field("added", &self.spans.is_some())
            .finish_non_exhaustive()
    }
}

impl TelemetryLayer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        filter: LogFilter,
        drop_stats: Vec<Arc<DropStats>>,
    ) -> Self {
        TelemetryLayer {
            shared,
            filter,
            spans: None,
            drop_stats,
        }
    }

    /// observe's layer in `d`, and the subscriber it was added to.
    #[inline]
    pub(crate) fn find(d: &Dispatch) -> Option<(&TelemetryLayer, &dyn SpanStore)> {
        let layer = d.downcast_ref::<TelemetryLayer>()?;
        Some((layer, layer.store(d)?))
    }

    /// The subscriber this layer was added to, in `d` (the dispatcher it is part of).
    #[inline]
    pub(crate) fn store<'d>(&self, d: &'d Dispatch) -> Option<&'d dyn SpanStore> {
        self.spans?.get(d)
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
}

impl<S> tracing_subscriber::Layer<S> for TelemetryLayer
where
    S: Subscriber + for<'a> LookupSpan<'a> + 'static,
{
    fn on_layer(&mut self, _subscriber: &mut S) {
        self.spans = Some(Spans::of::<S>());
    }

    fn on_register_dispatch(&self, dispatch: &Dispatch) {
        for s in &self.drop_stats {
            s.report_to(dispatch.downgrade());
        }
    }

    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        <LogFilter as tracing_subscriber::Layer<S>>::register_callsite(&self.filter, meta)
    }

    fn enabled(&self, meta: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.filter.enabled(meta, ctx)
    }

    fn event_enabled(&self, event: &TracingEvent<'_>, ctx: Context<'_, S>) -> bool {
        self.filter.event_enabled(event, ctx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        <LogFilter as tracing_subscriber::Layer<S>>::max_level_hint(&self.filter)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.filter.on_new_span(attrs, id, ctx.clone());
        let state = self.new_state(attrs, id, &ctx);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(state);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.filter.on_record(id, values, ctx.clone());
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

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.filter.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.filter.on_exit(id, ctx);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
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
        self.filter.on_close(id, ctx);
    }
}
