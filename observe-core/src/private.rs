//! The runtime that generated code (the `#[observed]` macro, the log macros)
//! and observe's own crates call. Not a public API: names may change in any release.

pub use crate::macros::is_snake_case;
pub use tracing;

use crate::layer::PendingContext;
use opentelemetry::trace::SpanContext;

/// Runs `make_span` so that the span it creates (if it is a local root) gets
/// `parent` as its remote parent, or a fresh trace with `link` as a span link.
pub fn with_remote_context<R>(
    parent: Option<SpanContext>,
    link: Option<SpanContext>,
    synthetic: bool,
    make_span: impl FnOnce() -> R,
) -> R {
    crate::layer::with_pending(
        PendingContext {
            parent,
            link,
            synthetic,
        },
        make_span,
    )
}
