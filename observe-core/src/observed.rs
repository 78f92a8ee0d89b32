//! The runtime of `#[observed]`: what the generated code calls around a
//! function. One [`Site`] per annotated function (a `static`), one [`Call`]
//! per call.
//!
//! ```text
//! start(&SITE, || span!(..)) ──▶ observed.active +1, clock starts
//!     body runs inside the span (every poll, for async fns)
//! call.finish(classify!(result)) ──▶ observed.calls / observed.duration
//!                                    (+ external_gateway.* in gateway mode),
//!                                    span status, error event, one error line,
//!                                    failure recorded in the enclosing request
//! Drop without finish (panic, cancelled future) ──▶ the same, as a failure
//! ```

use crate::classify::Classified;
use crate::clock::Instant;
use crate::layer::fields::{SpanFieldSink, Visitor};
use crate::layer::local::{self, LocalSpan};
use crate::layer::span_state::SiteFields;
use crate::layer::{Inherited, Shared, TelemetryLayer};
use crate::signals::{ObservedBound, Signals};
use opentelemetry::KeyValue;
use std::borrow::Cow;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

/// Telemetry instances a call site keeps bound instruments for.
const BOUND_SLOTS: usize = 4;

/// One annotated function.
#[derive(Debug)]
pub struct Site {
    /// `code.function`.
    pub function: &'static str,
    /// `code.namespace` (the module path).
    pub namespace: &'static str,
    /// The gateway name in gateway mode.
    pub gateway: Option<&'static str>,
    /// Whether a failure writes one error line.
    pub log_errors: bool,
    /// `observed.*` bound to this function, for the first telemetry
    /// instances that call it (a process has one; tests and benchmarks
    /// build several). Later instances record through unbound instruments.
    bound: [OnceLock<(u64, ObservedBound)>; BOUND_SLOTS],
    /// `code.function` (and `gateway`) for the span, encoded once.
    fields: OnceLock<SiteFields>,
}

impl Site {
    /// A call site.
    pub const fn new(
        function: &'static str,
        namespace: &'static str,
        gateway: Option<&'static str>,
        log_errors: bool,
    ) -> Self {
        Site {
            function,
            namespace,
            gateway,
            log_errors,
            bound: [const { OnceLock::new() }; BOUND_SLOTS],
            fields: OnceLock::new(),
        }
    }

    #[inline]
    fn fields(&'static self) -> &'static SiteFields {
        self.fields
            .get_or_init(|| SiteFields::new(self.function, self.gateway))
    }

    /// The bound instruments for `signals`, if this site is bound to them.
    #[inline]
    fn bound(&'static self, signals: &Arc<Signals>) -> Option<&'static ObservedBound> {
        let key = signals.id();
        self.bound.iter().find_map(|slot| {
            let (k, b) =
                slot.get_or_init(|| (key, signals.bind_observed(self.function, self.namespace)));
            (*k == key).then_some(b)
        })
    }
}

struct Active {
    shared: Arc<Shared>,
    bound: Option<&'static ObservedBound>,
    start: Instant,
    span: LocalSpan,
    timed_out: bool,
}

/// One call in progress. Finish it with [`Call::finish`]; dropping it
/// unfinished records a panic (while unwinding) or a cancellation.
pub struct Call {
    site: &'static Site,
    active: Option<Active>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("function", &self.site.function)
            .field("active", &self.active.is_some())
            .finish()
    }
}

/// The user's `fields(...)` of a call, recorded on its span.
pub struct Fields<'a, 'b> {
    sink: &'a mut SpanFieldSink<'b>,
    meta: &'static tracing::Metadata<'static>,
}

impl std::fmt::Debug for Fields<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fields")
            .field("names", &self.meta.fields())
            .finish()
    }
}

impl Fields<'_, '_> {
    /// Records `values`, one per field of the call site's metadata, in order.
    #[inline]
    pub fn record<const N: usize>(&mut self, values: [&dyn tracing::Value; N]) {
        for (field, value) in self.meta.fields().iter().zip(values) {
            value.record(&field, &mut Visitor(&mut *self.sink));
        }
    }
}

