//! [`JobHandle`]: control over a job started with `execute_async`.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use sluice_runtime::{Error, JobControl, JobResult, Result};

/// A running job: stop it, cancel it, or wait for it.
#[derive(Debug)]
pub struct JobHandle {
    control: Arc<JobControl>,
    thread: std::io::Result<JoinHandle<Result<JobResult>>>,
    checkpoint_timeout: Option<Duration>,
}

impl JobHandle {
    pub(crate) fn new(
        control: Arc<JobControl>,
        thread: std::io::Result<JoinHandle<Result<JobResult>>>,
        checkpoint_timeout: Option<Duration>,
    ) -> Self {
        JobHandle {
            control,
            thread,
            checkpoint_timeout,
        }
    }

    /// Takes a savepoint into the directory `dir` and waits for it: a self-contained copy
    /// of the job's state that a job can start from (`CheckpointConfig::restore_from`),
    /// also with another parallelism for its keyed operators. The job goes on running.
    ///
    /// # Errors
    /// [`Error::InvalidJob`] when the job takes no checkpoints; [`Error::Checkpoint`] when
    /// the savepoint could not be taken or written.
    pub fn trigger_savepoint(&self, dir: impl Into<PathBuf>) -> Result<PathBuf> {
        let dir = dir.into();
        let Some(timeout) = self.checkpoint_timeout else {
            return Err(Error::InvalidJob(
                "savepoints need checkpointing: call `enable_checkpointing` before `execute_async`"
                    .into(),
            ));
        };
        let answer = self.control.request_savepoint(dir.clone());
        answer.recv_timeout(timeout).unwrap_or_else(|_| {
            Err(Error::Checkpoint {
                location: dir.display().to_string(),
                message:
                    "no savepoint was taken before the checkpoint timeout (has the job ended?)"
                        .into(),
            })
        })
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
