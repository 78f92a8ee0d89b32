//! How observe reaches its span state inside whatever subscriber its layer
//! was added to: a lookup made for that subscriber's type when the layer is
//! added ([`Layer::on_layer`](tracing_subscriber::Layer::on_layer)), so the
//! layer works in any stack of layers over a registry (next to a `fmt`
//! layer, tokio-console, a filter) and nothing downcasts the dispatcher to
//! one concrete subscriber type.

use super::span_state::SpanState;
use tracing::span::Id;
use tracing::{Dispatch, Subscriber};
use tracing_subscriber::registry::LookupSpan;

/// The subscriber under observe's layer, seen through what observe needs.
pub(crate) trait SpanStore {
    /// This thread's current span.
    fn current(&self) -> Option<Id>;
    /// Runs `f` on observe's state of span `id`, if it has one.
    fn read(&self, id: &Id, f: &mut dyn FnMut(&SpanState));
    /// Runs `f` on observe's state of span `id` mutably, if it has one.
    fn write(&self, id: &Id, f: &mut dyn FnMut(&mut SpanState));
}

impl<S> SpanStore for S
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    #[inline]
    fn current(&self) -> Option<Id> {
        Subscriber::current_span(self).id().cloned()
    }

    #[inline]
    fn read(&self, id: &Id, f: &mut dyn FnMut(&SpanState)) {
        if let Some(span) = self.span(id) {
            if let Some(st) = span.extensions().get::<SpanState>() {
                f(st);
            }
        }
    }

    #[inline]
    fn write(&self, id: &Id, f: &mut dyn FnMut(&mut SpanState)) {
        if let Some(span) = self.span(id) {
            if let Some(st) = span.extensions_mut().get_mut::<SpanState>() {
                f(st);
            }
        }
    }
}

/// Finds the subscriber observe's layer was added to inside a dispatcher.
#[derive(Clone, Copy)]
pub(crate) struct Spans(for<'d> fn(&'d Dispatch) -> Option<&'d dyn SpanStore>);

fn store<S>(d: &Dispatch) -> Option<&dyn SpanStore>
where
    S: Subscriber + for<'a> LookupSpan<'a> + 'static,
{
    d.downcast_ref::<S>().map(|s| s as &dyn SpanStore)
}

impl Spans {
    /// The lookup for a layer added to a subscriber of type `S`.
    pub(crate) fn of<S>() -> Self
    where
        S: Subscriber + for<'a> LookupSpan<'a> + 'static,
    {
        Spans(store::<S>)
    }

    /// The subscriber under the layer, in `d`.
    #[inline]
    pub(crate) fn get<'d>(&self, d: &'d Dispatch) -> Option<&'d dyn SpanStore> {
        (self.0)(d)
    }
}

impl std::fmt::Debug for Spans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spans")
    }
}
