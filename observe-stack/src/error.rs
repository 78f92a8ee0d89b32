//! Why an engine could not be started or queried. Each message names the
//! engine and what to do.

use std::time::Duration;

/// An engine that is missing, failed to start, or answered wrongly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine's program is not on this machine.
    #[error("{engine} is not available: {hint}")]
    Missing {
        /// The engine's name.
        engine: &'static str,
        /// Where it was looked for and how to get it.
        hint: String,
    },
    /// The program could not be started.
    #[error("cannot start {engine} ({program}): {source}")]
    Spawn {
        /// The engine's name.
        engine: &'static str,
        /// The program's path.
        program: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The program exited while starting; `output` is the end of what it printed.
    #[error("{engine} exited during start-up ({status}); its last output:\n{output}")]
    Exited {
        /// The engine's name.
        engine: &'static str,
        /// Its exit status.
        status: String,
        /// The end of its output: for a config error, the engine's own message.
        output: String,
    },
    /// The program kept running but never answered its readiness probe.
    #[error("{engine} was not ready at {url} after {waited:?}; its last output:\n{output}")]
    NotReady {
        /// The engine's name.
        engine: &'static str,
        /// The probe's URL.
        url: String,
        /// How long it was given.
        waited: Duration,
        /// The end of its output.
        output: String,
    },
    /// A file the engine needs could not be written or read.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A query API answered with an error or an unexpected body.
    #[error("{url}: {reason}")]
    Api {
        /// The request's URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
