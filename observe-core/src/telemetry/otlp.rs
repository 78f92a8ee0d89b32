//! Where each signal goes: an OTLP endpoint (from the builder, else the
//! signal's `OTEL_EXPORTER_OTLP_<SIGNAL>_*` variables, else the general
//! ones), observe's default, or nowhere (`OTEL_<SIGNAL>_EXPORTER=none`).
//!
//! The settings, their variables and defaults are listed in
//! [`crate::export::otlp`]'s table (and docs/reference/environment.md).

use super::env::{parse_headers, validate_endpoint};
use crate::error::InitError;
use crate::export::otlp::OtlpTarget;
use crate::export::tls::{Pem, PemKind, TlsFiles};
use crate::export::{Compression, Protocol, Signal, DEFAULT_OTLP_TIMEOUT};
use std::path::PathBuf;
use std::time::Duration;

/// What the builder said about OTLP (each overrides the environment).
#[derive(Clone, Debug, Default)]
pub(crate) struct OtlpOverrides {
    pub(crate) endpoint: Option<String>,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) compression: Option<Compression>,
    /// PEM file of the CA that verifies the server.
    pub(crate) certificate: Option<PathBuf>,
    /// PEM files of the client's certificate chain and key (mutual TLS).
    pub(crate) client_identity: Option<(PathBuf, PathBuf)>,
    /// Scheme for a gRPC endpoint written without one: `true` is `http://`.
    pub(crate) insecure: Option<bool>,
}

/// Whether a signal is exported, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Destination {
    /// `OTEL_<SIGNAL>_EXPORTER=none`.
    Off,
    /// No endpoint for it: the embedded default (if any) applies.
    Default,
    Otlp(OtlpTarget),
}

fn upper(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "TRACES",
        Signal::Logs => "LOGS",
        Signal::Metrics => "METRICS",
    }
}

/// Resolves one signal's destination; `var` reads the configured environment.
pub(crate) fn resolve(
    signal: Signal,
    o: &OtlpOverrides,
    var: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Destination, InitError> {
    let s = upper(signal);
    if let Some(exporter) = var(&format!("OTEL_{s}_EXPORTER")) {
        let e = exporter.trim();
        if e.eq_ignore_ascii_case("none") {
            return Ok(Destination::Off);
        }
        if !e.eq_ignore_ascii_case("otlp") {
            warnings.push(format!(
                "OTEL_{s}_EXPORTER={e:?} is not supported (use otlp or none): using otlp"
            ));
        }
    }
    // Protocol first: it decides how a general endpoint becomes a URL.
    let protocol = match o.protocol {
        Some(p) => p,
        None => match var(&format!("OTEL_EXPORTER_OTLP_{s}_PROTOCOL"))
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        {
            Some(p) => p.parse()?,
            None => Protocol::default(),
        },
    };
    // Headers are checked even without an endpoint: a typo should not wait
    // for the day an endpoint is set.
    let mut headers = Vec::new();
    if let Some(h) = var("OTEL_EXPORTER_OTLP_HEADERS") {
        headers = parse_headers(&h)?;
    }
    if let Some(h) = var(&format!("OTEL_EXPORTER_OTLP_{s}_HEADERS")) {
        merge(&mut headers, parse_headers(&h)?);
    }
    merge(&mut headers, o.headers.clone());
    // A gRPC endpoint may be written without a scheme (`collector:4317`):
    // then OTEL_EXPORTER_OTLP_INSECURE decides, and TLS is the default.
    let insecure = match o.insecure {
        Some(b) => b,
        None => match signal_or_general(s, "INSECURE", var) {
            Some((name, v)) => boolean(name, v)?,
            None => false,
        },
    };
    let schemed = |e: &str| with_scheme(e, protocol, insecure);
    let signal_var = format!("OTEL_EXPORTER_OTLP_{s}_ENDPOINT");
    let endpoint = if let Some(e) = &o.endpoint {
        let e = schemed(e);
        validate_endpoint("otlp_endpoint", &e)?;
        general_url(&e, signal, protocol)
    } else if let Some(e) = var(&signal_var) {
        let e = schemed(&e);
        validate_endpoint(signal_var_static(signal), &e)?;
        e
    } else if let Some(e) = var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        let e = schemed(&e);
        validate_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", &e)?;
        general_url(&e, signal, protocol)
    } else {
        return Ok(Destination::Default);
    };
    let timeout = match o.timeout {
        Some(t) => t,
        None => {
            let mut t = DEFAULT_OTLP_TIMEOUT;
            for name in [
                format!("OTEL_EXPORTER_OTLP_{s}_TIMEOUT"),
                "OTEL_EXPORTER_OTLP_TIMEOUT".to_owned(),
            ] {
                if let Some(ms) = super::vars::millis(var, &name)? {
                    t = ms;
                    break;
                }
            }
            t
        }
    };
    let compression = match o.compression {
        Some(c) => c,
        None => compression(s, var)?,
    };
    let mut target = OtlpTarget {
        endpoint,
        protocol,
        headers,
        timeout,
        compression,
        tls: TlsFiles::default(),
    };
    let tls = tls_files(s, o, var);
    if target.is_https() {
        target.tls = tls.read()?;
    } else if let Some(name) = tls.first_name() {
        warnings.push(format!(
            "{name} is set, but the {} endpoint {} is not https://: it is not used",
            signal.as_str(),
            target.endpoint
        ));
    }
    Ok(Destination::Otlp(target))
}

