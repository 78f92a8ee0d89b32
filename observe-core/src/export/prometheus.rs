//! `/metrics` for Prometheus: the meter's instruments in the Prometheus text
//! format, or in OpenMetrics with `trace_id` exemplars on histogram buckets,
//! named exactly as the OpenTelemetry Collector's `prometheus` exporter names
//! them, so dashboards and alert rules work the same whether Prometheus
//! scrapes the service or a Collector.
//!
//! ```
//! use observe_core::export::prometheus::PrometheusExporter;
//! use opentelemetry::metrics::MeterProvider as _;
//! use opentelemetry::{InstrumentationScope, KeyValue};
//! use opentelemetry_sdk::metrics::SdkMeterProvider;
//! use opentelemetry_sdk::Resource;
//!
//! let exporter = PrometheusExporter::new();
//! # let resource = Resource::builder_empty()
//! #     .with_attribute(KeyValue::new("service.name", "payments"))
//! #     .with_attribute(KeyValue::new("deployment.environment.name", "staging"))
//! #     .build();
//! let provider = SdkMeterProvider::builder()
//!     .with_resource(resource)
//!     .with_reader(exporter.reader())
//!     .build();
//! let meter = provider.meter_with_scope(
//!     InstrumentationScope::builder("observe").with_version("0.1.0").build(),
//! );
//! let requests = meter
//!     .u64_counter("external_gateway.requests")
//!     .with_unit("{request}")
//!     .with_description("Calls to external gateways, by outcome.")
//!     .build();
//! requests.add(3, &[KeyValue::new("gateway", "bank"), KeyValue::new("status", "success")]);
//!
//! let text = exporter.render_text();
//! # assert_eq!(text, "\
//! # # HELP external_gateway_requests_total Calls to external gateways, by outcome.
//! # # TYPE external_gateway_requests_total counter
//! # external_gateway_requests_total{gateway=\"bank\",otel_scope_name=\"observe\",otel_scope_schema_url=\"\",otel_scope_version=\"0.1.0\",status=\"success\"} 3
//! # # HELP target_info Target metadata
//! # # TYPE target_info gauge
//! # target_info{deployment_environment_name=\"staging\"} 1
//! # ");
//! ```
//!
//! renders:
//!
//! ```text
//! # HELP external_gateway_requests_total Calls to external gateways, by outcome.
//! # TYPE external_gateway_requests_total counter
//! external_gateway_requests_total{gateway="bank",otel_scope_name="observe",otel_scope_schema_url="",otel_scope_version="0.1.0",status="success"} 3
//! # HELP target_info Target metadata
//! # TYPE target_info gauge
//! target_info{deployment_environment_name="staging"} 1
//! ```
//!
//! # Serving it
//!
//! - On the application's router: `Router::new().route_service("/metrics",
//!   exporter.service())` (a [`MetricsService`], any tower stack).
//! - On a port of its own: [`PrometheusExporter::serve`] starts a small
//!   server on its own thread (what `OBSERVE_METRICS_ADDR` turns on).
//!
//! Either answers in OpenMetrics when the scraper's `Accept` header prefers
//! `application/openmetrics-text` (Prometheus does by default), with
//! exemplars, and in the text format 0.0.4 otherwise.
//!
//! # Names
//!
//! The Collector's translation (`otlptranslator`, strategy
//! `UnderscoreEscapingWithSuffixes`):
//!
//! | OpenTelemetry | Prometheus |
//! |---|---|
//! | `http.server.request.duration`, unit `s`, histogram | `http_server_request_duration_seconds_bucket{le=...}`, `_sum`, `_count` |
//! | unit `By`, `ms`, `By/s` | `_bytes`, `_milliseconds`, `_bytes_per_second` |
//! | unit `{request}` (annotation) | no suffix |
//! | monotonic counter | `_total`; TYPE `counter` |
//! | up-down counter | no suffix; TYPE `gauge` |
//! | gauge with unit `1` | `_ratio` |
//! | attribute `http.route` | label `http_route` |
//! | instrumentation scope | labels `otel_scope_name`, `otel_scope_version`, `otel_scope_schema_url` |
//! | resource | one `target_info` series, without `service.name`, `service.namespace`, `service.instance.id` |
//!
//! The Collector turns `service.name` and `service.instance.id` into `job`
//! and `instance` labels; a direct scrape gets those from the scrape
//! configuration, so they are not emitted: name the scrape job after the
//! service. See `docs/metrics-exposition.md` for the full rules and why
//! observe renders the exposition itself rather than using
//! `opentelemetry-prometheus`.
//!
//! # When exemplars are recorded
//!
//! An exemplar is kept by [`Exemplars::record`], which the instrumentation
//! calls next to each histogram measurement made inside a sampled span; the
//! renderer attaches to each bucket the latest one whose attribute set
//! matches the data point. See [`crate::exemplars`].

