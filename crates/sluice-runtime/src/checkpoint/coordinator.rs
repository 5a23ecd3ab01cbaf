//! [`CheckpointCoordinator`]: triggers checkpoints, collects the tasks'
//! acknowledgements, writes their snapshots, completes or aborts checkpoints, and keeps the
//! last few (Flink's `CheckpointCoordinator`).
//!
//! It runs on its own thread beside the tasks. Snapshots are written here, not on the
//! task threads, so tasks go on processing while their state is uploaded. A checkpoint
//! completes when every task acknowledged it and every file was written; the metadata
//! file is written last. A checkpoint is aborted (and its files deleted) when it times
//! out.
//!
//! A task whose input ended hands over its final state and counts as acknowledging
//! every later checkpoint with it (Flink's checkpoints after tasks finished), so
//! checkpoints go on while other sources run; when every task finished, one last
//! checkpoint is completed from the final states alone, and the tasks, which wait for
//! it, commit their last output (two-phase-commit sinks). A task stopped without its
//! input ending (a graceful stop) takes no further part: pending checkpoints it did not
//! acknowledge are aborted and none is triggered after that, so a stopped job resumes
//! from its last checkpoint.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use std::path::{Path, PathBuf};

use sluice_core::{CheckpointId, Clock, OperatorId};

use super::storage::{CheckpointMetadata, CheckpointStorage, StateFile};
use super::{CheckpointConfig, CheckpointSignals, SubtaskSnapshot, TaskMessage};
use crate::control::{JobControl, SavepointRequest};
use crate::error::{Error, Result};

/// A checkpoint in progress.
#[derive(Debug)]
struct Pending {
    triggered_at_ms: i64,
    started_nanos: u64,
    acked: HashSet<usize>,
    files: Vec<StateFile>,
    failed: bool,
    /// Where to copy it when it is a savepoint, and whom to tell.
    savepoint: Option<SavepointRequest>,
    unaligned: bool,
    state_bytes: u64,
    in_flight_bytes: u64,
}

/// What the coordinator did during a run.
#[derive(Debug, Clone, Default)]
pub struct CoordinatorReport {
    /// Ids of the checkpoints completed, in order.
    pub completed: Vec<CheckpointId>,
    /// Figures of each completed checkpoint, in order.
    pub stats: Vec<CheckpointStats>,
    /// Number of checkpoints aborted.
    pub aborted: u64,
}

/// Figures of one completed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointStats {
    /// The checkpoint.
    pub id: CheckpointId,
    /// From its trigger to its completion (metadata written).
    pub duration: Duration,
    /// Bytes of operator state (keyed and subtask state), before the file framing.
    pub state_bytes: u64,
    /// Bytes of in-flight data (the channel state of an unaligned checkpoint).
    pub in_flight_bytes: u64,
    /// Whether it was unaligned.
    pub unaligned: bool,
    /// Whether it was a savepoint.
    pub savepoint: bool,
}

/// The job facts a coordinator needs.
#[derive(Debug, Clone)]
pub struct JobFacts {
    /// The job's name.
    pub job: String,
    /// Number of tasks that acknowledge each checkpoint.
    pub tasks: usize,
    /// Number of key groups.
    pub max_parallelism: u32,
    /// Parallelism per operator.
    pub parallelism: Vec<(u32, u32)>,
    /// The tasks that run sources (they inject barriers).
    pub sources: HashSet<usize>,
}

/// Triggers and completes the checkpoints of one job run.
pub struct CheckpointCoordinator {
    config: CheckpointConfig,
    facts: JobFacts,
    storage: Arc<CheckpointStorage>,
    signals: Arc<CheckpointSignals>,
    messages: Receiver<TaskMessage>,
    clock: Arc<dyn Clock>,
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    /// Tasks whose input ended, with their final state.
    finished: BTreeMap<usize, Vec<SubtaskSnapshot>>,
    /// For each finished task, the first checkpoint that includes its final state.
    final_targets: BTreeMap<usize, u64>,
    /// A task was stopped (not finished): no checkpoint is triggered any more.
    stopped: bool,
    /// The latest completed checkpoint.
    last_completed: u64,
    /// The newest checkpoint each task acknowledged with a barrier.
    last_acked: BTreeMap<usize, u64>,
    retained: VecDeque<CheckpointId>,
    last_trigger_nanos: Option<u64>,
    last_complete_nanos: Option<u64>,
    report: CoordinatorReport,
    control: Arc<JobControl>,
    /// Savepoints waiting for a free slot (`max_concurrent`).
    queued_savepoints: VecDeque<SavepointRequest>,
}

