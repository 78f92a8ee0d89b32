//! Grafana dashboard generated from the same [`AlertSpec`] as the rules.

use serde_json::{json, Value};

use super::generate::SloKind;
use super::names::{self, label, ERROR_TYPE_MASKED_FAILURE};
use super::promql::{duration, num, Matchers, Op};
use super::spec::{AlertSpec, RouteMatch, Slo};

/// Grafana `schemaVersion` the dashboard is written in (Grafana 10.4 / 11).
pub const GRAFANA_SCHEMA_VERSION: u64 = 39;

/// Name of the dashboard's data source variable; every panel and query uses `${datasource}`.
pub const DATASOURCE_VARIABLE: &str = "datasource";

const WIDTH: u64 = 8;
const HEIGHT: u64 = 8;

struct Board {
    panels: Vec<Value>,
    next_id: u64,
    x: u64,
    y: u64,
}

struct Target<'a> {
    expr: String,
    legend: &'a str,
}

fn t(expr: String, legend: &str) -> Target<'_> {
    Target { expr, legend }
}

fn datasource() -> Value {
    json!({ "type": "prometheus", "uid": format!("${{{DATASOURCE_VARIABLE}}}") })
}

impl Board {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn row(&mut self, title: &str) {
        if self.x > 0 {
            self.y += HEIGHT;
            self.x = 0;
        }
        let id = self.id();
        self.panels.push(json!({
            "id": id,
            "type": "row",
            "title": title,
            "collapsed": false,
            "gridPos": { "h": 1, "w": 24, "x": 0, "y": self.y },
            "panels": []
        }));
        self.y += 1;
    }

    fn place(&mut self) -> Value {
        if self.x + WIDTH > 24 {
            self.x = 0;
            self.y += HEIGHT;
        }
        let pos = json!({ "h": HEIGHT, "w": WIDTH, "x": self.x, "y": self.y });
        self.x += WIDTH;
        pos
    }

