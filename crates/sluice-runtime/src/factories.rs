//! Typed implementations of [`NodeFactory`] and [`EdgeFactory`] for the typed API's
//! [`Records`] batches: source nodes, single-input operator nodes and partitioned edges.

use std::any::type_name;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sluice_core::{Batch, Records, TwoInputBatch};

use crate::channel::remote::{remote_receiver, remote_writer, RemoteInbox, RemoteLink};
use crate::channel::{
    local_channel, ChannelReceiver, ChannelWriter, GateInput, GateSignal, InputGate, MappedInput,
};
use crate::checkpoint::ChannelStateCodec;
use crate::control::JobControl;
use crate::error::{Error, Result};
use crate::graph::{
    ChannelSettings, EdgeFactory, ErasedReceiver, ErasedSink, ErasedWriter, NodeFactory,
    RouterSettings, TaskInputs,
};
use crate::operator::chain::{ChainLink, EventSink, FanOut, Terminal};
use crate::operator::side_output::{SideOutput, SideOutputs, TypedSideOutput};
use crate::operator::two_input::{TwoInput, TwoInputOperator};
use crate::operator::{Operator, OperatorContext};
use crate::operators::WatermarkSpec;
use crate::partition::{PartitionStrategy, Partitioning, RouterOutput};
use crate::source::Source;
use crate::task::{OneInputTask, SourceTask, Task};

fn downcast<T: 'static>(erased: Box<dyn std::any::Any + Send>, what: &str) -> Result<T> {
    erased
        .downcast::<T>()
        .map(|b| *b)
        .map_err(|_| Error::Internal(format!("{what} is not a {}", type_name::<T>())))
}

/// Recovers a typed event sink.
pub fn downcast_sink<B: 'static>(erased: ErasedSink) -> Result<Box<dyn EventSink<B>>> {
    downcast::<Box<dyn EventSink<B>>>(erased, "task output")
}

/// Erases a typed event sink.
pub fn erase_sink<B: 'static>(sink: Box<dyn EventSink<B>>) -> ErasedSink {
    Box::new(sink)
}

/// A task output over `routers` for batches of type `B`.
pub fn build_output<B: Batch + Clone>(routers: Vec<ErasedSink>) -> Result<ErasedSink> {
    let mut sinks = routers
        .into_iter()
        .map(downcast_sink::<B>)
        .collect::<Result<Vec<_>>>()?;
    let output: Box<dyn EventSink<B>> = match sinks.len() {
        0 => Box::new(Terminal),
        1 => sinks
            .pop()
            .ok_or_else(|| Error::Internal("router vanished".into()))?,
        _ => Box::new(FanOut::new(sinks)),
    };
    Ok(erase_sink(output))
}

/// An edge carrying `Records<T>`, partitioned by a [`PartitionStrategy`].
pub struct RecordsEdge<T> {
    strategy: PartitionStrategy<T>,
}

impl<T> RecordsEdge<T> {
    /// An edge partitioned by `strategy`.
    pub fn new(strategy: PartitionStrategy<T>) -> Self {
        RecordsEdge { strategy }
    }
}

impl<T: Clone + Send + Serialize + DeserializeOwned + 'static> EdgeFactory for RecordsEdge<T> {
    fn partitioning(&self) -> Partitioning {
        self.strategy.partitioning()
    }

    fn create_remote_writer(
        &self,
        link: Arc<dyn RemoteLink>,
        control: &Arc<JobControl>,
    ) -> Result<ErasedWriter> {
        Ok(remote_writer::<Records<T>>(
            link,
            ChannelStateCodec::serde(),
            control,
        ))
    }

    fn create_remote_receiver(
        &self,
        settings: ChannelSettings,
        gate: Arc<GateSignal>,
        control: &Arc<JobControl>,
        on_take: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<(Box<dyn RemoteInbox>, ErasedReceiver)> {
        Ok(remote_receiver::<Records<T>>(
            settings,
            gate,
            control,
            ChannelStateCodec::serde(),
            on_take,
        ))
    }

    fn create_channel(
        &self,
        settings: ChannelSettings,
        gate: Arc<GateSignal>,
        control: &Arc<JobControl>,
    ) -> (ErasedWriter, ErasedReceiver) {
        let (w, r) =
            local_channel::<Records<T>>(settings.capacity, settings.batch_size, gate, control);
        let writer: Box<dyn ChannelWriter<Records<T>>> = Box::new(w);
        (Box::new(writer), Box::new(r))
    }

    fn build_side_output(&self, id: u64, routers: Vec<ErasedSink>) -> Result<Box<dyn SideOutput>> {
        let sink = downcast_sink::<Records<T>>(build_output::<Records<T>>(routers)?)?;
        Ok(Box::new(TypedSideOutput::new(id, sink)))
    }

    fn build_router(
        &self,
        writers: Vec<ErasedWriter>,
        settings: RouterSettings,
    ) -> Result<ErasedSink> {
        let writers = writers
            .into_iter()
            .map(|w| downcast::<Box<dyn ChannelWriter<Records<T>>>>(w, "channel writer"))
            .collect::<Result<Vec<_>>>()?;
        let router = RouterOutput::new(
            writers,
            self.strategy.clone(),
            settings.batch_size,
            settings.max_parallelism,
            settings.first_channel,
        );
        Ok(erase_sink::<Records<T>>(Box::new(router)))
    }
}

