//! Checkpoints: asynchronous barrier snapshots (Chandy–Lamport style, as in Flink).
//!
//! The [`coordinator`] periodically asks every source task to inject a numbered
//! [`CheckpointBarrier`]. A source snapshots its reader's
//! position and sends the barrier downstream in-band; a task with several input channels
//! aligns the barrier ([`alignment`]: in exactly-once mode it stops reading a channel that
//! delivered the barrier until every channel did), then every operator of its chain
//! snapshots its state as the barrier passes it, and the task acknowledges the checkpoint
//! with those snapshots. When every task acknowledged, the coordinator has written all
//! snapshots and a metadata file ([`storage`]), declares the checkpoint complete, and tasks
//! tell their operators (two-phase-commit sinks commit then). A failed job restarts from
//! the latest completed checkpoint under a [`RestartStrategy`].
//!
//! Invariant: a completed checkpoint's snapshots together describe the job's state after
//! exactly the records before the barrier, from every source, and nothing after it.

pub mod alignment;
pub mod coordinator;
pub mod remote;
pub mod restart;
pub mod storage;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::Duration;

use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sluice_core::{BarrierAlignment, CheckpointBarrier, CheckpointId, KeyGroup, OperatorId};
use sluice_state::KeyedTable;

pub use coordinator::CheckpointStats;
pub use restart::RestartStrategy;

/// Whether barriers are aligned at operators with several input channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckpointingMode {
    /// Barriers are aligned: state reflects every record exactly once after a restore.
    #[default]
    ExactlyOnce,
    /// No alignment: lower latency under skew, but after a restore some records may be
    /// counted twice.
    AtLeastOnce,
}

/// How a job takes checkpoints (Flink's `execution.checkpointing.*`).
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    /// Time between the triggers of two checkpoints.
    pub interval: Duration,
    /// Exactly-once (aligned) or at-least-once.
    pub mode: CheckpointingMode,
    /// A checkpoint not complete after this long is aborted.
    pub timeout: Duration,
    /// Checkpoints in progress at the same time.
    pub max_concurrent: usize,
    /// Least time between the end of one checkpoint and the trigger of the next.
    pub min_pause: Duration,
    /// Completed checkpoints kept; older ones are deleted once a newer one completed.
    pub retained: usize,
    /// Where checkpoints are written (a local directory); `None` keeps them in memory,
    /// enough to recover from task failures but not from a process crash.
    pub directory: Option<PathBuf>,
    /// What to do when a task fails.
    pub restart: RestartStrategy,
    /// Whether a run resumes from the latest completed checkpoint already in
    /// `directory` (left by an earlier run of the same job that crashed or was stopped);
    /// default true. When false, those checkpoints are deleted at the start.
    pub resume: bool,
    /// A savepoint (or retained checkpoint) directory to start from instead; keyed
    /// operators may have another parallelism than when it was taken.
    pub restore_from: Option<PathBuf>,
    /// Unaligned checkpoints (Flink's `execution.checkpointing.unaligned`): barriers
    /// overtake the data queued in channels, and that in-flight data becomes part of the
    /// checkpoint, so checkpoints complete quickly under back-pressure. Exactly-once mode
    /// only; savepoints stay aligned. A checkpoint with in-flight data restores only at
    /// the parallelism it was taken with. Default false.
    pub unaligned: bool,
}

impl CheckpointConfig {
    /// Checkpoints every `interval` with Flink's defaults otherwise: exactly-once, a
    /// 10-minute timeout, one at a time, no pause, one retained, in memory, restarts with
    /// a fixed delay of 1 s at most 3 times in a row.
    pub fn every(interval: Duration) -> Self {
        CheckpointConfig {
            interval,
            mode: CheckpointingMode::ExactlyOnce,
            timeout: Duration::from_secs(600),
            max_concurrent: 1,
            min_pause: Duration::ZERO,
            retained: 1,
            directory: None,
            restart: RestartStrategy::FixedDelay {
                attempts: 3,
                delay: Duration::from_secs(1),
            },
            resume: true,
            restore_from: None,
            unaligned: false,
        }
    }
}

