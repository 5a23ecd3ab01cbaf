//! What the coordinator knows: registered workers and their slots, jobs, and running
//! deployments. One lock guards it all; it is held for bookkeeping only, never across I/O
//! that waits.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;
use std::sync::Arc;

use sluice_runtime::checkpoint::remote::CheckpointEndpoint;
use sluice_runtime::JobControl;
use tokio::sync::mpsc::UnboundedSender;

use crate::job::{JobInfo, JobSubmission};
use crate::rpc::messages::{AttemptReport, Command};

/// A registered worker.
pub(crate) struct WorkerEntry {
    pub(crate) name: String,
    pub(crate) slots: u32,
    pub(crate) data_address: String,
    /// Monotonic time (ms) of its last heartbeat.
    pub(crate) last_heartbeat_ms: u64,
    /// Its command stream, once it opened one.
    pub(crate) commands: Option<UnboundedSender<Result<Command, tonic::Status>>>,
    /// Slots allocated per job.
    pub(crate) allocated: BTreeMap<u64, u32>,
}

impl WorkerEntry {
    /// Slots not allocated; none until the worker opened its command stream (a
    /// deployment sent before would be lost).
    pub(crate) fn free(&self) -> u32 {
        if self.commands.as_ref().is_none_or(|c| c.is_closed()) {
            return 0;
        }
        self.slots
            .saturating_sub(self.allocated.values().sum::<u32>())
    }
}

/// What a job's master thread is told.
#[derive(Debug)]
pub(crate) enum JobEvent {
    /// A worker's tasks of a deployment ended.
    Report(AttemptReport),
    /// A worker was declared lost.
    WorkerLost(u64),
    /// A user cancelled the job.
    Cancel,
}

/// A job.
pub(crate) struct JobEntry {
    pub(crate) info: JobInfo,
    pub(crate) submission: JobSubmission,
    pub(crate) events: mpsc::Sender<JobEvent>,
    /// The job's control: savepoint requests reach the running attempt's coordinator.
    pub(crate) control: Arc<JobControl>,
}

/// A running deployment.
pub(crate) struct DeploymentEntry {
    pub(crate) job_id: u64,
    pub(crate) endpoint: Option<Arc<CheckpointEndpoint>>,
}

/// The coordinator's registry.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) next_worker: u64,
    pub(crate) next_job: u64,
    pub(crate) next_deployment: u64,
    pub(crate) workers: BTreeMap<u64, WorkerEntry>,
    pub(crate) jobs: BTreeMap<u64, JobEntry>,
    pub(crate) deployments: HashMap<u64, DeploymentEntry>,
}

impl State {
    /// Allocates `needed` slots to `job`, spreading them over the workers (each slot goes
    /// to the worker with the most free slots); returns each slot's worker and data
    /// address, or `None` (allocating nothing) when there are not enough free slots.
    pub(crate) fn allocate(&mut self, job: u64, needed: u32) -> Option<Vec<(u64, String)>> {
        let free: u32 = self.workers.values().map(WorkerEntry::free).sum();
        if free < needed {
            return None;
        }
        let mut slots = Vec::with_capacity(needed as usize);
        for _ in 0..needed {
            let (&id, worker) = self
                .workers
                .iter_mut()
                .filter(|(_, w)| w.free() > 0)
                .max_by_key(|(id, w)| (w.free(), std::cmp::Reverse(**id)))?;
            *worker.allocated.entry(job).or_default() += 1;
            slots.push((id, worker.data_address.clone()));
        }
        Some(slots)
    }

    /// Frees every slot of `job`.
    pub(crate) fn release(&mut self, job: u64) {
        for worker in self.workers.values_mut() {
            worker.allocated.remove(&job);
        }
    }

    /// Free slots over all workers.
    pub(crate) fn free_slots(&self) -> u32 {
        self.workers.values().map(WorkerEntry::free).sum()
    }

    /// Sends `command` to worker `id`; false when it has no open command stream.
    pub(crate) fn send(&self, id: u64, command: Command) -> bool {
        self.workers
            .get(&id)
            .and_then(|w| w.commands.as_ref())
            .is_some_and(|tx| tx.send(Ok(command)).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(slots: u32, addr: &str) -> WorkerEntry {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        // The receiving end stays open for the test's duration.
        std::mem::forget(rx);
        WorkerEntry {
            name: addr.into(),
            slots,
            data_address: addr.into(),
            last_heartbeat_ms: 0,
            commands: Some(tx),
            allocated: BTreeMap::new(),
        }
    }

    #[test]
    fn slots_spread_over_workers_and_come_back() {
        let mut state = State::default();
        state.workers.insert(1, worker(2, "a"));
        state.workers.insert(2, worker(2, "b"));
        state.workers.insert(3, worker(2, "c"));
        let slots = state.allocate(7, 3).unwrap();
        let mut workers: Vec<u64> = slots.iter().map(|(w, _)| *w).collect();
        workers.sort_unstable();
        assert_eq!(workers, vec![1, 2, 3], "one slot on each worker");
        assert_eq!(state.free_slots(), 3);
        assert!(
            state.allocate(8, 4).is_none(),
            "not enough: nothing allocated"
        );
        assert_eq!(state.free_slots(), 3);
        state.release(7);
        assert_eq!(state.free_slots(), 6);
        state.workers.get_mut(&3).unwrap().commands = None;
        assert_eq!(
            state.free_slots(),
            4,
            "a worker without a command stream offers nothing"
        );
    }
}
