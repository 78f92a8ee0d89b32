//! Exemplars: for each histogram bucket of each attribute set, the trace and
//! span of the latest measurement that fell into it, so a latency spike on a
//! dashboard links to one of the requests that made it.
//!
//! The OpenTelemetry SDK keeps exemplars only when the measurement is made
//! inside an OpenTelemetry `Context` holding a sampled span, which observe's
//! spans do not set; so observe keeps its own, here, and the Prometheus
//! exporter renders them on the `_bucket` lines of its OpenMetrics output.
//!
//! ```
//! use observe_core::exemplars::{AttributesKey, Exemplars};
//! use opentelemetry::KeyValue;
//!
//! let exemplars = Exemplars::new();
//! let attrs = [
//!     KeyValue::new("http.request.method", "GET"),
//!     KeyValue::new("http.route", "/pay"),
//! ];
//! let key = AttributesKey::of(&attrs);
//! // On the hot path, next to `histogram.record(0.042, &attrs)`:
//! exemplars.record("http.server.request.duration", key, 0.042, [0x4b; 16], [0x00; 8], 1_700_000_000_000_000_000);
//!
//! // At scrape time, for a data point with these attributes and bounds:
//! let per_bucket = exemplars.for_buckets("http.server.request.duration", key, &[0.01, 0.05, 0.1]);
//! assert_eq!(per_bucket.len(), 4);
//! assert_eq!(per_bucket[1].map(|e| e.value), Some(0.042));
//! ```
//!
//! # Design
//!
//! A fixed table of slots allocated once ([`DEFAULT_CAPACITY`] slots of one
//! cache line each, 256 KiB), two-way set associative: a (instrument,
//! attribute set, bucket) triple hashes to a set of two slots; a new exemplar
//! replaces the one with the same triple, else an empty slot, else the older
//! of the two. Memory is bounded whatever the cardinality; under pressure the
//! oldest exemplars of colliding series are lost, which is fine for samples.
//!
//! Each slot is a seqlock made of atomics: [`Exemplars::record`] takes no
//! lock and never waits (if another thread is writing the same slot at that
//! instant the newer measurement is simply not kept), allocates nothing, and
//! costs one hash of the instrument name, a binary search in the bucket
//! bounds and eight atomic stores. Readers retry a torn read a few times.
//!
//! # Keying
//!
//! [`AttributesKey`] is an order-independent 64-bit hash of an attribute
//! set: the key computed on the hot path from the `&[KeyValue]` passed to
//! `Histogram::record` equals the key the renderer computes from the SDK data
//! point's attributes (which the SDK may have sorted), as long as each key
//! appears once. Buckets are chosen at record time with the bounds registered
//! for the instrument (default: [`HTTP_DURATION_BUCKETS`]); the renderer
//! re-buckets by value, so an exemplar always sits in the bucket that
//! contains its value even if a view changed the bounds.
//!
//! [`HTTP_DURATION_BUCKETS`]: crate::signals::HTTP_DURATION_BUCKETS

use crate::signals::names::HTTP_DURATION_BUCKETS;
use opentelemetry::{KeyValue, Value};
use std::fmt;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// Default number of slots (one exemplar each): 4096, 256 KiB.
pub const DEFAULT_CAPACITY: usize = 4096;

const WAYS: usize = 2;
const MAX_CAPACITY: usize = 1 << 20;
const READ_ATTEMPTS: usize = 4;

/// One measurement kept as an exemplar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exemplar {
    /// The measured value.
    pub value: f64,
    /// W3C trace id of the span the measurement was made in.
    pub trace_id: [u8; 16],
    /// Span id of that span.
    pub span_id: [u8; 8],
    /// When, in nanoseconds since the Unix epoch.
    pub unix_nanos: u64,
}

/// Order-independent hash of an attribute set, computed once per measurement
/// and matched against the SDK's data points at scrape time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributesKey(u64);

impl AttributesKey {
    /// The key of `attributes` (each key once; order does not matter).
    pub fn of(attributes: &[KeyValue]) -> Self {
        Self::from_attributes(attributes)
    }

