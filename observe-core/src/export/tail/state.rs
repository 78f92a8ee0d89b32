//! The sharded state: pending traces and recent decisions, and the thread that decides due traces.

use super::counters::TailCounters;
use super::policy::{Rules, Verdict};
use super::SHARDS;
use opentelemetry::trace::SpanId;
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// A keyed, seeded hash of trace ids: one 64×64→128 multiply (trace ids come
/// from remote headers, so the seed keeps collisions unpredictable).
#[derive(Clone, Copy)]
pub(super) struct IdHash {
    pub(super) k0: u64,
    pub(super) k1: u64,
}

impl IdHash {
    pub(super) fn random() -> Self {
        let s = RandomState::new();
        IdHash {
            k0: s.hash_one(0x9e37_79b9_u64) | 1,
            k1: s.hash_one(0x7f4a_7c15_u64) | 1,
        }
    }

    #[inline]
    pub(super) fn of(&self, id: u128) -> u64 {
        fold_mul((id as u64) ^ self.k0, ((id >> 64) as u64) ^ self.k1)
    }
}

#[inline]
pub(super) fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

pub(super) struct IdHasher {
    pub(super) keys: IdHash,
    pub(super) h: u64,
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.h = fold_mul(self.h ^ u64::from_le_bytes(b) ^ self.keys.k0, self.keys.k1);
        }
    }

    #[inline]
    fn write_u128(&mut self, id: u128) {
        self.h = self.keys.of(id);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.h
    }
}

impl BuildHasher for IdHash {
    type Hasher = IdHasher;

    #[inline]
    fn build_hasher(&self) -> IdHasher {
        IdHasher { keys: *self, h: 0 }
    }
}

pub(super) struct Pending {
    /// In end order.
    pub(super) spans: Vec<SpanData>,
    pub(super) first_seen: Instant,
    /// Set when the first local root ended.
    pub(super) deadline: Option<Instant>,
}

/// Recent decisions: one map, two FIFO queues bounding it.
pub(super) struct Decisions {
    pub(super) map: HashMap<u128, bool, IdHash>,
    pub(super) kept: VecDeque<u128>,
    pub(super) dropped: VecDeque<u128>,
    pub(super) kept_cap: usize,
    pub(super) dropped_cap: usize,
}

impl Decisions {
    pub(super) fn insert(&mut self, id: u128, keep: bool) {
        let (queue, cap) = if keep {
            (&mut self.kept, self.kept_cap)
        } else {
            (&mut self.dropped, self.dropped_cap)
        };
        if cap == 0 {
            return;
        }
        if queue.len() >= cap {
            if let Some(old) = queue.pop_front() {
                if self.map.get(&old) == Some(&keep) {
                    self.map.remove(&old);
                }
            }
        }
        queue.push_back(id);
        self.map.insert(id, keep);
    }
}

pub(super) struct Shard {
    pub(super) pending: HashMap<u128, Pending, IdHash>,
    pub(super) decided: Decisions,
    /// Traces whose first local root ended, in deadline order.
    pub(super) due: VecDeque<(Instant, u128)>,
}

pub(super) struct Worker {
    pub(super) stop: bool,
}

pub(super) struct Inner {
    pub(super) shards: Box<[Mutex<Shard>]>,
    pub(super) shard_hash: IdHash,
    pub(super) rules: Rules,
    pub(super) decision_wait: Duration,
    pub(super) root_wait: Duration,
    pub(super) num_traces: usize,
    pub(super) max_spans: usize,
    pub(super) tick: Duration,
    pub(super) scan_every: Duration,
    pub(super) counters: Arc<TailCounters>,
    pub(super) downstream: RwLock<Box<dyn SpanProcessor>>,
    pub(super) resource: RwLock<Resource>,
    /// Serialises decision passes (the thread's, force_flush's, shutdown's);
    /// holds the time of the last scan for traces without a local root.
    pub(super) deciding: Mutex<Instant>,
    pub(super) worker: Mutex<Worker>,
    pub(super) wake: Condvar,
    pub(super) shut: AtomicBool,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    #[inline]
    pub(super) fn shard(&self, id: u128) -> &Mutex<Shard> {
        &self.shards[(self.shard_hash.of(id) >> 60) as usize % SHARDS]
    }

    /// Applies the policies to a whole trace and counts the decision.
    pub(super) fn judge(&self, id: u128, spans: &[SpanData], res: &Resource) -> bool {
        let c = &*self.counters;
        match self.rules.verdict(id, spans, res) {
            Verdict::Kept(i) => {
                TailCounters::add(&c.traces_kept, 1);
                TailCounters::add(&c.spans_kept, spans.len());
                TailCounters::add(&c.decided_by[i].1, 1);
                true
            }
            Verdict::Dropped(why) => {
                TailCounters::add(&c.traces_dropped, 1);
                TailCounters::add(&c.spans_dropped, spans.len());
                match why {
                    Some(i) => TailCounters::add(&c.decided_by[i].1, 1),
                    None => TailCounters::add(&c.dropped_unmatched, 1),
                }
                false
            }
        }
    }

    pub(super) fn forward(&self, spans: impl IntoIterator<Item = SpanData>) {
        let d = read(&self.downstream);
        for s in spans {
            d.on_end(s);
        }
    }

