//! What [`build`](super::TelemetryBuilder::build) wires, one function per
//! part: the log-line sink, the span processors (behind the tail sampler, if
//! any), the meter provider and observe's instruments, the logger provider,
//! and the layer that ties them to tracing.
//!
//! ```text
//!  settings + environment ─▶ resource, pseudonym key, head sampler, destinations
//!                          ─▶ log_sink()      LineSink (stdout / stderr / file / yours)
//!                          ─▶ traces()        processors, tail sampler, SdkTracerProvider
//!                          ─▶ metrics()       SdkMeterProvider, /metrics listener, Signals
//!                          ─▶ logs()          SdkLoggerProvider (OTLP log records)
//!                          ─▶ Shared ─▶ TelemetryLayer (+ level filter), TelemetryGuard
//! ```

use super::builder::{LogOutput, RuntimeChoice, TelemetryBuilder};
use super::env::read_var;
use super::guard::{GuardParts, TelemetryGuard};
use super::otlp::{self, Destination};
use super::resource::{self, Declared};
use super::vars;
use crate::error::InitError;
use crate::export::batch::PipelineControl;
use crate::export::file::{FileLogExporter, FileSpanExporter};
use crate::export::prometheus::{PrometheusExporter, ServerHandle};
use crate::export::tail::{TailCounters, TailInstruments, TailSampling};
use crate::export::{
    BatchConfig, LogPipeline, MetricPipeline, Signal, SpanPipeline, DEFAULT_METRIC_INTERVAL,
    DEFAULT_METRIC_TIMEOUT,
};
use crate::filter::LogFilter;
use crate::layer::{Shared, SharedParts, TelemetryLayer, TracePipeline};
use crate::log::redact::Redactor;
use crate::log::sampling::LogSampling;
use crate::log::writer::{LineSink, NonBlocking};
use crate::metrics::Instruments;
use crate::pseudonym::PseudonymKey;
use crate::sampler::HeadSampler;
use crate::signals::Signals;
use opentelemetry::metrics::{MeterProvider as _, ObservableCounter};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

/// Everything built, before anything is installed.
pub(super) struct Built {
    pub(super) layer: TelemetryLayer,
    pub(super) guard: TelemetryGuard,
    /// The provider `init` installs globally.
    pub(super) tracer_provider: Option<SdkTracerProvider>,
    /// Configuration problems that did not stop init, logged by `init`.
    pub(super) warnings: Vec<String>,
}

/// The batch processors' and metric reader's variables, read at init.
struct SdkVars {
    trace_batch: BatchConfig,
    log_batch: BatchConfig,
    metric_interval: Option<Duration>,
    metric_timeout: Option<Duration>,
    temporality: opentelemetry_sdk::metrics::Temporality,
}

/// Where log lines go, and observe's own writer behind it (closed at shutdown).
type LogSink = (Arc<dyn LineSink>, Option<Arc<NonBlocking>>);

/// The span side: processors, in the order spans reach them.
#[derive(Default)]
struct Traces {
    processors: Vec<Arc<dyn SpanProcessor>>,
    /// The tail sampler in front of every processor.
    tail: Option<Arc<dyn SpanProcessor>>,
    tail_counters: Option<Arc<TailCounters>>,
    /// Processors that are not observe pipelines (flushed through the trait).
    foreign: Vec<Arc<dyn SpanProcessor>>,
    /// observe's span pipelines among the processors.
    pipelines: Vec<Arc<dyn PipelineControl>>,
    /// The only processor, when it is one of observe's pipelines (and no
    /// tail sampler is in front): the layer queues spans on it directly.
    direct: Option<SpanPipeline>,
    provider: Option<SdkTracerProvider>,
}

/// The metric side.
#[derive(Default)]
struct Metrics {
    provider: Option<SdkMeterProvider>,
    server: Option<ServerHandle>,
    dropped_counter: Option<[ObservableCounter<u64>; 2]>,
    tail_instruments: Option<TailInstruments>,
    instruments: Option<Instruments>,
    signals: Option<Arc<Signals>>,
}

