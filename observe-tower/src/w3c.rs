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

use std::error::Error;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

// ---------------------------------------------------------------------------
// Shared byte helpers
// ---------------------------------------------------------------------------

/// Optional whitespace (RFC 9110 `OWS`): space or horizontal tab.
const fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Trims leading and trailing `OWS` (spaces and tabs only).
fn trim_ows(mut s: &[u8]) -> &[u8] {
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
fn split_once_byte(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Value of a lowercase hex digit (`HEXDIGLC`); uppercase is rejected.
const fn lc_hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Decodes exactly `2 * N` lowercase hex digits into `N` bytes.
fn decode_lc_hex<const N: usize>(src: &[u8]) -> Option<[u8; N]> {
    if src.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(src.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *o = (lc_hex_val(*hi)? << 4) | lc_hex_val(*lo)?;
    }
    Some(out)
}

const LC_HEX: &[u8; 16] = b"0123456789abcdef";
const UC_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Writes `src` as lowercase hex into `dst` (which must be `2 * src.len()` long).
fn encode_lc_hex(src: &[u8], dst: &mut [u8]) {
    for (b, pair) in src.iter().zip(dst.chunks_exact_mut(2)) {
        if let [hi, lo] = pair {
            *hi = LC_HEX[usize::from(b >> 4)];
            *lo = LC_HEX[usize::from(b & 0x0f)];
        }
    }
}

// ---------------------------------------------------------------------------
// traceparent
// ---------------------------------------------------------------------------

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
            [hi, lo, b'-', ..] => match (lc_hex_val(*hi), lc_hex_val(*lo)) {
                (Some(hi), Some(lo)) => (hi << 4) | lo,
                _ => return Err(E::InvalidVersion),
            },
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
        let trace_id = v.get(3..35).and_then(decode_lc_hex::<16>);
        let trace_id = match (trace_id, v.get(35)) {
            (Some(id), Some(b'-')) => id,
            _ => return Err(E::InvalidTraceId),
        };
        let parent_id = v.get(36..52).and_then(decode_lc_hex::<8>);
        let parent_id = match (parent_id, v.get(52)) {
            (Some(id), Some(b'-')) => id,
            _ => return Err(E::InvalidParentId),
        };
        let [flags] = v
            .get(53..55)
            .and_then(decode_lc_hex::<1>)
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
        buf.fill(b'-');
        let (version, rest) = buf.split_at_mut(2);
        encode_lc_hex(&[0], version);
        let (trace_id, rest) = rest.split_at_mut(33);
        encode_lc_hex(&self.trace_id, &mut trace_id[1..]);
        let (parent_id, flags) = rest.split_at_mut(17);
        encode_lc_hex(&self.parent_id, &mut parent_id[1..]);
        encode_lc_hex(&[self.flags & Self::KNOWN_FLAGS], &mut flags[1..]);
    }

    /// The version-`00` header value as a `String` (see [`TraceParent::write_to`]).
    pub fn to_header_value(&self) -> String {
        self.to_string()
    }
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

// ---------------------------------------------------------------------------
// tracestate
// ---------------------------------------------------------------------------

/// A validated W3C `tracestate` list, kept in its canonical serialized form
/// (`key=value` members joined by `,`, no optional whitespace), so that
/// [`TraceState::header_value`] is free and cloning is a reference-count
/// increment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TraceState {
    header: Arc<str>,
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

/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`,
/// `keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"` (Level 2 grammar).
fn is_tracestate_key(k: &[u8]) -> bool {
    let [first, rest @ ..] = k else { return false };
    k.len() <= TraceState::MAX_KEY_LEN
        && (first.is_ascii_lowercase() || first.is_ascii_digit())
        && rest.iter().all(|&c| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, b'_' | b'-' | b'*' | b'/' | b'@')
        })
}

/// `value = 0*255(chr) nblk-chr`, `chr = %x20 / nblk-chr`,
/// `nblk-chr = %x21-2B / %x2D-3C / %x3E-7E`.
fn is_tracestate_value(v: &[u8]) -> bool {
    let [.., last] = v else { return false };
    v.len() <= TraceState::MAX_VALUE_LEN
        && *last != b' '
        && v.iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
}

impl Default for TraceState {
    fn default() -> Self {
        Self::new()
    }
}

impl TraceState {
    /// Maximum number of list members; more in a received header discards it.
    pub const MAX_MEMBERS: usize = 32;
    /// Maximum key length.
    pub const MAX_KEY_LEN: usize = 256;
    /// Maximum value length.
    pub const MAX_VALUE_LEN: usize = 256;
    /// Maximum combined length of all received `tracestate` values (joined
    /// with `,`, whitespace included); longer input is discarded unscanned.
    pub const MAX_INPUT_LEN: usize = 8192;

    /// An empty `tracestate`.
    pub fn new() -> Self {
        Self {
            header: Arc::from(""),
        }
    }

    /// Parses a single `tracestate` header value; see [`TraceState::parse_headers`].
    pub fn parse(value: &[u8]) -> Option<Self> {
        Self::parse_headers([value])
    }

