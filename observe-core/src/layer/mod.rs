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

pub(crate) use crate::clock::Clock;
pub(crate) use root::{with_pending, Inherited};
pub(crate) use shared::{Shared, SharedParts, TracePipeline};

use fields::Visitor;
use span_state::SpanState;
use std::sync::Arc;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event as TracingEvent, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The tracing [`Layer`](tracing_subscriber::Layer) of observe. Built by
/// [`TelemetryBuilder`](crate::TelemetryBuilder); users rarely name it.
#[derive(Clone, Debug)]
pub struct ObserveLayer {
    pub(crate) shared: Arc<Shared>,
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
}

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
