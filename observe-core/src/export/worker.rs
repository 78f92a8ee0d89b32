//! The thread behind every pipeline: `observe-export-<signal>`, with a
//! current-thread tokio runtime of its own, the exporter built inside it;
//! the caller's handle to it (flush, shutdown, resource, each answered
//! within a deadline); and the shutdown deadline both sides share, so an
//! export already in flight ends by it too.

use super::batch::Control;
use super::dropped::Signal;
use crate::error::InitError;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

/// When a pipeline must be done: set by its handle's `shutdown`, read by its
/// worker, so that an export already in flight ends by it too (else a
/// shutdown could wait a whole export timeout behind it).
#[derive(Default)]
pub(crate) struct ShutdownDeadline {
    at: Mutex<Option<Instant>>,
    notify: Notify,
}

/// How an export bounded by [`ShutdownDeadline::bound`] ended.
pub(crate) enum Bounded<R> {
    Done(R),
    /// Cut after `after`; `by_deadline`: by a deadline, not the export timeout.
    Cut {
        by_deadline: bool,
        after: Duration,
    },
}

impl ShutdownDeadline {
    fn set(&self, deadline: Instant) {
        *self.at.lock().unwrap_or_else(|e| e.into_inner()) = Some(deadline);
        // Every export in flight (a pipeline may have several) hears of it.
        self.notify.notify_waiters();
    }

    /// The shutdown's deadline, once a shutdown began.
    pub(crate) fn get(&self) -> Option<Instant> {
        *self.at.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Awaits `export` for at most `timeout`, and never past `deadline` or
    /// the shutdown's deadline, including one set while it runs.
    pub(crate) async fn bound<F: Future>(
        &self,
        export: F,
        timeout: Duration,
        deadline: Option<Instant>,
    ) -> Bounded<F::Output> {
        let started = Instant::now();
        let left = |d: Option<Instant>| d.map(|d| d.saturating_duration_since(started));
        // Made before the deadline is read: a `notify_waiters` after this
        // line completes it, so a shutdown beginning now is not missed.
        let mut changed = std::pin::pin!(self.notify.notified());
        let mut limit = timeout;
        let mut by_deadline = false;
        let earliest = deadline.into_iter().chain(self.get()).min();
        if let Some(l) = left(earliest).filter(|l| *l < limit) {
            limit = l;
            by_deadline = true;
        }
        tokio::pin!(export);
        let sleep = tokio::time::sleep(limit);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                biased;
                r = &mut export => return Bounded::Done(r),
                () = &mut sleep => break,
                // A shutdown began while the export was in flight.
                () = &mut changed => {
                    changed.set(self.notify.notified());
                    if let Some(l) = left(self.get()).filter(|l| *l < limit) {
                        limit = l;
                        by_deadline = true;
                        sleep.as_mut().reset(tokio::time::Instant::from_std(started + limit));
                    }
                }
            }
        }
        Bounded::Cut {
            by_deadline,
            after: limit,
        }
    }
}

/// The caller's side of a pipeline's worker: its controls, its thread, and
/// the shutdown deadline it shares with the worker.
pub(crate) struct WorkerHandle {
    control: mpsc::UnboundedSender<Control>,
    thread: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
    deadline: Arc<ShutdownDeadline>,
}

impl WorkerHandle {
    pub(crate) fn new(
        control: mpsc::UnboundedSender<Control>,
        thread: JoinHandle<()>,
        deadline: Arc<ShutdownDeadline>,
    ) -> Self {
        WorkerHandle {
            control,
            thread: Mutex::new(Some(thread)),
            closed: AtomicBool::new(false),
            deadline,
        }
    }

    pub(crate) fn send(&self, msg: Control) {
        let _ = self.control.send(msg);
    }

    /// Asks the worker to export everything so far; waits at most `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) -> OTelSdkResult {
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let (reply, rx) = sync_channel(1);
        request(&self.control, Control::Flush { reply }, &rx, timeout)
    }

    /// Asks the worker to export what is left by `timeout` and stop; joins
    /// it once it answered. Later calls return `Ok` at once.
    pub(crate) fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let (reply, rx) = sync_channel(1);
        let deadline = Instant::now() + timeout;
        self.deadline.set(deadline);
        // The worker keeps the deadline itself; the margin lets its answer arrive.
        let r = request(
            &self.control,
            Control::Shutdown { deadline, reply },
            &rx,
            timeout + REPLY_MARGIN,
        );
        join_if(&self.thread, r.is_ok());
        r
    }
}

/// How much longer than a shutdown's deadline the caller waits for the
/// worker's answer (the worker enforces the deadline itself).
const REPLY_MARGIN: Duration = Duration::from_millis(50);

/// Sends a control message and waits for the worker's answer.
fn request(
    control: &mpsc::UnboundedSender<Control>,
    msg: Control,
    rx: &Receiver<Result<(), String>>,
    timeout: Duration,
) -> OTelSdkResult {
    if control.send(msg).is_err() {
        return Err(OTelSdkError::AlreadyShutdown);
    }
    match rx.recv_timeout(timeout) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(OTelSdkError::InternalFailure(e)),
        Err(RecvTimeoutError::Timeout) => Err(OTelSdkError::Timeout(timeout)),
        Err(RecvTimeoutError::Disconnected) => Err(OTelSdkError::AlreadyShutdown),
    }
}

/// Joins the worker once it said it is done (else leaves it to finish alone:
/// its own deadline ends it soon after).
fn join_if(thread: &Mutex<Option<JoinHandle<()>>>, done: bool) {
    let handle = thread.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(h) = handle {
        if done {
            let _ = h.join();
        }
    }
}

/// Starts `observe-export-<signal>`: a thread that ignores tracing (so the
/// exporters' own spans and events never feed back into the pipeline), owns a
/// current-thread tokio runtime, builds the exporter inside it, tells the
/// caller whether that worked, then runs `run(exporter)` to its end.
pub(crate) fn spawn_worker<X, F, R, Fut>(
    signal: Signal,
    make: F,
    run: R,
) -> Result<JoinHandle<()>, InitError>
where
    X: 'static,
    F: FnOnce() -> Result<X, String> + Send + 'static,
    R: FnOnce(X) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let (ready_tx, ready_rx) = sync_channel::<Result<(), String>>(1);
    let thread = std::thread::Builder::new()
        .name(format!("observe-export-{}", signal.as_str()))
        .spawn(move || {
            let _quiet = tracing::dispatcher::set_default(&tracing::Dispatch::none());
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("tokio runtime: {e}")));
                    return;
                }
            };
            let exporter = {
                let _enter = rt.enter();
                make()
            };
            match exporter {
                Ok(x) => {
                    let _ = ready_tx.send(Ok(()));
                    rt.block_on(run(x));
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })
        .map_err(|source| InitError::Thread {
            what: "export",
            source,
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(reason)) => {
            let _ = thread.join();
            Err(InitError::Exporter {
                signal: signal.as_str(),
                reason,
            })
        }
        Err(_) => Err(InitError::Exporter {
            signal: signal.as_str(),
            reason: "the export thread stopped while starting".to_owned(),
        }),
    }
}
