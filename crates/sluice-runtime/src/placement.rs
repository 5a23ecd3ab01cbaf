//! [`Placement`]: which tasks of a job run in this process, and how channels reach the
//! tasks that run elsewhere.
//!
//! The embedded executor places every task here ([`InProcess`]); a cluster worker places
//! the tasks the coordinator assigned to it and connects the other channels through its
//! network transport. Invariant: a placement answers the same for a task every time it is
//! asked during one deployment, so both ends of every channel agree on where it runs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::channel::remote::{RemoteInbox, RemoteLink};
use crate::error::{Error, Result};

/// One channel of a deployed job: the network edge (its index among the job graph's
/// edges) and the upstream and downstream subtasks it connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChannelId {
    /// Index of the edge in [`crate::graph::JobGraph::edges`].
    pub edge: u32,
    /// The upstream subtask.
    pub from: u32,
    /// The downstream subtask.
    pub to: u32,
}

impl std::fmt::Display for ChannelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "edge {} ({} -> {})", self.edge, self.from, self.to)
    }
}

/// Where the tasks of one deployment run, seen from this process.
pub trait Placement {
    /// Whether subtask `subtask` of chain `chain` (an index into
    /// [`crate::plan::PhysicalPlan::chains`]) runs in this process.
    fn is_local(&self, chain: usize, subtask: u32) -> bool;

    /// The link through which a local task writes `channel`, whose receiver runs
    /// elsewhere.
    ///
    /// # Errors
    /// When the receiver's process cannot be reached.
    fn link_to(&self, channel: ChannelId) -> Result<Arc<dyn RemoteLink>>;

    /// What the local receiver of `channel` calls for each event its task takes: one
    /// credit back to the remote writer.
    ///
    /// # Errors
    /// When the writer's process cannot be reached.
    fn credit_return(&self, channel: ChannelId) -> Result<Arc<dyn Fn() + Send + Sync>>;

    /// Registers the inbox into which the transport delivers `channel`'s frames.
    ///
    /// # Errors
    /// When the channel is registered twice.
    fn accept(&self, channel: ChannelId, inbox: Box<dyn RemoteInbox>) -> Result<()>;
}

/// Every task in this process: the embedded executor's placement.
#[derive(Debug, Clone, Copy, Default)]
pub struct InProcess;

fn no_remote() -> Error {
    Error::Internal("an in-process deployment has no remote channel".into())
}

impl Placement for InProcess {
    fn is_local(&self, _chain: usize, _subtask: u32) -> bool {
        true
    }
    fn link_to(&self, _channel: ChannelId) -> Result<Arc<dyn RemoteLink>> {
        Err(no_remote())
    }
    fn credit_return(&self, _channel: ChannelId) -> Result<Arc<dyn Fn() + Send + Sync>> {
        Err(no_remote())
    }
    fn accept(&self, _channel: ChannelId, _inbox: Box<dyn RemoteInbox>) -> Result<()> {
        Err(no_remote())
    }
}
