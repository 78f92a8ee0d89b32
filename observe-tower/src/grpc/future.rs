//! The response future of [`GrpcObserve`](super::GrpcObserve).

use super::body::{CallGuard, GrpcBody, Stage};
use http::Response;
use observe_core::tracing::Span;
use pin_project_lite::pin_project;
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

pin_project! {
    /// Polls the inner service inside the call's span; on the response
    /// headers, hands the bookkeeping to the body.
    pub struct GrpcResponseFuture<F> {
        #[pin]
        pub(crate) inner: F,
        pub(crate) span: Span,
        pub(crate) guard: Option<CallGuard>,
    }
}

impl<F: std::fmt::Debug> std::fmt::Debug for GrpcResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcResponseFuture")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for GrpcResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = Result<Response<GrpcBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.span.enter();
            ready!(this.inner.poll(cx))
        };
        let guard = this.guard.take();
        match result {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                let body = match guard {
                    Some(mut g) => {
                        let p = g.progress();
                        p.headers(&parts.headers);
                        if let Some(reason) =
                            parts.extensions.get::<observe_core::ImplicitFailure>()
                        {
                            p.error.get_or_insert(reason.0.clone());
                        }
                        GrpcBody::new(body, g)
                    }
                    None => GrpcBody {
                        inner: body,
                        guard: None,
                    },
                };
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
            Err(e) => {
                if let Some(mut g) = guard {
                    let p = g.progress();
                    p.error = Some(Cow::Borrowed("service_error"));
                    p.stage = Stage::Done;
                }
                Poll::Ready(Err(e))
            }
        }
    }
}
