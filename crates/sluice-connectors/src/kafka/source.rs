//! [`KafkaSource`]: reads the partitions of Kafka topics, split over the source's
//! subtasks, with offsets in checkpoints.
//!
//! Each subtask owns the partitions `p` of topic `t` with
//! `(stable_hash(t) + p) % parallelism == subtask` (as Flink spreads them), assigns them
//! to its consumer by hand (no group rebalances: the job, not the broker, decides who
//! reads what) and starts each at a concrete offset resolved once: from the checkpoint
//! when restored, else from [`StartingOffsets`]. The next offset of every partition goes
//! into each checkpoint; when the checkpoint completes the same offsets are committed to
//! the consumer group (when `group.id` is set), only so that lag tools see progress.
//!
//! Every partition is a split: a polled batch holds records of one partition only, so
//! `from_source` watermarks are generated per partition (with idleness). Records carry
//! their Kafka timestamp as event time.
//!
//! Bounded mode reads each partition up to the offset that was its end when the reader
//! started, then finishes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use sluice_core::{CheckpointId, EventTime, Records};
use sluice_runtime::metrics::Counter;
use sluice_runtime::source::{Boundedness, Source, SourcePoll, SourceReader};
use sluice_runtime::{OperatorContext, Result};

use super::record::{KafkaRecord, MalformedPolicy};
use super::sink::{send_retrying, DeliveryContext, DeliveryErrors};
use super::{user_error, KafkaError, KafkaProperties};

/// Where a partition starts when the job does not restore a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StartingOffsets {
    /// The first offset still in the partition.
    #[default]
    Earliest,
    /// The end of the partition when the reader starts: only new records.
    Latest,
    /// The consumer group's committed offset (`group.id` must be set); partitions
    /// without one start at the earliest offset, or the latest with `reset_to_latest`.
    Committed {
        /// Where partitions without a committed offset start.
        reset_to_latest: bool,
    },
    /// The first record with a timestamp at or after this one (ms since the epoch).
    Timestamp(i64),
    /// Given offsets per (topic, partition); other partitions start at the earliest.
    Specific(BTreeMap<(String, i32), i64>),
}

/// Turns a record into the job's type, or says why it cannot.
pub type Deserializer<T> =
    Arc<dyn Fn(&KafkaRecord) -> std::result::Result<T, String> + Send + Sync>;

/// The topics a source reads: a list, or the topics whose whole name matches a pattern.
#[derive(Debug, Clone)]
enum Topics {
    List(Vec<String>),
    Pattern(regex::Regex),
}

impl Topics {
    /// The partitions of these topics that subtask `owner.0` of `owner.1` reads: those
    /// with `(stable_hash(topic) % parallelism + partition) % parallelism == subtask`.
    fn owned_partitions(
        &self,
        consumer: &BaseConsumer,
        bootstrap: &str,
        (subtask, parallelism): (u32, u32),
        timeout: Duration,
    ) -> Result<Vec<(String, i32)>> {
        let err = |doing: String, e| KafkaError::new(bootstrap, doing, e);
        let mut found: Vec<(String, Vec<i32>)> = Vec::new();
        match self {
            Topics::List(topics) => {
                for topic in topics {
                    let metadata = consumer
                        .fetch_metadata(Some(topic), timeout)
                        .map_err(|e| err(format!("reading the metadata of topic `{topic}`"), e))?;
                    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
                        return Err(user_error(format!(
                            "Kafka ({bootstrap}): topic `{topic}` does not exist; create it first"
                        )));
                    };
                    if let Some(e) = t.error() {
                        return Err(user_error(format!(
                            "Kafka ({bootstrap}): topic `{topic}`: {e:?}; create it first, or check its name"
                        )));
                    }
                    found.push((
                        topic.clone(),
                        t.partitions().iter().map(|p| p.id()).collect(),
                    ));
                }
            }
            Topics::Pattern(pattern) => {
                let metadata = consumer
                    .fetch_metadata(None, timeout)
                    .map_err(|e| err("listing topics".into(), e))?;
                for t in metadata.topics() {
                    if t.error().is_none() && pattern.is_match(t.name()) {
                        found.push((
                            t.name().to_string(),
                            t.partitions().iter().map(|p| p.id()).collect(),
                        ));
                    }
                }
                found.sort();
            }
        }
        let mut owned = Vec::new();
        for (topic, mut ids) in found {
            ids.sort_unstable();
            let start = (sluice_core::stable_hash(&topic) % u64::from(parallelism)) as u32;
            for id in ids {
                if (start + id as u32) % parallelism == subtask {
                    owned.push((topic.clone(), id));
                }
            }
        }
        Ok(owned)
    }
}

