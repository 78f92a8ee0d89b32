//! Turns an [`AlertSpec`] into Prometheus recording and alerting rules.

use std::collections::BTreeMap;
use std::time::Duration;

use super::names::{self, alert, label};
use super::promql::{self, duration, num, pct, regex_escape, seconds, Matchers, Op};
use super::rules::{AlertingRule, RecordingRule, Rule, RuleFile, RuleGroup};
use super::spec::{AlertSpec, BurnWindow, RouteMatch, Slo, BURN_WINDOWS};

/// How long the golden-signal ratio alerts must hold.
pub(crate) const RATIO_FOR: Duration = Duration::from_secs(120);
/// How long p99 latency and saturation must hold.
pub(crate) const SLOW_FOR: Duration = Duration::from_secs(300);

/// Which SLO a set of recording rules and burn-rate alerts is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SloKind {
    Availability,
    Latency,
}

impl SloKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SloKind::Availability => "availability",
            SloKind::Latency => "latency",
        }
    }
}

/// `job:slo_<kind>_error_ratio:rate<window>`.
pub(crate) fn slo_ratio_record(kind: SloKind, window: Duration) -> String {
    format!(
        "job:slo_{}_error_ratio:rate{}",
        kind.as_str(),
        duration(window)
    )
}

impl AlertSpec {
    /// Generates the Prometheus rule groups: golden signals, synthetic flows
    /// and, for each SLO, its recording rules and burn-rate alerts.
    ///
    /// Groups: `<service>-golden-signals`, `<service>-synthetic` (if any flow),
    /// `<service>-slo-availability` and `<service>-slo-latency` (if set).
    ///
    /// ```
    /// use observe_alerts::AlertSpec;
    ///
    /// let spec = AlertSpec::builder("payment-service")
    ///     .gateway("bank")
    ///     .runbook_base_url("https://runbooks.example.com/observe")
    ///     .build()?;
    /// let rules = spec.prometheus_rules();
    /// let gateway = rules.alert("ExternalGatewayErrors").expect("generated");
    /// assert_eq!(gateway.labels["severity"], "critical");
    /// assert!(gateway.expr.contains(r#"status!="success""#));
    /// # Ok::<(), observe_alerts::AlertSpecError>(())
    /// ```
    pub fn prometheus_rules(&self) -> RuleFile {
        let mut groups = vec![RuleGroup {
            name: format!("{}-golden-signals", self.service),
            interval: None,
            rules: self.golden_signal_rules(),
        }];
        if !self.flows.is_empty() {
            groups.push(RuleGroup {
                name: format!("{}-synthetic", self.service),
                interval: None,
                rules: self.synthetic_rules(),
            });
        }
        if let Some(slo) = self.availability {
            groups.push(RuleGroup {
                name: format!("{}-slo-availability", self.service),
                interval: None,
                rules: self.slo_rules(SloKind::Availability, slo),
            });
        }
        if let Some(l) = self.latency {
            groups.push(RuleGroup {
                name: format!("{}-slo-latency", self.service),
                interval: None,
                rules: self.slo_rules(SloKind::Latency, l.slo),
            });
        }
        RuleFile { groups }
    }

    /// `{job="svc"}`.
    pub(crate) fn job_matchers(&self) -> Matchers {
        Matchers::new().with(label::JOB, Op::Eq, &self.service)
    }

    /// The `http_route` matcher of the configured routes, if any.
    pub(crate) fn route_matcher(&self) -> Option<(Op, String)> {
        value_matcher(&self.routes)
    }
}

/// One matcher for a list of exact values and patterns: `=` for a single
/// exact value, else `=~` over their alternation; `None` for none.
pub(crate) fn value_matcher(values: &[RouteMatch]) -> Option<(Op, String)> {
    match values {
        [] => None,
        [RouteMatch::Exact(route)] => Some((Op::Eq, route.clone())),
        routes => Some((
            Op::Re,
            routes
                .iter()
                .map(|r| match r {
                    RouteMatch::Exact(route) => regex_escape(route),
                    RouteMatch::Pattern(p) => p.clone(),
                })
                .collect::<Vec<_>>()
                .join("|"),
        )),
    }
}

