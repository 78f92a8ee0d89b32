//! The response body of both gRPC layers: a call ends when its response
//! stream ends (its trailers carry `grpc-status`) or is dropped.

use super::client::ClientGuard;
use super::guard::ServerGuard;
use http_body::{Body, Frame, SizeHint};
use observe_core::classify::grpc::{self, GrpcStatus};
use pin_project_lite::pin_project;
use std::borrow::Cow;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// Where a call was when its guard dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// No response yet: the call future was dropped (or unwound).
    Pending,
    /// Response headers sent, messages streaming: dropped before the end.
    Streaming,
    /// The stream ended (or the service failed): nothing left to infer.
    Done,
}

/// What both layers learn of a call while it runs.
#[derive(Debug)]
pub(crate) struct Progress {
    /// `grpc-status` from the headers (trailers-only) or the trailers.
    pub(crate) status: GrpcStatus,
    pub(crate) stage: Stage,
    /// A failure without a status (`service_error`, `response_body_error`).
    pub(crate) error: Option<Cow<'static, str>>,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Progress {
            status: GrpcStatus::Missing,
            stage: Stage::Pending,
            error: None,
        }
    }

    /// The response headers arrived: a trailers-only response has its status.
    pub(crate) fn headers(&mut self, headers: &http::HeaderMap) {
        self.stage = Stage::Streaming;
        self.trailers(headers);
    }

    /// Trailers (or headers) read: the first status found wins.
    fn trailers(&mut self, map: &http::HeaderMap) {
        if self.status == GrpcStatus::Missing {
            self.status = grpc::status(map);
        }
    }
}

/// The guard of a server or a client call (recorded when dropped).
pub(crate) enum CallGuard {
    Server(ServerGuard),
    Client(ClientGuard),
}

impl CallGuard {
    pub(crate) fn progress(&mut self) -> &mut Progress {
        match self {
            CallGuard::Server(g) => &mut g.progress,
            CallGuard::Client(g) => &mut g.progress,
        }
    }

    fn span(&self) -> &observe_core::tracing::Span {
        match self {
            CallGuard::Server(g) => &g.span,
            CallGuard::Client(g) => &g.span,
        }
    }
}

pin_project! {
    /// Response body of the gRPC layers: polls the stream inside the call's
    /// span, and records the call's duration and outcome when the stream
    /// ends (from its trailers) or is dropped.
    pub struct GrpcBody<B> {
        #[pin]
        pub(crate) inner: B,
        pub(crate) guard: Option<CallGuard>,
    }
}

impl<B> GrpcBody<B> {
    pub(crate) fn new(inner: B, mut guard: CallGuard) -> Self
    where
        B: Body,
    {
        if inner.is_end_stream() {
            guard.progress().stage = Stage::Done;
            drop(guard);
            return GrpcBody { inner, guard: None };
        }
        GrpcBody {
            inner,
            guard: Some(guard),
        }
    }
}

impl<B: std::fmt::Debug> std::fmt::Debug for GrpcBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcBody")
            .field("inner", &self.inner)
            .field("open", &self.guard.is_some())
            .finish()
    }
}

impl<B: Body> Body for GrpcBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        // Inside the call's span: a streaming handler's work (and its log
        // lines) happens while its stream is polled.
        let frame = {
            let _entered = this.guard.as_ref().map(|g| g.span().enter());
            ready!(this.inner.as_mut().poll_frame(cx))
        };
        let done = match &frame {
            Some(Ok(f)) => {
                if let (Some(g), Some(t)) = (this.guard.as_mut(), f.trailers_ref()) {
                    g.progress().trailers(t);
                }
                false
            }
            Some(Err(_)) => {
                if let Some(g) = this.guard.as_mut() {
                    g.progress()
                        .error
                        .get_or_insert(Cow::Borrowed("response_body_error"));
                }
                true
            }
            None => true,
        };
        if done || this.inner.as_ref().get_ref().is_end_stream() {
            if let Some(mut g) = this.guard.take() {
                g.progress().stage = Stage::Done;
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