    /// Parses all received `tracestate` values, combined in order as if joined
    /// with `,`.
    ///
    /// Returns `None` — discard `tracestate` — when the combined input is longer
    /// than [`TraceState::MAX_INPUT_LEN`], has more than
    /// [`TraceState::MAX_MEMBERS`] list members, has any member that violates
    /// the key/value grammar, or has no member at all. Empty and
    /// whitespace-only members are skipped; OWS around members is trimmed.
    /// Of duplicate keys only the first member is kept (the spec lets vendors
    /// drop duplicates, and the W3C test suite requires the list to be
    /// propagated).
    pub fn parse_headers<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Option<Self> {
        let mut members: [(&[u8], &[u8]); TraceState::MAX_MEMBERS] =
            [(&[], &[]); TraceState::MAX_MEMBERS];
        let mut unique = 0usize;
        let mut received = 0usize;
        let mut total = 0usize;
        for (i, value) in values.into_iter().enumerate() {
            total = total
                .saturating_add(value.len())
                .saturating_add(usize::from(i > 0));
            if total > Self::MAX_INPUT_LEN {
                return None;
            }
            for raw in value.split(|&b| b == b',') {
                let member = trim_ows(raw);
                if member.is_empty() {
                    continue;
                }
                let (key, val) = split_once_byte(member, b'=')?;
                if !is_tracestate_key(key) || !is_tracestate_value(val) {
                    return None;
                }
                received += 1;
                if received > Self::MAX_MEMBERS {
                    return None;
                }
                let seen = members
                    .get(..unique)
                    .is_some_and(|m| m.iter().any(|(k, _)| *k == key));
                if !seen {
                    *members.get_mut(unique)? = (key, val);
                    unique += 1;
                }
            }
        }
        let members = members.get(..unique)?;
        if members.is_empty() {
            return None;
        }
        let len = members.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        let mut out = String::with_capacity(len);
        for (key, val) in members {
            if !out.is_empty() {
                out.push(',');
            }
            // Validated ASCII above, so these conversions cannot fail.
            out.push_str(std::str::from_utf8(key).ok()?);
            out.push('=');
            out.push_str(std::str::from_utf8(val).ok()?);
        }
        Some(Self {
            header: Arc::from(out),
        })
    }

    /// The header value to send (canonical form, no OWS). Empty when there are
    /// no members, in which case the header should not be sent.
    pub fn header_value(&self) -> &str {
        &self.header
    }

    /// Whether there are no list members.
    pub fn is_empty(&self) -> bool {
        self.header.is_empty()
    }

    /// Number of list members.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// The `(key, value)` members, left to right.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.header
            .split(',')
            .filter_map(|member| member.split_once('='))
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Adds or updates `key` as the spec's mutation rules say: the member is
    /// put at the front (left), any previous member with that key is removed,
    /// and right-most members are dropped so there are at most
    /// [`TraceState::MAX_MEMBERS`].
    pub fn insert_front(&mut self, key: &str, value: &str) -> Result<(), EntryError> {
        if !is_tracestate_key(key.as_bytes()) {
            return Err(EntryError::InvalidKey);
        }
        if !is_tracestate_value(value.as_bytes()) {
            return Err(EntryError::InvalidValue);
        }
        let mut out = String::with_capacity(key.len() + value.len() + 2 + self.header.len());
        out.push_str(key);
        out.push('=');
        out.push_str(value);
        for (k, v) in self
            .iter()
            .filter(|(k, _)| *k != key)
            .take(Self::MAX_MEMBERS - 1)
        {
            out.push(',');
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        self.header = Arc::from(out);
        Ok(())
    }

    /// Removes the member with `key`; returns whether one was present.
    pub fn remove(&mut self, key: &str) -> bool {
        if self.get(key).is_none() {
            return false;
        }
        self.retain(|k, _| k != key);
        true
    }

    /// Shrinks the header value to at most `max_len` bytes the way the spec
    /// says truncation must be done: whole members only, members longer than
    /// 128 characters removed first (right-most first), then members removed
    /// from the right.
    pub fn truncate(&mut self, max_len: usize) {
        const LARGE: usize = 128;
        if self.header.len() <= max_len {
            return;
        }
        let members: Vec<&str> = self.header.split(',').collect();
        let mut keep = vec![true; members.len()];
        let mut sum: usize = members.iter().map(|m| m.len()).sum();
        let mut count = members.len();
        let size = |sum: usize, count: usize| sum + count.saturating_sub(1);
        for large_only in [true, false] {
            for (m, k) in members.iter().zip(keep.iter_mut()).rev() {
                if size(sum, count) <= max_len {
                    break;
                }
                if *k && (!large_only || m.len() > LARGE) {
                    *k = false;
                    sum -= m.len();
                    count -= 1;
                }
            }
        }
        let mut kept = keep.iter();
        let new = members
            .iter()
            .filter(|_| kept.next().copied().unwrap_or(false))
            .copied()
            .collect::<Vec<_>>()
            .join(",");
        self.header = Arc::from(new);
    }

    fn retain(&mut self, mut f: impl FnMut(&str, &str) -> bool) {
        let new = self
            .header
            .split(',')
            .filter(|m| m.split_once('=').is_some_and(|(k, v)| f(k, v)))
            .collect::<Vec<_>>()
            .join(",");
        self.header = Arc::from(new);
    }
}

// ---------------------------------------------------------------------------
// baggage
// ---------------------------------------------------------------------------

/// One `baggage` list member.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BaggageMember {
    key: String,
    value: String,
    properties: String,
}

impl BaggageMember {
    /// The key (an RFC 9110 `token`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value, percent-decoded (invalid UTF-8 replaced by U+FFFD).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The member's properties as received, without the leading `;` and with
    /// OWS removed (`p1;p2=v2`); property values are kept percent-encoded.
    /// Empty when there are none.
    pub fn properties(&self) -> &str {
        &self.properties
    }
}

/// A W3C `baggage` list: ordered members, duplicate keys allowed as the spec
/// allows them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Baggage {
    members: Vec<BaggageMember>,
}

/// RFC 9110 `tchar`.
const fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// RFC 9110 `token = 1*tchar`.
fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&c| is_tchar(c))
}

