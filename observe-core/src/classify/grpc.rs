//! gRPC status codes and what each means for a server and for a client.
//!
//! A gRPC call's outcome is its `grpc-status`: in the response headers of a
//! trailers-only response (an error before any message), else in the
//! trailers after the last message. [`status`] reads it from either map;
//! a server layer that finds none in the headers classifies again at the
//! end of the stream (tower-http's `GrpcErrorsAsFailures` /
//! `ClassifiedResponse::RequiresEos` shape).
//!
//! | side | success | failure (`error.type` = the code's name) | timeout |
//! |---|---|---|---|
//! | server ([`GrpcCodes::SERVER_ERRORS`], configurable) | every code not in the set | `UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE`, `DATA_LOSS` | — |
//! | client / gateway ([`response`]) | `OK` | every other code | `DEADLINE_EXCEEDED` |
//!
//! These are the sets of the OpenTelemetry semantic conventions for gRPC
//! (v1.44.0): a server counts only the codes that are its own fault, a
//! client every code but `OK`.
//!
//! ```
//! use observe_core::classify::grpc::{self, GrpcCode, GrpcCodes, GrpcStatus};
//!
//! let mut trailers = http::HeaderMap::new();
//! trailers.insert("grpc-status", http::HeaderValue::from_static("14"));
//! assert_eq!(grpc::status(&trailers), GrpcStatus::Code(GrpcCode::Unavailable));
//! assert_eq!(GrpcCodes::SERVER_ERRORS.error_type(GrpcCode::Unavailable), Some("UNAVAILABLE"));
//! assert_eq!(GrpcCodes::SERVER_ERRORS.error_type(GrpcCode::NotFound), None);
//! assert_eq!(grpc::response(GrpcCode::NotFound).error_type(), Some("NOT_FOUND"));
//! ```

use super::{Classified, GatewayStatus};
use std::borrow::Cow;

/// `grpc-status`.
pub const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

/// A gRPC status code (<https://grpc.github.io/grpc/core/md_doc_statuscodes.html>).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum GrpcCode {
    /// `OK` (0).
    Ok = 0,
    /// `CANCELLED` (1).
    Cancelled = 1,
    /// `UNKNOWN` (2).
    Unknown = 2,
    /// `INVALID_ARGUMENT` (3).
    InvalidArgument = 3,
    /// `DEADLINE_EXCEEDED` (4).
    DeadlineExceeded = 4,
    /// `NOT_FOUND` (5).
    NotFound = 5,
    /// `ALREADY_EXISTS` (6).
    AlreadyExists = 6,
    /// `PERMISSION_DENIED` (7).
    PermissionDenied = 7,
    /// `RESOURCE_EXHAUSTED` (8).
    ResourceExhausted = 8,
    /// `FAILED_PRECONDITION` (9).
    FailedPrecondition = 9,
    /// `ABORTED` (10).
    Aborted = 10,
    /// `OUT_OF_RANGE` (11).
    OutOfRange = 11,
    /// `UNIMPLEMENTED` (12).
    Unimplemented = 12,
    /// `INTERNAL` (13).
    Internal = 13,
    /// `UNAVAILABLE` (14).
    Unavailable = 14,
    /// `DATA_LOSS` (15).
    DataLoss = 15,
    /// `UNAUTHENTICATED` (16).
    Unauthenticated = 16,
}

impl GrpcCode {
    /// Every code, in numeric order.
    pub const ALL: [GrpcCode; 17] = [
        GrpcCode::Ok,
        GrpcCode::Cancelled,
        GrpcCode::Unknown,
        GrpcCode::InvalidArgument,
        GrpcCode::DeadlineExceeded,
        GrpcCode::NotFound,
        GrpcCode::AlreadyExists,
        GrpcCode::PermissionDenied,
        GrpcCode::ResourceExhausted,
        GrpcCode::FailedPrecondition,
        GrpcCode::Aborted,
        GrpcCode::OutOfRange,
        GrpcCode::Unimplemented,
        GrpcCode::Internal,
        GrpcCode::Unavailable,
        GrpcCode::DataLoss,
        GrpcCode::Unauthenticated,
    ];

    /// The code of `n`, if `n` is one (0..=16).
    pub fn from_u32(n: u32) -> Option<GrpcCode> {
        usize::try_from(n)
            .ok()
            .and_then(|i| Self::ALL.get(i))
            .copied()
    }

