//! The configuration variables: how a value is read (blank counts as unset)
//! and the formats shared by several of them (`k=v` lists with
//! percent-encoded values, OTLP endpoint URLs).

use crate::error::InitError;
use crate::hex::percent_decode;
use opentelemetry::KeyValue;
use std::sync::Arc;

/// Where configuration variables come from: the process environment, or a
/// lookup function given to the builder.
pub(crate) type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Reads a configuration variable from `env` (or the process environment);
/// blank values count as unset.
pub(crate) fn read_var(env: Option<&EnvLookup>, name: &str) -> Option<String> {
    let v = match env {
        Some(f) => f(name),
        None => std::env::var(name).ok(),
    };
    v.filter(|s| !s.trim().is_empty())
}

/// Parses `OTEL_EXPORTER_OTLP_HEADERS` (`k=v,k2=v2`, values percent-encoded).
pub(crate) fn parse_headers(raw: &str) -> Result<Vec<(String, String)>, InitError> {
    let mut out = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| InitError::InvalidHeaders {
                value: raw.to_owned(),
            })?;
        let k = k.trim();
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            return Err(InitError::InvalidHeaders {
                value: raw.to_owned(),
            });
        }
        out.push((k.to_owned(), percent_decode(v.trim().as_bytes())));
    }
    Ok(out)
}

/// Parses `OTEL_RESOURCE_ATTRIBUTES` (`k=v,k2=v2`, values percent-encoded).
pub(crate) fn parse_resource_attributes(raw: &str) -> Result<Vec<KeyValue>, InitError> {
    let mut out = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| InitError::InvalidResourceAttributes {
                value: raw.to_owned(),
            })?;
        out.push(KeyValue::new(
            k.trim().to_owned(),
            percent_decode(v.trim().as_bytes()),
        ));
    }
    Ok(out)
}

/// Checks that an OTLP endpoint is an http(s) URL with a host and a valid port.
pub(crate) fn validate_endpoint(variable: &'static str, url: &str) -> Result<(), InitError> {
    let bad = || InitError::InvalidEndpoint {
        variable,
        value: url.to_owned(),
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(bad)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || authority.chars().any(char::is_whitespace)
    {
        return Err(bad());
    }
    let (host, port) = if let Some(stripped) = authority.strip_prefix('[') {
        let (h, after) = stripped.split_once(']').ok_or_else(bad)?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |n| n == 0) {
            return Err(bad());
        }
    }
    Ok(())
}

/// A lookup of `pairs`, for tests.
#[cfg(test)]
pub(crate) fn test_env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| m.get(k).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        for ok in [
            "http://127.0.0.1:4317",
            "https://collector.example.com",
            "http://[::1]:4318/v1/traces",
            "http://localhost:4318/",
        ] {
            assert!(validate_endpoint("x", ok).is_ok(), "{ok}");
        }
        for bad in [
            "127.0.0.1:4317",
            "grpc://host:4317",
            "http://",
            "http://host:notaport",
            "http://host:0",
            "http://:4317",
            "http://ho st:1",
        ] {
            assert!(
                matches!(
                    validate_endpoint("x", bad),
                    Err(InitError::InvalidEndpoint { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn headers_and_percent_decoding() {
        assert_eq!(
            parse_headers("api-key=a%20b, x=1").expect("valid"),
            vec![("api-key".into(), "a b".into()), ("x".into(), "1".into())]
        );
        assert!(parse_headers("novalue").is_err());
        assert_eq!(percent_decode(b"100%"), "100%");
    }

    #[test]
    fn resource_attributes_and_blank_variables() {
        assert_eq!(
            parse_resource_attributes("a=1, b=x%2Cy").expect("valid"),
            vec![KeyValue::new("a", "1"), KeyValue::new("b", "x,y")]
        );
        assert!(matches!(
            parse_resource_attributes("a"),
            Err(InitError::InvalidResourceAttributes { .. })
        ));
        let env: EnvLookup = Arc::new(|k| (k == "BLANK").then(|| "  ".to_owned()));
        assert_eq!(read_var(Some(&env), "BLANK"), None);
    }
}
