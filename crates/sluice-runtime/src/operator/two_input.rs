//! [`TwoInputOperator`]: logic with two inputs of different types (`connect`, joins).
//!
//! The task of a two-input operator reads the channels of both inputs through one input
//! gate of [`TwoInputBatch`]es, so the runtime treats it like any other task: its
//! watermark is the minimum over the channels of both inputs, and barriers and end of
//! stream are handled over all of them. [`TwoInput`] adapts the operator to [`Operator`].

use sluice_core::{Batch, CheckpointId, TwoInputBatch, Watermark};

use super::{Collector, Operator, OperatorContext};
use crate::checkpoint::OperatorSnapshot;
use crate::error::Result;

/// Logic with two inputs, called by the runtime in stream order.
pub trait TwoInputOperator: Send + 'static {
    /// The batch type of the first input.
    type In1: Batch;
    /// The batch type of the second input.
    type In2: Batch;
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

    /// Processes one batch of the first input.
    ///
    /// # Errors
    /// An error fails the job.
    fn on_data1(&mut self, batch: Self::In1, out: &mut Collector<'_, Self::Out>) -> Result<()>;

    /// Processes one batch of the second input.
    ///
    /// # Errors
    /// An error fails the job.
    fn on_data2(&mut self, batch: Self::In2, out: &mut Collector<'_, Self::Out>) -> Result<()>;

    /// Event time reached `watermark` on both inputs. Default: forward it.
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

    /// Processing time reached `now_ms`. Default: nothing.
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

    /// See [`Operator::snapshot_state`]. Default: no state.
    ///
    /// # Errors
    /// An error fails the job.
    fn snapshot_state(&mut self, checkpoint: CheckpointId) -> Result<OperatorSnapshot> {
        let _ = checkpoint;
        Ok(OperatorSnapshot::default())
    }

    /// See [`Operator::notify_checkpoint_complete`]. Default: nothing.
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

    /// Both inputs ended. Default: nothing.
    ///
    /// # Errors
    /// An error fails the job.
    fn on_end_of_input(&mut self, out: &mut Collector<'_, Self::Out>) -> Result<()> {
        let _ = out;
        Ok(())
    }
}

/// A [`TwoInputOperator`] seen as an [`Operator`] over [`TwoInputBatch`]es.
pub struct TwoInput<Op>(pub Op);

impl<Op: TwoInputOperator> Operator for TwoInput<Op> {
    type In = TwoInputBatch<Op::In1, Op::In2>;
    type Out = Op::Out;

    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        self.0.open(ctx)
    }

    fn on_data(&mut self, batch: Self::In, out: &mut Collector<'_, Self::Out>) -> Result<()> {
        match batch {
            TwoInputBatch::First(b) => self.0.on_data1(b, out),
            TwoInputBatch::Second(b) => self.0.on_data2(b, out),
        }
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, Self::Out>,
    ) -> Result<()> {
        self.0.on_watermark(watermark, out)
    }

    fn on_processing_time(
        &mut self,
        now_ms: i64,
        out: &mut Collector<'_, Self::Out>,
    ) -> Result<()> {
        self.0.on_processing_time(now_ms, out)
    }

    fn on_end_of_input(&mut self, out: &mut Collector<'_, Self::Out>) -> Result<()> {
        self.0.on_end_of_input(out)
    }

    fn snapshot_state(&mut self, checkpoint: CheckpointId) -> Result<OperatorSnapshot> {
        self.0.snapshot_state(checkpoint)
    }

    fn notify_checkpoint_complete(
        &mut self,
        checkpoint: CheckpointId,
        out: &mut Collector<'_, Self::Out>,
    ) -> Result<()> {
        self.0.notify_checkpoint_complete(checkpoint, out)
    }
}