/// `e` with `https://` (or `http://` when `insecure`) in front when it is a
/// gRPC endpoint written without a scheme; as it is otherwise.
fn with_scheme(e: &str, protocol: Protocol, insecure: bool) -> String {
    let e = e.trim();
    if protocol == Protocol::Grpc && !e.contains("://") {
        let scheme = if insecure { "http" } else { "https" };
        format!("{scheme}://{e}")
    } else {
        e.to_owned()
    }
}

/// The signal's `OTEL_EXPORTER_OTLP_<SIGNAL>_<what>` if set, else
/// `OTEL_EXPORTER_OTLP_<what>`: (the variable, its value).
fn signal_or_general(
    s: &str,
    what: &str,
    var: &dyn Fn(&str) -> Option<String>,
) -> Option<(String, String)> {
    [
        format!("OTEL_EXPORTER_OTLP_{s}_{what}"),
        format!("OTEL_EXPORTER_OTLP_{what}"),
    ]
    .into_iter()
    .find_map(|name| var(&name).map(|v| (name, v)))
}

/// A variable's value as a boolean (`true`/`false`, any case).
fn boolean(variable: String, value: String) -> Result<bool, InitError> {
    let t = value.trim();
    if t.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if t.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(InitError::InvalidBool { variable, value })
    }
}

/// The TLS files one signal is configured with, before they are read:
/// (where the path came from, the path).
#[derive(Default)]
struct TlsPaths {
    ca: Option<(String, PathBuf)>,
    cert: Option<(String, PathBuf)>,
    key: Option<(String, PathBuf)>,
}

impl TlsPaths {
    fn first_name(&self) -> Option<&str> {
        [&self.ca, &self.cert, &self.key]
            .into_iter()
            .flatten()
            .map(|(n, _)| n.as_str())
            .next()
    }

    /// Reads and checks the files.
    fn read(self) -> Result<TlsFiles, InitError> {
        let ca = match self.ca {
            Some((name, path)) => Some(Pem::read(&name, &path, PemKind::Certificates)?),
            None => None,
        };
        let identity = match (self.cert, self.key) {
            (Some((cn, cp)), Some((kn, kp))) => Some((
                Pem::read(&cn, &cp, PemKind::Certificates)?,
                Pem::read(&kn, &kp, PemKind::PrivateKey)?,
            )),
            (None, None) => None,
            (Some((given, _)), None) => {
                return Err(InitError::TlsIdentity {
                    missing: given.replace("CLIENT_CERTIFICATE", "CLIENT_KEY"),
                    given,
                })
            }
            (None, Some((given, _))) => {
                return Err(InitError::TlsIdentity {
                    missing: given.replace("CLIENT_KEY", "CLIENT_CERTIFICATE"),
                    given,
                })
            }
        };
        Ok(TlsFiles { ca, identity })
    }
}

