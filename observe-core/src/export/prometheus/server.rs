//! A standalone `/metrics` listener on its own thread (`OBSERVE_METRICS_ADDR`).
//!
//! ```text
//!  caller thread                 "observe-metrics" thread
//!  serve(addr) ── bind ──────▶  current-thread tokio runtime
//!       │                         accept loop ── per connection: hyper http/1
//!       ▼                           GET /metrics → PrometheusExporter::render
//!  ServerHandle ── shutdown/drop ─▶ loop ends, connections dropped, thread joined
//! ```

use super::service::{plain, respond};
use super::PrometheusExporter;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Why [`PrometheusExporter::serve`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address is not `host:port` (or `:port`).
    #[error("invalid metrics listen address {value:?} (expected host:port, e.g. 0.0.0.0:9464)")]
    InvalidAddress {
        /// The value given.
        value: String,
    },
    /// The port is taken or the address is not local.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// The server's runtime or thread could not be created.
    #[error("cannot start the metrics server {what}: {source}")]
    Start {
        /// `runtime` or `thread`.
        what: &'static str,
        /// The system error.
        #[source]
        source: io::Error,
    },
}

/// Parses a listen address such as `0.0.0.0:9464`, `[::]:9464`,
/// `localhost:9464` or `:9464` (all interfaces), as in `OBSERVE_METRICS_ADDR`.
pub fn parse_listen_addr(value: &str) -> Result<SocketAddr, ServeError> {
    let v = value.trim();
    let invalid = || ServeError::InvalidAddress {
        value: value.to_owned(),
    };
    if let Some(port) = v.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| invalid())?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Ok(a) = v.parse::<SocketAddr>() {
        return Ok(a);
    }
    v.to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(invalid)
}

/// The running listener; dropping it (or [`shutdown`](Self::shutdown)) stops
/// it and joins its thread.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address (with the actual port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, drops open connections and joins the thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn serve(
    exporter: PrometheusExporter,
    addr: SocketAddr,
) -> Result<ServerHandle, ServeError> {
    let bind = |source| ServeError::Bind { addr, source };
    let std_listener = std::net::TcpListener::bind(addr).map_err(bind)?;
    std_listener.set_nonblocking(true).map_err(bind)?;
    let local_addr = std_listener.local_addr().map_err(bind)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|source| ServeError::Start {
            what: "runtime",
            source,
        })?;
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(std_listener).map_err(bind)?
    };
    let (tx, rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("observe-metrics".to_owned())
        .spawn(move || runtime.block_on(accept_loop(listener, exporter, rx)))
        .map_err(|source| ServeError::Start {
            what: "thread",
            source,
        })?;
    Ok(ServerHandle {
        local_addr,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    exporter: PrometheusExporter,
    mut shutdown: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let exporter = exporter.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req: Request<Incoming>| {
                            let res = if req.uri().path() == "/metrics" {
                                respond(&exporter, req.method(), req.headers())
                            } else {
                                plain(StatusCode::NOT_FOUND, "not found; try /metrics\n".to_owned())
                            };
                            async move { Ok::<_, Infallible>(res) }
                        });
                        let _ = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(HEADER_READ_TIMEOUT)
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
                // Out of file descriptors and the like: back off, keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen_addr(":9464").expect("port only"),
            SocketAddr::from(([0, 0, 0, 0], 9464))
        );
        assert_eq!(
            parse_listen_addr("127.0.0.1:9464").expect("v4"),
            SocketAddr::from(([127, 0, 0, 1], 9464))
        );
        assert!(parse_listen_addr("[::1]:9464").is_ok());
        for bad in ["", "9464", ":", ":99999", "[::1]"] {
            assert!(
                matches!(
                    parse_listen_addr(bad),
                    Err(ServeError::InvalidAddress { .. })
                ),
                "{bad}"
            );
        }
    }
}
