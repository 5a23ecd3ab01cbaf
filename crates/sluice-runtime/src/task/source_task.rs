//! [`SourceTask`]: polls a source reader and pushes its batches into the chain behind it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use sluice_core::{CheckpointId, Records, StreamEvent, Watermark, WatermarkStatus};

use super::Task;
use crate::checkpoint::{OperatorSnapshot, SubtaskSnapshot, TaskCheckpointing};
use crate::control::JobControl;
use crate::error::{panic_message, Error, Result, TaskLocation};
use crate::operator::chain::EventSink;
use crate::operator::OperatorContext;
use crate::operators::WatermarkSpec;
use crate::source::{Source, SourcePoll, SourceReader};
use crate::watermark::{SplitWatermarks, WatermarkUpdate};

const PENDING_BACKOFF_MIN: Duration = Duration::from_millis(1);
const PENDING_BACKOFF_MAX: Duration = Duration::from_millis(50);

/// A task running one subtask of a source and the chain behind it.
pub struct SourceTask<T> {
    source: Arc<dyn Source<T>>,
    ctx: OperatorContext,
    downstream: Box<dyn EventSink<Records<T>>>,
    control: Arc<JobControl>,
    watermarks: Option<WatermarkSpec<T>>,
    checkpointing: Option<TaskCheckpointing>,
}

/// Per-split timestamps and watermarks generated inside the source (Flink's
/// `fromSource(source, watermarkStrategy)`).
struct SourceWatermarks<T> {
    spec: WatermarkSpec<T>,
    splits: SplitWatermarks,
}

impl<T: Send + 'static> SourceWatermarks<T> {
    fn emit(
        update: WatermarkUpdate,
        downstream: &mut Box<dyn EventSink<Records<T>>>,
    ) -> Result<()> {
        if let Some(status) = update.status {
            downstream.on_event(StreamEvent::WatermarkStatus(status))?;
        }
        if let Some(w) = update.watermark {
            downstream.on_event(StreamEvent::Watermark(w))?;
        }
        Ok(())
    }

    /// Stamps a polled batch, updates its split's generator, sends it and what it moved.
    fn on_batch(
        &mut self,
        batch: Records<T>,
        reader: &mut Box<dyn SourceReader<T>>,
        now: i64,
        downstream: &mut Box<dyn EventSink<Records<T>>>,
    ) -> Result<()> {
        let batch = self.spec.stamp(batch);
        let split = reader.last_split().unwrap_or(0);
        if let Some(timestamps) = batch.timestamps() {
            if let Some(status) = self.splits.on_records(split, timestamps, now) {
                downstream.on_event(StreamEvent::WatermarkStatus(status))?;
            }
        }
        if !batch.is_empty() {
            downstream.on_event(StreamEvent::Data(batch))?;
        }
        for finished in reader.take_finished_splits() {
            self.splits.finish_split(finished, now);
        }
        Self::emit(self.splits.poll(now), downstream)
    }
}

/// Puts the reader's position for checkpoint `id` into the task's snapshots, as the
/// state of the source operator's subtask.
fn collect_position<T>(
    ctx: &OperatorContext,
    cp: &TaskCheckpointing,
    reader: &mut Box<dyn SourceReader<T>>,
    id: CheckpointId,
) -> Result<()> {
    let position = reader.snapshot_position(id)?;
    cp.collector
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(SubtaskSnapshot {
            operator: ctx.operator_id,
            subtask: ctx.location.subtask,
            state: OperatorSnapshot {
                operator: position,
                ..OperatorSnapshot::default()
            },
        });
    Ok(())
}

