//! TLS to an OTLP endpoint: the trust roots that verify the server (the
//! system's, or the CA file of `OTEL_EXPORTER_OTLP_CERTIFICATE`) and the
//! client's certificate and key for mutual TLS
//! (`OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`, `OTEL_EXPORTER_OTLP_CLIENT_KEY`).
//!
//! rustls (with ring) does the TLS for both transports: through tonic's
//! TLS for gRPC, through hyper-rustls for HTTP. The files are read and
//! parsed at init, so a missing or malformed file is an init error naming
//! its variable; an `https://` endpoint always gets TLS, never clear text.

use crate::error::InitError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One PEM file, read at init.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Pem {
    pub(crate) path: PathBuf,
    pub(crate) bytes: Arc<[u8]>,
}

/// The path only: a key's bytes never reach a log line.
impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pem").field(&self.path).finish()
    }
}

/// What PEM content a file must hold.
#[derive(Clone, Copy)]
pub(crate) enum PemKind {
    Certificates,
    PrivateKey,
}

impl Pem {
    /// Reads `path` (named by `variable` in errors) and checks it holds
    /// what `kind` says.
    pub(crate) fn read(variable: &str, path: &Path, kind: PemKind) -> Result<Pem, InitError> {
        let bad = |reason: String| InitError::TlsFile {
            variable: variable.to_owned(),
            path: path.display().to_string(),
            reason,
        };
        let bytes: Arc<[u8]> = std::fs::read(path)
            .map_err(|e| bad(format!("cannot be read ({e})")))?
            .into();
        match kind {
            PemKind::Certificates => {
                let n = certificates(&bytes).map_err(|e| bad(format!("is not PEM ({e})")))?;
                if n.is_empty() {
                    return Err(bad("holds no PEM certificate (BEGIN CERTIFICATE)".into()));
                }
            }
            PemKind::PrivateKey => {
                PrivateKeyDer::from_pem_slice(&bytes)
                    .map_err(|_| bad("holds no PEM private key (BEGIN PRIVATE KEY)".into()))?;
            }
        }
        Ok(Pem {
            path: path.to_owned(),
            bytes,
        })
    }
}

fn certificates(
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, rustls::pki_types::pem::Error> {
    CertificateDer::pem_slice_iter(bytes).collect()
}

/// TLS settings of one OTLP destination (used for `https://` endpoints).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    /// CA certificates that verify the server: when set, the only roots
    /// trusted (a private PKI); else the system's roots.
    pub(crate) ca: Option<Pem>,
    /// The client's certificate chain and its key (mutual TLS).
    pub(crate) identity: Option<(Pem, Pem)>,
}

impl TlsFiles {
    /// The rustls client configuration for OTLP/HTTP.
    pub(crate) fn rustls_config(&self) -> Result<rustls::ClientConfig, String> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca {
            Some(ca) => {
                let certs =
                    certificates(&ca.bytes).map_err(|e| format!("{}: {e}", ca.path.display()))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!("{}: no usable CA certificate", ca.path.display()));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(
                        "no system root certificates were found: set OTEL_EXPORTER_OTLP_CERTIFICATE to the CA that signed the endpoint's certificate"
                            .into(),
                    );
                }
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
        match &self.identity {
            Some((cert, key)) => {
                let chain = certificates(&cert.bytes)
                    .map_err(|e| format!("{}: {e}", cert.path.display()))?;
                let key = PrivateKeyDer::from_pem_slice(&key.bytes)
                    .map_err(|e| format!("{}: {e}", key.path.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("the client certificate and key do not go together: {e}"))
            }
            None => Ok(builder.with_no_client_auth()),
        }
    }

    /// tonic's TLS configuration for OTLP/gRPC.
    pub(crate) fn tonic_config(&self) -> tonic::transport::ClientTlsConfig {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let mut c = ClientTlsConfig::new();
        c = match &self.ca {
            Some(ca) => c.ca_certificate(Certificate::from_pem(&ca.bytes)),
            None => c.with_native_roots(),
        };
        if let Some((cert, key)) = &self.identity {
            c = c.identity(Identity::from_pem(&cert.bytes, &key.bytes));
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_names_its_variable_and_path() {
        let err = Pem::read(
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            Path::new("/nonexistent/ca.pem"),
            PemKind::Certificates,
        )
        .expect_err("missing");
        let text = err.to_string();
        assert!(
            text.starts_with(
                "OTEL_EXPORTER_OTLP_CERTIFICATE = \"/nonexistent/ca.pem\" cannot be read ("
            ),
            "{text}"
        );
    }

    #[test]
    fn a_file_without_pem_content_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not a certificate\n").expect("write");
        let err = Pem::read("OTEL_EXPORTER_OTLP_CERTIFICATE", &p, PemKind::Certificates)
            .expect_err("no pem");
        assert_eq!(
            err.to_string(),
            format!(
                "OTEL_EXPORTER_OTLP_CERTIFICATE = {:?} holds no PEM certificate (BEGIN CERTIFICATE): give a PEM file",
                p.display().to_string()
            )
        );
        let err = Pem::read("OTEL_EXPORTER_OTLP_CLIENT_KEY", &p, PemKind::PrivateKey)
            .expect_err("no key");
        assert_eq!(
            err.to_string(),
            format!(
                "OTEL_EXPORTER_OTLP_CLIENT_KEY = {:?} holds no PEM private key (BEGIN PRIVATE KEY): give a PEM file",
                p.display().to_string()
            )
        );
    }

    #[test]
    fn debug_shows_the_path_not_the_bytes() {
        let p = Pem {
            path: "/etc/observe/client.key".into(),
            bytes: Arc::from(&b"-----BEGIN PRIVATE KEY-----secret"[..]),
        };
        assert_eq!(format!("{p:?}"), "Pem(\"/etc/observe/client.key\")");
    }
}