impl TelemetryBuilder {
    pub(super) fn build_parts(mut self) -> Result<Built, InitError> {
        let mut warnings = Vec::new();
        let name = self.service_name.trim().to_owned();
        if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
            return Err(InitError::InvalidServiceName {
                name: self.service_name.clone(),
            });
        }
        let disabled = match self.disabled {
            Some(d) => d,
            None => self
                .var("OTEL_SDK_DISABLED")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
        };
        let env = self.env.clone();
        let lookup = move |k: &str| read_var(env.as_ref(), k);
        let (resource, environment) = resource::build(
            Declared {
                service_name: name.clone(),
                service_version: self.service_version.take(),
                environment: self.environment.take(),
                attributes: std::mem::take(&mut self.resource_attributes),
            },
            &lookup,
        )?;
        crate::pseudonym::install(self.pseudonym(environment.as_deref(), &mut warnings)?);
        let sampler = self.head_sampler()?;
        // Export destinations (validated even when the SDK is disabled).
        let mut dest = Vec::with_capacity(3);
        for signal in Signal::ALL {
            dest.push(otlp::resolve(signal, &self.otlp, &lookup, &mut warnings)?);
        }
        let export_dir = self.export_folder();
        let log_filter = self.level_filter()?;
        let log_sampling = match self.log_sampling.take() {
            Some(s) => Some(s),
            None => match self.var("OBSERVE_LOG_SAMPLING") {
                Some(s) => Some(s.parse::<LogSampling>()?),
                None => None,
            },
        };
        // The SDK's other variables, read strictly whether or not the SDK
        // is disabled: a typo fails init, it does not fall back.
        let sdk = SdkVars {
            trace_batch: vars::batch(BatchConfig::default(), "OTEL_BSP", &lookup)?,
            log_batch: vars::batch(BatchConfig::logs(), "OTEL_BLRP", &lookup)?,
            metric_interval: vars::millis(&lookup, "OTEL_METRIC_EXPORT_INTERVAL")?,
            metric_timeout: vars::millis(&lookup, "OTEL_METRIC_EXPORT_TIMEOUT")?,
            temporality: vars::temporality(&lookup)?,
        };
        vars::histogram_aggregation(&lookup)?;
        let span_limits = vars::limits(&lookup, "SPAN")?;
        let log_limits = vars::limits(&lookup, "LOGRECORD")?;
        // Process-wide, as the variables are: set only when given.
        if let Some(p) = vars::propagators(&lookup)? {
            crate::propagation::set_propagators(p.trace_context, p.baggage);
        }
        if let Some(level) = vars::self_level(&lookup)? {
            let quiet = level < vars::SelfLevel::Warn;
            crate::export::dropped::set_quiet(quiet);
            if quiet {
                warnings.clear();
            }
        }
        let (sink, closer) = self.log_sink()?;

        let (traces, metrics, otel_logs, logger_provider, pipelines) = if disabled {
            Default::default()
        } else {
            self.start_pipelines(&dest, export_dir, sdk)?;
            let mut traces = self.traces(&resource)?;
            let pipelines = self.pipelines_in_shutdown_order(&mut traces);
            let metrics = self.metrics(&resource, &traces, &pipelines, &sink)?;
            let (logger_provider, otel_logs) = self.logs(&resource);
            (traces, metrics, otel_logs, logger_provider, pipelines)
        };