    pub(super) fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() || self.shut.load(Ordering::Relaxed) {
            return;
        }
        let id = u128::from_be_bytes(span.span_context.trace_id().to_bytes());
        let local_root = span.parent_span_id == SpanId::INVALID || span.parent_span_is_remote;
        let mut guard = lock(self.shard(id));
        let shard = &mut *guard;
        if let Some(p) = shard.pending.get_mut(&id) {
            if p.spans.len() == p.spans.capacity() {
                // Grow by half, not double: a 9-span trace fills 4, 6, 9 slots
                // instead of 16 (a slot is a whole SpanData, ~350 bytes).
                p.spans.reserve_exact((p.spans.len() / 2).max(1));
            }
            p.spans.push(span);
            if local_root && p.deadline.is_none() {
                let due = Instant::now() + self.decision_wait;
                p.deadline = Some(due);
                shard.due.push_back((due, id));
            }
            if p.spans.len() < self.max_spans {
                return;
            }
            // Too many spans: decide now on what has arrived.
            let Some(p) = shard.pending.remove(&id) else {
                return;
            };
            self.counters.pending_traces.fetch_sub(1, Ordering::Relaxed);
            TailCounters::add(&self.counters.overflow_max_spans, 1);
            self.decide_now(guard, id, p.spans);
            return;
        }
        if let Some(&keep) = shard.decided.map.get(&id) {
            drop(guard);
            let c = &*self.counters;
            if keep {
                TailCounters::add(&c.late_spans_kept, 1);
                TailCounters::add(&c.spans_kept, 1);
                self.forward([span]);
            } else {
                TailCounters::add(&c.late_spans_dropped, 1);
                TailCounters::add(&c.spans_dropped, 1);
            }
            return;
        }
        let pending = &self.counters.pending_traces;
        if pending.fetch_add(1, Ordering::Relaxed) >= self.num_traces {
            pending.fetch_sub(1, Ordering::Relaxed);
            TailCounters::add(&self.counters.overflow_num_traces, 1);
            self.decide_now(guard, id, vec![span]);
            return;
        }
        let now = Instant::now();
        let deadline = local_root.then(|| now + self.decision_wait);
        if let Some(due) = deadline {
            shard.due.push_back((due, id));
        }
        let mut spans = Vec::with_capacity(4);
        spans.push(span);
        shard.pending.insert(
            id,
            Pending {
                spans,
                first_seen: now,
                deadline,
            },
        );
    }

    /// Overflow: decides a trace on the calling thread, under its shard's lock.
    pub(super) fn decide_now(
        &self,
        mut shard: MutexGuard<'_, Shard>,
        id: u128,
        spans: Vec<SpanData>,
    ) {
        let keep = self.judge(id, &spans, &read(&self.resource));
        shard.decided.insert(id, keep);
        drop(shard);
        if keep {
            self.forward(spans);
        }
    }

    /// Decides the traces that are due at `now` (or all pending ones).
    pub(super) fn decide(&self, now: Instant, all: bool) {
        let mut last_scan = lock(&self.deciding);
        let scan = all || now.saturating_duration_since(*last_scan) >= self.scan_every;
        if scan {
            *last_scan = now;
        }
        let res = read(&self.resource).clone();
        let mut ready: Vec<(u128, Vec<SpanData>)> = Vec::new();
        let mut kept: Vec<SpanData> = Vec::new();
        let mut trash: Vec<Vec<SpanData>> = Vec::new();
        for shard in self.shards.iter() {
            {
                let mut guard = lock(shard);
                let s = &mut *guard;
                if all {
                    ready.extend(s.pending.drain().map(|(id, p)| (id, p.spans)));
                    s.due.clear();
                } else {
                    while let Some(&(due, id)) = s.due.front() {
                        if due > now {
                            break;
                        }
                        s.due.pop_front();
                        if s.pending.get(&id).is_some_and(|p| p.deadline == Some(due)) {
                            if let Some(p) = s.pending.remove(&id) {
                                ready.push((id, p.spans));
                            }
                        }
                    }
                    if scan {
                        let root_wait = self.root_wait;
                        s.pending.retain(|id, p| {
                            let orphan = p.deadline.is_none()
                                && now.saturating_duration_since(p.first_seen) >= root_wait;
                            if orphan {
                                ready.push((*id, std::mem::take(&mut p.spans)));
                            }
                            !orphan
                        });
                    }
                }
                if ready.is_empty() {
                    continue;
                }
                self.counters
                    .pending_traces
                    .fetch_sub(ready.len(), Ordering::Relaxed);
                for (id, spans) in ready.drain(..) {
                    let keep = self.judge(id, &spans, &res);
                    s.decided.insert(id, keep);
                    if keep {
                        kept.extend(spans);
                    } else {
                        trash.push(spans);
                    }
                }
            }
            // Outside the shard's lock: forward, and free dropped spans.
            self.forward(kept.drain(..));
            trash.clear();
        }
    }
}

pub(super) fn run(inner: Arc<Inner>) {
    loop {
        {
            let guard = lock(&inner.worker);
            if guard.stop {
                return;
            }
            let (guard, _) = inner
                .wake
                .wait_timeout(guard, inner.tick)
                .unwrap_or_else(PoisonError::into_inner);
            if guard.stop {
                return;
            }
        }
        inner.decide(Instant::now(), false);
    }
}
