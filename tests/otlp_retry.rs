//! Retries and refusals of OTLP export, as the OTLP specification asks, over
//! both protocols against a real receiver (tests/support) that answers the
//! next requests as each test scripts: retryable answers are retried with
//! exponential backoff (or after the receiver's `Retry-After` /
//! `RetryInfo`), answers that cannot succeed are counted as `rejected`
//! without a retry, a partial success's rejected count is counted exactly,
//! and a receiver that stays down past the export timeout costs the batch
//! once, as `export_failed`. The stack's restart and refusal scenarios under
//! load are in tests/stack/retry.rs.

mod support;

use observe::export::{ExportStats, Signal};
use observe::testing::TelemetryBuilderExt as _;
use observe::{LogOutput, MemorySink, Telemetry};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{env, Answer, Receiver};

const SPANS: u64 = 10;
const PROTOCOLS: [&str; 2] = ["grpc", "http/protobuf"];

struct Run {
    flushed: Result<(), String>,
    stats: ExportStats,
    lines: Vec<serde_json::Value>,
    took: Duration,
}

/// Records `SPANS` spans, flushes them to `rx` over `protocol` with the
/// receiver answering `answers` first, and reads what observe counted.
fn run(rx: &Receiver, protocol: &str, timeout_ms: &str, answers: Vec<Answer>) -> Run {
    rx.script(answers);
    let endpoint = match protocol {
        "grpc" => rx.grpc_endpoint(),
        _ => format!("{}/v1/traces", rx.http_endpoint()),
    };
    let sink = MemorySink::new();
    let (dispatch, guard) = Telemetry::builder("retry-test")
        .env_source(env(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", timeout_ms),
        ]))
        .log_output(LogOutput::Sink(Arc::new(sink.clone())))
        .build()
        .expect("telemetry")
        .into_parts();
    observe::tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..SPANS {
            observe::tracing::info_span!("job", i).in_scope(|| {});
        }
    });
    let t0 = Instant::now();
    let flushed = guard
        .flush(Duration::from_secs(30))
        .map_err(|e| e.to_string());
    let took = t0.elapsed();
    let stats = guard.export_stats(Signal::Traces);
    guard.shutdown(Duration::from_secs(5)).ok();
    let lines = sink
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    Run {
        flushed,
        stats,
        lines,
        took,
    }
}

fn dropped_lines(lines: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    lines
        .iter()
        .filter(|l| l["event"] == "telemetry_dropped")
        .collect()
}

