//! Interned route templates and span names.
//!
//! Route templates are few and fixed by the application, so each distinct
//! `"{method} {route}"` span name is interned once (observe-core's
//! [`Interner`], at most [`MAX_ROUTES`] of them) and the route is the tail
//! of it: a request then names its span and labels its metrics without
//! allocating. Past the cap (a route classifier returning raw paths, say)
//! names are allocated per request instead, and metric cardinality is still
//! capped by the meter's limit.

use observe_core::intern::Interner;
use std::borrow::Cow;

/// Most distinct `(method, route)` pairs interned per process.
pub(crate) const MAX_ROUTES: usize = 4096;

static SPAN_NAMES: Interner = Interner::new(MAX_ROUTES);

/// The route and span name (`"{method} {route}"`) of a request: interned
/// `&'static str`s, or owned strings past the cap.
pub(crate) fn names(method: &'static str, route: &str) -> (Cow<'static, str>, Cow<'static, str>) {
    match SPAN_NAMES.intern(&[method, " ", route]) {
        Some(name) => {
            let route = name.get(method.len() + 1..).unwrap_or_default();
            (Cow::Borrowed(route), Cow::Borrowed(name))
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
