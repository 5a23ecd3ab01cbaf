//! The sink contract: how records leave a job.
//!
//! A [`SinkWriter`] is created per subtask and receives batches in stream order; the
//! runtime wraps it into an operator ([`SinkOperator`]) at the end of a chain.

use std::marker::PhantomData;

use sluice_core::{CheckpointId, Records, Watermark};

use crate::checkpoint::OperatorSnapshot;
use crate::error::Result;
use crate::operator::{Collector, Operator, OperatorContext};

/// Writes one subtask's records to an external system.
pub trait SinkWriter<T>: Send + 'static {
    /// Called once before the first batch. Default: nothing.
    ///
    /// # Errors
    /// [`crate::Error::User`] when the destination cannot be opened.
    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Writes a batch.
    ///
    /// # Errors
    /// [`crate::Error::User`] when writing fails.
    fn write(&mut self, batch: Records<T>) -> Result<()>;

    /// Event time reached `watermark` on every input of this subtask. Default: nothing
    /// (sinks that bucket output by event time use it).
    ///
    /// # Errors
    /// [`crate::Error::User`] when acting on it fails.
    fn on_watermark(&mut self, watermark: Watermark) -> Result<()> {
        let _ = watermark;
        Ok(())
    }

    /// A checkpoint barrier arrived: make everything written so far durable but not yet
    /// visible (pre-commit) and return what is needed to commit or abort it later (a
    /// transaction id, file names), restored through `ctx.restored` after a failure.
    /// Default: nothing; such a sink is at-least-once (records written after the last
    /// completed checkpoint are written again after a restore).
    ///
    /// # Errors
    /// [`crate::Error::User`] when the pre-commit fails (the checkpoint does not complete).
    fn snapshot_state(&mut self, checkpoint: CheckpointId) -> Result<Option<Vec<u8>>> {
        let _ = checkpoint;
        Ok(None)
    }

    /// Checkpoint `checkpoint` completed: commit what was pre-committed up to it.
    /// Default: nothing.
    ///
    /// # Errors
    /// [`crate::Error::User`] when the commit fails.
    fn notify_checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<()> {
        let _ = checkpoint;
        Ok(())
    }

    /// The job was stopped (not at the end of its input) and takes checkpoints: keep what
    /// was written since the last checkpoint uncommitted, since a resumed run writes it
    /// again. Default: [`SinkWriter::finish`].
    ///
    /// # Errors
    /// [`crate::Error::User`] when flushing fails.
    fn stop(&mut self) -> Result<()> {
        self.finish()
    }

    /// The input ended: write out everything buffered. Default: nothing.
    ///
    /// # Errors
    /// [`crate::Error::User`] when the final write fails.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Creates one [`SinkWriter`] per subtask.
pub trait Sink<T>: Send + Sync + 'static {
    /// The writer of subtask `ctx.location.subtask`.
    ///
    /// # Errors
    /// [`crate::Error::User`] when the sink cannot be set up.
    fn create_writer(&self, ctx: &OperatorContext) -> Result<Box<dyn SinkWriter<T>>>;
}

/// A [`SinkWriter`] as the last operator of a chain.
pub struct SinkOperator<T> {
    writer: Box<dyn SinkWriter<T>>,
    /// Whether the final watermark arrived: the input is complete, not stopped.
    complete: bool,
    checkpointing: bool,
    _records: PhantomData<fn(T)>,
}

impl<T> SinkOperator<T> {
    /// Wraps `writer`.
    pub fn new(writer: Box<dyn SinkWriter<T>>) -> Self {
        SinkOperator {
            writer,
            complete: false,
            checkpointing: false,
            _records: PhantomData,
        }
    }
}

impl<T: Send + 'static> Operator for SinkOperator<T> {
    type In = Records<T>;
    type Out = Records<()>;

    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        self.checkpointing = ctx.snapshots.is_some();
        self.writer.open(ctx)
    }

    fn on_data(&mut self, batch: Records<T>, _out: &mut Collector<'_, Records<()>>) -> Result<()> {
        self.writer.write(batch)
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        _out: &mut Collector<'_, Records<()>>,
    ) -> Result<()> {
        if watermark == Watermark::MAX {
            self.complete = true;
        }
        self.writer.on_watermark(watermark)
    }

    fn on_end_of_input(&mut self, _out: &mut Collector<'_, Records<()>>) -> Result<()> {
        // A stopped job with checkpoints resumes from its last checkpoint: what was written
        // after it must not become final now.
        if self.checkpointing && !self.complete {
            return self.writer.stop();
        }
        self.writer.finish()
    }

    fn snapshot_state(&mut self, checkpoint: CheckpointId) -> Result<OperatorSnapshot> {
        Ok(OperatorSnapshot {
            operator: self.writer.snapshot_state(checkpoint)?,
            ..OperatorSnapshot::default()
        })
    }

    fn notify_checkpoint_complete(
        &mut self,
        checkpoint: CheckpointId,
        _out: &mut Collector<'_, Records<()>>,
    ) -> Result<()> {
        self.writer.notify_checkpoint_complete(checkpoint)
    }
}
