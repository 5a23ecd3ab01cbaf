//! The Sluice runtime: runs operator chains as tasks connected by bounded channels.
//!
//! - **[`graph`]**: the logical [`JobGraph`] of nodes and edges, type-erased behind
//!   [`graph::NodeFactory`] and [`graph::EdgeFactory`].
//! - **[`plan`]**: validation and operator chaining into a [`PhysicalPlan`].
//! - **[`executor`]**: [`LocalExecutor`], the embedded deployment (one thread per task),
//!   and the partial deployment a cluster worker runs.
//! - **[`placement`]**: which tasks run in this process; channels to the others.
//! - **[`task`]**: source tasks and input tasks, their run loops.
//! - **[`operator`]**: the [`Operator`] trait, [`operator::Collector`] and chains.
//! - **[`operators`]**: built-in operators (map, filter, flat map, keyed reduce, keyed
//!   process).
//! - **[`channel`]**: channels of [`sluice_core::StreamEvent`]s, the [`channel::InputGate`].
//! - **[`partition`]**: forward, rebalance, broadcast and hash partitioning.
//! - **[`watermark`]**: the [`watermark::WatermarkTracker`] over input channels.
//! - **[`source`]** and **[`sink`]**: the contracts connectors implement.
//! - **[`control`]**: stopping and cancelling a running job.
//! - **[`config`]**, **[`error`]**, **[`factories`]**.
//!
//! What it is *not*: a user API. Jobs are written with `sluice-api`; this crate is what
//! that API (and later SQL and the cluster) deploys onto.
//!
//! ```
//! use std::sync::Arc;
//! use sluice_runtime::{JobControl, JobConfig, LocalExecutor, JobGraph, JobStatus};
//! // An empty graph is rejected with a message saying what to add.
//! let err = LocalExecutor::new(JobConfig::default())
//!     .execute(&JobGraph::default(), JobControl::new())
//!     .unwrap_err();
//! assert!(err.to_string().contains("add a source"));
//! ```

pub mod channel;
pub mod checkpoint;
pub mod config;
pub mod control;
pub mod error;
pub mod executor;
pub mod factories;
pub mod graph;
pub mod metrics;
pub mod operator;
pub mod operators;
pub mod partition;
pub mod placement;
pub mod plan;
pub mod sink;
pub mod source;
pub mod task;
pub mod watermark;

pub use config::{JobConfig, RuntimeMode};
pub use control::JobControl;
pub use error::{BoxError, Error, ErrorKind, Result, TaskLocation};
pub use executor::{JobResult, JobStatus, LocalExecutor};
pub use graph::JobGraph;
pub use operator::side_output::OutputTag;
pub use operator::two_input::{TwoInput, TwoInputOperator};
pub use operator::{Collector, Operator, OperatorContext};
pub use plan::PhysicalPlan;
