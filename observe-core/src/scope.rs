//! The instrumentation scope of everything observe records: its spans, its
//! log records and its instruments are attributed to `observe` at this
//! crate's version.

use opentelemetry::InstrumentationScope;

/// The scope's name.
pub(crate) const NAME: &str = "observe";

/// The instrumentation scope of everything observe exports. Built from
/// constants, which costs less than cloning a built one (it is made for
/// every exported span).
#[inline]
pub fn instrumentation_scope() -> InstrumentationScope {
    InstrumentationScope::builder(NAME)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}
