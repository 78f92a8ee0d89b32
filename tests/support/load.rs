//! The load of tests/load.rs and tests/collector_restart.rs: an axum
//! service instrumented with observe (`GET /orders/{id}`: one server span,
//! one `order_read` log record) and an open-loop client sending `RATE`
//! requests/s over real TCP on schedule, whatever the answers do.

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::rss_bytes;

/// Serves the orders app on a free 127.0.0.1 port (on the current runtime,
/// recording into the global telemetry).
pub async fn orders_app() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new()
        .route(
            "/orders/{id}",
            get(|| async {
                observe::info!("order_read");
                "ok"
            }),
        )
        .layer(observe::tower::ObserveLayer::new());
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Requests per second.
pub const RATE: u64 = 2000;

pub fn phase_secs() -> u64 {
    std::env::var("OBSERVE_LOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

/// stdout stand-in: counts the JSON lines written, and keeps the
/// `telemetry_dropped` ones with the number of lines written before each.
#[derive(Clone, Default)]
pub struct LineCounter(pub Arc<AtomicU64>, Arc<Mutex<Kept>>);

#[derive(Default)]
struct Kept {
    /// The line being written (a line may come in several writes).
    partial: Vec<u8>,
    dropped: Vec<(u64, String)>,
}

impl LineCounter {
    /// The `telemetry_dropped` lines so far, with the lines written before each.
    pub fn dropped_lines(&self) -> Vec<(u64, serde_json::Value)> {
        self.1
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .dropped
            .iter()
            .map(|(n, l)| {
                let v = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"));
                (*n, v)
            })
            .collect()
    }
}

impl Write for LineCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut kept = self.1.lock().unwrap_or_else(|e| e.into_inner());
        kept.partial.extend_from_slice(buf);
        while let Some(end) = kept.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = kept.partial.drain(..=end).collect();
            let before = self.0.fetch_add(1, Ordering::Relaxed);
            if line.windows(17).any(|w| w == b"telemetry_dropped") {
                let text = String::from_utf8_lossy(&line[..end]).into_owned();
                if text.contains("\"event\":\"telemetry_dropped\"") {
                    kept.dropped.push((before, text));
                }
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

/// One answered request.
pub struct Sample {
    pub latency_us: u64,
    pub done: Instant,
    pub trace_id: String,
}

async fn one(client: HttpClient, addr: SocketAddr, i: u64) -> Sample {
    let t = Instant::now();
    let uri = format!("http://{addr}/orders/{i}");
    let res = client
        .get(uri.parse().expect("uri"))
        .await
        .unwrap_or_else(|e| panic!("request {i} failed: {e}"));
    assert_eq!(res.status(), 200, "request {i}");
    let trace_id = res
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(3..35))
        .expect("traceparent on the response")
        .to_owned();
    res.into_body().collect().await.expect("body");
    Sample {
        latency_us: t.elapsed().as_micros() as u64,
        done: Instant::now(),
        trace_id,
    }
}

/// A phase's results.
pub struct Phase {
    pub samples: Vec<Sample>,
    pub p50: u64,
    pub p99: u64,
    pub max_rss: u64,
}

/// Sends `RATE` requests/s for `secs` seconds on schedule (1 ms ticks), and
/// samples resident memory meanwhile.
pub async fn drive(client: &HttpClient, addr: SocketAddr, first: u64, secs: u64) -> Phase {
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let per_tick = RATE / 1000;
    let mut set = tokio::task::JoinSet::new();
    let mut max_rss = rss_bytes();
    for n in 0..secs * 1000 {
        tick.tick().await;
        for k in 0..per_tick {
            set.spawn(one(client.clone(), addr, first + n * per_tick + k));
        }
        if n % 100 == 0 {
            max_rss = max_rss.max(rss_bytes());
        }
    }
    let mut samples = Vec::with_capacity((secs * RATE) as usize);
    while let Some(r) = set.join_next().await {
        samples.push(r.expect("request task"));
    }
    let mut lat: Vec<u64> = samples.iter().map(|s| s.latency_us).collect();
    lat.sort_unstable();
    Phase {
        p50: lat[lat.len() / 2],
        p99: lat[lat.len() * 99 / 100],
        samples,
        max_rss: max_rss.max(rss_bytes()),
    }
}
