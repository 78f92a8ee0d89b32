//! TLS and mutual TLS to the real Collector (Jaeger v2's otlp receiver with
//! `tls:` settings), on both protocols, with certificates made here (rcgen):
//! a private CA, server certificates (valid, expired, for another host
//! name) and a client certificate. Each failure must be one error that
//! names the endpoint and the reason, and an `https://` endpoint must never
//! receive a byte in clear text.

use crate::compression::{send_one_trace, whole_trace, COMPRESSED_SPANS};
use crate::scenarios::{ensure, tempdir};
use crate::BoxError;
use observe_stack::{Collector, CollectorOptions};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A CA of its own, and where its files are.
struct Pki {
    dir: tempfile::TempDir,
    issuer: Issuer<'static, KeyPair>,
    ca: PathBuf,
}

/// A certificate and its key, as PEM files.
struct Leaf {
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Result<Pki, BoxError> {
        let dir = tempdir(&format!("observe-tls-{name}-"))?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("observe test CA {name}"));
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, cert.pem())?;
        Ok(Pki {
            issuer: Issuer::new(params, key),
            dir,
            ca,
        })
    }

    /// A certificate for `names`, signed by this CA; `expired`: valid in 2020 only.
    fn leaf(
        &self,
        file: &str,
        names: &[&str],
        client: bool,
        expired: bool,
    ) -> Result<Leaf, BoxError> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or(file));
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let leaf = Leaf {
            cert: self.dir.path().join(format!("{file}.pem")),
            key: self.dir.path().join(format!("{file}.key")),
        };
        std::fs::write(&leaf.cert, cert.pem())?;
        std::fs::write(&leaf.key, key.serialize_pem())?;
        Ok(leaf)
    }
}

/// The Collector of docs/collector/collector.yaml with TLS on both OTLP
/// receivers (the same settings a production receiver takes); with
/// `client_ca`, it requires a client certificate signed by it.
async fn tls_collector(server: &Leaf, client_ca: Option<&Path>) -> Result<Collector, BoxError> {
    let mut options = CollectorOptions::new().decision_wait(Duration::from_secs(1));
    for protocol in ["grpc", "http"] {
        let at = format!("receivers::otlp::protocols::{protocol}::tls");
        options = options
            .override_yaml(format!("{at}::cert_file: {}", server.cert.display()))
            .override_yaml(format!("{at}::key_file: {}", server.key.display()));
        if let Some(ca) = client_ca {
            options = options.override_yaml(format!("{at}::client_ca_file: {}", ca.display()));
        }
    }
    Ok(Collector::start(options).await?)
}

/// `https://127.0.0.1:<port>` of the Collector's receiver for `protocol`.
fn https(collector: &Collector, protocol: &str) -> String {
    match protocol {
        "grpc" => collector.otlp_grpc_url(),
        _ => collector.otlp_http_url(),
    }
    .replacen("http://", "https://", 1)
}

/// The endpoint a signal's exporter is given for the general `endpoint`.
fn traces_url(protocol: &str, endpoint: &str) -> String {
    match protocol {
        "grpc" => endpoint.to_owned(),
        _ => format!("{endpoint}/v1/traces"),
    }
}

/// Sends one trace and waits for it whole in the Collector's trace store.
async fn delivered(
    collector: &Collector,
    service: &str,
    protocol: &str,
    vars: &[(&str, &str)],
) -> Result<(), BoxError> {
    let endpoint = https(collector, protocol);
    send_one_trace(service, protocol, "none", &endpoint, vars).await?;
    whole_trace(&collector.jaeger(), service).await?;
    Ok(())
}

/// Server TLS with a private CA and mutual TLS, on both protocols: every
/// trace arrives whole; without its client certificate, the mutual-TLS
/// Collector refuses, and the error says so.
pub(crate) async fn tls_and_mutual_tls() -> Result<(), BoxError> {
    let pki = Pki::new("ok")?;
    let server = pki.leaf("server", &["127.0.0.1", "localhost"], false, false)?;
    let client = pki.leaf("client", &["payment-service"], true, false)?;
    let (ca, cert, key) = (
        pki.ca.display().to_string(),
        client.cert.display().to_string(),
        client.key.display().to_string(),
    );
    let tls = tls_collector(&server, None).await?;
    let mtls = tls_collector(&server, Some(&pki.ca)).await?;
    for protocol in ["grpc", "http/protobuf"] {
        let p = protocol.replace('/', "-");
        // The general variable for gRPC, the signal's own for HTTP.
        let ca_var = match protocol {
            "grpc" => "OTEL_EXPORTER_OTLP_CERTIFICATE",
            _ => "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
        };
        delivered(&tls, &format!("tls-{p}"), protocol, &[(ca_var, &ca)]).await?;
        let identity: [(&str, &str); 3] = match protocol {
            "grpc" => [
                (ca_var, &ca),
                ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &cert),
                ("OTEL_EXPORTER_OTLP_CLIENT_KEY", &key),
            ],
            _ => [
                (ca_var, &ca),
                ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", &cert),
                ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", &key),
            ],
        };
        delivered(&mtls, &format!("mtls-{p}"), protocol, &identity).await?;
        println!(
            "  tls, {protocol}: server TLS and mutual TLS delivered {COMPRESSED_SPANS} spans each"
        );
        let endpoint = https(&mtls, protocol);
        let err = send_one_trace(
            &format!("mtls-none-{p}"),
            protocol,
            "none",
            &endpoint,
            &[(ca_var, &ca)],
        )
        .await
        .err()
        .ok_or("mutual TLS without a client certificate delivered")?;
        check_error(&err.to_string(), protocol, &endpoint, &[])?;
        println!("  tls, {protocol}: mutual TLS without a client certificate: {err}");
    }
    Ok(())
}