impl AlertSpec {
    /// Matchers of the server requests the golden signals and SLOs count:
    /// the service, its routes, no synthetic traffic.
    pub(crate) fn http_matchers(&self) -> Matchers {
        let mut m = self.job_matchers();
        if let Some((op, value)) = self.route_matcher() {
            m = m.with(label::HTTP_ROUTE, op, &value);
        }
        self.without_synthetic(m)
    }

    pub(crate) fn without_synthetic(&self, m: Matchers) -> Matchers {
        if self.exclude_synthetic_traffic {
            m.with(label::SYNTHETIC, Op::Ne, "true")
        } else {
            m
        }
    }

    /// `{job="svc"}` plus the configured gateways, if any.
    pub(crate) fn gateway_matchers(&self) -> Matchers {
        let m = self.job_matchers();
        match self.gateways.as_slice() {
            [] => m,
            [one] => m.with(label::GATEWAY, Op::Eq, one),
            many => m.with(
                label::GATEWAY,
                Op::Re,
                &many
                    .iter()
                    .map(|g| regex_escape(g))
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
        }
    }

    fn routes_text(&self) -> String {
        if self.routes.is_empty() {
            "all routes".to_owned()
        } else {
            let list: Vec<&str> = self.routes.iter().map(RouteMatch::display).collect();
            format!("routes {}", list.join(", "))
        }
    }

    pub(crate) fn alert(
        &self,
        name: &str,
        expr: String,
        for_: Option<Duration>,
        labels: &[(&str, &str)],
        summary: String,
        description: String,
    ) -> Rule {
        let mut all_labels = self.extra_labels.clone();
        for (k, v) in labels {
            all_labels.insert((*k).to_owned(), (*v).to_owned());
        }
        Rule::Alerting(AlertingRule {
            alert: name.to_owned(),
            expr,
            for_: for_.map(duration),
            labels: all_labels,
            annotations: BTreeMap::from([
                ("summary".to_owned(), summary),
                ("description".to_owned(), description),
                ("runbook_url".to_owned(), self.runbook_url(name)),
            ]),
        })
    }

    fn golden_signal_rules(&self) -> Vec<Rule> {
        let w = self.rate_window;
        let ws = duration(w);
        let http = self.http_matchers();
        let errors = http.clone().with(label::ERROR_TYPE, Op::Ne, "");
        let success = http.clone().with(label::ERROR_TYPE, Op::Eq, "");
        let p99 = |m: &Matchers| {
            format!(
                "histogram_quantile(0.99, sum by (job, le) (rate({})))",
                m.range(names::HTTP_SERVER_REQUEST_DURATION_BUCKET, w)
            )
        };
        let mut rules = vec![
            Rule::Recording(RecordingRule {
                record: format!("job:http_server_request_duration_seconds:p99_success_rate{ws}"),
                expr: p99(&success),
                labels: BTreeMap::new(),
            }),
            Rule::Recording(RecordingRule {
                record: format!("job:http_server_request_duration_seconds:p99_failed_rate{ws}"),
                expr: p99(&errors),
                labels: BTreeMap::new(),
            }),
        ];

        let count = names::HTTP_SERVER_REQUEST_DURATION_COUNT;
        let threshold = self.error_ratio_threshold;
        rules.push(self.alert(
            alert::HIGH_ERROR_RATE,
            format!(
                "sum by (job) (rate({}))\n/\nsum by (job) (rate({}))\n> {}",
                errors.range(count, w),
                http.range(count, w),
                num(threshold)
            ),
            Some(RATIO_FOR),
            &[("severity", "critical")],
            "{{ $labels.job }}: {{ $value | humanizePercentage }} of requests are failing".to_owned(),
            format!(
                "{{{{ $value | humanizePercentage }}}} of requests to {{{{ $labels.job }}}} ({}) failed over the last {ws}, above the {} threshold for {}. \
                 A failure is any request with a non-empty error_type: 5xx answers, and 200 answers that carry an implicit or masked failure.",
                self.routes_text(),
                pct(threshold),
                duration(RATIO_FOR)
            ),
        ));

        let latency = self.p99_latency_threshold;
        rules.push(self.alert(
            alert::HIGH_P99_LATENCY,
            format!("{}\n> {}", p99(&success), seconds(latency)),
            Some(SLOW_FOR),
            &[("severity", "warning")],
            "{{ $labels.job }}: p99 latency of successful requests is {{ $value | humanizeDuration }}".to_owned(),
            format!(
                "The 99th percentile latency of successful requests to {{{{ $labels.job }}}} ({}) was {{{{ $value | humanizeDuration }}}} over the last {ws}, above {} for {}. \
                 Failed requests are left out (failing fast is not a latency problem); their p99 is recorded as job:http_server_request_duration_seconds:p99_failed_rate{ws}.",
                self.routes_text(),
                duration(latency),
                duration(SLOW_FOR)
            ),
        ));

        let gw = self.gateway_matchers();
        let gw_failed = gw.clone().with(label::STATUS, Op::Ne, "success");
        let gw_total = names::EXTERNAL_GATEWAY_REQUESTS_TOTAL;
        let gw_threshold = self.gateway_error_ratio_threshold;
        rules.push(self.alert(
            alert::EXTERNAL_GATEWAY_ERRORS,
            format!(
                "sum by (job, gateway) (rate({}))\n/\nsum by (job, gateway) (rate({}))\n> {}",
                gw_failed.range(gw_total, w),
                gw.range(gw_total, w),
                num(gw_threshold)
            ),
            Some(RATIO_FOR),
            &[("severity", "critical")],
            "Gateway {{ $labels.gateway }}: {{ $value | humanizePercentage }} of calls from {{ $labels.job }} fail".to_owned(),
            format!(
                "{{{{ $value | humanizePercentage }}}} of calls from {{{{ $labels.job }}}} to the external gateway {{{{ $labels.gateway }}}} ended in error or timeout over the last {ws}, above the {} threshold for {}. \
                 Users are affected even if the service still answers 200 (masked failures).",
                pct(gw_threshold),
                duration(RATIO_FOR)
            ),
        ));

        let saturation = self.resource_saturation_threshold;
        rules.push(self.alert(
            alert::HIGH_SATURATION,
            format!(
                "max by (job, resource) ({})\n> {}",
                self.job_matchers()
                    .select(names::OBSERVE_RESOURCE_UTILIZATION),
                num(saturation)
            ),
            Some(SLOW_FOR),
            &[("severity", "warning")],
            "{{ $labels.job }}: {{ $labels.resource }} is {{ $value | humanizePercentage }} full".to_owned(),
            format!(
                "Resource {{{{ $labels.resource }}}} of {{{{ $labels.job }}}} has been more than {} utilized for {} (now {{{{ $value | humanizePercentage }}}}). \
                 Requests will queue or fail once it is exhausted.",
                pct(saturation),
                duration(SLOW_FOR)
            ),
        ));
        // The runtime's workers busy (observe records tokio's stable
        // metrics): requests queue behind each other before any resource
        // observe knows of is full.
        rules.push(self.alert(
            alert::HIGH_SATURATION,
            format!(
                "sum by (job, instance) (rate({}))\n/\nmax by (job, instance) ({})\n> {}",
                self.job_matchers()
                    .range(names::TOKIO_RUNTIME_WORKER_BUSY_TIME_SECONDS_TOTAL, self.rate_window),
                self.job_matchers()
                    .select(names::TOKIO_RUNTIME_WORKER_COUNT),
                num(saturation)
            ),
            Some(SLOW_FOR),
            &[("severity", "warning"), ("resource", "tokio_workers")],
            "{{ $labels.job }} on {{ $labels.instance }}: tokio workers {{ $value | humanizePercentage }} busy".to_owned(),
            format!(
                "The tokio runtime of {{{{ $labels.job }}}} on {{{{ $labels.instance }}}} has kept its workers more than {} busy for {} (now {{{{ $value | humanizePercentage }}}}). \
                 Tasks wait for a worker: latency grows for every request, before any error shows.",
                pct(saturation),
                duration(SLOW_FOR)
            ),
        ));
        if let Some(limit) = self.max_active_requests {
            rules.push(self.alert(
                alert::HIGH_SATURATION,
                format!(
                    "sum by (job, instance) ({})\n> {limit}",
                    self.job_matchers().select(names::HTTP_SERVER_ACTIVE_REQUESTS),
                ),
                Some(SLOW_FOR),
                &[("severity", "warning"), ("resource", "active_requests")],
                "{{ $labels.job }} on {{ $labels.instance }}: {{ $value | humanize }} requests in flight".to_owned(),
                format!(
                    "Instance {{{{ $labels.instance }}}} of {{{{ $labels.job }}}} has had more than {limit} requests in flight for {} (now {{{{ $value | humanize }}}}).",
                    duration(SLOW_FOR)
                ),
            ));
        }
        rules.extend(self.grpc_rules());
        rules
    }

    fn synthetic_rules(&self) -> Vec<Rule> {
        let mut rules = Vec::new();
        let n = self.synthetic_consecutive_failures;
        for flow in &self.flows {
            let window = self.synthetic_window(flow.interval);
            let m = Matchers::new().with(label::FLOW, Op::Eq, &flow.name);
            let runs = if n == 1 { "run" } else { "runs" };
            rules.push(self.alert(
                alert::SYNTHETIC_CHECK_FAILED,
                format!(
                    "max by (flow, region) (max_over_time({}))\n== 0",
                    m.range(names::SYNTHETIC_CHECK_SUCCESS, window)
                ),
                None,
                &[("severity", "critical"), ("reason", "failing")],
                "Synthetic flow {{ $labels.flow }} is failing in {{ $labels.region }}".to_owned(),
                format!(
                    "Every run of the synthetic flow {{{{ $labels.flow }}}} from {{{{ $labels.region }}}} failed during the last {} \
                     (synthetic_check_success stayed at {{{{ $value }}}}: at least {n} consecutive failed {runs} at one run every {}). \
                     Real users of this flow are failing too, or soon will be.",
                    duration(window),
                    duration(flow.interval)
                ),
            ));
            rules.push(self.alert(
                alert::SYNTHETIC_CHECK_FAILED,
                format!(
                    "absent_over_time({})",
                    m.range(names::SYNTHETIC_CHECK_SUCCESS, window)
                ),
                None,
                &[("severity", "warning"), ("reason", "no_data")],
                "Synthetic flow {{ $labels.flow }} reports no results".to_owned(),
                format!(
                    "No synthetic_check_success sample for the flow {{{{ $labels.flow }}}} in the last {} (expected one run every {}; absent = {{{{ $value }}}}). \
                     The runner is down or cannot reach Prometheus, so nothing is watching this flow.",
                    duration(window),
                    duration(flow.interval)
                ),
            ));
        }
        rules
    }

    /// Windows the SLO recording rules cover: every burn-rate window, then the period.
    pub(crate) fn slo_windows(slo: Slo) -> Vec<Duration> {
        let mut windows: Vec<Duration> = BURN_WINDOWS
            .iter()
            .flat_map(|w| [w.short, w.long])
            .collect();
        windows.sort();
        windows.dedup();
        if !windows.contains(&slo.period) {
            windows.push(slo.period);
        }
        windows
    }

    /// PromQL of an SLO's error ratio over `window`, on the SDK's raw metrics.
    pub(crate) fn slo_error_ratio(&self, kind: SloKind, window: Duration) -> String {
        let http = self.http_matchers();
        let count = names::HTTP_SERVER_REQUEST_DURATION_COUNT;
        match kind {
            SloKind::Availability => format!(
                "sum by (job) (rate({}))\n/\nsum by (job) (rate({}))",
                http.clone()
                    .with(label::ERROR_TYPE, Op::Ne, "")
                    .range(count, window),
                http.range(count, window)
            ),
            SloKind::Latency => {
                let success = http.with(label::ERROR_TYPE, Op::Eq, "");
                let threshold = self.latency.map(|l| l.threshold).unwrap_or_default();
                format!(
                    "1 - (\n  sum by (job) (rate({}))\n  /\n  sum by (job) (rate({}))\n)",
                    success
                        .clone()
                        .with(label::LE, Op::Re, &le_regex(threshold))
                        .range(names::HTTP_SERVER_REQUEST_DURATION_BUCKET, window),
                    success.range(count, window)
                )
            }
        }
    }

    fn slo_rules(&self, kind: SloKind, slo: Slo) -> Vec<Rule> {
        let k = kind.as_str();
        let budget = promql::round_sig(1.0 - slo.target);
        let period = duration(slo.period);
        let job = self.job_matchers();
        let mut rules: Vec<Rule> = Self::slo_windows(slo)
            .into_iter()
            .map(|w| {
                Rule::Recording(RecordingRule {
                    record: slo_ratio_record(kind, w),
                    expr: self.slo_error_ratio(kind, w),
                    labels: BTreeMap::new(),
                })
            })
            .collect();
        rules.push(Rule::Recording(RecordingRule {
            record: format!("job:slo_{k}_error_budget_remaining:ratio{period}"),
            expr: format!(
                "1 - {} / {}",
                job.select(&slo_ratio_record(kind, slo.period)),
                num(budget)
            ),
            labels: BTreeMap::new(),
        }));

        let objective = match (kind, self.latency) {
            (SloKind::Latency, Some(l)) => format!(
                "{} of successful requests within {} over {period}",
                pct(slo.target),
                duration(l.threshold)
            ),
            _ => format!("{} of requests succeed over {period}", pct(slo.target)),
        };
        let bad = match kind {
            SloKind::Availability => "failed requests",
            SloKind::Latency => "successful requests slower than the threshold",
        };
        let counted = match kind {
            SloKind::Availability => "requests",
            SloKind::Latency => "successful requests",
        };
        for w in &BURN_WINDOWS {
            rules.push(self.burn_alert(kind, slo, *w, budget, &objective, (counted, bad)));
        }
        rules
    }

    fn burn_alert(
        &self,
        kind: SloKind,
        slo: Slo,
        w: BurnWindow,
        budget: f64,
        objective: &str,
        (counted, bad): (&str, &str),
    ) -> Rule {
        let k = kind.as_str();
        let job = self.job_matchers();
        let factor = w.factor(slo.period);
        let (long, short, period) = (duration(w.long), duration(w.short), duration(slo.period));
        let expr = format!(
            "{} / {budget} > {factor}\nand\n{} / {budget} > {factor}",
            job.select(&slo_ratio_record(kind, w.long)),
            job.select(&slo_ratio_record(kind, w.short)),
            budget = num(budget),
            factor = num(factor),
        );
        let period_hours = num(slo.period.as_secs_f64() / 3600.0);
        let long_hours = num(w.long.as_secs_f64() / 3600.0);
        let exhausted = Duration::from_secs_f64(slo.period.as_secs_f64() / factor);
        let severity = if w.page { "critical" } else { "warning" };
        let action = if w.page { "page" } else { "ticket" };
        self.alert(
            alert::ERROR_BUDGET_BURN,
            expr,
            None,
            &[
                ("severity", severity),
                ("slo", k),
                ("long_window", &long),
                ("short_window", &short),
            ],
            format!(
                "{{{{ $labels.job }}}}: {k} error budget burning {{{{ $value | humanize }}}}x too fast ({long}/{short} windows, {action})"
            ),
            format!(
                "SLO: {objective}, so the error budget is 1 - {} = {} of {counted}. \
                 Over the last {long} the share of {bad} was {{{{ $value | humanize }}}} times that budget, and it is above {factor}x over the last {short} too. \
                 Threshold: {factor}x = {} of the {period} budget spent in {long} ({} x {period_hours}h / {long_hours}h = {factor}), i.e. an error ratio above {factor} x {} = {}. \
                 At {factor}x the whole budget is gone in {period} / {factor} = {}.",
                pct(slo.target),
                pct(budget),
                pct(w.budget_fraction),
                num(w.budget_fraction),
                pct(budget),
                pct(factor * budget),
                duration(round_to_minute(exhausted)),
                factor = num(factor),
            ),
        )
    }
}

fn round_to_minute(d: Duration) -> Duration {
    Duration::from_secs((d.as_secs_f64() / 60.0).round() as u64 * 60)
}

/// Regex matching the `le` label of the bucket whose upper bound is
/// `threshold`, in both spellings: Prometheus 2 stores the exporter's `1`,
/// Prometheus 3 normalises it to `1.0`.
pub(crate) fn le_regex(threshold: Duration) -> String {
    let s = seconds(threshold);
    if s.contains('.') {
        regex_escape(&s)
    } else {
        format!("{s}|{s}\\.0")
    }
}
