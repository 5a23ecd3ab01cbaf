//! [`KafkaSink`]: writes records to a topic.
//!
//! The job's serializer turns each record into an optional key and a value. Records
//! with a key go to the partition of their key (librdkafka's murmur2 partitioner, as the
//! Java client); [`KafkaSink::round_robin`] deals records over the partitions instead.
//!
//! Delivery guarantees:
//! * [`DeliveryGuarantee::None`]: records are handed to the client and never waited for.
//! * [`DeliveryGuarantee::AtLeastOnce`] (default): at every checkpoint barrier the sink
//!   waits until the broker acknowledged every record sent before it, so a completed
//!   checkpoint never covers a record that is not in Kafka; a failed delivery fails the
//!   job (never a silent loss). After a restore, records since the checkpoint are sent
//!   again.
//!
//! * [`DeliveryGuarantee::ExactlyOnce`]: records are kept with the checkpoint (a
//!   write-ahead log in the sink's checkpointed state) and written in one Kafka
//!   transaction per checkpoint once it completed, together with a commit marker (the
//!   checkpoint id, committed as an offset of a consumer group of the sink's own, in the
//!   same transaction). After a crash the restored sink first fences older producers of
//!   its transactional id (which aborts a transaction left open), reads the marker, and
//!   writes again exactly the logged checkpoints whose transaction did not commit; a
//!   `read_committed` consumer sees every record once. See `docs/design/kafka.md` for
//!   why (librdkafka cannot resume another producer's open transaction).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::error::{KafkaError as ClientError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use sluice_core::{CheckpointId, Records};
use sluice_runtime::sink::{Sink, SinkWriter};
use sluice_runtime::{OperatorContext, Result};

use super::committer::LoggedRecord;
use super::transactional::{TransactionalConfig, TransactionalWriter};
use super::{user_error, KafkaError, KafkaProperties};

/// How a [`KafkaSink`] makes sure records arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryGuarantee {
    /// Fire and forget.
    None,
    /// Every record before a checkpoint is acknowledged by the broker before the
    /// checkpoint completes; a restore may send some again.
    #[default]
    AtLeastOnce,
    /// Every record is committed exactly once, in a Kafka transaction per checkpoint
    /// (visible to `read_committed` consumers when the checkpoint completes). Needs
    /// checkpoints and a transactional id prefix.
    ExactlyOnce,
}

/// Turns a record into its key and value, or says why it cannot.
pub type Serializer<T> =
    Arc<dyn Fn(&T) -> std::result::Result<(Option<Vec<u8>>, Vec<u8>), String> + Send + Sync>;

/// A sink writing records of `T` to one Kafka topic (see the [module docs](self)).
pub struct KafkaSink<T> {
    properties: KafkaProperties,
    topic: String,
    serializer: Serializer<T>,
    guarantee: DeliveryGuarantee,
    round_robin: bool,
    flush_timeout: Duration,
    transactional_id_prefix: Option<String>,
}

impl<T> std::fmt::Debug for KafkaSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("bootstrap", &self.properties.bootstrap())
            .field("topic", &self.topic)
            .field("guarantee", &self.guarantee)
            .finish()
    }
}

impl<T> KafkaSink<T> {
    /// Writes to `topic` what `serializer` makes of each record: `(key, value)`.
    pub fn new(
        properties: KafkaProperties,
        topic: &str,
        serializer: impl Fn(&T) -> (Option<Vec<u8>>, Vec<u8>) + Send + Sync + 'static,
    ) -> Self {
        Self::try_new(properties, topic, move |v: &T| Ok(serializer(v)))
    }

    /// Like [`KafkaSink::new`] with a serializer that may refuse a record: the job then
    /// fails, naming the topic and the reason (a record is never dropped silently).
    pub fn try_new(
        properties: KafkaProperties,
        topic: &str,
        serializer: impl Fn(&T) -> std::result::Result<(Option<Vec<u8>>, Vec<u8>), String>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        KafkaSink {
            properties,
            topic: topic.to_string(),
            serializer: Arc::new(serializer),
            guarantee: DeliveryGuarantee::AtLeastOnce,
            round_robin: false,
            flush_timeout: Duration::from_secs(60),
            transactional_id_prefix: None,
        }
    }

