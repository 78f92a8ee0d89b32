//! The OpenTelemetry Collector (Jaeger v2) running `docs/collector/collector.yaml`.

use crate::error::Error;
use crate::jaeger::Jaeger;
use crate::process::{free_ports, workspace_root, Engine, Process};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The Collector configuration the docs show and the tests load, relative
/// to the workspace root.
pub const COLLECTOR_CONFIG: &str = "docs/collector/collector.yaml";

/// How to start the [`Collector`]: the config's environment variables.
#[derive(Clone, Debug)]
pub struct CollectorOptions {
    config: PathBuf,
    decision_wait: Duration,
    logs_to: Option<SocketAddr>,
    memory_limit_mib: Option<u32>,
    memory_spike_mib: Option<u32>,
    overrides: Vec<String>,
    ready_timeout: Duration,
}

impl Default for CollectorOptions {
    fn default() -> Self {
        CollectorOptions::new()
    }
}

impl CollectorOptions {
    /// [`COLLECTOR_CONFIG`] with its defaults (a 10 s tail-sampling decision wait).
    pub fn new() -> CollectorOptions {
        CollectorOptions {
            config: workspace_root().join(COLLECTOR_CONFIG),
            decision_wait: Duration::from_secs(10),
            logs_to: None,
            memory_limit_mib: None,
            memory_spike_mib: None,
            overrides: Vec::new(),
            ready_timeout: Duration::from_secs(60),
        }
    }

    /// Another config file (a deliberately broken one, in a test).
    pub fn config(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = path.into();
        self
    }

    /// `tail_sampling`'s `decision_wait` (`COLLECTOR_DECISION_WAIT`).
    pub fn decision_wait(mut self, d: Duration) -> Self {
        self.decision_wait = d;
        self
    }

    /// Where the logs pipeline sends to (`VICTORIALOGS_ADDR`).
    pub fn logs_to(mut self, addr: SocketAddr) -> Self {
        self.logs_to = Some(addr);
        self
    }

    /// `memory_limiter`'s `limit_mib` and `spike_limit_mib`.
    pub fn memory_limit_mib(mut self, limit: u32, spike: u32) -> Self {
        self.memory_limit_mib = Some(limit);
        self.memory_spike_mib = Some(spike);
        self
    }

    /// One more configuration source merged over the file, in the
    /// Collector's `yaml:` syntax, e.g.
    /// `processors::tail_sampling::policies: [{name: all, type: always_sample}]`.
    pub fn override_yaml(mut self, yaml: impl Into<String>) -> Self {
        self.overrides.push(yaml.into());
        self
    }

    /// How long to wait for it to be healthy (default 60 s).
    pub fn ready_timeout(mut self, d: Duration) -> Self {
        self.ready_timeout = d;
        self
    }
}

/// A running Collector with its ports; stopped when dropped.
#[derive(Debug)]
pub struct Collector {
    process: Process,
    otlp_grpc: SocketAddr,
    otlp_http: SocketAddr,
    prometheus: SocketAddr,
    telemetry: SocketAddr,
    health: SocketAddr,
    query: SocketAddr,
    ready_timeout: Duration,
    _dir: tempfile::TempDir,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn go_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

impl Collector {
    /// Starts it on free ports and waits until its health check answers.
    /// A config error ends the wait at once, with the Collector's own message.
    /// A port taken by another program between finding it and binding it
    /// means another try on other ports (three in all).
    pub async fn start(options: CollectorOptions) -> Result<Collector, Error> {
        let mut tries = 0;
        loop {
            tries += 1;
            match Collector::start_once(&options).await {
                Err(Error::Exited { output, .. })
                    if tries < 3 && output.contains("address already in use") => {}
                other => return other,
            }
        }
    }

    async fn start_once(options: &CollectorOptions) -> Result<Collector, Error> {
        let program = Engine::Jaeger.locate()?;
        let dir = tempfile::Builder::new()
            .prefix("observe-collector-")
            .tempdir()
            .map_err(|e| Error::io("creating the Collector's directory", e))?;
        let [p1, p2, p3, p4, p5, p6, query_grpc, spare] = free_ports::<8>()?;
        let (otlp_grpc, otlp_http, prometheus) = (loopback(p1), loopback(p2), loopback(p3));
        let (telemetry, health, query) = (loopback(p4), loopback(p5), loopback(p6));
        let mut envs = vec![
            ("COLLECTOR_BIND".to_owned(), "127.0.0.1".to_owned()),
            (
                "COLLECTOR_OTLP_GRPC_PORT".to_owned(),
                otlp_grpc.port().to_string(),
            ),
            (
                "COLLECTOR_OTLP_HTTP_PORT".to_owned(),
                otlp_http.port().to_string(),
            ),
            (
                "COLLECTOR_PROMETHEUS_PORT".to_owned(),
                prometheus.port().to_string(),
            ),
            (
                "COLLECTOR_TELEMETRY_PORT".to_owned(),
                telemetry.port().to_string(),
            ),
            (
                "COLLECTOR_HEALTH_PORT".to_owned(),
                health.port().to_string(),
            ),
            (
                "JAEGER_QUERY_HTTP_PORT".to_owned(),
                query.port().to_string(),
            ),
            ("JAEGER_QUERY_GRPC_PORT".to_owned(), query_grpc.to_string()),
            (
                "COLLECTOR_DECISION_WAIT".to_owned(),
                go_duration(options.decision_wait),
            ),
        ];
        // Without a log store the logs pipeline points at a closed port:
        // the Collector starts, and its exporter's failures are its own.
        let logs = options.logs_to.unwrap_or_else(|| loopback(spare));
        envs.push(("VICTORIALOGS_ADDR".to_owned(), logs.to_string()));
        if let (Some(limit), Some(spike)) = (options.memory_limit_mib, options.memory_spike_mib) {
            envs.push(("COLLECTOR_MEMORY_LIMIT_MIB".to_owned(), limit.to_string()));
            envs.push(("COLLECTOR_MEMORY_SPIKE_MIB".to_owned(), spike.to_string()));
        }
        let mut args = vec![format!("--config=file:{}", options.config.display())];
        args.extend(
            options
                .overrides
                .iter()
                .map(|y| format!("--config=yaml:{y}")),
        );
        let process = Process::spawn(
            Engine::Jaeger,
            program,
            args,
            envs,
            dir.path().join("collector.log"),
        )?;
        let mut c = Collector {
            process,
            otlp_grpc,
            otlp_http,
            prometheus,
            telemetry,
            health,
            query,
            ready_timeout: options.ready_timeout,
            _dir: dir,
        };
        c.wait_ready().await?;
        Ok(c)
    }

