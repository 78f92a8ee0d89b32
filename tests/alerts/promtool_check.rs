//! `promtool check rules` on the generated file.

use super::*;

#[test]
fn promtool_checks_the_generated_rule_file() {
    let Some(promtool) = promtool() else { return };
    let dir = scratch_dir("check");
    check_rules(
        &promtool,
        &dir,
        "rules.yml",
        &payments().prometheus_rules().to_yaml(),
    );
    // A minimal description too: no routes, gateways, flows or SLOs.
    let minimal = AlertSpec::builder("svc with \"quotes\"")
        .route("/users/{id}")
        .route_pattern("/api/v[12]/.*")
        .runbook_base_url("https://runbooks.example.com")
        .build()
        .expect("valid");
    check_rules(
        &promtool,
        &dir,
        "minimal.yml",
        &minimal.prometheus_rules().to_yaml(),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
