//! `baggage`: application key-values that travel with a request
//! (`synthetic=true` marks synthetic traffic), percent-decoded, bounded in
//! members and bytes.

use super::{split_once_byte, trim_ows, EntryError};
use crate::hex::percent_decode;

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

/// Bytes left as they are by percent-encoding: RFC 3986 unreserved and `/`
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
            out.push(char::from(crate::hex::UPPER[usize::from(c >> 4)]));
            out.push(char::from(crate::hex::UPPER[usize::from(c & 0x0f)]));
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
    use super::*;
    use proptest::prelude::*;

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

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