mod encode;
mod server;
mod service;

pub use encode::ExpositionFormat;
pub use server::{parse_listen_addr, ServeError, ServerHandle};
pub use service::MetricsService;

use crate::exemplars::Exemplars;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, ManualReader, Pipeline, Temporality};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Why a scrape could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// The reader is not registered with a meter provider, or it was shut down.
    #[error("metrics unavailable: {reason}")]
    Collect {
        /// The SDK's reason.
        reason: String,
    },
}

/// Renders the metrics of the meter provider its [`reader`](Self::reader) is
/// registered with. Cheap to clone; clones share the reader and the exemplars.
#[derive(Clone, Debug)]
pub struct PrometheusExporter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    reader: Arc<ManualReader>,
    exemplars: Exemplars,
}

impl Default for PrometheusExporter {
    fn default() -> Self {
        Self::new()
    }
}

impl PrometheusExporter {
    /// An exporter with cumulative temporality and a default exemplar table.
    pub fn new() -> Self {
        Self::with_exemplars(Exemplars::new())
    }

    /// An exporter rendering the exemplars of `exemplars`.
    pub fn with_exemplars(exemplars: Exemplars) -> Self {
        PrometheusExporter {
            inner: Arc::new(Inner {
                reader: Arc::new(ManualReader::builder().build()),
                exemplars,
            }),
        }
    }

    /// The reader to register with the meter provider (for observe:
    /// `TelemetryBuilder::metric_reader`). Register it with one provider
    /// only: a second registration is ignored by the SDK.
    pub fn reader(&self) -> PrometheusReader {
        PrometheusReader(Arc::clone(&self.inner.reader))
    }

    /// The exemplar table the renderer reads; record into it on the hot path.
    pub fn exemplars(&self) -> &Exemplars {
        &self.inner.exemplars
    }

    /// The current metrics in `format`. Collects from the meter provider
    /// (running observable callbacks) on the calling thread.
    pub fn render(&self, format: ExpositionFormat) -> Result<String, ScrapeError> {
        let mut rm = ResourceMetrics::default();
        self.inner
            .reader
            .collect(&mut rm)
            .map_err(|e| ScrapeError::Collect {
                reason: e.to_string(),
            })?;
        Ok(encode::encode(&rm, &self.inner.exemplars, format))
    }

    /// The current metrics in the Prometheus text format 0.0.4 (empty when
    /// they cannot be collected).
    pub fn render_text(&self) -> String {
        self.render(ExpositionFormat::Text).unwrap_or_default()
    }

    /// The current metrics in OpenMetrics 1.0.0, with exemplars (only
    /// `# EOF` when they cannot be collected).
    pub fn render_openmetrics(&self) -> String {
        self.render(ExpositionFormat::OpenMetrics)
            .unwrap_or_else(|_| "# EOF\n".to_owned())
    }

    /// `/metrics` as a tower service for any router.
    pub fn service(&self) -> MetricsService {
        MetricsService::new(self.clone())
    }

    /// Serves `/metrics` on `addr` from a thread of its own (with a
    /// one-thread tokio runtime), until the handle is dropped. Binding
    /// happens before this returns, so a taken port is an error here.
    pub fn serve(&self, addr: SocketAddr) -> Result<ServerHandle, ServeError> {
        server::serve(self.clone(), addr)
    }
}

/// The [`MetricReader`] of a [`PrometheusExporter`]: a shared manual reader
/// with cumulative temporality, collected at each scrape.
#[derive(Clone, Debug)]
pub struct PrometheusReader(Arc<ManualReader>);

impl MetricReader for PrometheusReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn handles_are_send_sync_clone() {
        assert_send_sync::<PrometheusExporter>();
        assert_send_sync::<PrometheusReader>();
        assert_send_sync::<MetricsService>();
        assert_send_sync::<Exemplars>();
    }

    #[test]
    fn unregistered_reader_is_an_error_not_a_panic() {
        let e = PrometheusExporter::new();
        assert!(matches!(
            e.render(ExpositionFormat::Text),
            Err(ScrapeError::Collect { .. })
        ));
        assert_eq!(e.render_text(), "");
        assert_eq!(e.render_openmetrics(), "# EOF\n");
    }
}
