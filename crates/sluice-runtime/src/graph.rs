//! The logical job graph: operators (nodes) and the edges between them, with partitioning.
//!
//! The graph is type-erased so that the planner and executor work for any record type and
//! batch container: each node and edge carries a factory that knows its types
//! ([`NodeFactory`], [`EdgeFactory`]) and builds typed channels, chain links and tasks when
//! the job is deployed. Values cross the erased boundary as `Box<dyn Any>` and are
//! downcast once at deployment, never per record.

use std::any::Any;
use std::sync::Arc;

use sluice_core::OperatorId;

use crate::channel::remote::{RemoteInbox, RemoteLink};
use crate::channel::GateSignal;
use crate::checkpoint::TaskCheckpointing;
use crate::control::JobControl;
use crate::error::Result;
use crate::operator::side_output::{SideOutput, SideOutputs};
use crate::operator::OperatorContext;
use crate::partition::Partitioning;
use crate::source::Boundedness;
use crate::task::Task;

/// A `Box<dyn EventSink<B>>` with its batch type erased.
pub type ErasedSink = Box<dyn Any + Send>;
/// A `Box<dyn ChannelWriter<B>>` with its batch type erased.
pub type ErasedWriter = Box<dyn Any + Send>;
/// A [`crate::channel::ChannelReceiver<B>`] with its batch type erased.
pub type ErasedReceiver = Box<dyn Any + Send>;

/// What role a node plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// Produces records; has no input edge.
    Source {
        /// Whether it ends by itself.
        boundedness: Boundedness,
        /// The highest parallelism it supports.
        max_parallelism: Option<u32>,
    },
    /// Transforms records of one or more input edges.
    Operator,
    /// Consumes records; has no output edge.
    Sink,
}

/// Typed knowledge of a node, used at deployment.
pub trait NodeFactory: Send + Sync {
    /// The task output for this node's output type: a fan-out over `routers` (one per
    /// output edge), the single router, or a terminal when there is none.
    ///
    /// # Errors
    /// [`crate::Error::Internal`] if a router has another type (a planner bug).
    fn build_output(&self, routers: Vec<ErasedSink>) -> Result<ErasedSink>;

    /// This node's operator as a chain link in front of `downstream` (the node is chained
    /// behind another one), writing its side outputs to `side`.
    ///
    /// # Errors
    /// [`crate::Error::User`] if the operator cannot be created; internal errors on a
    /// type mismatch.
    fn build_link(
        &self,
        ctx: &OperatorContext,
        downstream: ErasedSink,
        side: SideOutputs,
    ) -> Result<ErasedSink>;

    /// The task of a chain headed by this node: a source task, or an input task reading
    /// `inputs` into this node's operator linked in front of `downstream`.
    ///
    /// # Errors
    /// As for [`NodeFactory::build_link`].
    fn build_task(
        &self,
        ctx: OperatorContext,
        downstream: ErasedSink,
        side: SideOutputs,
        inputs: TaskInputs,
        control: Arc<JobControl>,
    ) -> Result<Box<dyn Task>>;
}

/// Typed knowledge of an edge, used at deployment.
pub trait EdgeFactory: Send + Sync {
    /// The distribution pattern.
    fn partitioning(&self) -> Partitioning;

    /// A channel of this edge's batch type holding at most `capacity` batches.
    fn create_channel(
        &self,
        settings: ChannelSettings,
        gate: Arc<GateSignal>,
        control: &Arc<JobControl>,
    ) -> (ErasedWriter, ErasedReceiver);

    /// The writer of a channel whose receiver runs in another process, sending through
    /// `link`. The default refuses: the edge's batches cannot cross processes.
    ///
    /// # Errors
    /// [`crate::Error::InvalidJob`] when the batches cannot be sent to another process.
    fn create_remote_writer(
        &self,
        link: Arc<dyn RemoteLink>,
        control: &Arc<JobControl>,
    ) -> Result<ErasedWriter> {
        let _ = (link, control);
        Err(not_remote())
    }

