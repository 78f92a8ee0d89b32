//! Alert rules and dashboards for a service instrumented with observe: run
//! at build or deploy time (never in the service), from a description of
//! the service, on the metric names observe records
//! (`observe_core::signals::names`, translated as the Collector does).
//!
//! Describe a service once — its routes, external gateways, synthetic flows,
//! thresholds and SLOs — with [`AlertSpec::builder`], then generate:
//!
//! * [`AlertSpec::prometheus_rules`]: a [`RuleFile`] of Prometheus recording
//!   and alerting rules on the SDK's own metric names (see [`names`]), written
//!   as rule-file YAML by [`RuleFile::to_yaml`];
//! * [`AlertSpec::grafana_dashboard`]: a Grafana dashboard (JSON model) showing
//!   the same signals.
//!
//! The alerts (their names are part of the interface, see [`names::alert`]):
//!
//! | alert | fires when | severity |
//! | --- | --- | --- |
//! | `HighErrorRate` | share of requests with a non-empty `error_type` (explicit, implicit and masked failures) > 1% for 2m; with gRPC methods, the same for their calls (`rpc_system_name="grpc"`) | critical |
//! | `HighP99Latency` | p99 of *successful* requests > 3s for 5m; with gRPC methods, the same for their calls (`rpc_system_name="grpc"`) | warning |
//! | `ExternalGatewayErrors` | share of gateway calls with `status!="success"` > 5% for 2m, per gateway | critical |
//! | `HighSaturation` | `observe_resource_utilization` > 90% (per resource), the tokio workers' busy share > 90% (per instance), or in-flight requests > limit (per instance), for 5m | warning |
//! | `SyntheticCheckFailed` | `synthetic_check_success` stayed 0 for N runner intervals (critical), or no result at all (warning) | critical / warning |
//! | `ErrorBudgetBurn` | SRE-workbook multi-window burn rate: 14.4x over 1h and 5m, 6x over 6h and 30m (page), 1x over 3d and 6h (ticket) | critical / warning |
//!
//! `docs/alerts.md` documents every rule and its runbook.
//!
//! ```
//! use observe_alerts::AlertSpec;
//! use std::time::Duration;
//!
//! let spec = AlertSpec::builder("payment-service")
//!     .route("/pay")
//!     .route("/orders")
//!     .gateway("bank")
//!     .synthetic_flow("checkout", Duration::from_secs(60))
//!     .availability_slo(0.999, Duration::from_secs(30 * 86_400))
//!     .latency_slo(0.99, Duration::from_secs(1), Duration::from_secs(30 * 86_400))
//!     .runbook_base_url("https://runbooks.example.com/observe")
//!     .build()?;
//!
//! let yaml = spec.prometheus_rules().to_yaml();
//! assert!(yaml.contains("alert: \"ExternalGatewayErrors\""));
//! let dashboard = spec.grafana_dashboard();
//! assert_eq!(dashboard["schemaVersion"], 39);
//! # Ok::<(), observe_alerts::AlertSpecError>(())
//! ```

#![forbid(unsafe_code)]

mod dashboard;
mod generate;
mod grpc;
pub mod names;
mod promql;
mod rules;
mod spec;

pub use dashboard::{DATASOURCE_VARIABLE, GRAFANA_SCHEMA_VERSION};
pub use rules::{AlertingRule, RecordingRule, Rule, RuleFile, RuleGroup};
pub use spec::{AlertSpec, AlertSpecBuilder, AlertSpecError, DEFAULT_HTTP_DURATION_BUCKETS};

#[cfg(test)]
mod tests;
