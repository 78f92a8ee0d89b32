//! JSON log lines, below the tracing layer: the line's layout (`line.rs`),
//! the JSON primitives it is written with (`json.rs`, `timestamp.rs`),
//! redaction of denied fields (`redact.rs`), which lines log sampling keeps
//! and which it holds back for a failing request (`sampling.rs`), and the
//! sinks lines go to (`writer.rs`: a bounded non-blocking writer, a
//! synchronous one, memory). Nothing here knows about spans' export.

pub(crate) mod json;
pub(crate) mod line;
pub(crate) mod redact;
pub(crate) mod sampling;
pub(crate) mod timestamp;
pub(crate) mod writer;