    /// The receiving side of a channel whose writer runs in another process: the inbox
    /// the transport feeds, and the receiver the task reads; `on_take` is called for each
    /// event the task takes (to return a credit). The default refuses, as
    /// [`EdgeFactory::create_remote_writer`] does.
    ///
    /// # Errors
    /// [`crate::Error::InvalidJob`] when the batches cannot be received from another
    /// process.
    fn create_remote_receiver(
        &self,
        settings: ChannelSettings,
        gate: Arc<GateSignal>,
        control: &Arc<JobControl>,
        on_take: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<(Box<dyn RemoteInbox>, ErasedReceiver)> {
        let _ = (settings, gate, control, on_take);
        Err(not_remote())
    }

    /// The side output `id` of one upstream subtask, writing to `routers` (built by
    /// [`EdgeFactory::build_router`] of the edges leaving that side output).
    ///
    /// # Errors
    /// [`crate::Error::Internal`] if a router has another type.
    fn build_side_output(&self, id: u64, routers: Vec<ErasedSink>) -> Result<Box<dyn SideOutput>>;

    /// The router through which one upstream subtask writes to `writers`.
    ///
    /// # Errors
    /// [`crate::Error::Internal`] if a writer has another type.
    fn build_router(
        &self,
        writers: Vec<ErasedWriter>,
        settings: RouterSettings,
    ) -> Result<ErasedSink>;
}

fn not_remote() -> crate::Error {
    crate::Error::InvalidJob(
        "an edge of this job carries batches that cannot be sent between processes; run the job embedded".into(),
    )
}

/// Settings of one channel.
#[derive(Debug, Clone, Copy)]
pub struct ChannelSettings {
    /// Most events the channel holds.
    pub capacity: usize,
    /// Records of a full batch.
    pub batch_size: usize,
}

/// The inputs of a task: its channels' receivers and the signal that wakes it.
pub struct TaskInputs {
    /// Receivers, type-erased, in edge then upstream-subtask order, each with the index of
    /// the node input it feeds (0, or 1 for the second input of a two-input operator).
    pub receivers: Vec<(usize, ErasedReceiver)>,
    /// Wakes the task's input gate.
    pub signal: Arc<GateSignal>,
    /// The task's connection to the checkpoint coordinator, when the job checkpoints.
    pub checkpointing: Option<TaskCheckpointing>,
}

/// Settings of one router.
#[derive(Debug, Clone, Copy)]
pub struct RouterSettings {
    /// Target records per batch.
    pub batch_size: usize,
    /// Number of key groups.
    pub max_parallelism: u32,
    /// Where round robin starts (the upstream subtask index, to spread load).
    pub first_channel: usize,
}

/// A node of the logical graph.
#[derive(Clone)]
pub struct NodeSpec {
    /// Unique id in the graph.
    pub id: OperatorId,
    /// Name shown in plans, logs and errors.
    pub name: String,
    /// Number of parallel subtasks.
    pub parallelism: u32,
    /// Role of the node.
    pub kind: NodeKind,
    /// Whether the node may be chained to its predecessor.
    pub chainable: bool,
    /// Builds the node's typed parts.
    pub factory: Arc<dyn NodeFactory>,
}

impl std::fmt::Debug for NodeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSpec")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("parallelism", &self.parallelism)
            .field("kind", &self.kind)
            .finish()
    }
}

/// An edge of the logical graph.
#[derive(Clone)]
pub struct EdgeSpec {
    /// Upstream node.
    pub from: OperatorId,
    /// Downstream node.
    pub to: OperatorId,
    /// The side output of `from` this edge carries (its tag id), or `None` for the main
    /// output.
    pub side_output: Option<u64>,
    /// Which input of `to` this edge feeds (0, or 1 for the second input of a two-input
    /// operator).
    pub input: usize,
    /// Builds the edge's typed parts.
    pub factory: Arc<dyn EdgeFactory>,
}

impl std::fmt::Debug for EdgeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeSpec")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("side_output", &self.side_output)
            .field("input", &self.input)
            .field("partitioning", &self.factory.partitioning())
            .finish()
    }
}

/// A whole job: nodes and edges.
#[derive(Debug, Clone, Default)]
pub struct JobGraph {
    /// Name of the job.
    pub name: String,
    /// Nodes, in the order they were added (upstream before downstream).
    pub nodes: Vec<NodeSpec>,
    /// Edges.
    pub edges: Vec<EdgeSpec>,
}

impl JobGraph {
    /// The node with `id`.
    pub fn node(&self, id: OperatorId) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Edges leaving `id`, in insertion order (main and side outputs).
    pub fn outputs(&self, id: OperatorId) -> impl Iterator<Item = &EdgeSpec> + '_ {
        self.edges.iter().filter(move |e| e.from == id)
    }

    /// Edges leaving `id`'s main output, in insertion order.
    pub fn main_outputs(&self, id: OperatorId) -> impl Iterator<Item = &EdgeSpec> + '_ {
        self.outputs(id).filter(|e| e.side_output.is_none())
    }

    /// Edges entering `id`, in insertion order.
    pub fn inputs(&self, id: OperatorId) -> impl Iterator<Item = &EdgeSpec> + '_ {
        self.edges.iter().filter(move |e| e.to == id)
    }
}
