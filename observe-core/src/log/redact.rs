//! Field-name deny-list: values of matching fields are written as `"[REDACTED]"`
//! in log lines, span attributes and log records.
//!
//! A name matches when it contains a deny-list entry, ignoring ASCII case
//! (`user_email`, `Authorization`, `api_token`). Field names of tracing call
//! sites are `&'static str`, so decisions are cached per thread by the name's
//! address: a warm check is one array probe.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering};

/// The value written in place of a denied field.
pub const REDACTED: &str = "[REDACTED]";

/// The default deny-list.
pub const DEFAULT_DENY_LIST: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "card_number",
    "cardnumber",
    "cvv",
    "email",
    "api_key",
    "apikey",
];

static GENERATION: AtomicU32 = AtomicU32::new(1);

const CACHE_SLOTS: usize = 512;

#[derive(Clone, Copy)]
struct Slot {
    ptr: usize,
    len: usize,
    gen: u32,
    denied: bool,
}

thread_local! {
    static CACHE: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

/// A compiled deny-list.
#[derive(Clone, Debug)]
pub(crate) struct Redactor {
    patterns: Vec<Box<[u8]>>,
    gen: u32,
}

impl Redactor {
    pub(crate) fn new<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Redactor {
            patterns: patterns
                .into_iter()
                .map(|p| {
                    p.as_ref()
                        .to_ascii_lowercase()
                        .into_bytes()
                        .into_boxed_slice()
                })
                .filter(|p| !p.is_empty())
                .collect(),
            gen: GENERATION.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn matches(&self, name: &str) -> bool {
        let name = name.as_bytes();
        self.patterns.iter().any(|p| {
            name.len() >= p.len() && name.windows(p.len()).any(|w| w.eq_ignore_ascii_case(p))
        })
    }

    /// Identifies this deny-list in per-thread caches.
    pub(crate) fn generation(&self) -> u32 {
        self.gen
    }

    /// Whether the field called `name` (a call site's static name) is denied.
    #[inline]
    pub(crate) fn is_denied(&self, name: &'static str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let ptr = name.as_ptr() as usize;
        let idx = (ptr.wrapping_mul(0x9e37_79b9) >> 7) % CACHE_SLOTS;
        let cached = CACHE
            .try_with(|c| {
                let c = c.try_borrow().ok()?;
                c.get(idx).and_then(|s| {
                    (s.ptr == ptr && s.len == name.len() && s.gen == self.gen).then_some(s.denied)
                })
            })
            .ok()
            .flatten();
        if let Some(d) = cached {
            return d;
        }
        let denied = self.matches(name);
        // Not cached when the cache is in use or the thread is exiting.
        let _ = CACHE.try_with(|c| {
            let Ok(mut c) = c.try_borrow_mut() else {
                return;
            };
            if c.is_empty() {
                c.resize(
                    CACHE_SLOTS,
                    Slot {
                        ptr: 0,
                        len: 0,
                        gen: 0,
                        denied: false,
                    },
                );
            }
            c[idx] = Slot {
                ptr,
                len: name.len(),
                gen: self.gen,
                denied,
            };
        });
        denied
    }

    /// Uncached check, for dynamic names.
    #[cfg(test)]
    pub(crate) fn is_denied_dyn(&self, name: &str) -> bool {
        self.matches(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_case_insensitive() {
        let r = Redactor::new(DEFAULT_DENY_LIST);
        for n in [
            "password",
            "user_email",
            "Authorization",
            "api_token",
            "card_number",
            "cvv",
        ] {
            assert!(r.is_denied_dyn(n), "{n}");
        }
        for n in ["order_id", "amount_cents", "gateway", "user"] {
            assert!(!r.is_denied_dyn(n), "{n}");
        }
        assert!(r.is_denied("session_token"));
        assert!(r.is_denied("session_token"), "cached");
        assert!(!r.is_denied("order_id"));
        let none = Redactor::new(Vec::<String>::new());
        assert!(!none.is_denied("password"));
    }
}
