//! What the export pipelines lost, counted and said.
//!
//! Every pipeline owns one [`DropStats`]: producers (request threads) add to
//! its atomics, the pipeline's worker reports new losses in at most one log
//! line per signal per minute (event `telemetry_dropped`), and the telemetry's
//! meter reads the totals into `observe.telemetry.dropped`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tracing::dispatcher::WeakDispatch;

/// Which signal a pipeline carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// Spans.
    Traces,
    /// Log records.
    Logs,
    /// Metric points.
    Metrics,
}

impl Signal {
    /// Every signal, in shutdown order.
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Logs, Signal::Metrics];

    /// `traces`, `logs` or `metrics` (the `signal` attribute).
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }
}

/// Why an item was dropped (the `reason` attribute).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The bounded queue was full when the item was recorded.
    QueueFull,
    /// The exporter could not deliver it: no answer, retryable answers
    /// until the export timeout, a failed TLS handshake.
    ExportFailed,
    /// Shutdown's deadline passed before the item was exported.
    ShutdownTimeout,
    /// The receiver refused it for good: a non-retryable answer (HTTP 400,
    /// gRPC `INVALID_ARGUMENT`, ...) or the rejected count of a partial success.
    Rejected,
}

impl DropReason {
    /// Every reason, in attribute order.
    pub const ALL: [DropReason; 4] = [
        DropReason::QueueFull,
        DropReason::ExportFailed,
        DropReason::ShutdownTimeout,
        DropReason::Rejected,
    ];

    /// `queue_full`, `export_failed`, `shutdown_timeout` or `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::ExportFailed => "export_failed",
            DropReason::ShutdownTimeout => "shutdown_timeout",
            DropReason::Rejected => "rejected",
        }
    }

    fn idx(self) -> usize {
        match self {
            DropReason::QueueFull => 0,
            DropReason::ExportFailed => 1,
            DropReason::ShutdownTimeout => 2,
            DropReason::Rejected => 3,
        }
    }
}

/// What one signal's observe pipelines lost and retried so far, read with
/// [`TelemetryGuard::export_stats`](crate::TelemetryGuard::export_stats)
/// (the same totals as `observe.telemetry.dropped` and
/// `observe.telemetry.export.retries`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Dropped because the queue was full when they were recorded.
    pub queue_full: u64,
    /// Not delivered: no answer, or retryable answers until the export timeout.
    pub export_failed: u64,
    /// Still queued when shutdown's deadline passed.
    pub shutdown_timeout: u64,
    /// Refused for good by the receiver (non-retryable answer, partial success).
    pub rejected: u64,
    /// Export attempts made again after a retryable failure.
    pub retries: u64,
    /// Time spent waiting before those attempts, in all.
    pub retry_wait: Duration,
    /// The latest waits before a retry, oldest first (at most 32).
    pub recent_retry_waits: Vec<Duration>,
}

impl ExportStats {
    /// Every item dropped, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.queue_full + self.export_failed + self.shutdown_timeout + self.rejected
    }

    /// Adds `s`'s counts (a signal with several pipelines).
    pub(crate) fn add(&mut self, s: &DropStats) {
        self.queue_full += s.get(DropReason::QueueFull);
        self.export_failed += s.get(DropReason::ExportFailed);
        self.shutdown_timeout += s.get(DropReason::ShutdownTimeout);
        self.rejected += s.get(DropReason::Rejected);
        let (n, wait, recent) = s.retries();
        self.retries += n;
        self.retry_wait += wait;
        self.recent_retry_waits.extend(recent);
    }
}

/// `OTEL_LOG_LEVEL` is `error` or `none`: no `telemetry_dropped` lines
/// (process-wide; the counts are still kept and exported).
static QUIET: AtomicBool = AtomicBool::new(false);

/// Silences (or not) observe's `telemetry_dropped` lines, process-wide.
pub(crate) fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Shortest time between two `telemetry_dropped` lines of one pipeline.
pub(crate) const REPORT_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Reported {
    last: Option<Instant>,
    totals: [u64; 4],
}

/// How many recent retry waits a pipeline keeps.
const RECENT_WAITS: usize = 32;

/// Drop counters of one pipeline.
#[derive(Debug)]
pub(crate) struct DropStats {
    pub(crate) signal: Signal,
    counts: [AtomicU64; 4],
    /// Export attempts made again after a retryable failure, and their
    /// waits (total, and the latest few).
    retries: AtomicU64,
    waited_us: AtomicU64,
    recent_waits: Mutex<VecDeque<Duration>>,
    reported: Mutex<Reported>,
    /// Where `telemetry_dropped` lines go: the telemetry that owns the
    /// pipeline (weak: the dispatcher owns the pipeline through the layer).
    report_to: OnceLock<WeakDispatch>,
    /// Where the pipeline exports (`OTLP http/protobuf https://…`), for errors.
    destination: OnceLock<String>,
    /// The latest export failure since the last report, with its destination.
    last_error: Mutex<Option<String>>,
}

