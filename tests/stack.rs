//! The seed's stack for real, checked only through the engines' own APIs:
//!
//! ```text
//!  orders ─▶ checkout (observe) ─▶ fraud (Python SDK) ─▶ payment (observe) ─▶ bank simulator
//!              │                       │                     │ #[observed(gateway = "bank")]
//!              └───────────── OTLP/HTTP (OTEL_* variables only) ─────────────┘
//!                                       ▼
//!        Collector (Jaeger v2, docs/collector/collector.yaml): memory_limiter ▶ tail_sampling ▶ batch
//!          ├─ traces  ▶ trace store  ◀── GET /api/traces
//!          ├─ metrics ▶ prometheus exporter ◀── Prometheus (rules from AlertSpec) ──▶ Alertmanager
//!          └─ logs    ▶ otlphttp ▶ VictoriaLogs ◀── LogsQL
//! ```
//!
//! Its own `main` (`harness = false`): run with no argument, it runs the
//! scenarios below one after the other (`cargo test --test stack -- <filter>`
//! runs those whose name contains the filter); started with `--serve <role>`
//! it is one of the services (examples/incident/services.rs).
//!
//! Needs `tools/build` (Jaeger, VictoriaLogs), Debian's `prometheus` and
//! `prometheus-alertmanager`, and the Python venv (`scripts/python-venv`);
//! `./scripts/test` provides all of them. When one is missing the scenarios
//! are skipped with a notice naming it, unless `CI=true`: then they fail.

#[path = "stack/compression.rs"]
mod compression;
#[path = "stack/scenarios.rs"]
mod scenarios;
#[path = "../examples/incident/services.rs"]
mod services;
#[path = "../examples/incident/stack.rs"]
mod stack;
#[path = "stack/tls.rs"]
mod tls;

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Scenario = fn() -> Pin<Box<dyn Future<Output = Result<(), BoxError>>>>;

/// Every scenario, in run order.
const SCENARIOS: &[(&str, Scenario)] = &[
    (
        "collector_config_error_stops_with_the_collectors_own_message",
        || Box::pin(scenarios::collector_config_error()),
    ),
    (
        "services_serve_and_count_drops_while_the_collector_is_down",
        || Box::pin(scenarios::collector_down()),
    ),
    (
        "incident_from_order_id_to_cause_and_alerts_end_to_end",
        || Box::pin(scenarios::incident()),
    ),
    (
        "tail_sampling_keeps_every_error_and_slow_trace_whole",
        || Box::pin(scenarios::tail_sampling()),
    ),
    (
        "gzip_on_both_protocols_reaches_the_trace_store_whole_with_fewer_bytes",
        || Box::pin(compression::compression()),
    ),
    (
        "tls_and_mutual_tls_deliver_to_the_real_collector_on_both_protocols",
        || Box::pin(tls::tls_and_mutual_tls()),
    ),
    (
        "tls_failures_name_the_endpoint_and_the_reason_and_nothing_goes_in_clear_text",
        || Box::pin(tls::tls_failures()),
    ),
];

/// What a missing engine means here: a skip locally, a failure in CI.
fn missing_prerequisites() -> Vec<String> {
    let mut missing: Vec<String> = observe_stack::Engine::ALL
        .iter()
        .filter_map(|e| e.locate().err().map(|err| err.to_string()))
        .collect();
    if let Err(e) = services::python() {
        missing.push(e.to_string());
    }
    missing
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--serve") {
        return services::serve(&args);
    }
    if args.iter().any(|a| a == "--list") {
        for (name, _) in SCENARIOS {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    // libtest's conventions: bare words filter by name, `--skip WORD` leaves
    // out the names containing it, other flags are ignored.
    let mut filters: Vec<&str> = Vec::new();
    let mut skips: Vec<&str> = Vec::new();
    let mut rest = args.iter().skip(1);
    while let Some(a) = rest.next() {
        if a == "--skip" {
            skips.extend(rest.next().map(String::as_str));
        } else if !a.starts_with('-') {
            filters.push(a);
        }
    }
    let chosen: Vec<&(&str, Scenario)> = SCENARIOS
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f)))
        .filter(|(name, _)| !skips.iter().any(|s| name.contains(s)))
        .collect();
    println!("\nrunning {} stack scenarios", chosen.len());
    if chosen.is_empty() {
        return ExitCode::SUCCESS;
    }
    let missing = missing_prerequisites();
    if !missing.is_empty() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        for m in &missing {
            eprintln!("{} stack: {m}", if ci { "FAILED" } else { "SKIPPED" });
        }
        return if ci {
            eprintln!("CI=true: the stack's engines must be present (./scripts/test builds them)");
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("no tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = Vec::new();
    for (name, scenario) in chosen {
        let t0 = Instant::now();
        let result = runtime.block_on(scenario());
        let secs = t0.elapsed().as_secs_f64();
        match result {
            Ok(()) => println!("test {name} ... ok ({secs:.1} s)"),
            Err(e) => {
                println!("test {name} ... FAILED ({secs:.1} s)\n{e}\n");
                failed.push(*name);
            }
        }
    }
    if failed.is_empty() {
        println!("\nstack: all scenarios passed");
        ExitCode::SUCCESS
    } else {
        println!("\nstack: failed: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}
