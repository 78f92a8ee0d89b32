//! Bookkeeping of one request from `call` until its response body ends: the
//! span's final attributes and status, and the golden-signal metrics,
//! recorded exactly once (on body end, on drop, or on error).

use super::classify::JsonFailureRule;
use observe_core::classify;
use observe_core::opentelemetry::KeyValue;
use observe_core::signals::keys;
use observe_core::signals::Signals;
use observe_core::signals::Stopwatch;
use observe_core::span::with_span;
use observe_core::tracing::Span;
use std::borrow::Cow;
use std::sync::Arc;

/// Where the request was when its guard dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// No response yet: the request future was dropped (client went away).
    Pending,
    /// Response sent, body streaming: the body was dropped before its end.
    Body,
    /// Body finished (or the service failed): nothing left to infer.
    Done,
}

pub(crate) struct RequestGuard {
    pub(crate) span: Span,
    pub(crate) start: Stopwatch,
    pub(crate) method: &'static str,
    pub(crate) scheme: &'static str,
    pub(crate) route: Cow<'static, str>,
    pub(crate) signals: Option<Arc<Signals>>,
    pub(crate) synthetic: bool,
    pub(crate) status: Option<u16>,
    pub(crate) error_type: Option<Cow<'static, str>>,
    pub(crate) stage: Stage,
    /// JSON failure rule for this route, and the body bytes seen so far.
    pub(crate) inspect: Option<(Arc<JsonFailureRule>, Vec<u8>)>,
    /// The response's `traceparent` (the server span's context).
    pub(crate) traceparent: Option<http::HeaderValue>,
}

impl RequestGuard {
    /// Final classification and recording. Called once, from `Drop`.
    fn finish(&mut self) {
        let secs = self.start.elapsed_secs();
        match self.stage {
            // Dropped before a response: the handler panicked (dropped while
            // unwinding), or the request future was dropped.
            Stage::Pending if std::thread::panicking() => {
                self.error_type.get_or_insert(Cow::Borrowed("panic"));
            }
            Stage::Pending => {
                self.error_type.get_or_insert(Cow::Borrowed("cancelled"));
            }
            Stage::Body => {
                self.error_type
                    .get_or_insert(Cow::Borrowed("response_aborted"));
            }
            Stage::Done => {}
        }
        if self.error_type.is_none() {
            if let Some((rule, body)) = self.inspect.take() {
                self.error_type = rule.check(&body);
            }
        }
        let status = self.status;
        let mut error_type = self.error_type.take();
        if error_type.is_none() {
            error_type = status.and_then(classify::server_status);
        }
        let signals = self.signals.clone();
        let route = self.route.clone();
        // Span attributes and status; implicit and masked failures from the request state.
        let (masked, ids) = with_span(&self.span, |mut h| {
            let success = status.is_some_and(|s| (200..400).contains(&s));
            let masked = crate::masked::request_failures(&mut h, &mut error_type, success);
            if let Some(s) = status {
                h.set_attribute(KeyValue::new(keys::HTTP_RESPONSE_STATUS_CODE, i64::from(s)));
            }
            if let Some(e) = &error_type {
                h.set_attribute(KeyValue::new(keys::ERROR_TYPE, e.to_string()));
                // 4xx alone is the client's error, not the server's (semantic conventions).
                if !classify::is_client_error(status, e) {
                    h.set_error(e.clone());
                }
            }
            (masked, h.sampled_ids())
        })
        .unwrap_or_default();
        if let Some(s) = signals {
            // 4xx codes are not server errors: no error.type on the metric either.
            let metric_error = error_type.filter(|e| !classify::is_client_error(status, e));
            s.server_request(
                self.method,
                route.clone(),
                status,
                metric_error,
                self.synthetic,
                secs,
                ids,
            );
            s.server_active(self.method, self.scheme, -1);
            for g in masked {
                s.masked_failure(route.clone(), g);
            }
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.finish();
    }
}
