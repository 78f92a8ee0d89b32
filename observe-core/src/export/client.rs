//! observe's OTLP client: one signal's export requests over gRPC (tonic) or
//! HTTP/protobuf (hyper), retried as [`retry`](super::retry) says within the
//! export timeout, with an exact account of every item: delivered, rejected
//! by the receiver (a non-retryable answer, or the rejected count of a
//! partial success), or not delivered.
//!
//! A batch is encoded once (opentelemetry-proto's transform, prost, gzip if
//! set) and a retry sends the same bytes again: nothing is copied per
//! attempt, and a retry holds one encoded batch, never more.
//!
//! Why not opentelemetry-otlp's exporters: they retry, but report a partial
//! success and each retry only as internal log events, and copy the whole
//! batch for every attempt.

use super::batch::{ExportError, ExportResult, Rejected};
use super::dropped::{DropStats, Signal};
use super::otlp::{Compression, OtlpTarget, Protocol};
use super::retry::{self, Backoff, Verdict};
use bytes::{Buf as _, BufMut as _, Bytes};
use http::uri::PathAndQuery;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use std::error::Error as StdError;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

/// An export service's answer: what a partial success rejected.
pub(crate) trait Answer: prost::Message + Default + Send + 'static {
    /// The rejected count and the receiver's message, if it sent a partial success.
    fn partial(&self) -> Option<(i64, &str)>;
}

impl Answer for ExportTraceServiceResponse {
    fn partial(&self) -> Option<(i64, &str)> {
        let p = self.partial_success.as_ref()?;
        Some((p.rejected_spans, p.error_message.as_str()))
    }
}

impl Answer for ExportLogsServiceResponse {
    fn partial(&self) -> Option<(i64, &str)> {
        let p = self.partial_success.as_ref()?;
        Some((p.rejected_log_records, p.error_message.as_str()))
    }
}

impl Answer for ExportMetricsServiceResponse {
    fn partial(&self) -> Option<(i64, &str)> {
        let p = self.partial_success.as_ref()?;
        Some((p.rejected_data_points, p.error_message.as_str()))
    }
}

/// How many OTLP exports of one pipeline may be in flight at once: the
/// next batch is encoded and sent while earlier ones wait for their
/// answer (or retry), so a pipeline's rate is not one batch per round
/// trip. Each holds one encoded batch (at most `max_export_batch_size`
/// items) outside the queue.
pub(crate) const OTLP_MAX_IN_FLIGHT: usize = 4;

/// One signal's OTLP client.
pub(crate) struct OtlpClient {
    transport: Transport,
    timeout: Duration,
    stats: Arc<DropStats>,
}

enum Transport {
    Grpc {
        grpc: tonic::client::Grpc<Channel>,
        metadata: tonic::metadata::MetadataMap,
        path: PathAndQuery,
    },
    Http {
        client: Box<dyn opentelemetry_http::HttpClient>,
        uri: http::Uri,
        headers: http::HeaderMap,
        gzip: bool,
    },
}

/// How one attempt ended.
enum Attempt<R> {
    Answered(R),
    Failed { verdict: Verdict, text: String },
}

const USER_AGENT: &str = concat!("observe/", env!("CARGO_PKG_VERSION"));

impl OtlpClient {
    /// The client of `t` for `signal`. Call inside a tokio runtime (the
    /// gRPC channel is created, lazily connected, there). Retries and
    /// their waits are counted in `stats`.
    pub(crate) fn new(
        t: &OtlpTarget,
        signal: Signal,
        stats: Arc<DropStats>,
    ) -> Result<Self, String> {
        let transport = match t.protocol {
            Protocol::Grpc => {
                let mut endpoint = Channel::from_shared(t.endpoint.clone())
                    .map_err(|e| format!("{:?} is not a valid gRPC endpoint: {e}", t.endpoint))?
                    .connect_timeout(t.timeout)
                    .user_agent(USER_AGENT)
                    .map_err(|e| e.to_string())?;
                if t.is_https() {
                    endpoint = endpoint
                        .tls_config(t.tls.tonic_config())
                        .map_err(|e| format!("TLS for {}: {}", t.endpoint, chain(&e)))?;
                }
                let mut grpc = tonic::client::Grpc::new(endpoint.connect_lazy());
                if t.compression == Compression::Gzip {
                    grpc = grpc
                        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
                }
                Transport::Grpc {
                    grpc,
                    metadata: super::otlp::metadata(&t.headers)?,
                    path: PathAndQuery::from_static(grpc_path(signal)),
                }
            }
            Protocol::HttpProtobuf => {
                let uri: http::Uri = t
                    .endpoint
                    .parse()
                    .map_err(|e| format!("{:?} is not a valid URL: {e}", t.endpoint))?;
                let client: Box<dyn opentelemetry_http::HttpClient> = if t.is_https() {
                    Box::new(super::otlp::https_client(t)?)
                } else {
                    Box::new(super::otlp::http_client(t.timeout))
                };
                let gzip = t.compression == Compression::Gzip;
                Transport::Http {
                    client,
                    uri,
                    headers: super::otlp::http_headers(&t.headers, gzip, USER_AGENT)?,
                    gzip,
                }
            }
        };
        Ok(OtlpClient {
            transport,
            timeout: t.timeout,
            stats,
        })
    }