/// A Kafka source of `T` (see the [module docs](self)).
pub struct KafkaSource<T> {
    properties: KafkaProperties,
    topics: Topics,
    discovery: Option<Duration>,
    starting: StartingOffsets,
    bounded: bool,
    deserializer: Deserializer<T>,
    malformed: MalformedPolicy,
    timeout: Duration,
    listener: Option<PartitionListener>,
}

/// Told of every partition a subtask starts reading: (subtask, topic, partition).
pub type PartitionListener = Arc<dyn Fn(u32, &str, i32) + Send + Sync>;

impl<T> std::fmt::Debug for KafkaSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("bootstrap", &self.properties.bootstrap())
            .field("topics", &self.topics)
            .field("starting", &self.starting)
            .field("bounded", &self.bounded)
            .finish()
    }
}

impl KafkaSource<KafkaRecord> {
    /// Whole records (key, value, headers, timestamp, partition, offset) of `topics`.
    pub fn records(properties: KafkaProperties, topics: &[&str]) -> Self {
        Self::new(properties, topics, |r: &KafkaRecord| Ok(r.clone()))
    }
}

impl KafkaSource<String> {
    /// The values of `topics` as UTF-8 text.
    pub fn strings(properties: KafkaProperties, topics: &[&str]) -> Self {
        Self::new(properties, topics, |r: &KafkaRecord| {
            r.value_str().map(str::to_string)
        })
    }
}

impl<T: serde::de::DeserializeOwned + 'static> KafkaSource<T> {
    /// Values of `topics` read as JSON documents into `T`.
    pub fn json(properties: KafkaProperties, topics: &[&str]) -> Self {
        Self::new(properties, topics, super::format::from_json::<T>)
    }

    /// Values of `topics` read as CSV lines (no header) into the fields of `T`.
    pub fn csv(properties: KafkaProperties, topics: &[&str]) -> Self {
        Self::new(properties, topics, super::format::from_csv::<T>)
    }
}

impl<T> KafkaSource<T> {
    /// Records of `topics` turned into `T` by `deserializer` (an error is a malformed
    /// record, handled by [`KafkaSource::malformed`]).
    pub fn new(
        properties: KafkaProperties,
        topics: &[&str],
        deserializer: impl Fn(&KafkaRecord) -> std::result::Result<T, String> + Send + Sync + 'static,
    ) -> Self {
        KafkaSource {
            properties,
            topics: Topics::List(topics.iter().map(|t| t.to_string()).collect()),
            discovery: Some(Duration::from_secs(10)),
            starting: StartingOffsets::Earliest,
            bounded: false,
            deserializer: Arc::new(deserializer),
            malformed: MalformedPolicy::Fail,
            timeout: Duration::from_secs(10),
            listener: None,
        }
    }

