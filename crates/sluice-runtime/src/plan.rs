//! The physical plan: which logical nodes fuse into chains, and how chains connect.
//!
//! A forward edge between nodes of equal parallelism is chained (the two operators run in
//! one task, handing batches over by function call) when the upstream node has no other
//! output, the downstream node no other input, and the downstream node allows chaining.
//! Every other edge becomes channels between tasks.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use sluice_core::OperatorId;

use crate::config::{JobConfig, RuntimeMode};
use crate::error::{Error, Result};
use crate::graph::{EdgeSpec, JobGraph, NodeKind};
use crate::partition::Partitioning;
use crate::source::Boundedness;

/// A chain of nodes run by one task per subtask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainPlan {
    /// The chained nodes, head first.
    pub nodes: Vec<OperatorId>,
    /// Parallelism shared by every node of the chain.
    pub parallelism: u32,
    /// Display name: the node names joined by ` -> `.
    pub name: String,
}

/// A validated job, split into chains.
#[derive(Debug, Clone)]
pub struct PhysicalPlan {
    /// Chains in topological order (upstream first).
    pub chains: Vec<ChainPlan>,
    /// Indexes into the graph's edges of the edges between chains (carried by channels).
    pub network_edges: Vec<usize>,
}

fn invalid(msg: String) -> Error {
    Error::InvalidJob(msg)
}

/// Checks `graph` against `config` and fuses it into chains.
///
/// # Errors
/// [`Error::InvalidJob`] naming the node and what to change: a zero parallelism, a source
/// run above its maximum parallelism, a forward edge between different parallelisms, a
/// node without input, a cycle, or an unbounded source in batch mode.
pub fn plan(graph: &JobGraph, config: &JobConfig) -> Result<PhysicalPlan> {
    validate(graph, config)?;
    let order = topological_order(graph)?;
    let chained_edges: HashSet<usize> = graph
        .edges
        .iter()
        .enumerate()
        .filter(|(_, e)| is_chainable(graph, e))
        .map(|(i, _)| i)
        .collect();
    let mut chain_of: HashMap<OperatorId, usize> = HashMap::new();
    let mut chains: Vec<ChainPlan> = Vec::new();
    for id in order {
        let chained_from = graph
            .edges
            .iter()
            .enumerate()
            .find(|(i, e)| e.to == id && chained_edges.contains(i))
            .map(|(_, e)| e.from);
        let node = graph
            .node(id)
            .ok_or_else(|| Error::Internal(format!("edge to unknown node {id}")))?;
        match chained_from.and_then(|from| chain_of.get(&from).copied()) {
            Some(c) => {
                chains[c].nodes.push(id);
                let _ = write!(chains[c].name, " -> {}", node.name);
                chain_of.insert(id, c);
            }
            None => {
                chain_of.insert(id, chains.len());
                chains.push(ChainPlan {
                    nodes: vec![id],
                    parallelism: node.parallelism,
                    name: node.name.clone(),
                });
            }
        }
    }
    let network_edges = (0..graph.edges.len())
        .filter(|i| !chained_edges.contains(i))
        .collect();
    Ok(PhysicalPlan {
        chains,
        network_edges,
    })
}

/// A side-output edge is never chained: the side output is not the stream the chain
/// hands on by function call.
fn is_chainable(graph: &JobGraph, edge: &EdgeSpec) -> bool {
    let (Some(up), Some(down)) = (graph.node(edge.from), graph.node(edge.to)) else {
        return false;
    };
    edge.side_output.is_none()
        && edge.factory.partitioning() == Partitioning::Forward
        && up.parallelism == down.parallelism
        && down.chainable
        && graph.main_outputs(edge.from).count() == 1
        && graph.inputs(edge.to).count() == 1
}

