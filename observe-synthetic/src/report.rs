//! What runs report and how they fail: outcomes, failures, assertions, and
//! the errors of steps, flows, requests and settings. Every other module of
//! the runner uses these; they use none of them.

use http::Method;

/// A boxed, sendable future (what [`AlertSink::send`](crate::AlertSink::send) returns).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
use std::borrow::Cow;
use std::time::Duration;

/// The `step` label of a failure outside any step (a panic or an error in
/// the flow's own code, or a run timeout between steps).
pub const OUTSIDE_STEPS: &str = "_flow";

/// A failed check inside a step: `expected <what> <expected>, got <got>`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected {what}{}, got {got}",
    .expected.as_deref().map(|e| format!(" {e}")).unwrap_or_default()
)]
pub struct Assertion {
    /// What was checked: `status`, `HTTP status`, `field "id"`.
    pub what: String,
    /// The expected value as written in the message, if there is one.
    pub expected: Option<String>,
    /// The value found.
    pub got: String,
}

impl Assertion {
    /// An assertion failure.
    pub fn new(what: impl Into<String>, expected: Option<String>, got: impl Into<String>) -> Self {
        Assertion {
            what: what.into(),
            expected,
            got: got.into(),
        }
    }
}

/// Fails unless `got == expected`; values are quoted as Rust debug output:
/// `expected status "success", got "processing"`.
///
/// ```
/// use observe_synthetic::expect_eq;
///
/// let e = expect_eq("status", "success", "processing").unwrap_err();
/// assert_eq!(e.to_string(), r#"expected status "success", got "processing""#);
/// assert!(expect_eq("qty", 1, 1).is_ok());
/// ```
pub fn expect_eq<T: PartialEq + std::fmt::Debug>(
    what: &str,
    expected: T,
    got: T,
) -> Result<(), Assertion> {
    if expected == got {
        Ok(())
    } else {
        Err(Assertion::new(
            what,
            Some(format!("{expected:?}")),
            format!("{got:?}"),
        ))
    }
}

/// Why a step's body failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// A check failed.
    #[error(transparent)]
    Assertion(#[from] Assertion),
    /// A request failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// Any other error.
    #[error("{0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl StepError {
    /// Wraps any error.
    pub fn other(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StepError::Other(e.into())
    }
}

/// How a step (or a run) ended: the `outcome` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepOutcome {
    /// It passed its checks within its objective.
    Success,
    /// A check failed, a request failed, or it exceeded its objective.
    Failure,
    /// It did not finish within its timeout.
    Timeout,
    /// It panicked.
    Panic,
}

impl StepOutcome {
    /// `success`, `failure`, `timeout` or `panic`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Success => "success",
            StepOutcome::Failure => "failure",
            StepOutcome::Timeout => "timeout",
            StepOutcome::Panic => "panic",
        }
    }
}

impl std::fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first failure of a run: `pay: expected status "success", got "processing"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The failing step, or [`OUTSIDE_STEPS`].
    pub step: Cow<'static, str>,
    /// `failure`, `timeout` or `panic`.
    pub outcome: StepOutcome,
    /// What went wrong (without the step name).
    pub reason: String,
    /// The failed check, when an assertion failed.
    pub assertion: Option<Assertion>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step, self.reason)
    }
}

/// The error [`FlowContext::step`](crate::FlowContext::step) returns: this step, or an earlier one, failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StepFailed(pub Box<Failure>);

/// What a flow returns when it stops early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// A step failed (already recorded).
    #[error(transparent)]
    Step(#[from] StepFailed),
    /// The flow's own code failed outside any step.
    #[error(transparent)]
    Other(#[from] StepError),
}

impl From<HttpError> for FlowError {
    fn from(e: HttpError) -> Self {
        FlowError::Other(StepError::Http(e))
    }
}

impl From<Assertion> for FlowError {
    fn from(e: Assertion) -> Self {
        FlowError::Other(StepError::Assertion(e))
    }
}

/// One step of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepReport {
    /// The step's name.
    pub name: Cow<'static, str>,
    /// How it ended.
    pub outcome: StepOutcome,
    /// How long it took.
    pub duration: Duration,
}

/// Why a request could not be sent or its response not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL does not parse or has no scheme or host.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A header name or value is invalid.
    #[error("invalid header {name:?}")]
    InvalidHeader {
        /// The header name as given.
        name: String,
    },
    /// The JSON body could not be serialised.
    #[error("cannot serialise the JSON body: {0}")]
    Encode(#[source] serde_json::Error),
    /// Connecting, sending or receiving failed.
    #[error("{method} {url}: {reason}")]
    Transport {
        /// Request method.
        method: Method,
        /// Request URL.
        url: String,
        /// The error and its causes, outermost first.
        reason: String,
    },
    /// The response body could not be read or exceeded [`MAX_RESPONSE_BODY`](crate::MAX_RESPONSE_BODY).
    #[error("{method} {url}: reading the response body: {reason}")]
    Body {
        /// Request method.
        method: Method,
        /// Request URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// An invalid runner or alert-sink setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A name is empty, too long or contains control characters.
    #[error("{field} must be 1 to 128 printable characters, got {value:?}")]
    InvalidName {
        /// `flow`, `region` or `severity`.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// A duration is zero.
    #[error("{field} must be greater than zero")]
    ZeroDuration {
        /// `interval`, `step_timeout` or `run_timeout`.
        field: &'static str,
    },
    /// The jitter is not shorter than the interval.
    #[error("jitter ({jitter:?}) must be shorter than the interval ({interval:?})")]
    JitterTooLarge {
        /// The jitter.
        jitter: Duration,
        /// The interval.
        interval: Duration,
    },
    /// `alert_after(0)`.
    #[error("alert_after must be at least 1")]
    ZeroAlertAfter,
    /// An alert URL is not an absolute `http://host[:port]` URL.
    #[error("invalid URL {url:?}: expected http://host[:port][/path]")]
    InvalidUrl {
        /// The URL given.
        url: String,
    },
}
