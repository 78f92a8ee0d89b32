//! The bounded queue and the worker thread behind the span and log pipelines.
//!
//! ```text
//!  request thread                          observe-export-<signal> thread (current-thread tokio runtime)
//!  ──────────────                          ─────────────────────────────────────────────────────────────
//!  Queue::push ─try_send─▶ [sync_channel, bounded] ──try_recv──▶ batch (≤ max_export_batch_size)
//!     │  full: count queue_full, drop        ▲                           │
//!     └─ pending == batch size: Notify ──────┘ wake                      ▼
//!                                        timer (scheduled_delay) ──▶ Export::export(batch), up to
//!                                                                    max_in_flight at once
//!  guard / provider ──Control (flush, shutdown, resource)──▶ worker      │ error/timeout: count export_failed
//!                   ◀── reply (std channel, waited with a timeout) ──────┘ deadline: count shutdown_timeout
//! ```
//!
//! [`Queue::push`] runs on the thread that ended the span or logged the
//! event: it never blocks (one counter increment, one `try_send`, and a
//! `Notify` only when a full batch is waiting). Everything
//! else — building batches, encoding, network and file I/O, retries — runs on
//! the pipeline's own thread, whose tokio runtime is not the user's.

use super::client::OtlpClient;
use super::dropped::{DropReason, DropStats, Signal};
use super::otlp::OtlpTarget;
use super::worker::{spawn_worker, Bounded, ShutdownDeadline, WorkerHandle};
use crate::error::InitError;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::Resource;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

/// Sizes and delays of a batch pipeline (spans or log records).
///
/// Defaults follow the OpenTelemetry specification: `OTEL_BSP_*` for spans
/// (delay 5 s), `OTEL_BLRP_*` for log records (delay 1 s), queue 2048,
/// batch 512, export timeout 30 s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    pub(crate) max_queue_size: usize,
    pub(crate) max_export_batch_size: usize,
    pub(crate) scheduled_delay: Duration,
    pub(crate) export_timeout: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_queue_size: 2048,
            max_export_batch_size: 512,
            scheduled_delay: Duration::from_secs(5),
            export_timeout: Duration::from_secs(30),
        }
    }
}

impl BatchConfig {
    /// Defaults for log records (`OTEL_BLRP_SCHEDULE_DELAY` default, 1 s).
    pub fn logs() -> Self {
        BatchConfig {
            scheduled_delay: Duration::from_secs(1),
            ..Self::default()
        }
    }

    /// Most items waiting for export; more are dropped and counted (`queue_full`).
    pub fn max_queue_size(mut self, n: usize) -> Self {
        self.max_queue_size = n.max(1);
        self.max_export_batch_size = self.max_export_batch_size.min(self.max_queue_size);
        self
    }

    /// Most items in one export call (at most the queue size).
    pub fn max_export_batch_size(mut self, n: usize) -> Self {
        self.max_export_batch_size = n.clamp(1, self.max_queue_size);
        self
    }

    /// Longest wait before a partial batch is exported.
    pub fn scheduled_delay(mut self, d: Duration) -> Self {
        self.scheduled_delay = d.max(Duration::from_millis(1));
        self
    }

    /// Longest time one export call may take before its batch counts as failed.
    pub fn export_timeout(mut self, d: Duration) -> Self {
        self.export_timeout = d.max(Duration::from_millis(1));
        self
    }
}

