//! What the rest of the process emits joins observe's lines and traces:
//! `log` records (the tracing-log bridge `init` installs), spans of
//! libraries that use the OpenTelemetry API's global tracer and
//! propagator, and other crates' `tracing` spans and events. Its own test
//! binary: everything here goes through the process-wide install.

use observe::opentelemetry::global;
use observe::opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _};
use observe::opentelemetry_sdk::error::OTelSdkResult;
use observe::opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use observe::testing::{Clock, TelemetryBuilderExt as _};
use observe::{LogOutput, MemorySink, Telemetry};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

struct Installed {
    sink: MemorySink,
    spans: Collected,
}

/// Every finished span, kept in memory (on the ending thread, with no
/// executor: spans may end while a thread exits).
#[derive(Clone, Debug, Default)]
struct Collected(Arc<Mutex<Vec<SpanData>>>);

impl Collected {
    fn get_finished_spans(&self) -> Result<Vec<SpanData>, std::convert::Infallible> {
        Ok(self.0.lock().expect("spans").clone())
    }
}

impl SpanProcessor for Collected {
    fn on_start(
        &self,
        _: &mut observe::opentelemetry_sdk::trace::Span,
        _: &observe::opentelemetry::Context,
    ) {
    }
    fn on_end(&self, span: SpanData) {
        self.0.lock().expect("spans").push(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// observe installed once for the whole binary, as a service's `main` does.
fn installed() -> &'static Installed {
    static INSTALLED: OnceLock<Installed> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let sink = MemorySink::new();
        let spans = Collected::default();
        let guard = Telemetry::builder("bridges")
            .env_source(|k| (k == "RUST_LOG").then(|| "info,noisy_dep=warn".to_owned()))
            .clock(Clock::Fixed(
                UNIX_EPOCH + Duration::from_micros(1_779_416_073_123_456),
            ))
            .log_output(LogOutput::Sink(Arc::new(sink.clone())))
            .span_processor(spans.clone())
            .init()
            .expect("init");
        // Kept for the life of the process, as `main` keeps it.
        std::mem::forget(guard);
        Installed { sink, spans }
    })
}

