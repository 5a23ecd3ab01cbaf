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

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError as ClientError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use sluice_core::{CheckpointId, Records};
use sluice_runtime::sink::SinkWriter;
use sluice_runtime::{OperatorContext, Result};

use super::sink::{DeliveryContext, DeliveryErrors, Serializer};
use super::{user_error, KafkaError, KafkaProperties};

/// A serialized record waiting in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LoggedRecord {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    partition: Option<i32>,
}

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
    producer: BaseProducer<DeliveryContext>,
    errors: Arc<DeliveryErrors>,
    marker: BaseConsumer,
    bootstrap: String,
    topic: String,
    transactional_id: String,
    serializer: Serializer<T>,
    round_robin: Option<(i32, i32)>,
    timeout: Duration,
    /// Records since the last barrier.
    current: Vec<LoggedRecord>,
    /// Pre-committed entries not yet committed, by checkpoint id (ascending).
    pending: Vec<(u64, Vec<LoggedRecord>)>,
    /// The highest entry committed (the marker).
    committed: u64,
    /// The input ended: the last records wait, as the final entry, for the checkpoint
    /// that includes the task's final state.
    finished: bool,
    /// The last checkpoint whose barrier reached the writer.
    last_barrier: u64,
}

/// The id of the entry holding the records after the last barrier when the input ended
/// (the largest marker an offset can carry).
const FINAL_ENTRY: u64 = i64::MAX as u64;