/// Starts a call: opens its span (only when observe is installed and
/// enabled; otherwise the call records nothing and costs a few
/// nanoseconds). `meta` names the span and its fields; `fields` records
/// their values (called only when the span is opened). The span gets the
/// site's `code.function` (and `gateway`) from `site`.
///
/// The span is the call's own, not a tracing span: it is current while the
/// body runs through [`Call::in_scope`] (sync) or [`Call::instrument`]
/// (async), for log lines, child spans and outbound calls, and finishing
/// the call ends it, so one clock read serves both the duration and the
/// span's end.
#[inline]
pub fn start(
    site: &'static Site,
    meta: &'static tracing::Metadata<'static>,
    fields: impl FnOnce(&mut Fields<'_, '_>),
) -> Call {
    // The telemetry in use, if it records spans, the tracing span the call
    // runs in, and the call's span: it inherits from the innermost call
    // running in that span, or the span itself, or starts a new trace.
    let found = tracing::dispatcher::get_default(|d| {
        let layer = d.downcast_ref::<TelemetryLayer>()?;
        let shared = &layer.shared;
        // Disabled telemetry stops here, before any span lookup.
        shared.traces.as_ref()?;
        let store = layer.store(d)?;
        let current = store.current();
        let context = current.as_ref().map(tracing::span::Id::into_u64);
        let (inherited, mut state) = local::begin(context, |frames| {
            frames.last().map(|fr| Inherited::child_of(&fr.state))
        });
        let inherited = match inherited {
            Some(i) => i,
            None => {
                let mut parent = None;
                if let Some(id) = &current {
                    store.read(id, &mut |st| parent = Some(Inherited::child_of(st)));
                }
                parent.unwrap_or_else(|| shared.root())
            }
        };
        let now = Instant::now();
        shared.fill_state(&mut state, inherited, meta, Some(site.fields()), Some(now));
        Some((Arc::clone(shared), context, now, state))
    });
    let Some((shared, context, now, mut state)) = found else {
        return Call { site, active: None };
    };
    // The user's field values are computed outside the dispatcher (what
    // they log is logged).
    if !meta.fields().is_empty() {
        shared.record_fields(&mut state, meta, |sink| fields(&mut Fields { sink, meta }));
    }
    let bound = shared.signals.as_ref().and_then(|s| site.bound(s));
    match (bound, &shared.signals) {
        (Some(b), _) => b.start(),
        (None, Some(s)) => s.observed_active(site.function, site.namespace, 1),
        (None, None) => {}
    }
    Call {
        site,
        active: Some(Active {
            shared,
            bound,
            start: now,
            span: LocalSpan::new(state, context),
            timed_out: false,
        }),
    }
}

pin_project_lite::pin_project! {
    /// A call's future, polled inside the call's span (entered on every poll,
    /// and while the future is dropped, so what its destructors log belongs
    /// to the call).
    #[must_use = "futures do nothing unless polled"]
    pub struct Instrumented<'a, F> {
        span: Option<&'a mut LocalSpan>,
        #[pin]
        inner: Option<F>,
    }

    impl<'a, F> PinnedDrop for Instrumented<'a, F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            let _entered = this.span.as_deref().map(local::enter);
            this.inner.set(None);
        }
    }
}

impl<F> std::fmt::Debug for Instrumented<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrumented")
            .field("active", &self.span.is_some())
            .finish_non_exhaustive()
    }
}

impl<F: std::future::Future> std::future::Future for Instrumented<'_, F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        let this = self.project();
        let _entered = this.span.as_deref().map(local::enter);
        match this.inner.as_pin_mut() {
            Some(inner) => inner.poll(cx),
            // Only dropped after completion: never polled again by the
            // generated code.
            None => std::task::Poll::Pending,
        }
    }
}

