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
}

/// Result with the state layer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