fn validate(graph: &JobGraph, config: &JobConfig) -> Result<()> {
    if config.runtime_mode == RuntimeMode::Batch && config.checkpointing.is_some() {
        return Err(invalid(
            "checkpointing is for streaming jobs; a batch-mode job reruns from its bounded inputs instead: disable one of them".into(),
        ));
    }
    if let Some(c) = &config.checkpointing {
        if c.unaligned && c.mode != crate::checkpoint::CheckpointingMode::ExactlyOnce {
            return Err(invalid(
                "unaligned checkpoints are an exactly-once mechanism; use them with CheckpointingMode::ExactlyOnce (at-least-once never aligns anyway)".into(),
            ));
        }
    }
    if config.batch_size == 0 || config.channel_capacity == 0 {
        return Err(invalid(format!(
            "batch size ({}) and channel capacity ({}) must be at least 1",
            config.batch_size, config.channel_capacity
        )));
    }
    if graph.nodes.is_empty() {
        return Err(invalid(
            "the job has no operators; add a source and a sink".into(),
        ));
    }
    for node in &graph.nodes {
        if node.parallelism == 0 {
            return Err(invalid(format!(
                "operator `{}` has parallelism 0; use 1 or more",
                node.name
            )));
        }
        if node.parallelism > config.max_parallelism {
            return Err(invalid(format!(
                "operator `{}` has parallelism {} above the maximum parallelism {}; lower it or raise the maximum parallelism",
                node.name, node.parallelism, config.max_parallelism
            )));
        }
        let inputs = graph.inputs(node.id).count();
        match node.kind {
            NodeKind::Source {
                boundedness,
                max_parallelism,
            } => {
                if let Some(max) = max_parallelism {
                    if node.parallelism > max {
                        return Err(invalid(format!(
                            "source `{}` supports parallelism up to {max}, not {}; set its parallelism to {max}",
                            node.name, node.parallelism
                        )));
                    }
                }
                if boundedness == Boundedness::Unbounded
                    && config.runtime_mode == RuntimeMode::Batch
                {
                    return Err(invalid(format!(
                        "source `{}` is unbounded, but the job runs in batch mode; use streaming mode or a bounded source",
                        node.name
                    )));
                }
            }
            NodeKind::Operator | NodeKind::Sink if inputs == 0 => {
                return Err(invalid(format!("operator `{}` has no input", node.name)));
            }
            _ => {}
        }
    }
    for edge in &graph.edges {
        let (Some(up), Some(down)) = (graph.node(edge.from), graph.node(edge.to)) else {
            return Err(Error::Internal("edge between unknown nodes".into()));
        };
        if edge.factory.partitioning() == Partitioning::Forward
            && up.parallelism != down.parallelism
        {
            return Err(invalid(format!(
                "forward edge from `{}` (parallelism {}) to `{}` (parallelism {}) needs equal parallelism; use rebalance or make them equal",
                up.name, up.parallelism, down.name, down.parallelism
            )));
        }
    }
    Ok(())
}

fn topological_order(graph: &JobGraph) -> Result<Vec<OperatorId>> {
    let mut indegree: HashMap<OperatorId, usize> = graph.nodes.iter().map(|n| (n.id, 0)).collect();
    for e in &graph.edges {
        *indegree.entry(e.to).or_default() += 1;
    }
    let mut ready: Vec<OperatorId> = graph
        .nodes
        .iter()
        .filter(|n| indegree.get(&n.id) == Some(&0))
        .map(|n| n.id)
        .collect();
    ready.reverse();
    let mut order = Vec::with_capacity(graph.nodes.len());
    while let Some(id) = ready.pop() {
        order.push(id);
        for e in graph.outputs(id) {
            if let Some(d) = indegree.get_mut(&e.to) {
                *d -= 1;
                if *d == 0 {
                    ready.push(e.to);
                }
            }
        }
    }
    if order.len() != graph.nodes.len() {
        return Err(invalid("the job graph has a cycle".into()));
    }
    Ok(order)
}

impl PhysicalPlan {
    /// A human-readable description: one line per chain with its parallelism, then one
    /// line per channel edge with its partitioning.
    pub fn describe(&self, graph: &JobGraph) -> String {
        let mut out = String::new();
        for (i, chain) in self.chains.iter().enumerate() {
            let _ = writeln!(
                out,
                "task {i}: {} [parallelism {}]",
                chain.name, chain.parallelism
            );
        }
        for &e in &self.network_edges {
            let edge = &graph.edges[e];
            let name = |id| graph.node(id).map(|n| n.name.as_str()).unwrap_or("?");
            let _ = writeln!(
                out,
                "edge: {} -> {} [{}]",
                name(edge.from),
                name(edge.to),
                edge.factory.partitioning()
            );
        }
        out
    }
}