    /// Queries of a panel: range queries, or instant ones (`instant`).
    fn targets(targets: &[Target<'_>], instant: bool) -> Value {
        let ref_ids = ["A", "B", "C", "D", "E", "F", "G", "H"];
        Value::Array(
            targets
                .iter()
                .enumerate()
                .map(|(i, target)| {
                    json!({
                        "refId": ref_ids.get(i).copied().unwrap_or("Z"),
                        "datasource": datasource(),
                        "editorMode": "code",
                        "expr": target.expr,
                        "legendFormat": target.legend,
                        "instant": instant,
                        "range": !instant
                    })
                })
                .collect(),
        )
    }

    fn timeseries(&mut self, title: &str, description: &str, unit: &str, targets: &[Target<'_>]) {
        self.timeseries_with(title, description, unit, targets, Vec::new());
    }

    /// A time series panel; `lines` are red threshold lines (alert thresholds).
    fn timeseries_with(
        &mut self,
        title: &str,
        description: &str,
        unit: &str,
        targets: &[Target<'_>],
        lines: Vec<f64>,
    ) {
        let id = self.id();
        let grid = self.place();
        let mut steps = vec![json!({ "color": "green", "value": null })];
        steps.extend(lines.iter().map(|v| json!({ "color": "red", "value": v })));
        let mode = if lines.is_empty() { "off" } else { "line" };
        self.panels.push(json!({
            "id": id,
            "type": "timeseries",
            "title": title,
            "description": description,
            "datasource": datasource(),
            "gridPos": grid,
            "fieldConfig": {
                "defaults": {
                    "unit": unit,
                    "custom": { "drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "thresholdsStyle": { "mode": mode } },
                    "thresholds": { "mode": "absolute", "steps": steps }
                },
                "overrides": []
            },
            "options": {
                "legend": { "displayMode": "list", "placement": "bottom", "showLegend": true },
                "tooltip": { "mode": "multi", "sort": "desc" }
            },
            "targets": Self::targets(targets, false)
        }));
    }

    fn stat(&mut self, title: &str, description: &str, unit: &str, target: Target<'_>) {
        let id = self.id();
        let grid = self.place();
        self.panels.push(json!({
            "id": id,
            "type": "stat",
            "title": title,
            "description": description,
            "datasource": datasource(),
            "gridPos": grid,
            "fieldConfig": {
                "defaults": {
                    "unit": unit,
                    "thresholds": { "mode": "absolute", "steps": [
                        { "color": "red", "value": null },
                        { "color": "orange", "value": 0 },
                        { "color": "green", "value": 0.25 }
                    ] }
                },
                "overrides": []
            },
            "options": {
                "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
                "colorMode": "background",
                "graphMode": "area",
                "textMode": "auto"
            },
            // An instant query: a 30-day rate() at every step of a range would be wasted work.
            "targets": Self::targets(&[target], true)
        }));
    }
}

impl AlertSpec {
    /// Generates a Grafana dashboard (JSON model, `schemaVersion` 39) from the
    /// same description as [`AlertSpec::prometheus_rules`]: a service row
    /// (error ratio, saturation, masked failures), one row per route with its
    /// golden signals (errors split into status-code, implicit and masked
    /// failures), one row per gateway, the synthetic flows, and the SLOs'
    /// error budget remaining and burn rates.
    ///
    /// Every panel queries the data source chosen in the `${datasource}`
    /// variable, and only the SDK's own metrics (no recording rules), so the
    /// dashboard works before the rule file is loaded.
    ///
    /// ```
    /// use observe_alerts::AlertSpec;
    ///
    /// let spec = AlertSpec::builder("payment-service")
    ///     .route("/pay")
    ///     .gateway("bank")
    ///     .runbook_base_url("https://runbooks.example.com/observe")
    ///     .build()?;
    /// let dashboard = spec.grafana_dashboard();
    /// assert_eq!(dashboard["schemaVersion"], 39);
    /// assert!(dashboard["panels"].as_array().is_some_and(|p| !p.is_empty()));
    /// # Ok::<(), observe_alerts::AlertSpecError>(())
    /// ```
    pub fn grafana_dashboard(&self) -> Value {
        let mut b = Board {
            panels: Vec::new(),
            next_id: 0,
            x: 0,
            y: 0,
        };
        self.service_row(&mut b);
        if self.routes.is_empty() {
            self.route_row(&mut b, "All routes", "all routes", self.http_matchers());
        } else {
            for route in &self.routes {
                let (op, value, title) = match route {
                    RouteMatch::Exact(r) => (Op::Eq, r, format!("Route {r}")),
                    RouteMatch::Pattern(p) => (Op::Re, p, format!("Routes matching {p}")),
                };
                let m =
                    self.without_synthetic(self.job_matchers().with(label::HTTP_ROUTE, op, value));
                self.route_row(&mut b, &title, value, m);
            }
        }
        for method in &self.grpc_methods {
            let (op, value, title) = match method {
                RouteMatch::Exact(m) => (Op::Eq, m, format!("gRPC {m}")),
                RouteMatch::Pattern(p) => (Op::Re, p, format!("gRPC methods matching {p}")),
            };
            let m = self.without_synthetic(
                self.job_matchers()
                    .with(label::RPC_SYSTEM_NAME, Op::Eq, "grpc")
                    .with(label::RPC_METHOD, op, value),
            );
            self.grpc_row(&mut b, &title, value, m);
        }
        for gateway in &self.gateways {
            self.gateway_row(&mut b, gateway);
        }
        if !self.flows.is_empty() {
            self.synthetic_row(&mut b);
        }
        if self.availability.is_some() || self.latency.is_some() {
            self.slo_row(&mut b);
        }

        let uid: String = format!("observe-{}", self.service)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        json!({
            "uid": uid,
            "title": format!("{} — golden signals", self.service),
            "description": format!("Generated by observe::alerts for the service {} (job label).", self.service),
            "tags": ["observe", "golden-signals", self.service],
            "editable": true,
            "graphTooltip": 1,
            "fiscalYearStartMonth": 0,
            "liveNow": false,
            "refresh": "30s",
            "schemaVersion": GRAFANA_SCHEMA_VERSION,
            "version": 1,
            "time": { "from": "now-6h", "to": "now" },
            "timepicker": {},
            "timezone": "browser",
            "links": [{
                "title": "Runbooks",
                "type": "link",
                "url": self.runbook_base_url,
                "targetBlank": true,
                "icon": "doc",
                "tooltip": "",
                "asDropdown": false,
                "includeVars": false,
                "keepTime": false,
                "tags": []
            }],
            "annotations": { "list": [{
                "builtIn": 1,
                "datasource": { "type": "grafana", "uid": "-- Grafana --" },
                "enable": true,
                "hide": true,
                "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts",
                "type": "dashboard"
            }] },
            "templating": { "list": [{
                "name": DATASOURCE_VARIABLE,
                "label": "Data source",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
                "hide": 0,
                "includeAll": false,
                "multi": false,
                "options": [],
                "refresh": 1,
                "regex": "",
                "skipUrlSync": false
            }] },
            "panels": b.panels
        })
    }

    fn service_row(&self, b: &mut Board) {
        let w = self.rate_window;
        let count = names::HTTP_SERVER_REQUEST_DURATION_COUNT;
        let http = self.http_matchers();
        b.row(&format!("Service {}", self.service));
        b.timeseries_with(
            "Error ratio (HighErrorRate)",
            "Share of requests with a non-empty error_type (explicit, implicit and masked failures); the red line is the alert threshold.",
            "percentunit",
            &[t(
                format!(
                    "sum by (job) (rate({}))\n/\nsum by (job) (rate({}))",
                    http.clone()
                        .with(label::ERROR_TYPE, Op::Ne, "")
                        .range(count, w),
                    http.range(count, w)
                ),
                "error ratio",
            )],
            vec![self.error_ratio_threshold],
        );
        let job = self.job_matchers();
        let mut saturation = vec![t(
            format!(
                "max by (resource) ({})",
                job.select(names::OBSERVE_RESOURCE_UTILIZATION)
            ),
            "{{resource}}",
        )];
        saturation.push(t(
            format!(
                "sum by (instance) (rate({}))\n/\nmax by (instance) ({})",
                job.range(names::TOKIO_RUNTIME_WORKER_BUSY_TIME_SECONDS_TOTAL, w),
                job.select(names::TOKIO_RUNTIME_WORKER_COUNT)
            ),
            "tokio workers busy ({{instance}})",
        ));
        if self.max_active_requests.is_some() {
            saturation.push(t(
                format!(
                    "sum by (instance) ({}) / {}",
                    job.select(names::HTTP_SERVER_ACTIVE_REQUESTS),
                    self.max_active_requests.unwrap_or(1)
                ),
                "active requests / limit ({{instance}})",
            ));
        }
        b.timeseries_with(
            "Saturation (HighSaturation)",
            "How full the most constrained resources are (0..1).",
            "percentunit",
            &saturation,
            vec![self.resource_saturation_threshold],
        );
        b.timeseries(
            "Masked failures",
            "Failures a handler turned into a success answer, by route and gateway.",
            "reqps",
            &[t(
                format!(
                    "sum by (http_route, gateway) (rate({}))",
                    job.range(names::OBSERVE_MASKED_FAILURES_TOTAL, w)
                ),
                "{{http_route}} via {{gateway}}",
            )],
        );
    }

    fn route_row(&self, b: &mut Board, title: &str, short: &str, m: Matchers) {
        let w = self.rate_window;
        let count = names::HTTP_SERVER_REQUEST_DURATION_COUNT;
        let bucket = names::HTTP_SERVER_REQUEST_DURATION_BUCKET;
        b.row(title);
        b.timeseries(
            &format!("Traffic — {short}"),
            "Requests per second by route and status code (synthetic traffic excluded).",
            "reqps",
            &[t(
                format!(
                    "sum by (http_route, http_response_status_code) (rate({}))",
                    m.range(count, w)
                ),
                "{{http_route}} {{http_response_status_code}}",
            )],
        );
        let total = format!("sum by (http_route) (rate({}))", m.range(count, w));
        let failed = m.clone().with(label::ERROR_TYPE, Op::Ne, "");
        let status_code = failed
            .clone()
            .with(label::HTTP_RESPONSE_STATUS_CODE, Op::Re, "[45]..");
        let implicit = failed
            .with(label::ERROR_TYPE, Op::Ne, ERROR_TYPE_MASKED_FAILURE)
            .with(label::HTTP_RESPONSE_STATUS_CODE, Op::Nre, "[45]..");
        let masked = m
            .clone()
            .with(label::ERROR_TYPE, Op::Eq, ERROR_TYPE_MASKED_FAILURE)
            .with(label::HTTP_RESPONSE_STATUS_CODE, Op::Nre, "[45]..");
        let ratio = |sel: &Matchers| {
            format!(
                "sum by (http_route) (rate({}))\n/\n{total}",
                sel.range(count, w)
            )
        };
        b.timeseries_with(
            &format!("Errors — {short}"),
            "Failing share of requests, split into status-code failures (4xx/5xx with error_type), implicit failures (success status with error_type) and masked failures (error_type=\"masked_failure\").",
            "percentunit",
            &[
                t(ratio(&status_code), "{{http_route}} status code"),
                t(ratio(&implicit), "{{http_route}} implicit"),
                t(ratio(&masked), "{{http_route}} masked"),
            ],
            vec![self.error_ratio_threshold],
        );
        let quantile = |q: &str, sel: &Matchers| {
            format!(
                "histogram_quantile({q}, sum by (http_route, le) (rate({})))",
                sel.range(bucket, w)
            )
        };
        let ok = m.clone().with(label::ERROR_TYPE, Op::Eq, "");
        let ko = m.with(label::ERROR_TYPE, Op::Ne, "");
        b.timeseries_with(
            &format!("Latency — {short}"),
            "p50 and p99 of successful requests, and p99 of failed requests, which is tracked apart (failing fast is not a latency problem).",
            "s",
            &[
                t(quantile("0.5", &ok), "{{http_route}} p50 success"),
                t(quantile("0.99", &ok), "{{http_route}} p99 success"),
                t(quantile("0.99", &ko), "{{http_route}} p99 failed"),
            ],
            vec![self.p99_latency_threshold.as_secs_f64()],
        );
    }

    /// Traffic by status code, errors (server-error codes, implicit, masked)
    /// and latency of one gRPC method entry.
    fn grpc_row(&self, b: &mut Board, title: &str, short: &str, m: Matchers) {
        let w = self.rate_window;
        let count = names::RPC_SERVER_CALL_DURATION_COUNT;
        let bucket = names::RPC_SERVER_CALL_DURATION_BUCKET;
        b.row(title);
        b.timeseries(
            &format!("Traffic — {short}"),
            "gRPC calls per second by method and status code (synthetic traffic excluded).",
            "reqps",
            &[t(
                format!(
                    "sum by (rpc_method, rpc_response_status_code) (rate({}))",
                    m.range(count, w)
                ),
                "{{rpc_method}} {{rpc_response_status_code}}",
            )],
        );
        let total = format!("sum by (rpc_method) (rate({}))", m.range(count, w));
        let failed = m.clone().with(label::ERROR_TYPE, Op::Ne, "");
        let ok_status = |sel: Matchers| sel.with(label::RPC_RESPONSE_STATUS_CODE, Op::Eq, "OK");
        let status_code = failed
            .clone()
            .with(label::RPC_RESPONSE_STATUS_CODE, Op::Ne, "OK");
        let implicit = ok_status(failed.with(label::ERROR_TYPE, Op::Ne, ERROR_TYPE_MASKED_FAILURE));
        let masked = ok_status(m.clone().with(
            label::ERROR_TYPE,
            Op::Eq,
            ERROR_TYPE_MASKED_FAILURE,
        ));
        let ratio = |sel: &Matchers| {
            format!(
                "sum by (rpc_method) (rate({}))\n/\n{total}",
                sel.range(count, w)
            )
        };
        b.timeseries_with(
            &format!("Errors — {short}"),
            "Failing share of gRPC calls, split into server-error codes and panics (error_type without an OK status), implicit failures (OK with error_type) and masked failures (error_type=\"masked_failure\").",
            "percentunit",
            &[
                t(ratio(&status_code), "{{rpc_method}} status code"),
                t(ratio(&implicit), "{{rpc_method}} implicit"),
                t(ratio(&masked), "{{rpc_method}} masked"),
            ],
            vec![self.error_ratio_threshold],
        );
        let quantile = |q: &str, sel: &Matchers| {
            format!(
                "histogram_quantile({q}, sum by (rpc_method, le) (rate({})))",
                sel.range(bucket, w)
            )
        };
        let ok = m.clone().with(label::ERROR_TYPE, Op::Eq, "");
        let ko = m.with(label::ERROR_TYPE, Op::Ne, "");
        b.timeseries_with(
            &format!("Latency — {short}"),
            "p50 and p99 of successful gRPC calls (a streaming call lasts until its stream ends), and p99 of failed calls.",
            "s",
            &[
                t(quantile("0.5", &ok), "{{rpc_method}} p50 success"),
                t(quantile("0.99", &ok), "{{rpc_method}} p99 success"),
                t(quantile("0.99", &ko), "{{rpc_method}} p99 failed"),
            ],
            vec![self.p99_latency_threshold.as_secs_f64()],
        );
    }

    fn gateway_row(&self, b: &mut Board, gateway: &str) {
        let w = self.rate_window;
        let total = names::EXTERNAL_GATEWAY_REQUESTS_TOTAL;
        let m = self.job_matchers().with(label::GATEWAY, Op::Eq, gateway);
        let failed = m.clone().with(label::STATUS, Op::Ne, "success");
        b.row(&format!("Gateway {gateway}"));
        b.timeseries_with(
            &format!("Failure ratio — {gateway} (ExternalGatewayErrors)"),
            "Share of gateway calls that ended in error or timeout; the red line is the alert threshold.",
            "percentunit",
            &[
                t(
                    format!(
                        "sum by (gateway) (rate({}))\n/\nsum by (gateway) (rate({}))",
                        failed.range(total, w),
                        m.range(total, w)
                    ),
                    "all failures",
                ),
                t(
                    format!(
                        "sum by (status) (rate({}))\n/ ignoring (status) group_left\nsum (rate({}))",
                        failed.range(total, w),
                        m.range(total, w)
                    ),
                    "{{status}}",
                ),
            ],
            vec![self.gateway_error_ratio_threshold],
        );
        let bucket = names::EXTERNAL_GATEWAY_REQUEST_DURATION_BUCKET;
        b.timeseries(
            &format!("Latency — {gateway}"),
            "p50 and p99 duration of gateway calls, by outcome.",
            "s",
            &[
                t(
                    format!(
                        "histogram_quantile(0.5, sum by (status, le) (rate({})))",
                        m.range(bucket, w)
                    ),
                    "p50 {{status}}",
                ),
                t(
                    format!(
                        "histogram_quantile(0.99, sum by (status, le) (rate({})))",
                        m.range(bucket, w)
                    ),
                    "p99 {{status}}",
                ),
            ],
        );
        b.timeseries(
            &format!("Calls — {gateway}"),
            "Gateway calls per second by status and error type.",
            "reqps",
            &[t(
                format!("sum by (status, error_type) (rate({}))", m.range(total, w)),
                "{{status}} {{error_type}}",
            )],
        );
    }

    fn synthetic_row(&self, b: &mut Board) {
        b.row("Synthetic flows");
        for flow in &self.flows {
            let m = Matchers::new().with(label::FLOW, Op::Eq, &flow.name);
            // At least a few runs per window, whatever the runner interval.
            let w = self.rate_window.max(flow.interval.saturating_mul(4));
            let name = &flow.name;
            b.timeseries(
                &format!("Synthetic {name} — success (SyntheticCheckFailed)"),
                "1 when the last run of the flow succeeded, per region.",
                "none",
                &[t(
                    format!(
                        "min by (region) ({})",
                        m.select(names::SYNTHETIC_CHECK_SUCCESS)
                    ),
                    "{{region}}",
                )],
            );
            b.timeseries(
                &format!("Synthetic {name} — step duration p95"),
                "95th percentile duration of each step of the flow.",
                "s",
                &[t(
                    format!(
                        "histogram_quantile(0.95, sum by (step, le) (rate({})))",
                        m.range(names::SYNTHETIC_CHECK_DURATION_BUCKET, w)
                    ),
                    "{{step}}",
                )],
            );
            b.timeseries(
                &format!("Synthetic {name} — failed steps"),
                &format!(
                    "Steps that did not succeed, per region, over {}.",
                    duration(w)
                ),
                "short",
                &[t(
                    format!(
                        "sum by (step, region) (increase({}))",
                        m.clone()
                            .with(label::OUTCOME, Op::Ne, "success")
                            .range(names::SYNTHETIC_CHECKS_TOTAL, w)
                    ),
                    "{{step}} {{region}}",
                )],
            );
        }
    }

    fn slo_row(&self, b: &mut Board) {
        b.row("SLOs and error budgets");
        let mut slos: Vec<(SloKind, Slo)> = Vec::new();
        if let Some(a) = self.availability {
            slos.push((SloKind::Availability, a));
        }
        if let Some(l) = self.latency {
            slos.push((SloKind::Latency, l.slo));
        }
        let mut burn = Vec::new();
        for (kind, slo) in &slos {
            let budget = num(1.0 - slo.target);
            let k = kind.as_str();
            b.stat(
                &format!("{k} error budget remaining ({})", duration(slo.period)),
                &format!(
                    "1 - (error ratio over {}) / (1 - {}). Below 0 the SLO is missed.",
                    duration(slo.period),
                    num(slo.target)
                ),
                "percentunit",
                t(
                    format!(
                        "1 - (\n{}\n) / {budget}",
                        self.slo_error_ratio(*kind, slo.period)
                    ),
                    k,
                ),
            );
            for w in [3600u64, 6 * 3600] {
                let window = std::time::Duration::from_secs(w);
                burn.push((
                    format!("(\n{}\n) / {budget}", self.slo_error_ratio(*kind, window)),
                    format!("{k} {}", duration(window)),
                ));
            }
        }
        let targets: Vec<Target<'_>> = burn.iter().map(|(e, l)| t(e.clone(), l)).collect();
        let lines = slos
            .first()
            .map(|(_, slo)| {
                super::spec::BURN_WINDOWS[..2]
                    .iter()
                    .map(|w| w.factor(slo.period))
                    .collect()
            })
            .unwrap_or_default();
        b.timeseries_with(
            "Burn rate (ErrorBudgetBurn)",
            "Error ratio divided by the error budget over 1h and 6h: 1 spends exactly the budget over the SLO period; the red lines are the paging burn rates.",
            "none",
            &targets,
            lines,
        );
    }
}
