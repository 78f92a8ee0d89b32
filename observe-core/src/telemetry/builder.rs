//! [`TelemetryBuilder`]: every setting of observe, each overriding the
//! environment. [`init`](TelemetryBuilder::init) installs the result
//! globally, [`build`](TelemetryBuilder::build) returns it.

use super::env::{read_var, EnvLookup};
use super::otlp::OtlpOverrides;
use super::{
    Telemetry, TelemetryGuard, DEFAULT_CARDINALITY_LIMIT, DEFAULT_LOG_BUFFER, DEFAULT_VALUE_CAP,
};
use crate::error::InitError;
use crate::export::batch::PipelineControl;
use crate::export::{BatchConfig, LogPipeline, MetricPipeline, Protocol, SpanPipeline};
use crate::ids::IdSource;
use crate::layer::Clock;
use crate::layer::TelemetryLayer;
use crate::log::redact::DEFAULT_DENY_LIST;
use crate::log::sampling::LogSampling;
use crate::log::writer::{FullPolicy, LineSink};
use crate::pseudonym::PseudonymKey;
use crate::sampler::HeadSampler;
use opentelemetry::KeyValue;
use opentelemetry_sdk::logs::LogProcessor;
use opentelemetry_sdk::metrics::MeterProviderBuilder;
use opentelemetry_sdk::trace::SpanProcessor;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::Registry;

/// Which tokio runtime's metrics are recorded.
#[derive(Clone, Debug)]
pub(super) enum RuntimeChoice {
    /// The runtime `build`/`init` runs in, if any.
    Current,
    Given(tokio::runtime::Handle),
    Off,
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

pub(super) type MeterHook = Box<dyn FnOnce(MeterProviderBuilder) -> MeterProviderBuilder + Send>;
/// A span processor, with observe's pipeline behind it if it is one of observe's.
/// A span processor, and the pipeline itself when it is one of observe's.
pub(super) type SpanProcessorEntry = (Box<dyn SpanProcessor>, Option<SpanPipeline>);

/// Configures and starts observe. Values set here override the environment.
///
/// Setters follow one convention (here and in every builder of observe):
/// a setting's name sets it, the last call winning (`log_output`,
/// `sampler`); an item's singular name adds one more of it
/// (`span_processor`, `otlp_header`, `resource_attribute`, `redact_field`);
/// the plural replaces the whole list (`redact_fields`). Configuration
/// types are called `*Config`.
///
/// ```no_run
/// # fn main() -> Result<(), observe_core::InitError> {
/// let _telemetry = observe_core::Telemetry::builder("payment-service")
///     .service_version("1.4.2")
///     .environment("staging")
///     .log_filter("info,hyper=warn")
///     .init()?;
/// observe_core::info!("service_started", "payment service started");
/// # Ok(()) }
/// ```
pub struct TelemetryBuilder {
    pub(super) service_name: String,
    pub(super) service_version: Option<String>,
    pub(super) environment: Option<String>,
    pub(super) log_filter: Option<String>,
    pub(super) output: LogOutput,
    pub(super) log_buffer: usize,
    pub(super) full_policy: FullPolicy,
    pub(super) value_cap: usize,
    pub(super) deny_list: Vec<String>,
    pub(super) pseudonym_key: Option<PseudonymKey>,
    pub(super) log_sampling: Option<LogSampling>,
    pub(super) sampler: Option<HeadSampler>,
    pub(super) otlp: OtlpOverrides,
    /// `Some(None)`: file export switched off by the builder.
    pub(super) export_dir: Option<Option<PathBuf>>,
    pub(super) trace_batch: Option<BatchConfig>,
    pub(super) log_batch: Option<BatchConfig>,
    pub(super) metric_interval: Option<Duration>,
    /// Set by `init()`: the `observe-data/` default may apply.
    pub(super) implicit_export: bool,
    /// Each with observe's pipeline behind it, if it is one of observe's.
    pub(super) span_processors: Vec<SpanProcessorEntry>,
    pub(super) log_processors: Vec<Box<dyn LogProcessorBox>>,
    pub(super) meter_hooks: Vec<MeterHook>,
    pub(super) metrics_addr: Option<String>,
    pub(super) exemplars: Option<crate::exemplars::Exemplars>,
    /// observe's own pipelines among the processors and readers, in
    /// shutdown order (traces, logs, metrics).
    pub(super) pipelines: Vec<Arc<dyn PipelineControl>>,
    pub(super) foreign_log_processors: bool,
    pub(super) foreign_metric_readers: bool,
    pub(super) resource_attributes: Vec<KeyValue>,
    pub(super) disabled: Option<bool>,
    pub(super) cardinality_limit: usize,
    pub(super) tail_sampling: Option<crate::export::tail::TailSamplingConfig>,
    pub(super) mark_synthetic: bool,
    pub(super) log_bridge: bool,
    pub(super) tokio_runtime: RuntimeChoice,
    pub(crate) clock: Clock,
    pub(crate) ids: IdSource,
    pub(crate) env: Option<EnvLookup>,
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
pub(super) trait LogProcessorBox: Send + Sync {
    fn add_to(
        self: Box<Self>,
        b: opentelemetry_sdk::logs::LoggerProviderBuilder,
    ) -> opentelemetry_sdk::logs::LoggerProviderBuilder;
}

pub(super) struct LogProcessorHolder<P>(pub(super) P);

impl<P: LogProcessor + 'static> LogProcessorBox for LogProcessorHolder<P> {
    fn add_to(
        self: Box<Self>,
        b: opentelemetry_sdk::logs::LoggerProviderBuilder,
    ) -> opentelemetry_sdk::logs::LoggerProviderBuilder {
        b.with_log_processor(self.0)
    }
}

impl TelemetryBuilder {
    pub(super) fn new(service_name: String) -> Self {
        TelemetryBuilder {
            service_name,
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
            log_bridge: true,
            tokio_runtime: RuntimeChoice::Current,
            clock: Clock::System,
            ids: IdSource::Random,
            env: None,
        }
    }
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