/// The constructors and accessors of a pipeline type over a [`Queue`]:
/// `new(exporter, config)`, `with_exporter_factory(make, config)`,
/// `dropped(reason)` and the guard's `pipeline()` handle.
macro_rules! queue_pipeline {
    ($ty:ident, $item:ty, $signal:expr, $exporter:path, $export:ident) => {
        impl $ty {
            /// Starts the pipeline's thread with `exporter`.
            pub fn new<E: $exporter + 'static>(
                exporter: E,
                config: BatchConfig,
            ) -> Result<Self, InitError> {
                Self::with_exporter_factory(move || Ok(exporter), config)
            }

            /// Starts the pipeline's thread and builds the exporter there,
            /// inside its tokio runtime (what a tonic exporter needs); an
            /// `Err` becomes [`InitError::Exporter`].
            pub fn with_exporter_factory<E, F>(
                make: F,
                config: BatchConfig,
            ) -> Result<Self, InitError>
            where
                E: $exporter + 'static,
                F: FnOnce() -> Result<E, String> + Send + 'static,
            {
                let queue = Queue::<$item>::start($signal, config, move || {
                    make().map(|e| $export(Arc::new(e)))
                })?;
                Ok($ty {
                    queue: Arc::new(queue),
                })
            }

            pub(crate) fn pipeline(&self) -> Arc<dyn PipelineControl> {
                Arc::clone(&self.queue) as Arc<dyn PipelineControl>
            }

            /// Items dropped so far for `reason` (what `observe.telemetry.dropped` reports).
            pub fn dropped(&self, reason: DropReason) -> u64 {
                self.queue.stats().get(reason)
            }
        }
    };
}
pub(crate) use queue_pipeline;

/// Items of a delivered batch that the receiver rejected (an OTLP partial
/// success): counted as `rejected`, with the receiver's reason.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Rejected {
    pub(crate) items: u64,
    pub(crate) reason: String,
}

/// Why a batch was not delivered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ExportError {
    /// Not delivered: no answer, retries exhausted within the export
    /// timeout, TLS failed (`export_failed`).
    Failed(String),
    /// The receiver answered and refused it for good, e.g. HTTP 400 or
    /// gRPC `INVALID_ARGUMENT` (`rejected`).
    Rejected(String),
}

/// What an export of one batch ends with: `Ok` holds what the receiver
/// rejected of a delivered batch.
pub(crate) type ExportResult = Result<Option<Rejected>, ExportError>;

/// An item of a pipeline's queue, and what its exporters take it as: the
/// worker turns one into the other as it takes the item from the queue (on
/// its own thread, in one move).
pub(crate) trait Queued: Send + 'static {
    /// What a batch holds.
    type Ready: Send + 'static;
    /// The item as a batch holds it.
    fn ready(self) -> Self::Ready;
}

/// One export destination, driven by a pipeline's worker thread only.
pub(crate) trait Export<T: Queued>: 'static {
    /// Exports one batch: whatever needs the exporter itself (encoding)
    /// happens in the call, the returned future owns the rest (I/O,
    /// retries). Runs on the worker's runtime.
    fn export(
        &mut self,
        batch: Vec<T::Ready>,
    ) -> impl Future<Output = ExportResult> + Send + 'static;
    /// How many exports may be in flight at once: 1 (the SDK's exporters,
    /// which the specification never calls concurrently), more for
    /// observe's OTLP client, so that a batch is encoded and sent while
    /// the previous one waits for its answer.
    fn max_in_flight(&self) -> usize {
        1
    }
    /// Receives the telemetry's resource before the first export.
    fn set_resource(&mut self, resource: &Resource);
    /// Releases connections and files (after the last export).
    fn shutdown(&mut self);
}

/// Messages from the guard (or a provider) to the worker.
pub(crate) enum Control {
    SetResource(Resource),
    Flush {
        reply: SyncSender<Result<(), String>>,
    },
    Shutdown {
        deadline: Instant,
        reply: SyncSender<Result<(), String>>,
    },
}

/// Flush and shutdown of an observe pipeline, with a deadline (the guard's
/// view of it; the SDK traits have no deadline for a flush).
pub(crate) trait PipelineControl: Send + Sync {
    fn stats(&self) -> Arc<DropStats>;
    /// Exports everything accepted so far; waits at most `timeout`.
    fn flush(&self, timeout: Duration) -> OTelSdkResult;
    /// Exports what is left, stops the worker; waits at most `timeout`
    /// (what is still queued then is counted as `shutdown_timeout`).
    fn shutdown(&self, timeout: Duration) -> OTelSdkResult;
}

struct Shared {
    /// Items in the channel (incremented before `try_send`, so a concurrent
    /// flush never misses one).
    pending: AtomicUsize,
    /// Wakes the worker when a full batch is waiting.
    notify: Notify,
    max_batch: usize,
}

