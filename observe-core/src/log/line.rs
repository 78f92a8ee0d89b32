//! The layout of one JSON line:
//!
//! ```text
//!  {"timestamp":"…","level":"ERROR","service":"…","event":"payment_failed",   head
//!   "trace_id":"…","span_id":"…"            (or null, outside any span)
//!   ,"event_inferred":true                  (a plain tracing event: no name given)
//!   ,"message":"…","target":"…"
//!   ,<the event's fields>                                                      tail
//!   ,<each span's fields, innermost first; a name already written is skipped>
//!   ,"synthetic":true                       (synthetic traffic)
//!  }
//! ```
//!
//! The head and the tail are built in two buffers in one pass over the
//! event's fields and one walk over its spans, and written as two slices.
//! Span fields are stored pre-serialised (`,"k":v` with an index), so a span
//! whose names do not collide with any already on the line is one copy.

use super::json;
use super::timestamp::write_rfc3339_micros;
use crate::classify::RequestState;
use std::sync::Arc;
use std::time::SystemTime;
use tracing::Level;

/// One bit per name, for a 64-bit Bloom filter of names written to a line.
#[inline]
pub(crate) fn name_bit(name: &str) -> u64 {
    let b = name.as_bytes();
    let (first, last) = match (b.first(), b.last()) {
        (Some(f), Some(l)) => (*f as u64, *l as u64),
        _ => (0, 0),
    };
    let h = (b.len() as u64)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(first.wrapping_mul(0xff51_afd7_ed55_8ccd))
        .wrapping_add(last.wrapping_mul(0xc4ce_b9fe_1a85_ec53));
    1u64 << (h >> 58)
}

/// `"ERROR"` … `"TRACE"`, as JSON strings.
const LEVEL_JSON: [&[u8]; 5] = [
    b"\"ERROR\"",
    b"\"WARN\"",
    b"\"INFO\"",
    b"\"DEBUG\"",
    b"\"TRACE\"",
];

/// ERROR 0, WARN 1, INFO 2, DEBUG 3, TRACE 4.
#[inline]
pub(crate) fn level_index(l: Level) -> usize {
    match l {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 2,
        Level::DEBUG => 3,
        _ => 4,
    }
}

/// What follows the timestamp, per level:
/// `","level":"<LEVEL>","service":"<name>","event":`, escaped once.
pub(crate) fn level_heads(service: &str) -> [Box<[u8]>; 5] {
    LEVEL_JSON.map(|level| {
        let mut v = b"\",\"level\":".to_vec();
        v.extend_from_slice(level);
        v.extend_from_slice(b",\"service\":");
        json::write_str(&mut v, service, 256);
        v.extend_from_slice(b",\"event\":");
        v.into_boxed_slice()
    })
}

/// `,"target":"<target>"`.
pub(crate) fn target_json(target: &str) -> Vec<u8> {
    let mut v = Vec::new();
    write_target_json(&mut v, target);
    v
}

/// Appends `,"target":"<target>"` to `buf`.
pub(crate) fn write_target_json(buf: &mut Vec<u8>, target: &str) {
    buf.extend_from_slice(b",\"target\":");
    json::write_str(buf, target, 256);
}

/// Most words and bytes of a message that names its event.
const MESSAGE_EVENT_WORDS: usize = 8;
const MESSAGE_EVENT_LEN: usize = 64;