impl<T: Send + 'static> SourceTask<T> {
    /// A task reading `source` as subtask `ctx.location.subtask` into `downstream`.
    pub fn new(
        source: Arc<dyn Source<T>>,
        ctx: OperatorContext,
        downstream: Box<dyn EventSink<Records<T>>>,
        control: Arc<JobControl>,
    ) -> Self {
        SourceTask {
            source,
            ctx,
            downstream,
            control,
            watermarks: None,
            checkpointing: None,
        }
    }

    /// Takes part in checkpoints through `checkpointing`.
    #[must_use]
    pub fn with_checkpointing(mut self, checkpointing: Option<TaskCheckpointing>) -> Self {
        self.checkpointing = checkpointing;
        self
    }

    /// Starts the checkpoints triggered since the last poll: the reader's position and
    /// the chain's state are snapshotted, the barrier goes downstream, the task
    /// acknowledges. Passes on completions too.
    fn checkpoint_if_triggered(
        &mut self,
        reader: &mut Box<dyn SourceReader<T>>,
        last: &mut u64,
    ) -> Result<()> {
        let Some(cp) = self.checkpointing.as_mut() else {
            return Ok(());
        };
        if let Some(done) = cp.newly_completed() {
            reader.notify_checkpoint_complete(done)?;
            self.downstream.notify_checkpoint_complete(done)?;
        }
        let Some(barrier) = cp.triggered_after(*last) else {
            return Ok(());
        };
        let id = barrier.id;
        *last = id.0;
        collect_position(&self.ctx, cp, reader, id)?;
        // An unaligned barrier overtakes what the channels behind the chain hold.
        self.downstream.on_event(StreamEvent::Barrier(barrier))?;
        if let Some(cp) = self.checkpointing.as_ref() {
            cp.acknowledge(id);
        }
        Ok(())
    }

    /// The input ended: the reader's final position and the chain's final state join
    /// the coming checkpoints; waits until one of them completed, passing completions
    /// on (sinks behind the source commit their last output then).
    fn finish_checkpointing(&mut self, reader: &mut Box<dyn SourceReader<T>>) -> Result<()> {
        let Some(cp) = self.checkpointing.as_mut() else {
            return Ok(());
        };
        collect_position(&self.ctx, cp, reader, CheckpointId::FINAL)?;
        self.downstream.snapshot_final()?;
        let snapshots = crate::checkpoint::take_snapshots(&cp.collector);
        let downstream = &mut self.downstream;
        cp.finish_with(snapshots, &self.control, self.ctx.clock.as_ref(), |done| {
            reader.notify_checkpoint_complete(done)?;
            downstream.notify_checkpoint_complete(done)
        })
    }

    /// Generates timestamps and per-split watermarks inside the source by `spec`.
    #[must_use]
    pub fn with_watermarks(mut self, spec: Option<WatermarkSpec<T>>) -> Self {
        self.watermarks = spec;
        self
    }

    fn guarded<R>(&self, call: impl FnOnce() -> Result<R>) -> Result<R> {
        match catch_unwind(AssertUnwindSafe(call)) {
            Ok(r) => r.map_err(|e| e.at(|| self.ctx.location.clone())),
            Err(payload) => Err(Error::OperatorPanicked {
                location: self.ctx.location.clone(),
                message: panic_message(payload.as_ref()),
            }),
        }
    }
}

impl<T: Send + 'static> Task for SourceTask<T> {
    fn location(&self) -> &TaskLocation {
        &self.ctx.location
    }

    fn run(mut self: Box<Self>) -> Result<()> {
        let mut reader = self.guarded(|| self.source.create_reader(&self.ctx))?;
        let start = self.ctx.clock.now_ms();
        let mut watermarks = self.watermarks.take().map(|spec| {
            let mut splits = SplitWatermarks::new(spec.bound, spec.idle_timeout_ms);
            let assigned = reader.splits();
            if assigned.is_empty() {
                splits.add_split(0, start);
            }
            for split in assigned {
                splits.add_split(split, start);
            }
            SourceWatermarks { spec, splits }
        });
        let batch_size = self.ctx.batch_size;
        let mut backoff = PENDING_BACKOFF_MIN;
        let mut last_tick = i64::MIN;
        // Checkpoints after the one the attempt started from are this task's to start,
        // also one triggered while the reader was being created (a Kafka reader takes
        // longer than a short interval): starting from the current trigger would skip it
        // and leave it pending until its timeout.
        let mut last_checkpoint = self.checkpointing.as_ref().map_or(0, |c| c.notified);
        let finished_naturally = loop {
            if self.control.is_cancelled() {
                return Err(Error::Cancelled);
            }
            if self.control.is_stop_requested() {
                break false;
            }
            self.checkpoint_if_triggered(&mut reader, &mut last_checkpoint)
                .map_err(|e| e.at(|| self.ctx.location.clone()))?;
            // Processing time moves on for the chain behind the source too.
            let now = self.ctx.clock.now_ms();
            if now != last_tick {
                last_tick = now;
                self.downstream.on_processing_time(now)?;
            }
            let mut batch = Records::with_capacity(batch_size);
            let poll = self.guarded(|| reader.poll(&mut batch, batch_size))?;
            let produced = !batch.is_empty();
            match watermarks.as_mut() {
                Some(w) => w.on_batch(batch, &mut reader, now, &mut self.downstream)?,
                None if produced => self.downstream.on_event(StreamEvent::Data(batch))?,
                None => {}
            }
            match poll {
                SourcePoll::Ready => backoff = PENDING_BACKOFF_MIN,
                SourcePoll::Pending => {
                    self.downstream.flush()?;
                    if produced {
                        // The reader had data and drained it: look again at once.
                        backoff = PENDING_BACKOFF_MIN;
                    } else {
                        self.ctx.clock.sleep(backoff);
                        backoff = (backoff * 2).min(PENDING_BACKOFF_MAX);
                    }
                }
                SourcePoll::Finished => break true,
            }
        };
        if finished_naturally {
            if watermarks
                .as_ref()
                .is_some_and(|w| w.splits.status() == WatermarkStatus::Idle)
            {
                self.downstream
                    .on_event(StreamEvent::WatermarkStatus(WatermarkStatus::Active))?;
            }
            // The end of a bounded input completes event time: every pending window and
            // timer downstream fires.
            self.downstream
                .on_event(StreamEvent::Watermark(Watermark::MAX))?;
        }
        if let (Some(cp), false) = (&self.checkpointing, finished_naturally) {
            // Stopped: the job resumes from its last checkpoint, not from this state.
            cp.finished();
        }
        self.downstream.on_event(StreamEvent::EndOfStream)?;
        self.downstream.flush()?;
        if finished_naturally {
            self.finish_checkpointing(&mut reader)
                .map_err(|e| e.at(|| self.ctx.location.clone()))?;
        }
        Ok(())
    }
}