        let shared = Arc::new(Shared::new(SharedParts {
            service: name,
            sink: Arc::clone(&sink),
            clock: self.clock,
            value_cap: self.value_cap,
            span_limits,
            log_limits,
            redactor: Redactor::new(&self.deny_list),
            traces: (!disabled).then(|| TracePipeline {
                processors: traces.processors.clone(),
                direct: traces.direct.clone(),
                sampler,
            }),
            otel_logs,
            log_sampling,
            metrics: metrics.instruments,
            signals: metrics.signals,
            ids: self.ids,
        }));
        let layer = TelemetryLayer::new(
            Arc::clone(&shared),
            log_filter,
            pipelines.iter().map(|p| p.stats()).collect(),
        );
        let guard = TelemetryGuard::new(GuardParts {
            shared,
            tail: traces.tail,
            foreign_span_processors: traces.foreign,
            pipelines,
            foreign_log_processors: self.foreign_log_processors,
            foreign_metric_readers: self.foreign_metric_readers,
            dropped_counter: metrics.dropped_counter,
            tail_instruments: metrics.tail_instruments,
            meter_provider: metrics.provider,
            logger_provider,
            tracer_provider: traces.provider.clone(),
            closer,
            metrics_server: metrics.server,
        });
        Ok(Built {
            layer,
            guard,
            tracer_provider: traces.provider,
            warnings,
        })
    }

    /// The pseudonym key: the builder's, else `OBSERVE_PSEUDONYM_KEY`, else
    /// (outside production) a random one, with a warning.
    fn pseudonym(
        &mut self,
        environment: Option<&str>,
        warnings: &mut Vec<String>,
    ) -> Result<PseudonymKey, InitError> {
        let key = match self.pseudonym_key.take() {
            Some(k) => Some(k),
            None => self.var("OBSERVE_PSEUDONYM_KEY").map(PseudonymKey::new),
        };
        match key {
            Some(k) if k.len() < 16 => Err(InitError::WeakPseudonymKey { len: k.len() }),
            Some(k) => Ok(k),
            None if environment.is_some_and(|e| e.eq_ignore_ascii_case("production")) => {
                Err(InitError::MissingPseudonymKey)
            }
            None => {
                warnings.push(
                    "no pseudonym key (OBSERVE_PSEUDONYM_KEY): pseudonyms use a random per-process key and will differ across restarts".to_owned(),
                );
                Ok(PseudonymKey::random())
            }
        }
    }

    /// The head sampler: the builder's, else `OTEL_TRACES_SAMPLER`.
    fn head_sampler(&mut self) -> Result<HeadSampler, InitError> {
        Ok(match self.sampler.take() {
            Some(s) => s,
            None => match self.var("OTEL_TRACES_SAMPLER") {
                Some(n) => HeadSampler::from_env_values(
                    &n,
                    self.var("OTEL_TRACES_SAMPLER_ARG").as_deref(),
                )?,
                None => HeadSampler::default(),
            },
        })
    }

    /// The export folder, absolute (relative to the working directory at
    /// init, not at each write).
    fn export_folder(&mut self) -> Option<PathBuf> {
        let dir = match self.export_dir.take() {
            Some(d) => d,
            None => match self.var("OBSERVE_EXPORT_DIR") {
                Some(d) if d.trim().eq_ignore_ascii_case("none") => None,
                Some(d) => Some(PathBuf::from(d.trim())),
                None if self.implicit_export && self.env.is_none() => {
                    Some(PathBuf::from(crate::export::file::DEFAULT_DIR))
                }
                None => None,
            },
        };
        dir.map(|d| std::path::absolute(&d).unwrap_or(d))
    }

    /// The level filter: a bare level is a static filter (one comparison per
    /// call site); anything with targets or spans needs an `EnvFilter`.
    fn level_filter(&self) -> Result<LogFilter, InitError> {
        let src = self
            .log_filter
            .clone()
            .or_else(|| self.var("RUST_LOG"))
            .unwrap_or_else(|| "info".to_owned());
        Ok(match src.trim().parse::<LevelFilter>() {
            Ok(l) => LogFilter::Level(l),
            Err(_) => LogFilter::Env(Box::new(EnvFilter::builder().parse(&src).map_err(|e| {
                InitError::InvalidLogFilter {
                    value: src.clone(),
                    reason: e.to_string(),
                }
            })?)),
        })
    }

    /// Where log lines go, and the writer to close at shutdown when it is
    /// observe's own.
    fn log_sink(&mut self) -> Result<LogSink, InitError> {
        let out: Box<dyn std::io::Write + Send> = match std::mem::take(&mut self.output) {
            LogOutput::Sink(s) => return Ok((s, None)),
            LogOutput::Stdout => Box::new(std::io::stdout()),
            LogOutput::Stderr => Box::new(std::io::stderr()),
            LogOutput::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|source| InitError::LogFile { path, source })?,
            ),
        };
        let nb = Arc::new(
            NonBlocking::new(out, self.log_buffer, self.full_policy).map_err(|source| {
                InitError::Thread {
                    what: "log writer",
                    source,
                }
            })?,
        );
        Ok((Arc::clone(&nb) as Arc<dyn LineSink>, Some(nb)))
    }

    /// Starts observe's pipelines for the resolved destinations: OTLP where
    /// an endpoint is configured, files in `export_dir` for spans and log
    /// records otherwise.
    fn start_pipelines(
        &mut self,
        dest: &[Destination],
        export_dir: Option<PathBuf>,
        sdk: SdkVars,
    ) -> Result<(), InitError> {
        let trace_cfg = self.trace_batch.clone().unwrap_or(sdk.trace_batch);
        let log_cfg = self.log_batch.clone().unwrap_or(sdk.log_batch);
        match dest.first() {
            Some(Destination::Otlp(t)) => {
                let p = SpanPipeline::otlp(t.clone(), trace_cfg)?;
                self.add_span_pipeline(p);
            }
            Some(Destination::Default) => {
                if let Some(dir) = &export_dir {
                    let p = SpanPipeline::new(FileSpanExporter::new(dir.clone()), trace_cfg)?;
                    self.add_span_pipeline(p);
                }
            }
            _ => {}
        }
        match dest.get(1) {
            Some(Destination::Otlp(t)) => {
                let p = LogPipeline::otlp(t.clone(), log_cfg)?;
                self.add_log_pipeline(p);
            }
            Some(Destination::Default) => {
                if let Some(dir) = &export_dir {
                    let p = LogPipeline::new(FileLogExporter::new(dir.clone()), log_cfg)?;
                    self.add_log_pipeline(p);
                }
            }
            _ => {}
        }
        if let Some(Destination::Otlp(t)) = dest.get(2) {
            let temporality = sdk.temporality;
            let interval = self
                .metric_interval
                .or(sdk.metric_interval)
                .unwrap_or(DEFAULT_METRIC_INTERVAL);
            let timeout = sdk.metric_timeout.unwrap_or(DEFAULT_METRIC_TIMEOUT);
            let r = MetricPipeline::otlp(t.clone(), temporality, interval, timeout)?;
            self.pipelines.push(r.pipeline());
            self.meter_hooks.push(Box::new(move |b| b.with_reader(r)));
        }
        Ok(())
    }

    /// The span processors (each given the resource), the tail sampler in
    /// front of them when configured, and the tracer provider whose spans
    /// (made through the OpenTelemetry API) reach them too.
    fn traces(&mut self, resource: &Resource) -> Result<Traces, InitError> {
        let mut t = Traces::default();
        let mut ours = Vec::new();
        for (mut p, pipeline) in std::mem::take(&mut self.span_processors) {
            p.set_resource(resource);
            let p: Arc<dyn SpanProcessor> = Arc::from(p);
            match pipeline {
                Some(pipeline) => {
                    t.pipelines.push(pipeline.pipeline());
                    ours.push(pipeline);
                }
                None => t.foreign.push(Arc::clone(&p)),
            }
            t.processors.push(p);
        }
        if let ([_], [only]) = (t.processors.as_slice(), ours.as_slice()) {
            t.direct = Some(only.clone());
        }
        // Tail sampling in front of every processor: they become its
        // downstream, flushed and shut down through it.
        if let Some(config) = self.tail_sampling.take() {
            if !t.processors.is_empty() {
                let downstream = Fanout(std::mem::take(&mut t.processors));
                let mut tail = TailSampling::builder(downstream)
                    .config(config)
                    .build()
                    .map_err(|e| InitError::TailSampling {
                        reason: e.to_string(),
                    })?;
                tail.set_resource(resource);
                t.tail_counters = Some(tail.counters());
                let tail: Arc<dyn SpanProcessor> = Arc::new(tail);
                t.processors.push(Arc::clone(&tail));
                t.tail = Some(tail);
                t.foreign.clear();
                t.direct = None;
            }
        }
        let mut tpb = SdkTracerProvider::builder().with_resource(resource.clone());
        for p in &t.processors {
            tpb = tpb.with_span_processor(Forward(Arc::clone(p)));
        }
        t.provider = Some(tpb.build());
        Ok(t)
    }

    /// observe's pipelines in shutdown order: traces, then logs, then
    /// metrics (whose last export carries `observe.telemetry.dropped`).
    fn pipelines_in_shutdown_order(
        &mut self,
        traces: &mut Traces,
    ) -> Vec<Arc<dyn PipelineControl>> {
        let mut pipelines = std::mem::take(&mut traces.pipelines);
        let (logs, metrics): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pipelines)
            .into_iter()
            .partition(|p| p.stats().signal == Signal::Logs);
        pipelines.extend(logs);
        pipelines.extend(metrics);
        pipelines
    }

    /// The meter provider (with a `/metrics` listener when asked) and the
    /// instruments observe records into.
    fn metrics(
        &mut self,
        resource: &Resource,
        traces: &Traces,
        pipelines: &[Arc<dyn PipelineControl>],
        sink: &Arc<dyn LineSink>,
    ) -> Result<Metrics, InitError> {
        let exporter_error = |e: &dyn std::fmt::Display| InitError::Exporter {
            signal: "metrics",
            reason: e.to_string(),
        };
        let listen = match self.metrics_addr.clone() {
            Some(a) => Some(a),
            None => self.var("OBSERVE_METRICS_ADDR"),
        };
        let prometheus = match listen {
            Some(a) => {
                let addr = crate::export::prometheus::parse_listen_addr(&a)
                    .map_err(|e| exporter_error(&e))?;
                let exporter = match &self.exemplars {
                    Some(ex) => PrometheusExporter::with_exemplars(ex.clone()),
                    None => PrometheusExporter::new(),
                };
                self.exemplars = Some(exporter.exemplars().clone());
                let reader = exporter.reader();
                self.meter_hooks
                    .push(Box::new(move |b| b.with_reader(reader)));
                Some((exporter, addr))
            }
            None => None,
        };
        let limit = self.cardinality_limit;
        let mut b = SdkMeterProvider::builder()
            .with_resource(resource.clone())
            .with_view(move |_: &opentelemetry_sdk::metrics::Instrument| {
                opentelemetry_sdk::metrics::Stream::builder()
                    .with_cardinality_limit(limit)
                    .build()
                    .ok()
            });
        for hook in std::mem::take(&mut self.meter_hooks) {
            b = hook(b);
        }
        let provider = b.build();
        let server = match prometheus {
            Some((exporter, addr)) => Some(exporter.serve(addr).map_err(|e| exporter_error(&e))?),
            None => None,
        };
        let meter = provider.meter_with_scope(crate::scope::instrumentation_scope());
        let runtime = match &self.tokio_runtime {
            RuntimeChoice::Current => tokio::runtime::Handle::try_current().ok(),
            RuntimeChoice::Given(h) => Some(h.clone()),
            RuntimeChoice::Off => None,
        };
        if let Some(h) = runtime {
            crate::signals::runtime::register(&meter, &h);
        }
        let dropped_counter = (!pipelines.is_empty()).then(|| {
            crate::export::dropped_counter(&meter, pipelines.iter().map(|p| p.stats()).collect())
        });
        Ok(Metrics {
            tail_instruments: traces.tail_counters.as_ref().map(|c| c.register(&meter)),
            dropped_counter,
            instruments: Some(Instruments::new(&meter, Arc::clone(sink))),
            signals: Some(Arc::new(Signals::new(
                &meter,
                self.mark_synthetic,
                self.exemplars.clone(),
            ))),
            provider: Some(provider),
            server,
        })
    }

    /// The logger provider of the log-record processors, if any, and the
    /// logger observe's layer emits records through.
    fn logs(&mut self, resource: &Resource) -> (Option<SdkLoggerProvider>, Option<SdkLogger>) {
        if self.log_processors.is_empty() {
            return (None, None);
        }
        let mut b = SdkLoggerProvider::builder().with_resource(resource.clone());
        for p in std::mem::take(&mut self.log_processors) {
            b = p.add_to(b);
        }
        let provider = b.build();
        let logger = {
            use opentelemetry::logs::LoggerProvider as _;
            provider.logger_with_scope(crate::scope::instrumentation_scope())
        };
        (Some(provider), Some(logger))
    }
}