/// The event name of a plain tracing event from its message, when the
/// message reads as a fixed phrase: ASCII letters in at most eight words
/// separated by spaces, `,`, `;`, `-` or `_` (apostrophes dropped, one
/// trailing `.`, `!` or `?` allowed), at most 64 bytes of name
/// (`"Order fetched."` → `order_fetched`). Anything else — a digit, a quote,
/// `:`, `=`, `/`, `{`, non-ASCII, an escape — says the message carries a
/// value, and nothing is written. `message` is the JSON string (quoted, as
/// in [`LineBufs::message`]). Returns whether a name was written.
pub(crate) fn write_message_event(buf: &mut Vec<u8>, message: &[u8]) -> bool {
    let inner = match message {
        [b'"', inner @ .., b'"'] => inner,
        _ => return false,
    };
    let inner = match inner {
        [rest @ .., b'.' | b'!' | b'?'] => rest,
        _ => inner,
    };
    let start = buf.len();
    buf.push(b'"');
    let (mut words, mut in_word) = (0usize, false);
    for &c in inner {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {
                if !in_word {
                    words += 1;
                    if words > 1 {
                        buf.push(b'_');
                    }
                    in_word = true;
                }
                buf.push(c.to_ascii_lowercase());
            }
            b'\'' => {}
            b' ' | b',' | b';' | b'-' | b'_' => in_word = false,
            _ => {
                buf.truncate(start);
                return false;
            }
        }
        if words > MESSAGE_EVENT_WORDS || buf.len() - start > MESSAGE_EVENT_LEN + 1 {
            buf.truncate(start);
            return false;
        }
    }
    if words == 0 {
        buf.truncate(start);
        return false;
    }
    buf.push(b'"');
    true
}

/// The fallback event name of an event without an `event` field and without
/// a fixed-phrase message (and of every `log` record): its target in
/// snake_case (`hyper_util::client::legacy` → `hyper_util_client_legacy`), quoted.
pub(crate) fn write_inferred_event(buf: &mut Vec<u8>, target: &str) {
    buf.push(b'"');
    let mut last_us = true;
    let start = buf.len();
    for &b in target.as_bytes().iter().take(96) {
        if b.is_ascii_alphanumeric() {
            buf.push(b.to_ascii_lowercase());
            last_us = false;
        } else if !last_us {
            buf.push(b'_');
            last_us = true;
        }
    }
    while buf.len() > start && buf.last() == Some(&b'_') {
        buf.pop();
    }
    if buf.len() == start {
        buf.extend_from_slice(b"log");
    }
    buf.push(b'"');
}

/// The buffers one line is built in (per thread, reused: a warm line
/// allocates nothing).
#[derive(Default)]
pub(crate) struct LineBufs {
    /// The head, up to and including the target.
    pub(crate) head: Vec<u8>,
    /// The event's fields (written by the field pass), then the spans'.
    pub(crate) tail: Vec<u8>,
    /// The message as a JSON string, if any.
    pub(crate) message: Vec<u8>,
    /// The event name as a JSON string.
    pub(crate) event: Vec<u8>,
    /// Names written to the tail so far.
    pub(crate) names: Vec<&'static str>,
}

impl LineBufs {
    #[inline]
    pub(crate) fn clear(&mut self) {
        self.head.clear();
        self.tail.clear();
        self.message.clear();
        self.event.clear();
        self.names.clear();
    }

    /// The event name without its quotes.
    #[inline]
    pub(crate) fn event_name(&self) -> &[u8] {
        self.event
            .get(1..self.event.len().saturating_sub(1))
            .unwrap_or_default()
    }
}

/// The head's parts that do not come from the event's fields.
pub(crate) struct Head<'a> {
    pub(crate) now: SystemTime,
    /// [`level_heads`] of the event's level.
    pub(crate) level: &'a [u8],
    /// `,"target":"…"`.
    pub(crate) target: &'a [u8],
    /// The event was given a name (else `event_inferred` is written).
    pub(crate) named: bool,
}

/// What the line found in its innermost span.
#[derive(Default)]
pub(crate) struct LineSpan {
    /// Trace id, span id and flags.
    pub(crate) trace: Option<(u128, u64, u8)>,
    pub(crate) request: Option<Arc<RequestState>>,
    pub(crate) synthetic: bool,
    /// The span is recorded (an event can be added to it).
    pub(crate) recorded: bool,
    /// Where the spans' fields are in the tail (after the event's own, before
    /// the closing brace): they also go on the OTLP log record.
    pub(crate) span_fields: std::ops::Range<usize>,
}

/// A span's `,"k":v` entries (stored with their leading commas), each
/// entry's (name, start, end, Bloom bit), and the Bloom bits of all names.
#[derive(Clone, Copy)]
pub(crate) struct SpanFields<'a> {
    pub(crate) json: &'a [u8],
    pub(crate) index: &'a [(&'static str, u32, u32, u64)],
    pub(crate) bloom: u64,
}

