//! [`Shared`]: what the layer, the guard and the `#[observed]` runtime
//! share for one telemetry instance: the line sink and its settings, the
//! span processors and head sampler, log sampling, the instruments, and
//! where ids come from.

use crate::ids::{random_u64, IdSource, Rng};
use crate::layer::Clock;
use crate::log::redact::Redactor;
use crate::log::sampling::{LogSampling, SamplingState};
use crate::log::writer::LineSink;
use crate::metrics::Instruments;
use crate::sampler::HeadSampler;
use crate::telemetry::vars::Limits;
use opentelemetry_sdk::logs::SdkLogger;
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use std::fmt;
use std::sync::{Arc, Mutex};

/// Span export: the processors that receive ended spans.
pub(crate) struct TracePipeline {
    pub(crate) processors: Vec<Arc<dyn SpanProcessor>>,
    /// The only processor, when it is one of observe's span pipelines: spans
    /// reach its queue with their call site's attributes still to add.
    pub(crate) direct: Option<crate::export::SpanPipeline>,
    pub(crate) sampler: HeadSampler,
}

/// Everything the layer needs, shared with the guard and the runtime helpers.
pub(crate) struct Shared {
    pub(crate) service: Box<str>,
    /// `","level":"<LEVEL>","service":"<name>","event":` per level, escaped once.
    pub(crate) after_timestamp: [Box<[u8]>; 5],
    pub(crate) sink: Arc<dyn LineSink>,
    pub(crate) clock: Clock,
    pub(crate) value_cap: usize,
    pub(crate) span_limits: Limits,
    pub(crate) log_limits: Limits,
    pub(crate) redactor: Redactor,
    pub(crate) traces: Option<TracePipeline>,
    pub(crate) otel_logs: Option<SdkLogger>,
    pub(crate) log_sampling: Option<LogSampling>,
    pub(crate) sampling_state: SamplingState,
    pub(crate) metrics: Option<Instruments>,
    pub(crate) signals: Option<Arc<crate::signals::Signals>>,
    seeded: Option<Mutex<Rng>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("service", &self.service)
            .field("traces", &self.traces.is_some())
            .field("otel_logs", &self.otel_logs.is_some())
            .finish_non_exhaustive()
    }
}

pub(crate) struct SharedParts {
    pub(crate) service: String,
    pub(crate) sink: Arc<dyn LineSink>,
    pub(crate) clock: Clock,
    pub(crate) value_cap: usize,
    pub(crate) span_limits: Limits,
    pub(crate) log_limits: Limits,
    pub(crate) redactor: Redactor,
    pub(crate) traces: Option<TracePipeline>,
    pub(crate) otel_logs: Option<SdkLogger>,
    pub(crate) log_sampling: Option<LogSampling>,
    pub(crate) metrics: Option<Instruments>,
    pub(crate) signals: Option<Arc<crate::signals::Signals>>,
    pub(crate) ids: IdSource,
}

impl Shared {
    pub(crate) fn new(p: SharedParts) -> Self {
        let after_timestamp = crate::log::line::level_heads(&p.service);
        Shared {
            service: p.service.into_boxed_str(),
            after_timestamp,
            sink: p.sink,
            clock: p.clock,
            value_cap: p.value_cap,
            span_limits: p.span_limits,
            log_limits: p.log_limits,
            redactor: p.redactor,
            traces: p.traces,
            otel_logs: p.otel_logs,
            log_sampling: p.log_sampling,
            sampling_state: SamplingState::default(),
            metrics: p.metrics,
            signals: p.signals,
            seeded: match p.ids {
                IdSource::Random => None,
                IdSource::Seeded(s) => Some(Mutex::new(Rng::from_seed(s))),
            },
        }
    }

    #[inline]
    pub(super) fn next_id(&self) -> u64 {
        match &self.seeded {
            None => random_u64(),
            Some(m) => {
                let mut rng = m.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    let v = rng.next_u64();
                    if v != 0 {
                        return v;
                    }
                }
            }
        }
    }

    /// `N` ids at once (one access to the thread's generator).
    #[inline]
    pub(super) fn next_ids<const N: usize>(&self) -> [u64; N] {
        match &self.seeded {
            None => crate::ids::random_u64s(),
            Some(_) => std::array::from_fn(|_| self.next_id()),
        }
    }

    /// Hands an ended span to every processor.
    #[inline]
    pub(crate) fn export(&self, data: SpanData) {
        if let Some(t) = &self.traces {
            if let Some((last, rest)) = t.processors.split_last() {
                for p in rest {
                    p.on_end(data.clone());
                }
                last.on_end(data);
            }
        }
    }
}