/// The state of one operator subtask at a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorSnapshot {
    /// Keyed state, one serialized blob per key group (redistributed by key group when
    /// the parallelism changes).
    pub keyed: Vec<(u32, Vec<u8>)>,
    /// State of the subtask as a whole (a source's position, a sink's transaction);
    /// restored to the subtask with the same index.
    pub operator: Option<Vec<u8>>,
    /// In-flight input of the subtask's task (unaligned checkpoints; only on the head
    /// operator of a chain): batches that were before the barrier on their channel but
    /// not yet processed when the operators snapshotted. Restored to the subtask with the
    /// same index, which processes them before anything else.
    pub channels: Vec<ChannelState>,
}

impl OperatorSnapshot {
    /// Whether there is nothing to store.
    pub fn is_empty(&self) -> bool {
        self.keyed.is_empty() && self.operator.is_none() && self.channels.is_empty()
    }

    /// Whether the snapshot holds state of the subtask as a whole (not redistributable).
    pub fn has_subtask_state(&self) -> bool {
        self.operator.is_some() || !self.channels.is_empty()
    }
}

/// The logged in-flight batches of one input channel of a task, encoded by the task's
/// [`ChannelStateCodec`], in the order the channel delivered them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelState {
    /// Index of the channel in the task's input gate.
    pub channel: u32,
    /// The batches.
    pub batches: Vec<Vec<u8>>,
}

/// Encodes and decodes the input batches of a task for the channel state of unaligned
/// checkpoints. The typed API's batches use [`ChannelStateCodec::serde`] (postcard);
/// SQL's Arrow batches will bring an Arrow IPC codec.
pub struct ChannelStateCodec<B> {
    /// Encodes a batch.
    pub encode: fn(&B) -> crate::Result<Vec<u8>>,
    /// Decodes what `encode` wrote.
    pub decode: fn(&[u8]) -> crate::Result<B>,
}

impl<B> Clone for ChannelStateCodec<B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B> Copy for ChannelStateCodec<B> {}

impl<B> std::fmt::Debug for ChannelStateCodec<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChannelStateCodec")
    }
}

impl<B: Serialize + DeserializeOwned> ChannelStateCodec<B> {
    /// The codec of a serde batch type, in postcard.
    pub fn serde() -> Self {
        ChannelStateCodec {
            encode: |batch| {
                postcard::to_allocvec(batch).map_err(|e| {
                    crate::Error::Internal(format!("cannot encode an in-flight batch: {e}"))
                })
            },
            decode: |bytes| {
                postcard::from_bytes(bytes).map_err(|e| {
                    crate::Error::User(
                        format!("the in-flight data of the checkpoint is unreadable (the job's record types changed since it was taken?): {e}").into(),
                    )
                })
            },
        }
    }
}

/// The snapshot of one operator of one subtask, as a task acknowledges it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubtaskSnapshot {
    /// The operator (node id of the job graph).
    pub operator: OperatorId,
    /// The subtask index.
    pub subtask: u32,
    /// Its state.
    pub state: OperatorSnapshot,
}

/// What an operator subtask restores from: the key groups it owns now and, at an
/// unchanged parallelism, its own subtask state.
#[derive(Debug, Clone, Default)]
pub struct RestoredState {
    /// The checkpoint restored from.
    pub checkpoint: Option<CheckpointId>,
    /// Keyed state of the key groups of this subtask's range.
    pub keyed: Vec<(KeyGroup, Vec<u8>)>,
    /// The subtask state written by the subtask with the same index.
    pub operator: Option<Vec<u8>>,
    /// The in-flight input the subtask with the same index logged (unaligned
    /// checkpoints), to process before anything else.
    pub channels: Vec<ChannelState>,
}

/// Snapshots the operators of one task's chain write as a barrier passes them.
pub type SnapshotCollector = Arc<Mutex<Vec<SubtaskSnapshot>>>;

/// Takes what a collector holds.
pub(crate) fn take_snapshots(collector: &SnapshotCollector) -> Vec<SubtaskSnapshot> {
    std::mem::take(&mut *collector.lock().unwrap_or_else(PoisonError::into_inner))
}

