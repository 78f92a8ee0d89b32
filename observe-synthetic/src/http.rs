//! The HTTP client that flow steps use ([`FlowContext::http`]): every request
//! carries the step's `traceparent` and baggage `synthetic=true`.
//!
//! [`FlowContext::http`]: super::FlowContext::http

use super::report::{Assertion, BoxFuture, HttpError, StepError};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use observe_core::propagation::{BAGGAGE, TRACEPARENT};
use serde_json::Value;
use std::sync::{Arc, OnceLock};

/// Largest response body a step reads (bigger bodies fail the request).
pub const MAX_RESPONSE_BODY: usize = 4 << 20;

const USER_AGENT_VALUE: &str = concat!("observe-synthetic/", env!("CARGO_PKG_VERSION"));
/// The baggage entry that marks a request as synthetic traffic.
pub(crate) const SYNTHETIC_BAGGAGE: &str = "synthetic=true";

type HyperResult = Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>;

/// Sends one request; implemented by hyper-util's client for any connector.
pub(crate) trait Transport: Send + Sync {
    fn send(&self, req: http::Request<Full<Bytes>>) -> BoxFuture<'static, HyperResult>;
}

impl<C> Transport for Client<C, Full<Bytes>>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    fn send(&self, req: http::Request<Full<Bytes>>) -> BoxFuture<'static, HyperResult> {
        Box::pin(self.request(req))
    }
}

/// Makes a fresh client (one per run: a run shares no connection with the
/// previous one, like a new user).
pub(crate) type MakeTransport = Arc<dyn Fn() -> Arc<dyn Transport> + Send + Sync>;

pub(crate) fn make_transport<C>(connector: C) -> MakeTransport
where
    C: Connect + Clone + Send + Sync + 'static,
{
    Arc::new(move || {
        Arc::new(Client::builder(TokioExecutor::new()).build::<C, Full<Bytes>>(connector.clone()))
    })
}

pub(crate) fn default_transport() -> MakeTransport {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    make_transport(c)
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.ends_with(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

/// A small HTTP/1 client. Cloning is cheap; clones share connections.
#[derive(Clone)]
pub struct Http {
    transport: Arc<dyn Transport>,
    /// Add `traceparent` and baggage `synthetic=true` (off for alert delivery).
    synthetic: bool,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("synthetic", &self.synthetic)
            .finish_non_exhaustive()
    }
}

impl Http {
    pub(crate) fn new(transport: Arc<dyn Transport>, synthetic: bool) -> Self {
        Http {
            transport,
            synthetic,
        }
    }

    /// A `GET` request.
    pub fn get(&self, url: impl Into<String>) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// A `POST` request.
    pub fn post(&self, url: impl Into<String>) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// A `PUT` request.
    pub fn put(&self, url: impl Into<String>) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// A `DELETE` request.
    pub fn delete(&self, url: impl Into<String>) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// A request with any method.
    pub fn request(&self, method: Method, url: impl Into<String>) -> RequestBuilder {
        RequestBuilder {
            http: self.clone(),
            method,
            url: url.into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            error: None,
        }
    }
}

/// A request being built; [`send`](Self::send) it. Errors in the builder
/// calls are reported by `send`.
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    http: Http,
    method: Method,
    url: String,
    headers: HeaderMap,
    body: Bytes,
    error: Option<HttpError>,
}

impl RequestBuilder {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                self.headers.append(n, v);
            }
            _ => {
                self.error.get_or_insert(HttpError::InvalidHeader {
                    name: name.to_owned(),
                });
            }
        }
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn bearer_auth(self, token: impl std::fmt::Display) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Sends `body` as JSON (`Content-Type: application/json`).
    pub fn json<T: serde::Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(b) => {
                self.body = Bytes::from(b);
                self.headers
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            Err(e) => {
                self.error.get_or_insert(HttpError::Encode(e));
            }
        }
        self
    }

    /// Sends raw bytes as the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends the request and reads the whole response.
    pub async fn send(self) -> Result<Response, HttpError> {
        let RequestBuilder {
            http,
            method,
            url,
            mut headers,
            body,
            error,
        } = self;
        if let Some(e) = error {
            return Err(e);
        }
        let uri = parse_url(&url)?;
        if http.synthetic {
            inject_context(&mut headers);
        }
        if !headers.contains_key(USER_AGENT) {
            headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        }
        let mut req = http::Request::new(Full::new(body));
        *req.method_mut() = method.clone();
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        let res = http
            .transport
            .send(req)
            .await
            .map_err(|e| HttpError::Transport {
                method: method.clone(),
                url: url.clone(),
                reason: error_chain(&e),
            })?;
        let (parts, body) = res.into_parts();
        let body = Limited::new(body, MAX_RESPONSE_BODY)
            .collect()
            .await
            .map_err(|e| HttpError::Body {
                method,
                url,
                reason: error_chain(e.as_ref()),
            })?
            .to_bytes();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
            json: OnceLock::new(),
        })
    }
}

fn parse_url(url: &str) -> Result<Uri, HttpError> {
    let invalid = |reason: &str| HttpError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    if uri.scheme().is_none() || uri.host().is_none() {
        return Err(invalid(
            "expected an absolute URL like http://host:port/path",
        ));
    }
    Ok(uri)
}