impl Call {
    /// Runs `f` inside the call's span.
    #[inline]
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _entered = self.active.as_ref().map(|a| local::enter(&a.span));
        f()
    }

    /// `fut`, polled inside the call's span. The future borrows the call
    /// mutably (so it stays `Send`): it ends before the call finishes.
    #[inline]
    pub fn instrument<F>(&mut self, fut: F) -> Instrumented<'_, F> {
        Instrumented {
            span: self.active.as_mut().map(|a| &mut a.span),
            inner: Some(fut),
        }
    }

    /// Marks the call as timed out (the generated timeout fired).
    pub fn timed_out(&mut self) {
        if let Some(a) = self.active.as_mut() {
            a.timed_out = true;
        }
    }

    /// Records the call's result (once: a finished call is inert).
    #[inline]
    pub fn finish(&mut self, classified: Classified) {
        self.record(classified);
    }

    fn record(&mut self, classified: Classified) {
        let Some(a) = self.active.take() else { return };
        let elapsed = Instant::now().duration_since(a.start);
        self.report(&a, elapsed, classified);
        let Active { shared, span, .. } = a;
        if let Some(mut st) = span.into_state() {
            // The span ends `elapsed` after its start: one clock reading
            // serves the duration metric and the span.
            shared.finish_and_export(&mut st, elapsed);
            local::recycle(st);
        }
    }

    fn report(&self, a: &Active, elapsed: std::time::Duration, classified: Classified) {
        let site = self.site;
        // A multiplication, not `as_secs_f64`'s division.
        let secs = elapsed.as_secs() as f64 + f64::from(elapsed.subsec_nanos()) * 1e-9;
        let classified = if a.timed_out {
            Classified::Failed {
                error_type: Cow::Borrowed("timeout"),
                message: "timed out".to_owned(),
                timeout: true,
                implicit: false,
            }
        } else {
            classified
        };
        let ok = classified == Classified::Ok;
        let status = classified.gateway_status();
        let signals = &a.shared.signals;
        match (a.bound, signals) {
            (Some(b), _) => b.end(ok, secs),
            (None, Some(s)) => {
                s.observed_call(site.function, site.namespace, ok, secs);
                s.observed_active(site.function, site.namespace, -1);
            }
            (None, None) => {}
        }
        let Classified::Failed {
            error_type,
            message,
            timeout,
            implicit,
        } = classified
        else {
            if let (Some(g), Some(s)) = (site.gateway, signals) {
                let ids = a.exemplar_ids(s);
                s.gateway_call(Cow::Borrowed(g), status, None, secs, ids);
            }
            return;
        };
        if let (Some(g), Some(s)) = (site.gateway, signals) {
            let ids = a.exemplar_ids(s);
            s.gateway_call(
                Cow::Borrowed(g),
                status,
                Some(error_type.clone()),
                secs,
                ids,
            );
        }
        let request = a
            .span
            .with_state(|st| {
                let mut h = crate::span::SpanHandle::new(st);
                h.set_error(Cow::Owned(message.clone()));
                h.set_attribute(KeyValue::new("error.type", error_type.to_string()));
                h.add_event(
                    "exception",
                    vec![
                        KeyValue::new("exception.type", error_type.to_string()),
                        KeyValue::new("exception.message", message.clone()),
                    ],
                );
                h.request().cloned()
            })
            .flatten();
        if let Some(req) = request {
            match site.gateway {
                Some(g) => req.record_gateway_failure(crate::classify::GatewayFailure {
                    gateway: Cow::Borrowed(g),
                    status,
                    error_type: error_type.clone(),
                }),
                None if implicit => req.mark_failed(error_type.clone()),
                None => {}
            }
        }
        if site.log_errors {
            let _entered = local::enter(&a.span);
            match site.gateway {
                Some(g) => tracing::error!(
                    event = "gateway_call_failed",
                    gateway = g,
                    code.function = site.function,
                    code.namespace = site.namespace,
                    error.type = %error_type,
                    error.message = %message,
                    duration_ms = (secs * 1000.0) as u64,
                    timeout,
                ),
                None => tracing::error!(
                    event = "call_failed",
                    code.function = site.function,
                    code.namespace = site.namespace,
                    error.type = %error_type,
                    error.message = %message,
                    implicit,
                    duration_ms = (secs * 1000.0) as u64,
                ),
            }
        }
    }
}

impl Active {
    /// Trace and span id as bytes, for an exemplar: when `signals` keeps
    /// exemplars and the span is recorded.
    fn exemplar_ids(&self, signals: &Signals) -> crate::signals::SpanIds {
        if !signals.wants_exemplars() {
            return None;
        }
        self.span
            .with_state(|st| crate::span::SpanHandle::new(st).sampled_ids())
            .flatten()
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if self.active.is_none() {
            return;
        }
        let (error_type, message) = if std::thread::panicking() {
            ("panic", "the function panicked")
        } else {
            ("cancelled", "the call was dropped before it finished")
        };
        self.record(Classified::Failed {
            error_type: Cow::Borrowed(error_type),
            message: message.to_owned(),
            timeout: false,
            implicit: false,
        });
    }
}