/// What a line reads from one of its spans (observe's span state implements it).
pub(crate) trait LineSource {
    /// Trace id, span id and flags.
    fn trace(&self) -> (u128, u64, u8);
    /// Trace id (32) then span id (16) in lowercase hex.
    fn ids_hex(&self) -> &[u8; 48];
    /// The request the span belongs to.
    fn request(&self) -> Option<&Arc<RequestState>>;
    /// Synthetic traffic.
    fn synthetic(&self) -> bool;
    /// The span is recorded (an event can be added to it).
    fn recorded(&self) -> bool;
    /// Its fields, in the order they are written: its call site's, then its own.
    fn fields(&self) -> [Option<SpanFields<'_>>; 2];
}

/// The walk over an event's spans, innermost first: the innermost one's ids
/// go into the head, every span's fields into the tail (the innermost value
/// of a name wins).
pub(crate) struct SpanWalk<'a> {
    head: &'a mut Vec<u8>,
    tail: &'a mut Vec<u8>,
    names: &'a mut Vec<&'static str>,
    bloom: u64,
    found: LineSpan,
}

impl SpanWalk<'_> {
    /// The next span out.
    #[inline]
    pub(crate) fn span(&mut self, st: &impl LineSource) {
        if self.found.trace.is_none() {
            self.found.trace = Some(st.trace());
            let ids = st.ids_hex();
            self.head.extend_from_slice(b",\"trace_id\":\"");
            self.head.extend_from_slice(&ids[..32]);
            self.head.extend_from_slice(b"\",\"span_id\":\"");
            self.head.extend_from_slice(&ids[32..]);
            self.head.push(b'"');
            self.found.request = st.request().cloned();
            self.found.synthetic = st.synthetic();
            self.found.recorded = st.recorded();
        }
        for part in st.fields().into_iter().flatten() {
            append_fields(self.tail, self.names, &mut self.bloom, part);
        }
    }
}

