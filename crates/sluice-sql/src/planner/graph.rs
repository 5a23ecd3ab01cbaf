//! [`GraphBuilder`]: the job graph an SQL job becomes, built node by node.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use sluice_core::OperatorId;
use sluice_runtime::factories::{OperatorNode, RecordsEdge, SourceNode, TwoInputOperatorNode};
use sluice_runtime::graph::{EdgeSpec, JobGraph, NodeFactory, NodeKind, NodeSpec};
use sluice_runtime::partition::PartitionStrategy;
use sluice_runtime::source::Source;
use sluice_runtime::{Operator, OperatorContext, Result as RuntimeResult, TwoInputOperator};

use crate::batch::SqlBatch;
use crate::exchange::{SqlEdge, SqlPartitioning};

/// Nodes and edges of an SQL job.
#[derive(Default)]
pub struct GraphBuilder {
    nodes: Vec<NodeSpec>,
    edges: Vec<EdgeSpec>,
}

impl GraphBuilder {
    fn add(
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

    /// A source of typed records.
    pub fn source<T: Clone + Send + 'static>(
        &mut self,
        name: &str,
        parallelism: u32,
        source: Arc<dyn Source<T>>,
    ) -> OperatorId {
        let kind = NodeKind::Source {
            boundedness: source.boundedness(),
            max_parallelism: source.max_parallelism(),
        };
        self.add(
            name.to_string(),
            parallelism,
            kind,
            Arc::new(SourceNode::new(source)),
        )
    }

    /// An operator of SQL rows (or a sink when `kind` says so) made by `make` per subtask.
    pub fn operator<Op, F>(
        &mut self,
        name: &str,
        parallelism: u32,
        kind: NodeKind,
        make: F,
    ) -> OperatorId
    where
        Op: Operator<In = SqlBatch>,
        Op::Out: Clone,
        F: Fn(&OperatorContext) -> RuntimeResult<Op> + Send + Sync + 'static,
    {
        self.add(
            name.to_string(),
            parallelism,
            kind,
            Arc::new(OperatorNode::new(make)),
        )
    }

    /// A two-input operator of SQL rows (joins) made by `make` per subtask; connect its
    /// inputs with [`Self::connect_input`].
    pub fn two_input_operator<Op, F>(&mut self, name: &str, parallelism: u32, make: F) -> OperatorId
    where
        Op: TwoInputOperator<In1 = SqlBatch, In2 = SqlBatch, Out = SqlBatch>,
        F: Fn(&OperatorContext) -> RuntimeResult<Op> + Send + Sync + 'static,
    {
        self.add(
            name.to_string(),
            parallelism,
            NodeKind::Operator,
            Arc::new(TwoInputOperatorNode::new(make)),
        )
    }

    /// An edge of SQL rows into input `input` (0 or 1) of `to`.
    pub fn connect_input(
        &mut self,
        from: OperatorId,
        to: OperatorId,
        schema: SchemaRef,
        partitioning: SqlPartitioning,
        input: usize,
    ) {
        self.edges.push(EdgeSpec {
            from,
            to,
            side_output: None,
            input,
            factory: Arc::new(SqlEdge::new(schema, partitioning)),
        });
    }

    /// An operator reading typed records (the decoder behind a source).
    pub fn typed_operator<T, Op, F>(&mut self, name: &str, parallelism: u32, make: F) -> OperatorId
    where
        T: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static,
        Op: Operator<In = sluice_core::Records<T>, Out = SqlBatch>,
        F: Fn(&OperatorContext) -> RuntimeResult<Op> + Send + Sync + 'static,
    {
        self.add(
            name.to_string(),
            parallelism,
            NodeKind::Operator,
            Arc::new(OperatorNode::new(make)),
        )
    }

    /// A forward edge of typed records (source to decoder).
    pub fn typed_forward<
        T: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static,
    >(
        &mut self,
        from: OperatorId,
        to: OperatorId,
    ) {
        self.edges.push(EdgeSpec {
            from,
            to,
            side_output: None,
            input: 0,
            factory: Arc::new(RecordsEdge::<T>::new(PartitionStrategy::Forward)),
        });
    }

    /// An edge of SQL rows.
    pub fn connect(
        &mut self,
        from: OperatorId,
        to: OperatorId,
        schema: SchemaRef,
        partitioning: SqlPartitioning,
    ) {
        self.edges.push(EdgeSpec {
            from,
            to,
            side_output: None,
            input: 0,
            factory: Arc::new(SqlEdge::new(schema, partitioning)),
        });
    }

    /// The parallelism of node `id`.
    pub fn parallelism(&self, id: OperatorId) -> u32 {
        self.nodes.get(id.0 as usize).map_or(1, |n| n.parallelism)
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The finished graph.
    pub fn build(self, name: &str) -> JobGraph {
        JobGraph {
            name: name.to_string(),
            nodes: self.nodes,
            edges: self.edges,
        }
    }
}
