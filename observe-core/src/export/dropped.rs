//! What the export pipelines lost, counted and said.
//!
//! Every pipeline owns one [`DropStats`]: producers (request threads) add to
//! its atomics, the pipeline's worker reports new losses in at most one log
//! line per signal per minute (event `telemetry_dropped`), and the telemetry's
//! meter reads the totals into `observe.telemetry.dropped`.

use super::otlp::TransportError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
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
    /// The exporter failed (receiver down, rejected, timed out).
    ExportFailed,
    /// Shutdown's deadline passed before the item was exported.
    ShutdownTimeout,
}

impl DropReason {
    /// Every reason, in attribute order.
    pub const ALL: [DropReason; 3] = [
        DropReason::QueueFull,
        DropReason::ExportFailed,
        DropReason::ShutdownTimeout,
    ];

    /// `queue_full`, `export_failed` or `shutdown_timeout`.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::ExportFailed => "export_failed",
            DropReason::ShutdownTimeout => "shutdown_timeout",
        }
    }

    fn idx(self) -> usize {
        match self {
            DropReason::QueueFull => 0,
            DropReason::ExportFailed => 1,
            DropReason::ShutdownTimeout => 2,
        }
    }
}

/// Shortest time between two `telemetry_dropped` lines of one pipeline.
pub(crate) const REPORT_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Reported {
    last: Option<Instant>,
    totals: [u64; 3],
}

/// Drop counters of one pipeline.
#[derive(Debug)]
pub(crate) struct DropStats {
    pub(crate) signal: Signal,
    counts: [AtomicU64; 3],
    reported: Mutex<Reported>,
    /// Where `telemetry_dropped` lines go: the telemetry that owns the
    /// pipeline (weak: the dispatcher owns the pipeline through the layer).
    report_to: OnceLock<WeakDispatch>,
    /// Where the pipeline exports (`OTLP http/protobuf https://…`), for
    /// errors, and the cause of its exporter's latest transport failure.
    destination: OnceLock<(String, TransportError)>,
    /// The latest export failure since the last report, with its destination.
    last_error: Mutex<Option<String>>,
}

impl DropStats {
    pub(crate) fn new(signal: Signal) -> Self {
        DropStats {
            signal,
            counts: Default::default(),
            reported: Mutex::new(Reported::default()),
            report_to: OnceLock::new(),
            destination: OnceLock::new(),
            last_error: Mutex::new(None),
        }
    }

    /// Names the pipeline's destination in its export errors, and where
    /// its exporter keeps the cause of a transport failure (set once).
    pub(crate) fn set_destination(&self, destination: String, transport: TransportError) {
        let _ = self.destination.set((destination, transport));
    }

    /// Counts `n` items an export failed to deliver and keeps its error,
    /// with the destination, for the next report; returns that text.
    /// Worker thread only.
    pub(crate) fn export_failed(&self, n: u64, error: &str) -> String {
        self.add(DropReason::ExportFailed, n);
        let text = match self.destination.get() {
            Some((d, transport)) => match transport.take() {
                Some(cause) => {
                    super::without_repeats(&format!("export to {d} failed: {error}: {cause}"))
                }
                None => format!("export to {d} failed: {error}"),
            },
            None => format!("export failed: {error}"),
        };
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(text.clone());
        text
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
        let totals = DropReason::ALL.map(|r| self.get(r));
        let mut rep = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        if totals == rep.totals {
            return;
        }
        if rep
            .last
            .is_some_and(|t| now.duration_since(t) < REPORT_EVERY)
        {
            return;
        }
        let delta = [0, 1, 2].map(|i| totals[i].saturating_sub(rep.totals[i]));
        rep.totals = totals;
        rep.last = Some(now);
        drop(rep);
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
                "observe: telemetry_dropped signal={} queue_full={} export_failed={} shutdown_timeout={}{}",
                self.signal.as_str(),
                delta[0],
                delta[1],
                delta[2],
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
        let transport = TransportError::default();
        s.set_destination("OTLP grpc https://collector:4317".into(), transport);
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
    }
}
