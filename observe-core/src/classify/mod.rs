//! What counts as a failure, in one place: the server layer, the gateway
//! layer, the reqwest middleware and `#[observed]` all classify through
//! this module, so spans, metrics and alerts agree on what an error is.
//!
//! | source | success | failure (`error.type`) | timeout |
//! |---|---|---|---|
//! | a server response | 1xx–4xx | 5xx (the code); an implicit failure (its reason); a masked gateway failure (`masked_failure`) | — |
//! | a gateway response ([`response`]) | 1xx–3xx | 4xx and 5xx (the code) | 408, 504 are not timeouts of the call itself |
//! | a gateway error ([`error`]) | — | the first known error of the source chain: [`ErrorType`] of `std::io::Error`, tokio's and tower's `Elapsed`, `reqwest::Error` (feature `reqwest`); else `transport_error` | an I/O `TimedOut`, an elapsed timer, a reqwest timeout |
//! | a gRPC call ([`grpc`]) | server: every code but the server-error set; client: `OK` | server: `UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE`, `DATA_LOSS` (configurable); client: every other code (its name) | `DEADLINE_EXCEEDED` |
//! | an `#[observed]` call | `Ok`, or a value whose [`Outcome`] says so | `Err` ([`ErrorType`], else the error's type name), an [`Outcome`] failure (implicit) | [`ErrorType::is_timeout`], the generated timeout |
//!
//! Users classify their own types by implementing [`Outcome`] and
//! [`ErrorType`]; the gateway layers also take a whole classifier of their
//! own. Nothing here reads error messages.
//!
//! ```
//! use observe_core::classify::{self, Classified, GatewayStatus};
//!
//! let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
//! let c = classify::error(&refused);
//! assert_eq!(c.error_type(), Some("connection_refused"));
//! assert_eq!(c.gateway_status(), GatewayStatus::Error);
//! assert_eq!(classify::response(http::StatusCode::OK), Classified::Ok);
//! ```

pub mod grpc;
mod probe;
mod request;
mod traits;

pub use probe::{
    ClassifyAny, ClassifyL1, ClassifyL2, ClassifyL3, ClassifyL4, ClassifyOutcome, Probe,
};
pub(crate) use request::RequestLines;
pub use request::{GatewayFailure, RequestState};
pub use traits::{status_name, ErrorType, Outcome};

use std::borrow::Cow;
use std::error::Error as StdError;

/// A classified call result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Classified {
    /// The call succeeded.
    Ok,
    /// The call failed.
    Failed {
        /// Low-cardinality `error.type`.
        error_type: Cow<'static, str>,
        /// The error's `Display` (or the implicit-failure reason).
        message: String,
        /// The failure is a timeout.
        timeout: bool,
        /// The call returned normally but its value says it failed.
        implicit: bool,
    },
}

impl Classified {
    /// The failure's `error.type` (`None` on success).
    pub fn error_type(&self) -> Option<&str> {
        match self {
            Classified::Ok => None,
            Classified::Failed { error_type, .. } => Some(error_type),
        }
    }

    /// The gateway `status` and `error.type` of this result.
    pub fn into_gateway_outcome(self) -> (GatewayStatus, Option<Cow<'static, str>>) {
        let status = self.gateway_status();
        match self {
            Classified::Ok => (status, None),
            Classified::Failed { error_type, .. } => (status, Some(error_type)),
        }
    }

    /// The gateway `status` attribute of this result.
    pub fn gateway_status(&self) -> GatewayStatus {
        match self {
            Classified::Ok => GatewayStatus::Success,
            Classified::Failed { timeout: true, .. } => GatewayStatus::Timeout,
            Classified::Failed { .. } => GatewayStatus::Error,
        }
    }

    /// A failure named `error_type` (not a timeout, not implicit).
    fn failed(error_type: Cow<'static, str>, timeout: bool) -> Self {
        Classified::Failed {
            message: error_type.to_string(),
            error_type,
            timeout,
            implicit: false,
        }
    }
}

/// Outcome of a gateway call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayStatus {
    /// The call succeeded.
    Success,
    /// The call failed (4xx/5xx, connection error, `Err`).
    Error,
    /// The call timed out.
    Timeout,
}

impl GatewayStatus {
    /// `success`, `error` or `timeout`.
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayStatus::Success => "success",
            GatewayStatus::Error => "error",
            GatewayStatus::Timeout => "timeout",
        }
    }
}

/// A gateway's response status: 4xx and 5xx are failures named by their code.
pub fn response(status: http::StatusCode) -> Classified {
    match status.failure() {
        Some(code) => Classified::failed(code, false),
        None => Classified::Ok,
    }
}

/// A transport error: the first error of its source chain that observe
/// knows, classified by its [`ErrorType`]; else `transport_error`.
pub fn error(e: &(dyn StdError + 'static)) -> Classified {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(e) = cur {
        if let Some(c) = known_error(e) {
            return c;
        }
        cur = e.source();
    }
    Classified::failed(Cow::Borrowed("transport_error"), false)
}

