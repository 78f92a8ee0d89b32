//! `traceparent`: the trace id, parent id and flags of the caller, in a
//! fixed 55-byte layout; parsing a valid header does not allocate.

use super::trim_ows;
use std::error::Error;
use std::fmt;
use std::str::FromStr;

/// A parsed W3C `traceparent` header (Trace Context Level 2).
///
/// `flags` keeps every bit received, including bits this version of the spec
/// does not define; serialization ([`TraceParent::write_to`]) always writes
/// version `00` and only the known bits ([`TraceParent::KNOWN_FLAGS`]), as the
/// spec requires of a version-`00` participant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// Version received (`0` for headers built locally). Never `0xff`.
    pub version: u8,
    /// The 16-byte trace id. All zeroes is invalid.
    pub trace_id: [u8; 16],
    /// The 8-byte parent (span) id. All zeroes is invalid.
    pub parent_id: [u8; 8],
    /// The 8-bit trace flags as received, unknown bits included.
    pub flags: u8,
}

/// Why a `traceparent` header was rejected. Any error means: restart the trace
/// and discard `tracestate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TraceParentError {
    /// No `traceparent` header was received.
    Missing,
    /// More than one `traceparent` header was received.
    Multiple,
    /// The value is longer than [`TraceParent::MAX_HEADER_LEN`] bytes.
    TooLong,
    /// The value does not start with two lowercase hex digits and a `-`.
    InvalidVersion,
    /// The version is `ff`, which the spec forbids.
    ForbiddenVersion,
    /// Version `00` not exactly 55 characters, or a higher version shorter
    /// than 55 characters.
    InvalidLength,
    /// A higher version whose 56th character is not a `-`.
    InvalidTrailingData,
    /// `trace-id` is not 32 lowercase hex digits followed by `-`.
    InvalidTraceId,
    /// `trace-id` is all zeroes.
    ZeroTraceId,
    /// `parent-id` is not 16 lowercase hex digits followed by `-`.
    InvalidParentId,
    /// `parent-id` is all zeroes.
    ZeroParentId,
    /// `trace-flags` is not two lowercase hex digits.
    InvalidFlags,
}

impl fmt::Display for TraceParentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = match self {
            Self::Missing => "no traceparent header",
            Self::Multiple => "more than one traceparent header",
            Self::TooLong => "traceparent header too long",
            Self::InvalidVersion => "traceparent version is not two lowercase hex digits and '-'",
            Self::ForbiddenVersion => "traceparent version ff is forbidden",
            Self::InvalidLength => "traceparent has the wrong length for its version",
            Self::InvalidTrailingData => {
                "traceparent of a future version has no '-' after its flags"
            }
            Self::InvalidTraceId => "traceparent trace-id is not 32 lowercase hex digits",
            Self::ZeroTraceId => "traceparent trace-id is all zeroes",
            Self::InvalidParentId => "traceparent parent-id is not 16 lowercase hex digits",
            Self::ZeroParentId => "traceparent parent-id is all zeroes",
            Self::InvalidFlags => "traceparent trace-flags are not two lowercase hex digits",
        };
        f.write_str(msg)
    }
}

impl Error for TraceParentError {}

impl TraceParent {
    /// `sampled` trace flag (bit 0).
    pub const FLAG_SAMPLED: u8 = 0x01;
    /// Level 2 `random-trace-id` trace flag (bit 1).
    pub const FLAG_RANDOM: u8 = 0x02;
    /// The flags defined for version `00`; other bits are written as zero.
    pub const KNOWN_FLAGS: u8 = Self::FLAG_SAMPLED | Self::FLAG_RANDOM;
    /// Length of a version-`00` header value.
    pub const HEADER_LEN: usize = 55;
    /// Longest value (before OWS trimming) that is even looked at; longer
    /// values are rejected with [`TraceParentError::TooLong`].
    pub const MAX_HEADER_LEN: usize = 512;

