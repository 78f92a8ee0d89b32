//! What observe keeps for one request while it runs: failures reported
//! inside it (gateway calls that failed, implicit failures), which the
//! server layer reads to classify the response, and the lines log sampling
//! held back until the request's outcome is known.

use super::GatewayStatus;
use std::borrow::Cow;
use std::sync::Mutex;

/// What observe keeps for one request (one local trace root): lines held
/// back by log sampling, and failures reported inside it (gateway calls that
/// failed, implicit failures) so the server layer can classify the response.
#[derive(Debug, Default)]
pub struct RequestState {
    pub(crate) inner: Mutex<RequestLines>,
}

/// A gateway failure seen inside a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayFailure {
    /// The gateway's name (`bank`).
    pub gateway: Cow<'static, str>,
    /// [`GatewayStatus::Error`] or [`GatewayStatus::Timeout`].
    pub status: GatewayStatus,
    /// Low-cardinality error type (`504`, `timeout`, `connection_refused`).
    pub error_type: Cow<'static, str>,
}

#[derive(Debug, Default)]
pub(crate) struct RequestLines {
    pub(crate) bytes: Vec<u8>,
    pub(crate) lines: usize,
    pub(crate) overflow: u64,
    pub(crate) failed: bool,
    pub(crate) gateway_failures: Vec<GatewayFailure>,
    pub(crate) gateway_failure_count: u64,
    pub(crate) implicit_failure: Option<Cow<'static, str>>,
}

/// Most gateway failures remembered per request (more are only counted).
const MAX_GATEWAY_FAILURES: usize = 8;

impl RequestState {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, RequestLines> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a failed gateway call made inside the request.
    pub fn record_gateway_failure(&self, f: GatewayFailure) {
        let mut g = self.lock();
        g.gateway_failure_count += 1;
        if g.gateway_failures.len() < MAX_GATEWAY_FAILURES {
            g.gateway_failures.push(f);
        }
    }

    /// Gateway failures seen so far (at most 8) and their total count.
    pub fn gateway_failures(&self) -> (Vec<GatewayFailure>, u64) {
        let g = self.lock();
        (g.gateway_failures.clone(), g.gateway_failure_count)
    }

    /// Marks the request as failed although its response may look fine.
    pub fn mark_failed(&self, reason: Cow<'static, str>) {
        let mut g = self.lock();
        if g.implicit_failure.is_none() {
            g.implicit_failure = Some(reason);
        }
        g.failed = true;
    }

    /// The implicit failure reason, if any.
    pub fn implicit_failure(&self) -> Option<Cow<'static, str>> {
        self.lock().implicit_failure.clone()
    }
}