    async fn wait_ready(&mut self) -> Result<(), Error> {
        let url = format!("http://{}/", self.health);
        self.process.wait_ready(&url, self.ready_timeout).await
    }

    /// `http://127.0.0.1:<port>` of the OTLP/HTTP receiver (the value of
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` for `http/protobuf`).
    pub fn otlp_http_url(&self) -> String {
        format!("http://{}", self.otlp_http)
    }

    /// `http://127.0.0.1:<port>` of the OTLP/gRPC receiver.
    pub fn otlp_grpc_url(&self) -> String {
        format!("http://{}", self.otlp_grpc)
    }

    /// Address of the `prometheus` exporter (what Prometheus scrapes).
    pub fn prometheus_exporter(&self) -> SocketAddr {
        self.prometheus
    }

    /// Address of the Collector's own metrics (`otelcol_*`).
    pub fn telemetry(&self) -> SocketAddr {
        self.telemetry
    }

    /// `http://127.0.0.1:<port>` of Jaeger's query API and UI.
    pub fn query_url(&self) -> String {
        format!("http://{}", self.query)
    }

    /// A client of the trace store's query API.
    pub fn jaeger(&self) -> Jaeger {
        Jaeger::new(self.query_url())
    }

    /// The running process.
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// Stops it (SIGTERM: it flushes what it holds, then exits).
    pub async fn stop(&mut self) {
        self.process.stop(Duration::from_secs(10)).await;
    }

    /// Starts it again on the same ports and waits until it is healthy
    /// (after [`stop`](Self::stop): a graceful restart; else it is killed
    /// first). The trace store is in memory: what it held before is gone.
    pub async fn start_again(&mut self) -> Result<(), Error> {
        self.process.restart()?;
        self.wait_ready().await
    }

    /// Sets `memory_limiter`'s `limit_mib` and `spike_limit_mib` for its
    /// next start (e.g. a limit below its own heap, so that it refuses).
    pub fn set_memory_limit_mib(&mut self, limit: u32, spike: u32) {
        self.process
            .set_env("COLLECTOR_MEMORY_LIMIT_MIB", &limit.to_string());
        self.process
            .set_env("COLLECTOR_MEMORY_SPIKE_MIB", &spike.to_string());
    }

    /// The Collector's own counter `name` (e.g. `otelcol_receiver_accepted_log_records`),
    /// summed over its series whose labels contain every pair of `labels`.
    pub async fn own_metric(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64, Error> {
        let url = format!("http://{}/metrics", self.telemetry);
        let text = crate::http::client()
            .get(&url)
            .send()
            .await
            .map_err(|e| Error::Api {
                url: url.clone(),
                reason: e.to_string(),
            })?
            .text()
            .await
            .map_err(|e| Error::Api {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        Ok(sum_series(&text, name, labels))
    }
}

/// Sums the samples of `name` in a Prometheus text exposition whose labels
/// include every pair of `labels`.
pub fn sum_series(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (label_part, value) = match rest.strip_prefix('{') {
                Some(r) => {
                    let (ls, v) = r.split_once('}')?;
                    (ls, v)
                }
                None if rest.starts_with(' ') => ("", rest),
                None => return None,
            };
            let matches = labels
                .iter()
                .all(|(k, v)| label_part.contains(&format!("{k}=\"{v}\"")));
            if !matches {
                return None;
            }
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::sum_series;

    #[test]
    fn sums_only_the_named_series_with_the_labels() {
        let text = "# HELP x\n\
                    otelcol_receiver_accepted_spans{receiver=\"otlp\",transport=\"grpc\"} 3\n\
                    otelcol_receiver_accepted_spans{receiver=\"otlp\",transport=\"http\"} 4\n\
                    otelcol_receiver_accepted_spans_other{receiver=\"otlp\"} 100\n\
                    otelcol_receiver_refused_spans{receiver=\"otlp\"} 9\n";
        assert_eq!(
            sum_series(text, "otelcol_receiver_accepted_spans", &[]),
            7.0
        );
        assert_eq!(
            sum_series(
                text,
                "otelcol_receiver_accepted_spans",
                &[("transport", "http")]
            ),
            4.0
        );
        assert_eq!(sum_series(text, "absent", &[]), 0.0);
    }
}
