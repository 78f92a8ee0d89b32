//! One-call init: the builder, the environment, and the guard that flushes
//! everything on drop.

use crate::error::{InitError, ShutdownError};
use crate::export::batch::Pipeline;
use crate::export::dropped::Signal;
use crate::export::file::{FileLogExporter, FileSpanExporter};
use crate::export::otlp::{self, Destination, OtlpOverrides};
use crate::export::{
    BatchConfig, BatchLogProcessor, BatchSpanProcessor, PeriodicReader, Protocol,
    DEFAULT_METRIC_INTERVAL, DEFAULT_METRIC_TIMEOUT,
};
use crate::filter::LogFilter;
use crate::ids::IdSource;
use crate::layer::{Clock, ObserveLayer, Shared, SharedParts, TracePipeline};
use crate::log::redact::{Redactor, DEFAULT_DENY_LIST};
use crate::log::sampling::LogSampling;
use crate::log::writer::{FullPolicy, LineSink, NonBlocking};
use crate::metrics::Instruments;
use crate::pseudonym::PseudonymKey;
use crate::sampler::HeadSampler;
use crate::signals::Signals;
use opentelemetry::metrics::ObservableCounter;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogProcessor, SdkLoggerProvider};
use opentelemetry_sdk::metrics::{MeterProviderBuilder, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;
use std::any::Any;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Dispatch;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Registry};

/// Default cap on one field value in a log line: 8 KiB.
pub const DEFAULT_VALUE_CAP: usize = 8 * 1024;
/// Default size of the stdout buffer: 4 MiB.
pub const DEFAULT_LOG_BUFFER: usize = 4 << 20;
/// Default cap on distinct attribute sets per instrument.
pub const DEFAULT_CARDINALITY_LIMIT: usize = 2000;
/// Default shutdown deadline used when the guard is dropped.
pub const DEFAULT_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

const INSTRUMENTATION_NAME: &str = "observe";

/// The instrumentation scope of everything observe exports. Built from
/// constants, which costs less than cloning a built one (it is made for
/// every exported span).
#[inline]
pub(crate) fn instrumentation_scope() -> InstrumentationScope {
    InstrumentationScope::builder(INSTRUMENTATION_NAME)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// Where log lines go.
#[derive(Clone, Default)]
pub enum LogOutput {
    /// Standard output through a bounded non-blocking writer (default).
    #[default]
    Stdout,
    /// Standard error through a bounded non-blocking writer.
    Stderr,
    /// A file (appended) through a bounded non-blocking writer.
    File(PathBuf),
    /// Any [`LineSink`].
    Sink(Arc<dyn LineSink>),
}

impl fmt::Debug for LogOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogOutput::Stdout => f.write_str("Stdout"),
            LogOutput::Stderr => f.write_str("Stderr"),
            LogOutput::File(p) => f.debug_tuple("File").field(p).finish(),
            LogOutput::Sink(_) => f.write_str("Sink(..)"),
        }
    }
}

type MeterHook = Box<dyn FnOnce(MeterProviderBuilder) -> MeterProviderBuilder + Send>;
type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;
/// A span processor, with observe's pipeline behind it if it is one of observe's.
type SpanProcessorEntry = (Box<dyn SpanProcessor>, Option<Arc<dyn Pipeline>>);

/// Configures and starts observe. Values set here override the environment.
///
/// ```no_run
/// # fn main() -> Result<(), observe_core::InitError> {
/// let _telemetry = observe_core::Telemetry::builder("payment-service")
///     .service_version("1.4.2")
///     .environment("staging")
///     .log_filter("info,hyper=warn")
///     .init()?;
/// tracing::info!(event = "started", "payment service started");
/// # Ok(()) }
/// ```
pub struct TelemetryBuilder {
    service_name: String,
    service_version: Option<String>,
    environment: Option<String>,
    log_filter: Option<String>,
    output: LogOutput,
    log_buffer: usize,
    full_policy: FullPolicy,
    value_cap: usize,
    deny_list: Vec<String>,
    pseudonym_key: Option<PseudonymKey>,
    log_sampling: Option<LogSampling>,
    sampler: Option<HeadSampler>,
    otlp: OtlpOverrides,
    /// `Some(None)`: file export switched off by the builder.
    export_dir: Option<Option<PathBuf>>,
    trace_batch: Option<BatchConfig>,
    log_batch: Option<BatchConfig>,
    metric_interval: Option<Duration>,
    /// Set by `init()`: the `observe-data/` default may apply.
    implicit_export: bool,
    /// Each with observe's pipeline behind it, if it is one of observe's.
    span_processors: Vec<SpanProcessorEntry>,
    log_processors: Vec<Box<dyn LogProcessorBox>>,
    meter_hooks: Vec<MeterHook>,
    metrics_addr: Option<String>,
    exemplars: Option<crate::exemplars::Exemplars>,
    /// observe's own pipelines among the processors and readers, in
    /// shutdown order (traces, logs, metrics).
    pipelines: Vec<Arc<dyn Pipeline>>,
    foreign_log_processors: bool,
    foreign_metric_readers: bool,
    resource_attributes: Vec<KeyValue>,
    disabled: Option<bool>,
    cardinality_limit: usize,
    tail_sampling: Option<crate::export::tail::TailSamplingConfig>,
    mark_synthetic: bool,
    clock: Clock,
    ids: IdSource,
    env: Option<EnvLookup>,
}

