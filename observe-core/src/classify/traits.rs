//! The two traits through which users classify their own types, and their
//! implementations for common ones:
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

/// A status code as an `error.type`: `"404"`, `"504"`, ... without
/// allocating for the common codes.
pub fn status_name(s: http::StatusCode) -> Cow<'static, str> {
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

impl ErrorType for tower::timeout::error::Elapsed {
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
