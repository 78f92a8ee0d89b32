//! Span attribute vectors handed back from the export thread to request
//! threads.
//!
//! A server span's attributes are a vector its request thread allocates,
//! with strings in it (`url.path`). Dropped on the export thread, each of
//! those blocks goes back to the request thread's malloc arena under that
//! arena's lock, which the request thread takes too when it allocates: with
//! glibc the two threads then wait on each other (perf shows futex wake-ups
//! inside `malloc` on the request path). So the export thread copies such a
//! span's attributes into a vector of its own and hands the original back,
//! values and all. The next request thread that reserves room for a span's
//! attributes clears it (freeing its strings on a request thread, into that
//! thread's cache) and fills it again.
//!
//! Bounded both ways: with [`POOL`] vectors already waiting, the export
//! thread drops the original itself (as before); with none waiting, the
//! request thread allocates (as before). Only vectors of
//! [`MIN_CAPACITY`]..=[`MAX_CAPACITY`] attributes come back: the ones the
//! server layers reserve, never a huge one held for long. What waits is
//! at most 1 024 vectors of at most 32 attributes (1.8 MB; 0.7 MB of the
//! server layers' 12), with the strings they held until one is reused.

use crossbeam_queue::ArrayQueue;
use opentelemetry::KeyValue;
use std::sync::OnceLock;

/// Most vectors waiting (a batch is 512 spans).
const POOL: usize = 1024;
/// The smallest vector handed back (the server layers reserve 12).
pub(crate) const MIN_CAPACITY: usize = 8;
/// The largest vector handed back.
const MAX_CAPACITY: usize = 32;

fn pool() -> &'static ArrayQueue<Vec<KeyValue>> {
    static WAITING: OnceLock<ArrayQueue<Vec<KeyValue>>> = OnceLock::new();
    WAITING.get_or_init(|| ArrayQueue::new(POOL))
}

/// An empty vector with room for `n` attributes: one handed back, when
/// `n` is one the pool serves and one is waiting, else a new one.
#[inline]
pub(crate) fn vector(n: usize) -> Vec<KeyValue> {
    vector_from(pool(), n)
}

#[inline]
fn vector_from(pool: &ArrayQueue<Vec<KeyValue>>, n: usize) -> Vec<KeyValue> {
    if (MIN_CAPACITY..=MAX_CAPACITY).contains(&n) {
        if let Some(mut v) = pool.pop() {
            v.clear();
            v.reserve(n);
            return v;
        }
    }
    Vec::with_capacity(n)
}

/// On the export thread: replaces `attributes` with a copy this thread
/// allocates, and hands the original back for a request thread to reuse
/// (when its size is one the pool serves and the pool has room).
#[inline]
pub(crate) fn hand_back(attributes: &mut Vec<KeyValue>) {
    hand_back_to(pool(), attributes);
}

#[inline]
fn hand_back_to(pool: &ArrayQueue<Vec<KeyValue>>, attributes: &mut Vec<KeyValue>) {
    // A full pool: no copy made for nothing (the original is dropped here).
    if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&attributes.capacity()) || pool.is_full() {
        return;
    }
    let copy = attributes.clone();
    let original = std::mem::replace(attributes, copy);
    // Full: dropped here, as without the pool.
    let _ = pool.push(original);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_handed_back_is_reused_cleared_and_its_copy_keeps_the_values() {
        let pool = ArrayQueue::new(2);
        let mut attrs = vector_from(&pool, 12);
        attrs.push(KeyValue::new("url.path", "/orders/42".to_owned()));
        attrs.push(KeyValue::new("http.route", "/orders/{id}"));
        let original = attrs.as_ptr();
        hand_back_to(&pool, &mut attrs);
        // The span keeps its values, in a vector of the export thread's.
        assert_eq!(
            attrs,
            vec![
                KeyValue::new("url.path", "/orders/42".to_owned()),
                KeyValue::new("http.route", "/orders/{id}")
            ]
        );
        assert_ne!(attrs.as_ptr(), original);
        // The next span's vector is the original, empty, with its room.
        let next = vector_from(&pool, 12);
        assert_eq!((next.as_ptr(), next.len()), (original, 0));
        assert!(next.capacity() >= 12);
        // Small and large vectors are not pooled.
        let mut small: Vec<KeyValue> = Vec::with_capacity(2);
        small.push(KeyValue::new("code.function", "f"));
        let small_ptr = small.as_ptr();
        hand_back_to(&pool, &mut small);
        assert_eq!(small.as_ptr(), small_ptr);
        assert!(pool.pop().is_none());
        let mut large = Vec::with_capacity(MAX_CAPACITY + 1);
        large.push(KeyValue::new("k", 1));
        hand_back_to(&pool, &mut large);
        assert!(pool.pop().is_none());
        // A full pool leaves the original to the export thread, uncopied.
        for _ in 0..3 {
            let mut v = Vec::with_capacity(12);
            v.push(KeyValue::new("k", 1));
            let ptr = v.as_ptr();
            let was_full = pool.is_full();
            hand_back_to(&pool, &mut v);
            assert_eq!(v.as_ptr() == ptr, was_full);
        }
        assert_eq!(pool.len(), 2);
    }
}