impl fmt::Debug for TelemetryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryBuilder")
            .field("service_name", &self.service_name)
            .field("service_version", &self.service_version)
            .field("environment", &self.environment)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

/// Object-safe wrapper so log processors of any type can be stored.
pub(crate) trait LogProcessorBox: Send + Sync {
    fn add_to(
        self: Box<Self>,
        b: opentelemetry_sdk::logs::LoggerProviderBuilder,
    ) -> opentelemetry_sdk::logs::LoggerProviderBuilder;
}

struct LogProcessorHolder<P>(P);

impl<P: LogProcessor + 'static> LogProcessorBox for LogProcessorHolder<P> {
    fn add_to(
        self: Box<Self>,
        b: opentelemetry_sdk::logs::LoggerProviderBuilder,
    ) -> opentelemetry_sdk::logs::LoggerProviderBuilder {
        b.with_log_processor(self.0)
    }
}

/// Entry point: `Telemetry::builder("payment-service")`.
#[derive(Debug)]
pub struct Telemetry {
    dispatch: Dispatch,
    guard: TelemetryGuard,
}

impl Telemetry {
    /// A builder for the service called `service_name`.
    pub fn builder(service_name: impl Into<String>) -> TelemetryBuilder {
        TelemetryBuilder {
            service_name: service_name.into(),
            service_version: None,
            environment: None,
            log_filter: None,
            output: LogOutput::Stdout,
            log_buffer: DEFAULT_LOG_BUFFER,
            full_policy: FullPolicy::DropNewest,
            value_cap: DEFAULT_VALUE_CAP,
            deny_list: DEFAULT_DENY_LIST.iter().map(|s| (*s).to_owned()).collect(),
            pseudonym_key: None,
            log_sampling: None,
            sampler: None,
            otlp: OtlpOverrides::default(),
            export_dir: None,
            trace_batch: None,
            log_batch: None,
            metric_interval: None,
            implicit_export: false,
            span_processors: Vec::new(),
            log_processors: Vec::new(),
            meter_hooks: Vec::new(),
            metrics_addr: None,
            exemplars: None,
            pipelines: Vec::new(),
            foreign_log_processors: false,
            foreign_metric_readers: false,
            resource_attributes: Vec::new(),
            disabled: None,
            cardinality_limit: DEFAULT_CARDINALITY_LIMIT,
            tail_sampling: None,
            mark_synthetic: false,
            clock: Clock::System,
            ids: IdSource::Random,
            env: None,
        }
    }

    /// The tracing dispatcher, to install as a scoped default
    /// (`tracing::dispatcher::set_default(telemetry.dispatch())`).
    pub fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }

    /// The guard (flushes on drop).
    pub fn guard(&self) -> &TelemetryGuard {
        &self.guard
    }

    /// Splits into the dispatcher and the guard.
    pub fn into_parts(self) -> (Dispatch, TelemetryGuard) {
        (self.dispatch, self.guard)
    }
}

/// Starts observe for `service_name` with everything else from the
/// environment, and installs it globally. Keep the guard until the end of
/// `main`: dropping it flushes every signal.
///
/// Spans, metrics and log records go to the OTLP endpoint of
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (and friends) when one is set; otherwise
/// spans and log records are appended to `observe-data/` (see
/// [`export`](crate::export)).
///
/// ```no_run
/// fn main() -> Result<(), observe_core::InitError> {
///     let _guard = observe_core::init("payment-service")?;
///     tracing::info!(event = "started", "ready");
///     Ok(())
/// }
/// ```
pub fn init(service_name: &str) -> Result<TelemetryGuard, InitError> {
    Telemetry::builder(service_name).init()
}

impl TelemetryBuilder {
    /// `service.version`.
    pub fn service_version(mut self, v: impl Into<String>) -> Self {
        self.service_version = Some(v.into());
        self
    }

    /// `deployment.environment.name` (`production` makes a pseudonym key mandatory).
    pub fn environment(mut self, env: impl Into<String>) -> Self {
        self.environment = Some(env.into());
        self
    }

    /// Level filter directives (`RUST_LOG` syntax); default `RUST_LOG`, else `info`.
    pub fn log_filter(mut self, directives: impl Into<String>) -> Self {
        self.log_filter = Some(directives.into());
        self
    }

    /// Where lines go (default stdout).
    pub fn log_output(mut self, out: LogOutput) -> Self {
        self.output = out;
        self
    }

    /// Bytes the non-blocking writer holds, and what it does when full.
    pub fn log_buffer(mut self, bytes: usize, policy: FullPolicy) -> Self {
        self.log_buffer = bytes;
        self.full_policy = policy;
        self
    }

    /// Cap on one value in a log line (default 8 KiB); longer values are cut
    /// and end with `…[truncated]`.
    pub fn max_value_len(mut self, bytes: usize) -> Self {
        self.value_cap = bytes.max(16);
        self
    }