/// A message from a task to the coordinator.
#[derive(Debug)]
pub(crate) enum TaskMessage {
    /// The task took its part of checkpoint `id`.
    Ack {
        task: usize,
        id: CheckpointId,
        snapshots: Vec<SubtaskSnapshot>,
    },
    /// The task's input ended. With `snapshots` (its operators' final state) it counts
    /// as acknowledging every later checkpoint with that state, and the coordinator
    /// answers on `reply` with the first checkpoint that includes it; without (the job
    /// was stopped) it takes no part in checkpoints any more.
    Finished {
        task: usize,
        snapshots: Option<Vec<SubtaskSnapshot>>,
        reply: Option<mpsc::Sender<u64>>,
    },
}

/// What tasks and the coordinator share.
#[derive(Debug, Default)]
pub(crate) struct CheckpointSignals {
    /// The latest checkpoint the coordinator asked sources to start, shifted left by one,
    /// with the lowest bit set when it is unaligned (one word, so a source never pairs an
    /// id with another checkpoint's alignment).
    triggered: AtomicU64,
    /// Processing time (ms) of that trigger.
    pub(crate) triggered_at: AtomicU64,
    /// The latest completed checkpoint (0: none).
    pub(crate) completed: AtomicU64,
    /// No checkpoint will complete any more (the job was stopped or ended): finished
    /// tasks stop waiting for one.
    pub(crate) closed: std::sync::atomic::AtomicBool,
}

impl CheckpointSignals {
    /// Publishes checkpoint `id` to the sources.
    pub(crate) fn publish_trigger(&self, id: u64, at_ms: i64, unaligned: bool) {
        self.triggered_at
            .store(at_ms.max(0) as u64, Ordering::Release);
        self.triggered
            .store(id << 1 | u64::from(unaligned), Ordering::Release);
    }

    /// The latest triggered checkpoint and whether it is unaligned.
    pub(crate) fn latest_trigger(&self) -> (u64, bool) {
        let word = self.triggered.load(Ordering::Acquire);
        (word >> 1, word & 1 == 1)
    }
}

/// A task's connection to the checkpoint coordinator.
#[derive(Debug, Clone)]
pub struct TaskCheckpointing {
    pub(crate) task: usize,
    pub(crate) mode: CheckpointingMode,
    pub(crate) signals: Arc<CheckpointSignals>,
    pub(crate) messages: mpsc::Sender<TaskMessage>,
    pub(crate) collector: SnapshotCollector,
    /// The last completion the task passed on to its operators.
    pub(crate) notified: u64,
}

impl TaskCheckpointing {
    /// Acknowledges checkpoint `id` with what the chain's operators wrote.
    pub(crate) fn acknowledge(&self, id: CheckpointId) {
        self.acknowledge_with(id, take_snapshots(&self.collector));
    }

    /// Acknowledges checkpoint `id` with `snapshots` (taken earlier: an unaligned
    /// checkpoint acknowledges once its channel state is complete).
    pub(crate) fn acknowledge_with(&self, id: CheckpointId, snapshots: Vec<SubtaskSnapshot>) {
        let _ = self.messages.send(TaskMessage::Ack {
            task: self.task,
            id,
            snapshots,
        });
    }

    /// Tells the coordinator this task will not acknowledge further checkpoints (its
    /// input was stopped: the job resumes from its last checkpoint).
    pub(crate) fn finished(&self) {
        let _ = self.messages.send(TaskMessage::Finished {
            task: self.task,
            snapshots: None,
            reply: None,
        });
    }

