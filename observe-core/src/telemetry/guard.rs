//! [`TelemetryGuard`]: flushes or shuts down every signal, in one walk over
//! the pipelines: the tail sampler first (it decides what is pending), then
//! spans, log records and metrics (whose last export carries
//! `observe.telemetry.dropped`), then log lines.

use super::DEFAULT_SHUTDOWN_DEADLINE;
use crate::error::ShutdownError;
use crate::export::batch::PipelineControl;
use crate::export::prometheus::ServerHandle;
use crate::export::tail::TailInstruments;
use crate::export::Signal;
use crate::layer::Shared;
use crate::log::writer::NonBlocking;
use opentelemetry::metrics::ObservableCounter;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanProcessor};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Flushes and shuts down every signal when dropped (or on [`shutdown`](Self::shutdown)).
pub struct TelemetryGuard {
    pub(crate) shared: Arc<Shared>,
    /// The tail sampler in front of every span processor (decides what is
    /// pending before they flush or shut down).
    tail: Option<Arc<dyn SpanProcessor>>,
    /// Span processors that are not observe pipelines (flushed through the trait).
    foreign_span_processors: Vec<Arc<dyn SpanProcessor>>,
    /// observe's pipelines: traces, then logs, then metrics.
    pipelines: Vec<Arc<dyn PipelineControl>>,
    foreign_log_processors: bool,
    foreign_metric_readers: bool,
    _dropped_counter: Option<[ObservableCounter<u64>; 2]>,
    _tail_instruments: Option<TailInstruments>,
    meter_provider: Option<SdkMeterProvider>,
    logger_provider: Option<SdkLoggerProvider>,
    tracer_provider: Option<SdkTracerProvider>,
    closer: Option<Arc<NonBlocking>>,
    /// The standalone `/metrics` listener (`OBSERVE_METRICS_ADDR`).
    metrics_server: Option<ServerHandle>,
    global: bool,
    done: bool,
}

/// What the pipeline wiring hands the guard.
pub(super) struct GuardParts {
    pub(super) shared: Arc<Shared>,
    pub(super) tail: Option<Arc<dyn SpanProcessor>>,
    pub(super) foreign_span_processors: Vec<Arc<dyn SpanProcessor>>,
    pub(super) pipelines: Vec<Arc<dyn PipelineControl>>,
    pub(super) foreign_log_processors: bool,
    pub(super) foreign_metric_readers: bool,
    pub(super) dropped_counter: Option<[ObservableCounter<u64>; 2]>,
    pub(super) tail_instruments: Option<TailInstruments>,
    pub(super) meter_provider: Option<SdkMeterProvider>,
    pub(super) logger_provider: Option<SdkLoggerProvider>,
    pub(super) tracer_provider: Option<SdkTracerProvider>,
    pub(super) closer: Option<Arc<NonBlocking>>,
    pub(super) metrics_server: Option<ServerHandle>,
}

impl fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("service", &self.shared.service)
            .field("global", &self.global)
            .finish_non_exhaustive()
    }
}

/// What a walk over the pipelines does to each.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// Export everything recorded so far, keep running.
    Flush,
    /// Export what is left, then stop.
    Shutdown,
}

/// The first error of a walk (every step runs, even after one failed).
struct FirstError(Option<ShutdownError>);

impl FirstError {
    fn note(&mut self, signal: Signal, r: OTelSdkResult) {
        if let Err(e) = r {
            self.0.get_or_insert(ShutdownError::Flush {
                signal: signal.as_str(),
                reason: crate::export::error_text(&e),
            });
        }
    }
}

impl TelemetryGuard {
    pub(super) fn new(p: GuardParts) -> Self {
        TelemetryGuard {
            shared: p.shared,
            tail: p.tail,
            foreign_span_processors: p.foreign_span_processors,
            pipelines: p.pipelines,
            foreign_log_processors: p.foreign_log_processors,
            foreign_metric_readers: p.foreign_metric_readers,
            _dropped_counter: p.dropped_counter,
            _tail_instruments: p.tail_instruments,
            meter_provider: p.meter_provider,
            logger_provider: p.logger_provider,
            tracer_provider: p.tracer_provider,
            closer: p.closer,
            metrics_server: p.metrics_server,
            global: false,
            done: false,
        }
    }

    /// Installed as the process-wide default by `init`.
    pub(super) fn set_global(&mut self) {
        self.global = true;
    }

    /// The service name.
    pub fn service_name(&self) -> &str {
        &self.shared.service
    }