    /// Calls `listener` with (subtask, topic, partition) for every partition a subtask
    /// starts reading (when its reader starts, and when discovery finds a new one), before
    /// any of its records: a consumer of the records (per-partition watermarks) then knows
    /// every partition, also the ones whose records come later.
    #[must_use]
    pub fn on_partition_assigned(
        mut self,
        listener: impl Fn(u32, &str, i32) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// Reads every topic whose whole name matches `pattern` (a regular expression)
    /// instead of the listed topics; topics created later are discovered too.
    ///
    /// # Errors
    /// When `pattern` is not a valid regular expression.
    pub fn topic_pattern(mut self, pattern: &str) -> Result<Self> {
        let anchored = format!("^(?:{pattern})$");
        let regex = regex::Regex::new(&anchored)
            .map_err(|e| user_error(format!("invalid Kafka topic pattern `{pattern}`: {e}")))?;
        self.topics = Topics::Pattern(regex);
        Ok(self)
    }

    /// How often an unbounded source looks for new partitions (and, with a pattern,
    /// new topics); they start at their earliest offset. `None` turns discovery off.
    /// Default: every 10 s.
    #[must_use]
    pub fn partition_discovery(mut self, interval: Option<Duration>) -> Self {
        self.discovery = interval;
        self
    }

    /// Where partitions start without a checkpoint (default: earliest).
    #[must_use]
    pub fn starting_offsets(mut self, starting: StartingOffsets) -> Self {
        self.starting = starting;
        self
    }

    /// Stops at the offsets that were the latest when the job started (default:
    /// unbounded).
    #[must_use]
    pub fn bounded(mut self) -> Self {
        self.bounded = true;
        self
    }

    /// What to do with records the deserializer rejects (default: fail).
    #[must_use]
    pub fn malformed(mut self, policy: MalformedPolicy) -> Self {
        self.malformed = policy;
        self
    }

    /// How long metadata and offset requests may take (default 10 s).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// One partition a reader owns.
#[derive(Debug)]
struct PartitionState {
    topic: String,
    partition: i32,
    split: u32,
    /// The next offset to read.
    next: i64,
    /// Bounded mode: the end (exclusive) when the reader started.
    end: Option<i64>,
    finished: bool,
}

/// A record polled but held for the next batch (it belongs to another partition).
struct Held<T> {
    index: usize,
    offset: i64,
    value: T,
    timestamp: Option<EventTime>,
}

struct KafkaReader<T> {
    consumer: BaseConsumer,
    bootstrap: String,
    operator: String,
    partitions: Vec<PartitionState>,
    index: HashMap<(String, i32), usize>,
    deserializer: Deserializer<T>,
    malformed: MalformedPolicy,
    malformed_count: Counter,
    held: Option<Held<T>>,
    /// Positions of checkpoints not yet complete, to commit to the group when they are.
    pending_commits: BTreeMap<u64, Vec<(String, i32, i64)>>,
    commit_to_group: bool,
    dead_letters: Option<DeadLetters>,
    bounded: bool,
    /// Partition discovery: what to read, who this subtask is, how often, and when next.
    discovery: Option<Discovery>,
    just_finished: Vec<u32>,
    /// The split of the batch the last poll returned.
    batch_split: Option<u32>,
}

fn consumer_defaults() -> [(&'static str, &'static str); 5] {
    [
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("enable.partition.eof", "true"),
        ("isolation.level", "read_committed"),
        ("group.id", "sluice"),
    ]
}

impl<T: Send + 'static> Source<T> for KafkaSource<T> {
    fn boundedness(&self) -> Boundedness {
        if self.bounded {
            Boundedness::Bounded
        } else {
            Boundedness::Unbounded
        }
    }

    fn create_reader(&self, ctx: &OperatorContext) -> Result<Box<dyn SourceReader<T>>> {
        let bootstrap = self.properties.bootstrap().to_string();
        let err = |doing: &str, e| KafkaError::new(&bootstrap, doing, e);
        let consumer: BaseConsumer = self
            .properties
            .client_config(&consumer_defaults())
            .create()
            .map_err(|e| err("creating the consumer", e))?;
        let owner = (ctx.location.subtask, ctx.location.parallelism.max(1));
        let owned = self
            .topics
            .owned_partitions(&consumer, &bootstrap, owner, self.timeout)?;
        let restored = restored_offsets(ctx)?;
        let mut partitions = Vec::with_capacity(owned.len());
        for (split, (topic, partition)) in owned.into_iter().enumerate() {
            let (low, high) = consumer
                .fetch_watermarks(&topic, partition, self.timeout)
                .map_err(|e| err(&format!("reading the offsets of `{topic}`/{partition}"), e))?;
            let known = restored
                .as_ref()
                .and_then(|r| r.get(&(topic.clone(), partition)));
            let (next, end) = match known {
                // A restored bounded reader keeps the end it had when the job started.
                Some(&(next, end)) => (next, end.or(self.bounded.then_some(high))),
                None if restored.is_some() => (low, self.bounded.then_some(high)),
                None => (
                    self.start_offset(&consumer, &topic, partition, (low, high))?,
                    self.bounded.then_some(high),
                ),
            };
            partitions.push(PartitionState {
                finished: end.is_some_and(|e| next >= e),
                topic,
                partition,
                split: split as u32,
                next,
                end,
            });
        }
        let mut tpl = TopicPartitionList::new();
        for p in partitions.iter().filter(|p| !p.finished) {
            tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.next))
                .map_err(|e| err("assigning partitions", e))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| err("assigning partitions", e))?;
        if let Some(listener) = &self.listener {
            for p in partitions.iter().filter(|p| !p.finished) {
                listener(owner.0, &p.topic, p.partition);
            }
        }
        tracing::info!(
            operator = %ctx.location.operator,
            subtask = owner.0,
            partitions = ?partitions.iter().map(|p| (p.topic.as_str(), p.partition, p.next)).collect::<Vec<_>>(),
            "Kafka source assigned"
        );
        let index = partitions
            .iter()
            .enumerate()
            .map(|(i, p)| ((p.topic.clone(), p.partition), i))
            .collect();
        let dead_letters = match &self.malformed {
            MalformedPolicy::DeadLetter { topic } => {
                Some(DeadLetters::open(&self.properties, topic, self.timeout)?)
            }
            _ => None,
        };
        let discovery = match (self.discovery, self.bounded) {
            (Some(interval), false) => Some(Discovery {
                topics: self.topics.clone(),
                owner,
                interval,
                timeout: self.timeout,
                clock: Arc::clone(&ctx.clock),
                next_nanos: ctx.clock.monotonic_nanos() + interval.as_nanos() as u64,
                listener: self.listener.clone(),
            }),
            _ => None,
        };
        Ok(Box::new(KafkaReader {
            bounded: self.bounded,
            discovery,
            dead_letters,
            commit_to_group: self.properties.get("group.id").is_some(),
            consumer,
            bootstrap,
            operator: ctx.location.operator.clone(),
            partitions,
            index,
            deserializer: Arc::clone(&self.deserializer),
            malformed: self.malformed.clone(),
            malformed_count: ctx.counter("numMalformedRecords"),
            held: None,
            pending_commits: BTreeMap::new(),
            just_finished: Vec::new(),
            batch_split: None,
        }))
    }
}