impl DropStats {
    pub(crate) fn new(signal: Signal) -> Self {
        DropStats {
            signal,
            counts: Default::default(),
            retries: AtomicU64::new(0),
            waited_us: AtomicU64::new(0),
            recent_waits: Mutex::new(VecDeque::with_capacity(RECENT_WAITS)),
            reported: Mutex::new(Reported::default()),
            report_to: OnceLock::new(),
            destination: OnceLock::new(),
            last_error: Mutex::new(None),
        }
    }

    /// Names the pipeline's destination in its export errors (set once).
    pub(crate) fn set_destination(&self, destination: String) {
        let _ = self.destination.set(destination);
    }

    /// The stats of a pipeline into `destination`.
    pub(crate) fn for_destination(signal: Signal, destination: String) -> Arc<Self> {
        let stats = Arc::new(DropStats::new(signal));
        stats.set_destination(destination);
        stats
    }

    /// Counts `n` items an export failed to deliver and keeps its error,
    /// with the destination, for the next report; returns that text.
    /// Worker thread only.
    pub(crate) fn export_failed(&self, n: u64, error: &str) -> String {
        self.add(DropReason::ExportFailed, n);
        self.keep_error(error)
    }

    /// Counts `n` items the receiver refused for good and keeps its reason
    /// for the next report; returns the error text. Worker thread only.
    pub(crate) fn rejected(&self, n: u64, reason: &str) -> String {
        self.add(DropReason::Rejected, n);
        self.keep_error(reason)
    }

    fn keep_error(&self, error: &str) -> String {
        let text = match self.destination.get() {
            Some(d) => format!("export to {d} failed: {error}"),
            None => format!("export failed: {error}"),
        };
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(text.clone());
        text
    }

