//! A telemetry whose only span processor is observe's own pipeline, for the
//! tests of what that pipeline adds or hands back on its thread. Included
//! with `#[path]` by the test crates that need it (no OTLP receiver).

/// A telemetry whose only span processor is observe's own pipeline (as
/// `init` builds it) into an in-memory exporter; `var` gives the variables.
pub(crate) fn on_observes_pipeline(
    var: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> (
    observe::tracing::Dispatch,
    observe::TelemetryGuard,
    observe::opentelemetry_sdk::trace::InMemorySpanExporter,
) {
    use observe::export::{BatchConfig, SpanPipeline};
    use observe::testing::TelemetryBuilderExt as _;
    let exporter = observe::opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let pipeline = SpanPipeline::new(exporter.clone(), BatchConfig::default()).expect("pipeline");
    let (dispatch, guard) = observe::Telemetry::builder("payments")
        .env_source(var)
        .log_output(observe::LogOutput::Sink(std::sync::Arc::new(
            observe::MemorySink::new(),
        )))
        .span_pipeline(pipeline)
        .build()
        .expect("telemetry")
        .into_parts();
    (dispatch, guard, exporter)
}