impl<T> KafkaSource<T> {
    /// The concrete offset a partition starts at without a checkpoint.
    fn start_offset(
        &self,
        consumer: &BaseConsumer,
        topic: &str,
        partition: i32,
        (low, high): (i64, i64),
    ) -> Result<i64> {
        let bootstrap = self.properties.bootstrap();
        let err = |doing: String, e| KafkaError::new(bootstrap, doing, e);
        let one = |offset: Offset| -> Result<TopicPartitionList> {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, partition, offset)
                .map(|()| tpl)
                .map_err(|e| err(format!("offsets of `{topic}`/{partition}"), e).into())
        };
        let concrete = |tpl: &TopicPartitionList| {
            tpl.find_partition(topic, partition)
                .and_then(|p| match p.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                })
        };
        Ok(match &self.starting {
            StartingOffsets::Earliest => low,
            StartingOffsets::Latest => high,
            StartingOffsets::Specific(map) => map
                .get(&(topic.to_string(), partition))
                .copied()
                .unwrap_or(low)
                .clamp(low, high),
            StartingOffsets::Committed { reset_to_latest } => {
                if self.properties.get("group.id").is_none() {
                    return Err(user_error(format!(
                        "Kafka ({bootstrap}): starting from committed offsets needs a consumer group; set the property `group.id`"
                    )));
                }
                let committed = consumer
                    .committed_offsets(one(Offset::Invalid)?, self.timeout)
                    .map_err(|e| {
                        err(
                            format!("reading the committed offset of `{topic}`/{partition}"),
                            e,
                        )
                    })?;
                match concrete(&committed) {
                    Some(o) => o.clamp(low, high),
                    None if *reset_to_latest => high,
                    None => low,
                }
            }
            StartingOffsets::Timestamp(ms) => {
                let found = consumer
                    .offsets_for_times(one(Offset::Offset(*ms))?, self.timeout)
                    .map_err(|e| {
                        err(
                            format!("finding the offset of time {ms} in `{topic}`/{partition}"),
                            e,
                        )
                    })?;
                concrete(&found).unwrap_or(high)
            }
        })
    }
}

