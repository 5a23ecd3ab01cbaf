//! [`OneInputTask`]: a chain whose head reads channels from upstream tasks.

use std::sync::Arc;

use sluice_core::{Batch, Clock, StreamEvent};

use super::Task;
use crate::channel::{GateEvent, InputGate};
use crate::checkpoint::alignment::{AlignmentAction, BarrierAligner};
use crate::checkpoint::TaskCheckpointing;
use crate::control::JobControl;
use crate::error::{Result, TaskLocation};
use crate::operator::chain::EventSink;
use crate::watermark::WatermarkTracker;

/// A task that reads an input gate into an operator chain.
pub struct OneInputTask<B> {
    location: TaskLocation,
    gate: InputGate<B>,
    head: Box<dyn EventSink<B>>,
    watermarks: WatermarkTracker,
    control: Arc<JobControl>,
    clock: Arc<dyn Clock>,
    checkpointing: Option<(TaskCheckpointing, BarrierAligner)>,
}

impl<B: Batch> OneInputTask<B> {
    /// A task reading `gate` into `head`.
    pub fn new(
        location: TaskLocation,
        gate: InputGate<B>,
        head: Box<dyn EventSink<B>>,
        control: Arc<JobControl>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let watermarks = WatermarkTracker::new(gate.len());
        OneInputTask {
            location,
            gate,
            head,
            watermarks,
            control,
            clock,
            checkpointing: None,
        }
    }

    /// Takes part in checkpoints through `checkpointing`, aligning barriers over the
    /// gate's channels.
    #[must_use]
    pub fn with_checkpointing(mut self, checkpointing: Option<TaskCheckpointing>) -> Self {
        let channels = self.gate.len();
        self.checkpointing = checkpointing.map(|c| {
            let aligner = BarrierAligner::new(channels, c.mode);
            (c, aligner)
        });
        self
    }
}

/// Carries out an alignment decision.
fn align<B: Batch>(
    action: AlignmentAction,
    gate: &mut InputGate<B>,
    head: &mut Box<dyn EventSink<B>>,
    checkpointing: &TaskCheckpointing,
) -> Result<()> {
    match action {
        AlignmentAction::Wait => Ok(()),
        AlignmentAction::Block(channel) => {
            gate.block(channel);
            Ok(())
        }
        AlignmentAction::Restart(channel) => {
            gate.unblock_all();
            gate.block(channel);
            Ok(())
        }
        AlignmentAction::Complete(barrier) => {
            gate.unblock_all();
            head.on_event(StreamEvent::Barrier(barrier))?;
            checkpointing.acknowledge(barrier.id);
            Ok(())
        }
    }
}

impl<B: Batch> Task for OneInputTask<B> {
    fn location(&self) -> &TaskLocation {
        &self.location
    }

    fn run(mut self: Box<Self>) -> Result<()> {
        let OneInputTask {
            gate,
            head,
            watermarks,
            control,
            clock,
            checkpointing,
            ..
        } = &mut *self;
        // Processing time is handed to the chain when it moved (millisecond resolution):
        // between events, and while the task waits for input.
        let mut last_tick = i64::MIN;
        let mut tick = |head: &mut Box<dyn EventSink<B>>| -> Result<()> {
            let now = clock.now_ms();
            if now != last_tick {
                last_tick = now;
                head.on_processing_time(now)?;
            }
            Ok(())
        };
        loop {
            let next = gate.next(|| {
                head.flush()?;
                tick(head)
            })?;
            let Some(GateEvent { channel, event }) = next else {
                break;
            };
            tick(head)?;
            if let Some((cp, _)) = checkpointing.as_mut() {
                if let Some(done) = cp.newly_completed() {
                    head.notify_checkpoint_complete(done)?;
                }
            }
            match event {
                StreamEvent::Data(batch) => head.on_event(StreamEvent::Data(batch))?,
                StreamEvent::Watermark(w) => {
                    if let Some(combined) = watermarks.update(channel, w) {
                        head.on_event(StreamEvent::Watermark(combined))?;
                    }
                }
                StreamEvent::WatermarkStatus(status) => {
                    let change = watermarks.set_status(channel, status);
                    if let Some(w) = change.watermark {
                        head.on_event(StreamEvent::Watermark(w))?;
                    }
                    if let Some(s) = change.status {
                        head.on_event(StreamEvent::WatermarkStatus(s))?;
                    }
                }
                StreamEvent::Barrier(b) => match checkpointing.as_mut() {
                    Some((cp, aligner)) => {
                        let action = aligner.on_barrier(channel, b);
                        align(action, gate, head, cp)?;
                    }
                    None => head.on_event(StreamEvent::Barrier(b))?,
                },
                StreamEvent::EndOfStream => {
                    if let Some(combined) = watermarks.finish(channel) {
                        head.on_event(StreamEvent::Watermark(combined))?;
                    }
                    if let Some((cp, aligner)) = checkpointing.as_mut() {
                        let action = aligner.on_end_of_channel(channel);
                        align(action, gate, head, cp)?;
                    }
                }
            }
        }
        if control.is_cancelled() {
            return Err(crate::Error::Cancelled);
        }
        if let Some((cp, _)) = checkpointing.as_ref() {
            cp.finished();
        }
        head.on_event(StreamEvent::EndOfStream)?;
        head.flush()
    }
}
