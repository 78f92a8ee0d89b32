//! Implicit and masked failures of a request, decided when it ends: one
//! rule for the HTTP and the gRPC server layers.

use observe_core::opentelemetry::KeyValue;
use observe_core::span::SpanHandle;
use std::borrow::Cow;

/// Reads the request state of the server span `h`: an implicit failure
/// reported inside the request ([`observe_core::mark_failed`]) becomes
/// `error_type` when there is none yet; a response that `succeeded` with no
/// `error_type` although gateway calls inside it failed becomes
/// `masked_failure`, with one `masked_failure` span event per failure.
/// Returns the gateways whose failures were masked (each once).
pub(crate) fn request_failures(
    h: &mut SpanHandle<'_>,
    error_type: &mut Option<Cow<'static, str>>,
    succeeded: bool,
) -> Vec<Cow<'static, str>> {
    let mut masked: Vec<Cow<'static, str>> = Vec::new();
    let Some(req) = h.request().cloned() else {
        return masked;
    };
    if error_type.is_none() {
        if let Some(reason) = req.implicit_failure() {
            *error_type = Some(reason);
        }
    }
    let (failures, count) = req.gateway_failures();
    if count > 0 && succeeded && error_type.is_none() {
        *error_type = Some(Cow::Borrowed("masked_failure"));
        for f in &failures {
            if !masked.contains(&f.gateway) {
                masked.push(f.gateway.clone());
            }
            h.add_event(
                "masked_failure",
                vec![
                    KeyValue::new("gateway", f.gateway.to_string()),
                    KeyValue::new("gateway.status", f.status.as_str()),
                    KeyValue::new("error.type", f.error_type.to_string()),
                    KeyValue::new("gateway.failures", count as i64),
                ],
            );
        }
    }
    masked
}