/// The one-line error a failed export gives (here, at shutdown): it names
/// the signal, the protocol and endpoint, and then the reason, which must
/// contain each of `reasons`.
fn check_error(
    text: &str,
    protocol: &str,
    endpoint: &str,
    reasons: &[&str],
) -> Result<(), BoxError> {
    let prefix = format!(
        "flushing traces failed: export to OTLP {protocol} {} failed: ",
        traces_url(protocol, endpoint)
    );
    ensure(text.starts_with(&prefix), || {
        format!("{protocol}: the error does not start with {prefix:?}: {text:?}")
    })?;
    for r in reasons {
        ensure(text.contains(r), || {
            format!("{protocol}: {r:?} is not in {text:?}")
        })?;
    }
    ensure(!text.contains('\n'), || {
        format!("{protocol}: not one line: {text:?}")
    })?;
    // Waiting cannot fix a certificate: the first failure is the last.
    ensure(!text.contains("gave up after"), || {
        format!("{protocol}: a TLS failure was retried: {text:?}")
    })
}

/// A wrong CA, an expired certificate and a wrong host name each fail
/// with one error naming the endpoint and the reason, on both protocols;
/// and what an `https://` endpoint receives starts with a TLS handshake.
pub(crate) async fn tls_failures() -> Result<(), BoxError> {
    let pki = Pki::new("good")?;
    let other = Pki::new("other")?;
    let valid = pki.leaf("valid", &["127.0.0.1", "localhost"], false, false)?;
    let expired = pki.leaf("expired", &["127.0.0.1", "localhost"], false, true)?;
    let elsewhere = pki.leaf("elsewhere", &["collector.example.com"], false, false)?;
    let ca = pki.ca.display().to_string();
    let other_ca = other.ca.display().to_string();
    let cases: [(&str, Collector, &str, &str); 3] = [
        (
            "a CA that did not sign it",
            tls_collector(&valid, None).await?,
            other_ca.as_str(),
            "UnknownIssuer",
        ),
        (
            "an expired certificate",
            tls_collector(&expired, None).await?,
            ca.as_str(),
            "expired",
        ),
        (
            "another host's certificate",
            tls_collector(&elsewhere, None).await?,
            ca.as_str(),
            "not valid for name",
        ),
    ];
    for protocol in ["grpc", "http/protobuf"] {
        let p = protocol.replace('/', "-");
        for (what, collector, trusted, reason) in &cases {
            let endpoint = https(collector, protocol);
            let err = send_one_trace(
                &format!("tls-bad-{p}"),
                protocol,
                "none",
                &endpoint,
                &[("OTEL_EXPORTER_OTLP_CERTIFICATE", trusted)],
            )
            .await
            .err()
            .ok_or_else(|| format!("{protocol}: {what}: delivered"))?;
            let text = err.to_string();
            check_error(
                &text,
                protocol,
                &endpoint,
                &["invalid peer certificate", reason],
            )?;
            println!("  tls, {protocol}, {what}: {text}");
        }
        // Nothing reached the trace stores.
        for (what, collector, _, _) in &cases {
            let traces = collector
                .jaeger()
                .find_traces(&format!("tls-bad-{p}"), &[])
                .await?;
            ensure(traces.is_empty(), || {
                format!("{protocol}: {what}: {} traces stored", traces.len())
            })?;
        }
        let first = first_bytes_at_an_https_endpoint(protocol, &ca).await?;
        ensure(
            first.first() == Some(&0x16) && first.get(1) == Some(&0x03),
            || {
                format!("{protocol}: an https:// endpoint received {first:02x?} first, not a TLS handshake record")
            },
        )?;
        println!(
            "  tls, {protocol}: an https:// endpoint's first bytes: {:02x?} (a TLS handshake)",
            &first[..first.len().min(3)]
        );
    }
    Ok(())
}

/// Exports to `https://` at a plain TCP listener and returns the first
/// bytes it receives.
async fn first_bytes_at_an_https_endpoint(protocol: &str, ca: &str) -> Result<Vec<u8>, BoxError> {
    use tokio::io::AsyncReadExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("https://{}", listener.local_addr()?);
    let read = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await?;
        let mut buf = vec![0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf)).await??;
        buf.truncate(n);
        Ok::<_, std::io::Error>(buf)
    });
    let sent = send_one_trace(
        "tls-cleartext",
        protocol,
        "none",
        &endpoint,
        &[
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
        ],
    )
    .await;
    ensure(sent.is_err(), || {
        format!("{protocol}: a plain TCP listener accepted the export")
    })?;
    Ok(tokio::time::timeout(Duration::from_secs(10), read).await???)
}
