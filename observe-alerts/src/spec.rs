//! The declarative description ([`AlertSpec`]), its builder and its validation.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Why an [`AlertSpec`] description was rejected. Every variant names the
/// offending builder field, so a bad description never turns into a silently
/// wrong rule.
///
/// ```
/// use observe_alerts::{AlertSpec, AlertSpecError};
/// use std::time::Duration;
///
/// let err = AlertSpec::builder("payment-service")
///     .runbook_base_url("https://runbooks.example.com/observe")
///     .availability_slo(1.0, Duration::from_secs(30 * 86_400))
///     .build()
///     .unwrap_err();
/// assert!(matches!(err, AlertSpecError::InvalidSloTarget { ref field, .. } if field == "availability_slo.target"));
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AlertSpecError {
    /// The service name (the `job` label) is empty or blank.
    #[error("`service` must not be empty: it is the `job` label every rule selects on")]
    EmptyService,
    /// A route, gateway, flow or label name is empty.
    #[error("`{field}` must not be empty")]
    EmptyName {
        /// The builder field.
        field: String,
    },
    /// The same route, gateway or flow was given twice.
    #[error("`{field}`: {value:?} is given twice")]
    Duplicate {
        /// The builder field.
        field: String,
        /// The repeated value.
        value: String,
    },
    /// A ratio threshold is not strictly between 0 and 1 (or is NaN).
    #[error("`{field}` = {value} must be a ratio strictly between 0 and 1")]
    ThresholdOutOfRange {
        /// The builder field.
        field: String,
        /// The rejected value.
        value: f64,
    },
    /// An SLO target is not strictly between 0 and 1; a target of 100% leaves no error budget.
    #[error(
        "`{field}` = {value} must be strictly between 0 and 1 (a target of 100% leaves no error budget to alert on)"
    )]
    InvalidSloTarget {
        /// The builder field.
        field: String,
        /// The rejected value.
        value: f64,
    },
    /// A query window is too short for the scrape interval to put enough samples in it.
    #[error(
        "`{field}`: window {window:?} is shorter than {min_scrapes} scrape interval(s) of {scrape_interval:?}"
    )]
    WindowTooShort {
        /// The builder field.
        field: String,
        /// The window the field leads to.
        window: Duration,
        /// The configured scrape interval.
        scrape_interval: Duration,
        /// How many scrape intervals the window must span (2 for `rate()`).
        min_scrapes: u32,
    },
    /// A duration that must be positive is zero.
    #[error("`{field}` must be longer than zero")]
    ZeroDuration {
        /// The builder field.
        field: String,
    },
    /// A count that must be positive is zero.
    #[error("`{field}` must be at least 1")]
    ZeroCount {
        /// The builder field.
        field: String,
    },
    /// The SLO period is not longer than the longest burn-rate window (3d).
    #[error("`{field}` = {period:?} must be longer than the longest burn-rate window ({longest_window:?})")]
    SloPeriodTooShort {
        /// The builder field.
        field: String,
        /// The rejected period.
        period: Duration,
        /// The longest burn-rate window.
        longest_window: Duration,
    },
    /// The latency SLO threshold is not a bucket boundary, so no bucket could count "good" requests.
    #[error(
        "`{field}` = {threshold_seconds}s is not a bucket boundary of http_server_request_duration_seconds {buckets:?}; set `histogram_buckets` if the SDK was configured with other boundaries"
    )]
    LatencyThresholdNotABucket {
        /// The builder field.
        field: String,
        /// The rejected threshold, in seconds.
        threshold_seconds: f64,
        /// The known bucket boundaries, in seconds.
        buckets: Vec<f64>,
    },
    /// A burn-rate alert would need an error ratio above 100%, so it could never fire.
    #[error(
        "`{field}` = {target}: the {burn_rate}x burn-rate alert would need an error ratio of {required} (> 1) and could never fire; use a stricter target or a longer period"
    )]
    UnreachableBurnRate {
        /// The builder field.
        field: String,
        /// The SLO target.
        target: f64,
        /// The burn-rate factor.
        burn_rate: f64,
        /// The error ratio the alert would need.
        required: f64,
    },
    /// The runbook base URL is missing or not an http(s) URL.
    #[error("`runbook_base_url` = {value:?} must be an http:// or https:// URL (every alert links a runbook)")]
    InvalidRunbookUrl {
        /// The rejected value.
        value: String,
    },
    /// A label name is not a valid Prometheus label name, or is reserved.
    #[error("`{field}`: {name:?} is not a usable alert label name ({reason})")]
    InvalidLabelName {
        /// The builder field.
        field: String,
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The histogram bucket boundaries are empty, not positive, or not increasing.
    #[error(
        "`{field}` must be a non-empty, strictly increasing list of positive, finite boundaries"
    )]
    InvalidBuckets {
        /// The builder field.
        field: String,
    },
}

