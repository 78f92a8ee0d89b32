//! Tail-based sampling (`observe::export::tail`): which traces are kept, that
//! they are kept whole and in end order, late spans, overflow, flush and
//! shutdown. Spans are `SpanData` values fed straight to `on_end`; kept spans
//! land in an `InMemorySpanExporter` behind a `SimpleSpanProcessor`.

use observe::export::tail::{Policy, TailSampling, TailSamplingBuilder};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, Sampler, SamplingDecision, ShouldSample, SimpleSpanProcessor, SpanData,
    SpanEvents, SpanLinks, SpanProcessor,
};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A trace id the 10% `healthy` policy drops (low 63 bits at their maximum).
fn unlucky(n: u64) -> u128 {
    (u128::from(n) << 64) | u128::from(u64::MAX)
}

/// A trace id the 10% `healthy` policy keeps (low 64 bits zero).
fn lucky(n: u64) -> u128 {
    u128::from(n) << 64
}

/// A sampled span of `trace`, from 0 to 40 ms (see `timed`); `parent` 0 makes
/// it a local root.
fn span(trace: u128, id: u64, parent: u64, name: &'static str) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(trace),
            SpanId::from(id),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::from(parent),
        parent_span_is_remote: false,
        span_kind: if parent == 0 {
            SpanKind::Server
        } else {
            SpanKind::Internal
        },
        name: name.into(),
        start_time: at(0),
        end_time: at(40),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: Default::default(),
    }
}

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_780_000_000_000 + ms)
}

fn timed(mut s: SpanData, start_ms: u64, end_ms: u64) -> SpanData {
    s.start_time = at(start_ms);
    s.end_time = at(end_ms);
    s
}

fn failed(mut s: SpanData) -> SpanData {
    s.status = Status::error("bank gateway returned 504");
    s
}

fn with(mut s: SpanData, kv: KeyValue) -> SpanData {
    s.attributes.push(kv);
    s
}

/// A healthy three-span trace: two children, then the local root.
fn healthy(trace: u128) -> [SpanData; 3] {
    [
        timed(span(trace, 2, 1, "db_query"), 5, 15),
        timed(span(trace, 3, 1, "charge_card"), 15, 35),
        timed(span(trace, 1, 0, "checkout"), 0, 40),
    ]
}

fn pipeline(
    b: impl FnOnce(TailSamplingBuilder) -> TailSamplingBuilder,
) -> (TailSampling, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let tail = b(TailSampling::builder(SimpleSpanProcessor::new(
        exporter.clone(),
    )))
    .build()
    .expect("valid configuration");
    (tail, exporter)
}

/// (trace id, span name) of every exported span, in export order.
fn exported(exporter: &InMemorySpanExporter) -> Vec<(u128, String)> {
    exporter
        .get_finished_spans()
        .expect("exporter readable")
        .iter()
        .map(|s| {
            (
                u128::from_be_bytes(s.span_context.trace_id().to_bytes()),
                s.name.to_string(),
            )
        })
        .collect()
}