    /// The key of an attribute iterator, such as a data point's `attributes()`.
    pub fn from_attributes<'a>(attributes: impl IntoIterator<Item = &'a KeyValue>) -> Self {
        let mut sum = 0u64;
        let mut n = 0u64;
        for kv in attributes {
            sum = sum.wrapping_add(pair_hash(kv));
            n += 1;
        }
        AttributesKey(fmix64(sum ^ n.wrapping_mul(SEED)))
    }

    /// The raw 64-bit hash.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// The current time in nanoseconds since the Unix epoch (0 before 1970).
pub fn now_unix_nanos() -> u64 {
    // The spans' clock: no `clock_gettime` per measurement.
    crate::clock::wall_now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Latest exemplar per (instrument, attribute set, bucket), in bounded memory.
/// Cheap to clone (shared).
#[derive(Clone)]
pub struct Exemplars {
    inner: Arc<Inner>,
}

struct Inner {
    slots: Box<[Slot]>,
    set_mask: usize,
    bounds: Vec<(&'static str, &'static [f64])>,
    default_bounds: &'static [f64],
}

impl fmt::Debug for Exemplars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exemplars")
            .field("capacity", &self.capacity())
            .field("bounds", &self.inner.bounds)
            .finish_non_exhaustive()
    }
}

impl Default for Exemplars {
    fn default() -> Self {
        Self::new()
    }
}

/// Configures [`Exemplars`].
#[derive(Debug, Clone)]
pub struct ExemplarsBuilder {
    capacity: usize,
    bounds: Vec<(&'static str, &'static [f64])>,
    default_bounds: &'static [f64],
}

impl ExemplarsBuilder {
    /// Number of exemplars kept (rounded up to a power of two, at least 2,
    /// at most 2^20). Default [`DEFAULT_CAPACITY`].
    pub fn capacity(mut self, slots: usize) -> Self {
        self.capacity = slots;
        self
    }

    /// Bucket bounds of `instrument` when they differ from the default.
    pub fn bounds(mut self, instrument: &'static str, bounds: &'static [f64]) -> Self {
        self.bounds.retain(|(name, _)| *name != instrument);
        self.bounds.push((instrument, bounds));
        self
    }

    /// Bounds of every instrument not named in [`bounds`](Self::bounds)
    /// (default [`HTTP_DURATION_BUCKETS`], the bounds of all of observe's histograms).
    pub fn default_bounds(mut self, bounds: &'static [f64]) -> Self {
        self.default_bounds = bounds;
        self
    }

    /// Allocates the table.
    pub fn build(self) -> Exemplars {
        let slots = self.capacity.clamp(WAYS, MAX_CAPACITY).next_power_of_two();
        let table: Box<[Slot]> = (0..slots).map(|_| Slot::default()).collect();
        Exemplars {
            inner: Arc::new(Inner {
                slots: table,
                set_mask: slots / WAYS - 1,
                bounds: self.bounds,
                default_bounds: self.default_bounds,
            }),
        }
    }
}

impl Exemplars {
    /// A table of [`DEFAULT_CAPACITY`] slots, with [`HTTP_DURATION_BUCKETS`] for every instrument.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder.
    pub fn builder() -> ExemplarsBuilder {
        ExemplarsBuilder {
            capacity: DEFAULT_CAPACITY,
            bounds: Vec::new(),
            default_bounds: HTTP_DURATION_BUCKETS,
        }
    }

    /// Number of exemplars the table holds at most.
    pub fn capacity(&self) -> usize {
        self.inner.slots.len()
    }

