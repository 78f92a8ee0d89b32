//! How a call's result becomes success, error or timeout.
//!
//! Two small traits, implemented by observe for common types and by users for
//! their own:
//! - [`Outcome`]: a value that can say "the work failed" although the call
//!   returned normally (a 200 whose payload says `processing`, a 504 status);
//! - [`ErrorType`]: an error's low-cardinality `error.type` and whether it is
//!   a timeout.

use std::borrow::Cow;

/// A value that can report an implicit failure.
///
/// ```
/// use std::borrow::Cow;
/// struct PaymentReply { status: &'static str }
/// impl observe_core::Outcome for PaymentReply {
///     fn failure(&self) -> Option<Cow<'static, str>> {
///         (self.status != "success").then_some(Cow::Borrowed("payment_not_confirmed"))
///     }
/// }
/// assert!(observe_core::Outcome::failure(&PaymentReply { status: "processing" }).is_some());
/// ```
pub trait Outcome {
    /// `None` when the work succeeded, else a low-cardinality reason
    /// (it becomes `error.type`).
    fn failure(&self) -> Option<Cow<'static, str>>;
}

impl Outcome for http::StatusCode {
    /// 4xx and 5xx are failures, named by their code (`"504"`).
    fn failure(&self) -> Option<Cow<'static, str>> {
        (self.is_client_error() || self.is_server_error()).then(|| status_name(*self))
    }
}

impl<B> Outcome for http::Response<B> {
    fn failure(&self) -> Option<Cow<'static, str>> {
        self.status().failure()
    }
}

impl<T: Outcome + ?Sized> Outcome for &T {
    fn failure(&self) -> Option<Cow<'static, str>> {
        (**self).failure()
    }
}

impl<T: Outcome + ?Sized> Outcome for Box<T> {
    fn failure(&self) -> Option<Cow<'static, str>> {
        (**self).failure()
    }
}

/// `"404"`, `"504"`, ... without allocating for the common codes.
pub(crate) fn status_name(s: http::StatusCode) -> Cow<'static, str> {
    const COMMON: [(u16, &str); 16] = [
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (408, "408"),
        (409, "409"),
        (422, "422"),
        (429, "429"),
        (499, "499"),
        (500, "500"),
        (501, "501"),
        (502, "502"),
        (503, "503"),
        (504, "504"),
        (505, "505"),
        (507, "507"),
    ];
    match COMMON.iter().find(|(c, _)| *c == s.as_u16()) {
        Some((_, n)) => Cow::Borrowed(n),
        None => Cow::Owned(s.as_u16().to_string()),
    }
}

/// An error's low-cardinality type, and whether it is a timeout.
///
/// ```
/// use std::borrow::Cow;
/// #[derive(Debug)]
/// enum BankError { Declined, Unavailable }
/// impl std::fmt::Display for BankError {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{self:?}") }
/// }
/// impl observe_core::ErrorType for BankError {
///     fn error_type(&self) -> Cow<'static, str> {
///         match self { BankError::Declined => "declined".into(), BankError::Unavailable => "unavailable".into() }
///     }
/// }
/// ```
pub trait ErrorType {
    /// A low-cardinality name (`timeout`, `connection_refused`, `declined`).
    fn error_type(&self) -> Cow<'static, str>;
    /// Whether the error means the call timed out (gateway `status="timeout"`).
    fn is_timeout(&self) -> bool {
        false
    }
}

impl ErrorType for std::io::Error {
    fn error_type(&self) -> Cow<'static, str> {
        use std::io::ErrorKind as K;
        Cow::Borrowed(match self.kind() {
            K::NotFound => "not_found",
            K::PermissionDenied => "permission_denied",
            K::ConnectionRefused => "connection_refused",
            K::ConnectionReset => "connection_reset",
            K::ConnectionAborted => "connection_aborted",
            K::NotConnected => "not_connected",
            K::AddrInUse => "addr_in_use",
            K::AddrNotAvailable => "addr_not_available",
            K::BrokenPipe => "broken_pipe",
            K::AlreadyExists => "already_exists",
            K::WouldBlock => "would_block",
            K::InvalidInput => "invalid_input",
            K::InvalidData => "invalid_data",
            K::TimedOut => "timeout",
            K::WriteZero => "write_zero",
            K::Interrupted => "interrupted",
            K::Unsupported => "unsupported",
            K::UnexpectedEof => "unexpected_eof",
            K::OutOfMemory => "out_of_memory",
            _ => "io_error",
        })
    }

    fn is_timeout(&self) -> bool {
        self.kind() == std::io::ErrorKind::TimedOut
    }
}

impl ErrorType for tokio::time::error::Elapsed {
    fn error_type(&self) -> Cow<'static, str> {
        Cow::Borrowed("timeout")
    }

    fn is_timeout(&self) -> bool {
        true
    }
}

impl ErrorType for http::StatusCode {
    fn error_type(&self) -> Cow<'static, str> {
        status_name(*self)
    }

    fn is_timeout(&self) -> bool {
        *self == http::StatusCode::GATEWAY_TIMEOUT || *self == http::StatusCode::REQUEST_TIMEOUT
    }
}

