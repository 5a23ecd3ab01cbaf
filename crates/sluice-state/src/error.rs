//! Errors of the state layer.

/// What can go wrong in the state layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A state name was registered twice with different value types.
    #[error("state `{name}` is already registered with type {registered}, not {requested}; use one type per state name")]
    TypeMismatch {
        /// The state's name.
        name: String,
        /// The type it was first registered with.
        registered: &'static str,
        /// The type asked for now.
        requested: &'static str,
    },
}

/// Result with the state layer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