    /// Exactly-once delivery with transactional ids `<prefix>-<subtask>`. The prefix must
    /// be unique to this sink among all jobs writing to the cluster, and stay the same
    /// across restarts of the job (it is how a restarted job fences its crashed self).
    #[must_use]
    pub fn exactly_once(mut self, transactional_id_prefix: &str) -> Self {
        self.guarantee = DeliveryGuarantee::ExactlyOnce;
        self.transactional_id_prefix = Some(transactional_id_prefix.to_string());
        self
    }

    /// The delivery guarantee (default at-least-once).
    #[must_use]
    pub fn delivery_guarantee(mut self, guarantee: DeliveryGuarantee) -> Self {
        self.guarantee = guarantee;
        self
    }

    /// Deals records over the topic's partitions in turn instead of by key.
    #[must_use]
    pub fn round_robin(mut self) -> Self {
        self.round_robin = true;
        self
    }
}

impl<T: serde::Serialize + 'static> KafkaSink<T> {
    /// Writes each record as a JSON document, with the key `key` gives it.
    pub fn json(
        properties: KafkaProperties,
        topic: &str,
        key: impl Fn(&T) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> Self {
        Self::try_new(properties, topic, move |v: &T| {
            Ok((key(v), super::format::to_json(v)?))
        })
    }

    /// Writes each record as one CSV line (no header), with the key `key` gives it.
    pub fn csv(
        properties: KafkaProperties,
        topic: &str,
        key: impl Fn(&T) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> Self {
        Self::try_new(properties, topic, move |v: &T| {
            Ok((key(v), super::format::to_csv(v)?))
        })
    }
}

impl KafkaSink<String> {
    /// Writes each string as a value without key.
    pub fn strings(properties: KafkaProperties, topic: &str) -> Self {
        Self::new(properties, topic, |s: &String| {
            (None, s.as_bytes().to_vec())
        })
    }
}

/// Collects the first delivery failure the client reports.
#[derive(Default)]
pub(crate) struct DeliveryErrors {
    first: Mutex<Option<String>>,
}

impl DeliveryErrors {
    /// The first failure since the last call, if any.
    pub(crate) fn take(&self) -> Option<String> {
        self.first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// The producer's context: records delivery failures.
pub(crate) struct DeliveryContext(pub(crate) Arc<DeliveryErrors>);

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        if let Err((e, message)) = result {
            use rdkafka::message::Message;
            let mut first = self.0.first.lock().unwrap_or_else(PoisonError::into_inner);
            if first.is_none() {
                *first = Some(format!(
                    "a record for `{}` partition {} was not delivered: {e}",
                    message.topic(),
                    message.partition()
                ));
            }
        }
    }
}

/// Serializes the records of one writer and picks their partition (the key's, or the
/// next in round robin), for both the direct and the transactional writer.
pub(crate) struct RecordEncoder<T> {
    topic: String,
    serializer: Serializer<T>,
    /// Round robin: the partition count and the next partition.
    round_robin: Option<(i32, i32)>,
}

impl<T> RecordEncoder<T> {
    /// An encoder for `topic`; with `round_robin` (partition count, first partition)
    /// records are dealt over the partitions.
    pub(crate) fn new(
        topic: &str,
        serializer: Serializer<T>,
        round_robin: Option<(i32, i32)>,
    ) -> Self {
        RecordEncoder {
            topic: topic.to_string(),
            serializer,
            round_robin,
        }
    }

    /// The record `value` becomes.
    ///
    /// # Errors
    /// When the serializer refuses it (the message names the topic and the reason).
    pub(crate) fn encode(&mut self, value: &T) -> Result<LoggedRecord> {
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
        Ok(LoggedRecord {
            key,
            value,
            partition,
        })
    }
}

/// `record` as a record of `topic` for the client.
pub(crate) fn base_record<'a>(
    topic: &'a str,
    record: &'a LoggedRecord,
) -> BaseRecord<'a, [u8], [u8]> {
    BaseRecord {
        key: record.key.as_deref(),
        payload: Some(record.value.as_slice()),
        partition: record.partition,
        ..BaseRecord::to(topic)
    }
}