/// When and how a reader looks for new partitions.
struct Discovery {
    topics: Topics,
    owner: (u32, u32),
    interval: Duration,
    timeout: Duration,
    clock: Arc<dyn sluice_core::Clock>,
    next_nanos: u64,
    listener: Option<PartitionListener>,
}

impl<T: Send + 'static> KafkaReader<T> {
    /// Adds the partitions created since the last look (at their earliest offset).
    fn discover(&mut self) -> Result<()> {
        let Some(d) = self.discovery.as_mut() else {
            return Ok(());
        };
        let now = d.clock.monotonic_nanos();
        if now < d.next_nanos {
            return Ok(());
        }
        d.next_nanos = now + d.interval.as_nanos() as u64;
        let owned = match d.topics.owned_partitions(
            &self.consumer,
            &self.bootstrap,
            d.owner,
            d.timeout,
        ) {
            Ok(owned) => owned,
            Err(e) => {
                // A failed look is retried at the next interval; reading goes on.
                tracing::warn!(operator = %self.operator, error = %e, "partition discovery failed");
                return Ok(());
            }
        };
        let timeout = d.timeout;
        let mut tpl = TopicPartitionList::new();
        for (topic, partition) in owned {
            if self.index.contains_key(&(topic.clone(), partition)) {
                continue;
            }
            let (low, _) = self
                .consumer
                .fetch_watermarks(&topic, partition, timeout)
                .map_err(|e| {
                    KafkaError::new(
                        &self.bootstrap,
                        format!("reading the offsets of `{topic}`/{partition}"),
                        e,
                    )
                })?;
            tpl.add_partition_offset(&topic, partition, Offset::Offset(low))
                .map_err(|e| KafkaError::new(&self.bootstrap, "assigning a new partition", e))?;
            tracing::info!(operator = %self.operator, topic = %topic, partition, "new Kafka partition discovered");
            if let Some(listener) = &d.listener {
                listener(d.owner.0, &topic, partition);
            }
            self.index
                .insert((topic.clone(), partition), self.partitions.len());
            self.partitions.push(PartitionState {
                split: self.partitions.len() as u32,
                topic,
                partition,
                next: low,
                end: None,
                finished: false,
            });
        }
        if tpl.count() > 0 {
            self.consumer
                .incremental_assign(&tpl)
                .map_err(|e| KafkaError::new(&self.bootstrap, "assigning new partitions", e))?;
        }
        Ok(())
    }
}

/// The producer of a source's dead letters (at-least-once: flushed at every checkpoint).
struct DeadLetters {
    producer: BaseProducer<DeliveryContext>,
    errors: Arc<DeliveryErrors>,
    topic: String,
    bootstrap: String,
    timeout: Duration,
}

