//! Interned route templates and span names.
//!
//! Route templates are few and fixed by the application, so each distinct
//! `(method, route)` is turned into `&'static str`s once (leaked, at most
//! [`MAX_ROUTES`] of them) and found again through a per-thread cache: a
//! request then names its span and labels its metrics without allocating.
//! Past the cap (a route classifier returning raw paths, say) names are
//! allocated per request instead, and metric cardinality is still capped by
//! the meter's limit.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, OnceLock};

/// Most distinct `(method, route)` pairs interned per process.
pub(crate) const MAX_ROUTES: usize = 4096;

#[derive(Clone, Copy, Debug)]
struct Names {
    method: &'static str,
    route: &'static str,
    span_name: &'static str,
}

/// Keys are already hashes.
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

type Map = HashMap<u64, Names, BuildHasherDefault<Identity>>;

static GLOBAL: OnceLock<Mutex<Map>> = OnceLock::new();

thread_local! {
    static LOCAL: RefCell<Map> = RefCell::new(Map::default());
}

/// FNV-1a of method and route.
fn key(method: &str, route: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in method.bytes().chain([0u8]).chain(route.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn matches(n: &Names, method: &str, route: &str) -> bool {
    n.method == method && n.route == route
}

/// The route and span name (`"{method} {route}"`) of a request: interned
/// `&'static str`s, or owned strings past the cap or on a hash collision.
pub(crate) fn names(method: &'static str, route: &str) -> (Cow<'static, str>, Cow<'static, str>) {
    let k = key(method, route);
    let local = LOCAL
        .try_with(|m| m.try_borrow().ok().and_then(|m| m.get(&k).copied()))
        .ok()
        .flatten();
    if let Some(n) = local.filter(|n| matches(n, method, route)) {
        return (Cow::Borrowed(n.route), Cow::Borrowed(n.span_name));
    }
    let global = GLOBAL.get_or_init(|| Mutex::new(Map::default()));
    let found = {
        let mut g = global.lock().unwrap_or_else(|e| e.into_inner());
        match g.get(&k).copied() {
            Some(n) => Some(n),
            None if g.len() < MAX_ROUTES => {
                let route_s: &'static str = Box::leak(route.to_owned().into_boxed_str());
                let name: &'static str = Box::leak(format!("{method} {route}").into_boxed_str());
                let n = Names {
                    method,
                    route: route_s,
                    span_name: name,
                };
                g.insert(k, n);
                Some(n)
            }
            None => None,
        }
    };
    match found.filter(|n| matches(n, method, route)) {
        Some(n) => {
            // Not cached when the thread is exiting.
            let _ = LOCAL.try_with(|m| m.try_borrow_mut().map(|mut m| m.insert(k, n)));
            (Cow::Borrowed(n.route), Cow::Borrowed(n.span_name))
        }
        None => (
            Cow::Owned(route.to_owned()),
            Cow::Owned(format!("{method} {route}")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_once_and_borrowed_after() {
        let (r, n) = names("GET", "/orders/{id}");
        assert_eq!(
            (r.as_ref(), n.as_ref()),
            ("/orders/{id}", "GET /orders/{id}")
        );
        let (r2, n2) = names("GET", "/orders/{id}");
        assert!(matches!((r2, n2), (Cow::Borrowed(_), Cow::Borrowed(_))));
        let (_, other) = names("POST", "/orders/{id}");
        assert_eq!(other, "POST /orders/{id}");
    }
}
