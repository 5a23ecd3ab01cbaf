//! The control plane: a gRPC service (tonic) between the coordinator, its workers and
//! clients (`sluice submit`, `list`, `cancel`, `savepoint`).
//!
//! Workers call the coordinator, never the reverse: a worker registers, sends
//! heartbeats, and holds a server stream of [`messages::Command`]s open (deploy, cancel,
//! checkpoint trigger and completion). So only the coordinator needs an address workers
//! can reach, as with Flink's JobManager.

pub mod messages;

// Generated code follows tonic's style, not this workspace's lints.
#[allow(
    missing_docs,
    unreachable_pub,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic,
    clippy::clone_on_ref_ptr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods
)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/sluice.cluster.Coordinator.rs"));
}

pub use generated::coordinator_client::CoordinatorClient;
pub use generated::coordinator_server::{Coordinator as CoordinatorService, CoordinatorServer};