/// Which requests a route entry (an `http_route` value) or a gRPC method
/// entry (an `rpc_method` value) selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RouteMatch {
    /// An exact value, e.g. `/orders/{id}` or `shop.v1.Payments/Charge`.
    Exact(String),
    /// An RE2 regular expression over the label, anchored by Prometheus.
    Pattern(String),
}

impl RouteMatch {
    pub(crate) fn display(&self) -> &str {
        match self {
            RouteMatch::Exact(s) | RouteMatch::Pattern(s) => s,
        }
    }
}

/// A synthetic flow and how often its runner runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntheticFlow {
    pub(crate) name: String,
    pub(crate) interval: Duration,
}

/// An SLO: target ratio of good events over a period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Slo {
    pub(crate) target: f64,
    pub(crate) period: Duration,
}

/// A latency SLO: target ratio of successful requests faster than `threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LatencySlo {
    pub(crate) slo: Slo,
    pub(crate) threshold: Duration,
}

/// One multi-window, multi-burn-rate alert of the Google SRE workbook.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BurnWindow {
    /// Share of the period's error budget this alert tolerates spending in `long`.
    pub(crate) budget_fraction: f64,
    pub(crate) long: Duration,
    pub(crate) short: Duration,
    /// `true` pages (critical), `false` opens a ticket (warning).
    pub(crate) page: bool,
}

const HOUR: u64 = 3600;

/// The workbook's table: 2% of the budget in 1h (14.4x over 30d) and 5% in
/// 6h (6x) page; 10% in 3d (1x) opens a ticket.
pub(crate) const BURN_WINDOWS: [BurnWindow; 3] = [
    BurnWindow {
        budget_fraction: 0.02,
        long: Duration::from_secs(HOUR),
        short: Duration::from_secs(5 * 60),
        page: true,
    },
    BurnWindow {
        budget_fraction: 0.05,
        long: Duration::from_secs(6 * HOUR),
        short: Duration::from_secs(30 * 60),
        page: true,
    },
    BurnWindow {
        budget_fraction: 0.10,
        long: Duration::from_secs(72 * HOUR),
        short: Duration::from_secs(6 * HOUR),
        page: false,
    },
];

impl BurnWindow {
    /// The burn-rate factor for an SLO `period`: `budget_fraction * period / long`
    /// (14.4, 6 and 1 for 30 days), rounded to 12 significant digits.
    pub(crate) fn factor(&self, period: Duration) -> f64 {
        super::promql::round_sig(
            self.budget_fraction * period.as_secs_f64() / self.long.as_secs_f64(),
        )
    }
}

/// Boundaries (seconds) of `http.server.request.duration` recommended by the
/// OpenTelemetry HTTP semantic conventions (the ones observe records with),
/// used unless `histogram_buckets` says otherwise.
pub use observe_core::signals::names::HTTP_DURATION_BUCKETS as DEFAULT_HTTP_DURATION_BUCKETS;

