//! Alertmanager (Debian's `prometheus-alertmanager`), read through `/api/v2/alerts`.

use crate::error::Error;
use crate::process::{free_port, Engine, Process};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// An alert Alertmanager holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedAlert {
    /// `alertname`.
    pub name: String,
    /// `active`, `suppressed` or `unprocessed`.
    pub state: String,
    /// Every label.
    pub labels: BTreeMap<String, String>,
}

/// A running Alertmanager with one receiver that notifies nobody; stopped
/// when dropped.
#[derive(Debug)]
pub struct Alertmanager {
    process: Process,
    addr: SocketAddr,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

const CONFIG: &str = "route:\n  receiver: record\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: record\n";

impl Alertmanager {
    /// Starts it on a free port (clustering off) and waits until `/-/ready` answers.
    pub async fn start() -> Result<Alertmanager, Error> {
        let program = Engine::Alertmanager.locate()?;
        let dir = tempfile::Builder::new()
            .prefix("observe-alertmanager-")
            .tempdir()
            .map_err(|e| Error::io("creating Alertmanager's directory", e))?;
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, CONFIG).map_err(|e| Error::io("writing alertmanager.yml", e))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let args = vec![
            format!("--config.file={}", config.display()),
            format!("--storage.path={}", dir.path().join("data").display()),
            format!("--web.listen-address={addr}"),
            "--cluster.listen-address=".to_owned(),
            "--log.level=warn".to_owned(),
        ];
        let mut process = Process::spawn(
            Engine::Alertmanager,
            program,
            args,
            Vec::new(),
            dir.path().join("alertmanager.log"),
        )?;
        process
            .wait_ready(&format!("http://{addr}/-/ready"), Duration::from_secs(30))
            .await?;
        Ok(Alertmanager {
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

    /// Every alert it holds now (`GET /api/v2/alerts`).
    pub async fn alerts(&self) -> Result<Vec<ReceivedAlert>, Error> {
        let url = format!("{}/api/v2/alerts", self.url());
        let v = crate::http::get_json(&self.client, &url, &[]).await?;
        Ok(v.as_array()
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
                ReceivedAlert {
                    name: labels.get("alertname").cloned().unwrap_or_default(),
                    state: a["status"]["state"].as_str().unwrap_or_default().to_owned(),
                    labels,
                }
            })
            .collect())
    }
}