    /// Builds a version-`00` trace parent.
    pub const fn new(trace_id: [u8; 16], parent_id: [u8; 8], flags: u8) -> Self {
        Self {
            version: 0,
            trace_id,
            parent_id,
            flags,
        }
    }

    /// Parses one `traceparent` header value. Surrounding spaces and tabs are
    /// ignored. Versions above `00` are parsed by their first four fields as
    /// the spec's versioning rules require. Does not allocate.
    pub fn parse(value: &[u8]) -> Result<Self, TraceParentError> {
        use TraceParentError as E;
        if value.len() > Self::MAX_HEADER_LEN {
            return Err(E::TooLong);
        }
        let v = trim_ows(value);
        let version = match v {
            [hi, lo, b'-', ..] => {
                match (crate::hex::lower_value(*hi), crate::hex::lower_value(*lo)) {
                    (Some(hi), Some(lo)) => (hi << 4) | lo,
                    _ => return Err(E::InvalidVersion),
                }
            }
            _ => return Err(E::InvalidVersion),
        };
        if version == 0xff {
            return Err(E::ForbiddenVersion);
        }
        if v.len() < Self::HEADER_LEN || (version == 0 && v.len() != Self::HEADER_LEN) {
            return Err(E::InvalidLength);
        }
        // Only versions above 00 can be longer than 55 characters here.
        if v.len() > Self::HEADER_LEN && v.get(Self::HEADER_LEN) != Some(&b'-') {
            return Err(E::InvalidTrailingData);
        }
        let trace_id = v.get(3..35).and_then(crate::hex::decode_lower::<16>);
        let trace_id = match (trace_id, v.get(35)) {
            (Some(id), Some(b'-')) => id,
            _ => return Err(E::InvalidTraceId),
        };
        let parent_id = v.get(36..52).and_then(crate::hex::decode_lower::<8>);
        let parent_id = match (parent_id, v.get(52)) {
            (Some(id), Some(b'-')) => id,
            _ => return Err(E::InvalidParentId),
        };
        let [flags] = v
            .get(53..55)
            .and_then(crate::hex::decode_lower::<1>)
            .ok_or(E::InvalidFlags)?;
        if trace_id == [0; 16] {
            return Err(E::ZeroTraceId);
        }
        if parent_id == [0; 8] {
            return Err(E::ZeroParentId);
        }
        Ok(Self {
            version,
            trace_id,
            parent_id,
            flags,
        })
    }

    /// Parses the `traceparent` header from all of its received values: the
    /// header must occur exactly once ([`TraceParentError::Missing`] /
    /// [`TraceParentError::Multiple`], even if repeated values are equal).
    /// Reads at most two items from `values`.
    pub fn parse_headers<'a>(
        values: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Self, TraceParentError> {
        let mut values = values.into_iter();
        let first = values.next().ok_or(TraceParentError::Missing)?;
        if values.next().is_some() {
            return Err(TraceParentError::Multiple);
        }
        Self::parse(first)
    }

    /// Whether the `sampled` flag is set.
    pub const fn is_sampled(&self) -> bool {
        self.flags & Self::FLAG_SAMPLED != 0
    }

    /// Whether the Level 2 `random-trace-id` flag is set.
    pub const fn is_random(&self) -> bool {
        self.flags & Self::FLAG_RANDOM != 0
    }

    /// Writes the version-`00` header value (lowercase hex; unknown flag bits
    /// cleared) into `buf`. Does not check that the ids are non-zero.
    pub fn write_to(&self, buf: &mut [u8; 55]) {
        let mut ids = [0u8; 48];
        crate::hex::encode_into(&self.trace_id, &mut ids[..32]);
        crate::hex::encode_into(&self.parent_id, &mut ids[32..]);
        *buf = traceparent_bytes(&ids, self.flags);
    }

    /// The version-`00` header value as a `String` (see [`TraceParent::write_to`]).
    pub fn to_header_value(&self) -> String {
        self.to_string()
    }
}

