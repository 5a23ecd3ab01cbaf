//! [`StreamEvent`]: what travels on a channel, data and control in one ordered stream.
//!
//! Invariant others rely on: control events are in-band. A watermark, a barrier or the end
//! of stream is delivered after every batch sent before it on the same channel and before
//! every batch sent after it. Partitioners broadcast control events to every channel.

use crate::time::Watermark;

/// Number of a checkpoint; increases by one for every checkpoint a job triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckpointId(pub u64);

impl CheckpointId {
    /// The id operators see in the snapshot a task takes when its input ended: that
    /// final state belongs to every checkpoint completed after it.
    pub const FINAL: CheckpointId = CheckpointId(u64::MAX);
}

/// The marker a source injects to cut the stream into "before" and "after" a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointBarrier {
    /// Which checkpoint this barrier belongs to.
    pub id: CheckpointId,
    /// Processing time (ms since the Unix epoch) at which the coordinator triggered it.
    pub timestamp_ms: i64,
    /// Whether the barrier waits its turn on channels or overtakes what they hold.
    pub alignment: BarrierAlignment,
}

impl CheckpointBarrier {
    /// Whether this barrier overtakes in-flight data (an unaligned checkpoint).
    pub fn is_unaligned(&self) -> bool {
        matches!(self.alignment, BarrierAlignment::Unaligned { .. })
    }
}

/// How a barrier travels (Flink's aligned and unaligned checkpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BarrierAlignment {
    /// In order with the data: a task with several inputs aligns it (exactly-once) or
    /// passes it on with the last arrival (at-least-once). Savepoints are always aligned.
    #[default]
    Aligned,
    /// Ahead of the data: the channel puts it at the head of its queue, in front of
    /// `overtaken` events that were sent before it. Those events, and everything a task
    /// reads on its other channels until their barrier arrives, belong to the checkpoint
    /// as channel state; the receiving task snapshots its operators at once.
    Unaligned {
        /// Events (set by the channel) that were queued before the barrier and come
        /// after it.
        overtaken: u32,
    },
}

/// Whether a channel currently carries event time (Flink's `WatermarkStatus`).
///
/// An idle channel (a source partition without data for longer than its idleness timeout)
/// does not hold back the minimum watermark of the tasks downstream until it becomes
/// active again, which it does by sending records or [`WatermarkStatus::Active`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatermarkStatus {
    /// The channel sends watermarks; it counts in the minimum.
    Active,
    /// The channel sends nothing for now; it is left out of the minimum.
    Idle,
}

/// One event on a channel between two tasks.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent<B> {
    /// A batch of records.
    Data(B),
    /// Event time on this channel has reached the watermark: no record with an earlier
    /// timestamp follows (records that do are late).
    Watermark(Watermark),
    /// The channel went idle or became active again.
    WatermarkStatus(WatermarkStatus),
    /// A checkpoint barrier.
    Barrier(CheckpointBarrier),
    /// The sender will send nothing more on this channel.
    EndOfStream,
}

impl<B> StreamEvent<B> {
    /// Whether this is a control event (anything but [`StreamEvent::Data`]).
    pub fn is_control(&self) -> bool {
        !matches!(self, StreamEvent::Data(_))
    }

    /// The same control event with another batch type. Returns `None` for data.
    pub fn map_control<C>(&self) -> Option<StreamEvent<C>> {
        match self {
            StreamEvent::Data(_) => None,
            StreamEvent::Watermark(w) => Some(StreamEvent::Watermark(*w)),
            StreamEvent::WatermarkStatus(s) => Some(StreamEvent::WatermarkStatus(*s)),
            StreamEvent::Barrier(b) => Some(StreamEvent::Barrier(*b)),
            StreamEvent::EndOfStream => Some(StreamEvent::EndOfStream),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::EventTime;

    #[test]
    fn control_events_convert_between_batch_types() {
        let wm: StreamEvent<Vec<u8>> = StreamEvent::Watermark(Watermark(EventTime(5)));
        assert!(wm.is_control());
        assert_eq!(
            wm.map_control::<String>(),
            Some(StreamEvent::Watermark(Watermark(EventTime(5))))
        );
        let data: StreamEvent<Vec<u8>> = StreamEvent::Data(vec![1]);
        assert!(!data.is_control());
        assert_eq!(data.map_control::<String>(), None);
    }
}
