//! Spans per second through observe's tail-sampling processor against the
//! OpenTelemetry SDK's plain `BatchSpanProcessor`, both ending in the same
//! discarding exporter, and the memory one buffered span costs.
//!
//! | case | what is timed, per chunk of 2 000 spans (200 traces × 10 spans, 1% with an error) |
//! |---|---|
//! | `pipeline/batch` | `on_end` of every span into a `BatchSpanProcessor`, then its `force_flush` |
//! | `pipeline/tail_then_batch` | `on_end` into `TailSampling` (observe's defaults, decided by `force_flush` on this thread), which forwards the kept 11% to the same kind of `BatchSpanProcessor`, then `force_flush` |
//! | `on_end/batch` | only the `on_end` calls (the request-path cost); the flush is not timed |
//! | `on_end/tail` | only the `on_end` calls into `TailSampling`; deciding is not timed |
//!
//! `SpanData` values are built before the clock starts. Memory is printed
//! once, before the timings: the process's resident set grown by buffering
//! 100 000 spans (10 000 pending traces), against the same spans held in a
//! plain `Vec`, and the figure computed from `size_of` and the spans' heap.
//! (The workspace forbids `unsafe`, so no counting global allocator.)
//!
//! Run: `cargo bench -p observe-bench --bench tail_sampling`. Figures, the
//! machine and how the memory figure is computed: docs/performance.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use observe::export::tail::{TailSampling, TailSamplingBuilder};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SpanData, SpanEvents, SpanExporter, SpanLinks,
    SpanProcessor,
};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

const SPANS_PER_TRACE: u64 = 10;
const TRACES_PER_CHUNK: u64 = 200;
const CHUNK: u64 = SPANS_PER_TRACE * TRACES_PER_CHUNK;

/// Receives batches and drops them, counting spans.
#[derive(Debug, Default, Clone)]
struct Discard(Arc<AtomicU64>);

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        drop(black_box(batch));
        Ok(())
    }
}

fn batch(exporter: Discard) -> BatchSpanProcessor {
    BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(1 << 16)
                .build(),
        )
        .build()
}

fn tail(
    exporter: Discard,
    f: impl FnOnce(TailSamplingBuilder) -> TailSamplingBuilder,
) -> Option<TailSampling> {
    // A long decision wait: every trace is decided by the timed force_flush.
    match f(TailSampling::builder(batch(exporter)).decision_wait(Duration::from_secs(600))).build()
    {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("tail sampling: {e}");
            None
        }
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Trace `n`: nine children, then the local root; 1% of traces have an error.
fn push_trace(out: &mut Vec<SpanData>, n: u64) {
    let trace = (u128::from(splitmix(2 * n)) << 64) | u128::from(splitmix(2 * n + 1));
    let start = UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    for i in (0..SPANS_PER_TRACE).rev() {
        let root = i == 0;
        out.push(SpanData {
            span_context: SpanContext::new(
                TraceId::from(trace),
                SpanId::from(i + 1),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: if root {
                SpanId::INVALID
            } else {
                SpanId::from(1)
            },
            parent_span_is_remote: false,
            span_kind: if root {
                SpanKind::Server
            } else {
                SpanKind::Internal
            },
            name: if root {
                "POST /pay".into()
            } else {
                "db_query".into()
            },
            start_time: start,
            end_time: start + Duration::from_millis(40 - i),
            attributes: vec![
                KeyValue::new("http.route", "/pay"),
                KeyValue::new("db.system", "postgresql"),
                KeyValue::new("retry", i as i64),
            ],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: if n % 100 == 0 && i == 3 {
                Status::error("bank gateway returned 504")
            } else {
                Status::Unset
            },
            instrumentation_scope: Default::default(),
        });
    }
}

fn chunk(next: &mut u64) -> Vec<SpanData> {
    let mut v = Vec::with_capacity(CHUNK as usize);
    for _ in 0..TRACES_PER_CHUNK {
        push_trace(&mut v, *next);
        *next += 1;
    }
    v
}

/// Times `on_end` of every span of fresh chunks, and `force_flush` when `flush_timed`.
fn run(p: &dyn SpanProcessor, iters: u64, next: &mut u64, flush_timed: bool) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let spans = chunk(next);
        let t = Instant::now();
        for s in spans {
            p.on_end(s);
        }
        if flush_timed {
            let _ = p.force_flush();
            total += t.elapsed();
        } else {
            total += t.elapsed();
            let _ = p.force_flush();
        }
    }
    total
}

