//! Errors of the connectors; each names the file or address and says what to do.

use std::path::PathBuf;

/// What can go wrong in a connector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be opened or read.
    #[error("cannot read `{path}`: {source}; check that the path exists and is readable")]
    Read {
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A line of a text file is not valid UTF-8.
    #[error("`{path}` has invalid UTF-8 in the line starting at byte {offset}; convert the file to UTF-8")]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// Byte offset of the line in the file.
        offset: u64,
    },
    /// A file could not be created or written.
    #[error("cannot write `{path}`: {source}; check that the directory exists and is writable")]
    Write {
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A TCP connection could not be made or read.
    #[error(
        "socket `{address}`: {source}; start a server there first (for example `nc -lk {port}`)"
    )]
    Socket {
        /// The address.
        address: String,
        /// The port, for the hint.
        port: u16,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Writing to standard output failed.
    #[error("cannot write to standard output: {0}")]
    Stdout(#[source] std::io::Error),
    /// A connector option has a value that cannot be used.
    #[error("option `{key}` = `{value}` is invalid: {reason}")]
    InvalidOption {
        /// The option's key, as written in the job (`first-event.rate`).
        key: String,
        /// The value given.
        value: String,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// An option the connector does not know (often a typo).
    #[error("option `{key}` is not supported by the `{connector}` connector; supported options: {supported}")]
    UnsupportedOption {
        /// The unknown key.
        key: String,
        /// The connector (`nexmark`).
        connector: String,
        /// The keys it accepts, comma separated.
        supported: String,
    },
    /// A source whose checkpointed position is only valid at the parallelism it was taken
    /// with was restored at another one.
    #[error("source `{operator}` was checkpointed with parallelism {checkpointed} and now runs with {now}; restore it with parallelism {checkpointed}")]
    ParallelismChanged {
        /// The source operator's name.
        operator: String,
        /// The parallelism recorded in the checkpoint.
        checkpointed: u64,
        /// The parallelism of this run.
        now: u32,
    },
}

impl From<Error> for sluice_runtime::Error {
    fn from(e: Error) -> Self {
        sluice_runtime::Error::User(Box::new(e))
    }
}
