//! [`BarrierAligner`]: decides when a task with several input channels has seen a
//! checkpoint barrier on all of them.
//!
//! Exactly-once: a channel that delivered barrier `n` is blocked (its records belong after
//! the checkpoint) until every open channel delivered `n`; then the barrier goes on and
//! every channel is read again. At-least-once: nothing is blocked; the barrier goes on
//! when the last channel delivered it. A channel that ends during an alignment no longer
//! needs to deliver the barrier. Invariant: each barrier id is forwarded at most once, in
//! increasing order.

use sluice_core::CheckpointBarrier;

use super::CheckpointingMode;

/// What the task must do after a barrier or the end of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlignmentAction {
    /// Nothing yet.
    Wait,
    /// Stop reading this channel until the alignment completes (exactly-once).
    Block(usize),
    /// A newer barrier replaced an unfinished alignment (a source skipped the older
    /// checkpoint): read every channel again, then stop reading this one.
    Restart(usize),
    /// Every channel delivered the barrier: snapshot, forward it, read every channel.
    Complete(CheckpointBarrier),
}

/// Barrier alignment over the input channels of one task.
#[derive(Debug)]
pub struct BarrierAligner {
    mode: CheckpointingMode,
    finished: Vec<bool>,
    seen: Vec<bool>,
    current: Option<CheckpointBarrier>,
    last_forwarded: u64,
}

impl BarrierAligner {
    /// An aligner over `channels` input channels.
    pub fn new(channels: usize, mode: CheckpointingMode) -> Self {
        BarrierAligner {
            mode,
            finished: vec![false; channels],
            seen: vec![false; channels],
            current: None,
            last_forwarded: 0,
        }
    }

    /// Whether an alignment is in progress.
    pub fn is_aligning(&self) -> bool {
        self.current.is_some()
    }

    fn complete_if_done(&mut self) -> Option<CheckpointBarrier> {
        let barrier = self.current?;
        let done = self
            .seen
            .iter()
            .zip(&self.finished)
            .all(|(seen, finished)| *seen || *finished);
        if !done {
            return None;
        }
        self.current = None;
        self.seen.iter_mut().for_each(|s| *s = false);
        self.last_forwarded = barrier.id.0;
        Some(barrier)
    }

    /// Channel `channel` delivered `barrier`.
    pub fn on_barrier(&mut self, channel: usize, barrier: CheckpointBarrier) -> AlignmentAction {
        if barrier.id.0 <= self.last_forwarded {
            return AlignmentAction::Wait;
        }
        match self.current {
            Some(current) if barrier.id.0 > current.id.0 => {
                // A newer barrier: the older checkpoint cannot complete here any more (a
                // source skipped it); channels blocked for it must be read again, or they
                // would never deliver the newer barrier.
                self.seen.iter_mut().for_each(|s| *s = false);
                self.current = Some(barrier);
                self.seen[channel] = true;
                if let Some(done) = self.complete_if_done() {
                    return AlignmentAction::Complete(done);
                }
                return match self.mode {
                    CheckpointingMode::ExactlyOnce => AlignmentAction::Restart(channel),
                    CheckpointingMode::AtLeastOnce => AlignmentAction::Wait,
                };
            }
            Some(current) if barrier.id.0 < current.id.0 => return AlignmentAction::Wait,
            Some(_) => {}
            None => self.current = Some(barrier),
        }
        self.seen[channel] = true;
        if let Some(done) = self.complete_if_done() {
            return AlignmentAction::Complete(done);
        }
        match self.mode {
            CheckpointingMode::ExactlyOnce => AlignmentAction::Block(channel),
            CheckpointingMode::AtLeastOnce => AlignmentAction::Wait,
        }
    }

    /// Channel `channel` ended.
    pub fn on_end_of_channel(&mut self, channel: usize) -> AlignmentAction {
        self.finished[channel] = true;
        match self.complete_if_done() {
            Some(barrier) => AlignmentAction::Complete(barrier),
            None => AlignmentAction::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::CheckpointId;

    fn b(id: u64) -> CheckpointBarrier {
        CheckpointBarrier {
            id: CheckpointId(id),
            timestamp_ms: 0,
        }
    }

    #[test]
    fn exactly_once_blocks_until_every_channel_delivered() {
        let mut a = BarrierAligner::new(3, CheckpointingMode::ExactlyOnce);
        assert_eq!(a.on_barrier(1, b(1)), AlignmentAction::Block(1));
        assert!(a.is_aligning());
        assert_eq!(a.on_barrier(0, b(1)), AlignmentAction::Block(0));
        assert_eq!(a.on_barrier(2, b(1)), AlignmentAction::Complete(b(1)));
        assert!(!a.is_aligning());
        assert_eq!(
            a.on_barrier(0, b(1)),
            AlignmentAction::Wait,
            "forwarded already"
        );
    }

    #[test]
    fn at_least_once_never_blocks_and_ended_channels_count() {
        let mut a = BarrierAligner::new(2, CheckpointingMode::AtLeastOnce);
        assert_eq!(a.on_barrier(0, b(4)), AlignmentAction::Wait);
        assert_eq!(a.on_end_of_channel(1), AlignmentAction::Complete(b(4)));
        let mut e = BarrierAligner::new(2, CheckpointingMode::ExactlyOnce);
        e.on_end_of_channel(0);
        assert_eq!(e.on_barrier(1, b(1)), AlignmentAction::Complete(b(1)));
    }

    #[test]
    fn a_newer_barrier_replaces_an_abandoned_alignment() {
        // Source 0 injected checkpoint 1; source 1 skipped it and injected 2.
        let mut a = BarrierAligner::new(3, CheckpointingMode::ExactlyOnce);
        assert_eq!(a.on_barrier(0, b(1)), AlignmentAction::Block(0));
        assert_eq!(
            a.on_barrier(1, b(2)),
            AlignmentAction::Restart(1),
            "channel 0 must be read again: it will deliver 2 later"
        );
        assert_eq!(a.on_barrier(0, b(2)), AlignmentAction::Block(0));
        assert_eq!(
            a.on_barrier(2, b(1)),
            AlignmentAction::Wait,
            "older than aligning"
        );
        assert_eq!(a.on_barrier(2, b(2)), AlignmentAction::Complete(b(2)));
    }
}
