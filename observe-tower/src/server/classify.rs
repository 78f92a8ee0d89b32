//! What a request is called (its route) and whether it failed.

use http::{Extensions, Method, Uri};
use std::borrow::Cow;
use std::sync::Arc;

/// The value of `http.route` for requests no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Names a request's route template (`/orders/{id}`), never its raw path.
///
/// Implemented for closures `Fn(&Method, &Uri, &Extensions) -> Option<Cow<'static, str>>`.
/// Return a template with placeholders (`/orders/{id}`), never the raw path:
/// the value becomes a metric label.
pub trait RouteClassifier: Send + Sync + 'static {
    /// The route template, or `None` when no route matched.
    fn route<'a>(
        &self,
        method: &Method,
        uri: &Uri,
        extensions: &'a Extensions,
    ) -> Option<Cow<'a, str>>;
}

impl<F> RouteClassifier for F
where
    F: Fn(&Method, &Uri, &Extensions) -> Option<Cow<'static, str>> + Send + Sync + 'static,
{
    fn route<'a>(
        &self,
        method: &Method,
        uri: &Uri,
        extensions: &'a Extensions,
    ) -> Option<Cow<'a, str>> {
        self(method, uri, extensions)
    }
}

/// Reads axum's `MatchedPath` (available when the layer wraps an axum `Router`).
#[derive(Clone, Copy, Debug, Default)]
pub struct MatchedPathRoute;

impl RouteClassifier for MatchedPathRoute {
    fn route<'a>(&self, _: &Method, _: &Uri, extensions: &'a Extensions) -> Option<Cow<'a, str>> {
        #[cfg(feature = "axum")]
        {
            extensions
                .get::<axum::extract::MatchedPath>()
                .map(|m| Cow::Borrowed(m.as_str()))
        }
        #[cfg(not(feature = "axum"))]
        {
            let _ = extensions;
            None
        }
    }
}

/// Implicit failures in small JSON bodies: on the given routes, a response
/// whose top-level `field` has one of `values` is a failure named
/// `<field>_<value>` (for example `status_processing`).
#[derive(Clone, Debug)]
pub struct JsonFailureRule {
    pub(crate) routes: Arc<[String]>,
    pub(crate) field: String,
    pub(crate) values: Arc<[String]>,
    pub(crate) limit: usize,
}

impl JsonFailureRule {
    /// A rule for `field` with failure `values`, on `routes` (empty: every route).
    pub fn new<R, V>(routes: R, field: impl Into<String>, values: V) -> Self
    where
        R: IntoIterator,
        R::Item: Into<String>,
        V: IntoIterator,
        V::Item: Into<String>,
    {
        JsonFailureRule {
            routes: routes.into_iter().map(Into::into).collect(),
            field: field.into(),
            values: values.into_iter().map(Into::into).collect(),
            limit: 16 * 1024,
        }
    }

    /// Largest body inspected, in bytes (default 16 KiB); larger bodies pass.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.limit = bytes;
        self
    }

    pub(crate) fn applies(&self, route: &str) -> bool {
        self.routes.is_empty() || self.routes.iter().any(|r| r == route)
    }

    /// The failure named by a complete body, if any.
    pub(crate) fn check(&self, body: &[u8]) -> Option<Cow<'static, str>> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let got = v.get(&self.field)?.as_str()?;
        self.values
            .iter()
            .find(|x| x.as_str() == got)
            .map(|x| Cow::Owned(format!("{}_{}", self.field, x)))
    }
}

/// `http.request.method`: the known methods, else `_OTHER` (semantic conventions).
pub(crate) fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}
