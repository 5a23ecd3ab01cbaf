//! The [`Operator`] trait: the unit of user and built-in logic the runtime calls.
//!
//! An operator consumes batches and control events of one input and emits batches through
//! a [`Collector`]. Operators of a chain run in the same thread, one after the other, on
//! the same batch ([`chain`]). The runtime, not the operator, handles channels, partitioning,
//! barriers and watermark alignment across inputs.

pub mod chain;
pub mod side_output;
pub mod two_input;

use std::sync::Arc;

use sluice_core::{
    Batch, CheckpointId, Clock, KeyGroupRange, OperatorId, Records, StreamEvent, Watermark,
    WatermarkStatus,
};

use crate::checkpoint::{OperatorSnapshot, RestoredState, SnapshotCollector};
use crate::config::RuntimeMode;
use crate::error::{Result, TaskLocation};
use crate::metrics::{Counter, MetricRegistry};
use chain::EventSink;
use side_output::{OutputTag, SideOutputs};

/// What an operator instance knows about where it runs.
#[derive(Debug, Clone)]
pub struct OperatorContext {
    /// Operator name, subtask index and parallelism.
    pub location: TaskLocation,
    /// Number of key groups of the job.
    pub max_parallelism: u32,
    /// The key groups this subtask owns (meaningful for keyed operators).
    pub key_group_range: KeyGroupRange,
    /// Streaming or batch results.
    pub runtime_mode: RuntimeMode,
    /// Target records per emitted batch.
    pub batch_size: usize,
    /// The processing-time clock.
    pub clock: Arc<dyn Clock>,
    /// Where the operator registers its counters.
    pub metrics: Arc<MetricRegistry>,
    /// The operator's node in the job graph (names the operator in checkpoints).
    pub operator_id: OperatorId,
    /// What to restore from when the job (re)starts from a checkpoint.
    pub restored: Option<Arc<RestoredState>>,
    /// Where the chain link puts the operator's snapshots when a barrier passes; `None`
    /// when the job takes no checkpoints.
    pub snapshots: Option<SnapshotCollector>,
}

impl OperatorContext {
    /// The counter `name` of this operator subtask.
    pub fn counter(&self, name: &'static str) -> Counter {
        self.metrics.counter(self.operator_id, &self.location, name)
    }
}

/// Where an operator sends its output: batches and watermarks, in order, and records of
/// side outputs.
pub struct Collector<'a, B> {
    sink: &'a mut dyn EventSink<B>,
    side: Option<&'a mut SideOutputs>,
}

impl<'a, B> Collector<'a, B> {
    /// A collector writing into `sink`, without side outputs.
    pub fn new(sink: &'a mut dyn EventSink<B>) -> Self {
        Collector { sink, side: None }
    }

    /// A collector writing into `sink` and `side`.
    pub fn with_side_outputs(sink: &'a mut dyn EventSink<B>, side: &'a mut SideOutputs) -> Self {
        Collector {
            sink,
            side: Some(side),
        }
    }

    /// The buffer of `tag`'s side output, or `None` when nothing consumes that side
    /// output. Records pushed there go downstream when the operator call returns.
    pub fn side_output<T: Send + 'static>(
        &mut self,
        tag: &OutputTag<T>,
    ) -> Option<&mut Records<T>> {
        self.side.as_deref_mut().and_then(|s| s.buffer(tag))
    }

    /// All side outputs, for code that hands them on (process function contexts).
    pub fn side_outputs(&mut self) -> Option<&mut SideOutputs> {
        self.side.as_deref_mut()
    }
}