/// `e` classified by its [`ErrorType`], if it is one of the types observe knows.
fn known_error(e: &(dyn StdError + 'static)) -> Option<Classified> {
    fn by<T: ErrorType>(t: &T) -> Classified {
        Classified::failed(t.error_type(), t.is_timeout())
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return Some(by(io));
    }
    if let Some(t) = e.downcast_ref::<tokio::time::error::Elapsed>() {
        return Some(by(t));
    }
    if let Some(t) = e.downcast_ref::<tower::timeout::error::Elapsed>() {
        return Some(by(t));
    }
    #[cfg(feature = "reqwest")]
    if let Some(r) = e.downcast_ref::<reqwest::Error>() {
        return Some(by(r));
    }
    None
}

/// The `error.type` a server response carries by its status alone: the
/// code of a 5xx.
pub fn server_status(status: u16) -> Option<Cow<'static, str>> {
    (status >= 500)
        .then(|| http::StatusCode::from_u16(status).ok())
        .flatten()
        .map(status_name)
}

/// Whether a server response's failure is the client's (a 4xx named by
/// its own code): not an error of the server span, and no `error.type` on
/// the server metric (semantic conventions).
pub fn is_client_error(status: Option<u16>, error_type: &str) -> bool {
    status.is_some_and(|s| (400..500).contains(&s)) && error_type.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Plain;
    #[derive(Debug)]
    struct Named;
    impl std::fmt::Display for Named {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("bank said no")
        }
    }
    struct Reply(bool);
    impl Outcome for Reply {
        fn failure(&self) -> Option<Cow<'static, str>> {
            (!self.0).then_some(Cow::Borrowed("not_confirmed"))
        }
    }

    fn failed(c: Classified) -> (String, bool, bool) {
        match c {
            Classified::Ok => ("ok".into(), false, false),
            Classified::Failed {
                error_type,
                timeout,
                implicit,
                ..
            } => (error_type.into_owned(), timeout, implicit),
        }
    }

    #[test]
    fn responses_errors_and_server_statuses() {
        assert_eq!(response(http::StatusCode::FOUND), Classified::Ok);
        let c = response(http::StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(c.error_type(), Some("504"));
        assert_eq!(c.gateway_status(), GatewayStatus::Error);
        let timed_out = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow");
        let wrapped = std::io::Error::other(Wrapper(timed_out));
        assert_eq!(error(&wrapped).gateway_status(), GatewayStatus::Error);
        assert_eq!(
            error(&Wrapper(std::io::Error::from(std::io::ErrorKind::TimedOut))).gateway_status(),
            GatewayStatus::Timeout
        );
        assert_eq!(
            error(&tower::timeout::error::Elapsed::new()).gateway_status(),
            GatewayStatus::Timeout
        );
        // Text is never read: an unknown error that says "timed out" is not a timeout.
        let words = Wrapper2("connection timed out");
        let c = error(&words);
        assert_eq!(c.error_type(), Some("transport_error"));
        assert_eq!(c.gateway_status(), GatewayStatus::Error);
        assert_eq!(server_status(503).as_deref(), Some("503"));
        assert_eq!(server_status(404), None);
        assert!(is_client_error(Some(404), "404"));
        assert!(!is_client_error(Some(404), "payment_pending"));
        assert!(!is_client_error(Some(500), "500"));
    }

    /// An error whose source is `0`.
    #[derive(Debug)]
    struct Wrapper(std::io::Error);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapped")
        }
    }
    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    /// An error that is only words.
    #[derive(Debug)]
    struct Wrapper2(&'static str);
    impl std::fmt::Display for Wrapper2 {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl StdError for Wrapper2 {}

    #[test]
    fn most_specific_classification_wins() {
        let io: Result<u8, std::io::Error> =
            Err(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert_eq!(
            failed(crate::__observe_classify!(io)),
            ("timeout".into(), true, false)
        );
        let named: Result<u8, Named> = Err(Named);
        assert_eq!(
            failed(crate::__observe_classify!(named)),
            ("Named".into(), false, false)
        );
        let plain: Result<u8, Plain> = Err(Plain);
        assert_eq!(
            failed(crate::__observe_classify!(plain)),
            ("Plain".into(), false, false)
        );
        let ok: Result<u8, Plain> = Ok(1);
        assert_eq!(crate::__observe_classify!(ok), Classified::Ok);
        let reply = Reply(false);
        assert_eq!(
            failed(crate::__observe_classify!(reply)),
            ("not_confirmed".into(), false, true)
        );
        let status = http::StatusCode::GATEWAY_TIMEOUT;
        assert_eq!(
            failed(crate::__observe_classify!(status)),
            ("504".into(), false, true)
        );
        let inner: Result<http::StatusCode, std::io::Error> = Ok(http::StatusCode::BAD_GATEWAY);
        assert_eq!(
            failed(crate::__observe_classify!(inner)),
            ("502".into(), false, true)
        );
        let n = 5u32;
        assert_eq!(crate::__observe_classify!(n), Classified::Ok);
        let unit = ();
        assert_eq!(crate::__observe_classify!(unit), Classified::Ok);
    }
}
