//! Tasks: one running subtask of an operator chain, on its own thread.
//!
//! A [`SourceTask`] polls a source reader and pushes batches into its chain; a
//! [`OneInputTask`] reads its [`InputGate`](crate::channel::InputGate), combines watermarks
//! over channels, and pushes events into its chain. Both end by sending end-of-stream
//! downstream once their input is exhausted or the job is stopped.

mod one_input;
mod source_task;

pub use one_input::OneInputTask;
pub use source_task::SourceTask;

use crate::error::{Result, TaskLocation};

/// A deployable unit of work.
pub trait Task: Send {
    /// Where this task runs (its head operator and subtask).
    fn location(&self) -> &TaskLocation;

    /// Runs the task to completion on the calling thread.
    ///
    /// # Errors
    /// The task's failure, attributed to an operator; [`crate::Error::Cancelled`] when the
    /// job was cancelled.
    fn run(self: Box<Self>) -> Result<()>;
}