    /// [`export`](Self::export) as a future that owns its client (one of
    /// several a pipeline keeps in flight).
    pub(crate) fn send<R: Answer>(
        self: &Arc<Self>,
        body: Vec<u8>,
        items: u64,
    ) -> impl Future<Output = ExportResult> + Send + 'static {
        let client = Arc::clone(self);
        async move { client.export::<R>(body, items).await }
    }

    /// Sends one encoded request of `items` items until it is answered,
    /// refused for good, or the export timeout leaves no time for another
    /// attempt. `Ok` holds what a partial success rejected.
    pub(crate) async fn export<R: Answer>(
        &self,
        body: Vec<u8>,
        items: u64,
    ) -> Result<Option<Rejected>, ExportError> {
        let body = match &self.transport {
            Transport::Http { gzip: true, .. } => gzip(&body).map_err(ExportError::Failed)?,
            _ => Bytes::from(body),
        };
        let started = Instant::now();
        let mut backoff = Backoff::new(crate::ids::random_u64());
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let left = self.timeout.saturating_sub(started.elapsed());
            let attempt = match tokio::time::timeout(left, self.attempt::<R>(&body)).await {
                Ok(a) => a,
                Err(_) => {
                    return Err(ExportError::Failed(given_up(
                        "no answer".to_owned(),
                        attempts,
                        started.elapsed(),
                        self.timeout,
                    )))
                }
            };
            let (verdict, text) = match attempt {
                Attempt::Answered(r) => return Ok(rejected(&r, items)),
                Attempt::Failed { verdict, text } => (verdict, text),
            };
            match verdict {
                Verdict::Reject => return Err(ExportError::Rejected(text)),
                Verdict::Fail => return Err(ExportError::Failed(text)),
                Verdict::Retry(asked) => {
                    let wait = backoff.wait(asked);
                    let elapsed = started.elapsed();
                    if elapsed + wait >= self.timeout {
                        return Err(ExportError::Failed(given_up(
                            text,
                            attempts,
                            elapsed,
                            self.timeout,
                        )));
                    }
                    self.stats.retried(wait);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn attempt<R: Answer>(&self, body: &Bytes) -> Attempt<R> {
        match &self.transport {
            Transport::Grpc {
                grpc,
                metadata,
                path,
            } => {
                let mut grpc = grpc.clone();
                if let Err(e) = grpc.ready().await {
                    return Attempt::Failed {
                        verdict: retry::transport(&e),
                        text: chain(&e),
                    };
                }
                let request = tonic::Request::from_parts(
                    metadata.clone(),
                    http::Extensions::default(),
                    body.clone(),
                );
                match grpc
                    .unary(request, path.clone(), RawCodec::<R>(PhantomData))
                    .await
                {
                    Ok(response) => Attempt::Answered(response.into_inner()),
                    Err(status) => grpc_failure(&status),
                }
            }
            Transport::Http {
                client,
                uri,
                headers,
                ..
            } => {
                let mut request = http::Request::new(body.clone());
                *request.method_mut() = http::Method::POST;
                *request.uri_mut() = uri.clone();
                *request.headers_mut() = headers.clone();
                match client.send_bytes(request).await {
                    Err(e) => Attempt::Failed {
                        verdict: retry::transport(&*e),
                        text: chain(&*e),
                    },
                    Ok(response) if response.status().is_success() => {
                        // A 2xx without a decodable body still delivered.
                        Attempt::Answered(R::decode(response.into_body()).unwrap_or_default())
                    }
                    Ok(response) => http_failure(&response),
                }
            }
        }
    }
}

/// The gRPC method of `signal`'s export service.
fn grpc_path(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    }
}

fn grpc_failure<R>(status: &tonic::Status) -> Attempt<R> {
    // A status with a source was made here from a transport error (no
    // answer): retried, unless TLS failed. Else it is the receiver's answer.
    let verdict = match status.source() {
        Some(source) => retry::transport(source),
        None => retry::grpc(
            status.code(),
            status.get_details_retry_info().map(|r| r.retry_delay),
        ),
    };
    let mut text = format!("gRPC status {:?}", status.code());
    let cause = status.source().map(chain);
    // A transport error's status repeats its cause as the message.
    let message = status.message();
    if !message.is_empty() && !cause.as_deref().is_some_and(|c| c.contains(message)) {
        text.push_str(": ");
        text.push_str(message);
    }
    if let Some(cause) = cause {
        text.push_str(": ");
        text.push_str(&cause);
    }
    Attempt::Failed {
        verdict,
        text: super::without_repeats(&text),
    }
}

fn http_failure<R>(response: &http::Response<Bytes>) -> Attempt<R> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok());
    let verdict = retry::http(status.as_u16(), retry_after, SystemTime::now());
    let mut text = format!("HTTP {status}");
    if let Some(detail) = error_detail(response.body()) {
        text.push_str(": ");
        text.push_str(&detail);
    }
    if let (Verdict::Retry(Some(d)), Some(_)) = (verdict, retry_after) {
        text.push_str(&format!(" (Retry-After {} ms)", d.as_millis()));
    }
    Attempt::Failed { verdict, text }
}

