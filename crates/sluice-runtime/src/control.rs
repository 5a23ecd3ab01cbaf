//! [`JobControl`]: how a running job is stopped or cancelled from outside its tasks.
//!
//! *Stop* is graceful: sources stop reading and send end-of-stream, so every record already
//! read is processed and sinks flush. *Cancel* is prompt: tasks stop taking input (what is
//! queued for them is dropped) and blocked sends and receives notice within one polling
//! sleep (at most 2 ms). Invariant: once cancelled, a job never becomes un-cancelled.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};

use crate::error::Result;

/// A request for a savepoint into a directory, answered with the savepoint's path.
pub(crate) type SavepointRequest = (PathBuf, mpsc::Sender<Result<PathBuf>>);

/// Shared stop and cancel signals of one job run.
///
/// Tasks waiting on a channel poll with short sleeps and look at these flags between them,
/// so a cancel reaches every task within one polling sleep.
#[derive(Debug, Default)]
pub struct JobControl {
    stop: AtomicBool,
    cancelled: AtomicBool,
    /// The control of the whole job when this one controls one attempt of it (a restart
    /// gets a fresh attempt control; stopping or cancelling the job reaches every attempt).
    parent: Option<Arc<JobControl>>,
    /// Savepoints asked for and not yet taken up by the checkpoint coordinator.
    savepoints: Mutex<Vec<SavepointRequest>>,
}

impl JobControl {
    /// A fresh control, neither stopped nor cancelled.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A control for one attempt of the job controlled by `parent`: cancelling the
    /// attempt (a task failed) leaves the job alive for a restart.
    pub fn child(parent: &Arc<JobControl>) -> Arc<Self> {
        Arc::new(JobControl {
            stop: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
            parent: Some(Arc::clone(parent)),
            savepoints: Mutex::new(Vec::new()),
        })
    }

    /// Asks sources to stop reading and end their streams; the job then drains.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Whether a graceful stop was requested.
    pub fn is_stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
            || self.parent.as_ref().is_some_and(|p| p.is_stop_requested())
    }

    /// Asks for a savepoint written under `dir`: a checkpoint taken now, kept apart from
    /// the job's checkpoints and never deleted by Sluice, that a job can start from (with
    /// another parallelism for keyed operators). The answer arrives on the returned
    /// channel once the savepoint is complete (or failed); a job without checkpointing
    /// never answers (the sender is dropped).
    pub fn request_savepoint(&self, dir: PathBuf) -> mpsc::Receiver<Result<PathBuf>> {
        let (tx, rx) = mpsc::channel();
        match &self.parent {
            Some(parent) => parent.request_savepoint_with(dir, tx),
            None => self.request_savepoint_with(dir, tx),
        }
        rx
    }

    fn request_savepoint_with(&self, dir: PathBuf, tx: mpsc::Sender<Result<PathBuf>>) {
        self.savepoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((dir, tx));
    }

    /// Takes the pending savepoint requests (of the whole job).
    pub(crate) fn take_savepoint_requests(&self) -> Vec<SavepointRequest> {
        if let Some(parent) = &self.parent {
            return parent.take_savepoint_requests();
        }
        std::mem::take(
            &mut *self
                .savepoints
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Cancels the job: every task exits as soon as it can.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.stop();
    }

    /// Whether the job was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
            || self.parent.as_ref().is_some_and(|p| p.is_cancelled())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_implies_stop_and_is_final() {
        let control = JobControl::new();
        assert!(!control.is_stop_requested());
        control.stop();
        assert!(control.is_stop_requested() && !control.is_cancelled());
        control.cancel();
        assert!(control.is_cancelled());
    }
}