/// `baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`.
const fn is_baggage_octet(c: u8) -> bool {
    matches!(c, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

const fn any_hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes; `%` not followed by two hex digits is kept literally;
/// invalid UTF-8 becomes U+FFFD.
fn percent_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while let [first, tail @ ..] = rest {
        if *first == b'%' {
            if let [hi, lo, after @ ..] = tail {
                if let (Some(hi), Some(lo)) = (any_hex_val(*hi), any_hex_val(*lo)) {
                    out.push((hi << 4) | lo);
                    rest = after;
                    continue;
                }
            }
        }
        out.push(*first);
        rest = tail;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Bytes left as they are by [`percent_encode_into`]: RFC 3986 unreserved and `/`
/// (the same set as the W3C reference implementation's `urllib.parse.quote`).
const fn is_unencoded(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'/')
}

fn percent_encoded_len(s: &str) -> usize {
    s.bytes().map(|c| if is_unencoded(c) { 1 } else { 3 }).sum()
}

fn percent_encode_into(s: &str, out: &mut String) {
    for c in s.bytes() {
        if is_unencoded(c) {
            out.push(char::from(c));
        } else {
            out.push('%');
            out.push(char::from(UC_HEX[usize::from(c >> 4)]));
            out.push(char::from(UC_HEX[usize::from(c & 0x0f)]));
        }
    }
}

/// `list-member = key OWS "=" OWS value *( OWS ";" OWS property )`,
/// `property = key OWS "=" OWS value / key OWS`. `None` if invalid.
fn parse_baggage_member(raw: &[u8]) -> Option<BaggageMember> {
    let member = trim_ows(raw);
    let mut parts = member.split(|&b| b == b';');
    let (key, value) = split_once_byte(parts.next()?, b'=')?;
    let (key, value) = (trim_ows(key), trim_ows(value));
    if !is_token(key) || !value.iter().all(|&c| is_baggage_octet(c)) {
        return None;
    }
    let mut properties = String::new();
    for property in parts {
        let property = trim_ows(property);
        let (pkey, pvalue) = match split_once_byte(property, b'=') {
            Some((k, v)) => (trim_ows(k), Some(trim_ows(v))),
            None => (property, None),
        };
        if !is_token(pkey) {
            return None;
        }
        if !properties.is_empty() {
            properties.push(';');
        }
        properties.push_str(std::str::from_utf8(pkey).ok()?);
        if let Some(pvalue) = pvalue {
            if !pvalue.iter().all(|&c| is_baggage_octet(c)) {
                return None;
            }
            properties.push('=');
            properties.push_str(std::str::from_utf8(pvalue).ok()?);
        }
    }
    Some(BaggageMember {
        key: std::str::from_utf8(key).ok()?.to_owned(),
        value: percent_decode(value),
        properties,
    })
}

impl Baggage {
    /// Maximum number of list members kept when parsing or serializing (the
    /// grammar's `list-member 0*179( OWS "," OWS list-member )`).
    pub const MAX_MEMBERS: usize = 180;
    /// Maximum size in bytes of the combined header: input beyond it is not
    /// read, and serialization never produces more.
    pub const MAX_BYTES: usize = 8192;

    /// An empty baggage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a single `baggage` header value; see [`Baggage::parse_headers`].
    pub fn parse(value: &[u8]) -> Self {
        Self::parse_headers([value])
    }

    /// Parses all received `baggage` values, combined in order as if joined
    /// with `,`. Invalid (and empty) members are skipped. Only the first
    /// [`Baggage::MAX_BYTES`] bytes of the combined input are read, and a
    /// member not wholly inside them is dropped (never kept partially); at most
    /// [`Baggage::MAX_MEMBERS`] members are kept.
    pub fn parse_headers<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut out = Self::default();
        let mut offset = 0usize; // where this value starts in the combined input
        for (i, value) in values.into_iter().enumerate() {
            offset += usize::from(i > 0);
            if offset >= Self::MAX_BYTES {
                break;
            }
            let avail = Self::MAX_BYTES - offset;
            let (chunk, truncated) = match value.get(..avail) {
                Some(chunk) if value.len() > avail => (chunk, value.get(avail) != Some(&b',')),
                _ => (value, false),
            };
            let mut pieces = chunk.split(|&b| b == b',').peekable();
            while let Some(raw) = pieces.next() {
                if truncated && pieces.peek().is_none() {
                    break; // cut by the byte limit
                }
                if out.members.len() >= Self::MAX_MEMBERS {
                    return out;
                }
                if let Some(member) = parse_baggage_member(raw) {
                    out.members.push(member);
                }
            }
            if value.len() > avail {
                break;
            }
            offset += value.len();
        }
        out
    }

    /// The value of the first member with `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.key == key)
            .map(|m| m.value.as_str())
    }

    /// The members in order.
    pub fn iter(&self) -> std::slice::Iter<'_, BaggageMember> {
        self.members.iter()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Sets `key` to `value` (any string; it is percent-encoded when
    /// serialized), replacing every member with that key and appending the new
    /// member at the end without properties.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), EntryError> {
        if !is_token(key.as_bytes()) {
            return Err(EntryError::InvalidKey);
        }
        self.members.retain(|m| m.key != key);
        if self.members.len() >= Self::MAX_MEMBERS {
            return Err(EntryError::TooManyMembers);
        }
        self.members.push(BaggageMember {
            key: key.to_owned(),
            value: value.to_owned(),
            properties: String::new(),
        });
        Ok(())
    }

    /// Removes every member with `key`; returns whether one was present.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.members.len();
        self.members.retain(|m| m.key != key);
        self.members.len() != before
    }

    /// The header value to send: members in order, values percent-encoded.
    /// Whole members that would take it past [`Baggage::MAX_BYTES`] or
    /// [`Baggage::MAX_MEMBERS`] are left out. Empty when there is nothing to
    /// send, in which case the header should not be sent.
    pub fn header_value(&self) -> String {
        let mut out = String::new();
        let mut count = 0usize;
        for m in &self.members {
            if count >= Self::MAX_MEMBERS {
                break;
            }
            let props = if m.properties.is_empty() {
                0
            } else {
                m.properties.len() + 1
            };
            let len = m.key.len() + 1 + percent_encoded_len(&m.value) + props;
            let sep = usize::from(!out.is_empty());
            if out.len() + sep + len > Self::MAX_BYTES {
                continue;
            }
            if sep == 1 {
                out.push(',');
            }
            out.push_str(&m.key);
            out.push('=');
            percent_encode_into(&m.value, &mut out);
            if !m.properties.is_empty() {
                out.push(';');
                out.push_str(&m.properties);
            }
            count += 1;
        }
        out
    }
}