#[cfg(feature = "reqwest")]
impl ErrorType for reqwest::Error {
    fn error_type(&self) -> Cow<'static, str> {
        if self.is_timeout() {
            Cow::Borrowed("timeout")
        } else if self.is_connect() {
            Cow::Borrowed("connection_error")
        } else if let Some(s) = self.status() {
            status_name(s)
        } else if self.is_decode() {
            Cow::Borrowed("decode_error")
        } else if self.is_body() {
            Cow::Borrowed("body_error")
        } else if self.is_request() {
            Cow::Borrowed("request_error")
        } else {
            Cow::Borrowed("reqwest_error")
        }
    }

    fn is_timeout(&self) -> bool {
        reqwest::Error::is_timeout(self)
    }
}

/// The last path segment of a type name, without generics
/// (`my_app::bank::BankError<u8>` → `BankError`).
pub(crate) fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let no_generics = full.split('<').next().unwrap_or(full);
    no_generics.rsplit("::").next().unwrap_or(no_generics)
}

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

/// Wraps a call's result for classification by autoref specialisation:
/// generated code calls `(&&&&Probe(&value)).observe_classify()`, and the most
/// specific of the impls below that applies wins.
#[derive(Debug)]
pub struct Probe<'a, T: ?Sized>(pub &'a T);

impl<T: ?Sized> Clone for Probe<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized> Copy for Probe<'_, T> {}

fn implicit(reason: Cow<'static, str>) -> Classified {
    Classified::Failed {
        message: reason.to_string(),
        error_type: reason,
        timeout: false,
        implicit: true,
    }
}

/// Level 4: `Result<T: Outcome, E: ErrorType + Display>`.
pub trait ClassifyL4 {
    /// Classifies.
    fn observe_classify(&self) -> Classified;
}
impl<T: Outcome, E: ErrorType + std::fmt::Display> ClassifyL4 for &&&Probe<'_, Result<T, E>> {
    fn observe_classify(&self) -> Classified {
        match self.0 {
            Ok(v) => v.failure().map_or(Classified::Ok, implicit),
            Err(e) => Classified::Failed {
                error_type: e.error_type(),
                message: e.to_string(),
                timeout: e.is_timeout(),
                implicit: false,
            },
        }
    }
}

/// Level 3: `Result<T, E: ErrorType + Display>`.
pub trait ClassifyL3 {
    /// Classifies.
    fn observe_classify(&self) -> Classified;
}
impl<T, E: ErrorType + std::fmt::Display> ClassifyL3 for &&Probe<'_, Result<T, E>> {
    fn observe_classify(&self) -> Classified {
        match self.0 {
            Ok(_) => Classified::Ok,
            Err(e) => Classified::Failed {
                error_type: e.error_type(),
                message: e.to_string(),
                timeout: e.is_timeout(),
                implicit: false,
            },
        }
    }
}

/// Level 2: `Result<T, E: Display>`: `error.type` is `E`'s type name.
pub trait ClassifyL2 {
    /// Classifies.
    fn observe_classify(&self) -> Classified;
}
impl<T, E: std::fmt::Display> ClassifyL2 for &Probe<'_, Result<T, E>> {
    fn observe_classify(&self) -> Classified {
        match self.0 {
            Ok(_) => Classified::Ok,
            Err(e) => Classified::Failed {
                error_type: Cow::Borrowed(short_type_name::<E>()),
                message: e.to_string(),
                timeout: false,
                implicit: false,
            },
        }
    }
}

/// Level 1: `Result<T, E>` of any `E` (named by its type), or a value that
/// implements [`Outcome`].
pub trait ClassifyL1 {
    /// Classifies.
    fn observe_classify(&self) -> Classified;
}
impl<T, E> ClassifyL1 for Probe<'_, Result<T, E>> {
    fn observe_classify(&self) -> Classified {
        match self.0 {
            Ok(_) => Classified::Ok,
            Err(_) => Classified::Failed {
                error_type: Cow::Borrowed(short_type_name::<E>()),
                message: short_type_name::<E>().to_owned(),
                timeout: false,
                implicit: false,
            },
        }
    }
}

/// Level 1 for values: [`Outcome`].
pub trait ClassifyOutcome {
    /// Classifies.
    fn observe_classify(&self) -> Classified;
}
impl<T: Outcome + ?Sized> ClassifyOutcome for Probe<'_, T> {
    fn observe_classify(&self) -> Classified {
        self.0.failure().map_or(Classified::Ok, implicit)
    }
}

/// Level 0: anything else succeeded.
pub trait ClassifyAny {
    /// Classifies.
    fn observe_classify(self) -> Classified;
}
impl<T: ?Sized> ClassifyAny for Probe<'_, T> {
    fn observe_classify(self) -> Classified {
        Classified::Ok
    }
}

/// Classifies `value` as generated code does (for tests and manual use).
#[macro_export]
#[doc(hidden)]
macro_rules! __observe_classify {
    ($value:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private::classify::{
            ClassifyAny as _, ClassifyL1 as _, ClassifyL2 as _, ClassifyL3 as _, ClassifyL4 as _,
            ClassifyOutcome as _,
        };
        (&&&&$crate::__private::classify::Probe(&$value)).observe_classify()
    }};
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