impl std::fmt::Debug for CheckpointCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointCoordinator")
            .field("job", &self.facts.job)
            .field("next_id", &self.next_id)
            .finish()
    }
}

impl CheckpointCoordinator {
    /// A coordinator numbering checkpoints after `last_completed`, whose older completed
    /// checkpoints (to be retained or deleted) are `existing`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: CheckpointConfig,
        facts: JobFacts,
        storage: Arc<CheckpointStorage>,
        signals: Arc<CheckpointSignals>,
        messages: Receiver<TaskMessage>,
        clock: Arc<dyn Clock>,
        existing: Vec<CheckpointId>,
        restored: u64,
        control: Arc<JobControl>,
    ) -> Self {
        // Ids go on after the checkpoint restored from (a savepoint's too): a sink that
        // remembers which checkpoint it committed last must never see an id again.
        let last = existing.last().map_or(0, |id| id.0).max(restored);
        // The first checkpoint comes one interval after the start.
        let start = clock.monotonic_nanos();
        signals.completed.store(last, Ordering::Release);
        signals.publish_trigger(last, 0, false);
        CheckpointCoordinator {
            config,
            facts,
            storage,
            signals,
            messages,
            clock,
            next_id: last + 1,
            pending: BTreeMap::new(),
            finished: BTreeMap::new(),
            final_targets: BTreeMap::new(),
            stopped: false,
            last_completed: last,
            last_acked: BTreeMap::new(),
            retained: existing.into_iter().collect(),
            last_trigger_nanos: Some(start),
            last_complete_nanos: None,
            report: CoordinatorReport::default(),
            control,
            queued_savepoints: VecDeque::new(),
        }
    }

    /// Runs until `stop` is set; returns what it did.
    pub(crate) fn run(mut self, stop: &AtomicBool) -> CoordinatorReport {
        while !stop.load(Ordering::Acquire) {
            match self.messages.recv_timeout(Duration::from_millis(2)) {
                Ok(message) => self.on_message(message),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.abort_timed_out();
            self.queued_savepoints
                .extend(self.control.take_savepoint_requests());
            if self.pending.len() < self.config.max_concurrent.max(1) {
                if let Some(request) = self.queued_savepoints.pop_front() {
                    self.trigger_savepoint(request);
                }
            }
            self.maybe_trigger();
        }
        // Acknowledgements that arrived while the job was ending still count.
        while let Ok(message) = self.messages.try_recv() {
            self.on_message(message);
        }
        self.signals.closed.store(true, Ordering::Release);
        for id in self.pending.keys().copied().collect::<Vec<_>>() {
            self.abort(id, "the job ended before every task acknowledged it");
        }
        for (dir, answer) in self.queued_savepoints.drain(..) {
            let _ = answer.send(Err(Error::Checkpoint {
                location: dir.display().to_string(),
                message: "the job ended before the savepoint could be taken".into(),
            }));
        }
        self.report
    }

    fn now_nanos(&self) -> u64 {
        self.clock.monotonic_nanos()
    }

    /// Whether every source task finished (no barrier can be injected any more).
    fn sources_done(&self) -> bool {
        self.facts
            .sources
            .iter()
            .all(|t| self.finished.contains_key(t))
    }

    fn maybe_trigger(&mut self) {
        if self.stopped || self.pending.len() >= self.config.max_concurrent.max(1) {
            return;
        }
        if self.sources_done() {
            self.maybe_complete_final();
            return;
        }
        let now = self.now_nanos();
        let interval = self.config.interval.as_nanos() as u64;
        if self
            .last_trigger_nanos
            .is_some_and(|t| now.saturating_sub(t) < interval)
        {
            return;
        }
        let pause = self.config.min_pause.as_nanos() as u64;
        if self
            .last_complete_nanos
            .is_some_and(|t| now.saturating_sub(t) < pause)
        {
            return;
        }
        self.trigger(now, None);
    }

    /// Takes a savepoint now (whatever the interval), unless tasks finished already.
    fn trigger_savepoint(&mut self, request: SavepointRequest) {
        let occupied = std::fs::read_dir(&request.0).is_ok_and(|mut d| d.next().is_some());
        if occupied {
            let _ = request.1.send(Err(Error::Checkpoint {
                location: request.0.display().to_string(),
                message: "the savepoint directory is not empty; give every savepoint a directory of its own".into(),
            }));
            return;
        }
        if self.stopped || self.sources_done() {
            let _ = request.1.send(Err(Error::Checkpoint {
                location: request.0.display().to_string(),
                message: "the job's input ended; a savepoint needs a running source".into(),
            }));
            return;
        }
        let now = self.now_nanos();
        self.trigger(now, Some(request));
    }

    fn trigger(&mut self, now: u64, savepoint: Option<SavepointRequest>) {
        let id = self.next_id;
        self.next_id += 1;
        self.last_trigger_nanos = Some(now);
        let at = self.clock.now_ms();
        // Savepoints are always aligned: they hold no in-flight data, so they restore
        // at any parallelism.
        let unaligned = self.config.unaligned && savepoint.is_none();
        self.pending.insert(
            id,
            Pending {
                triggered_at_ms: at,
                started_nanos: now,
                acked: HashSet::new(),
                files: Vec::new(),
                failed: false,
                savepoint,
                unaligned,
                state_bytes: 0,
                in_flight_bytes: 0,
            },
        );
        self.signals.publish_trigger(id, at, unaligned);
        tracing::debug!(job = %self.facts.job, checkpoint = id, "checkpoint triggered");
        // Finished tasks acknowledge it at once with their final state.
        let finals: Vec<(usize, Vec<SubtaskSnapshot>)> =
            self.finished.iter().map(|(t, s)| (*t, s.clone())).collect();
        for (task, snapshots) in finals {
            self.acknowledge(id, task, &snapshots);
        }
    }

    fn on_message(&mut self, message: TaskMessage) {
        match message {
            TaskMessage::Ack {
                task,
                id,
                snapshots,
            } => {
                let last = self.last_acked.entry(task).or_default();
                *last = (*last).max(id.0);
                self.acknowledge(id.0, task, &snapshots);
            }
            TaskMessage::Finished {
                task,
                snapshots: None,
                ..
            } => {
                self.stopped = true;
                // Tasks waiting for a checkpoint with their final state will not get one:
                // the stopped job resumes from its last checkpoint.
                self.signals.closed.store(true, Ordering::Release);
                let stuck: Vec<u64> = self
                    .pending
                    .iter()
                    .filter(|(_, p)| !p.acked.contains(&task))
                    .map(|(id, _)| *id)
                    .collect();
                for id in stuck {
                    self.abort(id, "a task stopped before acknowledging it");
                }
            }
            TaskMessage::Finished {
                task,
                snapshots: Some(snapshots),
                reply,
            } => {
                // Every checkpoint newer than the last this task acknowledged gets its
                // final state. An older one it skipped (a source injects only the latest
                // trigger) cannot: the final state holds records after its barrier.
                let last_acked = self.last_acked.get(&task).copied().unwrap_or(0);
                let open: Vec<u64> = self
                    .pending
                    .iter()
                    .filter(|(id, p)| **id > last_acked && !p.acked.contains(&task))
                    .map(|(id, _)| *id)
                    .collect();
                let target = open.first().copied().unwrap_or(self.next_id);
                self.finished.insert(task, snapshots.clone());
                self.final_targets.insert(task, target);
                for id in open {
                    self.acknowledge(id, task, &snapshots);
                }
                if let Some(reply) = reply {
                    let _ = reply.send(target);
                }
            }
        }
    }

    /// Task `task` acknowledged checkpoint `id` with `snapshots`.
    fn acknowledge(&mut self, id: u64, task: usize, snapshots: &[SubtaskSnapshot]) {
        let Some(pending) = self.pending.get_mut(&id) else {
            return;
        };
        for snapshot in snapshots.iter().filter(|s| !s.state.is_empty()) {
            let state = &snapshot.state;
            pending.state_bytes += state.keyed.iter().map(|(_, b)| b.len() as u64).sum::<u64>()
                + state.operator.as_ref().map_or(0, |b| b.len() as u64);
            pending.in_flight_bytes += state
                .channels
                .iter()
                .flat_map(|c| &c.batches)
                .map(|b| b.len() as u64)
                .sum::<u64>();
            match self.storage.write_state(CheckpointId(id), snapshot) {
                Ok(file) => pending.files.push(file),
                Err(e) => {
                    tracing::warn!(checkpoint = id, error = %e, "cannot write checkpoint state");
                    pending.failed = true;
                }
            }
        }
        pending.acked.insert(task);
        if pending.failed {
            self.abort(id, "a state file could not be written");
        } else if pending.acked.len() >= self.facts.tasks {
            self.complete(id);
        }
    }

    /// When every task finished and some final state is in no completed checkpoint yet,
    /// completes a last checkpoint from the final states alone (no barrier needed).
    fn maybe_complete_final(&mut self) {
        let all_finished = self.finished.len() >= self.facts.tasks;
        let needed = self
            .final_targets
            .values()
            .any(|&target| target > self.last_completed);
        if !all_finished || !needed || !self.pending.is_empty() {
            return;
        }
        let now = self.now_nanos();
        self.trigger(now, None);
    }

    fn abort_timed_out(&mut self) {
        let now = self.now_nanos();
        let timeout = self.config.timeout.as_nanos() as u64;
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_sub(p.started_nanos) > timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.abort(id, "it timed out");
        }
    }

    fn abort(&mut self, id: u64, why: &str) {
        if let Some(pending) = self.pending.remove(&id) {
            tracing::info!(job = %self.facts.job, checkpoint = id, "checkpoint aborted: {why}");
            if let Some((dir, tx)) = pending.savepoint {
                let _ = tx.send(Err(Error::Checkpoint {
                    location: dir.display().to_string(),
                    message: format!("the savepoint was aborted: {why}"),
                }));
            }
            self.report.aborted += 1;
            if let Err(e) = self.storage.delete(CheckpointId(id)) {
                tracing::warn!(checkpoint = id, error = %e, "cannot delete an aborted checkpoint");
            }
        }
    }

    /// Copies checkpoint `meta` into a self-contained savepoint under `dir`.
    fn copy_to_savepoint(&self, meta: &CheckpointMetadata, dir: &Path) -> Result<PathBuf> {
        let target = CheckpointStorage::local(dir, &self.facts.job)?;
        let mut files = Vec::new();
        for file in &meta.files {
            let state = self.storage.read_state(file)?;
            files.push(target.write_state(
                CheckpointId(meta.id),
                &SubtaskSnapshot {
                    operator: OperatorId(file.operator),
                    subtask: file.subtask,
                    state,
                },
            )?);
        }
        target.complete(&CheckpointMetadata {
            files,
            ..meta.clone()
        })?;
        Ok(dir.to_path_buf())
    }

    fn complete(&mut self, id: u64) {
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        let meta = CheckpointMetadata {
            job: self.facts.job.clone(),
            id,
            triggered_at_ms: pending.triggered_at_ms,
            max_parallelism: self.facts.max_parallelism,
            parallelism: self.facts.parallelism.clone(),
            files: pending.files,
        };
        let savepoint = pending.savepoint.is_some();
        if let Some((dir, tx)) = pending.savepoint {
            let answer = self.copy_to_savepoint(&meta, &dir);
            if let Ok(path) = &answer {
                tracing::info!(job = %self.facts.job, checkpoint = id, path = %path.display(), "savepoint written");
            }
            let _ = tx.send(answer);
        }
        if let Err(e) = self.storage.complete(&meta) {
            tracing::warn!(checkpoint = id, error = %e, "cannot complete checkpoint");
            self.report.aborted += 1;
            let _ = self.storage.delete(CheckpointId(id));
            return;
        }
        // Older checkpoints still in progress cannot be worth more than this one.
        for older in self
            .pending
            .keys()
            .copied()
            .filter(|o| *o < id)
            .collect::<Vec<_>>()
        {
            self.abort(older, "a newer checkpoint completed");
        }
        let took = Duration::from_nanos(self.now_nanos().saturating_sub(pending.started_nanos));
        tracing::info!(job = %self.facts.job, checkpoint = id, ?took, "checkpoint completed");
        self.last_complete_nanos = Some(self.now_nanos());
        self.last_completed = id;
        self.signals.completed.store(id, Ordering::Release);
        self.report.completed.push(CheckpointId(id));
        self.report.stats.push(CheckpointStats {
            id: CheckpointId(id),
            duration: took,
            state_bytes: pending.state_bytes,
            in_flight_bytes: pending.in_flight_bytes,
            unaligned: pending.unaligned,
            savepoint,
        });
        self.retained.push_back(CheckpointId(id));
        while self.retained.len() > self.config.retained.max(1) {
            if let Some(old) = self.retained.pop_front() {
                if let Err(e) = self.storage.delete(old) {
                    tracing::warn!(checkpoint = old.0, error = %e, "cannot delete an old checkpoint");
                }
            }
        }
    }
}
