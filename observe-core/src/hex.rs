//! Hexadecimal digits: the one encoder and decoder behind trace and span
//! ids, `traceparent`, pseudonyms, OTLP/JSON ids, exemplars and escapes.

/// Lowercase digits (W3C `HEXDIGLC`, what every id is written in).
pub(crate) const LOWER: &[u8; 16] = b"0123456789abcdef";
/// Uppercase digits (percent-encoding, as RFC 3986 recommends).
pub(crate) const UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// The two lowercase digits of `b`.
#[inline]
pub(crate) const fn byte(b: u8) -> [u8; 2] {
    [LOWER[(b >> 4) as usize], LOWER[(b & 0xf) as usize]]
}

/// Writes `src` as lowercase hex into `dst`, which is `2 * src.len()` long
/// (a shorter `dst` gets the digits that fit).
#[inline]
pub(crate) fn encode_into(src: &[u8], dst: &mut [u8]) {
    for (pair, &b) in dst.chunks_exact_mut(2).zip(src) {
        pair.copy_from_slice(&byte(b));
    }
}

/// Appends `bytes` as lowercase hex.
#[inline]
pub(crate) fn push(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.extend_from_slice(&byte(b));
    }
}

/// Appends `bytes` as lowercase hex to a string.
#[inline]
pub(crate) fn push_str(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        let [hi, lo] = byte(b);
        out.push(char::from(hi));
        out.push(char::from(lo));
    }
}

/// `bytes` as a lowercase hex string.
pub(crate) fn string(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|&b| byte(b))
        .map(char::from)
        .collect()
}

/// `trace_id` (32 digits) then `span_id` (16), lowercase.
#[inline]
pub(crate) fn ids(trace_id: u128, span_id: u64) -> [u8; 48] {
    let mut out = [0u8; 48];
    encode_into(&trace_id.to_be_bytes(), &mut out[..32]);
    encode_into(&span_id.to_be_bytes(), &mut out[32..]);
    out
}

/// The value of a hex digit of either case.
#[inline]
pub(crate) const fn value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The value of a lowercase hex digit (`HEXDIGLC`); uppercase is rejected.
#[inline]
pub(crate) const fn lower_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Decodes exactly `2 * N` lowercase hex digits into `N` bytes.
#[inline]
pub(crate) fn decode_lower<const N: usize>(src: &[u8]) -> Option<[u8; N]> {
    if src.len() != 2 * N {
        return None;
    }
    // One table lookup per digit and one check at the end: ids are decoded
    // on every request that carries a `traceparent`.
    let mut out = [0u8; N];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(src.chunks_exact(2)) {
        let (hi, lo) = (LOWER_VALUE[pair[0] as usize], LOWER_VALUE[pair[1] as usize]);
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0xf);
    }
    (bad & 0xf0 == 0).then_some(out)
}

/// [`lower_value`] of every byte, `0xff` for those that are not digits.
static LOWER_VALUE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut b = 0;
    while b < 256 {
        if let Some(v) = lower_value(b as u8) {
            t[b] = v;
        }
        b += 1;
    }
    t
};

/// Decodes `%XX` escapes (either case); a `%` not followed by two hex
/// digits is kept as is, and invalid UTF-8 becomes U+FFFD.
pub(crate) fn percent_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while let [first, tail @ ..] = rest {
        if *first == b'%' {
            if let [hi, lo, after @ ..] = tail {
                if let (Some(hi), Some(lo)) = (value(*hi), value(*lo)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes_lowercase() {
        assert_eq!(string(&[0x00, 0x9f, 0xab]), "009fab");
        let mut v = Vec::new();
        push(&mut v, &[0xde, 0xad]);
        assert_eq!(v, b"dead");
        let ids = ids(
            0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
            0x00f0_67aa_0ba9_02b7,
        );
        assert_eq!(&ids, b"4bf92f3577b34da6a3ce929d0e0e473600f067aa0ba902b7");
        assert_eq!(
            (value(b'F'), value(b'f'), value(b'g')),
            (Some(15), Some(15), None)
        );
        assert_eq!(decode_lower::<2>(b"dead"), Some([0xde, 0xad]));
        assert_eq!(decode_lower::<2>(b"DEAD"), None);
        assert_eq!(decode_lower::<2>(b"dea"), None);
        assert_eq!(percent_decode(b"a%20b%2c%zz100%"), "a b,%zz100%");
    }

    #[test]
    fn decodes_every_digit_pair_and_rejects_every_other_byte() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let want = match (lower_value(a), lower_value(b)) {
                    (Some(hi), Some(lo)) => Some([(hi << 4) | lo]),
                    _ => None,
                };
                assert_eq!(decode_lower::<1>(&[a, b]), want, "{a:#04x} {b:#04x}");
            }
        }
    }
}
