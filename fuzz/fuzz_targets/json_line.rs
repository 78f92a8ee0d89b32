//! Arbitrary field values and messages through observe's JSON writer: every
//! event is exactly one line, and every line is one JSON object whose values
//! are the ones logged (or their truncation).
#![no_main]

use libfuzzer_sys::fuzz_target;
use observe::{LogOutput, SyncWriter, Telemetry, TelemetryGuard};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use observe::testing::TelemetryBuilderExt as _;

/// stdout stand-in the target drains after every event.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Fixture {
    out: Buf,
    dispatch: observe::tracing::Dispatch,
    _guard: TelemetryGuard,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let out = Buf::default();
        let (dispatch, guard) = Telemetry::builder("fuzz")
            .env_source(|_| None)
            .disabled(true)
            .log_output(LogOutput::Sink(Arc::new(SyncWriter::new(out.clone()))))
            .build()
            .expect("telemetry")
            .into_parts();
        Fixture {
            out,
            dispatch,
            _guard: guard,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let text = String::from_utf8_lossy(data);
    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid -= 1;
    }
    let (a, b) = text.split_at(mid);
    observe::tracing::dispatcher::with_default(&f.dispatch, || {
        let span = observe::tracing::info_span!("fuzz", span_field = %b);
        span.in_scope(|| {
            observe::info!("fuzzed", value = %a, other = a, bytes = ?data, "{}", b);
        });
    });
    let out = std::mem::take(&mut *f.out.0.lock().unwrap_or_else(|e| e.into_inner()));
    let text = String::from_utf8(out).expect("lines are UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).expect("one JSON object");
    assert_eq!(v["event"], "fuzzed");
    let value = v["value"].as_str().expect("a string");
    assert!(
        a.starts_with(value.trim_end_matches("…[truncated]")),
        "{value:?}"
    );
});
