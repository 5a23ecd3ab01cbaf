//! The source contract: how records enter a job.
//!
//! A [`Source`] describes an input and creates one [`SourceReader`] per parallel subtask;
//! each reader reads its share (its *splits*: file ranges, sequence ranges, partitions).
//! Readers are polled by the source task, which injects control events between polls
//! (end of stream now; checkpoint barriers later), so a reader never blocks for long.

use sluice_core::{CheckpointId, Records};

use crate::error::Result;
use crate::operator::OperatorContext;

/// Whether a source ends by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundedness {
    /// The source ends when its input is exhausted (a file, a collection).
    Bounded,
    /// The source runs until the job is stopped or cancelled (a socket, a log).
    Unbounded,
}

/// What a poll of a [`SourceReader`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourcePoll {
    /// Records were added (or may be), more may follow at once: poll again.
    Ready,
    /// Nothing is available right now: the task flushes its output and polls again soon.
    Pending,
    /// This reader's input is exhausted; records added by this poll still count.
    Finished,
}

/// An input of a job; shared by all subtasks, so it creates readers.
pub trait Source<T>: Send + Sync + 'static {
    /// Whether the input ends by itself.
    fn boundedness(&self) -> Boundedness;

    /// The highest parallelism this source supports (`Some(1)` for a socket); default none.
    fn max_parallelism(&self) -> Option<u32> {
        None
    }

    /// Creates the reader of subtask `ctx.location.subtask` out of `ctx.location.parallelism`.
    ///
    /// # Errors
    /// [`crate::Error::User`] when the input cannot be opened; the message should say what
    /// to fix (a missing file, an unreachable address).
    fn create_reader(&self, ctx: &OperatorContext) -> Result<Box<dyn SourceReader<T>>>;
}

/// Reads one subtask's share of a source.
pub trait SourceReader<T>: Send {
    /// Appends up to `max_records` records to `out`. Should not block for more than about
    /// 100 ms, so that stop, cancel and (later) checkpoint barriers are not delayed.
    ///
    /// # Errors
    /// [`crate::Error::User`] for unreadable input; the job fails with the source named.
    fn poll(&mut self, out: &mut Records<T>, max_records: usize) -> Result<SourcePoll>;

    /// The splits this reader reads (file ranges, partitions, generated streams), for
    /// per-split watermarks; reported once after the reader is created. Default: none
    /// (the reader counts as one split).
    fn splits(&self) -> Vec<u32> {
        Vec::new()
    }

    /// The split the records of the last poll came from; a poll that returns records of
    /// several splits must not report one. Default: `None` (one split).
    fn last_split(&self) -> Option<u32> {
        None
    }

    /// Splits that ended since the last call (they stop holding the watermark back).
    /// Default: none.
    fn take_finished_splits(&mut self) -> Vec<u32> {
        Vec::new()
    }

    /// The reader's position (what it has read so far), for checkpoint `checkpoint`
    /// taken after the records of the last poll. A reader created with `ctx.restored`
    /// holding this position must go on from there. `None` (the default): the source
    /// cannot rewind, so a restored job may lose or repeat its records.
    ///
    /// # Errors
    /// [`crate::Error::User`] when the position cannot be taken.
    fn snapshot_position(&mut self, checkpoint: CheckpointId) -> Result<Option<Vec<u8>>> {
        let _ = checkpoint;
        Ok(None)
    }

    /// A checkpoint that includes the position of [`SourceReader::snapshot_position`]
    /// completed (a Kafka reader commits its offsets to the group here). Default: nothing.
    ///
    /// # Errors
    /// [`crate::Error::User`] when acting on it fails.
    fn notify_checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<()> {
        let _ = checkpoint;
        Ok(())
    }
}

/// Encodes a position made of integers (an index, offsets) for
/// [`SourceReader::snapshot_position`].
pub fn encode_position(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The position a reader restores from: what [`encode_position`] wrote for this subtask
/// in the checkpoint the job restarts from, or `None` on a fresh start.
///
/// # Errors
/// [`crate::Error::User`] when the stored position is not `expected` integers.
pub fn restored_position(ctx: &OperatorContext, expected: usize) -> Result<Option<Vec<u64>>> {
    let Some(bytes) = ctx.restored.as_ref().and_then(|r| r.operator.as_ref()) else {
        return Ok(None);
    };
    if bytes.len() != expected * 8 {
        return Err(crate::Error::User(
            format!(
                "the checkpoint holds a position of {} bytes for source `{}`, expected {}; was the job changed?",
                bytes.len(),
                ctx.location.operator,
                expected * 8
            )
            .into(),
        ));
    }
    Ok(Some(
        bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                u64::from_le_bytes(b)
            })
            .collect(),
    ))
}