    /// Keeps `value` as the latest exemplar of its bucket for `instrument`
    /// (the OpenTelemetry instrument name, e.g. `http.server.request.duration`)
    /// and the attribute set `attributes`. NaN values and the invalid
    /// (all-zero) trace id are ignored. Never blocks, never allocates.
    ///
    /// Called from any thread, on the hot path, right after the histogram's
    /// own `record`.
    #[inline]
    pub fn record(
        &self,
        instrument: &'static str,
        attributes: AttributesKey,
        value: f64,
        trace_id: [u8; 16],
        span_id: [u8; 8],
        unix_nanos: u64,
    ) {
        if value.is_nan() || trace_id == [0; 16] {
            return;
        }
        let bucket = bucket_index(self.inner.bounds_for(instrument), value);
        let tag = tag_for(series_hash(instrument, attributes), bucket);
        self.inner.store(
            tag,
            &Exemplar {
                value,
                trace_id,
                span_id,
                unix_nanos,
            },
        );
    }

    /// The latest exemplar of each bucket of a data point of `instrument`
    /// with attributes `attributes` and bucket upper bounds `bounds`: one
    /// entry per bucket, the last one being `+Inf` (`bounds.len() + 1` in all).
    ///
    /// Called by the renderer at scrape time; may run concurrently with `record`.
    pub fn for_buckets(
        &self,
        instrument: &str,
        attributes: AttributesKey,
        bounds: &[f64],
    ) -> Vec<Option<Exemplar>> {
        let mut out = vec![None; bounds.len() + 1];
        let series = series_hash(instrument, attributes);
        let recorded = self.inner.bounds_for(instrument).len();
        for bucket in 0..=recorded {
            let Some(e) = self.inner.load(tag_for(series, bucket)) else {
                continue;
            };
            let i = bucket_index(bounds, e.value);
            if let Some(slot) = out.get_mut(i) {
                if slot.is_none_or(|o: Exemplar| o.unix_nanos <= e.unix_nanos) {
                    *slot = Some(e);
                }
            }
        }
        out
    }
}

impl Inner {
    fn bounds_for(&self, instrument: &str) -> &'static [f64] {
        self.bounds
            .iter()
            .find(|(name, _)| std::ptr::eq(*name, instrument) || *name == instrument)
            .map_or(self.default_bounds, |(_, b)| *b)
    }

    fn set(&self, tag: u64) -> &[Slot] {
        // Truncation is intended: the low bits of a mixed hash pick the set.
        let base = (tag as usize & self.set_mask) * WAYS;
        self.slots.get(base..base + WAYS).unwrap_or_default()
    }

    fn store(&self, tag: u64, e: &Exemplar) {
        let set = self.set(tag);
        let victim = set
            .iter()
            .find(|s| s.tag.load(Ordering::Relaxed) == tag)
            .or_else(|| set.iter().find(|s| s.tag.load(Ordering::Relaxed) == 0))
            .or_else(|| set.iter().min_by_key(|s| s.nanos.load(Ordering::Relaxed)));
        if let Some(slot) = victim {
            slot.write(tag, e);
        }
    }

    fn load(&self, tag: u64) -> Option<Exemplar> {
        self.set(tag)
            .iter()
            .filter_map(|s| s.read().filter(|(t, _)| *t == tag).map(|(_, e)| e))
            .max_by_key(|e| e.unix_nanos)
    }
}

/// One exemplar behind a sequence counter (odd while being written).
#[derive(Default)]
#[repr(align(64))]
struct Slot {
    seq: AtomicU64,
    tag: AtomicU64,
    value: AtomicU64,
    trace_hi: AtomicU64,
    trace_lo: AtomicU64,
    span: AtomicU64,
    nanos: AtomicU64,
}