    /// Replaces the field-name deny-list (default: [`DEFAULT_DENY_LIST`]).
    pub fn redact_fields<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.deny_list = names.into_iter().map(Into::into).collect();
        self
    }

    /// Adds names to the deny-list.
    pub fn also_redact<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.deny_list.extend(names.into_iter().map(Into::into));
        self
    }

    /// The key of [`pseudonym`](crate::pseudonym) (else `OBSERVE_PSEUDONYM_KEY`).
    pub fn pseudonym_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.pseudonym_key = Some(PseudonymKey::new(key));
        self
    }

    /// Turns on log sampling (else `OBSERVE_LOG_SAMPLING`).
    pub fn log_sampling(mut self, s: LogSampling) -> Self {
        self.log_sampling = Some(s);
        self
    }

    /// The head sampler (else `OTEL_TRACES_SAMPLER`; default parent-based always-on).
    pub fn sampler(mut self, s: HeadSampler) -> Self {
        self.sampler = Some(s);
        self
    }

    /// The OTLP endpoint of every signal (else the signal's
    /// `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT`).
    /// For HTTP, `/v1/traces` (`logs`, `metrics`) is appended to its path.
    pub fn otlp_endpoint(mut self, url: impl Into<String>) -> Self {
        self.otlp.endpoint = Some(url.into());
        self
    }

    /// The OTLP transport (else `OTEL_EXPORTER_OTLP_PROTOCOL`; default `http/protobuf`).
    pub fn otlp_protocol(mut self, protocol: Protocol) -> Self {
        self.otlp.protocol = Some(protocol);
        self
    }

    /// Adds an OTLP header (gRPC metadata), after `OTEL_EXPORTER_OTLP_HEADERS`.
    pub fn otlp_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.otlp.headers.push((name.into(), value.into()));
        self
    }

    /// Timeout of one OTLP request (else `OTEL_EXPORTER_OTLP_TIMEOUT`; default 10 s).
    pub fn otlp_timeout(mut self, timeout: Duration) -> Self {
        self.otlp.timeout = Some(timeout);
        self
    }

    /// Appends spans and log records as OTLP/JSON to `dir` when no OTLP
    /// endpoint is configured (else `OBSERVE_EXPORT_DIR`; `init()` defaults to
    /// `observe-data/`).
    pub fn export_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.export_dir = Some(Some(dir.into()));
        self
    }

    /// Writes no export files, whatever `OBSERVE_EXPORT_DIR` says.
    pub fn without_export_files(mut self) -> Self {
        self.export_dir = Some(None);
        self
    }

    /// Queue and batch sizes of the built-in span pipeline (else `OTEL_BSP_*`).
    pub fn trace_batch(mut self, config: BatchConfig) -> Self {
        self.trace_batch = Some(config);
        self
    }

    /// Queue and batch sizes of the built-in log-record pipeline (else `OTEL_BLRP_*`).
    pub fn log_batch(mut self, config: BatchConfig) -> Self {
        self.log_batch = Some(config);
        self
    }

    /// How often metrics are exported over OTLP (else
    /// `OTEL_METRIC_EXPORT_INTERVAL`; default 60 s).
    pub fn metric_export_interval(mut self, every: Duration) -> Self {
        self.metric_interval = Some(every);
        self
    }

    /// Adds a span processor (an exporter pipeline) receiving every recorded span.
    /// An observe [`BatchSpanProcessor`] is flushed within the guard's
    /// deadline and counted in `observe.telemetry.dropped`.
    pub fn with_span_processor<P: SpanProcessor + 'static>(mut self, p: P) -> Self {
        let ours = (&p as &dyn Any)
            .downcast_ref::<BatchSpanProcessor>()
            .map(BatchSpanProcessor::pipeline);
        self.span_processors.push((Box::new(p), ours));
        self
    }

    /// Adds a log-record processor: events also go out as OpenTelemetry log records.
    pub fn with_log_processor<P: LogProcessor + 'static>(mut self, p: P) -> Self {
        match (&p as &dyn Any).downcast_ref::<BatchLogProcessor>() {
            Some(b) => self.pipelines.push(b.pipeline()),
            None => self.foreign_log_processors = true,
        }
        self.log_processors.push(Box::new(LogProcessorHolder(p)));
        self
    }

    /// Exposes the metrics through `exporter` (mount `exporter.service()` at
    /// `/metrics`), with `trace_id` exemplars on the duration histograms.
    pub fn with_prometheus(
        mut self,
        exporter: &crate::export::prometheus::PrometheusExporter,
    ) -> Self {
        let reader = exporter.reader();
        self.meter_hooks
            .push(Box::new(move |b| b.with_reader(reader)));
        self.exemplars = Some(exporter.exemplars().clone());
        self
    }

    /// Serves the metrics in Prometheus format on `addr` (`0.0.0.0:9464`,
    /// `:9464`) from init's own thread (else `OBSERVE_METRICS_ADDR`).
    pub fn metrics_listener(mut self, addr: impl Into<String>) -> Self {
        self.metrics_addr = Some(addr.into());
        self
    }

    /// Adds a metric reader (a periodic exporter, a manual reader).
    pub fn with_metric_reader<R: opentelemetry_sdk::metrics::reader::MetricReader>(
        mut self,
        r: R,
    ) -> Self {
        match (&r as &dyn Any).downcast_ref::<PeriodicReader>() {
            Some(p) => self.pipelines.push(p.pipeline()),
            None => self.foreign_metric_readers = true,
        }
        self.meter_hooks.push(Box::new(move |b| b.with_reader(r)));
        self
    }

    /// Adds a resource attribute.
    pub fn resource_attribute(mut self, kv: KeyValue) -> Self {
        self.resource_attributes.push(kv);
        self
    }

    /// Switches the OpenTelemetry SDK off (spans, metrics, records); JSON logs
    /// are still written. Else `OTEL_SDK_DISABLED`.
    pub fn disabled(mut self, yes: bool) -> Self {
        self.disabled = Some(yes);
        self
    }

    /// Most distinct attribute sets per instrument (default 2000); further
    /// sets are folded into one series with `otel.metric.overflow="true"`.
    pub fn metric_cardinality_limit(mut self, limit: usize) -> Self {
        self.cardinality_limit = limit.max(1);
        self
    }

    /// Tail-samples traces before every span processor (observe's OTLP and
    /// file pipelines and those added with
    /// [`with_span_processor`](Self::with_span_processor)): every error,
    /// slow and synthetic trace is kept whole, plus `config`'s share of the
    /// rest (`observe::export::tail`, docs/sampling.md). The guard decides
    /// what is pending before it flushes or shuts the pipelines down.
    ///
    /// ```
    /// use observe_core::export::tail::TailSamplingConfig;
    /// # let export_dir = std::env::temp_dir().join("observe-doc-tail");
    /// let (_dispatch, guard) = observe_core::Telemetry::builder("payment-service")
    ///     .export_dir(&export_dir)
    ///     .tail_sampling(TailSamplingConfig::default())
    ///     .build()?
    ///     .into_parts();
    /// # drop(guard);
    /// # let _ = std::fs::remove_dir_all(&export_dir);
    /// # Ok::<(), observe_core::InitError>(())
    /// ```
    pub fn tail_sampling(mut self, config: crate::export::tail::TailSamplingConfig) -> Self {
        self.tail_sampling = Some(config);
        self
    }

    /// Adds `synthetic="true"` to the server metrics of synthetic requests
    /// (baggage `synthetic=true`), so business dashboards can exclude them.
    pub fn mark_synthetic_metrics(mut self, yes: bool) -> Self {
        self.mark_synthetic = yes;
        self
    }

    /// Timestamps from a fixed instant (golden tests).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Trace and span ids from a seed (golden tests).
    pub fn ids(mut self, ids: IdSource) -> Self {
        self.ids = ids;
        self
    }

    /// Reads configuration variables through `lookup` instead of the process
    /// environment (tests; `|_| None` ignores the environment).
    pub fn env_source(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Some(Arc::new(lookup));
        self
    }

    fn var(&self, name: &str) -> Option<String> {
        read_var(self.env.as_ref(), name)
    }

    /// Builds everything and installs it as the process-wide default
    /// (tracing subscriber, OpenTelemetry providers, W3C propagators).
    ///
    /// Unlike [`build`](Self::build), with no OTLP endpoint and no
    /// [`env_source`](Self::env_source) it exports spans and log records to
    /// `observe-data/` (see [`export`](crate::export)).
    pub fn init(mut self) -> Result<TelemetryGuard, InitError> {
        self.implicit_export = true;
        let (dispatch, mut guard, providers) = self.build_parts()?;
        tracing::dispatcher::set_global_default(dispatch)
            .map_err(|_| InitError::AlreadyInitialized)?;
        if let Some(tp) = providers.tracer {
            opentelemetry::global::set_tracer_provider(tp);
        }
        if let Some(mp) = &guard.meter_provider {
            opentelemetry::global::set_meter_provider(mp.clone());
        }
        opentelemetry::global::set_text_map_propagator(
            opentelemetry::propagation::TextMapCompositePropagator::new(vec![
                Box::new(opentelemetry_sdk::propagation::TraceContextPropagator::new()),
                Box::new(opentelemetry_sdk::propagation::BaggagePropagator::new()),
            ]),
        );
        guard.global = true;
        for w in providers.warnings {
            tracing::warn!(event = "observe_config_warning", "{w}");
        }
        Ok(guard)
    }

    /// Builds everything without installing anything globally.
    pub fn build(self) -> Result<Telemetry, InitError> {
        let (dispatch, guard, _) = self.build_parts()?;
        Ok(Telemetry { dispatch, guard })
    }

    fn build_parts(mut self) -> Result<(Dispatch, TelemetryGuard, Providers), InitError> {
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
        // Resource attributes: OTEL_RESOURCE_ATTRIBUTES, then builder values.
        let mut resource_kvs: Vec<KeyValue> = Vec::new();
        if let Some(raw) = self.var("OTEL_RESOURCE_ATTRIBUTES") {
            for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| InitError::InvalidResourceAttributes { value: raw.clone() })?;
                resource_kvs.push(KeyValue::new(k.trim().to_owned(), percent_decode(v.trim())));
            }
        }
        let env_attr = |key: &str, kvs: &[KeyValue]| {
            kvs.iter()
                .find(|kv| kv.key.as_str() == key)
                .map(|kv| kv.value.to_string())
        };
        let environment = self
            .environment
            .clone()
            .or_else(|| env_attr("deployment.environment.name", &resource_kvs))
            .or_else(|| env_attr("deployment.environment", &resource_kvs));
        let version = self
            .service_version
            .clone()
            .or_else(|| env_attr("service.version", &resource_kvs));
        resource_kvs.retain(|kv| kv.key.as_str() != "service.name");
        // Detected host and process attributes first: the environment and
        // the builder override them.
        let env = self.env.clone();
        let lookup = move |k: &str| read_var(env.as_ref(), k);
        let mut builder = Resource::builder_empty()
            .with_attributes(crate::export::resource::detect(&lookup))
            .with_attributes(resource_kvs)
            .with_attribute(KeyValue::new("service.name", name.clone()))
            .with_attribute(KeyValue::new(
                "service.instance.id",
                format!(
                    "{:016x}{:016x}",
                    crate::ids::random_u64(),
                    crate::ids::random_u64()
                ),
            ))
            .with_attribute(KeyValue::new("telemetry.sdk.name", "observe"))
            .with_attribute(KeyValue::new("telemetry.sdk.language", "rust"))
            .with_attribute(KeyValue::new(
                "telemetry.sdk.version",
                env!("CARGO_PKG_VERSION"),
            ));
        if let Some(v) = &version {
            builder = builder.with_attribute(KeyValue::new("service.version", v.clone()));
        }
        if let Some(e) = &environment {
            builder =
                builder.with_attribute(KeyValue::new("deployment.environment.name", e.clone()));
        }
        for kv in std::mem::take(&mut self.resource_attributes) {
            builder = builder.with_attribute(kv);
        }
        let resource = builder.build();

        // Pseudonym key.
        let key = match self.pseudonym_key.take() {
            Some(k) => Some(k),
            None => self.var("OBSERVE_PSEUDONYM_KEY").map(PseudonymKey::new),
        };
        let key = match key {
            Some(k) if k.len() < 16 => return Err(InitError::WeakPseudonymKey { len: k.len() }),
            Some(k) => k,
            None if environment
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case("production")) =>
            {
                return Err(InitError::MissingPseudonymKey)
            }
            None => {
                warnings.push(
                    "no pseudonym key (OBSERVE_PSEUDONYM_KEY): pseudonyms use a random per-process key and will differ across restarts".to_owned(),
                );
                PseudonymKey::random()
            }
        };
        crate::pseudonym::install(key);

        // Sampler.
        let sampler = match self.sampler.take() {
            Some(s) => s,
            None => match self.var("OTEL_TRACES_SAMPLER") {
                Some(n) => HeadSampler::from_env_values(
                    &n,
                    self.var("OTEL_TRACES_SAMPLER_ARG").as_deref(),
                )?,
                None => HeadSampler::default(),
            },
        };

        // Export destinations (validated even when the SDK is disabled).
        let mut dest = Vec::with_capacity(3);
        for signal in [Signal::Traces, Signal::Logs, Signal::Metrics] {
            dest.push(otlp::resolve(signal, &self.otlp, &lookup, &mut warnings)?);
        }
        let export_dir = match self.export_dir.take() {
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
        // Relative to the working directory at init, not at each write.
        let export_dir = export_dir.map(|d| std::path::absolute(&d).unwrap_or(d));

        // Level filter.
        let filter_src = self
            .log_filter
            .clone()
            .or_else(|| self.var("RUST_LOG"))
            .unwrap_or_else(|| "info".to_owned());
        // A bare level is a static filter (one comparison per call site);
        // anything with targets or spans needs an EnvFilter.
        let log_filter = match filter_src.trim().parse::<LevelFilter>() {
            Ok(l) => LogFilter::Level(l),
            Err(_) => LogFilter::Env(Box::new(EnvFilter::builder().parse(&filter_src).map_err(
                |e| InitError::InvalidLogFilter {
                    value: filter_src.clone(),
                    reason: e.to_string(),
                },
            )?)),
        };

        // Log sampling.
        let log_sampling = match self.log_sampling.take() {
            Some(s) => Some(s),
            None => match self.var("OBSERVE_LOG_SAMPLING") {
                Some(s) => Some(s.parse::<LogSampling>()?),
                None => None,
            },
        };

        // Output.
        let mut closer: Option<Arc<NonBlocking>> = None;
        let sink: Arc<dyn LineSink> = match std::mem::take(&mut self.output) {
            LogOutput::Sink(s) => s,
            LogOutput::Stdout => {
                let nb = Arc::new(
                    NonBlocking::new(std::io::stdout(), self.log_buffer, self.full_policy)
                        .map_err(|source| InitError::Thread {
                            what: "log writer",
                            source,
                        })?,
                );
                closer = Some(Arc::clone(&nb));
                nb
            }
            LogOutput::Stderr => {
                let nb = Arc::new(
                    NonBlocking::new(std::io::stderr(), self.log_buffer, self.full_policy)
                        .map_err(|source| InitError::Thread {
                            what: "log writer",
                            source,
                        })?,
                );
                closer = Some(Arc::clone(&nb));
                nb
            }
            LogOutput::File(path) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|source| InitError::LogFile {
                        path: path.clone(),
                        source,
                    })?;
                let nb = Arc::new(
                    NonBlocking::new(f, self.log_buffer, self.full_policy).map_err(|source| {
                        InitError::Thread {
                            what: "log writer",
                            source,
                        }
                    })?,
                );
                closer = Some(Arc::clone(&nb));
                nb
            }
        };

        // observe's own pipelines for the destinations.
        if !disabled {
            self.start_pipelines(&dest, export_dir, &lookup)?;
        }

        // Traces.
        let scope = instrumentation_scope();
        let mut processors: Vec<Arc<dyn SpanProcessor>> = Vec::new();
        let mut foreign_span_processors: Vec<Arc<dyn SpanProcessor>> = Vec::new();
        let mut tracer_provider = None;
        let mut tail_processor: Option<Arc<dyn SpanProcessor>> = None;
        let mut tail_counters = None;
        let mut pipelines: Vec<Arc<dyn Pipeline>> = Vec::new();
        if !disabled {
            for (mut p, ours) in std::mem::take(&mut self.span_processors) {
                p.set_resource(&resource);
                let p: Arc<dyn SpanProcessor> = Arc::from(p);
                match ours {
                    Some(pipeline) => pipelines.push(pipeline),
                    None => foreign_span_processors.push(Arc::clone(&p)),
                }
                processors.push(p);
            }
            // Tail sampling in front of every processor: they become its
            // downstream, flushed and shut down through it.
            if let Some(config) = self.tail_sampling.take() {
                if !processors.is_empty() {
                    let downstream = Fanout(std::mem::take(&mut processors));
                    let mut tail = crate::export::tail::TailSampling::builder(downstream)
                        .config(config)
                        .build()
                        .map_err(|e| InitError::TailSampling {
                            reason: e.to_string(),
                        })?;
                    tail.set_resource(&resource);
                    tail_counters = Some(tail.counters());
                    let tail: Arc<dyn SpanProcessor> = Arc::new(tail);
                    processors.push(Arc::clone(&tail));
                    tail_processor = Some(tail);
                    foreign_span_processors.clear();
                }
            }
            // Logs, then metrics, after the traces: the shutdown order.
            let (logs, metrics): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pipelines)
                .into_iter()
                .partition(|p| p.stats().signal == Signal::Logs);
            pipelines.extend(logs);
            pipelines.extend(metrics);
            let mut tpb = SdkTracerProvider::builder().with_resource(resource.clone());
            for p in &processors {
                tpb = tpb.with_span_processor(Forward(Arc::clone(p)));
            }
            tracer_provider = Some(tpb.build());
        }
        let traces = (!disabled).then(|| TracePipeline {
            processors: processors.clone(),
            sampler,
        });

        // Metrics: a standalone /metrics listener when asked.
        let metrics_listen = match self.metrics_addr.clone() {
            Some(a) => Some(a),
            None => self.var("OBSERVE_METRICS_ADDR"),
        };
        let prometheus = match (&metrics_listen, disabled) {
            (Some(a), false) => {
                let addr = crate::export::prometheus::parse_listen_addr(a).map_err(|e| {
                    InitError::Exporter {
                        signal: "metrics",
                        reason: e.to_string(),
                    }
                })?;
                let exporter = match &self.exemplars {
                    Some(ex) => {
                        crate::export::prometheus::PrometheusExporter::with_exemplars(ex.clone())
                    }
                    None => crate::export::prometheus::PrometheusExporter::new(),
                };
                self.exemplars = Some(exporter.exemplars().clone());
                let reader = exporter.reader();
                self.meter_hooks
                    .push(Box::new(move |b| b.with_reader(reader)));
                Some((exporter, addr))
            }
            _ => None,
        };
        let exemplars = self.exemplars.clone();
        let meter_provider = (!disabled).then(|| {
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
            b.build()
        });
        let metrics_server = match prometheus {
            Some((exporter, addr)) => {
                Some(exporter.serve(addr).map_err(|e| InitError::Exporter {
                    signal: "metrics",
                    reason: e.to_string(),
                })?)
            }
            None => None,
        };
        let mut dropped_counter = None;
        let mut tail_instruments = None;
        let (instruments, signals) = match meter_provider.as_ref() {
            Some(mp) => {
                use opentelemetry::metrics::MeterProvider as _;
                let meter = mp.meter_with_scope(scope.clone());
                tail_instruments = tail_counters.as_ref().map(|c| c.register(&meter));
                if !pipelines.is_empty() {
                    dropped_counter = Some(crate::export::dropped_counter(
                        &meter,
                        pipelines.iter().map(|p| p.stats()).collect(),
                    ));
                }
                (
                    Some(Instruments::new(&meter, Arc::clone(&sink))),
                    Some(Arc::new(Signals::new(
                        &meter,
                        self.mark_synthetic,
                        exemplars.clone(),
                    ))),
                )
            }
            None => (None, None),
        };

        // Log records.
        let logger_provider = if disabled || self.log_processors.is_empty() {
            None
        } else {
            let mut b = SdkLoggerProvider::builder().with_resource(resource.clone());
            for p in std::mem::take(&mut self.log_processors) {
                b = p.add_to(b);
            }
            Some(b.build())
        };
        let otel_logs = logger_provider.as_ref().map(|lp| {
            use opentelemetry::logs::LoggerProvider as _;
            lp.logger_with_scope(scope.clone())
        });

        let shared = Arc::new(Shared::new(SharedParts {
            service: name,
            sink: Arc::clone(&sink),
            clock: self.clock,
            value_cap: self.value_cap,
            redactor: Redactor::new(&self.deny_list),
            traces,
            otel_logs,
            log_sampling,
            metrics: instruments,
            signals,
            ids: self.ids,
        }));
        let layer = ObserveLayer::new(Arc::clone(&shared));
        let subscriber = Registry::default().with(log_filter).with(layer);
        let dispatch = Dispatch::new(subscriber);
        for p in &pipelines {
            p.stats().report_to(dispatch.downgrade());
        }
        let guard = TelemetryGuard {
            shared,
            tail: tail_processor,
            foreign_span_processors,
            pipelines,
            foreign_log_processors: self.foreign_log_processors,
            foreign_metric_readers: self.foreign_metric_readers,
            _dropped_counter: dropped_counter,
            _tail_instruments: tail_instruments,
            meter_provider,
            logger_provider,
            closer,
            metrics_server,
            global: false,
            done: false,
            tracer_provider: tracer_provider.clone(),
        };
        Ok((
            dispatch,
            guard,
            Providers {
                tracer: tracer_provider,
                warnings,
            },
        ))
    }
}

