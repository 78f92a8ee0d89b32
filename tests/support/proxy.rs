//! A switchable HTTP proxy in front of a [`Receiver`](super::Receiver), for
//! the failure modes of a real network: the endpoint refusing connections,
//! black-holed (accepting and never answering), and back up.
//!
//! It forwards whole requests, decides per request at its arrival, and a
//! mode change closes connections gracefully (a forwarded request gets its
//! whole answer first; only connections holding never-forwarded requests are
//! cut), so every export request either reached the receiver and was
//! answered, or never reached it: the exporter's view of what was lost is
//! then exactly the receiver's, which is what exact drop accounting needs.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// What the proxy does with connections and requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Forwards every request to the receiver.
    Up = 0,
    /// No listener: connections are refused; open ones are cut.
    Refuse = 1,
    /// Accepts connections and requests and never answers.
    Hole = 2,
}

struct Shared {
    mode: AtomicU8,
    upstream: SocketAddr,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    control: mpsc::UnboundedSender<(Mode, std::sync::mpsc::Sender<()>)>,
    _thread: std::thread::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy on an ephemeral 127.0.0.1 port forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (control, mut ctl_rx) =
            mpsc::unbounded_channel::<(Mode, std::sync::mpsc::Sender<()>)>();
        let thread = std::thread::Builder::new()
            .name("otlp-proxy".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                rt.block_on(async move {
                    let first = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
                    let addr = first.local_addr().expect("addr");
                    addr_tx.send(addr).expect("send addr");
                    let shared = Arc::new(Shared {
                        mode: AtomicU8::new(Mode::Up as u8),
                        upstream,
                        client: Client::builder(TokioExecutor::new()).build_http(),
                    });
                    let mut listener = Some(first);
                    let mut conns = JoinSet::new();
                    let (close, _) = tokio::sync::watch::channel(0u64);
                    loop {
                        tokio::select! {
                            msg = ctl_rx.recv() => {
                                let Some((mode, ack)) = msg else { return };
                                shared.mode.store(mode as u8, Ordering::SeqCst);
                                if mode != Mode::Up {
                                    // Graceful close: forwarded requests get their answer;
                                    // what is left holds requests that were never forwarded.
                                    close.send_modify(|g| *g += 1);
                                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                                        while conns.join_next().await.is_some() {}
                                    })
                                    .await;
                                    conns.abort_all();
                                    while conns.join_next().await.is_some() {}
                                }
                                match mode {
                                    Mode::Refuse => listener = None,
                                    Mode::Up | Mode::Hole if listener.is_none() => {
                                        listener = Some(rebind(addr).await);
                                    }
                                    _ => {}
                                }
                                let _ = ack.send(());
                            }
                            accepted = accept(listener.as_ref()) => {
                                if let Ok((sock, _)) = accepted {
                                    conns.spawn(serve(sock, Arc::clone(&shared), close.subscribe()));
                                }
                            }
                            Some(_) = conns.join_next(), if !conns.is_empty() => {}
                        }
                    }
                });
            })
            .expect("proxy thread");
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("proxy started");
        Proxy {
            addr,
            control,
            _thread: thread,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches mode; returns once connections of the old mode are cut.
    pub fn set_mode(&self, mode: Mode) {
        let (ack, done) = std::sync::mpsc::channel();
        self.control.send((mode, ack)).expect("proxy running");
        done.recv_timeout(Duration::from_secs(30))
            .expect("proxy switched mode");
    }
}

async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Binds `addr` again (the port was released while refusing).
async fn rebind(addr: SocketAddr) -> TcpListener {
    for _ in 0..500 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("could not bind {addr} again");
}

async fn serve(
    sock: tokio::net::TcpStream,
    shared: Arc<Shared>,
    mut close: tokio::sync::watch::Receiver<u64>,
) {
    let svc = hyper::service::service_fn(move |req| {
        let shared = Arc::clone(&shared);
        async move { forward(req, &shared).await }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(sock), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = close.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

async fn forward(
    req: http::Request<Incoming>,
    shared: &Shared,
) -> Result<http::Response<Full<Bytes>>, hyper::Error> {
    if shared.mode.load(Ordering::SeqCst) != Mode::Up as u8 {
        // Decided at arrival: this request never reaches the receiver.
        return std::future::pending().await;
    }
    forward_up(req, shared).await
}

async fn forward_up(
    req: http::Request<Incoming>,
    shared: &Shared,
) -> Result<http::Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut up = http::Request::builder()
        .method(parts.method)
        .uri(format!("http://{}{path}", shared.upstream));
    for (k, v) in &parts.headers {
        up = up.header(k, v);
    }
    let up = up.body(Full::new(body)).expect("request");
    match shared.client.request(up).await {
        Ok(res) => {
            let (parts, body) = res.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok(http::Response::from_parts(parts, Full::new(body)))
        }
        Err(e) => Ok(http::Response::builder()
            .status(502)
            .body(Full::new(Bytes::from(e.to_string())))
            .expect("response")),
    }
}