/// The builder's TLS files, else the signal's variables, else the general ones.
fn tls_files(s: &str, o: &OtlpOverrides, var: &dyn Fn(&str) -> Option<String>) -> TlsPaths {
    let pick = |what: &str| {
        signal_or_general(s, what, var)
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(name, v)| (name, PathBuf::from(v.trim())))
    };
    let ca = match &o.certificate {
        Some(p) => Some(("otlp_certificate".to_owned(), p.clone())),
        None => pick("CERTIFICATE"),
    };
    let (cert, key) = match &o.client_identity {
        Some((c, k)) => (
            Some((
                "otlp_client_certificate (certificate)".to_owned(),
                c.clone(),
            )),
            Some(("otlp_client_certificate (key)".to_owned(), k.clone())),
        ),
        None => (pick("CLIENT_CERTIFICATE"), pick("CLIENT_KEY")),
    };
    TlsPaths { ca, cert, key }
}

/// The signal's `OTEL_EXPORTER_OTLP_<SIGNAL>_COMPRESSION`, else
/// `OTEL_EXPORTER_OTLP_COMPRESSION`, else none; a value other than `gzip`
/// or `none` is an error naming the variable.
fn compression(s: &str, var: &dyn Fn(&str) -> Option<String>) -> Result<Compression, InitError> {
    match signal_or_general(s, "COMPRESSION", var) {
        Some((variable, value)) => {
            Compression::parse(&value).ok_or(InitError::UnsupportedCompression { variable, value })
        }
        None => Ok(Compression::None),
    }
}

fn signal_var_static(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        Signal::Logs => "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        Signal::Metrics => "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    }
}

/// Later pairs replace earlier ones with the same (case-insensitive) name.
fn merge(into: &mut Vec<(String, String)>, more: Vec<(String, String)>) {
    for (k, v) in more {
        into.retain(|(k2, _)| !k2.eq_ignore_ascii_case(&k));
        into.push((k, v));
    }
}

