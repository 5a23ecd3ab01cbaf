//! The exactly-once writer of [`super::KafkaSink`]: a write-ahead log in the checkpoint,
//! one Kafka transaction per completed checkpoint, and a commit marker that makes the
//! commit after a crash decidable.
//!
//! Between barriers the writer keeps the serialized records in memory. At a barrier
//! (pre-commit) they become the log entry of that checkpoint, and every entry not yet
//! committed is the writer's checkpointed state. When checkpoint `n` completes, the
//! entries up to `n` are written, each in a transaction of the writer's transactional id
//! that also commits offset `n` for partition 0 of the topic in the writer's marker
//! group (`<transactional id>-commits`): the data and the marker become visible
//! together or not at all.
//!
//! When the input ends, the records since the last barrier become a final entry, part of
//! the task's final state; it commits once a checkpoint holding that state completed
//! (the runtime keeps the task until then), so a failure of another task in between
//! restores the entry instead of writing the records twice.
//!
//! Restore: `init_transactions` fences older producers with the same id and aborts a
//! transaction they left open; the marker then says which entries of the restored state
//! committed before the crash (id ≤ marker): the others are written again, in order.
//! Each entry is thus committed exactly once, whether the crash came before the
//! transaction, during it, or between its commit and the checkpoint's bookkeeping.
//!
//! Transactions run on a committer thread ([`super::committer`]) so the task goes on
//! processing while one commits; entries leave the checkpointed state only once the
//! committer confirmed them, and the final entry is awaited before the task ends.

use std::sync::Arc;
use std::time::Duration;

use sluice_core::{CheckpointId, Records};
use sluice_runtime::sink::SinkWriter;
use sluice_runtime::{OperatorContext, Result};

use super::committer::{Committer, LoggedRecord, TxnClient};
use super::sink::{RecordEncoder, Serializer};
use super::{user_error, KafkaProperties};

/// What the exactly-once writer of one subtask needs.
pub(crate) struct TransactionalConfig<'a, T> {
    pub(crate) properties: &'a KafkaProperties,
    pub(crate) topic: &'a str,
    pub(crate) prefix: &'a str,
    pub(crate) serializer: Serializer<T>,
    pub(crate) partitions: i32,
    pub(crate) round_robin: bool,
    pub(crate) timeout: Duration,
}

pub(crate) struct TransactionalWriter<T> {
    committer: Committer,
    encoder: RecordEncoder<T>,
    /// Records since the last barrier.
    current: Vec<LoggedRecord>,
    /// Pre-committed entries the committer has not confirmed, by checkpoint id
    /// (ascending).
    pending: Vec<(u64, Arc<Vec<LoggedRecord>>)>,
    /// The highest entry handed to the committer.
    queued: u64,
    /// The input ended: the last records wait, as the final entry, for the checkpoint
    /// that includes the task's final state.
    finished: bool,
    /// The last checkpoint whose barrier reached the writer.
    last_barrier: u64,
}

/// The id under which the records after the last barrier wait when the input ended;
/// they commit under the id of the checkpoint that completes with the task's final
/// state.
const FINAL_ENTRY: u64 = u64::MAX;