/// Waits (up to 5 s) for the decision thread to export `n` spans.
fn wait_for(exporter: &InMemorySpanExporter, n: usize) -> Vec<(u128, String)> {
    let start = Instant::now();
    loop {
        let got = exported(exporter);
        if got.len() >= n || start.elapsed() > Duration::from_secs(5) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn names(trace: u128, ns: &[&str]) -> Vec<(u128, String)> {
    ns.iter().map(|n| (trace, (*n).to_owned())).collect()
}

#[test]
fn error_trace_is_kept_whole_in_end_order_after_the_decision_wait() {
    let (tail, exporter) = pipeline(|b| b.decision_wait(Duration::from_millis(300)));
    let t = unlucky(1);
    let [db, card, root] = healthy(t);

    tail.on_end(db);
    tail.on_end(failed(card));
    tail.on_end(root);
    assert_eq!(exported(&exporter), [], "nothing before the decision wait");

    let got = wait_for(&exporter, 3);
    assert_eq!(got, names(t, &["db_query", "charge_card", "checkout"]));
    let c = tail.counters();
    assert_eq!(
        (c.traces_kept(), c.spans_kept(), c.decided_by("errors")),
        (1, 3, 1)
    );
    assert_eq!((c.traces_dropped(), c.pending_traces()), (0, 0));
}

#[test]
fn slow_trace_is_kept_and_a_fast_one_dropped() {
    let (tail, exporter) = pipeline(|b| b);
    let (slow, fast) = (unlucky(2), unlucky(3));
    tail.on_end(timed(span(slow, 2, 1, "charge_card"), 100, 2_400));
    tail.on_end(timed(span(slow, 1, 0, "checkout"), 0, 2_500));
    tail.on_end(timed(span(fast, 2, 1, "charge_card"), 100, 1_400));
    tail.on_end(timed(span(fast, 1, 0, "checkout"), 0, 1_999));
    tail.force_flush().expect("flush");

    assert_eq!(
        exported(&exporter),
        names(slow, &["charge_card", "checkout"])
    );
    let c = tail.counters();
    assert_eq!((c.decided_by("slow"), c.dropped_unmatched()), (1, 1));
    assert_eq!((c.spans_kept(), c.spans_dropped()), (2, 2));
}

#[test]
fn synthetic_trace_is_kept() {
    let (tail, exporter) = pipeline(|b| b);
    let (synthetic, real) = (unlucky(4), unlucky(5));
    for t in [synthetic, real] {
        let [db, card, root] = healthy(t);
        tail.on_end(db);
        tail.on_end(card);
        let root = if t == synthetic {
            with(root, KeyValue::new("synthetic", true))
        } else {
            with(root, KeyValue::new("synthetic", false))
        };
        tail.on_end(root);
    }
    tail.force_flush().expect("flush");

    assert_eq!(
        exported(&exporter),
        names(synthetic, &["db_query", "charge_card", "checkout"])
    );
    assert_eq!(tail.counters().decided_by("synthetic"), 1);
}

/// splitmix64: deterministic, well-spread trace ids.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn healthy_traces_are_kept_by_the_trace_id_ratio_rule() {
    let (tail, exporter) = pipeline(|b| b);
    let mut ids: Vec<u128> = (0..200u64)
        .map(|i| (u128::from(splitmix(2 * i)) << 64) | u128::from(splitmix(2 * i + 1)))
        .collect();
    // Either side of the bound: 0.1 * 2^63 as f64 is 922337203685477632.
    let bound: u64 = 922_337_203_685_477_632;
    ids.push(u128::from((bound - 1) << 1)); // index 200: kept
    ids.push(u128::from(bound << 1)); // index 201: dropped
    for (i, id) in ids.iter().enumerate() {
        tail.on_end(span(*id, i as u64 + 1, 0, "checkout"));
    }
    tail.force_flush().expect("flush");

    let kept: BTreeSet<u128> = exported(&exporter).into_iter().map(|(t, _)| t).collect();
    let expected: BTreeSet<u128> = [
        10, 20, 41, 66, 86, 89, 99, 130, 131, 147, 158, 175, 179, 180, 188, 200,
    ]
    .iter()
    .map(|i| ids[*i])
    .collect();
    assert_eq!(kept, expected);
    // The same set as the SDK's TraceIdRatioBased sampler (and observe's head sampler).
    let sdk: BTreeSet<u128> = ids
        .iter()
        .copied()
        .filter(|id| {
            let r = Sampler::TraceIdRatioBased(0.1).should_sample(
                None,
                TraceId::from(*id),
                "checkout",
                &SpanKind::Server,
                &[],
                &[],
            );
            r.decision == SamplingDecision::RecordAndSample
        })
        .collect();
    assert_eq!(kept, sdk);
    let c = tail.counters();
    assert_eq!((c.decided_by("healthy"), c.dropped_unmatched()), (16, 186));
}

#[test]
fn late_child_follows_the_decision() {
    let (tail, exporter) = pipeline(|b| b.decision_wait(Duration::from_millis(20)));
    let (kept, dropped) = (unlucky(6), unlucky(7));
    tail.on_end(failed(span(kept, 1, 0, "checkout")));
    tail.on_end(span(dropped, 1, 0, "checkout"));
    assert_eq!(wait_for(&exporter, 1), names(kept, &["checkout"]));
    let start = Instant::now();
    while tail.counters().traces_dropped() == 0 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }

    // Children ending after the decision: a spawned task, an async write.
    tail.on_end(span(kept, 2, 1, "send_receipt"));
    tail.on_end(span(dropped, 2, 1, "send_receipt"));

    assert_eq!(
        exported(&exporter),
        names(kept, &["checkout", "send_receipt"]),
        "forwarded at once, without waiting or flushing"
    );
    let c = tail.counters();
    assert_eq!((c.late_spans_kept(), c.late_spans_dropped()), (1, 1));
    assert_eq!((c.traces_kept(), c.traces_dropped()), (1, 1));
    assert_eq!(c.pending_traces(), 0);
}

