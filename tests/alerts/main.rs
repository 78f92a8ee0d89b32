//! `observe::alerts` against the real `promtool` (Debian's `prometheus` package):
//! the generated rule file passes `promtool check rules`, unit tests replay the
//! 2 AM bank-gateway incident and healthy traffic with `promtool test rules`,
//! and every PromQL query of the generated Grafana dashboard parses.
//!
//! Without promtool these tests print a notice and pass, except under
//! `CI=true`, where a missing promtool fails them. `PROMTOOL=/path` overrides
//! the lookup on `PATH`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use observe::alerts::names::{self, alert};
use observe::alerts::{AlertSpec, AlertSpecError, AlertingRule, RuleFile};
use serde_json::{json, Value};

const DAY: u64 = 86_400;
const JOB: &str = "payment-service";

/// The payments service of the seed article, as `examples/alert_rules.rs` describes it.
fn payments() -> AlertSpec {
    AlertSpec::builder(JOB)
        .route("/pay")
        .route("/orders")
        .gateway("bank")
        .synthetic_flow("checkout", Duration::from_secs(60))
        .availability_slo(0.999, Duration::from_secs(30 * DAY))
        .latency_slo(0.99, Duration::from_secs(1), Duration::from_secs(30 * DAY))
        .max_active_requests(256)
        .runbook_base_url("https://runbooks.example.com/observe")
        .build()
        .expect("the payments description is valid")
}

// ---------------------------------------------------------------- promtool

/// The promtool binary, or `None` (with a notice) when it is missing outside CI.
fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PROMTOOL")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join("promtool"))
                    .find(|p| p.is_file())
            })
        });
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("promtool not found on PATH (nor $PROMTOOL) and CI=true: install Debian's `prometheus` package");
        }
        // Straight to stderr: the test harness would swallow eprintln!.
        let _ = writeln!(
            std::io::stderr(),
            "NOTICE: promtool not found; skipping this promtool test (apt-get install prometheus)"
        );
    }
    found
}

fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("observe-alerts-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn run(promtool: &Path, args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn check_rules(promtool: &Path, dir: &Path, file: &str, yaml: &str) {
    std::fs::write(dir.join(file), yaml).expect("write rules");
    let (ok, out) = run(promtool, &["check", "rules", file], dir);
    assert!(
        ok,
        "promtool check rules failed:\n{out}\n--- {file}:\n{yaml}"
    );
}

mod dashboard;
mod golden;
mod promtool_check;
mod promtool_grpc;
mod promtool_units;
