//! [`DataStream`]: a typed stream and the transformations and sinks defined on it.

use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;

use sluice_core::{Data, OperatorId, Records};
use sluice_runtime::factories::OperatorNode;
use sluice_runtime::graph::NodeKind;
use sluice_runtime::operators::{
    FilterOperator, FlatMapOperator, IdentityOperator, KeySelector, MapOperator, ProcessFunction,
    ProcessOperator, TimestampsAndWatermarksOperator,
};
use sluice_runtime::partition::PartitionStrategy;
use sluice_runtime::sink::{Sink, SinkOperator};
use sluice_runtime::{Operator, OperatorContext, OutputTag, Result};

use sluice_connectors::{CollectSink, DiscardSink, PrintSink, TextFileSink, TransactionalFileSink};

use crate::builder::EdgePort;
use crate::environment::StreamExecutionEnvironment;
use crate::keyed::KeyedStream;
use crate::time::WatermarkStrategy;

/// A stream of records of type `T`.
///
/// Transformations return new streams; the settings methods ([`DataStream::set_parallelism`],
/// [`DataStream::name`], ...) apply to the operator that produced this stream.
pub struct DataStream<T> {
    pub(crate) env: StreamExecutionEnvironment,
    pub(crate) id: OperatorId,
    pub(crate) partition: Option<PartitionStrategy<T>>,
    /// The side output of `id` this stream is, or `None` for its main output.
    pub(crate) side: Option<u64>,
    _records: PhantomData<fn() -> T>,
}

impl<T> Clone for DataStream<T> {
    fn clone(&self) -> Self {
        DataStream {
            env: self.env.clone(),
            id: self.id,
            partition: self.partition.clone(),
            side: self.side,
            _records: PhantomData,
        }
    }
}

impl<T> Debug for DataStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataStream")
            .field("operator", &self.id)
            .finish()
    }
}

impl<T: Data> DataStream<T> {
    pub(crate) fn new(env: StreamExecutionEnvironment, id: OperatorId) -> Self {
        DataStream {
            env,
            id,
            partition: None,
            side: None,
            _records: PhantomData,
        }
    }

    /// Adds an operator node fed by this stream.
    pub(crate) fn add_operator<U: Data, Op>(
        &self,
        name: &str,
        kind: NodeKind,
        make: impl Fn(&OperatorContext) -> Result<Op> + Send + Sync + 'static,
    ) -> DataStream<U>
    where
        Op: Operator<In = Records<T>, Out = Records<U>>,
    {
        let parallelism = self.env.default_parallelism();
        let factory = Arc::new(OperatorNode::new(make));
        let id = self.env.with_builder(|b| {
            let id = b.add_node(name.to_string(), parallelism, kind, factory);
            b.add_edge(self.id, id, self.partition.clone(), self.port());
            id
        });
        DataStream::new(self.env.clone(), id)
    }

    /// Where edges from this stream leave its operator.
    pub(crate) fn port(&self) -> EdgePort {
        EdgePort {
            side_output: self.side,
            input: 0,
        }
    }

    /// The records the operator that produced this stream sent to the side output `tag`
    /// (late records of a window, or what a process function emitted with
    /// `ProcessOutput::output`). Side records carry the timestamps they were given and
    /// the same watermarks as the main stream.
    pub fn side_output<U: Data>(&self, tag: &OutputTag<U>) -> DataStream<U> {
        let mut side = DataStream::new(self.env.clone(), self.id);
        side.side = Some(tag.id());
        side
    }

    fn update_node(&self, f: impl FnOnce(&mut sluice_runtime::graph::NodeSpec)) -> Self {
        if self.side.is_some() {
            // A side output is not an operator of its own: its settings are those of the
            // operator that produced it, which must not change behind the user's back.
            tracing::warn!(
                "settings on a side-output stream are ignored; set them on the operator that produced it"
            );
            return self.clone();
        }
        self.env.with_builder(|b| {
            if let Some(node) = b.node_mut(self.id) {
                f(node);
            }
        });
        self.clone()
    }