/// Completes a line whose event fields are already in `b.tail` (with their
/// names in `b.names` and Bloom bits in `bloom`) and whose event name is in
/// `b.event`: writes the head, lets `spans` walk the event's spans
/// innermost first, and closes the tail.
#[inline]
pub(crate) fn layout(
    b: &mut LineBufs,
    head: &Head<'_>,
    bloom: u64,
    spans: impl FnOnce(&mut SpanWalk<'_>),
) -> LineSpan {
    let out = &mut b.head;
    out.extend_from_slice(b"{\"timestamp\":\"");
    write_rfc3339_micros(out, head.now);
    // `","level":"INFO","service":"<name>","event":` in one copy.
    out.extend_from_slice(head.level);
    out.extend_from_slice(&b.event);
    let event_fields_end = b.tail.len();
    let mut walk = SpanWalk {
        head: out,
        tail: &mut b.tail,
        names: &mut b.names,
        bloom,
        found: LineSpan::default(),
    };
    spans(&mut walk);
    let mut found = walk.found;
    if found.trace.is_none() {
        out.extend_from_slice(b",\"trace_id\":null,\"span_id\":null");
    }
    if !head.named {
        out.extend_from_slice(b",\"event_inferred\":true");
    }
    if !b.message.is_empty() {
        out.extend_from_slice(b",\"message\":");
        out.extend_from_slice(&b.message);
    }
    out.extend_from_slice(head.target);
    if found.synthetic && !b.names.contains(&"synthetic") {
        b.tail.extend_from_slice(b",\"synthetic\":true");
    }
    found.span_fields = event_fields_end..b.tail.len();
    b.tail.extend_from_slice(b"}\n");
    found
}

/// Appends a span's `,"k":v` entries whose names are not on the line yet.
#[inline]
fn append_fields(
    tail: &mut Vec<u8>,
    names: &mut Vec<&'static str>,
    bloom: &mut u64,
    SpanFields {
        json,
        index,
        bloom: part_bloom,
    }: SpanFields<'_>,
) {
    if *bloom & part_bloom == 0 {
        // No name of this part was written yet: copy all its fields at once.
        tail.extend_from_slice(json);
        names.extend(index.iter().map(|e| e.0));
        *bloom |= part_bloom;
        return;
    }
    for &(name, start, end, bit) in index {
        if *bloom & bit != 0 && seen(names, name) {
            continue;
        }
        *bloom |= bit;
        tail.extend_from_slice(&json[start as usize..end as usize]);
        names.push(name);
    }
}

/// Whether `name` was written already (same address first: call-site names are static).
#[inline]
fn seen(names: &[&'static str], name: &'static str) -> bool {
    names
        .iter()
        .any(|n| std::ptr::eq(n.as_ptr(), name.as_ptr()) && n.len() == name.len() || *n == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// A span as the layer keeps one: ids and pre-serialised fields.
    struct TestSpan {
        trace_id: u128,
        span_id: u64,
        ids: [u8; 48],
        json: Vec<u8>,
        index: Vec<(&'static str, u32, u32, u64)>,
        bloom: u64,
        synthetic: bool,
    }

    impl LineSource for TestSpan {
        fn trace(&self) -> (u128, u64, u8) {
            (self.trace_id, self.span_id, 1)
        }
        fn ids_hex(&self) -> &[u8; 48] {
            &self.ids
        }
        fn request(&self) -> Option<&Arc<RequestState>> {
            None
        }
        fn synthetic(&self) -> bool {
            self.synthetic
        }
        fn recorded(&self) -> bool {
            false
        }
        fn fields(&self) -> [Option<SpanFields<'_>>; 2] {
            let own = SpanFields {
                json: &self.json,
                index: &self.index,
                bloom: self.bloom,
            };
            [None, Some(own)]
        }
    }

    /// A span with `fields` (name, JSON value) stored as the layer stores them.
    fn span(trace_id: u128, span_id: u64, fields: &[(&'static str, &str)]) -> TestSpan {
        let mut st = TestSpan {
            trace_id,
            span_id,
            ids: crate::hex::ids(trace_id, span_id),
            json: Vec::new(),
            index: Vec::new(),
            bloom: 0,
            synthetic: false,
        };
        for (name, value) in fields {
            let start = st.json.len() as u32;
            st.json.push(b',');
            json::write_key(&mut st.json, name);
            st.json.extend_from_slice(value.as_bytes());
            st.index
                .push((name, start, st.json.len() as u32, name_bit(name)));
            st.bloom |= name_bit(name);
        }
        st
    }

    /// A line for an event whose own fields are `fields`, inside `spans`
    /// (innermost first), parsed back.
    fn line(
        event: Option<&str>,
        message: Option<&str>,
        fields: &[(&'static str, &str)],
        spans: &[&TestSpan],
    ) -> (serde_json::Value, String) {
        let mut b = LineBufs::default();
        let mut bloom = 0;
        for (name, value) in fields {
            b.tail.push(b',');
            json::write_key(&mut b.tail, name);
            b.tail.extend_from_slice(value.as_bytes());
            b.names.push(name);
            bloom |= name_bit(name);
        }
        match event {
            Some(e) => json::write_str(&mut b.event, e, 128),
            None => write_inferred_event(&mut b.event, "my_app::billing"),
        }
        if let Some(m) = message {
            json::write_str(&mut b.message, m, 1024);
        }
        let heads = level_heads("checkout");
        let target = target_json("my_app::billing");
        let head = Head {
            now: UNIX_EPOCH + Duration::from_micros(1_779_416_073_123_456),
            level: &heads[level_index(Level::WARN)],
            target: &target,
            named: event.is_some(),
        };
        let found = layout(&mut b, &head, bloom, |walk| {
            for st in spans {
                walk.span(*st);
            }
        });
        let text = String::from_utf8([b.head, b.tail].concat()).expect("utf8");
        assert!(text.ends_with("}\n"), "{text}");
        assert_eq!(found.trace.is_some(), !spans.is_empty());
        (serde_json::from_str(&text).expect("one JSON object"), text)
    }

    #[test]
    fn head_then_event_fields_then_span_fields_innermost_first() {
        let outer = span(7, 1, &[("order_id", "\"ord_1\""), ("user", "\"psn_a\"")]);
        let inner = span(7, 2, &[("order_id", "\"ord_2\""), ("attempt", "3")]);
        let (v, text) = line(
            Some("payment_failed"),
            Some("bank said no"),
            &[("amount_cents", "1299")],
            &[&inner, &outer],
        );
        assert_eq!(
            text,
            concat!(
                r#"{"timestamp":"2026-05-22T02:14:33.123456Z","level":"WARN","service":"checkout","#,
                r#""event":"payment_failed","trace_id":"00000000000000000000000000000007","#,
                r#""span_id":"0000000000000002","message":"bank said no","target":"my_app::billing""#,
                r#","amount_cents":1299,"order_id":"ord_2","attempt":3,"user":"psn_a"}"#,
                "\n"
            )
        );
        assert_eq!(v["order_id"], "ord_2", "the innermost value wins");
    }

    #[test]
    fn outside_spans_ids_are_null_and_a_plain_event_is_named_after_its_target() {
        let (v, _) = line(None, None, &[("k", "1")], &[]);
        assert_eq!(v["trace_id"], serde_json::Value::Null);
        assert_eq!(v["span_id"], serde_json::Value::Null);
        assert_eq!(v["event"], "my_app_billing");
        assert_eq!(v["event_inferred"], true);
        assert!(v.get("message").is_none());
    }

    #[test]
    fn an_event_field_hides_the_span_field_of_the_same_name_and_synthetic_is_marked() {
        let mut st = span(9, 3, &[("gateway", "\"bank\""), ("route", "\"/pay\"")]);
        st.synthetic = true;
        let (v, text) = line(Some("retry"), None, &[("gateway", "\"card\"")], &[&st]);
        assert_eq!(v["gateway"], "card");
        assert_eq!(v["route"], "/pay");
        assert_eq!(v["synthetic"], true);
        assert_eq!(text.matches("\"gateway\"").count(), 1);
    }

    #[test]
    fn fixed_phrase_messages_name_their_events_and_others_do_not() {
        let q = |m: &str| format!("\"{m}\"");
        for (message, want) in [
            ("order fetched", Some("\"order_fetched\"")),
            (
                "Connection reset, retrying.",
                Some("\"connection_reset_retrying\""),
            ),
            (
                "couldn't reach the bank!",
                Some("\"couldnt_reach_the_bank\""),
            ),
            ("  cache-miss__x  ", Some("\"cache_miss_x\"")),
            (
                "one two three four five six seven eight",
                Some("\"one_two_three_four_five_six_seven_eight\""),
            ),
            ("one two three four five six seven eight nine", None),
            (&"a".repeat(65), None),
            ("fetched 3 orders", None),
            ("user=alice", None),
            ("failed: timeout", None),
            ("GET /orders", None),
            ("naïve", None),
            ("said \\\"no\\\"", None),
            ("", None),
            ("...", None),
            ("ends with two..", None),
        ] {
            let mut b = b"x".to_vec();
            let wrote = write_message_event(&mut b, q(message).as_bytes());
            assert_eq!(wrote, want.is_some(), "{message:?}");
            let want = format!("x{}", want.unwrap_or(""));
            assert_eq!(String::from_utf8(b).expect("utf8"), want, "{message:?}");
        }
        let mut b = Vec::new();
        assert!(!write_message_event(&mut b, b"unquoted"));
        assert!(b.is_empty());
    }

    #[test]
    fn inferred_event_names_are_snake_case_targets() {
        for (target, want) in [
            ("hyper_util::client::legacy", "\"hyper_util_client_legacy\""),
            ("::Weird--Target::", "\"weird_target\""),
            ("::", "\"log\""),
        ] {
            let mut b = Vec::new();
            write_inferred_event(&mut b, target);
            assert_eq!(String::from_utf8(b).expect("utf8"), want);
        }
    }
}
