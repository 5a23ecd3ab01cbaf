//! Errors of the state layer.

/// What can go wrong in the state layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A state name was registered twice with different value types.
    #[error("state `{name}` is already registered as {registered}, not {requested}; use one kind and type per state name")]
    TypeMismatch {
        /// The state's name.
        name: String,
        /// The kind and type it was first registered with.
        registered: String,
        /// The kind and type asked for now.
        requested: String,
    },
    /// State could not be written to or read from a snapshot.
    #[error("state `{name}` could not be {action} a snapshot: {message}")]
    Snapshot {
        /// The state's name.
        name: String,
        /// "written to" or "read from".
        action: &'static str,
        /// What the serializer reported.
        message: String,
    },
    /// A snapshot holds a state under a name registered now as another kind of state.
    #[error("state `{name}` is {in_snapshot} in the snapshot but registered as {registered}; a job restored from a snapshot must keep each state's kind")]
    RestoreMismatch {
        /// The state's name.
        name: String,
        /// Its kind in the snapshot.
        in_snapshot: String,
        /// Its kind now.
        registered: String,
    },
}

/// Result with the state layer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
