//! Where each signal goes: an OTLP endpoint (from the builder, else the
//! signal's `OTEL_EXPORTER_OTLP_<SIGNAL>_*` variables, else the general
//! ones), observe's default, or nowhere (`OTEL_<SIGNAL>_EXPORTER=none`).
//!
//! | setting | builder | variables (the signal's own wins over the general one) | default |
//! |---|---|---|---|
//! | endpoint | [`otlp_endpoint`](crate::TelemetryBuilder::otlp_endpoint) | `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT` (used as is), `OTEL_EXPORTER_OTLP_ENDPOINT` (HTTP: `/v1/<signal>` appended) | none: no OTLP export |
//! | protocol | [`otlp_protocol`](crate::TelemetryBuilder::otlp_protocol) | `OTEL_EXPORTER_OTLP_{SIGNAL}_PROTOCOL`, `OTEL_EXPORTER_OTLP_PROTOCOL` | `http/protobuf` |
//! | headers | [`otlp_header`](crate::TelemetryBuilder::otlp_header) | `OTEL_EXPORTER_OTLP_{SIGNAL}_HEADERS`, `OTEL_EXPORTER_OTLP_HEADERS` | none |
//! | timeout | [`otlp_timeout`](crate::TelemetryBuilder::otlp_timeout) | `OTEL_EXPORTER_OTLP_{SIGNAL}_TIMEOUT`, `OTEL_EXPORTER_OTLP_TIMEOUT` (ms) | 10 s |
//! | off | — | `OTEL_{TRACES,METRICS,LOGS}_EXPORTER=none` | on |

use super::env::{parse_headers, validate_endpoint};
use crate::error::InitError;
use crate::export::otlp::OtlpTarget;
use crate::export::{Compression, Protocol, Signal, DEFAULT_OTLP_TIMEOUT};
use opentelemetry_sdk::metrics::Temporality;
use std::time::Duration;

/// What the builder said about OTLP (each overrides the environment).
#[derive(Clone, Debug, Default)]
pub(crate) struct OtlpOverrides {
    pub(crate) endpoint: Option<String>,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) compression: Option<Compression>,
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
    let signal_var = format!("OTEL_EXPORTER_OTLP_{s}_ENDPOINT");
    let endpoint = if let Some(e) = &o.endpoint {
        validate_endpoint("otlp_endpoint", e)?;
        general_url(e, signal, protocol)
    } else if let Some(e) = var(&signal_var) {
        validate_endpoint(signal_var_static(signal), &e)?;
        e.trim().to_owned()
    } else if let Some(e) = var("OTEL_EXPORTER_OTLP_ENDPOINT") {
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
                if let Some(v) = var(&name) {
                    match v.trim().parse::<u64>() {
                        Ok(ms) if ms > 0 => {
                            t = Duration::from_millis(ms);
                            break;
                        }
                        _ => warnings.push(format!(
                            "{name}={v:?} is not a positive number of milliseconds: ignored"
                        )),
                    }
                }
            }
            t
        }
    };
    let compression = match o.compression {
        Some(c) => c,
        None => compression(s, var)?,
    };
    Ok(Destination::Otlp(OtlpTarget {
        endpoint,
        protocol,
        headers,
        timeout,
        compression,
    }))
}

/// The signal's `OTEL_EXPORTER_OTLP_<SIGNAL>_COMPRESSION`, else
/// `OTEL_EXPORTER_OTLP_COMPRESSION`, else none; a value other than `gzip`
/// or `none` is an error naming the variable.
fn compression(s: &str, var: &dyn Fn(&str) -> Option<String>) -> Result<Compression, InitError> {
    for name in [
        format!("OTEL_EXPORTER_OTLP_{s}_COMPRESSION"),
        "OTEL_EXPORTER_OTLP_COMPRESSION".to_owned(),
    ] {
        if let Some(v) = var(&name) {
            return Compression::parse(&v).ok_or(InitError::UnsupportedCompression {
                variable: name,
                value: v,
            });
        }
    }
    Ok(Compression::None)
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

/// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` (`cumulative`, the
/// default, or `delta`).
pub(crate) fn temporality(var: &dyn Fn(&str) -> Option<String>) -> Temporality {
    match var("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE") {
        Some(v) if v.trim().eq_ignore_ascii_case("delta") => Temporality::Delta,
        _ => Temporality::Cumulative,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| m.get(k).cloned()
    }

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
        let t = target(resolve(Signal::Traces, &o, &bad_timeout, &mut w).expect("ok"));
        assert_eq!(t.timeout, DEFAULT_OTLP_TIMEOUT);
        assert_eq!(w.len(), 1);
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
}
