//! [`GraphBuilder`]: collects the nodes and edges the fluent API creates, then produces a
//! [`JobGraph`] once parallelisms are final.
//!
//! Edges without an explicit partitioning become forward edges when both ends end up with
//! the same parallelism and rebalance edges otherwise (Flink's rule), decided at
//! [`GraphBuilder::build`] because `set_parallelism` may change a node after its edges exist.

use std::sync::Arc;

use sluice_core::{Data, OperatorId};
use sluice_runtime::factories::RecordsEdge;
use sluice_runtime::graph::{EdgeFactory, EdgeSpec, JobGraph, NodeFactory, NodeKind, NodeSpec};
use sluice_runtime::partition::PartitionStrategy;

type EdgeMaker = Arc<dyn Fn(bool) -> Arc<dyn EdgeFactory> + Send + Sync>;

pub(crate) struct PendingEdge {
    from: OperatorId,
    to: OperatorId,
    port: EdgePort,
    make: EdgeMaker,
}

/// Which output of the upstream node an edge leaves from, and which input of the downstream
/// node it enters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EdgePort {
    /// The side-output tag id, or `None` for the main output.
    pub(crate) side_output: Option<u64>,
    /// The input of the downstream node (0, or 1 for a second input).
    pub(crate) input: usize,
}

/// The job under construction.
#[derive(Default)]
pub(crate) struct GraphBuilder {
    pub(crate) nodes: Vec<NodeSpec>,
    edges: Vec<PendingEdge>,
    /// (follower, leader): the follower takes the leader's final parallelism, so that an
    /// operator the API inserted (a pre-aggregation) stays chained to its predecessor.
    follows: Vec<(OperatorId, OperatorId)>,
}

impl GraphBuilder {
    pub(crate) fn add_node(
        &mut self,
        name: String,
        parallelism: u32,
        kind: NodeKind,
        factory: Arc<dyn NodeFactory>,
    ) -> OperatorId {
        let id = OperatorId(self.nodes.len() as u32);
        self.nodes.push(NodeSpec {
            id,
            name,
            parallelism,
            kind,
            chainable: true,
            factory,
        });
        id
    }

    pub(crate) fn node_mut(&mut self, id: OperatorId) -> Option<&mut NodeSpec> {
        self.nodes.get_mut(id.0 as usize)
    }

    /// Makes `follower` run with `leader`'s parallelism, whatever it ends up being.
    pub(crate) fn follow_parallelism(&mut self, follower: OperatorId, leader: OperatorId) {
        self.follows.push((follower, leader));
    }

    pub(crate) fn parallelism(&self, id: OperatorId) -> u32 {
        self.nodes.get(id.0 as usize).map_or(1, |n| n.parallelism)
    }

    /// Connects `port` of `from` to `to`; `strategy` `None` means "forward if possible,
    /// else rebalance".
    pub(crate) fn add_edge<T: Data>(
        &mut self,
        from: OperatorId,
        to: OperatorId,
        strategy: Option<PartitionStrategy<T>>,
        port: EdgePort,
    ) {
        let make: EdgeMaker = match strategy {
            Some(s) => {
                let edge: Arc<dyn EdgeFactory> = Arc::new(RecordsEdge::new(s));
                Arc::new(move |_| Arc::clone(&edge))
            }
            None => Arc::new(|same_parallelism| {
                let s = if same_parallelism {
                    PartitionStrategy::<T>::Forward
                } else {
                    PartitionStrategy::<T>::Rebalance
                };
                Arc::new(RecordsEdge::new(s))
            }),
        };
        self.edges.push(PendingEdge {
            from,
            to,
            port,
            make,
        });
    }

    pub(crate) fn build(&mut self, name: &str) -> JobGraph {
        for &(follower, leader) in &self.follows {
            let p = self.parallelism(leader);
            if let Some(node) = self.nodes.get_mut(follower.0 as usize) {
                node.parallelism = p;
            }
        }
        let edges = self
            .edges
            .iter()
            .map(|e| EdgeSpec {
                from: e.from,
                to: e.to,
                side_output: e.port.side_output,
                input: e.port.input,
                factory: (e.make)(self.parallelism(e.from) == self.parallelism(e.to)),
            })
            .collect();
        JobGraph {
            name: name.to_string(),
            nodes: self.nodes.clone(),
            edges,
        }
    }
}