impl DeadLetters {
    fn open(properties: &KafkaProperties, topic: &str, timeout: Duration) -> Result<Self> {
        let bootstrap = properties.bootstrap().to_string();
        let errors = Arc::new(DeliveryErrors::default());
        let producer: BaseProducer<DeliveryContext> = properties
            .client_config(&[("linger.ms", "5"), ("enable.idempotence", "true")])
            .create_with_context(DeliveryContext(Arc::clone(&errors)))
            .map_err(|e| KafkaError::new(&bootstrap, "creating the dead-letter producer", e))?;
        let metadata = producer
            .client()
            .fetch_metadata(Some(topic), timeout)
            .map_err(|e| {
                KafkaError::new(
                    &bootstrap,
                    format!("reading dead-letter topic `{topic}`"),
                    e,
                )
            })?;
        if !metadata
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
        {
            return Err(user_error(format!(
                "Kafka ({bootstrap}): dead-letter topic `{topic}` does not exist; create it first"
            )));
        }
        Ok(DeadLetters {
            producer,
            errors,
            topic: topic.to_string(),
            bootstrap,
            timeout,
        })
    }

    fn send(&self, record: &KafkaRecord, why: &str) -> Result<()> {
        let source = format!("{}/{}/{}", record.topic, record.partition, record.offset);
        let mut headers = OwnedHeaders::new();
        for (key, value) in &record.headers {
            headers = headers.insert(Header {
                key,
                value: value.as_deref(),
            });
        }
        headers = headers
            .insert(Header {
                key: "sluice.error",
                value: Some(why.as_bytes()),
            })
            .insert(Header {
                key: "sluice.source",
                value: Some(source.as_bytes()),
            });
        let mut out = BaseRecord::to(&self.topic).headers(headers);
        if let Some(k) = record.key.as_deref() {
            out = out.key(k);
        }
        if let Some(v) = record.value.as_deref() {
            out = out.payload(v);
        }
        send_retrying(&self.producer, out).map_err(|e| {
            KafkaError::new(
                &self.bootstrap,
                format!("sending a dead letter to `{}`", self.topic),
                e,
            )
            .into()
        })
    }

    fn flush(&self) -> Result<()> {
        self.producer.flush(self.timeout).map_err(|e| {
            KafkaError::new(
                &self.bootstrap,
                "waiting for dead letters to be acknowledged",
                e,
            )
        })?;
        match self.errors.take() {
            Some(why) => Err(user_error(format!(
                "Kafka ({}): a dead letter for `{}` was not delivered: {why}",
                self.bootstrap, self.topic
            ))),
            None => Ok(()),
        }
    }
}

/// Where a restored reader starts each (topic, partition), and the end of a bounded one.
type RestoredOffsets = HashMap<(String, i32), (i64, Option<i64>)>;

/// The offsets a restored reader starts at, by (topic, partition).
fn restored_offsets(ctx: &OperatorContext) -> Result<Option<RestoredOffsets>> {
    let Some(bytes) = ctx.restored.as_ref().and_then(|r| r.operator.as_ref()) else {
        return Ok(None);
    };
    let offsets: Vec<(String, i32, i64, Option<i64>)> = postcard::from_bytes(bytes).map_err(|e| {
        user_error(format!(
            "the checkpoint's Kafka offsets of source `{}` are unreadable ({e}); was the source changed?",
            ctx.location.operator
        ))
    })?;
    Ok(Some(
        offsets
            .into_iter()
            .map(|(t, p, o, end)| ((t, p), (o, end)))
            .collect(),
    ))
}

