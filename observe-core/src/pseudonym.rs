//! Stable keyed pseudonyms for user identifiers.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::sync::{Arc, OnceLock, RwLock};

type HmacSha256 = Hmac<Sha256>;

/// A pseudonymisation key (HMAC-SHA256).
#[derive(Clone)]
pub struct PseudonymKey(Arc<[u8]>);

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey(..)")
    }
}

impl PseudonymKey {
    /// A key from bytes (at least 16 are required by init).
    pub fn new(bytes: impl AsRef<[u8]>) -> Self {
        PseudonymKey(Arc::from(bytes.as_ref()))
    }

    pub(crate) fn random() -> Self {
        PseudonymKey::new(crate::ids::random_key())
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The pseudonym of `value` under this key: `psn_` and 16 bytes of
    /// HMAC-SHA256 in lowercase hex.
    pub fn pseudonym(&self, value: &str) -> String {
        let mut out = String::with_capacity(4 + 32);
        out.push_str("psn_");
        match HmacSha256::new_from_slice(&self.0) {
            Ok(mut mac) => {
                mac.update(value.as_bytes());
                let tag = mac.finalize().into_bytes();
                crate::hex::push_str(&mut out, &tag[..16]);
            }
            // HMAC accepts keys of any length; keep a visible, non-identifying value anyway.
            Err(_) => out.push_str("unavailable"),
        }
        out
    }
}

static PROCESS_KEY: OnceLock<RwLock<Option<PseudonymKey>>> = OnceLock::new();

fn slot() -> &'static RwLock<Option<PseudonymKey>> {
    PROCESS_KEY.get_or_init(|| RwLock::new(None))
}

/// Installs the process key (done by init).
pub(crate) fn install(key: PseudonymKey) {
    *slot().write().unwrap_or_else(|e| e.into_inner()) = Some(key);
}

/// A stable pseudonym for a user identifier (an email, an account number), so
/// logs can be searched by user without storing the identifier.
///
/// The same value and key always give the same `psn_<32 hex>`. The key comes
/// from [`TelemetryBuilder::pseudonym_key`](crate::TelemetryBuilder::pseudonym_key)
/// or `OBSERVE_PSEUDONYM_KEY`; with neither (outside production) a random
/// per-process key is used.
///
/// ```
/// let a = observe_core::pseudonym("ada@example.com");
/// assert!(a.starts_with("psn_") && a.len() == 36);
/// assert_eq!(a, observe_core::pseudonym("ada@example.com"));
/// ```
pub fn pseudonym(value: &str) -> String {
    if let Some(k) = slot().read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return k.pseudonym(value);
    }
    let mut w = slot().write().unwrap_or_else(|e| e.into_inner());
    w.get_or_insert_with(PseudonymKey::random).pseudonym(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_keyed_and_distinct() {
        let k = PseudonymKey::new(b"0123456789abcdef0123456789abcdef");
        let a = k.pseudonym("ada@example.com");
        assert_eq!(a, k.pseudonym("ada@example.com"));
        assert_ne!(a, k.pseudonym("bob@example.com"));
        assert_ne!(
            a,
            PseudonymKey::new(b"another key, also 32 bytes long!").pseudonym("ada@example.com")
        );
        assert_eq!(a.len(), 36);
        assert!(a[4..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
}
