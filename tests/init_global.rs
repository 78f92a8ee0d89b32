//! The process-wide install: once, and a clear error the second time. (Its
//! own test binary: it installs a global subscriber.)

use observe::testing::TelemetryBuilderExt as _;
use observe::InitError;
use std::cell::RefCell;
use std::sync::Arc;

/// Logs, opens a span and makes an `#[observed]` call when dropped: kept in
/// a thread-local, so it runs while the thread's other thread-locals
/// (observe's among them) are being destroyed.
struct LogsOnThreadExit;

impl Drop for LogsOnThreadExit {
    fn drop(&mut self) {
        observe::info!("worker_exiting", worker = 1);
        let span = observe::tracing::info_span!("late_span");
        span.in_scope(|| observe::info!("late_line"));
        let _ = late_call();
    }
}

thread_local! {
    static ON_EXIT: RefCell<Option<LogsOnThreadExit>> = const { RefCell::new(None) };
}

#[observe::observed]
fn late_call() -> Result<u32, std::io::Error> {
    observe::info!("late_call_line");
    Ok(1)
}

/// A `log` logger of the service's own, installed before observe.
struct UsersLogger(std::sync::atomic::AtomicUsize);

impl log::Log for UsersLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, _: &log::Record<'_>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    fn flush(&self) {}
}

static USERS_LOGGER: UsersLogger = UsersLogger(std::sync::atomic::AtomicUsize::new(0));

#[test]
fn init_twice_is_a_typed_error_and_the_first_install_works() {
    // A `log` logger is already installed: init keeps it, and says so.
    log::set_logger(&USERS_LOGGER).expect("the first logger");
    log::set_max_level(log::LevelFilter::Info);
    let sink = observe::MemorySink::new();
    let guard = observe::Telemetry::builder("payment-service")
        .env_source(|_| None)
        .log_output(observe::LogOutput::Sink(Arc::new(sink.clone())))
        .init()
        .expect("first init");
    let second = observe::Telemetry::builder("payment-service")
        .env_source(|_| None)
        .log_output(observe::LogOutput::Sink(Arc::new(
            observe::MemorySink::new(),
        )))
        .init();
    assert!(matches!(second, Err(InitError::AlreadyInitialized)));
    log::info!("to the user's logger");
    assert_eq!(USERS_LOGGER.0.load(std::sync::atomic::Ordering::Relaxed), 1);
    let span = observe::tracing::info_span!("create_order");
    let (trace_id, traceparent) = span.in_scope(|| {
        observe::info!("order_created", order_id = "ord_1");
        (observe::current_trace_id(), observe::current_traceparent())
    });
    drop(span);

    // A thread whose thread-local destructor logs after observe's own
    // thread-locals are gone (destructors run in reverse order of first
    // use): telemetry must not panic there (a panic in a thread-local
    // destructor aborts the process), and the lines are still written.
    std::thread::spawn(|| {
        ON_EXIT.with(|e| *e.borrow_mut() = Some(LogsOnThreadExit));
        observe::info!("worker_started");
        late_call().expect("runs");
    })
    .join()
    .expect("the worker exits cleanly");

    guard
        .shutdown(std::time::Duration::from_secs(2))
        .expect("clean shutdown");
    let lines: Vec<serde_json::Value> = sink
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let events: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    assert_eq!(
        events,
        [
            "observe_config_warning",
            "observe_config_warning",
            "order_created",
            "worker_started",
            "late_call_line",
            "worker_exiting",
            "late_line",
            "late_call_line"
        ]
    );
    assert_eq!(
        lines[1]["message"],
        "another `log` logger is installed: records of crates that log through `log` \
         go to it, not to observe (TelemetryBuilder::log_bridge(false) keeps it without this warning)"
    );
    let line = &lines[2];
    // The span opened during the thread's exit still gives its line ids.
    let late = &lines[6];
    assert_eq!(late["trace_id"].as_str().map(str::len), Some(32), "{late}");
    assert_eq!(late["span_id"].as_str().map(str::len), Some(16), "{late}");
    let trace_id = trace_id.expect("inside a span");
    assert_eq!(line["trace_id"], trace_id.as_str());
    assert_eq!(
        traceparent.expect("traceparent"),
        format!(
            "00-{}-{}-03",
            trace_id,
            line["span_id"].as_str().expect("span id")
        )
    );
}
