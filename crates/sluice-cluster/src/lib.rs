//! Sluice's cluster mode: one coordinator and many workers run the same jobs as the
//! embedded executor, across processes and machines (Flink's JobManager and
//! TaskManagers).
//!
//! - **[`transport`]**: the data plane, channels between workers over TCP with
//!   credit-based flow control.
//!
//! What it is *not*: a resource manager. Workers are started by the user (or by
//! Kubernetes); the coordinator schedules tasks onto the slots they offer.

pub mod error;
pub mod transport;

pub use error::{Error, Result};
