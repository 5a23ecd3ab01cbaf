//! [`OneInputTask`]: a chain whose head reads channels from upstream tasks.
//!
//! With checkpoints, the task aligns barriers over its channels ([`BarrierAligner`]); for
//! unaligned checkpoints it also logs the in-flight batches that belong to a checkpoint
//! (encoded by its [`ChannelStateCodec`]) and, when restored, processes the logged
//! batches of its checkpoint before reading its channels.

use std::sync::Arc;

use sluice_core::{
    BarrierAlignment, Batch, CheckpointBarrier, CheckpointId, Clock, OperatorId, StreamEvent,
};

use super::Task;
use crate::channel::{GateEvent, InputGate};
use crate::checkpoint::alignment::{AlignmentAction, BarrierAligner};
use crate::checkpoint::{
    take_snapshots, ChannelState, ChannelStateCodec, OperatorSnapshot, SubtaskSnapshot,
    TaskCheckpointing,
};
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
    checkpointing: Option<Checkpointing<B>>,
    /// In-flight input of the checkpoint restored from, processed first.
    restored_channels: Vec<ChannelState>,
}

/// What a task needs to take part in checkpoints.
struct Checkpointing<B> {
    link: TaskCheckpointing,
    aligner: BarrierAligner,
    codec: ChannelStateCodec<B>,
    /// The chain's head operator and subtask, which own the channel state.
    head: (OperatorId, u32),
    /// The unaligned checkpoint whose channel state is being logged.
    pending: Option<PendingUnaligned>,
}

/// An unaligned checkpoint taken by the chain, waiting for its channel state.
struct PendingUnaligned {
    id: CheckpointId,
    snapshots: Vec<SubtaskSnapshot>,
    channels: Vec<ChannelState>,
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
            restored_channels: Vec::new(),
        }
    }

    /// Takes part in checkpoints through `checkpointing`, aligning barriers over the
    /// gate's channels; `codec` encodes in-flight batches for unaligned checkpoints,
    /// whose channel state belongs to the chain's `head` operator subtask.
    #[must_use]
    pub fn with_checkpointing(
        mut self,
        checkpointing: Option<TaskCheckpointing>,
        codec: ChannelStateCodec<B>,
        head: (OperatorId, u32),
    ) -> Self {
        let channels = self.gate.len();
        self.checkpointing = checkpointing.map(|link| Checkpointing {
            aligner: BarrierAligner::new(channels, link.mode),
            link,
            codec,
            head,
            pending: None,
        });
        self
    }

    /// Processes `channels` (the in-flight input logged by an unaligned checkpoint this
    /// task restores from) before reading its channels.
    #[must_use]
    pub fn with_restored_channels(mut self, channels: Vec<ChannelState>) -> Self {
        self.restored_channels = channels;
        self
    }
}