    /// Adds a name to the deny-list.
    pub fn redact_field(mut self, name: impl Into<String>) -> Self {
        self.deny_list.push(name.into());
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

    /// Compression of OTLP request bodies (else
    /// `OTEL_EXPORTER_OTLP_<SIGNAL>_COMPRESSION`, `OTEL_EXPORTER_OTLP_COMPRESSION`;
    /// default none). gzip cuts the bytes on the wire several times over
    /// (docs/performance.md) for some CPU on the export thread, never on a
    /// request's.
    ///
    /// ```
    /// # use observe_core::testing::TelemetryBuilderExt as _;
    /// let telemetry = observe_core::Telemetry::builder("payment-service")
    /// #   .env_source(|_| None)
    /// #   .log_output(observe_core::LogOutput::Sink(std::sync::Arc::new(observe_core::MemorySink::new())))
    ///     .otlp_endpoint("http://127.0.0.1:4318")
    ///     .otlp_compression(observe_core::export::Compression::Gzip)
    ///     .build()?;
    /// # drop(telemetry);
    /// # Ok::<(), observe_core::InitError>(())
    /// ```
    pub fn otlp_compression(mut self, compression: crate::export::Compression) -> Self {
        self.otlp.compression = Some(compression);
        self
    }

    /// Timeout of one OTLP request (else `OTEL_EXPORTER_OTLP_TIMEOUT`; default 10 s).
    pub fn otlp_timeout(mut self, timeout: Duration) -> Self {
        self.otlp.timeout = Some(timeout);
        self
    }

    /// The PEM file of the CA that verifies an `https://` endpoint's
    /// certificate (else `OTEL_EXPORTER_OTLP_<SIGNAL>_CERTIFICATE`,
    /// `OTEL_EXPORTER_OTLP_CERTIFICATE`). When set it is the only CA
    /// trusted; unset, the system's roots are. Read at init: a missing or
    /// malformed file is an [`InitError::TlsFile`].
    ///
    /// ```no_run
    /// let _guard = observe_core::Telemetry::builder("payment-service")
    ///     .otlp_endpoint("https://collector.internal:4318")
    ///     .otlp_certificate("/etc/observe/ca.pem")
    ///     .otlp_client_certificate("/etc/observe/client.pem", "/etc/observe/client.key")
    ///     .init()?;
    /// # Ok::<(), observe_core::InitError>(())
    /// ```
    pub fn otlp_certificate(mut self, ca_pem: impl Into<PathBuf>) -> Self {
        self.otlp.certificate = Some(ca_pem.into());
        self
    }

    /// The client's certificate chain and private key (PEM files) for
    /// mutual TLS to an `https://` endpoint (else
    /// `OTEL_EXPORTER_OTLP_<SIGNAL>_CLIENT_CERTIFICATE` and `_CLIENT_KEY`,
    /// `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` and `_CLIENT_KEY`).
    pub fn otlp_client_certificate(
        mut self,
        cert_pem: impl Into<PathBuf>,
        key_pem: impl Into<PathBuf>,
    ) -> Self {
        self.otlp.client_identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// For a gRPC endpoint written without a scheme (`collector:4317`):
    /// `true` sends in clear text (`http://`), `false` (the default) over
    /// TLS (else `OTEL_EXPORTER_OTLP_<SIGNAL>_INSECURE`,
    /// `OTEL_EXPORTER_OTLP_INSECURE`). An endpoint's own scheme always wins:
    /// `https://` is always TLS.
    pub fn otlp_insecure(mut self, insecure: bool) -> Self {
        self.otlp.insecure = Some(insecure);
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

    /// Adds one of observe's span pipelines (an exporter behind a bounded
    /// queue): flushed within the guard's deadline, and what it drops is
    /// counted in `observe.telemetry.dropped`.
    pub fn span_pipeline(mut self, p: SpanPipeline) -> Self {
        self.add_span_pipeline(p);
        self
    }

    /// Adds any other span processor (the SDK's, your own) receiving every
    /// recorded span; the guard flushes and shuts it down through the
    /// `SpanProcessor` trait.
    pub fn span_processor<P: SpanProcessor + 'static>(mut self, p: P) -> Self {
        self.span_processors.push((Box::new(p), None));
        self
    }

    /// Adds one of observe's log-record pipelines: events also go out as
    /// OpenTelemetry log records, flushed within the guard's deadline and
    /// counted in `observe.telemetry.dropped`.
    pub fn log_pipeline(mut self, p: LogPipeline) -> Self {
        self.add_log_pipeline(p);
        self
    }

    /// Adds any other log-record processor: events also go out as
    /// OpenTelemetry log records.
    pub fn log_processor<P: LogProcessor + 'static>(mut self, p: P) -> Self {
        self.foreign_log_processors = true;
        self.log_processors.push(Box::new(LogProcessorHolder(p)));
        self
    }

    /// Exposes the metrics through `exporter` (mount `exporter.service()` at
    /// `/metrics`), with `trace_id` exemplars on the duration histograms.
    pub fn prometheus(mut self, exporter: &crate::export::prometheus::PrometheusExporter) -> Self {
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

    /// Adds one of observe's metric pipelines (a periodic exporter on its
    /// own thread): flushed within the guard's deadline, failed exports
    /// counted in `observe.telemetry.dropped`.
    pub fn metric_pipeline(mut self, p: MetricPipeline) -> Self {
        self.pipelines.push(p.pipeline());
        self.meter_hooks.push(Box::new(move |b| b.with_reader(p)));
        self
    }

    /// Adds any other metric reader (the SDK's periodic reader, a manual reader).
    pub fn metric_reader<R: opentelemetry_sdk::metrics::reader::MetricReader>(
        mut self,
        r: R,
    ) -> Self {
        self.foreign_metric_readers = true;
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
    /// [`span_processor`](Self::span_processor)): every error,
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

    /// Whether [`init`](Self::init) installs the `log` crate bridge
    /// (default `true`): records of crates that log through `log` become
    /// observe lines, filtered by `RUST_LOG` by their target, with the
    /// current trace ids. A line's `target` is the record's target, its
    /// `event` that target in snake_case (`hyper_util::client::legacy::pool`
    /// → `hyper_util_client_legacy_pool`), as for any event without an
    /// `event` field. Switch it off to keep a `log` logger of your own.
    pub fn log_bridge(mut self, yes: bool) -> Self {
        self.log_bridge = yes;
        self
    }

    /// The tokio runtime whose stable metrics are recorded as the
    /// saturation signal (`tokio.runtime.*`, docs/reference/metrics.md):
    /// by default the runtime `build`/`init` runs in, if any; `None`
    /// records none. Read when metrics are collected: no cost per request.
    pub fn tokio_runtime(mut self, handle: Option<tokio::runtime::Handle>) -> Self {
        self.tokio_runtime = match handle {
            Some(h) => RuntimeChoice::Given(h),
            None => RuntimeChoice::Off,
        };
        self
    }

    pub(super) fn var(&self, name: &str) -> Option<String> {
        read_var(self.env.as_ref(), name)
    }

    /// Builds everything and installs it as the process-wide default
    /// (tracing subscriber, OpenTelemetry providers, W3C propagators).
    ///
    /// Unlike [`build`](Self::build), with no OTLP endpoint (and the
    /// process environment, not a test's) it exports spans and log records
    /// to `observe-data/` (see [`export`](crate::export)).
    pub fn init(mut self) -> Result<TelemetryGuard, InitError> {
        self.implicit_export = true;
        let log_bridge = self.log_bridge;
        let built = self.build_parts()?;
        let mut guard = built.guard;
        let dispatch = Dispatch::new(Registry::default().with(built.layer));
        tracing::dispatcher::set_global_default(dispatch)
            .map_err(|_| InitError::AlreadyInitialized)?;
        if let Some(tp) = built.tracer_provider {
            opentelemetry::global::set_tracer_provider(crate::bridge::otel::BridgeProvider(tp));
        }
        if let Some(mp) = guard.meter_provider() {
            opentelemetry::global::set_meter_provider(mp.clone());
        }
        opentelemetry::global::set_text_map_propagator(crate::bridge::otel::BridgePropagator::new());
        guard.set_global();
        let mut warnings = built.warnings;
        if log_bridge && crate::bridge::log::install().is_err() {
            warnings.push(
                "another `log` logger is installed: records of crates that log through `log` \
                 go to it, not to observe (TelemetryBuilder::log_bridge(false) keeps it without this warning)"
                    .to_owned(),
            );
        }
        for w in warnings {
            tracing::warn!(event = "observe_config_warning", "{w}");
        }
        Ok(guard)
    }

    /// Builds everything without installing anything globally.
    pub fn build(self) -> Result<Telemetry, InitError> {
        let built = self.build_parts()?;
        Ok(Telemetry {
            dispatch: Dispatch::new(Registry::default().with(built.layer)),
            guard: built.guard,
        })
    }

    /// Builds everything and returns observe's tracing layer, to add to a
    /// subscriber of your own beside other layers (a development `fmt`
    /// layer, tokio-console), and the guard. Nothing is installed: install
    /// the subscriber yourself (`tracing::subscriber::set_global_default`),
    /// keep the guard until the end of `main`. The layer carries the level
    /// filter, applied to the whole subscriber as with [`init`](Self::init).
    ///
    /// ```no_run
    /// use tracing_subscriber::layer::SubscriberExt as _;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (observe, _guard) = observe_core::Telemetry::builder("payment-service").build_layer()?;
    /// let subscriber = tracing_subscriber::registry().with(observe);
    /// tracing::subscriber::set_global_default(subscriber)?;
    /// # Ok(()) }
    /// ```
    pub fn build_layer(self) -> Result<(TelemetryLayer, TelemetryGuard), InitError> {
        let built = self.build_parts()?;
        Ok((built.layer, built.guard))
    }

    pub(super) fn add_span_pipeline(&mut self, p: SpanPipeline) {
        self.span_processors.push((Box::new(p.clone()), Some(p)));
    }

    pub(super) fn add_log_pipeline(&mut self, p: LogPipeline) {
        self.pipelines.push(p.pipeline());
        self.log_processors.push(Box::new(LogProcessorHolder(p)));
    }
}
