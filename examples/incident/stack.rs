//! The incident on the seed's real stack, shared by the example's `--stack`
//! mode and `tests/stack.rs`: VictoriaLogs, the Collector (Jaeger v2 with
//! `docs/collector/collector.yaml`), Alertmanager, a Prometheus evaluating
//! the generated rules on the Collector's series (and sending to
//! Alertmanager), a second one on payment's own `/metrics`, the bank
//! simulator, the three services and the synthetic checkout.

#![allow(dead_code)]

use crate::services::{self, Bank, BoxError, Service, Services, Telemetry};
use observe_stack::{
    Alertmanager, Collector, CollectorOptions, Prometheus, PrometheusOptions, ScrapeTarget,
    VictoriaLogs,
};
use std::sync::Arc;
use std::time::Duration;

/// One synthetic checkout a second.
pub(crate) const SYNTHETIC_EVERY: Duration = Duration::from_secs(1);
/// The demo's alert windows (production: 15 s scrape, 5 m rate windows, `for: 2m`).
pub(crate) const SCRAPE: Duration = Duration::from_secs(1);
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(10);
pub(crate) const FOR: &str = "2s";

/// The payment service's alert rules with the demo's windows; with the
/// synthetic checkout's rules when `synthetic` (its metrics reach
/// Prometheus through the Collector only).
pub(crate) fn incident_rules(synthetic: bool) -> Result<String, BoxError> {
    let mut spec = observe::alerts::AlertSpec::builder("payment")
        .route("/pay")
        .gateway("bank")
        .availability_slo(0.999, Duration::from_secs(30 * 86_400))
        .scrape_interval(SCRAPE)
        .rate_window(RATE_WINDOW)
        .runbook_base_url("https://runbooks.example.com/payments");
    if synthetic {
        spec = spec.synthetic_flow("checkout", SYNTHETIC_EVERY);
    }
    let mut file = spec.build()?.prometheus_rules();
    for g in &mut file.groups {
        for r in &mut g.rules {
            if let observe::alerts::Rule::Alerting(a) = r {
                if a.for_.is_some() {
                    a.for_ = Some(FOR.to_owned());
                }
            }
        }
    }
    Ok(file.to_yaml())
}

/// Everything of one run; each part stops when dropped.
pub(crate) struct IncidentStack {
    pub(crate) logs: Option<VictoriaLogs>,
    pub(crate) collector: Option<Collector>,
    pub(crate) alertmanager: Option<Alertmanager>,
    /// Prometheus on the Collector's `prometheus` exporter (the OTLP path).
    pub(crate) prom_otlp: Option<Prometheus>,
    /// Prometheus on payment's own `/metrics` (the pull path).
    pub(crate) prom_pull: Option<Prometheus>,
    pub(crate) bank: Arc<Bank>,
    pub(crate) services: Services,
    pub(crate) synthetic: Option<Service>,
    /// Engines that are not on this machine, each with how to get it.
    pub(crate) missing: Vec<String>,
    pub(crate) rules: (String, String),
    dir: tempfile::TempDir,
}

fn available<T>(
    engine: Result<T, observe_stack::Error>,
    require_all: bool,
    missing: &mut Vec<String>,
) -> Result<Option<T>, BoxError> {
    match engine {
        Ok(e) => Ok(Some(e)),
        // Not installed: the demo goes on without it, and says so.
        Err(e @ observe_stack::Error::Missing { .. }) if !require_all => {
            missing.push(e.to_string());
            Ok(None)
        }
        // Installed but broken (a config error, a crash): stop with its message.
        Err(e) => Err(e.into()),
    }
}

impl IncidentStack {
    /// Starts it all. With `require_all`, a missing engine is an error;
    /// without, the run goes on without it (the services still start and
    /// serve; what cannot be exported is counted as dropped) and
    /// [`missing`](Self::missing) says which engine and how to build it.
    pub(crate) async fn start(require_all: bool) -> Result<IncidentStack, BoxError> {
        let dir = tempfile::Builder::new()
            .prefix("observe-incident-")
            .tempdir()?;
        let mut missing = Vec::new();
        let logs = available(VictoriaLogs::start().await, require_all, &mut missing)?;
        let mut options = CollectorOptions::new().decision_wait(Duration::from_secs(3));
        if let Some(l) = &logs {
            options = options.logs_to(l.addr());
        }
        let collector = available(Collector::start(options).await, require_all, &mut missing)?;
        let alertmanager = available(Alertmanager::start().await, require_all, &mut missing)?;
        let rules = (incident_rules(true)?, incident_rules(false)?);
        let prom_otlp = match &collector {
            Some(c) => {
                let mut o = PrometheusOptions::new()
                    .interval(SCRAPE)
                    .rules(rules.0.clone())
                    .scrape(ScrapeTarget {
                        job: "otel-collector".into(),
                        addr: c.prometheus_exporter(),
                        honor_labels: true,
                    });
                if let Some(am) = &alertmanager {
                    o = o.alertmanager(am.url());
                }
                available(Prometheus::start(o).await, require_all, &mut missing)?
            }
            None => None,
        };
        let bank = Arc::new(Bank::default());
        let bank_addr = services::start_bank(Arc::clone(&bank)).await?;
        // Without a Collector the services export to a closed port.
        let otlp_endpoint = match &collector {
            Some(c) => c.otlp_http_url(),
            None => format!("http://127.0.0.1:{}", observe_stack::free_port()?),
        };
        let telemetry = Telemetry {
            otlp_endpoint,
            metric_interval: Duration::from_secs(1),
            in_process_tail_sampling: false,
            extra: Vec::new(),
        };
        let services = Services::start(&telemetry, bank_addr, dir.path())?;
        let prom_pull = available(
            Prometheus::start(
                PrometheusOptions::new()
                    .interval(SCRAPE)
                    .rules(rules.1.clone())
                    .scrape(ScrapeTarget {
                        job: "payment".into(),
                        addr: services.payment_metrics,
                        honor_labels: false,
                    }),
            )
            .await,
            require_all,
            &mut missing,
        )?;
        let synthetic = match &alertmanager {
            Some(am) => Some(Services::start_synthetic(
                &telemetry,
                &services.checkout.url,
                &am.url(),
                SYNTHETIC_EVERY,
                dir.path(),
            )?),
            None => None,
        };
        missing.dedup();
        Ok(IncidentStack {
            logs,
            collector,
            alertmanager,
            prom_otlp,
            prom_pull,
            bank,
            services,
            synthetic,
            missing,
            rules,
            dir,
        })
    }

    /// Where the services' own output (their JSON lines) goes.
    pub(crate) fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the services and the synthetic runner (they flush first).
    pub(crate) fn stop_services(&mut self) {
        if let Some(s) = self.synthetic.as_mut() {
            s.stop();
        }
        self.services.stop();
    }
}