fn throughput(c: &mut Criterion) {
    for (group, flush_timed) in [("pipeline", true), ("on_end", false)] {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(CHUNK));
        let mut next = 0;

        let (out, kept) = (Discard::default(), Discard::default());
        let plain = batch(out.clone());
        g.bench_function("batch", |b| {
            b.iter_custom(|iters| run(&plain, iters, &mut next, flush_timed))
        });
        let name = if flush_timed {
            "tail_then_batch"
        } else {
            "tail"
        };
        if let Some(t) = tail(kept.clone(), |b| b) {
            g.bench_function(name, |b| {
                b.iter_custom(|iters| run(&t, iters, &mut next, flush_timed))
            });
            let counters = t.counters();
            let share = counters.spans_kept() as f64
                / (counters.spans_kept() + counters.spans_dropped()).max(1) as f64;
            println!(
                "{group}: batch exported {} spans; tail kept {:.1}% of spans ({} exported)",
                out.0.load(Ordering::Relaxed),
                share * 100.0,
                kept.0.load(Ordering::Relaxed)
            );
        }
        g.finish();
    }
}

/// Resident set size in bytes (Linux; 4 KiB pages).
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn memory(_: &mut Criterion) {
    const TRACES: u64 = 10_000;
    let Some(t) = tail(Discard::default(), |b| b.num_traces(TRACES as usize * 2)) else {
        return;
    };
    let Some(before) = rss() else {
        println!("memory: /proc/self/statm unreadable");
        return;
    };
    // Children only (9 per trace): no local root ends, nothing is decided.
    let mut buffered = 0u64;
    let mut one = Vec::with_capacity(SPANS_PER_TRACE as usize);
    for n in 0..TRACES {
        push_trace(&mut one, 1_000_000 + n);
        for s in one.drain(..) {
            if s.parent_span_id != SpanId::INVALID {
                t.on_end(s);
                buffered += 1;
            }
        }
    }
    let grown = rss().unwrap_or(before).saturating_sub(before);

    // Computed: the value, what its attributes own (plus malloc's 16 B
    // header), and the trace's share of the map slot and deadline entry;
    // the per-trace Vec's growth slack comes on top.
    let mut sample = Vec::new();
    push_trace(&mut sample, 7);
    let value = std::mem::size_of::<SpanData>();
    let heap = sample[0].attributes.capacity() * std::mem::size_of::<KeyValue>() + 16;
    let per_span = buffered / TRACES;
    let slot = (16 + 64) * 8 / 7; // u128 key + Pending, at hashbrown's 7/8 load
    let bookkeeping = slot as u64 / per_span;
    // TailSampling's growth: 4 slots, then half as many again each time.
    let mut capacity = 4;
    while capacity < per_span {
        capacity += capacity / 2;
    }
    let slack = (capacity - per_span) * value as u64 / per_span;
    println!(
        "memory per buffered span: measured {} B (RSS grew {} KiB for {buffered} spans of {} pending traces); \
         computed {} B = SpanData {value} + attributes {heap} + bookkeeping {bookkeeping} + Vec slack {slack}",
        grown / buffered.max(1),
        grown / 1024,
        t.counters().pending_traces(),
        value as u64 + heap as u64 + bookkeeping + slack,
    );
    let _ = t.shutdown_with_timeout(Duration::from_secs(5));
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = memory, throughput
}
criterion_main!(benches);