/// A source node producing `Records<T>`.
pub struct SourceNode<T> {
    source: Arc<dyn Source<T>>,
    watermarks: Option<WatermarkSpec<T>>,
}

impl<T> SourceNode<T> {
    /// A node reading `source`.
    pub fn new(source: Arc<dyn Source<T>>) -> Self {
        SourceNode {
            source,
            watermarks: None,
        }
    }

    /// A node reading `source` with timestamps and per-split watermarks by `spec`.
    pub fn with_watermarks(source: Arc<dyn Source<T>>, spec: WatermarkSpec<T>) -> Self {
        SourceNode {
            source,
            watermarks: Some(spec),
        }
    }
}

impl<T: Clone + Send + 'static> NodeFactory for SourceNode<T> {
    fn build_output(&self, routers: Vec<ErasedSink>) -> Result<ErasedSink> {
        build_output::<Records<T>>(routers)
    }

    fn build_link(
        &self,
        ctx: &OperatorContext,
        _downstream: ErasedSink,
        _side: SideOutputs,
    ) -> Result<ErasedSink> {
        Err(Error::Internal(format!(
            "source `{}` cannot be chained behind another operator",
            ctx.location.operator
        )))
    }

    fn build_task(
        &self,
        ctx: OperatorContext,
        downstream: ErasedSink,
        _side: SideOutputs,
        inputs: TaskInputs,
        control: Arc<JobControl>,
    ) -> Result<Box<dyn Task>> {
        let downstream = downcast_sink::<Records<T>>(downstream)?;
        Ok(Box::new(
            SourceTask::new(Arc::clone(&self.source), ctx, downstream, control)
                .with_watermarks(self.watermarks.clone())
                .with_checkpointing(inputs.checkpointing),
        ))
    }
}

/// The chain link of `operator` (or of the error making it) in front of `downstream`.
fn operator_link<Op: Operator>(
    operator: Result<Op>,
    ctx: &OperatorContext,
    downstream: ErasedSink,
    side: SideOutputs,
) -> Result<ChainLink<Op>> {
    let downstream = downcast_sink::<Op::Out>(downstream)?;
    let operator = operator.map_err(|e| e.at(|| ctx.location.clone()))?;
    Ok(ChainLink::new(operator, ctx.clone(), downstream).with_side_outputs(side))
}

/// The task reading `gate` into the chain headed by `head`.
fn input_task<B: Batch + Serialize + DeserializeOwned>(
    ctx: &OperatorContext,
    gate: InputGate<B>,
    head: Box<dyn EventSink<B>>,
    control: Arc<JobControl>,
    checkpointing: Option<crate::checkpoint::TaskCheckpointing>,
) -> Box<dyn Task> {
    let restored_channels = ctx
        .restored
        .as_ref()
        .map(|r| r.channels.clone())
        .unwrap_or_default();
    Box::new(
        OneInputTask::new(
            ctx.location.clone(),
            gate,
            head,
            control,
            Arc::clone(&ctx.clock),
        )
        .with_checkpointing(
            checkpointing,
            ChannelStateCodec::serde(),
            (ctx.operator_id, ctx.location.subtask),
        )
        .with_restored_channels(restored_channels),
    )
}

/// A node running a single-input [`Operator`] made by `make` for each subtask.
pub struct OperatorNode<Op, F> {
    make: F,
    _op: PhantomData<fn() -> Op>,
}

impl<Op, F> OperatorNode<Op, F> {
    /// A node whose subtasks run `make(ctx)`.
    pub fn new(make: F) -> Self {
        OperatorNode {
            make,
            _op: PhantomData,
        }
    }
}

