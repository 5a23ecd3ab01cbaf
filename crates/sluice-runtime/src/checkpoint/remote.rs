//! Checkpoints of a job whose tasks run in other processes than its coordinator.
//!
//! In a cluster the [`CheckpointCoordinator`] runs in the coordinator process and the
//! tasks in workers. Neither side changes: a worker gives its tasks a
//! [`WorkerCheckpointing`], which mirrors the coordinator's signals (trigger, completion,
//! close) as the control plane reports them and hands out what the tasks send
//! ([`TaskReport`]) for the control plane to carry; the coordinator process starts the
//! coordinator with [`start_coordinator`] and feeds it the reports through a
//! [`CheckpointEndpoint`]. Invariant: task numbers are the same on both sides (chain by
//! chain, subtask by subtask, over the whole plan).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::Duration;

use sluice_core::{CheckpointId, Clock};

use super::coordinator::{CheckpointCoordinator, CoordinatorReport, JobFacts};
use super::storage::CheckpointStorage;
use super::{
    CheckpointConfig, CheckpointSignals, CheckpointingMode, SubtaskSnapshot, TaskCheckpointing,
    TaskMessage,
};
use crate::control::JobControl;
use crate::error::{Error, Result};

/// What a task sent its coordinator, to be carried to the coordinator process.
#[derive(Debug)]
pub enum TaskReport {
    /// The task took its part of checkpoint `id`.
    Ack {
        /// The task's number.
        task: usize,
        /// The checkpoint.
        id: CheckpointId,
        /// What its operators wrote.
        snapshots: Vec<SubtaskSnapshot>,
    },
    /// The task's input ended (with its final state), or it was stopped (without).
    Finished {
        /// The task's number.
        task: usize,
        /// The final state of its operators, when its input ended.
        snapshots: Option<Vec<SubtaskSnapshot>>,
        /// Where the coordinator's answer goes: the first checkpoint that includes the
        /// final state (present with `snapshots`).
        reply: Option<FinishedReply>,
    },
}

/// The answer a finished task waits for.
#[derive(Debug)]
pub struct FinishedReply(mpsc::Sender<u64>);

impl FinishedReply {
    /// Hands the task the first checkpoint that includes its final state.
    pub fn send(self, checkpoint: u64) {
        let _ = self.0.send(checkpoint);
    }
}

/// The checkpoint side of the tasks one worker runs for one attempt of a job.
#[derive(Debug)]
pub struct WorkerCheckpointing {
    mode: CheckpointingMode,
    signals: Arc<CheckpointSignals>,
    messages: mpsc::Sender<TaskMessage>,
    inbox: Mutex<mpsc::Receiver<TaskMessage>>,
    last_completed: u64,
}

impl WorkerCheckpointing {
    /// Checkpointing in `mode`, after checkpoint `last_completed` (the one restored from,
    /// or the latest completed before the attempt).
    pub fn new(mode: CheckpointingMode, last_completed: u64) -> Self {
        let signals = Arc::new(CheckpointSignals::default());
        signals.completed.store(last_completed, Ordering::Release);
        signals.publish_trigger(last_completed, 0, false);
        let (messages, inbox) = mpsc::channel();
        WorkerCheckpointing {
            mode,
            signals,
            messages,
            inbox: Mutex::new(inbox),
            last_completed,
        }
    }

    /// The coordinator triggered checkpoint `id` at `at_ms` (processing time).
    pub fn trigger(&self, id: u64, at_ms: i64, unaligned: bool) {
        if id > self.signals.latest_trigger().0 {
            self.signals.publish_trigger(id, at_ms, unaligned);
        }
    }

    /// Checkpoint `id` completed.
    pub fn complete(&self, id: u64) {
        self.signals.completed.fetch_max(id, Ordering::AcqRel);
    }

    /// No checkpoint will complete any more.
    pub fn close(&self) {
        self.signals.closed.store(true, Ordering::Release);
    }

    /// The next report of a task, waiting at most `timeout`.
    pub fn next_report(&self, timeout: Duration) -> Option<TaskReport> {
        let inbox = self.inbox.lock().unwrap_or_else(PoisonError::into_inner);
        let message = inbox.recv_timeout(timeout).ok()?;
        Some(match message {
            TaskMessage::Ack {
                task,
                id,
                snapshots,
            } => TaskReport::Ack {
                task,
                id,
                snapshots,
            },
            TaskMessage::Finished {
                task,
                snapshots,
                reply,
            } => TaskReport::Finished {
                task,
                snapshots,
                reply: reply.map(FinishedReply),
            },
        })
    }

