//! Interned strings: the few thousand low-cardinality names a process uses
//! over and over (route templates and span names, event names of OTLP log
//! records) turned into `&'static str` once, and found again through a
//! per-thread cache, so a request or a record names things without
//! allocating or taking a lock.
//!
//! Each [`Interner`] keeps at most its cap of strings (they are leaked: a
//! name is never freed). Past the cap, or if two names share a hash,
//! [`Interner::intern`] returns `None` and the caller allocates instead.
//!
//! ```
//! use observe_core::intern::Interner;
//!
//! static SPAN_NAMES: Interner = Interner::new(4096);
//! let name = SPAN_NAMES.intern(&["GET", " ", "/orders/{id}"]).expect("room");
//! assert_eq!(name, "GET /orders/{id}");
//! // The same parts give the same `&'static str` again.
//! let again = SPAN_NAMES.intern(&["GET", " ", "/orders/{id}"]).expect("room");
//! assert!(std::ptr::eq(name, again));
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, OnceLock};

/// Keys are already hashes (a `(interner, hash)` key hashes as its hash).
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type Map<K> = HashMap<K, &'static str, BuildHasherDefault<Identity>>;

thread_local! {
    /// This thread's view of every interner: (interner, hash) → string.
    static LOCAL: RefCell<Map<(usize, u64)>> = RefCell::new(Map::default());
}

/// A set of interned strings with a cap. Use it as a `static`.
#[derive(Debug)]
pub struct Interner {
    cap: usize,
    global: OnceLock<Mutex<Map<u64>>>,
}

/// FNV-1a of the concatenated parts.
fn key(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    // Nested loops, not `flat_map`: this runs for every request's route.
    for p in parts {
        for &b in p.as_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Whether `s` is the concatenation of `parts` (without building it).
fn is_concat(s: &str, parts: &[&str]) -> bool {
    let mut rest = s;
    for p in parts {
        match rest.strip_prefix(p) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

impl Interner {
    /// An interner keeping at most `cap` strings.
    pub const fn new(cap: usize) -> Self {
        Interner {
            cap,
            global: OnceLock::new(),
        }
    }

    /// The interned concatenation of `parts`: from this thread's cache
    /// (a hash and a comparison), else from the process-wide set (one lock,
    /// once per thread and name), else newly leaked while under the cap.
    pub fn intern(&'static self, parts: &[&str]) -> Option<&'static str> {
        let k = key(parts);
        let id = std::ptr::from_ref(self) as usize;
        let local = LOCAL
            .try_with(|m| m.try_borrow().ok().and_then(|m| m.get(&(id, k)).copied()))
            .ok()
            .flatten();
        if let Some(s) = local.filter(|s| is_concat(s, parts)) {
            return Some(s);
        }
        let found = {
            let global = self.global.get_or_init(|| Mutex::new(Map::default()));
            let mut g = global.lock().unwrap_or_else(|e| e.into_inner());
            match g.get(&k).copied() {
                Some(s) => Some(s),
                None if g.len() < self.cap => {
                    let s: &'static str = Box::leak(parts.concat().into_boxed_str());
                    g.insert(k, s);
                    Some(s)
                }
                None => None,
            }
        };
        let s = found.filter(|s| is_concat(s, parts))?;
        // Not cached when the thread is exiting.
        let _ = LOCAL.try_with(|m| m.try_borrow_mut().map(|mut m| m.insert((id, k), s)));
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_once_then_borrowed_and_capped() {
        static SMALL: Interner = Interner::new(2);
        let a = SMALL.intern(&["GET", " ", "/a"]).expect("room");
        assert!(std::ptr::eq(
            a,
            SMALL.intern(&["GET ", "/a"]).expect("same")
        ));
        let from_other_thread = std::thread::spawn(|| SMALL.intern(&["GET /a"]))
            .join()
            .expect("thread");
        assert_eq!(from_other_thread.map(str::as_ptr), Some(a.as_ptr()));
        assert_eq!(SMALL.intern(&["b"]), Some("b"));
        assert_eq!(SMALL.intern(&["c"]), None, "past the cap");
        assert!(is_concat("POST /x", &["POST", " ", "/x"]));
        assert!(!is_concat("POST /x", &["POST", "/x"]));
    }
}
