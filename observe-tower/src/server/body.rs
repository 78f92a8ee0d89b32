//! The response body wrapper: the request ends when its body ends (or is dropped).

use super::guard::{RequestGuard, Stage};
use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

pin_project! {
    /// Response body of [`Observe`](super::Observe): records the request's
    /// duration and outcome when the body ends, or as aborted when it is dropped early.
    pub struct ResponseBody<B> {
        #[pin]
        pub(crate) inner: B,
        pub(crate) guard: Option<RequestGuard>,
    }
}

impl<B: std::fmt::Debug> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inner", &self.inner)
            .field("open", &self.guard.is_some())
            .finish()
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let (Some(g), Some(data)) = (this.guard.as_mut(), f.data_ref()) {
                    if let Some((rule, buf)) = g.inspect.as_mut() {
                        if buf.len() + data.remaining() <= rule.limit {
                            buf.extend_from_slice(data.chunk());
                            // A data chunk may span several slices.
                            if data.chunk().len() < data.remaining() {
                                g.inspect = None;
                            }
                        } else {
                            g.inspect = None;
                        }
                    }
                }
            }
            Some(Err(_)) => {
                if let Some(mut g) = this.guard.take() {
                    g.error_type
                        .get_or_insert(std::borrow::Cow::Borrowed("response_body_error"));
                    g.stage = Stage::Done;
                }
            }
            None => {
                if let Some(mut g) = this.guard.take() {
                    g.stage = Stage::Done;
                }
            }
        }
        if this.inner.as_ref().get_ref().is_end_stream() {
            if let Some(mut g) = this.guard.take() {
                g.stage = Stage::Done;
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