/// A validated description of one service's alerting: what to watch and
/// which thresholds and objectives apply. Build it with [`AlertSpec::builder`],
/// then generate [`AlertSpec::prometheus_rules`] and [`AlertSpec::grafana_dashboard`].
///
/// ```
/// use observe_alerts::AlertSpec;
/// use std::time::Duration;
///
/// let spec = AlertSpec::builder("payment-service")
///     .route("/pay")
///     .route("/orders")
///     .gateway("bank")
///     .synthetic_flow("checkout", Duration::from_secs(60))
///     .availability_slo(0.999, Duration::from_secs(30 * 86_400))
///     .latency_slo(0.99, Duration::from_secs(1), Duration::from_secs(30 * 86_400))
///     .runbook_base_url("https://runbooks.example.com/observe")
///     .build()?;
/// assert_eq!(spec.service(), "payment-service");
/// # Ok::<(), observe_alerts::AlertSpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSpec {
    pub(crate) service: String,
    pub(crate) routes: Vec<RouteMatch>,
    /// gRPC methods (`rpc_method` values); none: no gRPC rules.
    pub(crate) grpc_methods: Vec<RouteMatch>,
    pub(crate) gateways: Vec<String>,
    pub(crate) flows: Vec<SyntheticFlow>,
    pub(crate) availability: Option<Slo>,
    pub(crate) latency: Option<LatencySlo>,
    pub(crate) error_ratio_threshold: f64,
    pub(crate) p99_latency_threshold: Duration,
    pub(crate) gateway_error_ratio_threshold: f64,
    pub(crate) resource_saturation_threshold: f64,
    pub(crate) max_active_requests: Option<u64>,
    pub(crate) synthetic_consecutive_failures: u32,
    pub(crate) scrape_interval: Duration,
    pub(crate) rate_window: Duration,
    pub(crate) exclude_synthetic_traffic: bool,
    pub(crate) histogram_buckets: Vec<f64>,
    pub(crate) runbook_base_url: String,
    pub(crate) extra_labels: BTreeMap<String, String>,
}

impl AlertSpec {
    /// Starts describing the alerts of `service` (the `job` label of its metrics).
    ///
    /// ```
    /// use observe_alerts::AlertSpec;
    ///
    /// let builder = AlertSpec::builder("payment-service");
    /// assert!(builder.build().is_err()); // no runbook_base_url yet
    /// ```
    pub fn builder(service: impl Into<String>) -> AlertSpecBuilder {
        AlertSpecBuilder::new(service.into())
    }

    /// The service (`job` label) the rules select.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The runbook link an alert named `alert` carries: `<runbook_base_url>/<alert>`.
    ///
    /// ```
    /// # use observe_alerts::AlertSpec;
    /// let spec = AlertSpec::builder("svc")
    ///     .runbook_base_url("https://runbooks.example.com/observe/")
    ///     .build()?;
    /// assert_eq!(spec.runbook_url("HighErrorRate"), "https://runbooks.example.com/observe/HighErrorRate");
    /// # Ok::<(), observe_alerts::AlertSpecError>(())
    /// ```
    pub fn runbook_url(&self, alert: &str) -> String {
        format!("{}/{alert}", self.runbook_base_url.trim_end_matches('/'))
    }

    /// The window of `SyntheticCheckFailed` for a runner `interval`:
    /// `consecutive failures * interval`.
    pub(crate) fn synthetic_window(&self, interval: Duration) -> Duration {
        interval.saturating_mul(self.synthetic_consecutive_failures)
    }
}

/// Builder of an [`AlertSpec`]; see [`AlertSpec::builder`]. Nothing is checked
/// until [`AlertSpecBuilder::build`], which reports the first bad field.
///
/// Defaults: error ratio 1%, p99 latency 3 s, gateway failure ratio 5%,
/// resource saturation 90%, no in-flight request limit, 2 consecutive
/// synthetic failures, scrape interval 30 s, rate window 5 m, synthetic
/// traffic excluded, OpenTelemetry's default duration buckets, no SLOs.
#[derive(Debug, Clone)]
#[must_use]
pub struct AlertSpecBuilder {
    spec: AlertSpec,
}

impl AlertSpecBuilder {
    fn new(service: String) -> Self {
        Self {
            spec: AlertSpec {
                service,
                routes: Vec::new(),
                grpc_methods: Vec::new(),
                gateways: Vec::new(),
                flows: Vec::new(),
                availability: None,
                latency: None,
                error_ratio_threshold: 0.01,
                p99_latency_threshold: Duration::from_secs(3),
                gateway_error_ratio_threshold: 0.05,
                resource_saturation_threshold: 0.9,
                max_active_requests: None,
                synthetic_consecutive_failures: 2,
                scrape_interval: Duration::from_secs(30),
                rate_window: Duration::from_secs(300),
                exclude_synthetic_traffic: true,
                histogram_buckets: DEFAULT_HTTP_DURATION_BUCKETS.to_vec(),
                runbook_base_url: String::new(),
                extra_labels: BTreeMap::new(),
            },
        }
    }