/// The receiver's reason in an error body: a `google.rpc.Status`'s message
/// (what OTLP/HTTP receivers send), else short printable text.
fn error_detail(body: &Bytes) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    if let Ok(s) = <tonic_types::Status as prost::Message>::decode(body.clone()) {
        if !s.message.is_empty() {
            return Some(one_line(&s.message));
        }
    }
    let text = std::str::from_utf8(body).ok()?;
    (!text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t'))
    .then(|| one_line(text))
}

/// `s` on one line, at most 200 characters.
fn one_line(s: &str) -> String {
    let flat: String = s
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// A partial success's rejected items (at most the batch's; a negative or
/// zero count rejects nothing).
fn rejected<R: Answer>(answer: &R, items: u64) -> Option<Rejected> {
    let (n, message) = answer.partial()?;
    let n = u64::try_from(n).ok().filter(|n| *n > 0)?.min(items);
    let reason = if message.is_empty() {
        format!("the receiver rejected {n} of {items}")
    } else {
        format!(
            "the receiver rejected {n} of {items}: {}",
            one_line(message)
        )
    };
    Some(Rejected { items: n, reason })
}

fn given_up(last: String, attempts: u32, elapsed: Duration, timeout: Duration) -> String {
    format!(
        "{last} (gave up after {attempts} attempt{} in {} ms: the export timeout is {} ms)",
        if attempts == 1 { "" } else { "s" },
        elapsed.as_millis(),
        timeout.as_millis()
    )
}

/// An error and its sources, on one line, without repeats.
pub(crate) fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    super::without_repeats(&text)
}

fn gzip(body: &[u8]) -> Result<Bytes, String> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::default(),
    );
    enc.write_all(body)
        .and_then(|()| enc.finish())
        .map(Bytes::from)
        .map_err(|e| format!("gzip: {e}"))
}

/// A codec that sends an already encoded message and decodes the answer
/// with prost.
struct RawCodec<R>(PhantomData<R>);

impl<R: Answer> Codec for RawCodec<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = RawEncoder;
    type Decoder = ProstDecoder<R>;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> ProstDecoder<R> {
        ProstDecoder(PhantomData)
    }
}

struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

struct ProstDecoder<R>(PhantomData<R>);

impl<R: Answer> Decoder for ProstDecoder<R> {
    type Item = R;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<R>, tonic::Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        R::decode(bytes)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("undecodable answer: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;

    #[test]
    fn a_partial_success_rejects_exactly_its_count() {
        let answer = |n: i64, m: &str| ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: n,
                error_message: m.to_owned(),
            }),
        };
        let r = rejected(&answer(3, "span too large\n"), 10).expect("rejected");
        assert_eq!(r.items, 3);
        assert_eq!(r.reason, "the receiver rejected 3 of 10: span too large");
        assert!(rejected(&answer(0, "just a warning"), 10).is_none());
        assert!(rejected(&answer(-4, ""), 10).is_none());
        assert_eq!(rejected(&answer(99, ""), 10).expect("capped").items, 10);
        assert!(rejected(&ExportTraceServiceResponse::default(), 10).is_none());
    }

    #[test]
    fn error_bodies_give_the_receivers_reason() {
        let status = tonic_types::Status {
            code: 3,
            message: "invalid span id".into(),
            details: vec![],
        };
        let body = Bytes::from(prost::Message::encode_to_vec(&status));
        assert_eq!(error_detail(&body).as_deref(), Some("invalid span id"));
        assert_eq!(
            error_detail(&Bytes::from_static(b"quota exceeded\n")).as_deref(),
            Some("quota exceeded")
        );
        assert_eq!(error_detail(&Bytes::from_static(b"\x00\x01\x02")), None);
        assert_eq!(error_detail(&Bytes::new()), None);
        let long = "x".repeat(300);
        assert_eq!(
            error_detail(&Bytes::from(long)).map(|s| s.chars().count()),
            Some(201)
        );
    }

    #[test]
    fn a_given_up_export_says_how_long_it_tried() {
        assert_eq!(
            given_up(
                "HTTP 503 Service Unavailable".into(),
                4,
                Duration::from_millis(1234),
                Duration::from_secs(2)
            ),
            "HTTP 503 Service Unavailable (gave up after 4 attempts in 1234 ms: the export timeout is 2000 ms)"
        );
    }
}
