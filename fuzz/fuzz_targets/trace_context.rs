//! `traceparent`, `tracestate` and `baggage` from arbitrary bytes: no panic,
//! and whatever is accepted serializes to a value that parses back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use observe::tower::w3c::{parse_trace_context, Baggage, TraceParent, TraceState};

fuzz_target!(|data: &[u8]| {
    // Three header values separated by 0xff (never valid in any of them).
    let mut parts = data.splitn(3, |&b| b == 0xff);
    let traceparent = parts.next().unwrap_or_default();
    let tracestate = parts.next().unwrap_or_default();
    let baggage = parts.next().unwrap_or_default();

    if let Ok((parent, state)) = parse_trace_context([traceparent], [tracestate]) {
        let mut buf = [0u8; 55];
        parent.write_to(&mut buf);
        let again = TraceParent::parse(&buf).expect("a written traceparent parses");
        assert_eq!(again.trace_id, parent.trace_id);
        assert_eq!(again.parent_id, parent.parent_id);
        assert_eq!(again.flags, parent.flags & TraceParent::KNOWN_FLAGS);
        if let Some(state) = state {
            let reparsed = TraceState::parse(state.header_value().as_bytes())
                .expect("a serialized tracestate parses");
            assert_eq!(reparsed, state);
        }
    }

    let bag = Baggage::parse(baggage);
    let header = bag.header_value();
    let reparsed = Baggage::parse(header.as_bytes());
    assert_eq!(reparsed.header_value(), header);
});