/// The producer side of a pipeline: a bounded channel and the worker's controls.
pub(crate) struct Queue<T> {
    tx: SyncSender<T>,
    shared: Arc<Shared>,
    worker: WorkerHandle,
    stats: Arc<DropStats>,
    config: BatchConfig,
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("signal", &self.stats.signal)
            .field("config", &self.config)
            .field("pending", &self.shared.pending.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<T: Queued> Queue<T> {
    /// Starts the worker thread, builds the exporter on it (inside its
    /// runtime, so gRPC channels can be created) and waits until it is ready.
    pub(crate) fn start<X, F>(
        signal: Signal,
        config: BatchConfig,
        make: F,
    ) -> Result<Self, InitError>
    where
        X: Export<T>,
        F: FnOnce() -> Result<X, String> + Send + 'static,
    {
        Self::start_counting(Arc::new(DropStats::new(signal)), config, make)
    }

    /// The queue of an OTLP destination: `wrap` makes the signal's export
    /// around observe's client, built on the pipeline's thread and counting
    /// its retries in the pipeline's stats, which name the destination.
    pub(crate) fn otlp<X, F>(
        signal: Signal,
        target: OtlpTarget,
        config: BatchConfig,
        wrap: F,
    ) -> Result<Self, InitError>
    where
        X: Export<T>,
        F: FnOnce(OtlpClient) -> X + Send + 'static,
    {
        let stats = DropStats::for_destination(signal, target.describe());
        let counting = Arc::clone(&stats);
        Self::start_counting(stats, config, move || {
            Ok(wrap(OtlpClient::new(&target, signal, counting)?))
        })
    }

    /// [`start`](Self::start), counting into `stats`.
    fn start_counting<X, F>(
        stats: Arc<DropStats>,
        config: BatchConfig,
        make: F,
    ) -> Result<Self, InitError>
    where
        X: Export<T>,
        F: FnOnce() -> Result<X, String> + Send + 'static,
    {
        let signal = stats.signal;
        let (tx, rx) = sync_channel::<T>(config.max_queue_size);
        let shared = Arc::new(Shared {
            pending: AtomicUsize::new(0),
            notify: Notify::new(),
            max_batch: config.max_export_batch_size,
        });
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let deadline = Arc::new(ShutdownDeadline::default());
        let worker = WorkerParts {
            rx,
            shared: Arc::clone(&shared),
            control: ctl_rx,
            deadline: Arc::clone(&deadline),
            stats: Arc::clone(&stats),
            config: config.clone(),
            cut_by_shutdown: false,
            in_flight: FuturesUnordered::new(),
        };
        let thread = spawn_worker(signal, make, move |exporter| worker.run(exporter))?;
        Ok(Queue {
            tx,
            shared,
            worker: WorkerHandle::new(ctl_tx, thread, deadline),
            stats,
            config,
        })
    }

    /// Hands one item to the worker. Called on the recording thread: never
    /// blocks; a full queue drops the item and counts it (`queue_full`).
    #[inline]
    pub(crate) fn push(&self, item: T) {
        let before = self.shared.pending.fetch_add(1, Ordering::AcqRel);
        match self.tx.try_send(item) {
            Ok(()) => {
                if before + 1 == self.shared.max_batch {
                    self.shared.notify.notify_one();
                }
            }
            Err(e) => {
                self.shared.pending.fetch_sub(1, Ordering::AcqRel);
                if matches!(e, TrySendError::Full(_)) {
                    self.stats.add(DropReason::QueueFull, 1);
                }
                // Disconnected: the pipeline was shut down; nothing to count.
            }
        }
    }

    pub(crate) fn set_resource(&self, resource: &Resource) {
        self.worker.send(Control::SetResource(resource.clone()));
    }

    pub(crate) fn config(&self) -> &BatchConfig {
        &self.config
    }
}

impl<T: Send + 'static> PipelineControl for Queue<T> {
    fn stats(&self) -> Arc<DropStats> {
        Arc::clone(&self.stats)
    }

    fn flush(&self, timeout: Duration) -> OTelSdkResult {
        self.worker.flush(timeout)
    }

    fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        self.worker.shutdown(timeout)
    }
}