    /// Counts one retry, after waiting `wait`. Worker thread only.
    pub(crate) fn retried(&self, wait: Duration) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
        self.waited_us.fetch_add(us, Ordering::Relaxed);
        let mut recent = self.recent_waits.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT_WAITS {
            recent.pop_front();
        }
        recent.push_back(wait);
    }

    /// Retries so far, their total wait, and the latest waits (oldest first).
    pub(crate) fn retries(&self) -> (u64, Duration, Vec<Duration>) {
        let recent = self
            .recent_waits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        (
            self.retries.load(Ordering::Relaxed),
            Duration::from_micros(self.waited_us.load(Ordering::Relaxed)),
            recent,
        )
    }

    /// Counts `n` dropped items. Any thread; one relaxed atomic add.
    #[inline]
    pub(crate) fn add(&self, reason: DropReason, n: u64) {
        if n > 0 {
            self.counts[reason.idx()].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Items dropped so far for `reason`.
    pub(crate) fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason.idx()].load(Ordering::Relaxed)
    }

    /// Sends later reports to `dispatch` (set once, by the telemetry).
    pub(crate) fn report_to(&self, dispatch: WeakDispatch) {
        let _ = self.report_to.set(dispatch);
    }

    /// Writes one `telemetry_dropped` line if items were dropped since the
    /// last one and the last one is at least [`REPORT_EVERY`] old. Called by
    /// the pipeline's worker only; never from a request thread.
    pub(crate) fn maybe_report(&self, now: Instant) {
        self.report(now, false);
    }

    /// The last report, at shutdown: says what was dropped since the
    /// previous one however recent that was, so that the reports of a run
    /// add up to everything it dropped.
    pub(crate) fn final_report(&self, now: Instant) {
        self.report(now, true);
    }

    fn report(&self, now: Instant, last: bool) {
        let totals = DropReason::ALL.map(|r| self.get(r));
        let mut rep = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        if totals == rep.totals {
            return;
        }
        if !last
            && rep
                .last
                .is_some_and(|t| now.duration_since(t) < REPORT_EVERY)
        {
            return;
        }
        let delta = [0, 1, 2, 3].map(|i| totals[i].saturating_sub(rep.totals[i]));
        rep.totals = totals;
        rep.last = Some(now);
        drop(rep);
        if QUIET.load(Ordering::Relaxed) {
            return;
        }
        let last_error = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let emit = || match &last_error {
            None => tracing::warn!(
                event = "telemetry_dropped",
                signal = self.signal.as_str(),
                queue_full = delta[0],
                export_failed = delta[1],
                shutdown_timeout = delta[2],
                rejected = delta[3],
                "observe dropped {} {} since the last report (see observe.telemetry.dropped)",
                delta.iter().sum::<u64>(),
                self.signal.as_str(),
            ),
            Some(last_error) => tracing::warn!(
                event = "telemetry_dropped",
                signal = self.signal.as_str(),
                queue_full = delta[0],
                export_failed = delta[1],
                shutdown_timeout = delta[2],
                rejected = delta[3],
                last_error = last_error.as_str(),
                "observe dropped {} {} since the last report (see observe.telemetry.dropped)",
                delta.iter().sum::<u64>(),
                self.signal.as_str(),
            ),
        };
        match self.report_to.get().and_then(WeakDispatch::upgrade) {
            Some(d) => tracing::dispatcher::with_default(&d, emit),
            // A pipeline used outside observe's builder: say it on stderr.
            None => eprintln!(
                "observe: telemetry_dropped signal={} queue_full={} export_failed={} shutdown_timeout={} rejected={}{}",
                self.signal.as_str(),
                delta[0],
                delta[1],
                delta[2],
                delta[3],
                last_error.map(|e| format!(" last_error={e:?}")).unwrap_or_default()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_at_most_once_a_minute() {
        use crate::testing::TelemetryBuilderExt as _;
        let s = DropStats::new(Signal::Traces);
        let sink = crate::MemorySink::new();
        let t = crate::Telemetry::builder("t")
            .env_source(|_| None)
            .log_output(crate::LogOutput::Sink(std::sync::Arc::new(sink.clone())))
            .build()
            .expect("build");
        s.report_to(t.dispatch().downgrade());
        let t0 = Instant::now();
        s.maybe_report(t0);
        assert!(sink.lines().is_empty(), "nothing dropped, nothing said");
        s.add(DropReason::QueueFull, 3);
        s.maybe_report(t0);
        s.set_destination("OTLP grpc https://collector:4317".into());
        let text = s.export_failed(2, "invalid peer certificate: UnknownIssuer");
        assert_eq!(
            text,
            "export to OTLP grpc https://collector:4317 failed: invalid peer certificate: UnknownIssuer"
        );
        s.maybe_report(t0 + Duration::from_secs(59));
        s.maybe_report(t0 + Duration::from_secs(61));
        let lines: Vec<serde_json::Value> = sink
            .lines()
            .iter()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0]["event"], "telemetry_dropped");
        assert_eq!(lines[0]["signal"], "traces");
        assert_eq!(lines[0]["queue_full"], 3);
        assert_eq!(lines[1]["queue_full"], 0);
        assert_eq!(lines[1]["export_failed"], 2);
        assert_eq!(lines[1]["last_error"], text);
        assert!(lines[0].get("last_error").is_none(), "{}", lines[0]);

        // A refusal for good is its own reason, with the receiver's words.
        let text = s.rejected(5, "HTTP 400 Bad Request: invalid span id");
        assert_eq!(
            text,
            "export to OTLP grpc https://collector:4317 failed: HTTP 400 Bad Request: invalid span id"
        );
        assert_eq!(s.get(DropReason::Rejected), 5);
        s.maybe_report(t0 + Duration::from_secs(122));
        let last: serde_json::Value =
            serde_json::from_str(sink.lines().last().expect("a third line")).expect("json");
        assert_eq!(last["rejected"], 5);
        assert_eq!(last["export_failed"], 0);
        assert_eq!(last["last_error"], text);
        // Shutdown's report is not held back by the minute.
        s.add(DropReason::QueueFull, 1);
        s.maybe_report(t0 + Duration::from_secs(123));
        assert_eq!(sink.lines().len(), 3);
        s.final_report(t0 + Duration::from_secs(124));
        assert_eq!(sink.lines().len(), 4);
        s.final_report(t0 + Duration::from_secs(125));
        assert_eq!(sink.lines().len(), 4, "nothing new, nothing said");
    }

    #[test]
    fn retries_count_and_keep_their_latest_waits() {
        let s = DropStats::new(Signal::Logs);
        for ms in 1..=40 {
            s.retried(Duration::from_millis(ms));
        }
        let (n, total, recent) = s.retries();
        assert_eq!(n, 40);
        assert_eq!(total, Duration::from_millis(40 * 41 / 2));
        assert_eq!(recent.len(), RECENT_WAITS);
        assert_eq!(recent[0], Duration::from_millis(9));
        assert_eq!(recent[31], Duration::from_millis(40));
    }
}