    /// The code's number.
    pub fn as_u32(self) -> u32 {
        self as u32
    }

    /// The code's name as the semantic conventions write it
    /// (`rpc.response.status_code`, `error.type`): `OK`, `DEADLINE_EXCEEDED`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            GrpcCode::Ok => "OK",
            GrpcCode::Cancelled => "CANCELLED",
            GrpcCode::Unknown => "UNKNOWN",
            GrpcCode::InvalidArgument => "INVALID_ARGUMENT",
            GrpcCode::DeadlineExceeded => "DEADLINE_EXCEEDED",
            GrpcCode::NotFound => "NOT_FOUND",
            GrpcCode::AlreadyExists => "ALREADY_EXISTS",
            GrpcCode::PermissionDenied => "PERMISSION_DENIED",
            GrpcCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
            GrpcCode::FailedPrecondition => "FAILED_PRECONDITION",
            GrpcCode::Aborted => "ABORTED",
            GrpcCode::OutOfRange => "OUT_OF_RANGE",
            GrpcCode::Unimplemented => "UNIMPLEMENTED",
            GrpcCode::Internal => "INTERNAL",
            GrpcCode::Unavailable => "UNAVAILABLE",
            GrpcCode::DataLoss => "DATA_LOSS",
            GrpcCode::Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

impl std::fmt::Display for GrpcCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of gRPC codes (a bitmask: checking a code is one `and`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct GrpcCodes(u32);

impl GrpcCodes {
    /// No code.
    pub const NONE: GrpcCodes = GrpcCodes(0);

    /// The codes a server counts as its own failures (semantic conventions
    /// v1.44.0, gRPC server spans): `UNKNOWN`, `DEADLINE_EXCEEDED`,
    /// `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE`, `DATA_LOSS`.
    pub const SERVER_ERRORS: GrpcCodes = GrpcCodes::NONE
        .with(GrpcCode::Unknown)
        .with(GrpcCode::DeadlineExceeded)
        .with(GrpcCode::Unimplemented)
        .with(GrpcCode::Internal)
        .with(GrpcCode::Unavailable)
        .with(GrpcCode::DataLoss);

    /// Every code but `OK` (what a client counts as a failure).
    pub const ALL_BUT_OK: GrpcCodes = GrpcCodes((1 << 17) - 2);

    /// This set and `code`.
    pub const fn with(self, code: GrpcCode) -> GrpcCodes {
        GrpcCodes(self.0 | 1 << code as u32)
    }

    /// This set without `code`.
    pub const fn without(self, code: GrpcCode) -> GrpcCodes {
        GrpcCodes(self.0 & !(1 << code as u32))
    }

    /// Whether `code` is in the set.
    pub const fn contains(self, code: GrpcCode) -> bool {
        self.0 & (1 << code as u32) != 0
    }

    /// The `error.type` of `code` when it is in this set of failures.
    pub fn error_type(self, code: GrpcCode) -> Option<&'static str> {
        self.contains(code).then(|| code.as_str())
    }
}

impl FromIterator<GrpcCode> for GrpcCodes {
    fn from_iter<I: IntoIterator<Item = GrpcCode>>(iter: I) -> Self {
        iter.into_iter().fold(GrpcCodes::NONE, GrpcCodes::with)
    }
}

/// What a header map says of a call's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrpcStatus {
    /// No `grpc-status` (in response headers: the status comes in the trailers).
    Missing,
    /// A valid code.
    Code(GrpcCode),
    /// A `grpc-status` that is not a code (out of range, not a number):
    /// gRPC clients read it as `UNKNOWN`.
    Invalid,
}

impl GrpcStatus {
    /// The code a client reads: `Invalid` is `UNKNOWN`, `Missing` is `None`.
    pub fn code(self) -> Option<GrpcCode> {
        match self {
            GrpcStatus::Missing => None,
            GrpcStatus::Code(c) => Some(c),
            GrpcStatus::Invalid => Some(GrpcCode::Unknown),
        }
    }
}