/// Every span processor behind the tail sampler, as one.
#[derive(Debug)]
struct Fanout(Vec<Arc<dyn SpanProcessor>>);

impl SpanProcessor for Fanout {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        for p in &self.0 {
            p.on_start(span, cx);
        }
    }
    fn on_end(&self, span: SpanData) {
        if let Some((last, rest)) = self.0.split_last() {
            for p in rest {
                p.on_end(span.clone());
            }
            last.on_end(span);
        }
    }
    /// Flushes every processor (even after one failed); the first error.
    fn force_flush(&self) -> OTelSdkResult {
        let mut first = Ok(());
        for p in &self.0 {
            let r = p.force_flush();
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
    /// Shuts every processor down within `timeout`; the first error.
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let start = Instant::now();
        let mut first = Ok(());
        for p in &self.0 {
            let r = p.shutdown_with_timeout(timeout.saturating_sub(start.elapsed()));
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

/// Lets spans made through the OpenTelemetry API reach observe's processors.
/// Shutdown is the guard's job, so this forwards flushes only.
#[derive(Debug)]
struct Forward(Arc<dyn SpanProcessor>);

impl SpanProcessor for Forward {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.0.on_start(span, cx);
    }
    fn on_end(&self, span: SpanData) {
        self.0.on_end(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}
