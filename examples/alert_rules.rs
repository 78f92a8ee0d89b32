//! Prints the Prometheus alert rules of the payments service, or with
//! `--dashboard` its Grafana dashboard:
//!
//! ```sh
//! cargo run --features alerts --example alert_rules > rules.yml
//! promtool check rules rules.yml
//! cargo run --features alerts --example alert_rules -- --dashboard > dashboard.json
//! ```

use std::process::ExitCode;
use std::time::Duration;

use observe::alerts::{AlertSpec, AlertSpecError};

const DAY: u64 = 86_400;

fn payments() -> Result<AlertSpec, AlertSpecError> {
    AlertSpec::builder("payment-service")
        .route("/pay")
        .route("/orders")
        .gateway("bank")
        .synthetic_flow("checkout", Duration::from_secs(60))
        .availability_slo(0.999, Duration::from_secs(30 * DAY))
        .latency_slo(0.99, Duration::from_secs(1), Duration::from_secs(30 * DAY))
        .runbook_base_url("https://runbooks.example.com/observe")
        .build()
}

fn main() -> ExitCode {
    let spec = match payments() {
        Ok(spec) => spec,
        Err(err) => {
            eprintln!("invalid alert description: {err}");
            return ExitCode::FAILURE;
        }
    };
    if std::env::args().skip(1).any(|arg| arg == "--dashboard") {
        println!("{:#}", spec.grafana_dashboard());
    } else {
        print!("{}", spec.prometheus_rules().to_yaml());
    }
    ExitCode::SUCCESS
}
