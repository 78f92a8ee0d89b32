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

use crate::clock::Instant;
use crate::layer::span_state::SiteFields;
use crate::outcome::Classified;
use crate::signals::{GatewayStatus, ObservedBound, Signals};
use opentelemetry::KeyValue;
use std::borrow::Cow;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

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
    /// instance that calls it (the process's, in production).
    bound: OnceLock<(u64, ObservedBound)>,
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
            bound: OnceLock::new(),
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
        let (k, b) = self
            .bound
            .get_or_init(|| (key, signals.bind_observed(self.function, self.namespace)));
        (*k == key).then_some(b)
    }
}

struct Active {
    signals: Option<Arc<Signals>>,
    bound: Option<&'static ObservedBound>,
    start: Instant,
    span: tracing::Span,
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

/// Starts a call: creates its span with `make_span` (only when observe is
/// installed and enabled; otherwise the call records nothing and costs a few
/// nanoseconds). The span gets the site's `code.function` (and `gateway`)
/// from `site`, not from `make_span`.
///
/// The call owns the span: the body runs in it through [`Call::in_scope`]
/// (sync) or [`Call::instrument`] (async), and finishing the call closes it,
/// so one clock read serves both the duration and the span's end.
#[inline]
pub fn start(site: &'static Site, make_span: impl FnOnce() -> tracing::Span) -> Call {
    // The signals of the observe telemetry in use, if it records spans
    // (one reference count; the span is made outside `get_default`, which
    // is not re-entrant).
    let signals = tracing::dispatcher::get_default(|d| {
        let shared = &d.downcast_ref::<crate::layer::ObserveLayer>()?.shared;
        shared.traces.as_ref()?;
        Some(shared.signals.clone())
    });
    let Some(signals) = signals else {
        return Call { site, active: None };
    };
    let now = Instant::now();
    let span = crate::layer::with_site(site.fields(), now, make_span);
    let bound = signals.as_ref().and_then(|s| site.bound(s));
    match (bound, &signals) {
        (Some(b), _) => b.start(),
        (None, Some(s)) => s.observed_active(site.function, site.namespace, 1),
        (None, None) => {}
    }
    Call {
        site,
        active: Some(Active {
            signals,
            bound,
            start: now,
            span,
            timed_out: false,
        }),
    }
}

pin_project_lite::pin_project! {
    /// A call's future, polled inside the call's span (entered on every poll,
    /// and while the future is dropped, so what its destructors log belongs
    /// to the call).
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Instrumented<'a, F> {
        span: Option<&'a tracing::Span>,
        #[pin]
        inner: Option<F>,
    }

    impl<'a, F> PinnedDrop for Instrumented<'a, F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            let _entered = this.span.map(|s| s.enter());
            this.inner.set(None);
        }
    }
}

impl<F: std::future::Future> std::future::Future for Instrumented<'_, F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        let this = self.project();
        let _entered = this.span.map(|s| s.enter());
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
        match &self.active {
            Some(a) => a.span.in_scope(f),
            None => f(),
        }
    }

    /// `fut`, polled inside the call's span.
    #[inline]
    pub fn instrument<F>(&self, fut: F) -> Instrumented<'_, F> {
        Instrumented {
            span: self.active.as_ref().map(|a| &a.span),
            inner: Some(fut),
        }
    }

    /// Marks the call as timed out (the generated timeout fired).
    pub fn timed_out(&mut self) {
        if let Some(a) = self.active.as_mut() {
            a.timed_out = true;
        }
    }

    /// Records the call's result.
    pub fn finish(mut self, classified: Classified) {
        self.record(classified);
    }

    fn record(&mut self, classified: Classified) {
        let Some(a) = self.active.take() else { return };
        let end = Instant::now();
        self.report(&a, end, classified);
        // The call held the span's last handle: it closes now, ending at `end`.
        crate::layer::close_at(a.span, end);
    }

    fn report(&self, a: &Active, end: Instant, classified: Classified) {
        let site = self.site;
        let secs = end.duration_since(a.start).as_secs_f64();
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
        match (a.bound, &a.signals) {
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
            if let (Some(g), Some(s)) = (site.gateway, &a.signals) {
                let ids = if s.wants_exemplars() {
                    crate::__private::with_span(&a.span, |h| h.sampled_ids()).flatten()
                } else {
                    None
                };
                s.gateway_call(Cow::Borrowed(g), GatewayStatus::Success, None, secs, ids);
            }
            return;
        };
        let status = if timeout {
            GatewayStatus::Timeout
        } else {
            GatewayStatus::Error
        };
        if let (Some(g), Some(s)) = (site.gateway, &a.signals) {
            let ids = if s.wants_exemplars() {
                crate::__private::with_span(&a.span, |h| h.sampled_ids()).flatten()
            } else {
                None
            };
            s.gateway_call(
                Cow::Borrowed(g),
                status,
                Some(error_type.clone()),
                secs,
                ids,
            );
        }
        let request = crate::__private::with_span(&a.span, |mut h| {
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
                Some(g) => req.record_gateway_failure(crate::log::sampling::GatewayFailure {
                    gateway: Cow::Borrowed(g),
                    status: status.as_str(),
                    error_type: error_type.clone(),
                }),
                None if implicit => req.mark_failed(error_type.clone()),
                None => {}
            }
        }
        if site.log_errors {
            a.span.in_scope(|| match site.gateway {
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
            });
        }
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
