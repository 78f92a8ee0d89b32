//! Finding the engines' programs, and running one as a child process whose
//! output goes to a log file, with a bounded wait for readiness.

use crate::error::Error;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (the engines are built into its `target/tools/bin`).
pub(crate) fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .map_or_else(|| here.to_path_buf(), Path::to_path_buf)
}

/// One of the stack's programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Jaeger v2: the OpenTelemetry Collector with the trace store and query API.
    Jaeger,
    /// VictoriaLogs: the log store.
    VictoriaLogs,
    /// Prometheus (Debian's `prometheus`).
    Prometheus,
    /// Alertmanager (Debian's `prometheus-alertmanager`).
    Alertmanager,
}

impl Engine {
    /// Every engine, in start order.
    pub const ALL: [Engine; 4] = [
        Engine::VictoriaLogs,
        Engine::Jaeger,
        Engine::Alertmanager,
        Engine::Prometheus,
    ];

    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Jaeger => "Jaeger (the OpenTelemetry Collector)",
            Engine::VictoriaLogs => "VictoriaLogs",
            Engine::Prometheus => "Prometheus",
            Engine::Alertmanager => "Alertmanager",
        }
    }

    /// The variable that overrides where its program is.
    pub fn variable(self) -> &'static str {
        match self {
            Engine::Jaeger => "OBSERVE_JAEGER_BIN",
            Engine::VictoriaLogs => "OBSERVE_VICTORIALOGS_BIN",
            Engine::Prometheus => "OBSERVE_PROMETHEUS_BIN",
            Engine::Alertmanager => "OBSERVE_ALERTMANAGER_BIN",
        }
    }

    fn program(self) -> &'static str {
        match self {
            Engine::Jaeger => "jaeger",
            Engine::VictoriaLogs => "victoria-logs",
            Engine::Prometheus => "prometheus",
            Engine::Alertmanager => "prometheus-alertmanager",
        }
    }

    fn how_to_get(self) -> &'static str {
        match self {
            Engine::Jaeger => "build it with `tools/build jaeger` (Go and the Go module proxy; about 7 minutes the first time)",
            Engine::VictoriaLogs => "build it with `tools/build victoria-logs` (Go and the Go module proxy)",
            Engine::Prometheus => "install Debian's package: `apt-get install prometheus` (./scripts/test does)",
            Engine::Alertmanager => "install Debian's package: `apt-get install prometheus-alertmanager` (./scripts/test does)",
        }
    }

    /// Where its program is: the variable [`Engine::variable`], else
    /// `target/tools/bin` (Jaeger, VictoriaLogs) or `PATH` and `/usr/bin`
    /// (Prometheus, Alertmanager).
    pub fn locate(self) -> Result<PathBuf, Error> {
        self.locate_in(std::env::var_os(self.variable()))
    }

    /// [`locate`](Self::locate) with the variable's value given.
    fn locate_in(self, variable: Option<std::ffi::OsString>) -> Result<PathBuf, Error> {
        if let Some(p) = variable.filter(|p| !p.is_empty()) {
            let p = PathBuf::from(p);
            return if p.is_file() {
                Ok(p)
            } else {
                Err(Error::Missing {
                    engine: self.name(),
                    hint: format!("{}={} is not a file", self.variable(), p.display()),
                })
            };
        }
        self.locate_in_dir(&workspace_root().join("target/tools/bin"))
    }

    /// Looks in `tools` (Jaeger, VictoriaLogs) or on `PATH` and in `/usr/bin`.
    fn locate_in_dir(self, tools: &Path) -> Result<PathBuf, Error> {
        let candidates: Vec<PathBuf> = match self {
            Engine::Jaeger | Engine::VictoriaLogs => vec![tools.join(self.program())],
            Engine::Prometheus | Engine::Alertmanager => {
                let mut c: Vec<PathBuf> = std::env::var_os("PATH")
                    .map(|paths| {
                        std::env::split_paths(&paths)
                            .map(|d| d.join(self.program()))
                            .collect()
                    })
                    .unwrap_or_default();
                c.push(Path::new("/usr/bin").join(self.program()));
                c
            }
        };
        candidates
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .ok_or_else(|| Error::Missing {
                engine: self.name(),
                hint: format!(
                    "no {} at {}; {} (or set {})",
                    self.program(),
                    candidates
                        .first()
                        .map_or_else(String::new, |p| p.display().to_string()),
                    self.how_to_get(),
                    self.variable()
                ),
            })
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; the caller binds it next).
pub fn free_port() -> Result<u16, Error> {
    Ok(free_ports::<1>()?[0])
}