    /// Watches the route template `route` exactly (the `http_route` label, e.g. `/orders/{id}`).
    /// Without any route or route pattern, every route of the service is watched.
    pub fn route(mut self, route: impl Into<String>) -> Self {
        self.spec.routes.push(RouteMatch::Exact(route.into()));
        self
    }

    /// Watches every route matching the RE2 regular expression `pattern`
    /// (anchored at both ends by Prometheus), e.g. `/api/v1/.*`.
    pub fn route_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.spec.routes.push(RouteMatch::Pattern(pattern.into()));
        self
    }

    /// Watches the gRPC method `method` exactly (the `rpc_method` label:
    /// `package.Service/Method`, e.g. `shop.v1.Payments/Charge`), as
    /// [`route`](Self::route) watches a route: the golden-signal alerts get a
    /// gRPC twin (label `rpc_system_name="grpc"`) on
    /// `rpc_server_call_duration_seconds`. Without any gRPC method or
    /// pattern no gRPC rule is generated.
    pub fn grpc_method(mut self, method: impl Into<String>) -> Self {
        self.spec
            .grpc_methods
            .push(RouteMatch::Exact(method.into()));
        self
    }

    /// Watches every gRPC method matching the RE2 regular expression
    /// `pattern` (anchored by Prometheus), e.g. `shop\.v1\.Payments/.*`;
    /// `.+` watches every method of the service.
    pub fn grpc_method_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.spec
            .grpc_methods
            .push(RouteMatch::Pattern(pattern.into()));
        self
    }

    /// Watches the external gateway `name` (the `gateway` label). Without any
    /// gateway, `ExternalGatewayErrors` covers every gateway of the service and
    /// the dashboard has no gateway rows.
    pub fn gateway(mut self, name: impl Into<String>) -> Self {
        self.spec.gateways.push(name.into());
        self
    }

    /// Watches the synthetic flow `name` (the `flow` label), whose runner runs it every `interval`.
    pub fn synthetic_flow(mut self, name: impl Into<String>, interval: Duration) -> Self {
        self.spec.flows.push(SyntheticFlow {
            name: name.into(),
            interval,
        });
        self
    }

    /// Availability SLO: `target` (e.g. `0.999`) of requests succeed over `period` (e.g. 30 days).
    pub fn availability_slo(mut self, target: f64, period: Duration) -> Self {
        self.spec.availability = Some(Slo { target, period });
        self
    }

    /// Latency SLO: `target` (e.g. `0.99`) of successful requests finish
    /// within `threshold` (a histogram bucket boundary, e.g. 1 s) over `period`.
    pub fn latency_slo(mut self, target: f64, threshold: Duration, period: Duration) -> Self {
        self.spec.latency = Some(LatencySlo {
            slo: Slo { target, period },
            threshold,
        });
        self
    }

    /// `HighErrorRate` threshold: failing share of requests (default `0.01`).
    pub fn error_ratio_threshold(mut self, ratio: f64) -> Self {
        self.spec.error_ratio_threshold = ratio;
        self
    }

    /// `HighP99Latency` threshold on successful requests (default 3 s).
    pub fn p99_latency_threshold(mut self, threshold: Duration) -> Self {
        self.spec.p99_latency_threshold = threshold;
        self
    }

    /// `ExternalGatewayErrors` threshold: failing share of gateway calls (default `0.05`).
    pub fn gateway_error_ratio_threshold(mut self, ratio: f64) -> Self {
        self.spec.gateway_error_ratio_threshold = ratio;
        self
    }

    /// `HighSaturation` threshold on `observe_resource_utilization` (default `0.9`).
    pub fn resource_saturation_threshold(mut self, ratio: f64) -> Self {
        self.spec.resource_saturation_threshold = ratio;
        self
    }

    /// Adds a `HighSaturation` rule firing when one instance has more than
    /// `limit` requests in flight (`http_server_active_requests`).
    pub fn max_active_requests(mut self, limit: u64) -> Self {
        self.spec.max_active_requests = Some(limit);
        self
    }

    /// How many consecutive failed runs of a synthetic flow fire `SyntheticCheckFailed` (default 2).
    pub fn synthetic_consecutive_failures(mut self, runs: u32) -> Self {
        self.spec.synthetic_consecutive_failures = runs;
        self
    }

    /// Prometheus' scrape interval for the service (default 30 s); windows are checked against it.
    pub fn scrape_interval(mut self, interval: Duration) -> Self {
        self.spec.scrape_interval = interval;
        self
    }

    /// Window of the golden-signal `rate()`s (default 5 m); at least two scrape intervals.
    pub fn rate_window(mut self, window: Duration) -> Self {
        self.spec.rate_window = window;
        self
    }

    /// Whether requests labelled `synthetic="true"` are left out of the
    /// golden signals and SLOs (default `true`: synthetic checks have their own alert).
    pub fn exclude_synthetic_traffic(mut self, exclude: bool) -> Self {
        self.spec.exclude_synthetic_traffic = exclude;
        self
    }

    /// Bucket boundaries (seconds) the SDK's `http.server.request.duration`
    /// histogram uses, if not OpenTelemetry's defaults. The latency SLO threshold must be one.
    pub fn histogram_buckets(mut self, boundaries: impl IntoIterator<Item = f64>) -> Self {
        self.spec.histogram_buckets = boundaries.into_iter().collect();
        self
    }

    /// Base of every alert's `runbook_url` annotation (required): the alert
    /// name is appended, e.g. `https://runbooks.example.com/observe/HighErrorRate`.
    pub fn runbook_base_url(mut self, url: impl Into<String>) -> Self {
        self.spec.runbook_base_url = url.into();
        self
    }

    /// Adds a static label to every alert, e.g. `team="payments"` for routing.
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec.extra_labels.insert(name.into(), value.into());
        self
    }

    /// Validates the description.
    ///
    /// # Errors
    ///
    /// An [`AlertSpecError`] naming the first invalid field: empty service or
    /// names, ratios outside `(0, 1)`, an SLO target of 100%, windows shorter
    /// than the scrape interval allows, a latency SLO threshold that is not a
    /// bucket boundary, a missing runbook URL, ...
    ///
    /// ```
    /// use observe_alerts::{AlertSpec, AlertSpecError};
    ///
    /// let err = AlertSpec::builder("svc")
    ///     .runbook_base_url("https://runbooks.example.com")
    ///     .error_ratio_threshold(1.5)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err, AlertSpecError::ThresholdOutOfRange { field: "error_ratio_threshold".into(), value: 1.5 });
    /// ```
    pub fn build(self) -> Result<AlertSpec, AlertSpecError> {
        let spec = self.spec;
        validate(&spec)?;
        Ok(spec)
    }
}