#[test]
fn several_local_roots_of_one_trace_are_decided_together() {
    let (tail, exporter) = pipeline(|b| b.decision_wait(Duration::from_millis(200)));
    let t = unlucky(8);
    let mut first = span(t, 1, 0xa1, "POST /pay");
    first.parent_span_is_remote = true;
    let mut second = span(t, 2, 0xa2, "POST /refund");
    second.parent_span_is_remote = true;
    tail.on_end(first);
    tail.on_end(failed(second)); // within the first root's decision wait
    assert_eq!(
        wait_for(&exporter, 2),
        names(t, &["POST /pay", "POST /refund"])
    );
    assert_eq!(tail.counters().traces_kept(), 1);
}

#[test]
fn overflow_decides_at_once_and_counts() {
    let (tail, exporter) = pipeline(|b| b.num_traces(2).decision_wait(Duration::from_secs(60)));
    // Two in-flight requests fill the buffer (their roots have not ended).
    tail.on_end(span(unlucky(10), 2, 1, "db_query"));
    tail.on_end(span(unlucky(11), 2, 1, "db_query"));
    // A third trace is decided on its first span: kept (error), then dropped.
    tail.on_end(failed(span(unlucky(12), 2, 1, "charge_card")));
    tail.on_end(span(unlucky(13), 2, 1, "charge_card"));

    assert_eq!(exported(&exporter), names(unlucky(12), &["charge_card"]));
    let c = tail.counters();
    assert_eq!(c.overflow_num_traces(), 2);
    assert_eq!((c.traces_kept(), c.traces_dropped()), (1, 1));
    assert_eq!(c.pending_traces(), 2);
    // Their later spans follow the decision.
    tail.on_end(span(unlucky(12), 1, 0, "checkout"));
    assert_eq!(
        exported(&exporter),
        names(unlucky(12), &["charge_card", "checkout"])
    );
}

#[test]
fn a_trace_reaching_max_spans_per_trace_is_decided_at_once() {
    let (tail, exporter) = pipeline(|b| {
        b.max_spans_per_trace(3)
            .decision_wait(Duration::from_secs(60))
    });
    let t = unlucky(14);
    tail.on_end(failed(span(t, 2, 1, "retry")));
    tail.on_end(span(t, 3, 1, "retry"));
    assert_eq!(exported(&exporter), []);
    tail.on_end(span(t, 4, 1, "retry"));
    assert_eq!(exported(&exporter), names(t, &["retry", "retry", "retry"]));
    assert_eq!(tail.counters().overflow_max_spans(), 1);
}

#[test]
fn force_flush_decides_every_pending_trace() {
    let (tail, exporter) = pipeline(|b| b.decision_wait(Duration::from_secs(60)));
    let (errored, in_flight, lucky_one) = (unlucky(15), unlucky(16), lucky(17));
    let [db, card, root] = healthy(errored);
    tail.on_end(db);
    tail.on_end(failed(card));
    tail.on_end(root);
    tail.on_end(span(in_flight, 2, 1, "db_query")); // its root has not ended
    tail.on_end(span(lucky_one, 2, 1, "db_query"));
    assert_eq!(exported(&exporter), []);

    tail.force_flush().expect("flush");

    let got = exported(&exporter);
    assert_eq!(got.len(), 4);
    assert_eq!(
        got.iter()
            .filter(|(t, _)| *t == errored)
            .cloned()
            .collect::<Vec<_>>(),
        names(errored, &["db_query", "charge_card", "checkout"])
    );
    assert!(got.contains(&(lucky_one, "db_query".to_owned())));
    let c = tail.counters();
    assert_eq!(
        (c.traces_kept(), c.traces_dropped(), c.pending_traces()),
        (2, 1, 0)
    );
}