/// An export in flight: its batch's size and how it ended.
type InFlight = Pin<Box<dyn Future<Output = (usize, Bounded<ExportResult>)> + Send>>;

struct WorkerParts<T> {
    rx: Receiver<T>,
    shared: Arc<Shared>,
    control: mpsc::UnboundedReceiver<Control>,
    deadline: Arc<ShutdownDeadline>,
    stats: Arc<DropStats>,
    config: BatchConfig,
    /// An export was cut short by the shutdown deadline.
    cut_by_shutdown: bool,
    /// Exports begun and not yet ended (at most the exporter's `max_in_flight`).
    in_flight: FuturesUnordered<InFlight>,
}

/// How a drain ended.
enum Drained {
    Done,
    Failed(String),
    Deadline,
}

impl<T: Queued> WorkerParts<T> {
    async fn run<X: Export<T>>(mut self, mut exporter: X) {
        let delay = self.config.scheduled_delay;
        let mut next = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                biased;
                msg = self.control.recv() => match msg {
                    Some(Control::SetResource(r)) => {
                        // The exporter is changed only with nothing in flight.
                        self.settle().await;
                        exporter.set_resource(&r);
                    }
                    Some(Control::Flush { reply }) => {
                        let r = self.drain(&mut exporter, None).await;
                        let _ = reply.send(result(r));
                        next = tokio::time::Instant::now() + delay;
                    }
                    Some(Control::Shutdown { deadline, reply }) => {
                        let r = match self.drain(&mut exporter, Some(deadline)).await {
                            Drained::Done if self.cut_by_shutdown => Drained::Deadline,
                            r => r,
                        };
                        exporter.shutdown();
                        self.stats.final_report(Instant::now());
                        let _ = reply.send(result(r));
                        return;
                    }
                    None => {
                        // Every handle is gone without a shutdown: export what
                        // is left within one export timeout, then stop.
                        let deadline = Instant::now() + self.config.export_timeout;
                        let _ = self.drain(&mut exporter, Some(deadline)).await;
                        exporter.shutdown();
                        return;
                    }
                },
                Some((n, ended)) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    let _ = self.account(n, ended);
                }
                // A full batch is waiting: launched below.
                () = self.shared.notify.notified() => {}
                () = tokio::time::sleep_until(next) => {
                    let _ = self.drain(&mut exporter, None).await;
                    next = tokio::time::Instant::now() + delay;
                }
            }
            // After every event, not only a notification: a full queue that
            // never emptied (a drain took some of it while it kept filling)
            // sends none, and an ended export leaves room for another.
            self.launch_full(&mut exporter);
            self.stats.maybe_report(Instant::now());
        }
    }

    /// Begins exports of full batches while the exporter takes more.
    /// Once a shutdown began, the control arm takes over.
    fn launch_full<X: Export<T>>(&mut self, exporter: &mut X) {
        while self.shared.pending.load(Ordering::Acquire) >= self.shared.max_batch
            && self.in_flight.len() < exporter.max_in_flight()
            && self.deadline.get().is_none()
        {
            if self.launch(exporter, None) == 0 {
                break;
            }
        }
    }

    /// Waits until no export is in flight, counting how each ended.
    async fn settle(&mut self) {
        while let Some((n, ended)) = self.in_flight.next().await {
            let _ = self.account(n, ended);
        }
    }

    /// Exports what was queued when it was called, batch by batch (up to
    /// the exporter's `max_in_flight` at once), and waits for every export
    /// in flight. With a deadline (shutdown), what is left when it passes
    /// is dropped and counted.
    async fn drain<X: Export<T>>(
        &mut self,
        exporter: &mut X,
        deadline: Option<Instant>,
    ) -> Drained {
        let mut left = self.shared.pending.load(Ordering::Acquire);
        let mut outcome = Drained::Done;
        loop {
            if left > 0 && deadline.is_some_and(|d| Instant::now() >= d) {
                let mut n = 0u64;
                while self.rx.try_recv().is_ok() {
                    n += 1;
                }
                self.shared.pending.fetch_sub(n as usize, Ordering::AcqRel);
                self.stats.add(DropReason::ShutdownTimeout, n);
                // What is in flight ends by the same deadline, counted.
                self.settle().await;
                return Drained::Deadline;
            }
            while left > 0 && self.in_flight.len() < exporter.max_in_flight() {
                match self.launch(exporter, deadline) {
                    0 => left = 0,
                    n => left = left.saturating_sub(n),
                }
            }
            match self.in_flight.next().await {
                Some((n, ended)) => {
                    if let Err(e) = self.account(n, ended) {
                        outcome = Drained::Failed(e);
                    }
                }
                None if left == 0 => return outcome,
                None => {}
            }
        }
    }

    /// Takes up to one batch from the channel and begins its export, bound
    /// by the export timeout (and the deadline, if any, and the shutdown's).
    /// Returns the batch's size (0: nothing was queued).
    fn launch<X: Export<T>>(&mut self, exporter: &mut X, deadline: Option<Instant>) -> usize {
        let mut batch = Vec::with_capacity(
            self.shared
                .pending
                .load(Ordering::Acquire)
                .min(self.shared.max_batch),
        );
        while batch.len() < self.shared.max_batch {
            match self.rx.try_recv() {
                Ok(item) => batch.push(item.ready()),
                Err(_) => break,
            }
        }
        let n = batch.len();
        if n == 0 {
            return 0;
        }
        self.shared.pending.fetch_sub(n, Ordering::AcqRel);
        let export = exporter.export(batch);
        let bound = Arc::clone(&self.deadline);
        let timeout = self.config.export_timeout;
        self.in_flight.push(Box::pin(async move {
            (n, bound.bound(export, timeout, deadline).await)
        }));
        n
    }

    /// Counts how the export of a batch of `n` ended.
    fn account(&mut self, n: usize, ended: Bounded<ExportResult>) -> Result<(), String> {
        match ended {
            Bounded::Done(Ok(None)) => Ok(()),
            Bounded::Done(Ok(Some(r))) => {
                // Delivered; the receiver's rejection is counted, not an error.
                self.stats.rejected(r.items, &r.reason);
                Ok(())
            }
            Bounded::Done(Err(ExportError::Failed(e))) => {
                Err(self.stats.export_failed(n as u64, &e))
            }
            Bounded::Done(Err(ExportError::Rejected(e))) => Err(self.stats.rejected(n as u64, &e)),
            Bounded::Cut {
                by_deadline: true,
                after: limit,
            } => {
                self.cut_by_shutdown = true;
                self.stats.add(DropReason::ShutdownTimeout, n as u64);
                Err(format!(
                    "export did not finish before the deadline ({limit:?})"
                ))
            }
            Bounded::Cut {
                by_deadline: false,
                after: limit,
            } => {
                let e = format!("timed out after {limit:?}");
                Err(self.stats.export_failed(n as u64, &e))
            }
        }
    }
}