impl<B: Batch> Checkpointing<B> {
    /// Carries out an alignment decision made on `channel`, after reading the barrier
    /// `read` there (or its end).
    fn align(
        &mut self,
        action: AlignmentAction,
        (channel, read): (usize, Option<CheckpointBarrier>),
        gate: &mut InputGate<B>,
        head: &mut Box<dyn EventSink<B>>,
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
                self.pending = None;
                gate.unblock_all();
                head.on_event(StreamEvent::Barrier(barrier))?;
                self.link.acknowledge(barrier.id);
                Ok(())
            }
            AlignmentAction::StartUnaligned { barrier, complete } => {
                gate.unblock_all();
                // The chain snapshots and the barrier goes on ahead of the output data.
                head.on_event(StreamEvent::Barrier(barrier))?;
                self.pending = Some(PendingUnaligned {
                    id: barrier.id,
                    snapshots: take_snapshots(&self.link.collector),
                    channels: Vec::new(),
                });
                self.log_overtaken(gate, channel, Some(barrier))?;
                if complete {
                    self.acknowledge_unaligned(barrier.id);
                }
                Ok(())
            }
            AlignmentAction::UnalignedBarrier { complete } => {
                self.log_overtaken(gate, channel, read)?;
                if let Some(id) = complete {
                    self.acknowledge_unaligned(id);
                }
                Ok(())
            }
            AlignmentAction::ChannelStateComplete(id) => {
                self.acknowledge_unaligned(id);
                Ok(())
            }
        }
    }

    /// Logs the batches `barrier`, just read on `channel`, overtook there: they are
    /// still queued behind it, and are copied without waiting for their processing.
    fn log_overtaken(
        &mut self,
        gate: &InputGate<B>,
        channel: usize,
        barrier: Option<CheckpointBarrier>,
    ) -> Result<()> {
        let Some(BarrierAlignment::Unaligned { overtaken }) = barrier.map(|b| b.alignment) else {
            return Ok(());
        };
        let encode = self.codec.encode;
        let mut batches = Vec::new();
        gate.visit_queued(channel, overtaken as usize, &mut |batch| {
            batches.push(encode(batch)?);
            Ok(())
        })?;
        for bytes in batches {
            self.push_logged(channel, bytes);
        }
        Ok(())
    }

    /// Adds an encoded batch of `channel` to the channel state.
    fn push_logged(&mut self, channel: usize, bytes: Vec<u8>) {
        let Some(pending) = self.pending.as_mut() else {
            return;
        };
        let channel = channel as u32;
        match pending.channels.iter_mut().find(|c| c.channel == channel) {
            Some(state) => state.batches.push(bytes),
            None => pending.channels.push(ChannelState {
                channel,
                batches: vec![bytes],
            }),
        }
    }

    /// Acknowledges the pending unaligned checkpoint `id` with its channel state, which
    /// the chain's head operator owns.
    fn acknowledge_unaligned(&mut self, id: CheckpointId) {
        let Some(PendingUnaligned {
            id: pending_id,
            mut snapshots,
            mut channels,
        }) = self.pending.take()
        else {
            return;
        };
        if pending_id != id {
            return;
        }
        channels.sort_by_key(|c| c.channel);
        let (operator, subtask) = self.head;
        match snapshots
            .iter_mut()
            .find(|s| s.operator == operator && s.subtask == subtask)
        {
            Some(own) => own.state.channels = channels,
            None => snapshots.push(SubtaskSnapshot {
                operator,
                subtask,
                state: OperatorSnapshot {
                    channels,
                    ..OperatorSnapshot::default()
                },
            }),
        }
        self.link.acknowledge_with(id, snapshots);
    }

    /// Logs a batch read on `channel` during an unaligned checkpoint when it belongs to
    /// the channel state (the channel's barrier has not arrived yet).
    fn on_batch(&mut self, channel: usize, batch: &B) -> Result<()> {
        if self.aligner.logs(channel) {
            let bytes = (self.codec.encode)(batch)?;
            self.push_logged(channel, bytes);
        }
        Ok(())
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
            restored_channels,
            ..
        } = &mut *self;
        // In-flight input of an unaligned checkpoint belongs before anything the channels
        // deliver now.
        if !restored_channels.is_empty() {
            let Some(cp) = checkpointing.as_ref() else {
                return Err(crate::Error::Internal(
                    "a task restores in-flight data without checkpointing".into(),
                ));
            };
            for state in std::mem::take(restored_channels) {
                for bytes in &state.batches {
                    head.on_event(StreamEvent::Data((cp.codec.decode)(bytes)?))?;
                }
            }
        }
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
                // An idle task still passes completions on: a two-phase-commit sink
                // commits without waiting for its next record.
                if let Some(cp) = checkpointing.as_mut() {
                    if let Some(done) = cp.link.newly_completed() {
                        head.notify_checkpoint_complete(done)?;
                    }
                }
                tick(head)
            })?;
            let Some(GateEvent { channel, event }) = next else {
                break;
            };
            tick(head)?;
            if let Some(cp) = checkpointing.as_mut() {
                if let Some(done) = cp.link.newly_completed() {
                    head.notify_checkpoint_complete(done)?;
                }
                if let (true, StreamEvent::Data(batch)) = (cp.aligner.is_logging(), &event) {
                    cp.on_batch(channel, batch)?;
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
                    Some(cp) => {
                        let action = cp.aligner.on_barrier(channel, b);
                        cp.align(action, (channel, Some(b)), gate, head)?;
                    }
                    None => head.on_event(StreamEvent::Barrier(b))?,
                },
                StreamEvent::EndOfStream => {
                    if let Some(combined) = watermarks.finish(channel) {
                        head.on_event(StreamEvent::Watermark(combined))?;
                    }
                    if let Some(cp) = checkpointing.as_mut() {
                        let action = cp.aligner.on_end_of_channel(channel);
                        cp.align(action, (channel, None), gate, head)?;
                    }
                }
            }
        }
        if control.is_cancelled() {
            return Err(crate::Error::Cancelled);
        }
        let stopped = control.is_stop_requested();
        if let (Some(cp), true) = (checkpointing.as_ref(), stopped) {
            // Stopped: the job resumes from its last checkpoint, not from this state.
            cp.link.finished();
        }
        head.on_event(StreamEvent::EndOfStream)?;
        head.flush()?;
        match checkpointing.as_mut() {
            Some(cp) if !stopped => {
                // The input ended: the final state joins the coming checkpoints, and
                // the task stays until one of them completed (sinks commit then).
                head.snapshot_final()?;
                let snapshots = take_snapshots(&cp.link.collector);
                cp.link
                    .finish_with(snapshots, control, clock.as_ref(), |done| {
                        head.notify_checkpoint_complete(done)
                    })
            }
            _ => Ok(()),
        }
    }
}