/// A general endpoint as one signal's URL: for OTLP/HTTP, `/v1/<signal>` is
/// appended to its path; gRPC uses it as is.
fn general_url(base: &str, signal: Signal, protocol: Protocol) -> String {
    let base = base.trim();
    match protocol {
        Protocol::Grpc => base.to_owned(),
        Protocol::HttpProtobuf => {
            format!("{}/v1/{}", base.trim_end_matches('/'), signal.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::env::test_env as env;

    fn target(d: Destination) -> OtlpTarget {
        match d {
            Destination::Otlp(t) => t,
            other => panic!("not otlp: {other:?}"),
        }
    }

    #[test]
    fn general_and_signal_endpoints() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "http://logs:9999/custom",
            ),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b,x=1"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "X=2"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ]);
        let o = OtlpOverrides::default();
        let mut w = Vec::new();
        let t = target(resolve(Signal::Traces, &o, &e, &mut w).expect("ok"));
        assert_eq!(t.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(t.protocol, Protocol::HttpProtobuf);
        assert_eq!(
            t.headers,
            vec![("api-key".into(), "a b".into()), ("X".into(), "2".into())]
        );
        assert_eq!(t.timeout, Duration::from_millis(2500));
        let l = target(resolve(Signal::Logs, &o, &e, &mut w).expect("ok"));
        assert_eq!(l.endpoint, "http://logs:9999/custom");
        assert!(w.is_empty());
    }

    #[test]
    fn grpc_keeps_the_endpoint_and_none_switches_a_signal_off() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ]);
        let o = OtlpOverrides::default();
        let mut w = Vec::new();
        let t = target(resolve(Signal::Traces, &o, &e, &mut w).expect("ok"));
        assert_eq!(t.endpoint, "http://127.0.0.1:4317");
        assert_eq!(t.protocol, Protocol::Grpc);
        assert_eq!(
            resolve(Signal::Metrics, &o, &e, &mut w).expect("ok"),
            Destination::Off
        );
        assert_eq!(
            resolve(Signal::Logs, &o, &env(&[]), &mut w).expect("ok"),
            Destination::Default
        );
    }

    #[test]
    fn bad_values_are_typed_errors() {
        let o = OtlpOverrides::default();
        let mut w = Vec::new();
        let bad_proto = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ]);
        assert!(matches!(
            resolve(Signal::Traces, &o, &bad_proto, &mut w),
            Err(InitError::UnsupportedProtocol { .. })
        ));
        let bad_url = env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318")]);
        assert!(matches!(
            resolve(Signal::Traces, &o, &bad_url, &mut w),
            Err(InitError::InvalidEndpoint {
                variable: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                ..
            })
        ));
        let bad_headers = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
        ]);
        assert!(matches!(
            resolve(Signal::Traces, &o, &bad_headers, &mut w),
            Err(InitError::InvalidHeaders { .. })
        ));
        let bad_timeout = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        ]);
        assert_eq!(
            resolve(Signal::Traces, &o, &bad_timeout, &mut w)
                .expect_err("a bad timeout")
                .to_string(),
            "OTEL_EXPORTER_OTLP_TIMEOUT = \"soon\" is not valid: use a whole number of milliseconds, at least 1"
        );
    }

    #[test]
    fn builder_values_win() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]);
        let o = OtlpOverrides {
            endpoint: Some("http://builder:4317".into()),
            protocol: Some(Protocol::Grpc),
            headers: vec![("k".into(), "v".into())],
            timeout: Some(Duration::from_secs(1)),
            compression: Some(Compression::Gzip),
            ..OtlpOverrides::default()
        };
        let t = target(resolve(Signal::Metrics, &o, &e, &mut Vec::new()).expect("ok"));
        assert_eq!(
            t,
            OtlpTarget {
                endpoint: "http://builder:4317".into(),
                protocol: Protocol::Grpc,
                headers: vec![("k".into(), "v".into())],
                timeout: Duration::from_secs(1),
                compression: Compression::Gzip,
                tls: TlsFiles::default(),
            }
        );
    }

    #[test]
    fn compression_from_the_signal_variable_else_the_general_one() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "none"),
        ]);
        let o = OtlpOverrides::default();
        let c = |signal| target(resolve(signal, &o, &e, &mut Vec::new()).expect("ok")).compression;
        assert_eq!(c(Signal::Traces), Compression::Gzip);
        assert_eq!(c(Signal::Metrics), Compression::Gzip);
        assert_eq!(c(Signal::Logs), Compression::None);
        // Unset: none.
        let e = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]);
        let t = target(resolve(Signal::Traces, &o, &e, &mut Vec::new()).expect("ok"));
        assert_eq!(t.compression, Compression::None);
        // Case and spaces do not matter.
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", " GZIP "),
        ]);
        let t = target(resolve(Signal::Traces, &o, &e, &mut Vec::new()).expect("ok"));
        assert_eq!(t.compression, Compression::Gzip);
    }

    #[test]
    fn an_unsupported_compression_is_an_error_naming_the_variable() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "brotli"),
        ]);
        let err = resolve(
            Signal::Metrics,
            &OtlpOverrides::default(),
            &e,
            &mut Vec::new(),
        )
        .expect_err("brotli is refused");
        assert_eq!(
            err.to_string(),
            "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION = \"brotli\" is not a supported OTLP compression: use \"gzip\" or \"none\""
        );
    }

    fn pem_files() -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().expect("dir");
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        // Contents are only checked for their PEM labels at init.
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        let s = |p: std::path::PathBuf| p.display().to_string();
        (dir, s(cert), s(key))
    }

    #[test]
    fn tls_files_from_the_signal_variable_else_the_general_one() {
        let (_dir, cert, key) = pem_files();
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/general.pem"),
            ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", &cert),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &cert),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", &key),
        ]);
        let o = OtlpOverrides::default();
        let t = target(resolve(Signal::Traces, &o, &e, &mut Vec::new()).expect("ok"));
        assert_eq!(
            t.tls.ca.as_ref().map(|p| p.path.display().to_string()),
            Some(cert.clone())
        );
        let (c, k) = t.tls.identity.as_ref().expect("identity");
        assert_eq!(
            (c.path.display().to_string(), k.path.display().to_string()),
            (cert.clone(), key.clone())
        );
        // Logs have no signal variable: the general one, whose file is missing.
        let err = resolve(Signal::Logs, &o, &e, &mut Vec::new()).expect_err("missing file");
        assert!(
            err.to_string().starts_with(
                "OTEL_EXPORTER_OTLP_CERTIFICATE = \"/nonexistent/general.pem\" cannot be read ("
            ),
            "{err}"
        );
        // The builder's files win over both.
        let o = OtlpOverrides {
            certificate: Some(key.clone().into()),
            ..OtlpOverrides::default()
        };
        let err = resolve(Signal::Logs, &o, &e, &mut Vec::new()).expect_err("a key is no CA");
        assert_eq!(
            err.to_string(),
            format!("otlp_certificate = {key:?} holds no PEM certificate (BEGIN CERTIFICATE): give a PEM file")
        );
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let (_dir, cert, _key) = pem_files();
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318"),
            ("OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE", &cert),
        ]);
        let err = resolve(
            Signal::Metrics,
            &OtlpOverrides::default(),
            &e,
            &mut Vec::new(),
        )
        .expect_err("no key");
        assert_eq!(
            err.to_string(),
            "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE is set without OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY: mutual TLS needs the client's certificate and its key"
        );
    }

    #[test]
    fn tls_files_with_an_http_endpoint_are_a_warning_not_read() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"),
        ]);
        let mut w = Vec::new();
        let t = target(resolve(Signal::Traces, &OtlpOverrides::default(), &e, &mut w).expect("ok"));
        assert_eq!(t.tls, TlsFiles::default());
        assert_eq!(
            w,
            vec!["OTEL_EXPORTER_OTLP_CERTIFICATE is set, but the traces endpoint http://collector:4318/v1/traces is not https://: it is not used".to_owned()]
        );
    }

    #[test]
    fn a_grpc_endpoint_without_a_scheme_is_tls_unless_insecure() {
        let o = OtlpOverrides::default();
        let ep = |pairs: &[(&str, &str)]| {
            resolve(Signal::Traces, &o, &env(pairs), &mut Vec::new()).map(|d| target(d).endpoint)
        };
        let base = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ];
        assert_eq!(ep(&base).expect("ok"), "https://collector:4317");
        let insecure = [base[0], base[1], ("OTEL_EXPORTER_OTLP_INSECURE", "TRUE")];
        assert_eq!(ep(&insecure).expect("ok"), "http://collector:4317");
        let signal = [
            base[0],
            base[1],
            ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
            ("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "false"),
        ];
        assert_eq!(ep(&signal).expect("ok"), "https://collector:4317");
        // The endpoint's own scheme wins.
        let schemed = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317"),
            base[1],
            ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
        ];
        assert_eq!(ep(&schemed).expect("ok"), "https://collector:4317");
        let bad = [base[0], base[1], ("OTEL_EXPORTER_OTLP_INSECURE", "yes")];
        assert_eq!(
            ep(&bad).expect_err("yes is not a boolean").to_string(),
            "OTEL_EXPORTER_OTLP_INSECURE = \"yes\" is not a boolean: use \"true\" or \"false\""
        );
        // OTLP/HTTP needs a URL.
        let http = [("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")];
        assert!(matches!(ep(&http), Err(InitError::InvalidEndpoint { .. })));
    }
}