/// Writes the current span's `traceparent` and the run's baggage (which
/// always contains `synthetic=true`).
fn inject_context(headers: &mut HeaderMap) {
    let ctx = observe_core::span::with_current_span(|h| {
        (
            observe_core::propagation::traceparent(&h),
            h.propagated().and_then(|p| p.baggage.clone()),
        )
    });
    let (traceparent, baggage) = ctx.unwrap_or_default();
    if let Some(v) = traceparent {
        headers.insert(TRACEPARENT, v);
    }
    let baggage = match baggage {
        Some(b) if has_synthetic(&b) => b.into_string(),
        Some(b) if !b.is_empty() => format!("{b},{SYNTHETIC_BAGGAGE}"),
        _ => SYNTHETIC_BAGGAGE.to_owned(),
    };
    if let Ok(v) = HeaderValue::from_str(&baggage) {
        headers.insert(BAGGAGE, v);
    }
}

/// Whether `baggage` has the member `synthetic=true`.
fn has_synthetic(baggage: &str) -> bool {
    observe_core::w3c::Baggage::parse(baggage.as_bytes())
        .get("synthetic")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// A response, read whole.
#[derive(Clone, Debug)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    json: OnceLock<Option<Value>>,
}

/// Bytes of a body quoted in assertion messages.
const BODY_EXCERPT: usize = 200;

impl Response {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// Decodes the JSON body into `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, StepError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            StepError::Assertion(Assertion::new(
                format!("a JSON body ({e})"),
                None,
                self.excerpt(),
            ))
        })
    }

    /// Fails unless the status is `expected`:
    /// `expected HTTP status 200, got 503 (body: ...)`.
    pub fn expect_status(&self, expected: u16) -> Result<(), Assertion> {
        if self.status.as_u16() == expected {
            return Ok(());
        }
        let got = if self.body.is_empty() {
            self.status.as_u16().to_string()
        } else {
            format!("{} (body: {})", self.status.as_u16(), self.excerpt())
        };
        Err(Assertion::new(
            "HTTP status",
            Some(expected.to_string()),
            got,
        ))
    }

    /// The JSON body's `field` (a key of the top-level object, or a JSON
    /// pointer such as `/order/id`), failing when it is absent or `null`:
    /// `expected field "id", got nothing`.
    pub fn json_field(&self, field: &str) -> Result<Value, Assertion> {
        match self.lookup(field)? {
            Some(v) if !v.is_null() => Ok(v.clone()),
            Some(_) => Err(Assertion::new(format!("field {field:?}"), None, "null")),
            None => Err(Assertion::new(format!("field {field:?}"), None, "nothing")),
        }
    }

    /// Fails unless the JSON body's `field` equals `expected`:
    /// `expected status "success", got "processing"`.
    pub fn expect_json(&self, field: &str, expected: impl Into<Value>) -> Result<(), Assertion> {
        let expected = expected.into();
        let got = self.lookup(field)?;
        if got == Some(&expected) {
            return Ok(());
        }
        Err(Assertion::new(
            field.trim_start_matches('/'),
            Some(expected.to_string()),
            got.map_or_else(|| "nothing".to_owned(), Value::to_string),
        ))
    }

    fn lookup(&self, field: &str) -> Result<Option<&Value>, Assertion> {
        let json = self
            .json
            .get_or_init(|| serde_json::from_slice(&self.body).ok());
        let Some(v) = json.as_ref() else {
            return Err(Assertion::new("a JSON body", None, self.excerpt()));
        };
        Ok(if field.starts_with('/') {
            v.pointer(field)
        } else {
            v.get(field)
        })
    }

    fn excerpt(&self) -> String {
        let text = self.text();
        if text.is_empty() {
            return "an empty body".to_owned();
        }
        let mut end = text.len().min(BODY_EXCERPT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut s = format!("{:?}", &text[..end]);
        if end < text.len() {
            s.push_str("...");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status: StatusCode::from_u16(status).expect("status"),
            headers: HeaderMap::new(),
            body: Bytes::copy_from_slice(body.as_bytes()),
            json: OnceLock::new(),
        }
    }

    #[test]
    fn assertion_messages() {
        let r = response(200, r#"{"status":"processing","order":{"id":"o1"}}"#);
        assert_eq!(
            r.expect_json("status", "success")
                .map_err(|e| e.to_string()),
            Err(r#"expected status "success", got "processing""#.to_owned())
        );
        assert_eq!(r.expect_json("/order/id", "o1").ok(), Some(()));
        assert_eq!(
            r.json_field("id").map_err(|e| e.to_string()),
            Err(r#"expected field "id", got nothing"#.to_owned())
        );
        assert_eq!(
            response(503, "down")
                .expect_status(200)
                .map_err(|e| e.to_string()),
            Err(r#"expected HTTP status 200, got 503 (body: "down")"#.to_owned())
        );
        assert_eq!(
            response(200, "<html>")
                .expect_json("status", "x")
                .map_err(|e| e.to_string()),
            Err(r#"expected a JSON body, got "<html>""#.to_owned())
        );
    }

    #[test]
    fn baggage_detection() {
        assert!(has_synthetic("synthetic=true"));
        assert!(has_synthetic("a=b, synthetic = TRUE;p=1"));
        assert!(!has_synthetic("synthetic=false,x=synthetic=true"));
    }

    #[test]
    fn urls_must_be_absolute() {
        assert!(matches!(
            parse_url("/pay"),
            Err(HttpError::InvalidUrl { .. })
        ));
        assert!(matches!(
            parse_url("http://"),
            Err(HttpError::InvalidUrl { .. })
        ));
        assert!(parse_url("http://127.0.0.1:3000/pay").is_ok());
    }
}
