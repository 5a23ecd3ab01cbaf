//! [`BarrierAligner`]: decides when a task with several input channels has seen a
//! checkpoint barrier on all of them.
//!
//! Exactly-once: a channel that delivered barrier `n` is blocked (its records belong after
//! the checkpoint) until every open channel delivered `n`; then the barrier goes on and
//! every channel is read again. At-least-once: nothing is blocked; the barrier goes on
//! when the last channel delivered it. A channel that ends during an alignment no longer
//! needs to deliver the barrier.
//!
//! Unaligned barriers (which overtook the data queued in their channel) start the
//! checkpoint at the *first* channel that delivers one: the task snapshots and forwards at
//! once. Its channel state is then, for each channel, the batches the channel delivers
//! until its barrier arrives, followed by the batches that barrier overtook (copied from
//! the channel's queue the moment the barrier is read, without waiting for them to be
//! processed). When every channel delivered its barrier or ended, the channel state is
//! complete and the task acknowledges.
//!
//! Invariant: each barrier id is forwarded at most once, in increasing order; a newer
//! barrier abandons an unfinished older checkpoint (a source skipped it).

use sluice_core::{CheckpointBarrier, CheckpointId};

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
    /// The first barrier of an unaligned checkpoint: read every channel (an alignment it
    /// replaced is abandoned), snapshot and forward the barrier now, log what the barrier
    /// overtook on its channel, and log the batches of the other channels as
    /// [`BarrierAligner::logs`] says. With `complete`, every channel is done:
    /// acknowledge at once.
    StartUnaligned {
        /// The barrier to forward.
        barrier: CheckpointBarrier,
        /// Whether the channel state is complete already.
        complete: bool,
    },
    /// Another channel delivered the barrier of the unaligned checkpoint in progress: log
    /// what it overtook on that channel; with `complete`, acknowledge.
    UnalignedBarrier {
        /// The checkpoint, when its channel state is now complete.
        complete: Option<CheckpointId>,
    },
    /// The last channel owing channel state ended: acknowledge this unaligned checkpoint.
    ChannelStateComplete(CheckpointId),
}

/// Whether a channel still owes batches to an unaligned checkpoint's channel state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logging {
    /// Nothing more: its barrier arrived (or it ended).
    Done,
    /// Everything until its barrier arrives.
    UntilBarrier,
}

#[derive(Debug)]
enum Progress {
    /// Which channels delivered the barrier.
    Aligned(Vec<bool>),
    /// What each channel still owes the channel state.
    Unaligned(Vec<Logging>),
}

/// Barrier alignment over the input channels of one task.
#[derive(Debug)]
pub struct BarrierAligner {
    mode: CheckpointingMode,
    finished: Vec<bool>,
    current: Option<(CheckpointBarrier, Progress)>,
    last_forwarded: u64,
}

impl BarrierAligner {
    /// An aligner over `channels` input channels.
    pub fn new(channels: usize, mode: CheckpointingMode) -> Self {
        BarrierAligner {
            mode,
            finished: vec![false; channels],
            current: None,
            last_forwarded: 0,
        }
    }

    /// Whether an alignment is in progress.
    pub fn is_aligning(&self) -> bool {
        self.current.is_some()
    }

    /// Whether an unaligned checkpoint is logging channel state (then every event read
    /// goes through [`BarrierAligner::logs`]).
    pub fn is_logging(&self) -> bool {
        matches!(self.current, Some((_, Progress::Unaligned(_))))
    }

    /// Whether the current checkpoint is done at this task; if so, clears it.
    fn check_done(&mut self) -> AlignmentAction {
        let Some((barrier, progress)) = &self.current else {
            return AlignmentAction::Wait;
        };
        let barrier = *barrier;
        let done = match progress {
            Progress::Aligned(seen) => seen
                .iter()
                .zip(&self.finished)
                .all(|(seen, finished)| *seen || *finished),
            Progress::Unaligned(logging) => logging
                .iter()
                .zip(&self.finished)
                .all(|(l, finished)| *l == Logging::Done || *finished),
        };
        if !done {
            return AlignmentAction::Wait;
        }
        let unaligned = matches!(progress, Progress::Unaligned(_));
        self.current = None;
        if unaligned {
            AlignmentAction::ChannelStateComplete(barrier.id)
        } else {
            self.last_forwarded = barrier.id.0;
            AlignmentAction::Complete(barrier)
        }
    }

