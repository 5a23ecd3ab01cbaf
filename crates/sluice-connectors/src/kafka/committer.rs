//! The Kafka side of the exactly-once sink: [`TxnClient`] (a transactional producer and
//! the reader of its commit marker) and [`Committer`], a thread that commits log entries
//! in order while the sink's task goes on processing.
//!
//! A transaction's commit takes about 100 ms against the test broker (its first produce
//! waits that long), so committing on the task thread would stall the job at every
//! checkpoint. The committer takes entries in checkpoint order; the writer keeps each
//! entry in its checkpointed state until the committer confirmed it, so an entry whose
//! commit was under way at a crash is decided by the marker on restore, as always. A
//! committer of a failed attempt that goes on is fenced by the restored writer's
//! `init_transactions`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use sluice_runtime::Result;

use super::sink::{base_record, send_retrying, DeliveryContext, DeliveryErrors};
use super::{user_error, KafkaError, KafkaProperties};

/// A serialized record waiting in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LoggedRecord {
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Vec<u8>,
    pub(crate) partition: Option<i32>,
}

/// A transactional producer with the client that reads its commit marker.
pub(crate) struct TxnClient {
    producer: BaseProducer<DeliveryContext>,
    errors: Arc<DeliveryErrors>,
    marker: BaseConsumer,
    bootstrap: String,
    topic: String,
    timeout: Duration,
    /// The highest entry committed (the marker).
    pub(crate) committed: u64,
}

impl TxnClient {
    /// Creates the clients of `transactional_id`, fences its older producers (which
    /// aborts a transaction one left open) and reads the marker.
    pub(crate) fn open(
        properties: &KafkaProperties,
        topic: &str,
        transactional_id: &str,
        timeout: Duration,
    ) -> Result<Self> {
        let bootstrap = properties.bootstrap().to_string();
        let err = |doing: String, e| KafkaError::new(&bootstrap, doing, e);
        let errors = Arc::new(DeliveryErrors::default());
        let timeout_ms = timeout.as_millis().to_string();
        let producer: BaseProducer<DeliveryContext> = properties
            .client_config(&[
                ("linger.ms", "5"),
                ("transaction.timeout.ms", "60000"),
                ("transactional.id", transactional_id),
            ])
            .create_with_context(DeliveryContext(Arc::clone(&errors)))
            .map_err(|e| err("creating the transactional producer".into(), e))?;
        let marker: BaseConsumer = properties
            .client_config(&[("enable.auto.commit", "false")])
            .set("group.id", format!("{transactional_id}-commits"))
            .set("socket.timeout.ms", timeout_ms.as_str())
            .create()
            .map_err(|e| err("creating the commit-marker client".into(), e))?;
        producer.init_transactions(timeout).map_err(|e| {
            err(
                format!("initializing transactions of `{transactional_id}`"),
                e,
            )
        })?;
        let mut client = TxnClient {
            producer,
            errors,
            marker,
            bootstrap: bootstrap.clone(),
            topic: topic.to_string(),
            timeout,
            committed: 0,
        };
        client.committed = client.read_marker()?;
        Ok(client)
    }

    /// The checkpoint id of the last committed entry (0: none).
    pub(crate) fn read_marker(&self) -> Result<u64> {
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
        send_retrying(&self.producer, base_record(&self.topic, record)).map_err(|e| {
            KafkaError::new(
                &self.bootstrap,
                format!("sending to `{}` in a transaction", self.topic),
                e,
            )
            .into()
        })
    }

    /// Writes entry `id` in one transaction with its marker.
    pub(crate) fn commit_entry(&mut self, id: u64, records: &[LoggedRecord]) -> Result<()> {
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
}

enum Command {
    Commit(u64, Arc<Vec<LoggedRecord>>),
    Drain(Sender<()>),
}

/// A thread committing log entries in the order it gets them. Dropping it lets the
/// thread commit what is queued (entries of completed checkpoints) and waits for it: no
/// producer of the writer's id outlives the writer, since a zombie's open transaction
/// would hold back `read_committed` readers (and a restored writer fences nothing that
/// is still running). With an unreachable broker that wait is bounded by the
/// transaction timeout of the entry under way; the queued ones then fail at once.
pub(crate) struct Committer {
    commands: Option<Sender<Command>>,
    committed: Arc<AtomicU64>,
    error: Arc<Mutex<Option<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.commands = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Committer {
    /// Starts the thread, which owns `client` from now on.
    pub(crate) fn spawn(client: TxnClient, name: String) -> Result<Self> {
        let (commands, rx) = mpsc::channel();
        let committed = Arc::new(AtomicU64::new(client.committed));
        let error = Arc::new(Mutex::new(None));
        let (c, e) = (Arc::clone(&committed), Arc::clone(&error));
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(client, &rx, &c, &e))
            .map_err(|e| user_error(format!("cannot start the Kafka committer thread: {e}")))?;
        Ok(Committer {
            commands: Some(commands),
            committed,
            error,
            thread: Some(thread),
        })
    }

    /// Queues entry `id` for its transaction.
    pub(crate) fn commit(&self, id: u64, records: Arc<Vec<LoggedRecord>>) -> Result<()> {
        self.check()?;
        self.sender()?
            .send(Command::Commit(id, records))
            .map_err(|_| user_error("the Kafka committer thread is gone".into()))
    }

    fn sender(&self) -> Result<&Sender<Command>> {
        self.commands
            .as_ref()
            .ok_or_else(|| user_error("the Kafka committer is stopped".into()))
    }

    /// The highest entry committed so far.
    pub(crate) fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// The committer's failure, if it had one.
    pub(crate) fn check(&self) -> Result<()> {
        match self
            .error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            Some(why) => Err(user_error(why)),
            None => Ok(()),
        }
    }

    /// Waits until every queued entry was committed (or the committer failed).
    pub(crate) fn drain(&self) -> Result<()> {
        let (tx, rx) = mpsc::channel();
        self.sender()?
            .send(Command::Drain(tx))
            .map_err(|_| user_error("the Kafka committer thread is gone".into()))?;
        rx.recv()
            .map_err(|_| user_error("the Kafka committer thread is gone".into()))?;
        self.check()
    }
}

/// The committer thread: commits until its writer is gone; after a failure it only
/// answers drains (the writer reports the failure and the job restores).
fn run(
    mut client: TxnClient,
    commands: &Receiver<Command>,
    committed: &AtomicU64,
    error: &Mutex<Option<String>>,
) {
    while let Ok(command) = commands.recv() {
        match command {
            Command::Commit(id, records) => {
                if error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_some()
                {
                    continue;
                }
                match client.commit_entry(id, &records) {
                    Ok(()) => committed.store(id, Ordering::Release),
                    Err(e) => {
                        *error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
                    }
                }
            }
            Command::Drain(reply) => {
                let _ = reply.send(());
            }
        }
    }
}