    /// Sets the parallelism of the operator that produced this stream.
    pub fn set_parallelism(&self, parallelism: u32) -> Self {
        self.update_node(|n| n.parallelism = parallelism)
    }

    /// Names the operator that produced this stream (shown in plans, logs and errors).
    pub fn name(&self, name: &str) -> Self {
        self.update_node(|n| n.name = name.to_string())
    }

    /// Runs the operator that produced this stream in its own task, not chained to its
    /// predecessor.
    pub fn start_new_chain(&self) -> Self {
        self.update_node(|n| n.chainable = false)
    }

    /// One output per record.
    pub fn map<U: Data>(&self, f: impl Fn(T) -> U + Send + Sync + 'static) -> DataStream<U> {
        let f = Arc::new(f);
        self.add_operator("Map", NodeKind::Operator, move |_| {
            Ok(MapOperator::new(Arc::clone(&f)))
        })
    }

    /// Zero or more outputs per record.
    pub fn flat_map<U: Data, I>(&self, f: impl Fn(T) -> I + Send + Sync + 'static) -> DataStream<U>
    where
        I: IntoIterator<Item = U> + 'static,
    {
        let f = Arc::new(f);
        self.add_operator("Flat Map", NodeKind::Operator, move |_| {
            Ok(FlatMapOperator::new(Arc::clone(&f)))
        })
    }

    /// The records for which `f` holds.
    pub fn filter(&self, f: impl Fn(&T) -> bool + Send + Sync + 'static) -> DataStream<T> {
        let f = Arc::new(f);
        self.add_operator("Filter", NodeKind::Operator, move |_| {
            Ok(FilterOperator::new(Arc::clone(&f)))
        })
    }

    /// Partitions the stream by the key `f` computes: every record of a key goes to the
    /// same subtask of the next operator, in order. See [`DataStream::key_by_ref`] to
    /// borrow the key from the record instead of computing (or cloning) it.
    pub fn key_by<K>(&self, f: impl Fn(&T) -> K + Send + Sync + 'static) -> KeyedStream<K, T>
    where
        K: Data + Hash + Eq,
    {
        self.keyed(KeySelector::Owned(Arc::new(f)))
    }

    /// Like [`DataStream::key_by`], with a key borrowed from the record
    /// (`.key_by_ref(|(word, _)| word)`): no copy of the key per record.
    pub fn key_by_ref<K>(
        &self,
        f: impl for<'a> Fn(&'a T) -> &'a K + Send + Sync + 'static,
    ) -> KeyedStream<K, T>
    where
        K: Data + Hash + Eq,
    {
        self.keyed(KeySelector::Borrowed(Arc::new(f)))
    }

    fn keyed<K: Data + Hash + Eq>(&self, key_of: KeySelector<T, K>) -> KeyedStream<K, T> {
        let k = key_of.clone();
        let mut stream = self.clone();
        stream.partition = Some(PartitionStrategy::Hash(Arc::new(move |v: &T| k.hash(v))));
        KeyedStream::new(stream, key_of)
    }

    fn with_partition(&self, strategy: PartitionStrategy<T>) -> Self {
        let mut stream = self.clone();
        stream.partition = Some(strategy);
        stream
    }

    /// Deals the records round robin over the next operator's subtasks.
    pub fn rebalance(&self) -> Self {
        self.with_partition(PartitionStrategy::Rebalance)
    }

    /// Sends every record to every subtask of the next operator.
    pub fn broadcast(&self) -> Self {
        self.with_partition(PartitionStrategy::Broadcast)
    }

    /// Sends subtask `i`'s records to subtask `i` of the next operator (equal parallelism).
    pub fn forward(&self) -> Self {
        self.with_partition(PartitionStrategy::Forward)
    }

    /// Gives every record an event timestamp and generates watermarks by `strategy`
    /// (Flink's `assignTimestampsAndWatermarks`). Timestamps travel with the records
    /// through later operators; watermarks are combined (minimum) across parallel inputs.
    pub fn assign_timestamps_and_watermarks(
        &self,
        strategy: WatermarkStrategy<T>,
    ) -> DataStream<T> {
        self.add_operator("Timestamps/Watermarks", NodeKind::Operator, move |_| {
            Ok(TimestampsAndWatermarksOperator::with_spec(strategy.spec()))
        })
    }

    /// This stream and `others` merged into one.
    pub fn union(&self, others: &[DataStream<T>]) -> DataStream<T> {
        let merged = self.add_operator("Union", NodeKind::Operator, |_| {
            Ok(IdentityOperator::<T>::default())
        });
        self.env.with_builder(|b| {
            for other in others {
                b.add_edge(other.id, merged.id, other.partition.clone(), other.port());
            }
        });
        merged
    }

    /// Runs `function` on every record (Flink's `ProcessFunction`): any number of
    /// results per record and side outputs (`out.output(&tag, value)`, read with
    /// [`DataStream::side_output`]). Each subtask gets its own clone of `function`.
    pub fn process<O, P>(&self, function: P) -> DataStream<O>
    where
        O: Data,
        P: ProcessFunction<T, O> + Clone + Sync,
    {
        self.add_operator("Process", NodeKind::Operator, move |ctx| {
            Ok(ProcessOperator::new(ctx, function.clone()))
        })
    }

    /// Sends the stream to `sink`.
    pub fn add_sink<S: Sink<T>>(&self, name: &str, sink: S) -> DataStreamSink {
        let sink = Arc::new(sink);
        let stream: DataStream<()> =
            self.add_operator(&format!("Sink: {name}"), NodeKind::Sink, move |ctx| {
                Ok(SinkOperator::new(sink.create_writer(ctx)?))
            });
        DataStreamSink { stream }
    }

    /// Prints every record (its `Debug` form) to standard output.
    pub fn print(&self) -> DataStreamSink
    where
        T: Debug,
    {
        self.add_sink("Print", PrintSink::new(|v: &T| format!("{v:?}")))
    }

    /// Writes every record (its `Display` form) as a line of the text file `path`
    /// (a directory of `part-N` files when the sink's parallelism is above one).
    pub fn write_as_text(&self, path: impl Into<PathBuf>) -> DataStreamSink
    where
        T: Display,
    {
        self.add_sink("Text File", TextFileSink::new(path, |v: &T| v.to_string()))
    }

    /// Writes each record's `Display` form as one line into part files under the directory
    /// `dir`, exactly once: with checkpoints, files are committed (renamed to
    /// `part-<subtask>-<n>`) when the checkpoint that covers them completes, and a restored
    /// job commits or discards what a failed one left (see `TransactionalFileSink`). Read
    /// the result with `connectors::committed_parts`.
    pub fn sink_to_files(&self, dir: impl Into<PathBuf>) -> DataStreamSink
    where
        T: Display,
    {
        self.add_sink(
            "Files",
            TransactionalFileSink::new(dir, |record: &T| record.to_string()),
        )
    }

    /// Gathers every record in memory; read them from the returned sink after `execute`.
    pub fn collect(&self) -> CollectSink<T> {
        let sink = CollectSink::new();
        self.add_sink("Collect", sink.clone());
        sink
    }

    /// Drops every record, counting them.
    pub fn discard(&self) -> DiscardSink {
        let sink = DiscardSink::new();
        self.add_sink("Discard", sink.clone());
        sink
    }
}

/// The end of a stream: a sink operator, whose settings can still be changed.
#[derive(Debug, Clone)]
pub struct DataStreamSink {
    stream: DataStream<()>,
}

impl DataStreamSink {
    /// Sets the sink's parallelism.
    pub fn set_parallelism(&self, parallelism: u32) -> Self {
        DataStreamSink {
            stream: self.stream.set_parallelism(parallelism),
        }
    }

    /// Names the sink.
    pub fn name(&self, name: &str) -> Self {
        DataStreamSink {
            stream: self.stream.name(name),
        }
    }
}
