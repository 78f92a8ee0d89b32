//! The methods a gRPC server recognises: taken from its service definitions
//! (a `FileDescriptorSet`, or service and method names), never from a
//! request. A call to any other path is `rpc.method = _OTHER`, so a client
//! cannot grow the metric's label values.

use observe_core::intern::Interner;
use prost::Message as _;
use std::collections::HashMap;
use std::sync::Arc;

/// `rpc.method` of a call to a method the server does not define (and the
/// span name `grpc` then: semantic conventions v1.44.0).
pub const OTHER_METHOD: &str = "_OTHER";

/// Most distinct gRPC methods interned per process (server and client).
const MAX_METHODS: usize = 4096;

/// `/package.Service/Method` strings, interned once each.
static PATHS: Interner = Interner::new(MAX_METHODS);

/// Host names of `server.address` (channel targets, `:authority`s), interned
/// once each: a call names its server without allocating.
static HOSTS: Interner = Interner::new(256);

/// `h` interned (`None` past the cap, or past a DNS name's 253 bytes: the
/// caller allocates instead, and a client's `:authority` leaks at most
/// 256 × 253 bytes).
pub(crate) fn host(h: &str) -> Option<&'static str> {
    if h.len() > 253 {
        return None;
    }
    HOSTS.intern(&[h])
}

/// Why a set of gRPC methods could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrpcMethodsError {
    /// The bytes are not an encoded `google.protobuf.FileDescriptorSet`.
    #[error("not a FileDescriptorSet: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A service or method name is empty or has a character a protobuf
    /// identifier cannot have.
    #[error("invalid gRPC {kind} name {name:?}")]
    InvalidName {
        /// `service` or `method`.
        kind: &'static str,
        /// The name given.
        name: String,
    },
    /// More methods than observe interns per process (4096).
    #[error("more than 4096 distinct gRPC methods")]
    TooMany,
}

/// One recognised method; every string is a slice of one interned
/// `/package.Service/Method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Method {
    /// `package.Service/Method`: `rpc.method` and the span name.
    pub(crate) full: &'static str,
}

impl Method {
    /// The method of `service` and `method`, interned (`None` past the cap).
    pub(crate) fn intern(service: &str, method: &str) -> Option<Method> {
        let path = PATHS.intern(&["/", service, "/", method])?;
        Some(Method {
            full: path.get(1..).unwrap_or_default(),
        })
    }
}

/// The gRPC methods a server layer recognises, from the service definitions.
///
/// ```
/// use observe_tower::grpc::GrpcMethods;
///
/// let methods = GrpcMethods::new()
///     .service("shop.v1.Payments", ["Charge", "ListCharges"])?;
/// assert!(methods.contains("/shop.v1.Payments/Charge"));
/// assert!(!methods.contains("/shop.v1.Payments/Steal"));
/// # Ok::<(), observe_tower::grpc::GrpcMethodsError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct GrpcMethods {
    /// Request path (`/package.Service/Method`) → method.
    by_path: Arc<HashMap<&'static str, Method>>,
}

fn valid(kind: &'static str, name: &str, dots: bool) -> Result<(), GrpcMethodsError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || (dots && b == b'.'))
        && !name.starts_with('.')
        && !name.ends_with('.');
    if ok {
        Ok(())
    } else {
        Err(GrpcMethodsError::InvalidName {
            kind,
            name: name.to_owned(),
        })
    }
}

impl GrpcMethods {
    /// No method: every call is `_OTHER`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the `methods` of the fully-qualified `service` (`shop.v1.Payments`).
    pub fn service<I>(mut self, service: &str, methods: I) -> Result<Self, GrpcMethodsError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        valid("service", service, true)?;
        let map = Arc::make_mut(&mut self.by_path);
        for m in methods {
            let m = m.as_ref();
            valid("method", m, false)?;
            let method = Method::intern(service, m).ok_or(GrpcMethodsError::TooMany)?;
            // The interned path is the method's full name with its leading `/`.
            let path = PATHS
                .intern(&["/", method.full])
                .ok_or(GrpcMethodsError::TooMany)?;
            map.insert(path, method);
        }
        Ok(self)
    }

    /// Adds every method of every service of an encoded `FileDescriptorSet`
    /// (what `tonic_prost_build::configure().file_descriptor_set_path(..)`
    /// writes, and what gRPC reflection serves).
    pub fn from_file_descriptor_set(bytes: &[u8]) -> Result<Self, GrpcMethodsError> {
        let set = prost_types::FileDescriptorSet::decode(bytes)?;
        let mut out = Self::new();
        for file in &set.file {
            for svc in &file.service {
                let name = match file.package() {
                    "" => svc.name().to_owned(),
                    p => format!("{p}.{}", svc.name()),
                };
                out = out.service(&name, svc.method.iter().map(|m| m.name()))?;
            }
        }
        Ok(out)
    }

    /// Whether the request path `/package.Service/Method` is a recognised method.
    pub fn contains(&self, path: &str) -> bool {
        self.by_path.contains_key(path)
    }

    /// Number of recognised methods.
    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    /// Whether no method is recognised.
    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }

    /// The method of a request path.
    pub(crate) fn get(&self, path: &str) -> Option<Method> {
        self.by_path.get(path).copied()
    }
}

/// A request's path as `rpc.method_original` (span only): without its
/// leading `/`, at most 256 bytes.
pub(crate) fn original(path: &str) -> String {
    let p = path.strip_prefix('/').unwrap_or(path);
    let mut end = p.len().min(256);
    while !p.is_char_boundary(end) {
        end -= 1;
    }
    p.get(..end).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_paths_found() {
        let m = GrpcMethods::new()
            .service("shop.v1.Payments", ["Charge"])
            .expect("valid");
        assert_eq!(
            m.get("/shop.v1.Payments/Charge").map(|m| m.full),
            Some("shop.v1.Payments/Charge")
        );
        assert_eq!(m.get("shop.v1.Payments/Charge"), None);
        assert_eq!(m.len(), 1);
        for (svc, method) in [
            ("", "A"),
            ("a b", "A"),
            (".a", "A"),
            ("a.", "A"),
            ("a", ""),
            ("a", "A.B"),
            ("a", "A/B"),
        ] {
            assert!(
                matches!(
                    GrpcMethods::new().service(svc, [method]),
                    Err(GrpcMethodsError::InvalidName { .. })
                ),
                "{svc:?} {method:?}"
            );
        }
        assert!(matches!(
            GrpcMethods::from_file_descriptor_set(b"\xff\xff"),
            Err(GrpcMethodsError::Decode(_))
        ));
    }

    #[test]
    fn original_is_bounded() {
        assert_eq!(original("/a.B/C"), "a.B/C");
        let long = format!("/{}", "é".repeat(200));
        let o = original(&long);
        assert!(o.len() <= 256 && o.chars().all(|c| c == 'é'));
    }
}
