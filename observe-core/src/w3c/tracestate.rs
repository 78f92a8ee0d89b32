//! `tracestate`: vendors' entries that travel with the trace, validated,
//! combined across repeated headers and kept in canonical form.

use super::{split_once_byte, trim_ows, EntryError};
use std::sync::Arc;

/// A validated W3C `tracestate` list, kept in its canonical serialized form
/// (`key=value` members joined by `,`, no optional whitespace), so that
/// [`TraceState::header_value`] is free and cloning is a reference-count
/// increment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TraceState {
    header: Arc<str>,
}

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

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
    }
}