impl TelemetryBuilder {
    /// Starts observe's pipelines for the resolved destinations: OTLP where
    /// an endpoint is configured, files in `export_dir` for spans and log
    /// records otherwise.
    fn start_pipelines(
        &mut self,
        dest: &[Destination],
        export_dir: Option<PathBuf>,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), InitError> {
        let ms = |name: &str| {
            lookup(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|n| *n > 0)
                .map(Duration::from_millis)
        };
        let trace_cfg = self
            .trace_batch
            .clone()
            .unwrap_or_else(|| BatchConfig::default().with_env("OTEL_BSP", lookup));
        let log_cfg = self
            .log_batch
            .clone()
            .unwrap_or_else(|| BatchConfig::logs().with_env("OTEL_BLRP", lookup));
        match dest.first() {
            Some(Destination::Otlp(t)) => {
                let t = t.clone();
                let p = BatchSpanProcessor::with_exporter_factory(
                    move || otlp::span_exporter(&t),
                    trace_cfg,
                )?;
                self.add_span_pipeline(p);
            }
            Some(Destination::Default) => {
                if let Some(dir) = &export_dir {
                    let p = BatchSpanProcessor::new(FileSpanExporter::new(dir.clone()), trace_cfg)?;
                    self.add_span_pipeline(p);
                }
            }
            _ => {}
        }
        match dest.get(1) {
            Some(Destination::Otlp(t)) => {
                let t = t.clone();
                let p = BatchLogProcessor::with_exporter_factory(
                    move || otlp::log_exporter(&t),
                    log_cfg,
                )?;
                self.add_log_pipeline(p);
            }
            Some(Destination::Default) => {
                if let Some(dir) = &export_dir {
                    let p = BatchLogProcessor::new(FileLogExporter::new(dir.clone()), log_cfg)?;
                    self.add_log_pipeline(p);
                }
            }
            _ => {}
        }
        if let Some(Destination::Otlp(t)) = dest.get(2) {
            let t = t.clone();
            let temporality = otlp::temporality(lookup);
            let interval = self
                .metric_interval
                .or_else(|| ms("OTEL_METRIC_EXPORT_INTERVAL"))
                .unwrap_or(DEFAULT_METRIC_INTERVAL);
            let timeout = ms("OTEL_METRIC_EXPORT_TIMEOUT").unwrap_or(DEFAULT_METRIC_TIMEOUT);
            let r = PeriodicReader::with_exporter_factory(
                move || otlp::metric_exporter(&t, temporality),
                temporality,
                interval,
                timeout,
            )?;
            self.pipelines.push(r.pipeline());
            self.meter_hooks.push(Box::new(move |b| b.with_reader(r)));
        }
        Ok(())
    }