impl<'a> IntoIterator for &'a Baggage {
    type Item = &'a BaggageMember;
    type IntoIter = std::slice::Iter<'a, BaggageMember>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

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

    const TID: &str = "12345678901234567890123456789012";
    const PID: &str = "1234567890123456";
    const VALID: &str = "00-12345678901234567890123456789012-1234567890123456-01";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
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

    fn s(v: &str) -> String {
        v.to_owned()
    }

    /// (case, received tracestate values, expected canonical value or None = discarded)
    fn tracestate_cases() -> Vec<(&'static str, Vec<String>, Option<String>)> {
        let key_without_vendor = format!("{}0123456789_-*/", ('a'..='z').collect::<String>());
        let key_with_vendor = format!("{key_without_vendor}@a-z0-9_-*/");
        let value: String = (0x20u8..=0x7e)
            .filter(|c| *c != b',' && *c != b'=')
            .map(char::from)
            .collect();
        let bar = |r: std::ops::RangeInclusive<u32>| {
            r.map(|i| format!("bar{i:02}={i:02}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let all32 = bar(1..=32);
        let z256 = "z".repeat(256);
        let t241 = format!("{}@{}", "t".repeat(241), "v".repeat(14));
        let t242 = format!("{}@v", "t".repeat(242));
        let t1 = format!("t@{}", "v".repeat(15));
        #[rustfmt::skip]
        let cases = vec![
            ("spec: single tracing system", vec![s("rojo=00f067aa0ba902b7")], Some(s("rojo=00f067aa0ba902b7"))),
            ("spec: multiple tracing systems", vec![s("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")],
                Some(s("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"))),
            ("test_tracestate_included_traceparent_included", vec![s("foo=1,bar=2")], Some(s("foo=1,bar=2"))),
            ("test_tracestate_header_name_valid_casing #1-3", vec![s("foo=1")], Some(s("foo=1"))),
            ("test_tracestate_empty_header #1", vec![s("")], None),
            ("test_tracestate_empty_header #2", vec![s("foo=1"), s("")], Some(s("foo=1"))),
            ("test_tracestate_empty_header #3", vec![s(""), s("foo=1")], Some(s("foo=1"))),
            ("test_tracestate_multiple_headers_different_keys", vec![s("foo=1,bar=2"), s("rojo=1,congo=2"), s("baz=3")],
                Some(s("foo=1,bar=2,rojo=1,congo=2,baz=3"))),
            ("test_tracestate_duplicated_keys #1", vec![s("foo=1,foo=1")], Some(s("foo=1"))),
            ("test_tracestate_duplicated_keys #2", vec![s("foo=1,foo=2")], Some(s("foo=1"))),
            ("test_tracestate_duplicated_keys #3", vec![s("foo=1"), s("foo=1")], Some(s("foo=1"))),
            ("test_tracestate_duplicated_keys #4", vec![s("foo=1"), s("foo=2")], Some(s("foo=1"))),
            ("test_tracestate_all_allowed_characters #1", vec![format!("{key_without_vendor}={value}")],
                Some(format!("{key_without_vendor}={value}"))),
            ("test_tracestate_all_allowed_characters #2", vec![format!("{key_with_vendor}={value}")],
                Some(format!("{key_with_vendor}={value}"))),
            ("test_tracestate_ows_handling #1", vec![s("foo=1 \t , \t bar=2, \t baz=3")], Some(s("foo=1,bar=2,baz=3"))),
            ("test_tracestate_ows_handling #2", vec![s("foo=1\t \t,\t \tbar=2,\t \tbaz=3")], Some(s("foo=1,bar=2,baz=3"))),
            ("test_tracestate_ows_handling #3", vec![s(" foo=1")], Some(s("foo=1"))),
            ("test_tracestate_ows_handling #4", vec![s("\tfoo=1")], Some(s("foo=1"))),
            ("test_tracestate_ows_handling #5", vec![s("foo=1 ")], Some(s("foo=1"))),
            ("test_tracestate_ows_handling #6", vec![s("foo=1\t")], Some(s("foo=1"))),
            ("test_tracestate_ows_handling #7", vec![s("\t foo=1 \t")], Some(s("foo=1"))),
            ("test_tracestate_key_illegal_characters #1", vec![s("foo =1")], None),
            ("test_tracestate_key_illegal_characters #2", vec![s("FOO=1")], None),
            ("test_tracestate_key_illegal_characters #3", vec![s("foo.bar=1")], None),
            ("test_tracestate_key_illegal_vendor_format #1", vec![s("foo@=1,bar=2")], Some(s("foo@=1,bar=2"))),
            ("test_tracestate_key_illegal_vendor_format #2", vec![s("@foo=1,bar=2")], None),
            ("test_tracestate_key_illegal_vendor_format #3", vec![s("foo@@bar=1,bar=2")], Some(s("foo@@bar=1,bar=2"))),
            ("test_tracestate_key_illegal_vendor_format #4", vec![s("foo@bar@baz=1,bar=2")], Some(s("foo@bar@baz=1,bar=2"))),
            ("test_tracestate_member_count_limit #1", vec![bar(1..=10), bar(11..=20), bar(21..=30), bar(31..=32)],
                Some(all32.clone())),
            ("test_tracestate_member_count_limit #2", vec![bar(1..=10), bar(11..=20), bar(21..=30), bar(31..=33)], None),
            ("test_tracestate_key_length_limit #1", vec![s("foo=1"), format!("{z256}=1")], Some(format!("foo=1,{z256}=1"))),
            ("test_tracestate_key_length_limit #2", vec![s("foo=1"), format!("z{z256}=1")], None),
            ("test_tracestate_key_length_limit #3", vec![s("foo=1"), format!("{t241}=1")], Some(format!("foo=1,{t241}=1"))),
            ("test_tracestate_key_length_limit #4", vec![s("foo=1"), format!("{t242}=1")], Some(format!("foo=1,{t242}=1"))),
            ("test_tracestate_key_length_limit #5", vec![s("foo=1"), format!("{t1}=1")], Some(format!("foo=1,{t1}=1"))),
            ("test_tracestate_value_illegal_characters #1", vec![s("foo=bar=baz")], None),
            ("test_tracestate_value_illegal_characters #2", vec![s("foo=,bar=3")], None),
            ("spec: key may start with a digit", vec![s("0foo=1")], Some(s("0foo=1"))),
            ("spec: key must not start with '_'", vec![s("_foo=1")], None),
            ("spec: value of 256 chars", vec![format!("foo={}", "v".repeat(256))], Some(format!("foo={}", "v".repeat(256)))),
            ("spec: value of 257 chars", vec![format!("foo={}", "v".repeat(257))], None),
            ("spec: leading spaces are part of the value", vec![s("foo=  1 ,bar=2")], Some(s("foo=  1,bar=2"))),
            ("spec: value must not contain a tab", vec![s("foo=a\tb")], None),
            ("spec: value must not be spaces only", vec![s("foo=   ")], None),
            ("spec: member without '='", vec![s("foo,bar=2")], None),
            ("spec: member without key", vec![s("=1")], None),
            ("spec: empty and OWS-only members are skipped", vec![s(",, \t ,foo=1,,"), s(" "), s(",bar=2,")], Some(s("foo=1,bar=2"))),
            ("spec: OWS-only headers only", vec![s(" , "), s("\t")], None),
            ("non-ASCII value", vec![s("foo=é")], None),
            ("32 members plus empty ones", vec![format!(",{all32},,")], Some(all32.clone())),
        ];
        cases
    }

    #[test]
    fn tracestate_table() {
        for (case, headers, expect) in tracestate_cases() {
            let got = TraceState::parse_headers(headers.iter().map(|h| h.as_bytes()));
            assert_eq!(
                got.as_ref().map(TraceState::header_value),
                expect.as_deref(),
                "case {case}: {headers:?}"
            );
            if let Some(ts) = got {
                // Canonical output re-parses to itself.
                assert_eq!(
                    TraceState::parse(ts.header_value().as_bytes()),
                    Some(ts.clone())
                );
                assert!(ts.len() <= TraceState::MAX_MEMBERS);
            }
        }
    }

    #[test]
    fn tracestate_accessors() {
        // test_tracestate_ows_handling asserts per-key values.
        let ts = TraceState::parse(b"foo=1 \t , \t bar=2, \t baz=3").unwrap();
        assert_eq!(ts.get("foo"), Some("1"));
        assert_eq!(ts.get("bar"), Some("2"));
        assert_eq!(ts.get("baz"), Some("3"));
        assert_eq!(ts.get("qux"), None);
        assert_eq!(ts.len(), 3);
        assert_eq!(
            ts.iter().collect::<Vec<_>>(),
            [("foo", "1"), ("bar", "2"), ("baz", "3")]
        );
        let ts = TraceState::parse(b"foo=  1 ").unwrap();
        assert_eq!(ts.get("foo"), Some("  1"));
        let empty = TraceState::default();
        assert!(empty.is_empty() && empty.iter().count() == 0 && empty.header_value().is_empty());
    }

    #[test]
    fn tracestate_mutation() {
        // spec: "Relationship Between the Headers" walk-through.
        let mut ts = TraceState::parse(b"congo=t61rcWkgMzE").unwrap();
        ts.insert_front("rojo", "00f067aa0ba902b7").unwrap();
        assert_eq!(ts.header_value(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
        ts.insert_front("congo", "ucfJifl5GOE").unwrap();
        assert_eq!(ts.header_value(), "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7");
        // spec: adding to a full list drops the right-most member.
        let full: Vec<String> = (1..=32).map(|i| format!("k{i}={i}")).collect();
        let mut ts = TraceState::parse(full.join(",").as_bytes()).unwrap();
        ts.insert_front("new", "x").unwrap();
        assert_eq!(ts.len(), 32);
        assert_eq!(ts.iter().next(), Some(("new", "x")));
        assert_eq!(ts.get("k32"), None);
        assert_eq!(ts.get("k31"), Some("31"));
        // Updating a key of a full list keeps every other member.
        let mut ts = TraceState::parse(full.join(",").as_bytes()).unwrap();
        ts.insert_front("k20", "y").unwrap();
        assert_eq!(ts.len(), 32);
        assert_eq!(ts.iter().next(), Some(("k20", "y")));
        assert_eq!(ts.get("k32"), Some("32"));
        // Invalid entries are refused.
        assert_eq!(ts.insert_front("FOO", "1"), Err(EntryError::InvalidKey));
        assert_eq!(ts.insert_front("foo", ""), Err(EntryError::InvalidValue));
        assert_eq!(ts.insert_front("foo", "a,b"), Err(EntryError::InvalidValue));
        assert_eq!(ts.insert_front("foo", "a "), Err(EntryError::InvalidValue));
        assert_eq!(ts.insert_front("foo", "a=b"), Err(EntryError::InvalidValue));
        // remove
        assert!(ts.remove("k20"));
        assert!(!ts.remove("k20"));
        assert_eq!(ts.len(), 31);
        let mut ts = TraceState::default();
        ts.insert_front("a", "1").unwrap();
        assert_eq!(ts.header_value(), "a=1");
        assert!(ts.remove("a") && ts.is_empty());
    }

    #[test]
    fn tracestate_truncation() {
        // spec "tracestate Limits": entries > 128 chars go first, then from the end.
        let big = format!("big={}", "b".repeat(200));
        let input = format!("a=1,{big},c=3,d=4");
        let mut ts = TraceState::parse(input.as_bytes()).unwrap();
        ts.truncate(512);
        assert_eq!(ts.header_value(), input);
        ts.truncate(100);
        assert_eq!(ts.header_value(), "a=1,c=3,d=4");
        ts.truncate(7);
        assert_eq!(ts.header_value(), "a=1,c=3");
        ts.truncate(0);
        assert!(ts.is_empty());
    }

    #[test]
    fn tracestate_bounds() {
        // Exactly MAX_INPUT_LEN bytes (OWS included) is accepted, one more is not.
        let at_limit = format!("foo=1{}", " ".repeat(TraceState::MAX_INPUT_LEN - 5));
        assert!(TraceState::parse(at_limit.as_bytes()).is_some());
        assert_eq!(TraceState::parse(format!("{at_limit} ").as_bytes()), None);
        // Joining commas count as well.
        let pad = " ".repeat(TraceState::MAX_INPUT_LEN - 4);
        assert!(TraceState::parse_headers([pad.as_bytes(), b"a=1"]).is_some());
        assert!(TraceState::parse_headers([pad.as_bytes(), b"a=12"]).is_none());
        // Huge inputs are discarded without being scanned.
        assert_eq!(TraceState::parse(&vec![b'a'; 1 << 20]), None);
        assert_eq!(
            TraceState::parse_headers(std::iter::repeat_n(&b""[..], 1 << 20)),
            None
        );
        let ok = std::iter::repeat_n(&b" "[..], 100).chain([&b"a=1"[..]]);
        assert_eq!(TraceState::parse_headers(ok).unwrap().header_value(), "a=1");
    }

    /// (case, received baggage values, expected members (key, decoded value, properties))
    type BaggageCase = (
        &'static str,
        Vec<&'static str>,
        Vec<(&'static str, &'static str, &'static str)>,
    );

    const PY_QUOTED: &str = "%09%20%22%27%3B%3Dasdf%21%40%23%24%25%5E%26%2A%28%29";
    const PY_RAW: &str = "\t \"';=asdf!@#$%^&*()";

    #[test]
    fn baggage_table() {
        #[rustfmt::skip]
        let cases: Vec<BaggageCase> = vec![
            ("spec: example with properties",
                vec!["key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue"],
                vec![("key1", "value1", "property1;property2"), ("key2", "value2", ""),
                     ("key3", "value3", "propertyKey=propertyValue")]),
            ("spec: single header", vec!["userId=alice,serverNode=DF%2028,isProduction=false"],
                vec![("userId", "alice", ""), ("serverNode", "DF 28", ""), ("isProduction", "false", "")]),
            ("spec: non-ASCII percent-encoded", vec!["userId=Am%C3%A9lie,serverNode=DF%2028,isProduction=false"],
                vec![("userId", "Amélie", ""), ("serverNode", "DF 28", ""), ("isProduction", "false", "")]),
            ("spec: multiple headers", vec!["userId=alice", "serverNode=DF%2028,isProduction=false"],
                vec![("userId", "alice", ""), ("serverNode", "DF 28", ""), ("isProduction", "false", "")]),
            ("spec: spaces around names and values", vec!["userId =   alice", "serverNode = DF%2028, isProduction = false"],
                vec![("userId", "alice", ""), ("serverNode", "DF 28", ""), ("isProduction", "false", "")]),
            ("BaggageTest.test_parse_simple, BaggageEntryTest.test_parse_simple", vec!["SomeKey=SomeValue"],
                vec![("SomeKey", "SomeValue", "")]),
            ("BaggageTest.test_parse_multiple", vec!["SomeKey=SomeValue;SomeProp,SomeKey2=SomeValue2;ValueProp=PropVal"],
                vec![("SomeKey", "SomeValue", "SomeProp"), ("SomeKey2", "SomeValue2", "ValueProp=PropVal")]),
            ("BaggageTest.test_parse_multiple_ows",
                vec!["SomeKey \t = \t SomeValue \t ; \t SomeProp \t , \t SomeKey2 \t = \t SomeValue2 \t ; \t ValueProp \t = \t PropVal"],
                vec![("SomeKey", "SomeValue", "SomeProp"), ("SomeKey2", "SomeValue2", "ValueProp=PropVal")]),
            ("BaggageTest.test_parse_multiple_kv_property",
                vec!["SomeKey=SomeValue;SomePropKey=SomePropValue,SomeKey2=SomeValue2;SomePropKey2=SomePropValue2"],
                vec![("SomeKey", "SomeValue", "SomePropKey=SomePropValue"), ("SomeKey2", "SomeValue2", "SomePropKey2=SomePropValue2")]),
            ("BaggageTest.test_parse_multiple_kv_property_ows",
                vec!["SomeKey \t = \t SomeValue \t ; \t SomePropKey=SomePropValue \t , \t SomeKey2 \t = \t SomeValue2 \t ; \t SomePropKey2 \t = \t SomePropValue2"],
                vec![("SomeKey", "SomeValue", "SomePropKey=SomePropValue"), ("SomeKey2", "SomeValue2", "SomePropKey2=SomePropValue2")]),
            ("BaggageEntryTest.test_parse_multiple_equals", vec!["SomeKey=SomeValue=equals"],
                vec![("SomeKey", "SomeValue=equals", "")]),
            ("BaggageEntryTest.test_parse_percent_encoded",
                vec!["SomeKey=%09%20%22%27%3B%3Dasdf%21%40%23%24%25%5E%26%2A%28%29"], vec![("SomeKey", PY_RAW, "")]),
            ("BaggageEntryTest.test_parse_property", vec!["SomeKey=SomeValue;SomeProp"],
                vec![("SomeKey", "SomeValue", "SomeProp")]),
            ("BaggageEntryTest.test_parse_multi_property", vec!["SomeKey=SomeValue;SomeProp;SecondProp=PropValue"],
                vec![("SomeKey", "SomeValue", "SomeProp;SecondProp=PropValue")]),
            ("BaggageEntryTest.test_parse_multiple_properties_same_name",
                vec!["SomeKey=SomeValue;SomeProp;SomeProp=PropValue;SomeProp=AnotherPropValue"],
                vec![("SomeKey", "SomeValue", "SomeProp;SomeProp=PropValue;SomeProp=AnotherPropValue")]),
            ("BaggageEntryTest.test_parse_kv_property", vec!["SomeKey=SomeValue;SomePropKey=SomePropValue"],
                vec![("SomeKey", "SomeValue", "SomePropKey=SomePropValue")]),
            ("BaggageEntryTest.test_parse_simple_ows", vec!["SomeKey \t = \t SomeValue \t "],
                vec![("SomeKey", "SomeValue", "")]),
            ("BaggageEntryTest.test_parse_percent_encoded_ows",
                vec!["SomeKey \t = \t %09%20%22%27%3B%3Dasdf%21%40%23%24%25%5E%26%2A%28%29 \t "], vec![("SomeKey", PY_RAW, "")]),
            ("BaggageEntryTest.test_parse_property_ows", vec!["SomeKey \t = \t SomeValue \t ; \t SomeProp"],
                vec![("SomeKey", "SomeValue", "SomeProp")]),
            ("BaggageEntryTest.test_parse_multi_property_ows",
                vec!["SomeKey \t = \t SomeValue \t ; \t SomeProp \t ; \t SecondProp \t = \t PropValue"],
                vec![("SomeKey", "SomeValue", "SomeProp;SecondProp=PropValue")]),
            ("BaggageEntryTest.test_parse_kv_property_ows",
                vec!["SomeKey \t = \t SomeValue \t ; \t SomePropKey \t = \t SomePropValue"],
                vec![("SomeKey", "SomeValue", "SomePropKey=SomePropValue")]),
            ("BaggageEntryTest.test_parse_percent_encoded_property (kept encoded)",
                vec!["SomeKey=SomeValue;SomePropKey=%09%20%22%27%3B%3Dasdf%21%40%23%24%25%5E%26%2A%28%29"],
                vec![("SomeKey", "SomeValue", "SomePropKey=%09%20%22%27%3B%3Dasdf%21%40%23%24%25%5E%26%2A%28%29")]),
            ("BaggageEntryTest.test_parse_property_without_value_no_percent_decoding",
                vec!["SomeKey=SomeValue;ValueProp%20%09%20%3D%20%09%20PropVal"],
                vec![("SomeKey", "SomeValue", "ValueProp%20%09%20%3D%20%09%20PropVal")]),
            ("spec: empty value", vec!["k="], vec![("k", "", "")]),
            ("spec: duplicate keys kept in order", vec!["k=1,k=2"], vec![("k", "1", ""), ("k", "2", "")]),
            ("invalid members skipped", vec!["a=1,b c=2,d=\"x\",e=3"], vec![("a", "1", ""), ("e", "3", "")]),
            ("no '=', empty key, empty property, bad property skipped",
                vec!["noequals,=v,k=v;,p=1;a b,q=1;x=\"y\",ok=1"], vec![("ok", "1", "")]),
            ("space / backslash / non-ASCII in value skipped", vec!["a=x y,b=x\\y,c=é,d=4"], vec![("d", "4", "")]),
            ("empty members skipped", vec![",, \t ,a=1,,", "", " ", ",b=2,"], vec![("a", "1", ""), ("b", "2", "")]),
            ("spec: invalid UTF-8 after decoding becomes U+FFFD", vec!["k=%FF%FEa"], vec![("k", "\u{FFFD}\u{FFFD}a", "")]),
            ("stray '%' kept literally", vec!["k=100%,j=%zz%4"], vec![("k", "100%", ""), ("j", "%zz%4", "")]),
            ("lowercase percent-escapes decoded", vec!["k=%c3%a9"], vec![("k", "é", "")]),
        ];
        for (case, headers, expect) in cases {
            let got = Baggage::parse_headers(headers.iter().map(|h| h.as_bytes()));
            let got: Vec<_> = got
                .iter()
                .map(|m| (m.key(), m.value(), m.properties()))
                .collect();
            assert_eq!(got, expect, "case {case}: {headers:?}");
        }
    }

    #[test]
    fn baggage_serialize() {
        // BaggageEntryTest.test_parse_percent_encoded (to_string part).
        let mut b = Baggage::new();
        b.insert("SomeKey", PY_RAW).unwrap();
        assert_eq!(b.header_value(), format!("SomeKey={PY_QUOTED}"));
        // BaggageEntryTest.test_parse_percent_encoded_property (to_string part).
        let input = format!("SomeKey=SomeValue;SomePropKey={PY_QUOTED}");
        assert_eq!(Baggage::parse(input.as_bytes()).header_value(), input);
        // spec examples.
        let b = Baggage::parse(b"userId =   alice, serverNode = DF%2028,x=Am%C3%A9lie");
        assert_eq!(
            b.header_value(),
            "userId=alice,serverNode=DF%2028,x=Am%C3%A9lie"
        );
        assert_eq!(b.get("serverNode"), Some("DF 28"));
        assert_eq!(b.get("missing"), None);
        assert_eq!(Baggage::parse(b"k=100%").header_value(), "k=100%25");
        // insert / remove / get
        let mut b = Baggage::parse(b"k=1,j=2,k=3");
        assert_eq!(b.get("k"), Some("1"));
        b.insert("k", "new value").unwrap();
        assert_eq!(b.header_value(), "j=2,k=new%20value");
        assert_eq!(b.insert("bad key", "x"), Err(EntryError::InvalidKey));
        assert_eq!(b.insert("", "x"), Err(EntryError::InvalidKey));
        assert!(b.remove("j") && !b.remove("j"));
        assert_eq!(b.len(), 1);
        assert!(Baggage::default().header_value().is_empty());
        assert_eq!((&b).into_iter().count(), 1);
    }

    #[test]
    fn baggage_limits() {
        // LimitsTest.test_serialize_at_least_64
        let mut b = Baggage::new();
        for i in 0..64 {
            b.insert(&format!("key{i}"), "value").unwrap();
        }
        assert_eq!(b.header_value().split(',').count(), 64);
        assert_eq!(Baggage::parse(b.header_value().as_bytes()).len(), 64);
        // LimitsTest.test_serialize_long_entry: 8192 bytes exactly.
        let mut b = Baggage::new();
        b.insert("a", &"0123456789".repeat(819)).unwrap();
        let h = b.header_value();
        assert_eq!(h.len(), 8192);
        assert_eq!(Baggage::parse(h.as_bytes()), b);
        // ...and one byte more is not serialized.
        b.insert("a", &"0123456789".repeat(820)[..8191]).unwrap();
        assert!(b.header_value().is_empty());
        // LimitsTest.test_serialize_many_entries: 512 members of 15 bytes;
        // at most MAX_MEMBERS are kept (parse) and sent (serialize).
        let many: Vec<String> = (0..512).map(|i| format!("{i:03}=0123456789a")).collect();
        let parsed = Baggage::parse(many.join(",").as_bytes());
        assert_eq!(parsed.len(), Baggage::MAX_MEMBERS);
        assert_eq!(parsed.iter().last().map(BaggageMember::key), Some("179"));
        let mut b = Baggage::new();
        for i in 0..Baggage::MAX_MEMBERS {
            b.insert(&format!("{i:03}"), "0123456789a").unwrap();
        }
        assert_eq!(b.insert("one-more", "x"), Err(EntryError::TooManyMembers));
        assert_eq!(b.header_value().split(',').count(), Baggage::MAX_MEMBERS);
        // Members are kept only if wholly inside the first MAX_BYTES bytes of
        // the combined input (joining commas count).
        let a = format!("a={}", "x".repeat(8000)); // 8002 bytes
        let second = format!("b=1,c={}", "y".repeat(500));
        let b = Baggage::parse_headers([a.as_bytes(), second.as_bytes()]);
        assert_eq!(
            b.iter().map(BaggageMember::key).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let fits = format!("a={},b=1", "x".repeat(8186)); // exactly 8192
        assert_eq!(Baggage::parse(fits.as_bytes()).len(), 2);
        let over = format!("a={},b=12", "x".repeat(8186));
        assert_eq!(Baggage::parse(over.as_bytes()).len(), 1);
        let cut_at_comma = format!("a={},b=1", "x".repeat(8190));
        assert_eq!(Baggage::parse(cut_at_comma.as_bytes()).len(), 1);
        // Serialization drops whole members that would overflow after encoding.
        let mut b = Baggage::new();
        b.insert("a", &" ".repeat(2000)).unwrap(); // 6002 bytes encoded
        b.insert("b", &" ".repeat(1000)).unwrap(); // 3002 bytes encoded
        b.insert("c", "1").unwrap();
        assert_eq!(
            Baggage::parse(b.header_value().as_bytes())
                .iter()
                .map(BaggageMember::key)
                .collect::<Vec<_>>(),
            ["a", "c"]
        );
        // Huge inputs cost bounded work and memory.
        assert_eq!(Baggage::parse(&vec![b'a'; 1 << 20]).len(), 0);
        assert_eq!(
            Baggage::parse("a=1,".repeat(1 << 18).as_bytes()).len(),
            Baggage::MAX_MEMBERS
        );
        let empties = std::iter::repeat_n(&b""[..], 1 << 20);
        assert_eq!(Baggage::parse_headers(empties).len(), 0);
    }

    // ---- property tests ----

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

        #[test]
        fn tracestate_roundtrip(
            members in prop::collection::btree_map(
                "[a-z0-9][a-z0-9_*/@-]{0,15}",
                "[\\x20-\\x2B\\x2D-\\x3C\\x3E-\\x7E]{0,15}[\\x21-\\x2B\\x2D-\\x3C\\x3E-\\x7E]",
                1..=32,
            ),
            sep in "[ \t]{0,2},[ \t]{0,2}(,[ \t]{0,2})?",
            split in any::<prop::sample::Index>(),
        ) {
            let members: Vec<String> = members.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let canonical = members.join(",");
            let at = split.index(members.len() + 1);
            let (first, second) = members.split_at(at);
            let (first, second) = (first.join(&sep), second.join(&sep));
            let ts = TraceState::parse_headers([first.as_bytes(), second.as_bytes()]).unwrap();
            prop_assert_eq!(ts.header_value(), canonical.as_str());
            prop_assert_eq!(ts.len(), members.len());
        }

        #[test]
        fn baggage_roundtrip(
            entries in prop::collection::vec(
                (
                    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}",
                    prop::collection::vec(any::<char>(), 0..10).prop_map(String::from_iter),
                ),
                0..20,
            ),
        ) {
            let mut b = Baggage::new();
            for (k, v) in &entries {
                b.insert(k, v).unwrap();
            }
            let h = b.header_value();
            let parsed = Baggage::parse(h.as_bytes());
            prop_assert_eq!(&parsed, &b);
            prop_assert_eq!(parsed.header_value(), h);
            for (k, _) in &entries {
                let last = entries.iter().rev().find(|(k2, _)| k2 == k).map(|(_, v)| v.as_str());
                prop_assert_eq!(parsed.get(k), last);
            }
        }
    }
}
