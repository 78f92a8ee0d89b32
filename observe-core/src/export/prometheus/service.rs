//! `/metrics` as a tower service, to mount on an axum (or any tower) router.

use super::{ExpositionFormat, PrometheusExporter};
use http::header::{ALLOW, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::future::{ready, Ready};
use std::task::{Context, Poll};

/// Answers `GET`/`HEAD` with the exposition, in OpenMetrics when the
/// `Accept` header prefers `application/openmetrics-text`, else in text
/// format; `503` when the meter provider is shut down or the reader was
/// never registered, `405` for other methods. Rendering is synchronous
/// (a collection of the meter provider), so the future is always ready.
///
/// ```
/// # use observe_core::export::prometheus::PrometheusExporter;
/// # fn app(exporter: &PrometheusExporter) {
/// // With axum: Router::new().route_service("/metrics", exporter.service())
/// // or .route("/metrics", axum::routing::get_service(exporter.service())).
/// let svc = exporter.service();
/// # let _ = svc;
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct MetricsService {
    exporter: PrometheusExporter,
}

impl MetricsService {
    pub(crate) fn new(exporter: PrometheusExporter) -> Self {
        MetricsService { exporter }
    }

    /// The exporter it renders.
    pub fn exporter(&self) -> &PrometheusExporter {
        &self.exporter
    }
}

impl<B> tower_service::Service<Request<B>> for MetricsService {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(respond(&self.exporter, req.method(), req.headers())))
    }
}

/// The response to one scrape.
pub(crate) fn respond(
    exporter: &PrometheusExporter,
    method: &Method,
    headers: &HeaderMap,
) -> Response<String> {
    if method != Method::GET && method != Method::HEAD {
        let mut res = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n".to_owned(),
        );
        res.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    let format = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map_or(ExpositionFormat::Text, ExpositionFormat::from_accept);
    match exporter.render(format) {
        Ok(body) => {
            let mut res = Response::new(body);
            res.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            res
        }
        Err(e) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
    }
}

pub(crate) fn plain(status: StatusCode, body: String) -> Response<String> {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}
