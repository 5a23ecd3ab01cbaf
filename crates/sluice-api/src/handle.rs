//! [`JobHandle`]: control over a job started with `execute_async`.

use std::sync::Arc;
use std::thread::JoinHandle;

use sluice_runtime::{Error, JobControl, JobResult, Result};

/// A running job: stop it, cancel it, or wait for it.
#[derive(Debug)]
pub struct JobHandle {
    control: Arc<JobControl>,
    thread: std::io::Result<JoinHandle<Result<JobResult>>>,
}

impl JobHandle {
    pub(crate) fn new(
        control: Arc<JobControl>,
        thread: std::io::Result<JoinHandle<Result<JobResult>>>,
    ) -> Self {
        JobHandle { control, thread }
    }

    /// Stops the sources; the job processes what they read and ends.
    pub fn stop(&self) {
        self.control.stop();
    }

    /// Cancels the job at once.
    pub fn cancel(&self) {
        self.control.cancel();
    }

    /// Whether the job ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().map_or(true, |t| t.is_finished())
    }

    /// Waits for the job to end.
    ///
    /// # Errors
    /// The job's failure, or [`Error::Internal`] if its thread could not start or panicked.
    pub fn join(self) -> Result<JobResult> {
        match self.thread {
            Ok(t) => t
                .join()
                .unwrap_or_else(|_| Err(Error::Internal("the job thread panicked".into()))),
            Err(e) => Err(Error::Internal(format!(
                "could not start the job thread: {e}"
            ))),
        }
    }
}