/// Reads `grpc-status` from response headers or trailers (the first value;
/// at most 3 digits are read, so the work is bounded whatever the peer sends).
pub fn status(headers: &http::HeaderMap) -> GrpcStatus {
    let Some(v) = headers.get(GRPC_STATUS) else {
        return GrpcStatus::Missing;
    };
    let b = v.as_bytes();
    if b.is_empty() || b.len() > 3 || !b.iter().all(u8::is_ascii_digit) {
        return GrpcStatus::Invalid;
    }
    let n = b
        .iter()
        .fold(0u32, |n, d| n * 10 + u32::from(d.saturating_sub(b'0')));
    GrpcCode::from_u32(n).map_or(GrpcStatus::Invalid, GrpcStatus::Code)
}

/// A client's (or gateway's) view of a call answered `code`: every code but
/// `OK` is a failure named by the code; `DEADLINE_EXCEEDED` is a timeout.
pub fn response(code: GrpcCode) -> Classified {
    match code {
        GrpcCode::Ok => Classified::Ok,
        c => Classified::failed(Cow::Borrowed(c.as_str()), c == GrpcCode::DeadlineExceeded),
    }
}

/// The gateway `status` of a call answered `code` (see [`response`]).
pub fn gateway_status(code: GrpcCode) -> GatewayStatus {
    response(code).gateway_status()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &'static [u8]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(
            GRPC_STATUS,
            http::HeaderValue::from_bytes(v).expect("header value"),
        );
        h
    }

    #[test]
    fn every_code_round_trips_by_number_and_name() {
        for (i, c) in GrpcCode::ALL.iter().enumerate() {
            assert_eq!(c.as_u32() as usize, i);
            assert_eq!(GrpcCode::from_u32(c.as_u32()), Some(*c));
            assert_eq!(c.to_string(), c.as_str());
        }
        assert_eq!(GrpcCode::from_u32(17), None);
        assert_eq!(GrpcCode::DeadlineExceeded.as_str(), "DEADLINE_EXCEEDED");
    }

    #[test]
    fn status_from_headers() {
        assert_eq!(status(&http::HeaderMap::new()), GrpcStatus::Missing);
        assert_eq!(status(&headers(b"0")), GrpcStatus::Code(GrpcCode::Ok));
        assert_eq!(
            status(&headers(b"16")),
            GrpcStatus::Code(GrpcCode::Unauthenticated)
        );
        for bad in [&b"17"[..], b"", b"-1", b" 1", b"1000", b"abc", b"0x1"] {
            let h = headers(bad);
            assert_eq!(status(&h), GrpcStatus::Invalid, "{bad:?}");
            assert_eq!(status(&h).code(), Some(GrpcCode::Unknown));
        }
        assert_eq!(GrpcStatus::Missing.code(), None);
    }

    #[test]
    fn server_errors_are_the_semantic_conventions_set() {
        let errors: Vec<&str> = GrpcCode::ALL
            .iter()
            .filter_map(|c| GrpcCodes::SERVER_ERRORS.error_type(*c))
            .collect();
        assert_eq!(
            errors,
            [
                "UNKNOWN",
                "DEADLINE_EXCEEDED",
                "UNIMPLEMENTED",
                "INTERNAL",
                "UNAVAILABLE",
                "DATA_LOSS"
            ]
        );
        let custom = GrpcCodes::SERVER_ERRORS
            .with(GrpcCode::ResourceExhausted)
            .without(GrpcCode::Unimplemented);
        assert!(custom.contains(GrpcCode::ResourceExhausted));
        assert!(!custom.contains(GrpcCode::Unimplemented));
        assert_eq!(
            [GrpcCode::Internal, GrpcCode::Aborted]
                .into_iter()
                .collect::<GrpcCodes>(),
            GrpcCodes::NONE
                .with(GrpcCode::Aborted)
                .with(GrpcCode::Internal)
        );
        assert!(GrpcCode::ALL[1..]
            .iter()
            .all(|c| GrpcCodes::ALL_BUT_OK.contains(*c)));
        assert!(!GrpcCodes::ALL_BUT_OK.contains(GrpcCode::Ok));
    }

    #[test]
    fn client_view_of_codes() {
        assert_eq!(response(GrpcCode::Ok), Classified::Ok);
        let c = response(GrpcCode::DeadlineExceeded);
        assert_eq!(c.error_type(), Some("DEADLINE_EXCEEDED"));
        assert_eq!(c.gateway_status(), GatewayStatus::Timeout);
        assert_eq!(gateway_status(GrpcCode::NotFound), GatewayStatus::Error);
        assert_eq!(gateway_status(GrpcCode::Ok), GatewayStatus::Success);
    }
}