fn to_record(message: &BorrowedMessage<'_>) -> KafkaRecord {
    KafkaRecord {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms: message.timestamp().to_millis(),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        headers: message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

impl<T: Send + 'static> KafkaReader<T> {
    /// Deserializes a record; `None` when the policy skips it.
    fn deserialize(&self, record: &KafkaRecord) -> Result<Option<T>> {
        match (self.deserializer)(record) {
            Ok(v) => Ok(Some(v)),
            Err(why) => match &self.malformed {
                MalformedPolicy::Fail => Err(user_error(format!(
                    "source `{}`: malformed record in `{}` partition {} at offset {}: {why}; fix the producer, or declare a policy for malformed records (MalformedPolicy::SkipAndCount)",
                    self.operator, record.topic, record.partition, record.offset
                ))),
                MalformedPolicy::SkipAndCount => {
                    self.malformed_count.inc();
                    tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, "skipping a malformed record: {why}");
                    Ok(None)
                }
                MalformedPolicy::DeadLetter { topic } => {
                    self.malformed_count.inc();
                    tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, dead_letter_topic = %topic, "a malformed record goes to the dead-letter topic: {why}");
                    match &self.dead_letters {
                        Some(d) => d.send(record, &why)?,
                        None => {
                            return Err(sluice_runtime::Error::Internal(
                                "dead-letter producer missing".into(),
                            ))
                        }
                    }
                    Ok(None)
                }
            },
        }
    }

    fn mark_finished(&mut self, index: usize) -> Result<()> {
        let p = &mut self.partitions[index];
        if p.finished {
            return Ok(());
        }
        p.finished = true;
        self.just_finished.push(p.split);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&p.topic, p.partition);
        let (bootstrap, topic, partition) = (self.bootstrap.clone(), p.topic.clone(), p.partition);
        self.consumer.pause(&tpl).map_err(|e| {
            KafkaError::new(&bootstrap, format!("pausing `{topic}`/{partition}"), e).into()
        })
    }

    /// The consumer reached the end of a partition numbered `partition` (librdkafka does
    /// not say of which topic). At the end now means at or past the end it had when the
    /// reader started: a bounded partition there is done. When several topics have a
    /// partition of that number, only those whose end is confirmed finish.
    fn on_partition_eof(&mut self, partition: i32) -> Result<()> {
        let candidates: Vec<usize> = self
            .partitions
            .iter()
            .enumerate()
            .filter(|(_, p)| p.partition == partition && p.end.is_some() && !p.finished)
            .map(|(i, _)| i)
            .collect();
        if candidates.len() == 1 {
            return self.mark_finished(candidates[0]);
        }
        if candidates.is_empty() {
            return Ok(());
        }
        let positions = self
            .consumer
            .position()
            .map_err(|e| KafkaError::new(&self.bootstrap, "reading positions", e))?;
        for i in candidates {
            let p = &self.partitions[i];
            let at = positions
                .find_partition(&p.topic, p.partition)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                })
                .unwrap_or(p.next);
            if p.end.is_some_and(|end| at.max(p.next) >= end) {
                self.mark_finished(i)?;
            }
        }
        Ok(())
    }

    /// Takes a record at `index` and `offset` into the batch (or holds it back when the
    /// batch is another partition's); returns whether the batch is closed.
    fn take(
        &mut self,
        held: Held<T>,
        out: &mut Records<T>,
        current: &mut Option<usize>,
    ) -> Result<bool> {
        if current.is_some_and(|c| c != held.index) {
            self.held = Some(held);
            return Ok(true);
        }
        *current = Some(held.index);
        let p = &mut self.partitions[held.index];
        self.batch_split = Some(p.split);
        p.next = held.offset + 1;
        out.push(held.value, held.timestamp);
        let done = p.end.is_some_and(|end| p.next >= end);
        if done {
            self.mark_finished(held.index)?;
            return Ok(true);
        }
        Ok(false)
    }
}