    /// The address of the standalone `/metrics` listener, if one runs.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_server.as_ref().map(|s| s.local_addr())
    }

    /// The meter provider (absent when the SDK is disabled).
    pub fn meter_provider(&self) -> Option<&SdkMeterProvider> {
        self.meter_provider.as_ref()
    }

    /// The OpenTelemetry tracer provider whose spans reach observe's processors.
    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.tracer_provider.as_ref()
    }

    /// The OpenTelemetry logger provider whose records reach observe's log
    /// pipelines (present when log records are exported), for code that
    /// emits records through the OpenTelemetry Logs API directly.
    pub fn logger_provider(&self) -> Option<&SdkLoggerProvider> {
        self.logger_provider.as_ref()
    }

    /// A tracer of that provider, for code that uses the OpenTelemetry API directly.
    pub fn tracer(&self, name: &'static str) -> Option<opentelemetry_sdk::trace::SdkTracer> {
        self.tracer_provider.as_ref().map(|tp| tp.tracer(name))
    }

    /// What observe's pipelines of `signal` dropped, by reason, and how
    /// often they retried an export, so far.
    ///
    /// ```
    /// use observe_core::export::Signal;
    /// let (_dispatch, guard) = observe_core::Telemetry::builder("checkout")
    ///     .build()?
    ///     .into_parts();
    /// let traces = guard.export_stats(Signal::Traces);
    /// assert_eq!(traces.dropped(), 0);
    /// assert_eq!(traces.retries, 0);
    /// # Ok::<(), observe_core::InitError>(())
    /// ```
    pub fn export_stats(&self, signal: crate::export::Signal) -> crate::export::ExportStats {
        let mut stats = crate::export::ExportStats::default();
        for p in self.pipelines.iter().filter(|p| p.stats().signal == signal) {
            stats.add(&p.stats());
        }
        stats
    }

    /// Writes everything recorded so far (spans, records, metrics, lines)
    /// without shutting down, within `deadline` for observe's own pipelines.
    pub fn flush(&self, deadline: Duration) -> Result<(), ShutdownError> {
        self.walk(Walk::Flush, deadline)
    }

    /// Flushes and shuts down every signal, within `deadline`: spans, then
    /// log records, then metrics (whose last export carries
    /// `observe.telemetry.dropped`), then log lines.
    pub fn shutdown(mut self, deadline: Duration) -> Result<(), ShutdownError> {
        self.shutdown_once(deadline)
    }

    fn shutdown_once(&mut self, deadline: Duration) -> Result<(), ShutdownError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        self.walk(Walk::Shutdown, deadline)
    }

    /// Flushes or shuts down, in order: the tail sampler (which decides what
    /// is pending and, at shutdown, shuts its downstream down), then per
    /// signal observe's pipelines and the processors that are not observe's,
    /// then the log lines. Every step runs; the first error is returned.
    fn walk(&self, walk: Walk, deadline: Duration) -> Result<(), ShutdownError> {
        let start = Instant::now();
        let left = || deadline.saturating_sub(start.elapsed());
        let mut errors = FirstError(None);
        if let Some(t) = &self.tail {
            errors.note(
                Signal::Traces,
                match walk {
                    Walk::Flush => t.force_flush(),
                    Walk::Shutdown => t.shutdown_with_timeout(left()),
                },
            );
        }
        for signal in Signal::ALL {
            for p in self.pipelines.iter().filter(|p| p.stats().signal == signal) {
                errors.note(
                    signal,
                    match walk {
                        Walk::Flush => p.flush(left()),
                        Walk::Shutdown => p.shutdown(left()),
                    },
                );
            }
            match signal {
                Signal::Traces => {
                    for p in &self.foreign_span_processors {
                        errors.note(
                            signal,
                            match walk {
                                Walk::Flush => p.force_flush(),
                                Walk::Shutdown => p
                                    .force_flush()
                                    .and_then(|()| p.shutdown_with_timeout(left())),
                            },
                        );
                    }
                }
                Signal::Logs => {
                    if let Some(lp) = &self.logger_provider {
                        match walk {
                            Walk::Flush if self.foreign_log_processors => {
                                errors.note(signal, lp.force_flush());
                            }
                            Walk::Flush => {}
                            Walk::Shutdown => errors.note(signal, lp.shutdown_with_timeout(left())),
                        }
                    }
                }
                Signal::Metrics => {
                    if let Some(mp) = &self.meter_provider {
                        match walk {
                            Walk::Flush if self.foreign_metric_readers => {
                                errors.note(signal, mp.force_flush());
                            }
                            Walk::Flush => {}
                            Walk::Shutdown => errors.note(signal, mp.shutdown_with_timeout(left())),
                        }
                    }
                }
            }
        }
        let lines_written = match (walk, &self.closer) {
            (Walk::Shutdown, Some(c)) => c.close(left()),
            _ => self.shared.sink.flush(left()),
        };
        if !lines_written {
            errors.0.get_or_insert(ShutdownError::Timeout {
                deadline,
                pending: "log lines".to_owned(),
            });
        }
        errors.0.map_or(Ok(()), Err)
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown_once(DEFAULT_SHUTDOWN_DEADLINE) {
            // The subscriber may already be gone: say it on stderr, once.
            eprintln!("observe: shutdown: {e}");
        }
    }
}
