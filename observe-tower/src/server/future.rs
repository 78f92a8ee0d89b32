//! The response future of [`Observe`](super::Observe).

use super::body::ResponseBody;
use super::guard::{RequestGuard, Stage};
use crate::propagation::TRACEPARENT;
use http::Response;
use observe_core::tracing::Span;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

pin_project! {
    /// Polls the inner service inside the request's span; on the response,
    /// adds `traceparent` and hands the bookkeeping to the body.
    pub struct ResponseFuture<F> {
        #[pin]
        pub(crate) inner: F,
        pub(crate) span: Span,
        pub(crate) guard: Option<RequestGuard>,
    }
}

impl<F: std::fmt::Debug> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.span.enter();
            ready!(this.inner.poll(cx))
        };
        let mut guard = this.guard.take();
        match result {
            Ok(mut response) => {
                if let Some(g) = guard.as_mut() {
                    g.status = Some(response.status().as_u16());
                    g.stage = Stage::Body;
                    if let Some(reason) =
                        response.extensions().get::<observe_core::ImplicitFailure>()
                    {
                        g.error_type = Some(reason.0.clone());
                    }
                    if let Some(v) = g.traceparent.take() {
                        response.headers_mut().insert(TRACEPARENT, v);
                    }
                    if g.inspect.is_some() && !is_json(&response) {
                        g.inspect = None;
                    }
                }
                let (parts, body) = response.into_parts();
                let mut body = ResponseBody { inner: body, guard };
                if http_body::Body::is_end_stream(&body.inner) {
                    if let Some(mut g) = body.guard.take() {
                        g.stage = Stage::Done;
                    }
                }
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
            Err(e) => {
                if let Some(mut g) = guard {
                    g.error_type = Some(std::borrow::Cow::Borrowed("service_error"));
                    g.stage = Stage::Done;
                }
                Poll::Ready(Err(e))
            }
        }
    }
}

fn is_json<B>(r: &Response<B>) -> bool {
    r.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"))
}