/// `N` distinct free ports on 127.0.0.1: all held at once while they are
/// found, so none is handed out twice.
pub fn free_ports<const N: usize>() -> Result<[u16; N], Error> {
    let mut held = Vec::with_capacity(N);
    let mut ports = [0u16; N];
    for p in &mut ports {
        let l = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| Error::io("finding a free port on 127.0.0.1", e))?;
        *p = l
            .local_addr()
            .map_err(|e| Error::io("finding a free port on 127.0.0.1", e))?
            .port();
        held.push(l);
    }
    Ok(ports)
}

/// The lines of a program's output worth showing when it failed: its
/// error lines (the last `lines` of them), else its last `lines` lines.
pub(crate) fn failure_lines(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let errors: Vec<&str> = all
        .iter()
        .copied()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("error") || l.contains("fatal") || l.contains("panic")
        })
        .collect();
    let pick = if errors.is_empty() { &all } else { &errors };
    pick[pick.len().saturating_sub(lines)..].join("\n")
}

/// A running engine: its output goes to `<dir>/<name>.log`; killed when dropped.
#[derive(Debug)]
pub struct Process {
    engine: Engine,
    program: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    /// Starts `program` with `args` and `envs` (added to this process's
    /// environment), its output appended to `log`.
    pub fn spawn(
        engine: Engine,
        program: PathBuf,
        args: Vec<String>,
        envs: Vec<(String, String)>,
        log: PathBuf,
    ) -> Result<Process, Error> {
        let mut p = Process {
            engine,
            program,
            args,
            envs,
            log,
            child: None,
        };
        p.start()?;
        Ok(p)
    }

    fn start(&mut self) -> Result<(), Error> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| Error::io(format!("opening {}", self.log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| Error::io(format!("opening {}", self.log.display()), e))?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| Error::Spawn {
                engine: self.engine.name(),
                program: self.program.display().to_string(),
                source,
            })?;
        self.child = Some(child);
        Ok(())
    }

    /// Which engine this is.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The file its output goes to.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The operating system's id of the running process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The last `lines` lines of its output.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Whether it has exited, and how.
    fn exited(&mut self) -> Option<String> {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => Some(status.to_string()),
            Some(Ok(None)) => None,
            Some(Err(e)) => Some(e.to_string()),
            None => Some("not running".to_owned()),
        }
    }

    /// Waits until `url` answers 2xx, for at most `timeout`. Fails at once,
    /// with the end of its output, if the process exits meanwhile.
    pub async fn wait_ready(&mut self, url: &str, timeout: Duration) -> Result<(), Error> {
        let client = crate::http::client();
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return Err(Error::Exited {
                    engine: self.engine.name(),
                    status,
                    output: failure_lines(
                        &std::fs::read_to_string(&self.log).unwrap_or_default(),
                        8,
                    ),
                });
            }
            let ok = client
                .get(url)
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(());
            }
            if t0.elapsed() >= timeout {
                return Err(Error::NotReady {
                    engine: self.engine.name(),
                    url: url.to_owned(),
                    waited: timeout,
                    output: failure_lines(
                        &std::fs::read_to_string(&self.log).unwrap_or_default(),
                        8,
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops it: SIGTERM, then SIGKILL after `grace`. Returns at once if it
    /// is not running.
    pub async fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let t0 = Instant::now();
            while t0.elapsed() < grace {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    /// Kills it at once (SIGKILL): what a crash looks like to its clients.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sets `key` in the environment of its next start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.envs.retain(|(k, _)| k != key);
        self.envs.push((key.to_owned(), value.to_owned()));
    }

    /// Starts it again with the same program, arguments and environment.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.kill();
        self.start()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_lines_prefer_the_error_lines() {
        let out = "info a\nerror: bind: address already in use\ninfo b\nError: cannot start pipelines\ninfo c\n";
        assert_eq!(
            failure_lines(out, 8),
            "error: bind: address already in use\nError: cannot start pipelines"
        );
        assert_eq!(failure_lines("one\ntwo\nthree\n", 2), "two\nthree");
    }

    #[test]
    fn free_ports_are_distinct() {
        let p = free_ports::<16>().expect("ports");
        let set: std::collections::BTreeSet<u16> = p.iter().copied().collect();
        assert_eq!(set.len(), 16);
    }

    #[test]
    fn a_missing_engine_says_how_to_get_it() {
        let err = Engine::Jaeger
            .locate_in(Some("/nonexistent/jaeger".into()))
            .expect_err("missing");
        assert_eq!(
            err.to_string(),
            "Jaeger (the OpenTelemetry Collector) is not available: OBSERVE_JAEGER_BIN=/nonexistent/jaeger is not a file"
        );
        let err = Engine::VictoriaLogs
            .locate_in_dir(std::path::Path::new("/nonexistent/bin"))
            .expect_err("missing");
        assert_eq!(
            err.to_string(),
            "VictoriaLogs is not available: no victoria-logs at /nonexistent/bin/victoria-logs; build it with `tools/build victoria-logs` (Go and the Go module proxy) (or set OBSERVE_VICTORIALOGS_BIN)"
        );
    }
}
