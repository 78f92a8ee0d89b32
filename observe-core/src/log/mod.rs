//! JSON log lines: formatting primitives, writers, redaction and sampling.

pub(crate) mod json;
pub(crate) mod line;
pub(crate) mod redact;
pub(crate) mod sampling;
pub(crate) mod timestamp;
pub(crate) mod writer;