    fn add_span_pipeline(&mut self, p: BatchSpanProcessor) {
        let pipeline = p.pipeline();
        self.span_processors.push((Box::new(p), Some(pipeline)));
    }

    fn add_log_pipeline(&mut self, p: BatchLogProcessor) {
        self.pipelines.push(p.pipeline());
        self.log_processors.push(Box::new(LogProcessorHolder(p)));
    }
}

/// Reads a configuration variable from `env` (or the process environment);
/// blank values count as unset.
fn read_var(env: Option<&EnvLookup>, name: &str) -> Option<String> {
    let v = match env {
        Some(f) => f(name),
        None => std::env::var(name).ok(),
    };
    v.filter(|s| !s.trim().is_empty())
}

struct Providers {
    tracer: Option<SdkTracerProvider>,
    warnings: Vec<String>,
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

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `OTEL_EXPORTER_OTLP_HEADERS` (`k=v,k2=v2`, values percent-encoded).
pub(crate) fn parse_headers(raw: &str) -> Result<Vec<(String, String)>, InitError> {
    let mut out = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| InitError::InvalidHeaders {
                value: raw.to_owned(),
            })?;
        let k = k.trim();
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            return Err(InitError::InvalidHeaders {
                value: raw.to_owned(),
            });
        }
        out.push((k.to_owned(), percent_decode(v.trim())));
    }
    Ok(out)
}