    /// Hands the coordinator the task's final state (its input ended) and waits until a
    /// checkpoint that includes it completed, passing every completion to `on_complete`
    /// (two-phase-commit sinks commit their last output then). Returns at once when the
    /// coordinator is gone.
    ///
    /// # Errors
    /// [`crate::Error::Cancelled`] when the job is cancelled while waiting, and what
    /// `on_complete` returns.
    pub(crate) fn finish_with(
        &mut self,
        snapshots: Vec<SubtaskSnapshot>,
        control: &crate::control::JobControl,
        clock: &dyn sluice_core::Clock,
        mut on_complete: impl FnMut(CheckpointId) -> crate::Result<()>,
    ) -> crate::Result<()> {
        let (tx, rx) = mpsc::channel();
        let sent = self.messages.send(TaskMessage::Finished {
            task: self.task,
            snapshots: Some(snapshots),
            reply: Some(tx),
        });
        if sent.is_err() {
            return Ok(());
        }
        let target = loop {
            if control.is_cancelled() {
                return Err(crate::Error::Cancelled);
            }
            match rx.recv_timeout(Duration::from_millis(10)) {
                Ok(target) => break target,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            }
        };
        let mut poll = Duration::from_micros(100);
        loop {
            // Read before the completion: a completion published before the close is
            // seen in this round.
            let closed = self.signals.closed.load(Ordering::Acquire);
            if let Some(done) = self.newly_completed() {
                on_complete(done)?;
            }
            if self.notified >= target || closed {
                return Ok(());
            }
            if control.is_cancelled() {
                return Err(crate::Error::Cancelled);
            }
            clock.sleep(poll);
            poll = (poll * 2).min(Duration::from_millis(5));
        }
    }

    /// A checkpoint completed since the last call, if any.
    pub(crate) fn newly_completed(&mut self) -> Option<CheckpointId> {
        let completed = self.signals.completed.load(Ordering::Acquire);
        if completed > self.notified {
            self.notified = completed;
            Some(CheckpointId(completed))
        } else {
            None
        }
    }

    /// The barrier a source should inject now, if a newer checkpoint was triggered.
    pub(crate) fn triggered_after(&self, last: u64) -> Option<CheckpointBarrier> {
        let (id, unaligned) = self.signals.latest_trigger();
        (id > last).then(|| {
            let at = self.signals.triggered_at.load(Ordering::Acquire) as i64;
            CheckpointBarrier {
                id: CheckpointId(id),
                timestamp_ms: at,
                alignment: if unaligned {
                    BarrierAlignment::Unaligned { overtaken: 0 }
                } else {
                    BarrierAlignment::Aligned
                },
            }
        })
    }
}

/// Snapshots a keyed table of an operator, one blob per key group of its range.
///
/// # Errors
/// [`crate::Error::Internal`] when a value cannot be encoded.
pub fn snapshot_table<K, V>(table: &KeyedTable<K, V>) -> crate::Result<OperatorSnapshot>
where
    K: Eq + Serialize,
    V: Serialize,
{
    let mut keyed = Vec::new();
    for group in table.key_group_range().iter() {
        let entries: Vec<(&K, &V)> = table.iter_group(group).collect();
        let blob = postcard::to_allocvec(&entries)
            .map_err(|e| crate::Error::Internal(format!("cannot encode operator state: {e}")))?;
        keyed.push((group.0, blob));
    }
    Ok(OperatorSnapshot {
        keyed,
        ..OperatorSnapshot::default()
    })
}

/// Restores a keyed table written by [`snapshot_table`], calling `restored(key, hash,
/// value)` for every entry (to rebuild what an operator derives from its state, such as
/// the windows due to fire).
///
/// # Errors
/// [`crate::Error::User`] when a blob is unreadable (the job changed its state types).
pub fn restore_table<K, V>(
    table: &mut KeyedTable<K, V>,
    restored: &RestoredState,
    mut on_entry: impl FnMut(&K, u64, &V),
) -> crate::Result<()>
where
    K: Hash + Eq + Clone + DeserializeOwned,
    V: DeserializeOwned,
{
    for (group, bytes) in &restored.keyed {
        let entries: Vec<(K, V)> = postcard::from_bytes(bytes).map_err(|e| {
            crate::Error::User(
                format!("operator state of key group {} is unreadable: {e}", group.0).into(),
            )
        })?;
        for (key, value) in entries {
            let hash = sluice_core::stable_hash(&key);
            let actual = table.key_group_of(hash);
            if actual != *group {
                return Err(crate::Error::User(
                    format!(
                        "the state of key group {} holds a key of key group {}: the operator's key type changed since the checkpoint; restore with the key type it was taken with",
                        group.0, actual.0
                    )
                    .into(),
                ));
            }
            on_entry(&key, hash, &value);
            table.insert(key, hash, value);
        }
    }
    Ok(())
}