impl<T: Send + 'static> TransactionalWriter<T> {
    /// The writer of subtask `ctx.location.subtask`: fences its predecessors and
    /// finishes what a restored checkpoint left uncommitted.
    pub(crate) fn open(config: TransactionalConfig<'_, T>, ctx: &OperatorContext) -> Result<Self> {
        let bootstrap = config.properties.bootstrap().to_string();
        if ctx.snapshots.is_none() {
            return Err(user_error(format!(
                "Kafka sink to `{}`: exactly-once delivery commits with checkpoints; enable checkpointing, or use DeliveryGuarantee::AtLeastOnce",
                config.topic
            )));
        }
        let transactional_id = format!("{}-{}", config.prefix, ctx.location.subtask);
        let err = |doing: String, e| KafkaError::new(&bootstrap, doing, e);
        let errors = Arc::new(DeliveryErrors::default());
        let timeout_ms = config.timeout.as_millis().to_string();
        let producer: BaseProducer<DeliveryContext> = config
            .properties
            .client_config(&[
                ("linger.ms", "5"),
                ("transaction.timeout.ms", "60000"),
                ("transactional.id", transactional_id.as_str()),
            ])
            .create_with_context(DeliveryContext(Arc::clone(&errors)))
            .map_err(|e| err("creating the transactional producer".into(), e))?;
        let marker: BaseConsumer = config
            .properties
            .client_config(&[("enable.auto.commit", "false")])
            .set("group.id", format!("{transactional_id}-commits"))
            .set("socket.timeout.ms", timeout_ms.as_str())
            .create()
            .map_err(|e| err("creating the commit-marker client".into(), e))?;
        // Fences older producers of this id and aborts the transaction one left open.
        producer.init_transactions(config.timeout).map_err(|e| {
            err(
                format!("initializing transactions of `{transactional_id}`"),
                e,
            )
        })?;
        let mut writer = TransactionalWriter {
            producer,
            errors,
            marker,
            bootstrap: bootstrap.clone(),
            topic: config.topic.to_string(),
            transactional_id,
            serializer: config.serializer,
            round_robin: config.round_robin.then_some((
                config.partitions,
                ctx.location.subtask as i32 % config.partitions,
            )),
            timeout: config.timeout,
            current: Vec::new(),
            pending: Vec::new(),
            committed: 0,
            finished: false,
            last_barrier: 0,
        };
        writer.committed = writer.read_marker()?;
        let restored = ctx.restored.as_ref().and_then(|r| r.operator.as_ref());
        if restored.is_none() && writer.committed > 0 {
            // A fresh run numbers its checkpoints from 1 again: the marker an earlier run
            // left would make its entries look committed.
            writer.commit_entry(0, &[])?;
            writer.committed = 0;
        }
        if let Some(bytes) = restored {
            let pending: Vec<(u64, Vec<LoggedRecord>)> =
                postcard::from_bytes(bytes).map_err(|e| {
                    user_error(format!(
                        "the checkpointed log of the Kafka sink to `{}` is unreadable: {e}",
                        writer.topic
                    ))
                })?;
            let (done, todo): (Vec<_>, Vec<_>) = pending
                .into_iter()
                .partition(|(id, _)| *id <= writer.committed);
            tracing::info!(
                transactional_id = %writer.transactional_id,
                marker = writer.committed,
                committed_before = ?done.iter().map(|(id, _)| id).collect::<Vec<_>>(),
                to_commit = ?todo.iter().map(|(id, _)| id).collect::<Vec<_>>(),
                "Kafka sink restored"
            );
            writer.pending = todo;
            let last = writer.pending.last().map(|(id, _)| *id);
            if let Some(last) = last {
                writer.commit_up_to(last)?;
            }
        }
        Ok(writer)
    }

    /// The checkpoint id of the last committed entry (0: none).
    fn read_marker(&self) -> Result<u64> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, 0);
        let committed = self
            .marker
            .committed_offsets(tpl, self.timeout)
            .map_err(|e| KafkaError::new(&self.bootstrap, "reading the commit marker", e))?;
        Ok(committed
            .find_partition(&self.topic, 0)
            .and_then(|p| match p.offset() {
                Offset::Offset(o) if o > 0 => Some(o as u64),
                _ => None,
            })
            .unwrap_or(0))
    }

    fn send(&self, record: &LoggedRecord) -> Result<()> {
        loop {
            let mut r = BaseRecord::to(&self.topic).payload(&record.value);
            if let Some(k) = record.key.as_deref() {
                r = r.key(k);
            }
            if let Some(p) = record.partition {
                r = r.partition(p);
            }
            match self.producer.send(r) {
                Ok(()) => return Ok(()),
                Err((ClientError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => {
                    return Err(KafkaError::new(
                        &self.bootstrap,
                        format!("sending to `{}` in a transaction", self.topic),
                        e,
                    )
                    .into())
                }
            }
        }
    }

    /// Writes entry `id` in one transaction with its marker.
    fn commit_entry(&mut self, id: u64, records: &[LoggedRecord]) -> Result<()> {
        let doing = |what: &str| format!("{what} (transaction of checkpoint {id})");
        let bootstrap = self.bootstrap.clone();
        let err = |what: &str, e| KafkaError::new(&bootstrap, doing(what), e);
        self.producer
            .begin_transaction()
            .map_err(|e| err("beginning a transaction", e))?;
        let result = (|| {
            for record in records {
                self.send(record)?;
            }
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&self.topic, 0, Offset::Offset(id as i64))
                .map_err(|e| err("preparing the commit marker", e))?;
            let group = self.marker.group_metadata().ok_or_else(|| {
                user_error(format!(
                    "Kafka ({}): the commit-marker client has no group metadata",
                    self.bootstrap
                ))
            })?;
            self.producer
                .send_offsets_to_transaction(&tpl, &group, self.timeout)
                .map_err(|e| err("adding the commit marker", e))?;
            self.producer
                .commit_transaction(self.timeout)
                .map_err(|e| err("committing", e))?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = self.producer.abort_transaction(self.timeout);
            return Err(e);
        }
        if let Some(why) = self.errors.take() {
            return Err(user_error(format!("Kafka ({}): {why}", self.bootstrap)));
        }
        self.committed = id;
        Ok(())
    }

    /// Commits the pending entries up to checkpoint `id`, oldest first.
    fn commit_up_to(&mut self, id: u64) -> Result<()> {
        while self.pending.first().is_some_and(|(first, _)| *first <= id) {
            let (entry, records) = self.pending.remove(0);
            if entry > self.committed {
                self.commit_entry(entry, &records)?;
            }
        }
        Ok(())
    }
}

impl<T: Send + 'static> SinkWriter<T> for TransactionalWriter<T> {
    fn write(&mut self, batch: Records<T>) -> Result<()> {
        for value in batch.values() {
            let (key, value) = (self.serializer)(value).map_err(|why| {
                user_error(format!(
                    "Kafka sink to `{}`: cannot serialize a record: {why}",
                    self.topic
                ))
            })?;
            let partition = self.round_robin.as_mut().map(|(n, next)| {
                let p = *next;
                *next = (*next + 1) % *n;
                p
            });
            self.current.push(LoggedRecord {
                key,
                value,
                partition,
            });
        }
        Ok(())
    }

    fn snapshot_state(&mut self, checkpoint: CheckpointId) -> Result<Option<Vec<u8>>> {
        if checkpoint != CheckpointId::FINAL {
            let records = std::mem::take(&mut self.current);
            self.pending.push((checkpoint.0, records));
            self.last_barrier = checkpoint.0;
        }
        let bytes = postcard::to_allocvec(&self.pending).map_err(|e| {
            sluice_runtime::Error::Internal(format!("cannot encode the Kafka sink's log: {e}"))
        })?;
        Ok(Some(bytes))
    }

    fn notify_checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<()> {
        // After the input ended, a checkpoint newer than the last barrier the writer saw
        // holds its final state (the task did not acknowledge it with a barrier): the
        // final entry commits with it. Older ones commit their own entries.
        if self.finished && checkpoint.0 > self.last_barrier {
            return self.commit_up_to(FINAL_ENTRY);
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
        self.pending.push((FINAL_ENTRY, records));
        self.finished = true;
        Ok(())
    }
}
