//! [`JobControl`]: how a running job is stopped or cancelled from outside its tasks.
//!
//! *Stop* is graceful: sources stop reading and send end-of-stream, so every record already
//! read is processed and sinks flush. *Cancel* is prompt: tasks stop taking input (what is
//! queued for them is dropped) and blocked sends and receives notice within one polling
//! sleep (at most 2 ms). Invariant: once cancelled, a job never becomes un-cancelled.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
