//! The runtime's error type and its classification.

use std::fmt;

/// An error raised by user code (a user function, a source, a sink), before the runtime
/// attributes it to an operator and subtask.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Who is to blame for an error; restart strategies and user messages read this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The job or its input is wrong: fixing the job or data fixes it.
    User,
    /// Something outside Sluice failed (a file, a socket, a broker).
    External,
    /// A bug in Sluice.
    Internal,
}

/// Where in a running job an error happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskLocation {
    /// The operator's name as shown in the job graph.
    pub operator: String,
    /// The failing subtask, `0..parallelism`.
    pub subtask: u32,
    /// The operator's parallelism.
    pub parallelism: u32,
}

impl fmt::Display for TaskLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "operator `{}` (subtask {}/{})",
            self.operator,
            self.subtask + 1,
            self.parallelism
        )
    }
}

/// Everything that can make a job fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A user function, source or sink returned an error. Not yet attributed: the chain
    /// link that called it wraps it into [`Error::OperatorFailed`].
    #[error("{0}")]
    User(BoxError),
    /// A user function, source or sink returned an error.
    #[error("{location} failed: {source}")]
    OperatorFailed {
        /// Where it failed.
        location: TaskLocation,
        /// What the operator reported.
        source: BoxError,
    },
    /// A user function, source or sink panicked.
    #[error("{location} panicked: {message}")]
    OperatorPanicked {
        /// Where it panicked.
        location: TaskLocation,
        /// The panic message.
        message: String,
    },
    /// The job graph is not valid (a configuration error of the job).
    #[error("invalid job: {0}")]
    InvalidJob(String),
    /// The task was cancelled because the job was cancelled or another task failed.
    #[error("task cancelled")]
    Cancelled,
    /// A channel's other end went away without an end-of-stream: the peer task failed.
    #[error("channel closed by a failed peer task")]
    ChannelClosed,
    /// The connection to a task in another process was lost (its worker failed or the
    /// network broke): a root cause, unlike [`Error::ChannelClosed`].
    #[error("lost the connection to {peer} (a worker failed or the network broke); the job restarts from its latest checkpoint")]
    PeerLost {
        /// The other process's address.
        peer: String,
    },
    /// The runtime could not start a task thread.
    #[error("could not start task thread for {location}: {source}")]
    Spawn {
        /// The task that could not start.
        location: TaskLocation,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Checkpoint storage failed (writing, reading or listing checkpoints).
    #[error("checkpoint storage at {location}: {message}")]
    Checkpoint {
        /// The directory or object path involved.
        location: String,
        /// What went wrong and how to fix it.
        message: String,
    },
    /// An invariant of the runtime was violated: a bug in Sluice.
    #[error("internal error (a bug in Sluice, please report it): {0}")]
    Internal(String),
}

impl Error {
    /// Whom to blame.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::User(_) | Error::OperatorFailed { .. } | Error::OperatorPanicked { .. } => {
                ErrorKind::User
            }
            Error::InvalidJob(_) => ErrorKind::User,
            Error::Spawn { .. } | Error::Checkpoint { .. } | Error::PeerLost { .. } => {
                ErrorKind::External
            }
            Error::Cancelled | Error::ChannelClosed | Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Whether restarting the job (from its last checkpoint) may help.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Error::InvalidJob(_) | Error::Internal(_))
    }

    /// Whether this error only reports the consequence of another failure (cancellation,
    /// a closed channel) rather than a root cause.
    pub fn is_consequence(&self) -> bool {
        matches!(self, Error::Cancelled | Error::ChannelClosed)
    }

    /// Attributes an unattributed [`Error::User`] to `location`; other errors pass
    /// unchanged because they were attributed where they happened.
    pub fn at(self, location: impl FnOnce() -> TaskLocation) -> Error {
        match self {
            Error::User(source) => Error::OperatorFailed {
                location: location(),
                source,
            },
            other => other,
        }
    }
}

/// Result with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Turns a panic payload into its message.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_errors_are_attributed_once() {
        let loc = || TaskLocation {
            operator: "Map".into(),
            subtask: 1,
            parallelism: 4,
        };
        let e = Error::User("bad record".into()).at(loc);
        assert_eq!(
            e.to_string(),
            "operator `Map` (subtask 2/4) failed: bad record"
        );
        let again = e.at(|| TaskLocation {
            operator: "Other".into(),
            subtask: 0,
            parallelism: 1,
        });
        assert!(again.to_string().contains("`Map`"));
        assert_eq!(again.kind(), ErrorKind::User);
        assert!(Error::Cancelled.is_consequence());
    }
}