impl Slot {
    fn write(&self, tag: u64, e: &Exemplar) {
        let s = self.seq.load(Ordering::Relaxed);
        if s & 1 == 1
            || self
                .seq
                .compare_exchange(s, s.wrapping_add(1), Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            // Another thread is writing this slot right now: keep its exemplar.
            return;
        }
        // Readers that see any of the stores below also see the odd sequence.
        fence(Ordering::Release);
        let (hi, lo) = split_trace(e.trace_id);
        self.tag.store(tag, Ordering::Relaxed);
        self.value.store(e.value.to_bits(), Ordering::Relaxed);
        self.trace_hi.store(hi, Ordering::Relaxed);
        self.trace_lo.store(lo, Ordering::Relaxed);
        self.span
            .store(u64::from_be_bytes(e.span_id), Ordering::Relaxed);
        self.nanos.store(e.unix_nanos, Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    fn read(&self) -> Option<(u64, Exemplar)> {
        for _ in 0..READ_ATTEMPTS {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let tag = self.tag.load(Ordering::Relaxed);
            let value = f64::from_bits(self.value.load(Ordering::Relaxed));
            let hi = self.trace_hi.load(Ordering::Relaxed);
            let lo = self.trace_lo.load(Ordering::Relaxed);
            let span = self.span.load(Ordering::Relaxed);
            let nanos = self.nanos.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                if tag == 0 {
                    return None;
                }
                return Some((
                    tag,
                    Exemplar {
                        value,
                        trace_id: join_trace(hi, lo),
                        span_id: span.to_be_bytes(),
                        unix_nanos: nanos,
                    },
                ));
            }
        }
        None
    }
}

fn split_trace(id: [u8; 16]) -> (u64, u64) {
    let n = u128::from_be_bytes(id);
    ((n >> 64) as u64, n as u64)
}

fn join_trace(hi: u64, lo: u64) -> [u8; 16] {
    ((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes()
}

/// Index of the bucket holding `value`: buckets are `(bounds[i-1], bounds[i]]`,
/// the last one `(bounds[n-1], +Inf)`.
pub(crate) fn bucket_index(bounds: &[f64], value: f64) -> usize {
    bounds.partition_point(|b| *b < value)
}

const SEED: u64 = 0x9E37_79B9_7F4A_7C15;
const MUL: u64 = 0x517C_C1B7_2722_0A95;

/// FxHash-style word hasher (fast, deterministic, not DoS-resistant: the
/// table it indexes is fixed-size, so collisions cost only lost exemplars).
struct WordHasher(u64);

impl WordHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(MUL);
    }

    #[inline]
    fn bytes(&mut self, b: &[u8]) {
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
        self.add(b.len() as u64);
    }
}

fn pair_hash(kv: &KeyValue) -> u64 {
    let mut h = WordHasher(SEED);
    h.bytes(kv.key.as_str().as_bytes());
    match &kv.value {
        Value::String(s) => {
            h.add(1);
            h.bytes(s.as_str().as_bytes());
        }
        Value::I64(i) => {
            h.add(2);
            h.add(*i as u64);
        }
        Value::F64(f) => {
            h.add(3);
            h.add(f.to_bits());
        }
        Value::Bool(b) => {
            h.add(4);
            h.add(u64::from(*b));
        }
        other => {
            h.add(5);
            h.bytes(other.to_string().as_bytes());
        }
    }
    fmix64(h.0)
}

fn series_hash(instrument: &str, attributes: AttributesKey) -> u64 {
    let mut h = WordHasher(SEED);
    h.bytes(instrument.as_bytes());
    fmix64(h.0 ^ attributes.0.rotate_left(29))
}

fn tag_for(series: u64, bucket: usize) -> u64 {
    let t = fmix64(series ^ (bucket as u64).wrapping_add(1).wrapping_mul(SEED));
    t.max(1)
}

/// MurmurHash3's 64-bit finaliser.
#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "http.server.request.duration";