fn ratio(field: &str, value: f64) -> Result<(), AlertSpecError> {
    if value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(AlertSpecError::ThresholdOutOfRange {
            field: field.to_owned(),
            value,
        })
    }
}

fn positive(field: &str, d: Duration) -> Result<(), AlertSpecError> {
    if d.is_zero() {
        Err(AlertSpecError::ZeroDuration {
            field: field.to_owned(),
        })
    } else {
        Ok(())
    }
}

fn window(
    field: &str,
    window: Duration,
    scrape: Duration,
    min_scrapes: u32,
) -> Result<(), AlertSpecError> {
    if window < scrape.saturating_mul(min_scrapes) {
        Err(AlertSpecError::WindowTooShort {
            field: field.to_owned(),
            window,
            scrape_interval: scrape,
            min_scrapes,
        })
    } else {
        Ok(())
    }
}

fn names<'a>(field: &str, values: impl Iterator<Item = &'a str>) -> Result<(), AlertSpecError> {
    let mut seen = BTreeSet::new();
    for value in values {
        if value.trim().is_empty() {
            return Err(AlertSpecError::EmptyName {
                field: field.to_owned(),
            });
        }
        if !seen.insert(value) {
            return Err(AlertSpecError::Duplicate {
                field: field.to_owned(),
                value: value.to_owned(),
            });
        }
    }
    Ok(())
}

fn slo(field: &str, slo: Slo, spec: &AlertSpec) -> Result<(), AlertSpecError> {
    if !(slo.target > 0.0 && slo.target < 1.0) {
        return Err(AlertSpecError::InvalidSloTarget {
            field: format!("{field}.target"),
            value: slo.target,
        });
    }
    let longest = BURN_WINDOWS
        .iter()
        .map(|w| w.long)
        .max()
        .unwrap_or(Duration::ZERO);
    if slo.period <= longest {
        return Err(AlertSpecError::SloPeriodTooShort {
            field: format!("{field}.period"),
            period: slo.period,
            longest_window: longest,
        });
    }
    for w in &BURN_WINDOWS {
        // Every window, the short 5m one included, feeds a rate().
        window(
            &format!("{field}.short_window"),
            w.short,
            spec.scrape_interval,
            2,
        )?;
        let factor = w.factor(slo.period);
        let required = super::promql::round_sig(factor * (1.0 - slo.target));
        if required >= 1.0 {
            return Err(AlertSpecError::UnreachableBurnRate {
                field: format!("{field}.target"),
                target: slo.target,
                burn_rate: factor,
                required,
            });
        }
    }
    Ok(())
}