fn result(d: Drained) -> Result<(), String> {
    match d {
        Drained::Done => Ok(()),
        Drained::Failed(e) => Err(e),
        Drained::Deadline => Err("the deadline passed before everything was exported".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex as StdMutex;

    /// Records batch sizes; fails while `fail` is set; waits `delay` per export.
    #[derive(Clone, Default)]
    struct Probe {
        batches: Arc<StdMutex<Vec<usize>>>,
        fail: Arc<AtomicBool>,
        delay: Duration,
        /// Exports begun.
        started: Arc<AtomicUsize>,
        /// Exports running now, and the most at once.
        running: Arc<AtomicUsize>,
        most_running: Arc<AtomicUsize>,
        /// `max_in_flight` (0: the default, 1).
        in_flight: usize,
    }

    impl Queued for u32 {
        type Ready = u32;
        fn ready(self) -> u32 {
            self
        }
    }

    impl Export<u32> for Probe {
        fn export(
            &mut self,
            batch: Vec<u32>,
        ) -> impl Future<Output = ExportResult> + Send + 'static {
            let p = self.clone();
            async move {
                p.started.fetch_add(1, Ordering::AcqRel);
                let now = p.running.fetch_add(1, Ordering::AcqRel) + 1;
                p.most_running.fetch_max(now, Ordering::AcqRel);
                if !p.delay.is_zero() {
                    tokio::time::sleep(p.delay).await;
                }
                p.running.fetch_sub(1, Ordering::AcqRel);
                if p.fail.load(Ordering::Relaxed) {
                    return Err(ExportError::Failed("receiver down".into()));
                }
                p.batches
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(batch.len());
                Ok(None)
            }
        }
        fn max_in_flight(&self) -> usize {
            self.in_flight.max(1)
        }
        fn set_resource(&mut self, _: &Resource) {}
        fn shutdown(&mut self) {}
    }

    fn total(p: &Probe) -> usize {
        p.batches.lock().expect("lock").iter().sum()
    }

    fn start(p: &Probe, config: BatchConfig) -> Queue<u32> {
        let p2 = p.clone();
        Queue::start(Signal::Traces, config, move || Ok(p2)).expect("start")
    }

    #[test]
    fn full_batches_go_out_without_waiting_for_the_timer() {
        let p = Probe::default();
        let q = start(
            &p,
            BatchConfig::default()
                .max_export_batch_size(10)
                .scheduled_delay(Duration::from_secs(3600)),
        );
        for i in 0..25 {
            q.push(i);
        }
        let t0 = Instant::now();
        while total(&p) < 20 && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(*p.batches.lock().expect("lock"), vec![10, 10]);
        q.flush(Duration::from_secs(5)).expect("flush");
        assert_eq!(*p.batches.lock().expect("lock"), vec![10, 10, 5]);
        q.shutdown(Duration::from_secs(5)).expect("shutdown");
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let p = Probe {
            delay: Duration::from_millis(200),
            ..Probe::default()
        };
        let q = start(
            &p,
            BatchConfig::default()
                .max_queue_size(8)
                .scheduled_delay(Duration::from_secs(3600)),
        );
        // A first batch the exporter holds for 200 ms (waited for, so that
        // the worker cannot take part of the next 20 while they are pushed).
        for i in 0..8 {
            q.push(i);
        }
        let t0 = Instant::now();
        while p.started.load(Ordering::Acquire) == 0 {
            assert!(t0.elapsed() < Duration::from_secs(5), "export never began");
            std::thread::sleep(Duration::from_millis(1));
        }
        for i in 0..20 {
            q.push(i);
        }
        assert_eq!(q.stats.get(DropReason::QueueFull), 12);
        q.shutdown(Duration::from_secs(5)).expect("shutdown");
        assert_eq!(total(&p), 16);
    }

    #[test]
    fn failed_exports_and_shutdown_deadlines_are_counted() {
        let p = Probe::default();
        p.fail.store(true, Ordering::Relaxed);
        let q = start(&p, BatchConfig::default());
        for i in 0..5 {
            q.push(i);
        }
        assert!(q.flush(Duration::from_secs(5)).is_err());
        assert_eq!(q.stats.get(DropReason::ExportFailed), 5);

        let slow = Probe {
            delay: Duration::from_secs(10),
            ..Probe::default()
        };
        let q = start(&slow, BatchConfig::default().max_export_batch_size(2));
        for i in 0..6 {
            q.push(i);
        }
        let t0 = Instant::now();
        assert!(q.shutdown(Duration::from_millis(300)).is_err());
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert_eq!(q.stats.get(DropReason::ShutdownTimeout), 6);
        // After shutdown, pushes are ignored.
        q.push(7);
        assert_eq!(q.stats.get(DropReason::QueueFull), 0);
    }

    /// An exporter that takes several exports at once gets them, never
    /// more than it takes, and a flush waits for all of them; one that
    /// takes one at a time gets one at a time.
    #[test]
    fn exports_in_flight_stay_within_the_exporters_limit() {
        for (limit, want_most) in [(3, 3), (1, 1)] {
            let p = Probe {
                delay: Duration::from_millis(100),
                in_flight: limit,
                ..Probe::default()
            };
            let q = start(
                &p,
                BatchConfig::default()
                    .max_export_batch_size(10)
                    .scheduled_delay(Duration::from_secs(3600)),
            );
            for i in 0..80 {
                q.push(i);
            }
            q.flush(Duration::from_secs(10)).expect("flush");
            assert_eq!(total(&p), 80, "limit {limit}");
            assert_eq!(p.batches.lock().expect("lock").len(), 8, "limit {limit}");
            assert_eq!(
                p.most_running.load(Ordering::Acquire),
                want_most,
                "limit {limit}"
            );
            assert_eq!(p.running.load(Ordering::Acquire), 0);
            q.shutdown(Duration::from_secs(5)).expect("shutdown");
        }
    }

    /// A queue kept full across the timer's drain goes on being exported
    /// batch after batch: the drain leaves it full (it fills while drained),
    /// so no new notification comes, and the worker must look by itself.
    #[test]
    fn a_queue_kept_full_goes_on_being_exported_after_the_timer() {
        // Each export takes 2 ms: the producer refills the queue meanwhile.
        let p = Probe {
            delay: Duration::from_millis(2),
            ..Probe::default()
        };
        let q = Arc::new(start(
            &p,
            BatchConfig::default()
                .max_queue_size(40)
                .max_export_batch_size(10)
                .scheduled_delay(Duration::from_millis(100)),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let producer = {
            let (q, stop) = (Arc::clone(&q), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    q.push(i);
                    i = i.wrapping_add(1);
                }
            })
        };
        // Past the first timer: from then on, a stalled worker would export
        // 4 batches a tick (40 in these 1 000 ms), a busy one about 400.
        std::thread::sleep(Duration::from_millis(300));
        let before = p.started.load(Ordering::Acquire);
        std::thread::sleep(Duration::from_millis(1000));
        let during = p.started.load(Ordering::Acquire) - before;
        stop.store(true, Ordering::Relaxed);
        producer.join().expect("producer");
        assert!(during > 120, "{during} exports in 1 s with the queue full");
        q.shutdown(Duration::from_secs(5)).expect("shutdown");
    }

    /// A shutdown cuts short every export in flight, not only one.
    #[test]
    fn shutdown_cuts_short_every_export_in_flight() {
        let slow = Probe {
            delay: Duration::from_secs(20),
            in_flight: 3,
            ..Probe::default()
        };
        let q = start(
            &slow,
            BatchConfig::default()
                .max_export_batch_size(2)
                .export_timeout(Duration::from_secs(30)),
        );
        for i in 0..6 {
            q.push(i);
        }
        let t0 = Instant::now();
        while slow.running.load(Ordering::Acquire) < 3 {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "three exports never ran"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let t0 = Instant::now();
        assert!(q.shutdown(Duration::from_millis(300)).is_err());
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(q.stats.get(DropReason::ShutdownTimeout), 6);
    }

    /// A shutdown that begins while an export hangs ends by its own
    /// deadline, not the export timeout, and counts the batch in flight
    /// with the ones still queued.
    #[test]
    fn shutdown_cuts_short_an_export_in_flight() {
        let slow = Probe {
            delay: Duration::from_secs(20),
            ..Probe::default()
        };
        let q = start(
            &slow,
            BatchConfig::default()
                .max_export_batch_size(2)
                .export_timeout(Duration::from_secs(30)),
        );
        q.push(1);
        q.push(2);
        let t0 = Instant::now();
        while slow.started.load(Ordering::Acquire) == 0 {
            assert!(t0.elapsed() < Duration::from_secs(5), "export never began");
            std::thread::sleep(Duration::from_millis(1));
        }
        for i in 3..7 {
            q.push(i);
        }
        let t0 = Instant::now();
        assert!(q.shutdown(Duration::from_millis(300)).is_err());
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(q.stats.get(DropReason::ShutdownTimeout), 6);
        assert_eq!(q.stats.get(DropReason::ExportFailed), 0);
    }
}