/// Hands `record` to the client, waiting while its queue is full (back-pressure from
/// the broker).
///
/// # Errors
/// Any other error of the client.
pub(crate) fn send_retrying<K, P>(
    producer: &BaseProducer<DeliveryContext>,
    mut record: BaseRecord<'_, K, P>,
) -> std::result::Result<(), ClientError>
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((ClientError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                // Let the client deliver, then try again.
                producer.poll(Duration::from_millis(10));
                record = back;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

struct KafkaWriter<T> {
    producer: BaseProducer<DeliveryContext>,
    errors: Arc<DeliveryErrors>,
    bootstrap: String,
    topic: String,
    encoder: RecordEncoder<T>,
    guarantee: DeliveryGuarantee,
    flush_timeout: Duration,
}

impl<T: Send + 'static> Sink<T> for KafkaSink<T> {
    fn create_writer(&self, ctx: &OperatorContext) -> Result<Box<dyn SinkWriter<T>>> {
        let bootstrap = self.properties.bootstrap().to_string();
        let errors = Arc::new(DeliveryErrors::default());
        let producer: BaseProducer<DeliveryContext> = self
            .properties
            .client_config(&[("linger.ms", "5"), ("enable.idempotence", "true")])
            .create_with_context(DeliveryContext(Arc::clone(&errors)))
            .map_err(|e| KafkaError::new(&bootstrap, "creating the producer", e))?;
        let partitions = self.partitions(&producer)?;
        if self.guarantee == DeliveryGuarantee::ExactlyOnce {
            drop(producer);
            let prefix = self.transactional_id_prefix.as_deref().ok_or_else(|| {
                user_error(format!(
                    "Kafka sink to `{}`: exactly-once delivery needs a transactional id prefix; use KafkaSink::exactly_once(prefix)",
                    self.topic
                ))
            })?;
            return Ok(Box::new(TransactionalWriter::open(
                TransactionalConfig {
                    properties: &self.properties,
                    topic: &self.topic,
                    prefix,
                    serializer: Arc::clone(&self.serializer),
                    partitions,
                    round_robin: self.round_robin,
                    timeout: self.flush_timeout,
                },
                ctx,
            )?));
        }
        let first = ctx.location.subtask as i32 % partitions;
        Ok(Box::new(KafkaWriter {
            producer,
            errors,
            bootstrap,
            topic: self.topic.clone(),
            encoder: RecordEncoder::new(
                &self.topic,
                Arc::clone(&self.serializer),
                self.round_robin.then_some((partitions, first)),
            ),
            guarantee: self.guarantee,
            flush_timeout: self.flush_timeout,
        }))
    }
}

impl<T> KafkaSink<T> {
    /// The number of partitions of the topic (which must exist).
    fn partitions(&self, producer: &BaseProducer<DeliveryContext>) -> Result<i32> {
        let bootstrap = self.properties.bootstrap();
        let metadata = producer
            .client()
            .fetch_metadata(Some(&self.topic), Duration::from_secs(10))
            .map_err(|e| {
                KafkaError::new(
                    bootstrap,
                    format!("reading the metadata of `{}`", self.topic),
                    e,
                )
            })?;
        metadata
            .topics()
            .iter()
            .find(|t| t.name() == self.topic && t.error().is_none())
            .map(|t| t.partitions().len() as i32)
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                user_error(format!(
                    "Kafka ({bootstrap}): topic `{}` does not exist; create it first",
                    self.topic
                ))
            })
    }
}

impl<T: Send + 'static> KafkaWriter<T> {
    fn check_errors(&self) -> Result<()> {
        match self.errors.take() {
            Some(why) => Err(user_error(format!(
                "Kafka ({}): {why}; the job fails rather than lose it",
                self.bootstrap
            ))),
            None => Ok(()),
        }
    }

    fn flush(&self) -> Result<()> {
        self.producer
            .flush(self.flush_timeout)
            .map_err(|e| KafkaError::new(&self.bootstrap, "waiting for acknowledgements", e))?;
        self.check_errors()
    }
}

impl<T: Send + 'static> SinkWriter<T> for KafkaWriter<T> {
    fn write(&mut self, batch: Records<T>) -> Result<()> {
        for value in batch.values() {
            let record = self.encoder.encode(value)?;
            send_retrying(&self.producer, base_record(&self.topic, &record)).map_err(|e| {
                KafkaError::new(&self.bootstrap, format!("sending to `{}`", self.topic), e)
            })?;
        }
        self.producer.poll(Duration::ZERO);
        self.check_errors()
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId) -> Result<Option<Vec<u8>>> {
        if self.guarantee == DeliveryGuarantee::AtLeastOnce {
            self.flush()?;
        }
        Ok(None)
    }

    fn finish(&mut self) -> Result<()> {
        self.flush()
    }
}