fn label_name(field: &str, name: &str) -> Result<(), AlertSpecError> {
    let invalid = |reason| AlertSpecError::InvalidLabelName {
        field: field.to_owned(),
        name: name.to_owned(),
        reason,
    };
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(invalid("must match [a-zA-Z_][a-zA-Z0-9_]*"));
    }
    if name.starts_with("__") {
        return Err(invalid("names starting with __ are reserved"));
    }
    const GENERATED: &[&str] = &[
        "alertname",
        "severity",
        "job",
        "instance",
        "slo",
        "long_window",
        "short_window",
        "reason",
        "resource",
        "gateway",
        "flow",
        "region",
        "rpc_system_name",
    ];
    if GENERATED.contains(&name) {
        return Err(invalid("set by the generated rules"));
    }
    Ok(())
}

fn validate(spec: &AlertSpec) -> Result<(), AlertSpecError> {
    if spec.service.trim().is_empty() {
        return Err(AlertSpecError::EmptyService);
    }
    names("route", spec.routes.iter().map(RouteMatch::display))?;
    names(
        "grpc_method",
        spec.grpc_methods.iter().map(RouteMatch::display),
    )?;
    names("gateway", spec.gateways.iter().map(String::as_str))?;
    names("synthetic_flow", spec.flows.iter().map(|f| f.name.as_str()))?;

    ratio("error_ratio_threshold", spec.error_ratio_threshold)?;
    ratio(
        "gateway_error_ratio_threshold",
        spec.gateway_error_ratio_threshold,
    )?;
    ratio(
        "resource_saturation_threshold",
        spec.resource_saturation_threshold,
    )?;
    positive("p99_latency_threshold", spec.p99_latency_threshold)?;
    if spec.max_active_requests == Some(0) {
        return Err(AlertSpecError::ZeroCount {
            field: "max_active_requests".to_owned(),
        });
    }
    if spec.synthetic_consecutive_failures == 0 {
        return Err(AlertSpecError::ZeroCount {
            field: "synthetic_consecutive_failures".to_owned(),
        });
    }

    positive("scrape_interval", spec.scrape_interval)?;
    window("rate_window", spec.rate_window, spec.scrape_interval, 2)?;
    for flow in &spec.flows {
        let field = format!("synthetic_flow({:?}).interval", flow.name);
        positive(&field, flow.interval)?;
        window(
            &field,
            spec.synthetic_window(flow.interval),
            spec.scrape_interval,
            1,
        )?;
    }

    let buckets = &spec.histogram_buckets;
    if buckets.is_empty()
        || buckets.iter().any(|b| !b.is_finite() || *b <= 0.0)
        || buckets.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(AlertSpecError::InvalidBuckets {
            field: "histogram_buckets".to_owned(),
        });
    }
    if let Some(a) = spec.availability {
        slo("availability_slo", a, spec)?;
    }
    if let Some(l) = spec.latency {
        slo("latency_slo", l.slo, spec)?;
        positive("latency_slo.threshold", l.threshold)?;
        let secs = l.threshold.as_secs_f64();
        if !buckets
            .iter()
            .any(|b| (b - secs).abs() <= 1e-9 * b.max(1.0))
        {
            return Err(AlertSpecError::LatencyThresholdNotABucket {
                field: "latency_slo.threshold".to_owned(),
                threshold_seconds: secs,
                buckets: buckets.clone(),
            });
        }
    }

    let url = spec.runbook_base_url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    if !rest.is_some_and(|r| !r.is_empty() && !r.contains(char::is_whitespace)) {
        return Err(AlertSpecError::InvalidRunbookUrl {
            value: spec.runbook_base_url.clone(),
        });
    }
    for name in spec.extra_labels.keys() {
        label_name("label", name)?;
    }
    Ok(())
}