/// Records what reaches it; the in-memory exporter forgets its spans on shutdown.
#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl SpanProcessor for Recorder {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
    fn on_end(&self, span: SpanData) {
        self.0.lock().expect("recorder").push(span.name.to_string());
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.lock().expect("recorder").push("<flush>".to_owned());
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        self.0
            .lock()
            .expect("recorder")
            .push("<shutdown>".to_owned());
        Ok(())
    }
}

#[test]
fn shutdown_decides_pending_traces_then_shuts_down_downstream() {
    let recorder = Recorder::default();
    let tail = TailSampling::builder(recorder.clone())
        .decision_wait(Duration::from_secs(60))
        .build()
        .expect("valid configuration");
    let t = unlucky(18);
    tail.on_end(failed(span(t, 2, 1, "charge_card")));
    tail.on_end(span(t, 1, 0, "checkout"));
    tail.on_end(span(unlucky(19), 1, 0, "checkout")); // healthy: dropped

    tail.shutdown_with_timeout(Duration::from_secs(5))
        .expect("shutdown");

    let seen = || recorder.0.lock().expect("recorder").clone();
    assert_eq!(seen(), ["charge_card", "checkout", "<shutdown>"]);
    assert!(matches!(
        tail.shutdown_with_timeout(Duration::from_secs(1)),
        Err(OTelSdkError::AlreadyShutdown)
    ));
    assert!(matches!(
        tail.force_flush(),
        Err(OTelSdkError::AlreadyShutdown)
    ));
    tail.on_end(failed(span(unlucky(20), 1, 0, "checkout")));
    assert_eq!(seen().len(), 3, "spans after shutdown are ignored");
    let c = tail.counters();
    assert_eq!(
        (c.traces_kept(), c.traces_dropped(), c.pending_traces()),
        (1, 1, 0)
    );
}

#[test]
fn force_flush_flushes_downstream_after_forwarding() {
    let recorder = Recorder::default();
    let tail = TailSampling::builder(recorder.clone())
        .decision_wait(Duration::from_secs(60))
        .build()
        .expect("valid configuration");
    tail.on_end(failed(span(unlucky(23), 1, 0, "checkout")));
    tail.force_flush().expect("flush");
    assert_eq!(
        *recorder.0.lock().expect("recorder"),
        ["checkout", "<flush>"]
    );
}

#[test]
fn unsampled_spans_are_ignored_and_custom_policies_apply() {
    let (tail, exporter) = pipeline(|b| {
        b.policies([
            Policy::drop(
                "no-health-checks",
                [Policy::string_attribute(
                    "health",
                    "http.route",
                    ["/health"],
                )],
            ),
            Policy::always_sample("everything-else"),
        ])
    });
    let mut unsampled = span(unlucky(20), 1, 0, "checkout");
    unsampled.span_context = SpanContext::new(
        TraceId::from(unlucky(20)),
        SpanId::from(1),
        TraceFlags::default(),
        false,
        TraceState::default(),
    );
    tail.on_end(unsampled);
    tail.on_end(with(
        span(unlucky(21), 1, 0, "GET /health"),
        KeyValue::new("http.route", "/health"),
    ));
    tail.on_end(with(
        span(unlucky(22), 1, 0, "GET /orders"),
        KeyValue::new("http.route", "/orders"),
    ));
    tail.force_flush().expect("flush");

    assert_eq!(exported(&exporter), names(unlucky(22), &["GET /orders"]));
    let c = tail.counters();
    assert_eq!(
        c.policies().collect::<Vec<_>>(),
        [("no-health-checks", 1), ("everything-else", 1)]
    );
}
