//! Checkpoints: asynchronous barrier snapshots (Chandy–Lamport style, as in Flink).
//!
//! The [`coordinator`] periodically asks every source task to inject a numbered
//! [`CheckpointBarrier`](sluice_core::CheckpointBarrier). A source snapshots its reader's
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
pub mod restart;
pub mod storage;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::Duration;

use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sluice_core::{CheckpointId, KeyGroup, OperatorId};
use sluice_state::KeyedTable;

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
}

impl OperatorSnapshot {
    /// Whether there is nothing to store.
    pub fn is_empty(&self) -> bool {
        self.keyed.is_empty() && self.operator.is_none()
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
    /// The task will not take part in checkpoints any more (its input ended).
    Finished { task: usize },
}

/// What tasks and the coordinator share.
#[derive(Debug, Default)]
pub(crate) struct CheckpointSignals {
    /// The latest checkpoint the coordinator asked sources to start.
    pub(crate) triggered: AtomicU64,
    /// Processing time (ms) of that trigger.
    pub(crate) triggered_at: AtomicU64,
    /// The latest completed checkpoint (0: none).
    pub(crate) completed: AtomicU64,
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
        let snapshots = take_snapshots(&self.collector);
        let _ = self.messages.send(TaskMessage::Ack {
            task: self.task,
            id,
            snapshots,
        });
    }

    /// Tells the coordinator this task will not acknowledge further checkpoints.
    pub(crate) fn finished(&self) {
        let _ = self
            .messages
            .send(TaskMessage::Finished { task: self.task });
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

    /// The checkpoint a source should start now, if a newer one was triggered.
    pub(crate) fn triggered_after(&self, last: u64) -> Option<(CheckpointId, i64)> {
        let id = self.signals.triggered.load(Ordering::Acquire);
        (id > last).then(|| {
            let at = self.signals.triggered_at.load(Ordering::Acquire) as i64;
            (CheckpointId(id), at)
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
        operator: None,
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
