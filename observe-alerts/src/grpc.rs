//! The gRPC twins of the golden-signal rules: the same alerts
//! (`HighErrorRate`, `HighP99Latency`, the in-flight `HighSaturation`) on
//! `rpc_server_call_duration_seconds` and `observe_rpc_server_active_calls`
//! for the methods given with [`AlertSpecBuilder::grpc_method`](crate::AlertSpecBuilder::grpc_method),
//! each labelled `rpc_system_name="grpc"` so Alertmanager tells them from
//! the HTTP ones.

use std::collections::BTreeMap;

use super::generate::{value_matcher, RATIO_FOR, SLOW_FOR};
use super::names::{self, alert, label};
use super::promql::{duration, num, pct, seconds, Matchers, Op};
use super::rules::{RecordingRule, Rule};
use super::spec::{AlertSpec, RouteMatch};

/// The label every gRPC rule carries.
const GRPC: (&str, &str) = (label::RPC_SYSTEM_NAME, "grpc");

impl AlertSpec {
    /// Matchers of the gRPC server calls the rules count: the service, its
    /// methods, no synthetic traffic.
    pub(crate) fn grpc_matchers(&self) -> Matchers {
        let mut m = self
            .job_matchers()
            .with(label::RPC_SYSTEM_NAME, Op::Eq, "grpc");
        if let Some((op, value)) = value_matcher(&self.grpc_methods) {
            m = m.with(label::RPC_METHOD, op, &value);
        }
        self.without_synthetic(m)
    }

    fn grpc_methods_text(&self) -> String {
        let list: Vec<&str> = self.grpc_methods.iter().map(RouteMatch::display).collect();
        format!("gRPC methods {}", list.join(", "))
    }

    /// The gRPC golden-signal rules (none without a gRPC method).
    pub(crate) fn grpc_rules(&self) -> Vec<Rule> {
        if self.grpc_methods.is_empty() {
            return Vec::new();
        }
        let w = self.rate_window;
        let ws = duration(w);
        let calls = self.grpc_matchers();
        let errors = calls.clone().with(label::ERROR_TYPE, Op::Ne, "");
        let success = calls.clone().with(label::ERROR_TYPE, Op::Eq, "");
        let p99 = |m: &Matchers| {
            format!(
                "histogram_quantile(0.99, sum by (job, le) (rate({})))",
                m.range(names::RPC_SERVER_CALL_DURATION_BUCKET, w)
            )
        };
        let mut rules = vec![
            Rule::Recording(RecordingRule {
                record: format!("job:rpc_server_call_duration_seconds:p99_success_rate{ws}"),
                expr: p99(&success),
                labels: BTreeMap::new(),
            }),
            Rule::Recording(RecordingRule {
                record: format!("job:rpc_server_call_duration_seconds:p99_failed_rate{ws}"),
                expr: p99(&errors),
                labels: BTreeMap::new(),
            }),
        ];
        let count = names::RPC_SERVER_CALL_DURATION_COUNT;
        let threshold = self.error_ratio_threshold;
        rules.push(self.alert(
            alert::HIGH_ERROR_RATE,
            format!(
                "sum by (job) (rate({}))\n/\nsum by (job) (rate({}))\n> {}",
                errors.range(count, w),
                calls.range(count, w),
                num(threshold)
            ),
            Some(RATIO_FOR),
            &[("severity", "critical"), GRPC],
            "{{ $labels.job }}: {{ $value | humanizePercentage }} of gRPC calls are failing".to_owned(),
            format!(
                "{{{{ $value | humanizePercentage }}}} of gRPC calls to {{{{ $labels.job }}}} ({}) failed over the last {ws}, above the {} threshold for {}. \
                 A failure is any call with a non-empty error_type: a server-error status (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS), a panic, and OK answers that carry an implicit or masked failure.",
                self.grpc_methods_text(),
                pct(threshold),
                duration(RATIO_FOR)
            ),
        ));
        let latency = self.p99_latency_threshold;
        rules.push(self.alert(
            alert::HIGH_P99_LATENCY,
            format!("{}\n> {}", p99(&success), seconds(latency)),
            Some(SLOW_FOR),
            &[("severity", "warning"), GRPC],
            "{{ $labels.job }}: p99 latency of successful gRPC calls is {{ $value | humanizeDuration }}".to_owned(),
            format!(
                "The 99th percentile latency of successful gRPC calls to {{{{ $labels.job }}}} ({}) was {{{{ $value | humanizeDuration }}}} over the last {ws}, above {} for {}. \
                 A streaming call lasts until its stream ends; failed calls are left out, their p99 is recorded as job:rpc_server_call_duration_seconds:p99_failed_rate{ws}.",
                self.grpc_methods_text(),
                duration(latency),
                duration(SLOW_FOR)
            ),
        ));
        if let Some(limit) = self.max_active_requests {
            rules.push(self.alert(
                alert::HIGH_SATURATION,
                format!(
                    "sum by (job, instance) ({})\n> {limit}",
                    self.job_matchers()
                        .select(names::OBSERVE_RPC_SERVER_ACTIVE_CALLS),
                ),
                Some(SLOW_FOR),
                &[("severity", "warning"), ("resource", "active_calls"), GRPC],
                "{{ $labels.job }} on {{ $labels.instance }}: {{ $value | humanize }} gRPC calls in progress".to_owned(),
                format!(
                    "Instance {{{{ $labels.instance }}}} of {{{{ $labels.job }}}} has had more than {limit} gRPC calls in progress for {} (now {{{{ $value | humanize }}}}).",
                    duration(SLOW_FOR)
                ),
            ));
        }
        rules
    }
}