impl<Op, F> OperatorNode<Op, F>
where
    Op: Operator,
    F: Fn(&OperatorContext) -> Result<Op> + Send + Sync,
{
    fn link(
        &self,
        ctx: &OperatorContext,
        downstream: ErasedSink,
        side: SideOutputs,
    ) -> Result<ChainLink<Op>> {
        operator_link((self.make)(ctx), ctx, downstream, side)
    }
}

impl<Op, F> NodeFactory for OperatorNode<Op, F>
where
    Op: Operator,
    Op::In: Serialize + DeserializeOwned,
    Op::Out: Clone,
    F: Fn(&OperatorContext) -> Result<Op> + Send + Sync,
{
    fn build_output(&self, routers: Vec<ErasedSink>) -> Result<ErasedSink> {
        build_output::<Op::Out>(routers)
    }

    fn build_link(
        &self,
        ctx: &OperatorContext,
        downstream: ErasedSink,
        side: SideOutputs,
    ) -> Result<ErasedSink> {
        let link: Box<dyn EventSink<Op::In>> = Box::new(self.link(ctx, downstream, side)?);
        Ok(erase_sink(link))
    }

    fn build_task(
        &self,
        ctx: OperatorContext,
        downstream: ErasedSink,
        side: SideOutputs,
        inputs: TaskInputs,
        control: Arc<JobControl>,
    ) -> Result<Box<dyn Task>> {
        let head = self.link(&ctx, downstream, side)?;
        let receivers = inputs
            .receivers
            .into_iter()
            .map(|(_, r)| downcast::<ChannelReceiver<Op::In>>(r, "channel receiver"))
            .collect::<Result<Vec<_>>>()?;
        let gate = InputGate::new(receivers, inputs.signal, Arc::clone(&control));
        Ok(input_task(
            &ctx,
            gate,
            Box::new(head),
            control,
            inputs.checkpointing,
        ))
    }
}

/// A node running a [`TwoInputOperator`] made by `make` for each subtask; edges with
/// `input == 0` feed its first input, `input == 1` its second.
pub struct TwoInputOperatorNode<Op, F> {
    make: F,
    _op: PhantomData<fn() -> Op>,
}

impl<Op, F> TwoInputOperatorNode<Op, F> {
    /// A node whose subtasks run `make(ctx)`.
    pub fn new(make: F) -> Self {
        TwoInputOperatorNode {
            make,
            _op: PhantomData,
        }
    }
}

impl<Op, F> NodeFactory for TwoInputOperatorNode<Op, F>
where
    Op: TwoInputOperator,
    TwoInputBatch<Op::In1, Op::In2>: Serialize + DeserializeOwned,
    Op::In1: Clone,
    Op::In2: Clone,
    Op::Out: Clone,
    F: Fn(&OperatorContext) -> Result<Op> + Send + Sync,
{
    fn build_output(&self, routers: Vec<ErasedSink>) -> Result<ErasedSink> {
        build_output::<Op::Out>(routers)
    }

    fn build_link(
        &self,
        ctx: &OperatorContext,
        _downstream: ErasedSink,
        _side: SideOutputs,
    ) -> Result<ErasedSink> {
        Err(Error::Internal(format!(
            "two-input operator `{}` cannot be chained behind another operator",
            ctx.location.operator
        )))
    }

    fn build_task(
        &self,
        ctx: OperatorContext,
        downstream: ErasedSink,
        side: SideOutputs,
        inputs: TaskInputs,
        control: Arc<JobControl>,
    ) -> Result<Box<dyn Task>> {
        type Both<Op> = TwoInputBatch<<Op as TwoInputOperator>::In1, <Op as TwoInputOperator>::In2>;
        let head = operator_link((self.make)(&ctx).map(TwoInput), &ctx, downstream, side)?;
        let mut gate_inputs: Vec<Box<dyn GateInput<Both<Op>>>> = Vec::new();
        for (input, receiver) in inputs.receivers {
            let gate_input: Box<dyn GateInput<Both<Op>>> = if input == 0 {
                let r = downcast::<ChannelReceiver<Op::In1>>(receiver, "first input receiver")?;
                Box::new(MappedInput::new(r, TwoInputBatch::First))
            } else {
                let r = downcast::<ChannelReceiver<Op::In2>>(receiver, "second input receiver")?;
                Box::new(MappedInput::new(r, TwoInputBatch::Second))
            };
            gate_inputs.push(gate_input);
        }
        let gate = InputGate::from_inputs(gate_inputs, inputs.signal, Arc::clone(&control));
        Ok(input_task(
            &ctx,
            gate,
            Box::new(head),
            control,
            inputs.checkpointing,
        ))
    }
}