impl<T: Send + 'static> SourceReader<T> for KafkaReader<T> {
    fn poll(&mut self, out: &mut Records<T>, max_records: usize) -> Result<SourcePoll> {
        self.discover()?;
        let mut current = None;
        self.batch_split = None;
        if let Some(held) = self.held.take() {
            if self.take(held, out, &mut current)? {
                return Ok(SourcePoll::Ready);
            }
        }
        while out.len() < max_records {
            let Some(polled) = self.consumer.poll(Duration::ZERO) else {
                break;
            };
            let message = match polled {
                Ok(m) => m,
                Err(rdkafka::error::KafkaError::PartitionEOF(partition)) => {
                    self.on_partition_eof(partition)?;
                    continue;
                }
                Err(e) => {
                    return Err(KafkaError::new(&self.bootstrap, "reading records", e).into());
                }
            };
            let Some(&index) = self
                .index
                .get(&(message.topic().to_string(), message.partition()))
            else {
                continue;
            };
            let p = &self.partitions[index];
            if p.finished {
                continue;
            }
            if p.end.is_some_and(|end| message.offset() >= end) {
                // Past the end (the offsets before it may have been transaction markers,
                // which consumers never see): the partition is done.
                self.mark_finished(index)?;
                continue;
            }
            let record = to_record(&message);
            drop(message);
            let offset = record.offset;
            let timestamp = record.timestamp_ms.map(EventTime);
            let Some(value) = self.deserialize(&record)? else {
                let p = &mut self.partitions[index];
                p.next = offset + 1;
                if p.end.is_some_and(|end| p.next >= end) {
                    self.mark_finished(index)?;
                }
                continue;
            };
            let held = Held {
                index,
                offset,
                value,
                timestamp,
            };
            if self.take(held, out, &mut current)? {
                break;
            }
        }
        // Only a bounded reader ends (an unbounded one with no partition yet waits for
        // discovery).
        if self.bounded && self.partitions.iter().all(|p| p.finished) && self.held.is_none() {
            if let Some(d) = &self.dead_letters {
                d.flush()?;
            }
            return Ok(if out.is_empty() {
                SourcePoll::Finished
            } else {
                SourcePoll::Ready
            });
        }
        Ok(if out.is_empty() {
            SourcePoll::Pending
        } else {
            SourcePoll::Ready
        })
    }

    fn splits(&self) -> Vec<u32> {
        self.partitions.iter().map(|p| p.split).collect()
    }

    fn last_split(&self) -> Option<u32> {
        self.batch_split
    }

    fn take_finished_splits(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.just_finished)
    }

    fn snapshot_position(&mut self, checkpoint: CheckpointId) -> Result<Option<Vec<u8>>> {
        // The checkpoint covers the malformed records before it: their dead letters must
        // be in Kafka.
        if let Some(d) = &self.dead_letters {
            d.flush()?;
        }
        let offsets: Vec<(String, i32, i64)> = self
            .partitions
            .iter()
            .map(|p| (p.topic.clone(), p.partition, p.next))
            .collect();
        let position: Vec<(&str, i32, i64, Option<i64>)> = self
            .partitions
            .iter()
            .map(|p| (p.topic.as_str(), p.partition, p.next, p.end))
            .collect();
        let bytes = postcard::to_allocvec(&position)
            .map_err(|e| sluice_runtime::Error::Internal(format!("cannot encode offsets: {e}")))?;
        if self.commit_to_group {
            self.pending_commits.insert(checkpoint.0, offsets);
        }
        Ok(Some(bytes))
    }

    fn notify_checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<()> {
        // The offsets of this checkpoint go to the group (older pending ones are covered
        // by it); lag tools see progress, restores never read them.
        // The final position (taken when the input ended) belongs to every later
        // checkpoint.
        let key = if self.pending_commits.contains_key(&CheckpointId::FINAL.0) {
            CheckpointId::FINAL.0
        } else {
            checkpoint.0
        };
        let Some(offsets) = self.pending_commits.remove(&key) else {
            return Ok(());
        };
        self.pending_commits.retain(|id, _| *id > checkpoint.0);
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, next) in &offsets {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))
                .map_err(|e| KafkaError::new(&self.bootstrap, "committing offsets", e))?;
        }
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            // Not a correctness matter (restores use the checkpoint): warn, go on.
            tracing::warn!(operator = %self.operator, error = %e, "cannot commit offsets to the consumer group");
        }
        Ok(())
    }
}