/// Checks that an OTLP endpoint is an http(s) URL with a host and a valid port.
pub(crate) fn validate_endpoint(variable: &'static str, url: &str) -> Result<(), InitError> {
    let bad = || InitError::InvalidEndpoint {
        variable,
        value: url.to_owned(),
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(bad)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || authority.chars().any(char::is_whitespace)
    {
        return Err(bad());
    }
    let (host, port) = if let Some(stripped) = authority.strip_prefix('[') {
        let (h, after) = stripped.split_once(']').ok_or_else(bad)?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |n| n == 0) {
            return Err(bad());
        }
    }
    Ok(())
}

/// Flushes and shuts down every signal when dropped (or on [`shutdown`](Self::shutdown)).
pub struct TelemetryGuard {
    pub(crate) shared: Arc<Shared>,
    /// The tail sampler in front of every span processor (decides what is
    /// pending before they flush or shut down).
    tail: Option<Arc<dyn SpanProcessor>>,
    /// Span processors that are not observe pipelines (flushed through the trait).
    foreign_span_processors: Vec<Arc<dyn SpanProcessor>>,
    /// observe's pipelines: traces, then logs, then metrics.
    pipelines: Vec<Arc<dyn Pipeline>>,
    foreign_log_processors: bool,
    foreign_metric_readers: bool,
    _dropped_counter: Option<ObservableCounter<u64>>,
    _tail_instruments: Option<crate::export::tail::TailInstruments>,
    pub(crate) meter_provider: Option<SdkMeterProvider>,
    logger_provider: Option<SdkLoggerProvider>,
    tracer_provider: Option<SdkTracerProvider>,
    closer: Option<Arc<NonBlocking>>,
    /// The standalone `/metrics` listener (`OBSERVE_METRICS_ADDR`).
    metrics_server: Option<crate::export::prometheus::ServerHandle>,
    global: bool,
    done: bool,
}