impl<T: Send + 'static> TransactionalWriter<T> {
    /// The writer of subtask `ctx.location.subtask`: fences its predecessors and
    /// finishes what a restored checkpoint left uncommitted.
    pub(crate) fn open(config: TransactionalConfig<'_, T>, ctx: &OperatorContext) -> Result<Self> {
        if ctx.snapshots.is_none() {
            return Err(user_error(format!(
                "Kafka sink to `{}`: exactly-once delivery commits with checkpoints; enable checkpointing, or use DeliveryGuarantee::AtLeastOnce",
                config.topic
            )));
        }
        let transactional_id = format!("{}-{}", config.prefix, ctx.location.subtask);
        // Fences older producers of this id and aborts the transaction one left open.
        let mut client = TxnClient::open(
            config.properties,
            config.topic,
            &transactional_id,
            config.timeout,
        )?;
        let restored = ctx.restored.as_ref().and_then(|r| r.operator.as_ref());
        if restored.is_none() && client.committed > 0 {
            // A fresh run numbers its checkpoints from 1 again: the marker an earlier run
            // left would make its entries look committed.
            client.commit_entry(0, &[])?;
            client.committed = 0;
        }
        // Entries up to the restored checkpoint are settled after the restore.
        let mut settled = 0;
        if let Some(bytes) = restored {
            let restored_id = ctx
                .restored
                .as_ref()
                .and_then(|r| r.checkpoint)
                .map_or(0, |c| c.0);
            let (last_barrier, pending): (u64, Vec<(u64, Vec<LoggedRecord>)>) =
                postcard::from_bytes(bytes).map_err(|e| {
                    user_error(format!(
                        "the checkpointed log of the Kafka sink to `{}` is unreadable: {e}",
                        config.topic
                    ))
                })?;
            let marker = client.committed;
            // A regular entry committed when the marker reached its id; the final entry
            // (the input ended) commits under the id of the checkpoint that completed
            // with it, the only one above the last barrier.
            let committed = |id: u64| {
                if id == FINAL_ENTRY {
                    marker > last_barrier
                } else {
                    id <= marker
                }
            };
            let (done, todo): (Vec<_>, Vec<_>) =
                pending.into_iter().partition(|(id, _)| committed(*id));
            tracing::info!(
                transactional_id = %transactional_id,
                marker,
                restored = restored_id,
                committed_before = ?done.iter().map(|(id, _)| id).collect::<Vec<_>>(),
                to_commit = ?todo.iter().map(|(id, _)| id).collect::<Vec<_>>(),
                "Kafka sink restored"
            );
            // The restored checkpoint completed: its entries commit now, in order.
            for (id, records) in todo {
                let under = if id == FINAL_ENTRY { restored_id } else { id };
                client.commit_entry(under, &records)?;
            }
            // The marker now stands at the restored checkpoint, whatever it was (a run
            // that went on past a savepoint leaves a higher one): this run's next
            // checkpoints, numbered after it, must not look committed.
            if client.committed != restored_id {
                client.commit_entry(restored_id, &[])?;
            }
            settled = restored_id;
        }
        let committed = client.committed;
        Ok(TransactionalWriter {
            committer: Committer::spawn(client, format!("committer {transactional_id}"))?,
            encoder: RecordEncoder::new(
                config.topic,
                config.serializer,
                config.round_robin.then_some((
                    config.partitions,
                    ctx.location.subtask as i32 % config.partitions,
                )),
            ),
            current: Vec::new(),
            pending: Vec::new(),
            queued: committed,
            finished: false,
            last_barrier: settled,
        })
    }

    /// Hands the committer the pending entries up to checkpoint `id`, oldest first;
    /// they stay pending (in the checkpointed state) until it confirmed them.
    fn commit_up_to(&mut self, id: u64) -> Result<()> {
        for (entry, records) in &self.pending {
            if *entry <= id && *entry > self.queued && *entry != FINAL_ENTRY {
                self.committer.commit(*entry, Arc::clone(records))?;
                self.queued = *entry;
            }
        }
        self.committer.check()
    }

    /// Hands the committer everything pending, the final entry under `checkpoint` (the
    /// checkpoint that completed with the task's final state).
    fn commit_final(&mut self, checkpoint: u64) -> Result<()> {
        self.commit_up_to(self.last_barrier)?;
        if let Some((_, records)) = self.pending.iter().find(|(id, _)| *id == FINAL_ENTRY) {
            if checkpoint > self.queued {
                self.committer.commit(checkpoint, Arc::clone(records))?;
                self.queued = checkpoint;
            }
        }
        self.committer.check()
    }
}

impl<T: Send + 'static> SinkWriter<T> for TransactionalWriter<T> {
    fn write(&mut self, batch: Records<T>) -> Result<()> {
        for value in batch.values() {
            let record = self.encoder.encode(value)?;
            self.current.push(record);
        }
        Ok(())
    }

    fn snapshot_state(&mut self, checkpoint: CheckpointId) -> Result<Option<Vec<u8>>> {
        self.committer.check()?;
        let done = self.committer.committed();
        let final_done = done > self.last_barrier;
        self.pending.retain(|(id, _)| {
            if *id == FINAL_ENTRY {
                !final_done
            } else {
                *id > done
            }
        });
        if checkpoint != CheckpointId::FINAL {
            let records = std::mem::take(&mut self.current);
            self.pending.push((checkpoint.0, Arc::new(records)));
            self.last_barrier = checkpoint.0;
        }
        let log: Vec<(u64, &[LoggedRecord])> = self
            .pending
            .iter()
            .map(|(id, records)| (*id, records.as_slice()))
            .collect();
        let bytes = postcard::to_allocvec(&(self.last_barrier, log)).map_err(|e| {
            sluice_runtime::Error::Internal(format!("cannot encode the Kafka sink's log: {e}"))
        })?;
        Ok(Some(bytes))
    }

    fn notify_checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<()> {
        // After the input ended, a checkpoint newer than the last barrier the writer saw
        // holds its final state (the task did not acknowledge it with a barrier): the
        // final entry commits with it. Older ones commit their own entries.
        if self.finished && checkpoint.0 > self.last_barrier {
            // The job is about to end: wait until everything is in Kafka.
            self.commit_final(checkpoint.0)?;
            return self.committer.drain();
        }
        self.commit_up_to(checkpoint.0)
    }

    fn stop(&mut self) -> Result<()> {
        // A stopped job resumes from its last checkpoint: what came after it is written
        // again then, so it is not committed now.
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        // The input ended: the records since the last barrier become the final entry,
        // part of the task's final state; it commits when a checkpoint with that state
        // completed (the task waits for one), so a failure elsewhere before then
        // restores it from the checkpoint instead of writing it twice.
        let records = std::mem::take(&mut self.current);
        self.pending.push((FINAL_ENTRY, Arc::new(records)));
        self.finished = true;
        Ok(())
    }
}
