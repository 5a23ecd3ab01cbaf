//! The [`Data`] bound: what a record type of the typed API must be able to do.
//!
//! Records are cloned when a stream fans out to several consumers, sent across threads,
//! and (in cluster mode and in checkpoints) serialized with serde. Requiring all of it from
//! the start means a job that runs embedded also runs distributed, unchanged.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A record type usable on a Sluice stream. Implemented automatically for every type that
/// is `Clone + Send + Serialize + DeserializeOwned + 'static` (derive `Clone`, `Serialize`
/// and `Deserialize` on your structs).
pub trait Data: Clone + Send + Serialize + DeserializeOwned + 'static {}

impl<T: Clone + Send + Serialize + DeserializeOwned + 'static> Data for T {}
