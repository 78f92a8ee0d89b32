//! Compression: one trace and the incident's traffic, uncompressed and
//! gzip, through a forwarder that counts the bytes on the wire; and the
//! one-trace export the TLS scenarios share.

use crate::scenarios::{ensure, eventually, tempdir};
use crate::services::{self, Bank, Services, Telemetry};
use crate::BoxError;
use observe_stack::{Collector, CollectorOptions, JaegerTrace};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// A TCP forwarder to `upstream` that counts the bytes clients send
/// through it: what an exporter puts on the wire.
struct WireCounter {
    url: String,
    sent: Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl WireCounter {
    async fn start(upstream: std::net::SocketAddr) -> Result<WireCounter, BoxError> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = Arc::clone(&sent);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let back = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    });
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                counted.fetch_add(n as u64, Ordering::Relaxed);
                                if sw.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = sw.shutdown().await;
                    let _ = back.await;
                });
            }
        });
        Ok(WireCounter { url, sent, task })
    }
}

impl Drop for WireCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Spans per trace the compression scenario sends.
pub(crate) const COMPRESSED_SPANS: usize = 200;

/// One trace of [`COMPRESSED_SPANS`] spans, shaped like a request's (route,
/// order id, gateway, a message-sized attribute), failed so that the tail
/// sampler keeps it, exported by a telemetry of its own to `endpoint`
/// (with `extra` variables); an export failure is the shutdown's error.
pub(crate) async fn send_one_trace(
    service: &str,
    protocol: &str,
    compression: &str,
    endpoint: &str,
    extra: &[(&str, &str)],
) -> Result<(), BoxError> {
    use observe::testing::TelemetryBuilderExt as _;
    let vars: BTreeMap<String, String> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", compression),
        ("OTEL_METRICS_EXPORTER", "none"),
        ("OTEL_LOGS_EXPORTER", "none"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let telemetry = observe::Telemetry::builder(service)
        .env_source(move |k| vars.get(k).cloned())
        .log_output(observe::LogOutput::Sink(Arc::new(
            observe::MemorySink::new(),
        )))
        .build()?;
    let (dispatch, guard) = telemetry.into_parts();
    observe::tracing::dispatcher::with_default(&dispatch, || {
        let root = observe::tracing::info_span!("POST /pay", http.route = "/pay");
        root.in_scope(|| {
            for n in 1..COMPRESSED_SPANS {
                observe::tracing::info_span!(
                    "charge_attempt",
                    order_id = %format!("ord-{n:06}"),
                    gateway = "bank",
                    attempt = n as u64,
                    detail = "bank gateway answered 504 Gateway Timeout after 30000 ms; retrying with backoff"
                )
                .in_scope(|| {});
            }
            observe::mark_failed("gateway_timeout");
        });
    });
    drop(dispatch);
    tokio::task::spawn_blocking(move || guard.shutdown(Duration::from_secs(10))).await??;
    Ok(())
}

/// Waits (30 s at most) for `service`'s one trace of [`COMPRESSED_SPANS`]
/// spans in the trace store, and returns it.
pub(crate) async fn whole_trace(
    jaeger: &observe_stack::Jaeger,
    service: &str,
) -> Result<JaegerTrace, BoxError> {
    eventually(
        &format!("{service}: its trace whole in the trace store"),
        Duration::from_secs(30),
        || {
            let (jaeger, service) = (jaeger.clone(), service.to_owned());
            async move {
                let traces = jaeger.find_traces(&service, &[]).await?;
                match traces.as_slice() {
                    [t] if t.spans.len() == COMPRESSED_SPANS => Ok(t.clone()),
                    other => Err(format!(
                        "{} traces, spans {:?}",
                        other.len(),
                        other.iter().map(|t| t.spans.len()).collect::<Vec<_>>()
                    )
                    .into()),
                }
            }
        },
    )
    .await
}

/// gzip on both protocols against the real Collector: the same trace
/// arrives whole in the trace store, with a fraction of the bytes.
pub(crate) async fn compression() -> Result<(), BoxError> {
    let collector =
        Collector::start(CollectorOptions::new().decision_wait(Duration::from_secs(2))).await?;
    let jaeger = collector.jaeger();
    let addr = |url: String| -> Result<std::net::SocketAddr, BoxError> {
        Ok(url.trim_start_matches("http://").parse()?)
    };
    let mut wire: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let mut trees: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    for protocol in ["grpc", "http/protobuf"] {
        let upstream = match protocol {
            "grpc" => addr(collector.otlp_grpc_url())?,
            _ => addr(collector.otlp_http_url())?,
        };
        for compression in ["none", "gzip"] {
            let counter = WireCounter::start(upstream).await?;
            let service = format!("compression-{}-{compression}", protocol.replace('/', "-"));
            send_one_trace(&service, protocol, compression, &counter.url, &[]).await?;
            let trace = whole_trace(&jaeger, &service).await?;
            // The tree of span names (the service name aside: each run has its own).
            let mut tree: Vec<String> = trace
                .tree()
                .iter()
                .map(|l| l.replace(&service, "svc"))
                .collect();
            tree.sort();
            trees.insert((protocol, compression), tree);
            wire.insert(
                (protocol, compression),
                counter.sent.load(Ordering::Relaxed),
            );
        }
        let (none, gzip) = (wire[&(protocol, "none")], wire[&(protocol, "gzip")]);
        println!(
            "  compression, {protocol}: one trace of {COMPRESSED_SPANS} spans, {none} bytes uncompressed, {gzip} bytes gzip ({:.1}x smaller)",
            none as f64 / gzip.max(1) as f64
        );
        ensure(gzip > 0 && gzip * 3 < none, || {
            format!("{protocol}: gzip sent {gzip} bytes, uncompressed {none}")
        })?;
        ensure(
            trees[&(protocol, "none")] == trees[&(protocol, "gzip")],
            || format!("{protocol}: the gzip trace differs from the uncompressed one"),
        )?;
    }
    incident_bytes(&collector).await
}

/// The incident's traffic on the wire: the services (checkout, the Python
/// fraud service, payment) serve `INCIDENT_ORDERS` orders while the bank
/// answers 504, once uncompressed and once with
/// `OTEL_EXPORTER_OTLP_COMPRESSION=gzip`, exporting over OTLP/HTTP through a
/// counting forwarder to the Collector; every byte their spans, metrics and
/// log records take until they shut down is counted (HTTP headers included),
/// and gzip must be at least 1.5x smaller.
async fn incident_bytes(collector: &Collector) -> Result<(), BoxError> {
    const INCIDENT_ORDERS: usize = 50;
    let upstream: std::net::SocketAddr = collector
        .otlp_http_url()
        .trim_start_matches("http://")
        .parse()?;
    let mut bytes = BTreeMap::new();
    for compression in ["none", "gzip"] {
        let dir = tempdir("observe-incident-bytes-")?;
        let bank = Arc::new(Bank::default());
        bank.failing.store(true, Ordering::SeqCst);
        let bank_addr = services::start_bank(Arc::clone(&bank)).await?;
        let counter = WireCounter::start(upstream).await?;
        let telemetry = Telemetry {
            otlp_endpoint: counter.url.clone(),
            metric_interval: Duration::from_secs(5),
            in_process_tail_sampling: false,
            extra: vec![("OTEL_EXPORTER_OTLP_COMPRESSION".into(), compression.into())],
        };
        let mut svcs = Services::start(&telemetry, bank_addr, dir.path())?;
        let client = services::client();
        for n in 0..INCIDENT_ORDERS {
            services::place_order(
                &client,
                &svcs.checkout.url,
                &format!("bytes-{compression}-{n}"),
            )
            .await?;
        }
        // Stopping flushes every service's spans, metrics and records.
        tokio::task::block_in_place(|| svcs.stop());
        bytes.insert(compression, counter.sent.load(Ordering::Relaxed));
    }
    let (none, gzip) = (bytes["none"], bytes["gzip"]);
    println!(
        "  compression, the incident's traffic ({INCIDENT_ORDERS} orders while the bank answers 504, \
         three services, OTLP/HTTP): {none} bytes uncompressed ({} per order), {gzip} bytes gzip \
         ({} per order), {:.1}x smaller",
        none / INCIDENT_ORDERS as u64,
        gzip / INCIDENT_ORDERS as u64,
        none as f64 / gzip.max(1) as f64
    );
    // Small batches (the services' 200 ms batch delay) and the HTTP headers
    // of every request, which gzip does not touch, keep this well below
    // the one big trace's ratio.
    ensure(gzip > 0 && gzip * 3 < none * 2, || {
        format!("the incident's traffic: gzip sent {gzip} bytes, uncompressed {none}")
    })
}