/// The lines of trace `trace_id`, in order.
fn lines_of(trace_id: &str) -> Vec<String> {
    installed()
        .sink
        .lines()
        .into_iter()
        .filter(|l| l.contains(&format!(r#""trace_id":"{trace_id}""#)))
        .collect()
}

/// The spans of trace `trace_id` as (name, parent's name) pairs; `-` for
/// the root, `?` for a parent not among them.
fn tree_of(trace_id: &str) -> BTreeSet<(String, String)> {
    let spans: Vec<SpanData> = installed()
        .spans
        .get_finished_spans()
        .expect("spans")
        .into_iter()
        .filter(|s| s.span_context.trace_id().to_string() == trace_id)
        .collect();
    let names: HashMap<_, _> = spans
        .iter()
        .map(|s| (s.span_context.span_id(), s.name.to_string()))
        .collect();
    spans
        .iter()
        .map(|s| {
            let parent = if s.parent_span_id == observe::opentelemetry::trace::SpanId::INVALID {
                "-".to_owned()
            } else {
                names
                    .get(&s.parent_span_id)
                    .cloned()
                    .unwrap_or_else(|| "?".to_owned())
            };
            (s.name.to_string(), parent)
        })
        .collect()
}

fn tree(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn ids() -> (String, String) {
    (
        observe::current_trace_id().expect("in a span"),
        observe::current_span_id().expect("in a span"),
    )
}

#[test]
fn log_records_are_lines_with_the_current_trace_and_the_level_filter() {
    installed();
    let request = observe::tracing::info_span!("log_request");
    let (trace_id, span_id) = request.in_scope(|| {
        log::info!(target: "hyper_util::client::legacy::pool", "reuse idle connection for {:?}", ("bank", 443));
        // Below RUST_LOG's level for its target: not a line.
        log::debug!(target: "hyper_util::client::legacy::pool", "pooling idle connection");
        log::info!(target: "noisy_dep", "below noisy_dep=warn");
        log::warn!(target: "noisy_dep::conn", "connection reset, retrying");
        ids()
    });
    drop(request);
    let ts = "2026-05-22T02:14:33.123456Z";
    assert_eq!(
        lines_of(&trace_id),
        vec![
            format!(
                r#"{{"timestamp":"{ts}","level":"INFO","service":"bridges","event":"hyper_util_client_legacy_pool","trace_id":"{trace_id}","span_id":"{span_id}","event_inferred":true,"message":"reuse idle connection for (\"bank\", 443)","target":"hyper_util::client::legacy::pool"}}"#
            ),
            format!(
                r#"{{"timestamp":"{ts}","level":"WARN","service":"bridges","event":"noisy_dep_conn","trace_id":"{trace_id}","span_id":"{span_id}","event_inferred":true,"message":"connection reset, retrying","target":"noisy_dep::conn"}}"#
            ),
        ]
    );
    // `log`'s own maximum is tracing's: a `log::debug!` stops at one comparison.
    assert_eq!(log::max_level(), log::LevelFilter::Info);
}

#[observe::observed]
fn charge(amount_cents: u64) -> Result<String, std::io::Error> {
    let tracer = global::tracer("bank-sdk");
    // A library's span, started inside the call, and an observe call
    // inside that one.
    let (inner, library_headers) = tracer.in_span("bank_sdk.send", |_cx| {
        let mut headers = HashMap::new();
        global::get_text_map_propagator(|p| p.inject(&mut headers));
        let inner = sign_request(amount_cents).expect("signed");
        (inner, headers)
    });
    // After it: the library's next span is the call's child again, and so
    // is a tracing span.
    let mut ack = tracer.start("bank_sdk.ack");
    ack.end();
    observe::tracing::info_span!("record_charge").in_scope(|| {});
    let mut headers = HashMap::new();
    global::get_text_map_propagator(|p| p.inject(&mut headers));
    assert_eq!(
        headers.get("traceparent"),
        observe::current_traceparent().as_ref(),
        "the call's own context once the library's span has ended"
    );
    Ok(format!(
        "{}|{inner}",
        library_headers
            .get("traceparent")
            .cloned()
            .unwrap_or_default(),
    ))
}

/// The `traceparent` the global propagator writes inside the call.
#[observe::observed]
fn sign_request(_amount_cents: u64) -> Result<String, std::io::Error> {
    let mut headers = HashMap::new();
    global::get_text_map_propagator(|p| p.inject(&mut headers));
    Ok(headers.remove("traceparent").unwrap_or_default())
}

#[test]
fn spans_of_the_opentelemetry_api_and_observe_nest_both_ways() {
    installed();
    let request = observe::tracing::info_span!("pay_request");
    let (trace_id, joined) = request.in_scope(|| (ids().0, charge(1299).expect("charged")));
    drop(request);
    assert_eq!(
        tree_of(&trace_id),
        tree(&[
            ("pay_request", "-"),
            ("bridges::charge", "pay_request"),
            ("bank_sdk.send", "bridges::charge"),
            ("bridges::sign_request", "bank_sdk.send"),
            ("bank_sdk.ack", "bridges::charge"),
            ("record_charge", "bridges::charge"),
        ])
    );
    // Inside the library's span the global propagator writes the library
    // span's context; inside the observe call within it, the call's.
    let spans = installed().spans.get_finished_spans().expect("spans");
    let by_name = |n: &str| {
        spans
            .iter()
            .find(|s| s.name == n && s.span_context.trace_id().to_string() == trace_id)
            .unwrap_or_else(|| panic!("{n}"))
    };
    let send = by_name("bank_sdk.send");
    let sign = by_name("bridges::sign_request");
    let (library_header, sign_header) = joined.split_once('|').expect("two headers");
    assert_eq!(
        library_header,
        format!("00-{trace_id}-{}-01", send.span_context.span_id())
    );
    assert_eq!(
        sign_header,
        format!("00-{trace_id}-{}-03", sign.span_context.span_id())
    );
    assert_eq!(send.instrumentation_scope.name(), "bank-sdk");
    assert!(!send.parent_span_is_remote);
}

#[test]
fn a_library_span_outside_any_observe_span_is_a_root_and_observe_spans_inside_it_are_children() {
    installed();
    let tracer = global::tracer("worker-lib");
    let trace_id = tracer.in_span("worker_lib.poll", |cx| {
        observe::tracing::info_span!("handle_job").in_scope(|| {
            observe::info!("job_handled");
        });
        cx.span().span_context().trace_id().to_string()
    });
    assert_eq!(
        tree_of(&trace_id),
        tree(&[("worker_lib.poll", "-"), ("handle_job", "worker_lib.poll")])
    );
    let lines = lines_of(&trace_id);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(r#""event":"job_handled""#),
        "{}",
        lines[0]
    );
}

mod other_crate {
    /// A dependency instrumented with plain `tracing`.
    #[tracing::instrument(fields(attempt = 1))]
    pub(crate) fn fetch_rates(currency: &str) -> u32 {
        tracing::info!(currency, "rates fetched");
        42
    }
}

#[observe::observed]
fn convert(amount: u32) -> Result<u32, std::io::Error> {
    Ok(amount * other_crate::fetch_rates("EUR"))
}

#[test]
fn tracing_spans_and_events_of_other_crates_are_children_and_lines_of_the_current_context() {
    installed();
    let request = observe::tracing::info_span!("convert_request");
    let (trace_id, _) = request.in_scope(|| {
        convert(2).expect("converted");
        ids()
    });
    drop(request);
    assert_eq!(
        tree_of(&trace_id),
        tree(&[
            ("convert_request", "-"),
            ("bridges::convert", "convert_request"),
            ("fetch_rates", "bridges::convert"),
        ])
    );
    let spans = installed().spans.get_finished_spans().expect("spans");
    let fetch = spans
        .iter()
        .find(|s| s.name == "fetch_rates" && s.span_context.trace_id().to_string() == trace_id)
        .expect("fetch_rates");
    let ts = "2026-05-22T02:14:33.123456Z";
    assert_eq!(
        lines_of(&trace_id),
        vec![format!(
            r#"{{"timestamp":"{ts}","level":"INFO","service":"bridges","event":"rates_fetched","trace_id":"{trace_id}","span_id":"{}","event_inferred":true,"message":"rates fetched","target":"bridges::other_crate","currency":"EUR","attempt":1,"code.function":"convert"}}"#,
            fetch.span_context.span_id()
        )]
    );
}

/// Makes an `#[observed]` call and opens a span when dropped: kept in a
/// thread-local, it runs while the thread's other thread-locals (the
/// OpenTelemetry API's current context among them) are being destroyed.
struct CallsOnThreadExit;

#[observe::observed]
fn late_call() -> Result<u32, std::io::Error> {
    Ok(1)
}

impl Drop for CallsOnThreadExit {
    fn drop(&mut self) {
        let _ = late_call();
        observe::tracing::info_span!("late_span").in_scope(|| observe::info!("late_line"));
    }
}

thread_local! {
    static ON_EXIT: std::cell::RefCell<Option<CallsOnThreadExit>> =
        const { std::cell::RefCell::new(None) };
}

#[test]
fn spans_started_while_a_thread_exits_after_the_api_was_used_never_panic() {
    installed();
    std::thread::spawn(|| {
        ON_EXIT.with(|e| *e.borrow_mut() = Some(CallsOnThreadExit));
        // The API's context is used on this thread (after ON_EXIT: it is
        // destroyed first).
        global::tracer("exit-lib").in_span("exit_lib.work", |_| {});
    })
    .join()
    .expect("the thread exits cleanly (a panic in a thread-local destructor aborts)");
    let late = installed()
        .sink
        .lines()
        .into_iter()
        .filter(|l| l.contains(r#""event":"late_line""#))
        .count();
    assert_eq!(late, 1);
}
