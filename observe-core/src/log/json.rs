//! Low-level JSON writing into a byte buffer: string escaping with a value
//! cap, and an `fmt::Write` adapter for `Debug`/`Display` values.
//!
//! Everything here appends to a `Vec<u8>` that is reused across lines, so a
//! warm line costs no allocation.

use std::fmt::{self, Write as _};

/// Marker appended to a value cut at the configured cap.
pub(crate) const TRUNCATED_MARKER: &str = "…[truncated]";

/// For each byte: 0 = copy as is, otherwise the escape to write.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[0x08] = b'b';
    t[0x0c] = b'f';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[0x7f] = b'u';
    t
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `w` may need escaping (< 0x20, `"`, `\\`, 0x7f).
/// May answer `true` spuriously, never `false` wrongly.
#[inline]
fn may_need_escape(w: u64) -> bool {
    let lt = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * b'"' as u64);
    let bs = w ^ (ONES * b'\\' as u64);
    let del = w ^ (ONES * 0x7f);
    let zero = |x: u64| x.wrapping_sub(ONES) & !x;
    (lt | zero(q) | zero(bs) | zero(del)) & HIGH != 0
}

/// Appends `s` escaped (without quotes).
#[inline]
pub(crate) fn escape_into(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Fast path: whole 8-byte words that need no escaping.
    let mut clean = 0;
    while clean + 8 <= bytes.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[clean..clean + 8]);
        if may_need_escape(u64::from_le_bytes(w)) {
            break;
        }
        clean += 8;
    }
    while clean < bytes.len() && ESCAPE[bytes[clean] as usize] == 0 {
        clean += 1;
    }
    buf.extend_from_slice(&bytes[..clean]);
    if clean == bytes.len() {
        return;
    }
    let mut start = clean;
    for (i, &b) in bytes.iter().enumerate().skip(clean) {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        if start < i {
            buf.extend_from_slice(&bytes[start..i]);
        }
        if esc == b'u' {
            let [hi, lo] = crate::hex::byte(b);
            buf.extend_from_slice(&[b'\\', b'u', b'0', b'0', hi, lo]);
        } else {
            buf.extend_from_slice(&[b'\\', esc]);
        }
        start = i + 1;
    }
    if start < bytes.len() {
        buf.extend_from_slice(&bytes[start..]);
    }
}

/// Largest char boundary of `s` that is `<= max`.
#[inline]
fn floor_char_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    let mut i = max;
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Appends `"s"` as a JSON string, cutting the value at `cap` input bytes.
#[inline]
pub(crate) fn write_str(buf: &mut Vec<u8>, s: &str, cap: usize) {
    buf.push(b'"');
    if s.len() <= cap {
        escape_into(buf, s);
    } else {
        escape_into(buf, &s[..floor_char_boundary(s, cap)]);
        buf.extend_from_slice(TRUNCATED_MARKER.as_bytes());
    }
    buf.push(b'"');
}

/// Appends a JSON key: `"key":`.
#[inline]
pub(crate) fn write_key(buf: &mut Vec<u8>, key: &str) {
    buf.push(b'"');
    escape_into(buf, key);
    buf.extend_from_slice(b"\":");
}

/// Appends an `f64` (non-finite values become strings, as JSON has no NaN).
#[inline]
pub(crate) fn write_f64(buf: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let mut b = ryu::Buffer::new();
        buf.extend_from_slice(b.format_finite(v).as_bytes());
    } else if v.is_nan() {
        buf.extend_from_slice(b"\"NaN\"");
    } else if v > 0.0 {
        buf.extend_from_slice(b"\"inf\"");
    } else {
        buf.extend_from_slice(b"\"-inf\"");
    }
}

/// Appends an integer.
#[inline]
pub(crate) fn write_int<I: itoa::Integer>(buf: &mut Vec<u8>, v: I) {
    let mut b = itoa::Buffer::new();
    buf.extend_from_slice(b.format(v).as_bytes());
}

/// Writes `format_args!` output as an escaped JSON string body, cut at `cap` bytes.
pub(crate) struct EscapingWriter<'a> {
    buf: &'a mut Vec<u8>,
    remaining: usize,
    truncated: bool,
}

impl<'a> EscapingWriter<'a> {
    #[inline]
    pub(crate) fn new(buf: &'a mut Vec<u8>, cap: usize) -> Self {
        Self {
            buf,
            remaining: cap,
            truncated: false,
        }
    }

    /// Writes a whole quoted JSON string from `args`.
    #[inline]
    pub(crate) fn write_quoted(buf: &'a mut Vec<u8>, cap: usize, args: fmt::Arguments<'_>) {
        buf.push(b'"');
        let mut w = EscapingWriter::new(buf, cap);
        // Formatting into our writer never fails; a user's Debug impl that
        // returns Err just leaves what it wrote so far.
        let _ = w.write_fmt(args);
        if w.truncated {
            w.buf.extend_from_slice(TRUNCATED_MARKER.as_bytes());
        }
        w.buf.push(b'"');
    }
}

impl fmt::Write for EscapingWriter<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.truncated {
            return Ok(());
        }
        if s.len() <= self.remaining {
            escape_into(self.buf, s);
            self.remaining -= s.len();
        } else {
            let cut = floor_char_boundary(s, self.remaining);
            escape_into(self.buf, &s[..cut]);
            self.remaining = 0;
            self.truncated = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(s: &str, cap: usize) -> String {
        let mut b = Vec::new();
        write_str(&mut b, s, cap);
        String::from_utf8(b).expect("utf8")
    }

    #[test]
    fn escapes_controls_quotes_and_newlines() {
        assert_eq!(
            quoted("a\"b\\c\nd\re\tf\u{1}\u{7f}", 100),
            r#""a\"b\\c\nd\re\tf\u0001\u007f""#
        );
    }

    #[test]
    fn word_fast_path_agrees_with_serde_json() {
        for s in [
            "plain ascii text that is long enough",
            "0123456\"",
            "01234567\\x",
            "abcdefgh\u{7f}ijklmnop",
            "abcdefghijklmno\u{1}",
            "héllo wörld, ünïcode ✓ and more",
        ] {
            let q = quoted(s, 1000);
            let back: String = serde_json::from_str(&q).expect("valid JSON string");
            assert_eq!(back, s);
            if !s.contains('\u{7f}') {
                assert_eq!(q, serde_json::to_string(s).expect("json"), "{s:?}");
            }
        }
    }

    #[test]
    fn truncates_on_char_boundary_with_marker() {
        assert_eq!(quoted("ééé", 3), "\"é…[truncated]\"");
        assert_eq!(quoted("abc", 3), "\"abc\"");
    }

    #[test]
    fn fmt_writer_truncates() {
        let mut b = Vec::new();
        EscapingWriter::write_quoted(&mut b, 4, format_args!("{}-{}", "ab\"", 12345));
        assert_eq!(
            String::from_utf8(b).expect("utf8"),
            "\"ab\\\"-…[truncated]\""
        );
    }

    #[test]
    fn floats() {
        let mut b = Vec::new();
        write_f64(&mut b, 1.5);
        b.push(b' ');
        write_f64(&mut b, f64::NAN);
        b.push(b' ');
        write_f64(&mut b, f64::NEG_INFINITY);
        assert_eq!(String::from_utf8(b).expect("utf8"), "1.5 \"NaN\" \"-inf\"");
    }
}
