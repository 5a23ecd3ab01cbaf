//! Sluice's cluster mode: one coordinator and many workers run the same jobs as the
//! embedded executor, across processes and machines (Flink's JobManager and
//! TaskManagers).
//!
//! - **[`coordinator`]**: the coordinator process: workers, slots, jobs, restarts.
//! - **[`client`]**: submit, list, cancel, savepoint.
//! - **[`job`]**: what travels about a job: its spec, plan summary and deployments.
//! - **[`worker`]**: the worker process: registration, heartbeats, running deployments.
//! - **[`registry`]**: Rust DataStream jobs on a cluster: the job binary is the worker.
//! - **[`rpc`]**: the control plane, a gRPC service between coordinator, workers and
//!   clients.
//! - **[`transport`]**: the data plane, channels between workers over TCP with
//!   credit-based flow control.
//!
//! What it is *not*: a resource manager. Workers are started by the user (or by
//! Kubernetes); the coordinator schedules tasks onto the slots they offer.

pub mod client;
pub mod coordinator;
pub mod error;
pub mod job;
pub mod registry;
pub mod rpc;
pub mod transport;
pub mod worker;

pub use error::{Error, Result};