    fn attrs(route: &'static str) -> Vec<KeyValue> {
        vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", route),
            KeyValue::new("http.response.status_code", 200_i64),
        ]
    }

    #[test]
    fn key_ignores_order_and_sees_every_value() {
        let a = attrs("/pay");
        let mut b = a.clone();
        b.reverse();
        assert_eq!(AttributesKey::of(&a), AttributesKey::of(&b));
        assert_ne!(AttributesKey::of(&a), AttributesKey::of(&attrs("/refund")));
        // The same digits as a string or as an integer are different values.
        let s = [KeyValue::new("code", "200")];
        let i = [KeyValue::new("code", 200_i64)];
        assert_ne!(AttributesKey::of(&s), AttributesKey::of(&i));
        assert_ne!(AttributesKey::of(&[]), AttributesKey::of(&s));
    }

    #[test]
    fn latest_per_bucket_and_rebucketed_by_value() {
        let ex = Exemplars::new();
        let key = AttributesKey::of(&attrs("/pay"));
        ex.record(NAME, key, 0.003, [1; 16], [1; 8], 10);
        ex.record(NAME, key, 0.004, [2; 16], [2; 8], 20);
        ex.record(NAME, key, 0.2, [3; 16], [3; 8], 30);
        ex.record(NAME, key, 99.0, [4; 16], [4; 8], 40);
        ex.record(NAME, key, f64::NAN, [5; 16], [5; 8], 50);
        ex.record(NAME, key, 0.004, [0; 16], [6; 8], 60);
        let b = ex.for_buckets(NAME, key, HTTP_DURATION_BUCKETS);
        assert_eq!(b.len(), HTTP_DURATION_BUCKETS.len() + 1);
        assert_eq!(b[0].map(|e| (e.trace_id, e.value)), Some(([2; 16], 0.004)));
        assert_eq!(b[6].map(|e| e.span_id), Some([3; 8])); // (0.1, 0.25]
        assert_eq!(b[14].map(|e| e.unix_nanos), Some(40)); // +Inf
        assert_eq!(b.iter().flatten().count(), 3);
        // Other bounds: the exemplars move to the buckets holding their values.
        let b = ex.for_buckets(NAME, key, &[1.0]);
        assert_eq!(b[0].map(|e| e.value), Some(0.2));
        assert_eq!(b[1].map(|e| e.value), Some(99.0));
        // Other series and instruments see nothing.
        let other = AttributesKey::of(&attrs("/refund"));
        assert!(ex
            .for_buckets(NAME, other, &[1.0])
            .iter()
            .all(Option::is_none));
        assert!(ex
            .for_buckets("observed.duration", key, &[1.0])
            .iter()
            .all(Option::is_none));
    }

    #[test]
    fn registered_bounds_and_capacity() {
        static B: &[f64] = &[10.0, 100.0];
        let ex = Exemplars::builder().capacity(3).bounds("db.ms", B).build();
        assert_eq!(ex.capacity(), 4);
        let key = AttributesKey::of(&[]);
        ex.record("db.ms", key, 50.0, [7; 16], [7; 8], 1);
        assert_eq!(
            ex.for_buckets("db.ms", key, B)[1].map(|e| e.value),
            Some(50.0)
        );
    }

    #[test]
    fn memory_stays_bounded_under_high_cardinality() {
        let ex = Exemplars::builder().capacity(64).build();
        for i in 0..10_000_u64 {
            let key = AttributesKey::of(&[KeyValue::new("user", i as i64)]);
            ex.record(NAME, key, 0.01, [9; 16], [9; 8], i);
        }
        assert_eq!(ex.capacity(), 64);
        // The most recent series is still there.
        let last = AttributesKey::of(&[KeyValue::new("user", 9_999_i64)]);
        assert!(ex.for_buckets(NAME, last, HTTP_DURATION_BUCKETS)[1].is_some());
    }

    #[test]
    fn concurrent_writers_never_tear_an_exemplar() {
        let ex = Exemplars::builder().capacity(2).build();
        let key = AttributesKey::of(&[]);
        std::thread::scope(|s| {
            for t in 1..=4_u8 {
                let ex = ex.clone();
                s.spawn(move || {
                    for i in 0..20_000_u64 {
                        let v = f64::from(t);
                        ex.record(NAME, key, v, [t; 16], [t; 8], i);
                    }
                });
            }
            for _ in 0..20_000 {
                for e in ex.for_buckets(NAME, key, &[]).into_iter().flatten() {
                    let t = e.trace_id[0];
                    assert_eq!(e.trace_id, [t; 16]);
                    assert_eq!(e.span_id, [t; 8]);
                    assert_eq!(e.value, f64::from(t));
                }
            }
        });
    }
}
