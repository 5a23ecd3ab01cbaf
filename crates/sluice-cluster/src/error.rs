//! The cluster's error type.

/// Everything that can go wrong in the coordinator, a worker or a cluster client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An address could not be bound.
    #[error(
        "cannot listen on {addr} for the {what}: {source}; pick a free port or another address"
    )]
    Bind {
        /// What was to listen there.
        what: &'static str,
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// A peer could not be reached.
    #[error("cannot reach the {what} at {addr}: {source}; check the address and that it runs")]
    Connect {
        /// What was to be reached.
        what: &'static str,
        /// Its address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The coordinator could not be reached or refused a call.
    #[error("the coordinator at {addr}: {message}")]
    Rpc {
        /// The coordinator's address.
        addr: String,
        /// What went wrong, as the coordinator or the connection said.
        message: String,
    },
    /// A job cannot be run on the cluster as submitted.
    #[error("{0}")]
    InvalidJob(String),
    /// A job id the coordinator does not know.
    #[error("no job {0} on this cluster; `sluice list` shows the jobs")]
    UnknownJob(u64),
    /// The runtime failed to deploy or run tasks.
    #[error(transparent)]
    Runtime(#[from] sluice_runtime::Error),
    /// Persisted coordinator state could not be read or written.
    #[error("coordinator state in {path}: {message}")]
    State {
        /// The file or directory.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A bug in Sluice.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The cluster's result type.
pub type Result<T> = std::result::Result<T, Error>;