impl<B: Batch> Collector<'_, B> {
    /// Emits a batch; empty batches are skipped.
    ///
    /// # Errors
    /// Whatever the downstream operators or channels report; return it unchanged.
    pub fn collect(&mut self, batch: B) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.sink.on_event(StreamEvent::Data(batch))
    }

    /// Emits a watermark.
    ///
    /// # Errors
    /// Whatever the downstream operators or channels report; return it unchanged.
    pub fn emit_watermark(&mut self, watermark: Watermark) -> Result<()> {
        if let Some(side) = self.side.as_deref_mut() {
            side.on_control(&StreamEvent::Watermark(watermark))?;
        }
        self.sink.on_event(StreamEvent::Watermark(watermark))
    }

    /// Emits a change of watermark status (idle or active).
    ///
    /// # Errors
    /// Whatever the downstream operators or channels report; return it unchanged.
    pub fn emit_watermark_status(&mut self, status: WatermarkStatus) -> Result<()> {
        if let Some(side) = self.side.as_deref_mut() {
            side.on_control(&StreamEvent::WatermarkStatus(status))?;
        }
        self.sink.on_event(StreamEvent::WatermarkStatus(status))
    }
}

/// Logic with one input, called by the runtime in stream order.
///
/// Errors an operator raises itself should be [`crate::Error::User`]; the runtime attributes
/// them to the operator and subtask. Errors returned by the [`Collector`] must be passed on
/// unchanged. A panic is caught and reported like an error.
pub trait Operator: Send + 'static {
    /// The batch type consumed.
    type In: Batch;
    /// The batch type emitted.
    type Out: Batch;

    /// Called once before the first event. Default: nothing.
    ///
    /// # Errors
    /// An error fails the job before any record is processed.
    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Processes one batch.
    ///
    /// # Errors
    /// An error fails the job.
    fn on_data(&mut self, batch: Self::In, out: &mut Collector<'_, Self::Out>) -> Result<()>;

    /// Event time reached `watermark` on every input. Default: forward it. An override
    /// must forward it too (after emitting what the watermark completes), or downstream
    /// event time stalls.
    ///
    /// # Errors
    /// An error fails the job.
    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, Self::Out>,
    ) -> Result<()> {
        out.emit_watermark(watermark)
    }

    /// Every input of the operator went idle ([`WatermarkStatus::Idle`]) or one became
    /// active again. Default: forward it.
    ///
    /// # Errors
    /// An error fails the job.
    fn on_watermark_status(
        &mut self,
        status: WatermarkStatus,
        out: &mut Collector<'_, Self::Out>,
    ) -> Result<()> {
        out.emit_watermark_status(status)
    }

    /// Processing time reached `now_ms` (ms since the Unix epoch, from the job's clock):
    /// fire processing-time timers that are due. Called between events and while the task
    /// waits for input, at least every few milliseconds. Default: nothing.
    ///
    /// # Errors
    /// An error fails the job.
    fn on_processing_time(
        &mut self,
        now_ms: i64,
        out: &mut Collector<'_, Self::Out>,
    ) -> Result<()> {
        let _ = (now_ms, out);
        Ok(())
    }

    /// A checkpoint barrier reached this operator: return its state as of every record
    /// before the barrier (and none after). Called between events; the barrier goes on
    /// downstream afterwards. Default: no state.
    ///
    /// # Errors
    /// An error fails the job (the checkpoint does not complete).
    fn snapshot_state(&mut self, checkpoint: CheckpointId) -> Result<OperatorSnapshot> {
        let _ = checkpoint;
        Ok(OperatorSnapshot::default())
    }

    /// Checkpoint `checkpoint` completed: every operator's snapshot of it is stored.
    /// Two-phase-commit sinks commit here. Default: nothing.
    ///
    /// # Errors
    /// An error fails the job.
    fn notify_checkpoint_complete(
        &mut self,
        checkpoint: CheckpointId,
        out: &mut Collector<'_, Self::Out>,
    ) -> Result<()> {
        let _ = (checkpoint, out);
        Ok(())
    }

    /// Every input ended. Emit final results here. Default: nothing. The runtime sends
    /// end-of-stream downstream afterwards.
    ///
    /// # Errors
    /// An error fails the job.
    fn on_end_of_input(&mut self, out: &mut Collector<'_, Self::Out>) -> Result<()> {
        let _ = out;
        Ok(())
    }
}