    /// Channel `channel` delivered `barrier`.
    pub fn on_barrier(&mut self, channel: usize, barrier: CheckpointBarrier) -> AlignmentAction {
        if barrier.id.0 <= self.last_forwarded {
            // Forwarded already (an unaligned checkpoint in progress, or done).
            if let Some((current, Progress::Unaligned(logging))) = &mut self.current {
                if current.id == barrier.id
                    && barrier.is_unaligned()
                    && logging[channel] == Logging::UntilBarrier
                {
                    logging[channel] = Logging::Done;
                    let complete = match self.check_done() {
                        AlignmentAction::ChannelStateComplete(id) => Some(id),
                        _ => None,
                    };
                    return AlignmentAction::UnalignedBarrier { complete };
                }
            }
            return AlignmentAction::Wait;
        }
        let replaced = match &self.current {
            Some((current, _)) if barrier.id.0 < current.id.0 => return AlignmentAction::Wait,
            Some((current, _)) => current.id != barrier.id,
            None => false,
        };
        if replaced {
            // A newer barrier: the older checkpoint cannot complete here any more (a
            // source skipped it); channels blocked for it must be read again, or they
            // would never deliver the newer barrier.
            self.current = None;
        }
        if barrier.is_unaligned() {
            return self.start_unaligned(channel, barrier);
        }
        if self.current.is_none() {
            let n = self.finished.len();
            self.current = Some((barrier, Progress::Aligned(vec![false; n])));
        }
        if let Some((_, Progress::Aligned(seen))) = &mut self.current {
            seen[channel] = true;
        }
        match self.check_done() {
            AlignmentAction::Wait => match (self.mode, replaced) {
                (CheckpointingMode::ExactlyOnce, false) => AlignmentAction::Block(channel),
                (CheckpointingMode::ExactlyOnce, true) => AlignmentAction::Restart(channel),
                (CheckpointingMode::AtLeastOnce, _) => AlignmentAction::Wait,
            },
            done => done,
        }
    }

    fn start_unaligned(&mut self, channel: usize, barrier: CheckpointBarrier) -> AlignmentAction {
        let mut logging: Vec<Logging> = self
            .finished
            .iter()
            .map(|&f| {
                if f {
                    Logging::Done
                } else {
                    Logging::UntilBarrier
                }
            })
            .collect();
        logging[channel] = Logging::Done;
        self.last_forwarded = barrier.id.0;
        self.current = Some((barrier, Progress::Unaligned(logging)));
        let complete = self.check_done() != AlignmentAction::Wait;
        AlignmentAction::StartUnaligned { barrier, complete }
    }

    /// Whether a batch read from `channel` belongs to the channel state of the unaligned
    /// checkpoint in progress (its channel's barrier has not arrived yet).
    pub fn logs(&self, channel: usize) -> bool {
        matches!(&self.current, Some((_, Progress::Unaligned(logging))) if logging[channel] == Logging::UntilBarrier)
    }

    /// Channel `channel` ended.
    pub fn on_end_of_channel(&mut self, channel: usize) -> AlignmentAction {
        self.finished[channel] = true;
        self.check_done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::BarrierAlignment;

    fn b(id: u64) -> CheckpointBarrier {
        CheckpointBarrier {
            id: CheckpointId(id),
            timestamp_ms: 0,
            alignment: BarrierAlignment::Aligned,
        }
    }

    fn u(id: u64, overtaken: u32) -> CheckpointBarrier {
        CheckpointBarrier {
            alignment: BarrierAlignment::Unaligned { overtaken },
            ..b(id)
        }
    }

    #[test]
    fn unaligned_starts_at_the_first_barrier_and_logs_until_every_channel_delivered_it() {
        let mut a = BarrierAligner::new(3, CheckpointingMode::ExactlyOnce);
        assert!(!a.logs(0));
        assert_eq!(
            a.on_barrier(1, u(1, 2)),
            AlignmentAction::StartUnaligned {
                barrier: u(1, 2),
                complete: false
            }
        );
        assert!(a.is_logging());
        assert!(!a.logs(1), "channel 1 delivered its barrier");
        assert!(a.logs(0) && a.logs(2));
        assert_eq!(
            a.on_barrier(0, u(1, 1)),
            AlignmentAction::UnalignedBarrier { complete: None }
        );
        assert!(!a.logs(0));
        assert_eq!(a.on_barrier(0, u(1, 1)), AlignmentAction::Wait, "once");
        assert_eq!(
            a.on_end_of_channel(2),
            AlignmentAction::ChannelStateComplete(CheckpointId(1))
        );
        assert!(!a.is_logging() && !a.logs(2));

        let mut b2 = BarrierAligner::new(2, CheckpointingMode::ExactlyOnce);
        b2.on_barrier(0, u(1, 0));
        assert_eq!(
            b2.on_barrier(1, u(1, 5)),
            AlignmentAction::UnalignedBarrier {
                complete: Some(CheckpointId(1))
            }
        );
        let mut single = BarrierAligner::new(1, CheckpointingMode::ExactlyOnce);
        assert_eq!(
            single.on_barrier(0, u(4, 3)),
            AlignmentAction::StartUnaligned {
                barrier: u(4, 3),
                complete: true
            }
        );
        assert!(!single.is_logging());
    }

    #[test]
    fn aligned_and_unaligned_checkpoints_replace_each_other_by_id() {
        let mut a = BarrierAligner::new(2, CheckpointingMode::ExactlyOnce);
        // A savepoint (aligned) in progress, then an unaligned checkpoint overtakes it.
        assert_eq!(a.on_barrier(0, b(1)), AlignmentAction::Block(0));
        assert_eq!(
            a.on_barrier(1, u(2, 0)),
            AlignmentAction::StartUnaligned {
                barrier: u(2, 0),
                complete: false
            }
        );
        assert_eq!(a.on_barrier(1, b(1)), AlignmentAction::Wait, "abandoned");
        // An aligned savepoint newer than the unaligned checkpoint replaces it.
        assert_eq!(a.on_barrier(1, b(3)), AlignmentAction::Restart(1));
        assert!(!a.is_logging());
        assert_eq!(a.on_barrier(0, u(2, 0)), AlignmentAction::Wait);
        assert_eq!(a.on_barrier(0, b(3)), AlignmentAction::Complete(b(3)));
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