    /// The connection of task number `task` (chain by chain, subtask by subtask).
    pub(crate) fn task_link(&self, task: usize) -> TaskCheckpointing {
        TaskCheckpointing {
            task,
            mode: self.mode,
            signals: Arc::clone(&self.signals),
            messages: self.messages.clone(),
            collector: Arc::default(),
            notified: self.last_completed,
        }
    }
}

/// The coordinator process's handle on a running [`CheckpointCoordinator`]: feeds it the
/// tasks' reports and reads the signals the workers mirror.
#[derive(Debug)]
pub struct CheckpointEndpoint {
    signals: Arc<CheckpointSignals>,
    messages: Mutex<mpsc::Sender<TaskMessage>>,
}

impl CheckpointEndpoint {
    fn send(&self, message: TaskMessage) {
        let _ = self
            .messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(message);
    }

    /// Task `task` acknowledged checkpoint `id` with `snapshots`.
    pub fn ack(&self, task: usize, id: CheckpointId, snapshots: Vec<SubtaskSnapshot>) {
        self.send(TaskMessage::Ack {
            task,
            id,
            snapshots,
        });
    }

    /// Task `task` finished; with its final state, the answer (the first checkpoint
    /// that includes it) arrives on the returned receiver.
    pub fn finished(
        &self,
        task: usize,
        snapshots: Option<Vec<SubtaskSnapshot>>,
    ) -> Option<mpsc::Receiver<u64>> {
        let (reply, answer) = match snapshots {
            Some(_) => {
                let (tx, rx) = mpsc::channel();
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        self.send(TaskMessage::Finished {
            task,
            snapshots,
            reply,
        });
        answer
    }

    /// The latest triggered checkpoint: its id, trigger time (ms) and whether it is
    /// unaligned.
    pub fn triggered(&self) -> (u64, i64, bool) {
        let (id, unaligned) = self.signals.latest_trigger();
        let at = self.signals.triggered_at.load(Ordering::Acquire) as i64;
        (id, at, unaligned)
    }

    /// The latest completed checkpoint (0: none).
    pub fn completed(&self) -> u64 {
        self.signals.completed.load(Ordering::Acquire)
    }

    /// Whether no checkpoint will complete any more.
    pub fn closed(&self) -> bool {
        self.signals.closed.load(Ordering::Acquire)
    }
}

/// A checkpoint coordinator running on its own thread.
#[derive(Debug)]
pub struct RunningCoordinator {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<CoordinatorReport>,
}

impl RunningCoordinator {
    /// Stops the coordinator (pending checkpoints are aborted) and returns what it did.
    ///
    /// # Errors
    /// [`Error::Internal`] when its thread panicked.
    pub fn finish(self) -> Result<CoordinatorReport> {
        self.stop.store(true, Ordering::Release);
        self.thread
            .join()
            .map_err(|_| Error::Internal("the checkpoint coordinator panicked".into()))
    }
}

/// Starts the checkpoint coordinator of one attempt of a job whose tasks run elsewhere,
/// numbering checkpoints after the latest completed one in `storage` and after
/// `restored` (the checkpoint the attempt starts from).
///
/// # Errors
/// When `storage` cannot be listed or the thread cannot start.
pub fn start_coordinator(
    config: CheckpointConfig,
    facts: JobFacts,
    storage: Arc<CheckpointStorage>,
    clock: Arc<dyn Clock>,
    control: Arc<JobControl>,
    restored: u64,
) -> Result<(CheckpointEndpoint, RunningCoordinator)> {
    let existing = storage.completed()?;
    let signals = Arc::new(CheckpointSignals::default());
    let (tx, rx) = mpsc::channel();
    let coordinator = CheckpointCoordinator::new(
        config,
        facts,
        storage,
        Arc::clone(&signals),
        rx,
        clock,
        existing,
        restored,
        control,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("checkpoint coordinator".into())
            .spawn(move || coordinator.run(&stop))
            .map_err(|e| Error::Internal(format!("cannot start the checkpoint coordinator: {e}")))?
    };
    Ok((
        CheckpointEndpoint {
            signals,
            messages: Mutex::new(tx),
        },
        RunningCoordinator { stop, thread },
    ))
}