/// The version-`00` `traceparent` value of ids already in lowercase hex
/// (trace id then span id, as spans keep them): `00-<trace>-<span>-<flags>`,
/// unknown flag bits cleared. Every `traceparent` observe writes is laid out here.
#[inline]
pub(crate) fn traceparent_bytes(ids_hex: &[u8; 48], flags: u8) -> [u8; 55] {
    let mut v = [b'-'; 55];
    v[..2].copy_from_slice(b"00");
    v[3..35].copy_from_slice(&ids_hex[..32]);
    v[36..52].copy_from_slice(&ids_hex[32..]);
    v[53..].copy_from_slice(&crate::hex::byte(flags & TraceParent::KNOWN_FLAGS));
    v
}

impl fmt::Display for TraceParent {
    /// Formats the version-`00` header value (see [`TraceParent::write_to`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 55];
        self.write_to(&mut buf);
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl FromStr for TraceParent {
    type Err = TraceParentError;

    /// Same as [`TraceParent::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::w3c::parse_trace_context;
    use proptest::prelude::*;

    const TID: &str = "12345678901234567890123456789012";
    const PID: &str = "1234567890123456";
    const VALID: &str = "00-12345678901234567890123456789012-1234567890123456-01";

    fn hex(bytes: &[u8]) -> String {
        crate::hex::string(bytes)
    }

    /// Expected outcome: Ok((version, trace-id, parent-id, flags)) or Err.
    type Expect = Result<(u8, &'static str, &'static str, u8), TraceParentError>;

    #[test]
    fn traceparent_table() {
        use TraceParentError as E;
        let ok = |v, f| -> Expect { Ok((v, TID, PID, f)) };
        #[rustfmt::skip]
        let cases: &[(&str, &str, Expect)] = &[
            // ---- valid ----
            ("spec: example sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Ok((0, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 1))),
            ("spec: example not sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                Ok((0, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 0))),
            ("spec: relationship example", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                Ok((0, "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", 1))),
            ("test_traceparent_included_tracestate_missing, test_traceparent_header_name_valid_casing #1-3, \
              test_multiple_requests_with_valid_traceparent", VALID, ok(0, 1)),
            ("test_tracestate_* (their traceparent)", "00-12345678901234567890123456789012-1234567890123456-00", ok(0, 0)),
            ("test_propagates_random_flag", "00-12345678901234567890123456789012-1234567890123456-02", ok(0, 2)),
            ("spec: trace-flags 03 = sampled + random", "00-12345678901234567890123456789012-1234567890123456-03", ok(0, 3)),
            ("spec: other flags are kept on parse", "00-12345678901234567890123456789012-1234567890123456-ff", ok(0, 0xff)),
            ("test_traceparent_version_0xcc #1", "cc-12345678901234567890123456789012-1234567890123456-01", ok(0xcc, 1)),
            ("test_traceparent_version_0xcc #2",
                "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like", ok(0xcc, 1)),
            ("spec: versioning, flags followed by a dash", "cc-12345678901234567890123456789012-1234567890123456-01-", ok(0xcc, 1)),
            ("spec: versioning, version 01", "01-12345678901234567890123456789012-1234567890123456-09-x", ok(1, 9)),
            ("test_traceparent_ows_handling #1", " 00-12345678901234567890123456789012-1234567890123456-01", ok(0, 1)),
            ("test_traceparent_ows_handling #2", "\t00-12345678901234567890123456789012-1234567890123456-01", ok(0, 1)),
            ("test_traceparent_ows_handling #3", "00-12345678901234567890123456789012-1234567890123456-01 ", ok(0, 1)),
            ("test_traceparent_ows_handling #4", "00-12345678901234567890123456789012-1234567890123456-01\t", ok(0, 1)),
            ("test_traceparent_ows_handling #5", "\t 00-12345678901234567890123456789012-1234567890123456-01 \t", ok(0, 1)),
            // ---- invalid ----
            ("test_traceparent_version_0xcc #3",
                "cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like", Err(E::InvalidTrailingData)),
            ("test_traceparent_version_0x00 #1", "00-12345678901234567890123456789012-1234567890123456-01.", Err(E::InvalidLength)),
            ("test_traceparent_version_0x00 #2",
                "00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like", Err(E::InvalidLength)),
            ("test_traceparent_version_0xff", "ff-12345678901234567890123456789012-1234567890123456-01", Err(E::ForbiddenVersion)),
            ("test_traceparent_version_illegal_characters #1", ".0-12345678901234567890123456789012-1234567890123456-01", Err(E::InvalidVersion)),
            ("test_traceparent_version_illegal_characters #2", "0.-12345678901234567890123456789012-1234567890123456-01", Err(E::InvalidVersion)),
            ("test_traceparent_version_too_long #1", "000-12345678901234567890123456789012-1234567890123456-01", Err(E::InvalidVersion)),
            ("test_traceparent_version_too_long #2", "0000-12345678901234567890123456789012-1234567890123456-01", Err(E::InvalidVersion)),
            ("test_traceparent_version_too_short", "0-12345678901234567890123456789012-1234567890123456-01", Err(E::InvalidVersion)),
            ("test_traceparent_trace_id_all_zero, test_multiple_requests_with_illegal_traceparent",
                "00-00000000000000000000000000000000-1234567890123456-01", Err(E::ZeroTraceId)),
            ("test_traceparent_trace_id_illegal_characters #1", "00-.2345678901234567890123456789012-1234567890123456-01", Err(E::InvalidTraceId)),
            ("test_traceparent_trace_id_illegal_characters #2", "00-1234567890123456789012345678901.-1234567890123456-01", Err(E::InvalidTraceId)),
            ("test_traceparent_trace_id_too_long", "00-123456789012345678901234567890123-1234567890123456-01", Err(E::InvalidLength)),
            ("test_traceparent_trace_id_too_short", "00-1234567890123456789012345678901-1234567890123456-01", Err(E::InvalidLength)),
            ("test_traceparent_parent_id_all_zero", "00-12345678901234567890123456789012-0000000000000000-01", Err(E::ZeroParentId)),
            ("test_traceparent_parent_id_illegal_characters #1", "00-12345678901234567890123456789012-.234567890123456-01", Err(E::InvalidParentId)),
            ("test_traceparent_parent_id_illegal_characters #2", "00-12345678901234567890123456789012-123456789012345.-01", Err(E::InvalidParentId)),
            ("test_traceparent_parent_id_too_long", "00-12345678901234567890123456789012-12345678901234567-01", Err(E::InvalidLength)),
            ("test_traceparent_parent_id_too_short", "00-12345678901234567890123456789012-123456789012345-01", Err(E::InvalidLength)),
            ("test_traceparent_trace_flags_illegal_characters #1", "00-12345678901234567890123456789012-1234567890123456-.0", Err(E::InvalidFlags)),
            ("test_traceparent_trace_flags_illegal_characters #2", "00-12345678901234567890123456789012-1234567890123456-0.", Err(E::InvalidFlags)),
            ("test_traceparent_trace_flags_too_long", "00-12345678901234567890123456789012-1234567890123456-001", Err(E::InvalidLength)),
            ("test_traceparent_trace_flags_too_short", "00-12345678901234567890123456789012-1234567890123456-1", Err(E::InvalidLength)),
            ("spec: HEXDIGLC version", "0A-12345678901234567890123456789012-1234567890123456-01", Err(E::InvalidVersion)),
            ("spec: HEXDIGLC trace-id", "00-4BF92F3577B34DA6A3CE929D0E0E4736-1234567890123456-01", Err(E::InvalidTraceId)),
            ("spec: HEXDIGLC parent-id", "00-12345678901234567890123456789012-00F067AA0BA902B7-01", Err(E::InvalidParentId)),
            ("spec: HEXDIGLC flags", "00-12345678901234567890123456789012-1234567890123456-0A", Err(E::InvalidFlags)),
            ("spec: versioning, higher version shorter than 55", "cc-12345678901234567890123456789012-1234567890123456-1", Err(E::InvalidLength)),
            ("spec: versioning, higher version bad trace-id", "cc-1234567890123456789012345678901x-1234567890123456-01-a", Err(E::InvalidTraceId)),
            ("spec: versioning, higher version zero trace-id", "cc-00000000000000000000000000000000-1234567890123456-01-a", Err(E::ZeroTraceId)),
            ("spec: versioning, higher version zero parent-id", "cc-12345678901234567890123456789012-0000000000000000-01-a", Err(E::ZeroParentId)),
            ("spec: versioning, trace-id not followed by dash", "cc-12345678901234567890123456789012_1234567890123456-01", Err(E::InvalidTraceId)),
            ("spec: parent-id not followed by dash", "00-12345678901234567890123456789012-1234567890123456_01", Err(E::InvalidParentId)),
            ("spec: version not followed by dash", "00_12345678901234567890123456789012-1234567890123456-01", Err(E::InvalidVersion)),
            ("empty value", "", Err(E::InvalidVersion)),
            ("OWS only", " \t ", Err(E::InvalidVersion)),
            ("CR/LF are not OWS", "\n00-12345678901234567890123456789012-1234567890123456-01", Err(E::InvalidVersion)),
            ("CR/LF are not OWS (trailing)", "00-12345678901234567890123456789012-1234567890123456-01\r", Err(E::InvalidLength)),
            ("non-ASCII", "00-12345678901234567890123456789012-123456789012345é-01", Err(E::InvalidLength)),
        ];
        for (case, input, expect) in cases {
            let got = TraceParent::parse(input.as_bytes())
                .map(|tp| (tp.version, hex(&tp.trace_id), hex(&tp.parent_id), tp.flags));
            let expect = expect.map(|(v, t, p, f)| (v, t.to_owned(), p.to_owned(), f));
            assert_eq!(got, expect, "case {case}: {input:?}");
        }
    }

    #[test]
    fn traceparent_forwarding() {
        // test_traceparent_version_0xcc: forwarded as version 00, same trace-id
        // (the harness only accepts version 00).
        let tp = TraceParent::parse(
            b"cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
        )
        .unwrap();
        assert_eq!(tp.to_header_value(), VALID);
        // test_propagates_random_flag: the random flag is forwarded.
        let tp: TraceParent = "00-12345678901234567890123456789012-1234567890123456-02"
            .parse()
            .unwrap();
        assert!(tp.is_random() && !tp.is_sampled());
        assert!(tp.to_header_value().ends_with("-02"));
        // spec "Other Flags": unknown bits kept on parse, written as zero.
        let tp =
            TraceParent::parse(b"00-12345678901234567890123456789012-1234567890123456-ff").unwrap();
        assert_eq!(tp.flags, 0xff);
        assert!(tp.is_sampled() && tp.is_random());
        assert!(tp.to_header_value().ends_with("-03"));
        let mut buf = [0u8; 55];
        TraceParent::new([0xab; 16], [0x01; 8], 0x05).write_to(&mut buf);
        assert_eq!(
            &buf[..],
            b"00-abababababababababababababababab-0101010101010101-01"
        );
        assert_eq!(
            TraceParent::parse(VALID.as_bytes()).unwrap().to_string(),
            VALID
        );
    }

    #[test]
    fn traceparent_headers() {
        use TraceParentError as E;
        let v = VALID.as_bytes();
        // test_both_traceparent_and_tracestate_missing,
        // test_multiple_requests_without_traceparent: nothing to continue.
        assert_eq!(TraceParent::parse_headers([]), Err(E::Missing));
        assert!(TraceParent::parse_headers([v]).is_ok());
        // test_traceparent_duplicated: two different values.
        let other = b"00-12345678901234567890123456789011-1234567890123456-01";
        assert_eq!(
            TraceParent::parse_headers([&other[..], v]),
            Err(E::Multiple)
        );
        // Two identical values are invalid too.
        assert_eq!(TraceParent::parse_headers([v, v]), Err(E::Multiple));
        // Bounded: stops reading after the second value.
        assert_eq!(
            TraceParent::parse_headers(std::iter::repeat(v)),
            Err(E::Multiple)
        );
    }

    #[test]
    fn traceparent_length_cap() {
        let pad = " ".repeat(TraceParent::MAX_HEADER_LEN - VALID.len());
        assert!(TraceParent::parse(format!("{pad}{VALID}").as_bytes()).is_ok());
        assert_eq!(
            TraceParent::parse(format!(" {pad}{VALID}").as_bytes()),
            Err(TraceParentError::TooLong)
        );
        let future = format!("cc{}-", &VALID[2..]);
        let future = format!("{future}{}", "x".repeat(512 - future.len()));
        assert!(TraceParent::parse(future.as_bytes()).is_ok());
        assert_eq!(
            TraceParent::parse(format!("{future}x").as_bytes()),
            Err(TraceParentError::TooLong)
        );
        let huge = vec![b'0'; 1 << 20];
        assert_eq!(TraceParent::parse(&huge), Err(TraceParentError::TooLong));
        assert!(!TraceParentError::TooLong.to_string().is_empty());
    }

    #[test]
    fn trace_context_pairing() {
        let v = VALID.as_bytes();
        // test_tracestate_included_traceparent_included
        let (tp, ts) = parse_trace_context([v], [&b"foo=1,bar=2"[..]]).unwrap();
        assert_eq!(hex(&tp.trace_id), TID);
        assert_eq!(ts.unwrap().header_value(), "foo=1,bar=2");
        // test_traceparent_included_tracestate_missing
        assert_eq!(parse_trace_context([v], []).unwrap().1, None);
        // test_tracestate_included_traceparent_missing: tracestate discarded.
        assert_eq!(
            parse_trace_context([], [&b"foo=1"[..]]),
            Err(TraceParentError::Missing)
        );
        // spec: tracestate is not used when traceparent is invalid ...
        let zero = b"00-00000000000000000000000000000000-1234567890123456-01";
        assert!(parse_trace_context([&zero[..]], [&b"foo=1"[..]]).is_err());
        // ... but an invalid tracestate does not affect traceparent.
        let (tp, ts) = parse_trace_context([v], [&b"FOO=1"[..]]).unwrap();
        assert_eq!(hex(&tp.trace_id), TID);
        assert_eq!(ts, None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn traceparent_roundtrip(
            trace_id in any::<[u8; 16]>().prop_filter("non-zero", |t| *t != [0; 16]),
            parent_id in any::<[u8; 8]>().prop_filter("non-zero", |p| *p != [0; 8]),
            flags in 0u8..4,
            version in 1u8..0xff,
            tail in "(-[a-z0-9-]{0,20})?",
            ows in "[ \t]{0,2}",
        ) {
            let value = format!("00-{}-{}-{flags:02x}", hex(&trace_id), hex(&parent_id));
            let tp = TraceParent::parse(format!("{ows}{value}{ows}").as_bytes()).unwrap();
            prop_assert_eq!(tp, TraceParent::new(trace_id, parent_id, flags));
            prop_assert_eq!(tp.to_header_value(), value.clone());
            let future = format!("{version:02x}{}{tail}", &value[2..]);
            let tp = TraceParent::parse(future.as_bytes()).unwrap();
            prop_assert_eq!(tp.version, version);
            prop_assert_eq!(tp.to_header_value(), value);
        }
    }
}
