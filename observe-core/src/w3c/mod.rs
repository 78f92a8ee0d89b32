//! W3C Trace Context Level 2 (`traceparent`, `tracestate`) and W3C Baggage
//! (`baggage`) header parsing and serialization.
//!
//! Everything here works on raw header bytes (`&[u8]`, as returned by
//! `http::HeaderValue::as_bytes`) and follows
//! <https://www.w3.org/TR/trace-context-2/> and <https://www.w3.org/TR/baggage/>.
//!
//! Robustness guarantees, whatever the input:
//!
//! * no parser panics;
//! * work per header is bounded: a `traceparent` longer than
//!   [`TraceParent::MAX_HEADER_LEN`] is rejected before it is scanned, combined
//!   `tracestate` input longer than [`TraceState::MAX_INPUT_LEN`] is discarded
//!   before it is scanned, and combined `baggage` input is only scanned up to
//!   [`Baggage::MAX_BYTES`];
//! * memory allocated is bounded by those limits, never proportional to the
//!   size of the received headers;
//! * parsing a valid `traceparent` does not allocate.
//!
//! Header *names* are not handled here: callers look the values up with a
//! case-insensitive header map (`traceparent`, `tracestate`, `baggage`) and
//! pass every value of the header, in order, to the `parse_headers` functions.
//!
//! | file | header | spec |
//! |---|---|---|
//! | `traceparent.rs` | `traceparent` | W3C Trace Context Level 2 |
//! | `tracestate.rs` | `tracestate` | W3C Trace Context Level 2 |
//! | `baggage.rs` | `baggage` | W3C Baggage |
//!
//! The stock OpenTelemetry propagators read only the first of repeated
//! headers, do not check field lengths and drop the Level 2 `random` flag;
//! these parsers pass the official test suites (the table rows of each
//! file's tests name the cases they cover).

mod baggage;
mod traceparent;
mod tracestate;

pub use baggage::{Baggage, BaggageMember};
pub(crate) use traceparent::traceparent_bytes;
pub use traceparent::{TraceParent, TraceParentError};
pub use tracestate::TraceState;

use std::error::Error;
use std::fmt;

/// Optional whitespace (RFC 9110 `OWS`): space or horizontal tab.
pub(crate) const fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Trims leading and trailing `OWS` (spaces and tabs only).
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ows(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ows(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// Splits `s` at the first occurrence of `sep` (the separator is dropped).
pub(crate) fn split_once_byte(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Parses incoming trace context: `traceparent` first, and `tracestate` only
/// if `traceparent` is valid (the spec forbids parsing `tracestate`
/// otherwise). An `Err` means the trace must be restarted with an empty
/// `tracestate`; `Ok((_, None))` means `tracestate` was absent, empty or
/// invalid and must not be propagated.
pub fn parse_trace_context<'a, 'b>(
    traceparent: impl IntoIterator<Item = &'a [u8]>,
    tracestate: impl IntoIterator<Item = &'b [u8]>,
) -> Result<(TraceParent, Option<TraceState>), TraceParentError> {
    let parent = TraceParent::parse_headers(traceparent)?;
    Ok((parent, TraceState::parse_headers(tracestate)))
}

/// A key or value rejected by [`TraceState::insert_front`] or
/// [`Baggage::insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryError {
    /// The key does not follow the header's key grammar.
    InvalidKey,
    /// The value does not follow the header's value grammar.
    InvalidValue,
    /// The list already holds its maximum number of members.
    TooManyMembers,
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidKey => "invalid key",
            Self::InvalidValue => "invalid value",
            Self::TooManyMembers => "too many list members",
        })
    }
}

impl Error for EntryError {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    // Coverage of the official suites. Every table row below starts with the
    // name of the case it covers:
    //
    // * w3c/trace-context test/test.py (acab820): every TraceContextTest,
    //   AdvancedTest and TraceContext2Test case, i.e. the inputs they send and
    //   what the forwarded headers must contain (same trace-id, version 00,
    //   random flag kept, tracestate members kept and combined in order).
    //   Rows name the test.py method, with `#n` for its n-th request.
    //   Not covered here because they are not this module's job:
    //   test_traceparent_header_name / test_tracestate_header_name and the
    //   *_valid_casing variants (header-name lookup is case-insensitive in
    //   `http::HeaderMap`; `trace-parent` is simply another header), and the
    //   generation of new ids in test_both_traceparent_and_tracestate_missing /
    //   test_multiple_requests_* (the layer's job; here we only check that
    //   those inputs are reported as Missing / invalid so that it restarts).
    // * w3c/trace-context spec/20-http_request_header_format.md: rows tagged
    //   `spec:` (examples, HEXDIGLC, versioning rules, flags, key/value
    //   grammar, limits, mutation and truncation rules).
    // * w3c/baggage test/test_baggage.py (9af80f4): every BaggageTest,
    //   BaggageEntryTest and LimitsTest case, plus the examples of
    //   baggage/HTTP_HEADER_FORMAT.md (rows tagged `spec:`).
    use super::*;
    use proptest::prelude::*;

    const ALPHABET: &[u8] = b"0123456789abcdefABCDEF-=,; \t%@*/_.\"\\xyzZ\x00\x7f\xc3\xa9";

    fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::vec(prop::sample::select(ALPHABET), 0..120),
            // near-valid traceparents
            "[ \t]?[0-9a-fA-F]{2}-[0-9a-f]{30,33}-[0-9a-f.]{15,17}-[0-9a-f]{1,3}(-.{0,5})?[ \t]?"
                .prop_map(String::into_bytes),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn arbitrary_input_never_panics(headers in prop::collection::vec(header_bytes(), 0..4)) {
            let values = || headers.iter().map(Vec::as_slice);
            for h in values() {
                if let Ok(tp) = TraceParent::parse(h) {
                    let again = TraceParent::parse(tp.to_header_value().as_bytes()).unwrap();
                    prop_assert_eq!(again, TraceParent { version: 0, flags: tp.flags & TraceParent::KNOWN_FLAGS, ..tp });
                }
            }
            let _ = TraceParent::parse_headers(values());
            let _ = parse_trace_context(values(), values());
            if let Some(mut ts) = TraceState::parse_headers(values()) {
                prop_assert!(!ts.is_empty() && ts.len() <= TraceState::MAX_MEMBERS);
                prop_assert_eq!(TraceState::parse(ts.header_value().as_bytes()), Some(ts.clone()));
                let _ = ts.insert_front("observe", "x");
                ts.truncate(64);
                prop_assert!(ts.header_value().len() <= 64);
            }
            let b = Baggage::parse_headers(values());
            prop_assert!(b.len() <= Baggage::MAX_MEMBERS);
            let h = b.header_value();
            prop_assert!(h.len() <= Baggage::MAX_BYTES);
            prop_assert_eq!(Baggage::parse(h.as_bytes()), b);
        }
    }
}