/// Gaps between consecutive arrivals.
fn gaps(rx: &Receiver) -> Vec<Duration> {
    rx.arrivals().windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn unavailable_is_retried_with_exponential_backoff_until_delivered() {
    for protocol in PROTOCOLS {
        let rx = Receiver::start();
        let r = run(&rx, protocol, "10000", vec![Answer::Unavailable; 3]);
        assert_eq!(r.flushed, Ok(()), "{protocol}");
        assert_eq!(rx.span_count() as u64, SPANS, "{protocol}: delivered");
        assert_eq!(r.stats.dropped(), 0, "{protocol}: {:?}", r.stats);
        assert_eq!(r.stats.retries, 3, "{protocol}");
        assert_eq!(rx.arrivals().len(), 4, "{protocol}: 1 attempt + 3 retries");
        // Waits drawn from [d/2, d] with d = 100, 200, 400 ms.
        let waits = &r.stats.recent_retry_waits;
        assert_eq!(waits.len(), 3, "{protocol}");
        for (w, d) in waits.iter().zip([100u64, 200, 400]) {
            let d = Duration::from_millis(d);
            assert!(
                *w >= d / 2 && *w <= d,
                "{protocol}: wait {w:?} for step {d:?}"
            );
        }
        assert_eq!(r.stats.retry_wait, waits.iter().sum::<Duration>());
        // The receiver saw the attempts no sooner than the waits.
        for (gap, w) in gaps(&rx).iter().zip(waits) {
            assert!(gap >= w, "{protocol}: attempts {gap:?} apart, wait {w:?}");
        }
        assert!(
            dropped_lines(&r.lines).is_empty(),
            "{protocol}: {:?}",
            r.lines
        );
        println!("{protocol}: UNAVAILABLE x3: retried after {waits:?}, {SPANS} spans delivered");
    }
}

#[test]
fn throttling_waits_as_long_as_the_receiver_asks() {
    for protocol in PROTOCOLS {
        let rx = Receiver::start();
        let r = run(
            &rx,
            protocol,
            "10000",
            vec![Answer::Throttled(Duration::from_secs(1))],
        );
        assert_eq!(r.flushed, Ok(()), "{protocol}");
        assert_eq!(rx.span_count() as u64, SPANS, "{protocol}");
        assert_eq!(r.stats.dropped(), 0, "{protocol}");
        assert_eq!(r.stats.retries, 1, "{protocol}");
        assert_eq!(
            r.stats.recent_retry_waits,
            vec![Duration::from_secs(1)],
            "{protocol}: the receiver's delay, as given"
        );
        let gap = gaps(&rx)[0];
        assert!(gap >= Duration::from_secs(1), "{protocol}: {gap:?}");
        println!("{protocol}: throttled for 1 s: retried {gap:?} later, delivered");
    }
}

#[test]
fn answers_that_cannot_succeed_are_rejected_without_a_retry() {
    for protocol in PROTOCOLS {
        let rx = Receiver::start();
        let r = run(&rx, protocol, "10000", vec![Answer::Invalid("bad span id")]);
        let err = r.flushed.expect_err("rejected");
        let reason = match protocol {
            "grpc" => "gRPC status InvalidArgument: bad span id",
            _ => "HTTP 400 Bad Request: bad span id",
        };
        assert!(err.contains(reason), "{protocol}: {err}");
        assert_eq!(rx.span_count(), 0, "{protocol}");
        assert_eq!(r.stats.rejected, SPANS, "{protocol}: {:?}", r.stats);
        assert_eq!(r.stats.export_failed, 0, "{protocol}");
        assert_eq!(r.stats.retries, 0, "{protocol}");
        assert_eq!(rx.arrivals().len(), 1, "{protocol}");
        let said = dropped_lines(&r.lines);
        assert_eq!(said.len(), 1, "{protocol}: {:?}", r.lines);
        assert_eq!(said[0]["rejected"], SPANS, "{protocol}");
        assert!(
            said[0]["last_error"]
                .as_str()
                .is_some_and(|e| e.ends_with(reason)),
            "{protocol}: {}",
            said[0]
        );
        println!("{protocol}: {err}");
    }
    // RESOURCE_EXHAUSTED without RetryInfo is final over gRPC; HTTP 429
    // without Retry-After is retried (the specification's two rules).
    let rx = Receiver::start();
    let r = run(&rx, "grpc", "10000", vec![Answer::Exhausted]);
    assert!(r.flushed.is_err());
    assert_eq!((r.stats.rejected, r.stats.retries), (SPANS, 0));
    let rx = Receiver::start();
    let r = run(&rx, "http/protobuf", "10000", vec![Answer::Exhausted]);
    assert_eq!(r.flushed, Ok(()));
    assert_eq!((r.stats.dropped(), r.stats.retries), (0, 1));
    assert_eq!(rx.span_count() as u64, SPANS);
}

#[test]
fn a_partial_success_counts_exactly_what_it_rejected() {
    for protocol in PROTOCOLS {
        let rx = Receiver::start();
        let r = run(
            &rx,
            protocol,
            "10000",
            vec![Answer::Partial(3, "3 spans exceed the size limit")],
        );
        assert_eq!(r.flushed, Ok(()), "{protocol}: delivered, in part");
        assert_eq!(r.stats.rejected, 3, "{protocol}: {:?}", r.stats);
        assert_eq!(r.stats.dropped(), 3, "{protocol}");
        assert_eq!(
            r.stats.retries, 0,
            "{protocol}: a partial success is not retried"
        );
        let said = dropped_lines(&r.lines);
        assert_eq!(said.len(), 1, "{protocol}: {:?}", r.lines);
        assert_eq!(said[0]["rejected"], 3);
        assert!(
            said[0]["last_error"]
                .as_str()
                .is_some_and(|e| e.ends_with(&format!(
                    "failed: the receiver rejected 3 of {SPANS}: 3 spans exceed the size limit"
                ))),
            "{protocol}: {}",
            said[0]
        );
    }
}

#[test]
fn a_receiver_down_past_the_export_timeout_costs_the_batch_once() {
    for protocol in PROTOCOLS {
        let rx = Receiver::start();
        let r = run(&rx, protocol, "1000", vec![Answer::Unavailable; 100]);
        let err = r.flushed.expect_err("not delivered");
        assert!(
            err.contains("gave up after") && err.contains("the export timeout is 1000 ms"),
            "{protocol}: {err}"
        );
        assert_eq!(r.stats.export_failed, SPANS, "{protocol}: {:?}", r.stats);
        assert_eq!(r.stats.dropped(), SPANS, "{protocol}");
        // 100 + 200 + 400 ms steps (at least half each) fit in 1 s; 800 more do not.
        assert!(
            (3..=4).contains(&r.stats.retries),
            "{protocol}: {} retries",
            r.stats.retries
        );
        assert_eq!(
            rx.arrivals().len() as u64,
            r.stats.retries + 1,
            "{protocol}"
        );
        assert!(r.took < Duration::from_secs(3), "{protocol}: {:?}", r.took);
        println!("{protocol}: down for good: {err}");
    }
}
