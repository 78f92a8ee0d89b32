//! observe's tracing layer in a registry of the application's own, beside
//! other layers: spans, lines, `#[observed]`, the span interface and the
//! level filter work as under observe's own subscriber.

use observe::opentelemetry::KeyValue;
use observe::opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor};
use observe::testing::TelemetryBuilderExt as _;
use observe::tracing::{self, Event, Subscriber};
use observe::tracing_subscriber::layer::{Context, SubscriberExt as _};
use observe::tracing_subscriber::registry::LookupSpan;
use observe::tracing_subscriber::{registry, Layer};
use observe::{observed, LogOutput, MemorySink, Telemetry};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Another layer of the application (a stand-in for a `fmt` layer): counts events.
#[derive(Clone, Default)]
struct CountEvents(Arc<AtomicUsize>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for CountEvents {
    fn on_event(&self, _event: &Event<'_>, _ctx: Context<'_, S>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[observed]
fn charge(amount: u64) -> Result<u64, std::io::Error> {
    observe::info!("charging", amount);
    Ok(amount)
}

#[test]
fn the_layer_composes_with_other_layers_of_a_user_registry() {
    let lines = MemorySink::new();
    let spans = InMemorySpanExporter::default();
    let (layer, guard) = Telemetry::builder("checkout")
        .env_source(|k| (k == "RUST_LOG").then(|| "info".to_owned()))
        .log_output(LogOutput::Sink(Arc::new(lines.clone())))
        .span_processor(SimpleSpanProcessor::new(spans.clone()))
        .build_layer()
        .expect("layer");
    let before = CountEvents::default();
    let after = CountEvents::default();
    // observe's layer in the middle of the stack: it finds the registry
    // through the layer below it, not by assuming one subscriber type.
    let subscriber = registry()
        .with(before.clone())
        .with(layer)
        .with(after.clone());
    tracing::subscriber::with_default(subscriber, || {
        let request = tracing::info_span!("request", order_id = "ord_1");
        let _e = request.enter();
        assert_eq!(
            observe::current_trace_id().map(|t| t.len()),
            Some(32),
            "the current span is observe's"
        );
        observe::span::with_span(&request, |mut h| {
            h.set_attribute(KeyValue::new("tier", "gold"));
        })
        .expect("observe's state of a span of this registry");
        assert_eq!(charge(1299).expect("ok"), 1299);
        observe::info!("order_created");
        tracing::debug!("below the level filter: no layer sees it");
    });
    guard.flush(Duration::from_secs(5)).expect("flush");

    let lines: Vec<serde_json::Value> = lines
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let events: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    assert_eq!(events, ["charging", "order_created"]);
    assert_eq!(
        lines[0]["order_id"], "ord_1",
        "span fields reach the call's lines"
    );
    assert_eq!(lines[0]["trace_id"], lines[1]["trace_id"]);
    // The level filter is the whole subscriber's, as with observe's own.
    assert_eq!(before.0.load(Ordering::Relaxed), 2);
    assert_eq!(after.0.load(Ordering::Relaxed), 2);

    let spans = spans.get_finished_spans().expect("spans");
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(names, ["layer::charge", "request"]);
    assert_eq!(spans[0].parent_span_id, spans[1].span_context.span_id());
    assert!(spans[1].attributes.contains(&KeyValue::new("tier", "gold")));
}