impl fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("service", &self.shared.service)
            .field("global", &self.global)
            .finish_non_exhaustive()
    }
}

impl TelemetryGuard {
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

    /// A tracer of that provider, for code that uses the OpenTelemetry API directly.
    pub fn tracer(&self, name: &'static str) -> Option<opentelemetry_sdk::trace::SdkTracer> {
        self.tracer_provider.as_ref().map(|tp| tp.tracer(name))
    }

    /// Writes everything recorded so far (spans, records, metrics, lines)
    /// without shutting down, within `deadline` for observe's own pipelines.
    pub fn flush(&self, deadline: Duration) -> Result<(), ShutdownError> {
        let start = Instant::now();
        let left = || deadline.saturating_sub(start.elapsed());
        let mut first_err = None;
        let mut note = |signal: &'static str, r: OTelSdkResult| {
            if let Err(e) = r {
                first_err.get_or_insert(ShutdownError::Flush {
                    signal,
                    reason: e.to_string(),
                });
            }
        };
        if let Some(t) = &self.tail {
            note("traces", t.force_flush());
        }
        for signal in [Signal::Traces, Signal::Logs, Signal::Metrics] {
            for p in self.pipelines_of(signal) {
                note(signal.as_str(), p.flush(left()));
            }
            match signal {
                Signal::Traces => {
                    for p in &self.foreign_span_processors {
                        note("traces", p.force_flush());
                    }
                }
                Signal::Logs if self.foreign_log_processors => {
                    if let Some(lp) = &self.logger_provider {
                        note("logs", lp.force_flush());
                    }
                }
                Signal::Metrics if self.foreign_metric_readers => {
                    if let Some(mp) = &self.meter_provider {
                        note("metrics", mp.force_flush());
                    }
                }
                _ => {}
            }
        }
        if !self.shared.sink.flush(left()) {
            first_err.get_or_insert(ShutdownError::Timeout {
                deadline,
                pending: "log lines".to_owned(),
            });
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Flushes and shuts down every signal, within `deadline`: spans, then
    /// log records, then metrics (whose last export carries
    /// `observe.telemetry.dropped`), then log lines.
    pub fn shutdown(mut self, deadline: Duration) -> Result<(), ShutdownError> {
        self.shutdown_inner(deadline)
    }

    fn pipelines_of(&self, signal: Signal) -> impl Iterator<Item = &Arc<dyn Pipeline>> {
        self.pipelines
            .iter()
            .filter(move |p| p.stats().signal == signal)
    }

    fn shutdown_inner(&mut self, deadline: Duration) -> Result<(), ShutdownError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let start = Instant::now();
        let left = || deadline.saturating_sub(start.elapsed());
        let mut first_err = None;
        let mut note = |signal: &'static str, r: OTelSdkResult| {
            if let Err(e) = r {
                first_err.get_or_insert(ShutdownError::Flush {
                    signal,
                    reason: e.to_string(),
                });
            }
        };
        // The tail sampler decides what is pending and shuts its downstream
        // (the span pipelines and processors) down.
        if let Some(t) = &self.tail {
            note("traces", t.shutdown_with_timeout(left()));
        }
        for p in self.pipelines_of(Signal::Traces) {
            note("traces", p.shutdown(left()));
        }
        for p in &self.foreign_span_processors {
            note(
                "traces",
                p.force_flush()
                    .and_then(|()| p.shutdown_with_timeout(left())),
            );
        }
        for p in self.pipelines_of(Signal::Logs) {
            note("logs", p.shutdown(left()));
        }
        if let Some(lp) = &self.logger_provider {
            note("logs", lp.shutdown_with_timeout(left()));
        }
        for p in self.pipelines_of(Signal::Metrics) {
            note("metrics", p.shutdown(left()));
        }
        if let Some(mp) = &self.meter_provider {
            note("metrics", mp.shutdown_with_timeout(left()));
        }
        let ok = match &self.closer {
            Some(c) => c.close(left()),
            None => self.shared.sink.flush(left()),
        };
        if !ok {
            first_err.get_or_insert(ShutdownError::Timeout {
                deadline,
                pending: "log lines".to_owned(),
            });
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown_inner(DEFAULT_SHUTDOWN_DEADLINE) {
            // The subscriber may already be gone: say it on stderr, once.
            eprintln!("observe: shutdown: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        for ok in [
            "http://127.0.0.1:4317",
            "https://collector.example.com",
            "http://[::1]:4318/v1/traces",
            "http://localhost:4318/",
        ] {
            assert!(validate_endpoint("x", ok).is_ok(), "{ok}");
        }
        for bad in [
            "127.0.0.1:4317",
            "grpc://host:4317",
            "http://",
            "http://host:notaport",
            "http://host:0",
            "http://:4317",
            "http://ho st:1",
        ] {
            assert!(
                matches!(
                    validate_endpoint("x", bad),
                    Err(InitError::InvalidEndpoint { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn headers_and_percent_decoding() {
        assert_eq!(
            parse_headers("api-key=a%20b, x=1").expect("valid"),
            vec![("api-key".into(), "a b".into()), ("x".into(), "1".into())]
        );
        assert!(parse_headers("novalue").is_err());
        assert_eq!(percent_decode("100%"), "100%");
    }
}
