//! The errors of the SQL layer: where in the script a statement is wrong, and why.

use std::fmt;

/// A position in a SQL script (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Everything the SQL layer reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The script does not parse.
    #[error("SQL parse error at {location}: {message}")]
    Parse {
        /// Where the parser stopped.
        location: Location,
        /// What it expected or found.
        message: String,
    },
    /// A statement parses but cannot be planned (unknown table, wrong types, ...).
    #[error("{}{message}", at(.location))]
    Plan {
        /// The statement's start, when known.
        location: Option<Location>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A query uses something Sluice does not run (yet).
    #[error("{}unsupported: {message}", at(.location))]
    Unsupported {
        /// The statement's start, when known.
        location: Option<Location>,
        /// What is unsupported, and the alternative if there is one.
        message: String,
    },
    /// A table's `WITH (...)` options or a `SET` are wrong.
    #[error("{}{message}", at(.location))]
    Config {
        /// The statement's start, when known.
        location: Option<Location>,
        /// Which option is wrong and what it accepts.
        message: String,
    },
    /// Evaluating expressions on a batch failed.
    #[error("{0}")]
    Execution(String),
    /// DataFusion reported an error while planning.
    #[error("{0}")]
    DataFusion(#[from] datafusion_common::DataFusionError),
    /// Arrow reported an error.
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The runtime failed running the job.
    #[error(transparent)]
    Runtime(#[from] sluice_runtime::Error),
}

fn at(location: &Option<Location>) -> String {
    location.map(|l| format!("at {l}: ")).unwrap_or_default()
}

impl Error {
    /// A planning error without a location (the caller adds the statement's).
    pub fn plan(message: impl Into<String>) -> Self {
        Error::Plan {
            location: None,
            message: message.into(),
        }
    }

    /// An unsupported feature, without a location.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Error::Unsupported {
            location: None,
            message: message.into(),
        }
    }

    /// A configuration error, without a location.
    pub fn config(message: impl Into<String>) -> Self {
        Error::Config {
            location: None,
            message: message.into(),
        }
    }

    /// This error, located at `location` when it has no location yet.
    #[must_use]
    pub fn at(self, location: Location) -> Self {
        match self {
            Error::Plan {
                location: None,
                message,
            } => Error::Plan {
                location: Some(location),
                message,
            },
            Error::Unsupported {
                location: None,
                message,
            } => Error::Unsupported {
                location: Some(location),
                message,
            },
            Error::Config {
                location: None,
                message,
            } => Error::Config {
                location: Some(location),
                message,
            },
            Error::DataFusion(e) => Error::Plan {
                location: Some(location),
                message: e.strip_backtrace().to_string(),
            },
            other => other,
        }
    }

    /// This error as a runtime user error (raised by an operator while the job runs).
    pub fn into_runtime(self) -> sluice_runtime::Error {
        match self {
            Error::Runtime(e) => e,
            other => sluice_runtime::Error::User(Box::new(other)),
        }
    }
}

/// The SQL layer's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Converts DataFusion and Arrow errors raised while a job runs into runtime errors.
pub(crate) fn exec<T>(r: std::result::Result<T, impl Into<Error>>) -> sluice_runtime::Result<T> {
    r.map_err(|e| e.into().into_runtime())
}
