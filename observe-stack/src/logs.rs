//! VictoriaLogs, the log store: OTLP logs in (`/insert/opentelemetry/v1/logs`),
//! LogsQL out (`/select/logsql/query`).

use crate::error::Error;
use crate::process::{free_port, Engine, Process};
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::time::Duration;

/// A running VictoriaLogs with its data in a temporary directory; stopped
/// when dropped.
#[derive(Debug)]
pub struct VictoriaLogs {
    process: Process,
    addr: SocketAddr,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl VictoriaLogs {
    /// Starts it on a free 127.0.0.1 port and waits until `/health` answers.
    pub async fn start() -> Result<VictoriaLogs, Error> {
        let program = Engine::VictoriaLogs.locate()?;
        let dir = tempfile::Builder::new()
            .prefix("observe-victorialogs-")
            .tempdir()
            .map_err(|e| Error::io("creating VictoriaLogs' directory", e))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let args = vec![
            format!("-httpListenAddr={addr}"),
            format!("-storageDataPath={}", dir.path().join("data").display()),
            "-retentionPeriod=1d".to_owned(),
            "-loggerLevel=WARN".to_owned(),
            // Data is searchable within a second of its arrival.
            "-inmemoryDataFlushInterval=1s".to_owned(),
        ];
        let mut process = Process::spawn(
            Engine::VictoriaLogs,
            program,
            args,
            Vec::new(),
            dir.path().join("victoria-logs.log"),
        )?;
        process
            .wait_ready(&format!("http://{addr}/health"), Duration::from_secs(30))
            .await?;
        Ok(VictoriaLogs {
            process,
            addr,
            client: crate::http::client(),
            _dir: dir,
        })
    }

    /// Its HTTP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The running process.
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// The `curl` command a user pastes to run `logsql` against it.
    pub fn curl(&self, logsql: &str) -> String {
        format!(
            "curl -s {}/select/logsql/query --data-urlencode 'query={}'",
            self.url(),
            logsql.replace('\'', r"'\''")
        )
    }

    /// Runs a LogsQL query (`POST /select/logsql/query`): one JSON object per
    /// matching log entry, newest first as VictoriaLogs returns them.
    pub async fn query(&self, logsql: &str) -> Result<Vec<Map<String, Value>>, Error> {
        let url = format!("{}/select/logsql/query", self.url());
        let body = crate::http::post_form(&self.client, &url, &[("query", logsql)]).await?;
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| match serde_json::from_str::<Value>(l) {
                Ok(Value::Object(m)) => Ok(m),
                Ok(other) => Err(Error::Api {
                    url: url.clone(),
                    reason: format!("a line that is not an object: {other}"),
                }),
                Err(e) => Err(Error::Api {
                    url: url.clone(),
                    reason: format!("a line that is not JSON ({e}): {l}"),
                }),
            })
            .collect()
    }
}
