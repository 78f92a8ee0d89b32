//! One signal's resolved OTLP destination (its transport, endpoint,
//! headers, timeout, compression and TLS) and the HTTP clients and headers
//! [`OtlpClient`](super::client::OtlpClient) sends with. Which destination each signal
//! has is decided at init, from the builder and the `OTEL_EXPORTER_OTLP_*`
//! variables:
//!
//! | setting | builder | variables (the signal's own wins over the general one) | default |
//! |---|---|---|---|
//! | endpoint | [`otlp_endpoint`](crate::TelemetryBuilder::otlp_endpoint) | `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT` (used as is), `OTEL_EXPORTER_OTLP_ENDPOINT` (HTTP: `/v1/<signal>` appended) | none: no OTLP export |
//! | protocol | [`otlp_protocol`](crate::TelemetryBuilder::otlp_protocol) | `OTEL_EXPORTER_OTLP_{SIGNAL}_PROTOCOL`, `OTEL_EXPORTER_OTLP_PROTOCOL` | `http/protobuf` |
//! | headers | [`otlp_header`](crate::TelemetryBuilder::otlp_header) | `OTEL_EXPORTER_OTLP_{SIGNAL}_HEADERS`, `OTEL_EXPORTER_OTLP_HEADERS` | none |
//! | timeout | [`otlp_timeout`](crate::TelemetryBuilder::otlp_timeout) | `OTEL_EXPORTER_OTLP_{SIGNAL}_TIMEOUT`, `OTEL_EXPORTER_OTLP_TIMEOUT` (ms) | 10 s |
//! | compression | [`otlp_compression`](crate::TelemetryBuilder::otlp_compression) | `OTEL_EXPORTER_OTLP_{SIGNAL}_COMPRESSION`, `OTEL_EXPORTER_OTLP_COMPRESSION` (`gzip`, `none`) | none |
//! | server's CA | [`otlp_certificate`](crate::TelemetryBuilder::otlp_certificate) | `OTEL_EXPORTER_OTLP_{SIGNAL}_CERTIFICATE`, `OTEL_EXPORTER_OTLP_CERTIFICATE` (PEM file) | the system's roots |
//! | client identity (mTLS) | [`otlp_client_certificate`](crate::TelemetryBuilder::otlp_client_certificate) | `OTEL_EXPORTER_OTLP_{SIGNAL}_CLIENT_CERTIFICATE` and `_CLIENT_KEY`, `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` and `_CLIENT_KEY` (PEM files) | none |
//! | gRPC without a scheme | [`otlp_insecure`](crate::TelemetryBuilder::otlp_insecure) | `OTEL_EXPORTER_OTLP_{SIGNAL}_INSECURE`, `OTEL_EXPORTER_OTLP_INSECURE` (`true`: `http://`) | `https://` |
//! | off | — | `OTEL_{TRACES,METRICS,LOGS}_EXPORTER=none` | on |

use super::tls::TlsFiles;
use crate::error::InitError;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// OTLP transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC (`grpc`, usually port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (`http/protobuf`, usually port 4318): the default.
    #[default]
    HttpProtobuf,
}

impl Protocol {
    /// The value of `OTEL_EXPORTER_OTLP_PROTOCOL` for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }
}

impl FromStr for Protocol {
    type Err = InitError;

    fn from_str(s: &str) -> Result<Self, InitError> {
        match s.trim() {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            other => Err(InitError::UnsupportedProtocol {
                value: other.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How OTLP request bodies are compressed (`OTEL_EXPORTER_OTLP_COMPRESSION`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed (`none`): the default.
    #[default]
    None,
    /// gzip (`gzip`): `Content-Encoding: gzip` over HTTP, `grpc-encoding: gzip` over gRPC.
    Gzip,
}

impl Compression {
    /// The variable's value for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
        }
    }

    /// Parses a variable's value (`gzip` or `none`, any case); `None` for anything else.
    pub(crate) fn parse(value: &str) -> Option<Self> {
        let v = value.trim();
        if v.eq_ignore_ascii_case("gzip") {
            Some(Compression::Gzip)
        } else if v.eq_ignore_ascii_case("none") {
            Some(Compression::None)
        } else {
            None
        }
    }
}

/// Default OTLP export timeout (`OTEL_EXPORTER_OTLP_TIMEOUT` default).
pub const DEFAULT_OTLP_TIMEOUT: Duration = Duration::from_secs(10);

/// One signal's resolved OTLP destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OtlpTarget {
    /// The full URL: for HTTP, including `/v1/<signal>`.
    pub(crate) endpoint: String,
    pub(crate) protocol: Protocol,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Duration,
    pub(crate) compression: Compression,
    /// For an `https://` endpoint: the roots and the client's identity.
    pub(crate) tls: TlsFiles,
}

impl OtlpTarget {
    /// `OTLP <protocol> <endpoint>`, as export errors name it.
    pub(crate) fn describe(&self) -> String {
        format!("OTLP {} {}", self.protocol, self.endpoint)
    }

    /// Whether the endpoint is `https://` (TLS, whatever else is set).
    pub(crate) fn is_https(&self) -> bool {
        self.endpoint
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    }
}

/// An async hyper client: it runs on the pipeline's own runtime (the
/// blocking reqwest client must not run inside one).
pub(crate) fn http_client(timeout: Duration) -> opentelemetry_http::hyper::HyperClient {
    opentelemetry_http::hyper::HyperClient::with_default_connector(timeout, None)
}

/// The same over TLS, and only TLS: its connector refuses `http://`, so
/// nothing meant for an `https://` endpoint is ever sent in clear text.
pub(crate) fn https_client(
    t: &OtlpTarget,
) -> Result<
    opentelemetry_http::hyper::HyperClient<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    >,
    String,
> {
    let config = t
        .tls
        .rustls_config()
        .map_err(|e| format!("TLS for {}: {e}", t.endpoint))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .build();
    Ok(opentelemetry_http::hyper::HyperClient::new(
        connector, t.timeout, None,
    ))
}

/// The headers of every OTLP/HTTP request: the configured ones, then the
/// content type, encoding and user agent (which the configured ones cannot
/// replace).
pub(crate) fn http_headers(
    headers: &[(String, String)],
    gzip: bool,
    user_agent: &'static str,
) -> Result<http::HeaderMap, String> {
    use http::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT};
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("{k:?} is not a valid HTTP header name"))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| format!("the value of {k:?} is not a valid HTTP header value"))?;
        map.append(name, value);
    }
    map.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    if gzip {
        map.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    } else {
        map.remove(CONTENT_ENCODING);
    }
    map.insert(USER_AGENT, HeaderValue::from_static(user_agent));
    Ok(map)
}

/// The configured headers as gRPC metadata.
pub(crate) fn metadata(
    headers: &[(String, String)],
) -> Result<tonic::metadata::MetadataMap, String> {
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        let name = http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("{k:?} is not a valid gRPC metadata key"))?;
        let value = http::HeaderValue::from_str(v)
            .map_err(|_| format!("the value of {k:?} is not a valid gRPC metadata value"))?;
        map.append(name, value);
    }
    Ok(tonic::metadata::MetadataMap::from_headers(map))
}
