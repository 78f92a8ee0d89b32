//! What several benches share: a counting discarding span exporter, the
//! discarding line sink, the HTTP benches' handler and router, the peer
//! stack's subscriber and layers, and observe as `init` installs it (the
//! "shipped" rows).
#![allow(dead_code, unreachable_pub)]

use axum::routing::get;
use axum::Router;
use observe::export::{BatchConfig, Signal, SpanPipeline};
use observe::opentelemetry_sdk::error::OTelSdkResult;
use observe::opentelemetry_sdk::trace::{SpanData, SpanExporter};
use observe::testing::TelemetryBuilderExt as _;
use observe::tracing;
use observe::TelemetryGuard;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::io::{self, BufWriter};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt as _;

/// Where every logger's lines go: a 64 KiB buffer over `io::sink`.
pub fn sink() -> BufWriter<io::Sink> {
    BufWriter::with_capacity(64 * 1024, io::sink())
}

/// The HTTP benches' handler: one log line per request.
pub async fn handler() -> &'static str {
    tracing::info!(
        event = "payment_accepted",
        amount_cents = 1299u64,
        "payment accepted"
    );
    "ok"
}

/// `GET /pay/{id}` to [`handler`].
pub fn router() -> Router {
    Router::new().route("/pay/{id}", get(handler))
}

/// The in-process benches' request: `GET /pay/42` with a `traceparent`.
pub fn request() -> http::Request<axum::body::Body> {
    http::Request::get("/pay/42")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(axum::body::Body::empty())
        .expect("request")
}

/// One [`request`] through `app`, body consumed.
pub async fn one(app: &mut Router) {
    use tower::{Service, ServiceExt};
    let res = <Router as ServiceExt<http::Request<axum::body::Body>>>::ready(app)
        .await
        .expect("ready")
        .call(request())
        .await
        .expect("infallible");
    let body = axum::body::to_bytes(res.into_body(), 1024)
        .await
        .expect("body");
    std::hint::black_box(body);
}

/// The peers' subscriber over `provider`: spans through
/// tracing-opentelemetry, JSON lines (tracing-subscriber) into [`sink`].
pub fn peer_dispatch(provider: &SdkTracerProvider) -> tracing::Dispatch {
    let sub = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(Mutex::new(sink())),
        );
    tracing::Dispatch::new(sub)
}

/// The peer stack over `provider`: [`peer_dispatch`] and the router with
/// axum-tracing-opentelemetry's layers (the caller adds axum-prometheus's,
/// whose recorder is global).
pub fn peer_stack(provider: &SdkTracerProvider) -> (tracing::Dispatch, Router) {
    let app = router()
        .layer(axum_tracing_opentelemetry::middleware::OtelInResponseLayer)
        .layer(axum_tracing_opentelemetry::middleware::OtelAxumLayer::default());
    (peer_dispatch(provider), app)
}

/// A span exporter that discards every batch, counting its spans.
#[derive(Debug, Default, Clone)]
pub struct Counting(pub Arc<AtomicU64>);

impl Counting {
    /// Spans received so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl SpanExporter for Counting {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// stdout stand-in: discards what it gets, counting bytes and lines.
#[derive(Debug, Default, Clone)]
pub struct CountingSink {
    pub bytes: Arc<AtomicU64>,
    pub lines: Arc<AtomicU64>,
}

impl io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.iter().filter(|&&b| b == b'\n').count() as u64;
        self.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.lines.fetch_add(n, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// observe as `init` installs it: its span pipeline (defaults) into
/// [`Counting`], the Prometheus reader with exemplars, the non-blocking line
/// writer (default buffer) into a [`CountingSink`].
pub struct Shipped {
    pub dispatch: observe::tracing::Dispatch,
    pub guard: TelemetryGuard,
    pub delivered: Counting,
    pub sink: CountingSink,
    prometheus: observe::export::prometheus::PrometheusExporter,
}

impl Shipped {
    pub fn new(service: &str) -> Shipped {
        let delivered = Counting::default();
        let sink = CountingSink::default();
        let writer = Arc::new(
            observe::NonBlocking::new(
                sink.clone(),
                observe::DEFAULT_LOG_BUFFER,
                observe::FullPolicy::DropNewest,
            )
            .expect("line writer"),
        );
        let prometheus = observe::export::prometheus::PrometheusExporter::new();
        let (dispatch, guard) = observe::Telemetry::builder(service)
            .env_source(|_| None)
            .log_output(observe::LogOutput::Sink(writer))
            .span_pipeline(
                SpanPipeline::new(delivered.clone(), BatchConfig::default()).expect("pipeline"),
            )
            .prometheus(&prometheus)
            .build()
            .expect("telemetry")
            .into_parts();
        Shipped {
            dispatch,
            guard,
            delivered,
            sink,
            prometheus,
        }
    }

    /// The Prometheus text exposition of what was recorded so far.
    pub fn prometheus_text(&self) -> String {
        self.prometheus.render_text()
    }

    /// Flushes, prints what became of `produced` spans, asserts delivered +
    /// counted = produced, and shuts down.
    pub fn check(self, row: &str, produced: u64) {
        let _ = self.guard.flush(Duration::from_secs(30));
        let stats = self.guard.export_stats(Signal::Traces);
        let got = self.delivered.get();
        eprintln!(
            "{row}: {produced} produced, {got} spans delivered, {} counted dropped \
             ({} queue_full), {} line bytes written",
            stats.dropped(),
            stats.queue_full,
            self.sink.bytes.load(Ordering::Relaxed)
        );
        assert_eq!(
            got + stats.dropped(),
            produced,
            "delivered + counted = produced"
        );
        let _ = self.guard.shutdown(Duration::from_secs(5));
    }
}
