//! Prometheus (Debian's): scrapes the given targets, evaluates the given
//! rules, sends to an Alertmanager; read through `/api/v1/*`.

use crate::error::Error;
use crate::process::{free_port, Engine, Process};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

/// One scrape job.
#[derive(Clone, Debug)]
pub struct ScrapeTarget {
    /// `job_name` (the `job` label unless the target's own wins).
    pub job: String,
    /// `host:port` serving `/metrics`.
    pub addr: SocketAddr,
    /// `honor_labels: true`: keep the target's `job` and `instance` (the
    /// Collector's exporter sets them from `service.name` and
    /// `service.instance.id`).
    pub honor_labels: bool,
}

/// How to start [`Prometheus`].
#[derive(Clone, Debug)]
pub struct PrometheusOptions {
    targets: Vec<ScrapeTarget>,
    rules: Option<String>,
    alertmanager: Option<String>,
    interval: Duration,
}

impl Default for PrometheusOptions {
    fn default() -> Self {
        PrometheusOptions::new()
    }
}

impl PrometheusOptions {
    /// No targets, no rules, a 1 s scrape and evaluation interval.
    pub fn new() -> PrometheusOptions {
        PrometheusOptions {
            targets: Vec::new(),
            rules: None,
            alertmanager: None,
            interval: Duration::from_secs(1),
        }
    }

    /// Adds a scrape job.
    pub fn scrape(mut self, target: ScrapeTarget) -> Self {
        self.targets.push(target);
        self
    }

    /// A rule file's YAML to evaluate.
    pub fn rules(mut self, yaml: impl Into<String>) -> Self {
        self.rules = Some(yaml.into());
        self
    }

    /// Sends alerts to the Alertmanager at this URL.
    pub fn alertmanager(mut self, url: impl Into<String>) -> Self {
        self.alertmanager = Some(url.into());
        self
    }

    /// Scrape and evaluation interval.
    pub fn interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }

    fn config(&self, rules_path: Option<&std::path::Path>) -> String {
        let every = format!("{}ms", self.interval.as_millis().max(100));
        let mut c =
            format!("global:\n  scrape_interval: {every}\n  evaluation_interval: {every}\n");
        if let Some(p) = rules_path {
            let _ = write!(c, "rule_files:\n  - {}\n", p.display());
        }
        if let Some(am) = &self.alertmanager {
            let host = am
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned();
            let _ = write!(
                c,
                "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{host}']\n"
            );
        }
        c.push_str("scrape_configs:\n");
        for t in &self.targets {
            let _ = write!(
                c,
                "  - job_name: '{}'\n    honor_labels: {}\n    static_configs:\n      - targets: ['{}']\n",
                t.job, t.honor_labels, t.addr
            );
        }
        c
    }
}

/// An alert as `/api/v1/alerts` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertState {
    /// `alertname`.
    pub name: String,
    /// `pending` or `firing`.
    pub state: String,
    /// Every label.
    pub labels: BTreeMap<String, String>,
}

/// A running Prometheus; stopped when dropped.
#[derive(Debug)]
pub struct Prometheus {
    process: Process,
    addr: SocketAddr,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts it on a free port with the options' config, and waits until
    /// `/-/ready` answers. Its rules are checked by Prometheus itself: a rule
    /// that does not parse stops it, with its message.
    pub async fn start(options: PrometheusOptions) -> Result<Prometheus, Error> {
        let program = Engine::Prometheus.locate()?;
        let dir = tempfile::Builder::new()
            .prefix("observe-prometheus-")
            .tempdir()
            .map_err(|e| Error::io("creating Prometheus' directory", e))?;
        let rules_path = match &options.rules {
            Some(yaml) => {
                let p = dir.path().join("rules.yml");
                std::fs::write(&p, yaml).map_err(|e| Error::io("writing rules.yml", e))?;
                Some(p)
            }
            None => None,
        };
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, options.config(rules_path.as_deref()))
            .map_err(|e| Error::io("writing prometheus.yml", e))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let args = vec![
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address={addr}"),
            "--log.level=warn".to_owned(),
        ];
        let mut process = Process::spawn(
            Engine::Prometheus,
            program,
            args,
            Vec::new(),
            dir.path().join("prometheus.log"),
        )?;
        process
            .wait_ready(&format!("http://{addr}/-/ready"), Duration::from_secs(30))
            .await?;
        Ok(Prometheus {
            process,
            addr,
            client: crate::http::client(),
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The running process.
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// An instant query: each series' labels and value.
    pub async fn query(&self, expr: &str) -> Result<Vec<(BTreeMap<String, String>, f64)>, Error> {
        let url = format!("{}/api/v1/query", self.url());
        let v = crate::http::get_json(&self.client, &url, &[("query", expr)]).await?;
        if v["status"] != "success" {
            return Err(Error::Api {
                url,
                reason: format!("{expr}: {v}"),
            });
        }
        Ok(v["data"]["result"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                let value = s["value"][1]
                    .as_str()
                    .and_then(|x| x.parse::<f64>().ok())
                    .unwrap_or(f64::NAN);
                (labels, value)
            })
            .collect())
    }

    /// Every pending or firing alert.
    pub async fn alerts(&self) -> Result<Vec<AlertState>, Error> {
        let url = format!("{}/api/v1/alerts", self.url());
        let v = crate::http::get_json(&self.client, &url, &[]).await?;
        Ok(v["data"]["alerts"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|a| {
                let labels: BTreeMap<String, String> = a["labels"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                AlertState {
                    name: labels.get("alertname").cloned().unwrap_or_default(),
                    state: a["state"].as_str().unwrap_or_default().to_owned(),
                    labels,
                }
            })
            .collect())
    }

    /// Health of each scrape target: `(job, health, last error)`.
    pub async fn targets(&self) -> Result<Vec<(String, String, String)>, Error> {
        let url = format!("{}/api/v1/targets", self.url());
        let v = crate::http::get_json(&self.client, &url, &[]).await?;
        Ok(v["data"]["activeTargets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|t| {
                (
                    t["scrapePool"].as_str().unwrap_or_default().to_owned(),
                    t["health"].as_str().unwrap_or_default().to_owned(),
                    t["lastError"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_rules_alerting_and_every_target() {
        let o = PrometheusOptions::new()
            .interval(Duration::from_millis(500))
            .alertmanager("http://127.0.0.1:9093")
            .scrape(ScrapeTarget {
                job: "otel-collector".into(),
                addr: "127.0.0.1:8889".parse().expect("addr"),
                honor_labels: true,
            });
        assert_eq!(
            o.config(Some(std::path::Path::new("/r.yml"))),
            "global:\n  scrape_interval: 500ms\n  evaluation_interval: 500ms\n\
             rule_files:\n  - /r.yml\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:9093']\n\
             scrape_configs:\n  - job_name: 'otel-collector'\n    honor_labels: true\n    static_configs:\n      - targets: ['127.0.0.1:8889']\n"
        );
    }
}
