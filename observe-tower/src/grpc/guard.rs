//! Bookkeeping of one gRPC server call from `call` until its response
//! stream ends: the span's final attributes and status, and the metrics,
//! recorded exactly once (when the guard drops).

use super::body::{Progress, Stage};
use observe_core::classify::grpc::{GrpcCode, GrpcCodes};
use observe_core::opentelemetry::KeyValue;
use observe_core::signals::Stopwatch;
use observe_core::signals::{keys, Signals};
use observe_core::span::with_span;
use observe_core::tracing::Span;
use std::borrow::Cow;
use std::sync::Arc;

pub(crate) struct ServerGuard {
    pub(crate) span: Span,
    pub(crate) start: Stopwatch,
    /// `package.Service/Method` or `_OTHER`.
    pub(crate) method: &'static str,
    pub(crate) signals: Option<Arc<Signals>>,
    pub(crate) synthetic: bool,
    pub(crate) server_errors: GrpcCodes,
    pub(crate) progress: Progress,
}

/// The status and failure of a call when its guard drops, from where it was.
fn outcome(
    p: &mut Progress,
    server_errors: GrpcCodes,
) -> (Option<GrpcCode>, Option<Cow<'static, str>>) {
    let mut status = p.status.code();
    let mut error = p.error.take();
    match p.stage {
        // Dropped while unwinding: the handler panicked; no status was sent.
        Stage::Pending if std::thread::panicking() => {
            error.get_or_insert(Cow::Borrowed("panic"));
        }
        // The client went away (or cancelled) before the call ended.
        Stage::Pending | Stage::Streaming => {
            if status.is_none() && error.is_none() {
                status = Some(GrpcCode::Cancelled);
            }
        }
        Stage::Done => {
            if status.is_none() && error.is_none() {
                error = Some(Cow::Borrowed("missing_grpc_status"));
            }
        }
    }
    if error.is_none() {
        error = status
            .and_then(|c| server_errors.error_type(c))
            .map(Cow::Borrowed);
    }
    (status, error)
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let secs = self.start.elapsed_secs();
        let (status, mut error_type) = outcome(&mut self.progress, self.server_errors);
        let (masked, ids) = with_span(&self.span, |mut h| {
            let ok = status == Some(GrpcCode::Ok);
            let masked = crate::masked::request_failures(&mut h, &mut error_type, ok);
            if let Some(c) = status {
                h.set_attribute(KeyValue::new(keys::RPC_RESPONSE_STATUS_CODE, c.as_str()));
            }
            if let Some(e) = &error_type {
                h.set_attribute(KeyValue::new(keys::ERROR_TYPE, e.to_string()));
                h.set_error(e.clone());
            }
            (masked, h.sampled_ids())
        })
        .unwrap_or_default();
        if let Some(s) = &self.signals {
            let method = Cow::Borrowed(self.method);
            s.rpc_server_call(
                method.clone(),
                status,
                error_type,
                self.synthetic,
                secs,
                ids,
            );
            s.rpc_server_active(method.clone(), -1);
            for g in masked {
                s.masked_rpc_failure(method.clone(), g);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use observe_core::classify::grpc::GrpcStatus;

    fn at(stage: Stage, status: GrpcStatus) -> (Option<GrpcCode>, Option<Cow<'static, str>>) {
        let mut p = Progress::new();
        p.stage = stage;
        p.status = status;
        outcome(&mut p, GrpcCodes::SERVER_ERRORS)
    }

    #[test]
    fn outcome_by_stage_and_status() {
        let code = |c| GrpcStatus::Code(c);
        assert_eq!(
            at(Stage::Done, code(GrpcCode::Ok)),
            (Some(GrpcCode::Ok), None)
        );
        assert_eq!(
            at(Stage::Done, code(GrpcCode::NotFound)),
            (Some(GrpcCode::NotFound), None)
        );
        assert_eq!(
            at(Stage::Done, code(GrpcCode::Internal)),
            (Some(GrpcCode::Internal), Some("INTERNAL".into()))
        );
        assert_eq!(
            at(Stage::Done, GrpcStatus::Invalid),
            (Some(GrpcCode::Unknown), Some("UNKNOWN".into()))
        );
        assert_eq!(
            at(Stage::Done, GrpcStatus::Missing),
            (None, Some("missing_grpc_status".into()))
        );
        assert_eq!(
            at(Stage::Streaming, GrpcStatus::Missing),
            (Some(GrpcCode::Cancelled), None)
        );
        assert_eq!(
            at(Stage::Pending, GrpcStatus::Missing),
            (Some(GrpcCode::Cancelled), None)
        );
        let mut p = Progress::new();
        p.stage = Stage::Done;
        p.status = code(GrpcCode::Cancelled);
        let all = GrpcCodes::SERVER_ERRORS.with(GrpcCode::Cancelled);
        assert_eq!(
            outcome(&mut p, all),
            (Some(GrpcCode::Cancelled), Some("CANCELLED".into()))
        );
    }
}
