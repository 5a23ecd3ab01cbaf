//! Kafka: [`KafkaSource`] reads topics, [`KafkaSink`] writes one, through `rdkafka` (the
//! bundled librdkafka; the only mature Rust client with transactions).
//!
//! - **[`source`]**: partitions split over the source's subtasks, start offsets
//!   (earliest, latest, committed, timestamp, specific), the next offset of every
//!   partition in each checkpoint (restores never rely on the broker's committed offsets),
//!   offsets committed to the consumer group when a checkpoint completes, one split per
//!   partition for per-partition watermarks, a bounded mode that stops at the offsets
//!   that were the latest at start, and a declared policy for malformed records.
//! - **[`sink`]**: keys and values serialized by the job, partitioning by key or round
//!   robin, and delivery guarantees none, at-least-once (every record acknowledged by
//!   the broker before a checkpoint completes) and exactly-once (a transaction per
//!   checkpoint with a commit marker, correct across a crash between pre-commit and
//!   commit).
//! - **[`format`](mod@format)**: values as JSON or CSV lines, to and from `serde` types.
//! - **[`admin`]**: creating topics (tests, examples).
//!
//! Client properties: `bootstrap.servers` plus any librdkafka property, as Flink's
//! `properties.*` pass through to the Kafka client. See `docs/design/kafka.md`.

pub mod admin;
mod committer;
pub mod format;
pub mod record;
pub mod sink;
pub mod source;
mod transactional;

pub use record::{KafkaRecord, MalformedPolicy};
pub use sink::{DeliveryGuarantee, KafkaSink};
pub use source::{KafkaSource, StartingOffsets};

use std::collections::BTreeMap;

use rdkafka::config::ClientConfig;

/// Client properties: `bootstrap.servers` and any other librdkafka property.
#[derive(Debug, Clone, Default)]
pub struct KafkaProperties {
    properties: BTreeMap<String, String>,
}

impl KafkaProperties {
    /// Properties for the brokers at `bootstrap` (`host:port[,host:port...]`).
    pub fn new(bootstrap: impl Into<String>) -> Self {
        let mut properties = BTreeMap::new();
        properties.insert("bootstrap.servers".to_string(), bootstrap.into());
        KafkaProperties { properties }
    }

    /// Sets a client property (overrides Sluice's defaults).
    #[must_use]
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// The value of a property.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }

    /// The brokers.
    pub fn bootstrap(&self) -> &str {
        self.get("bootstrap.servers").unwrap_or("")
    }

    /// A client configuration: `defaults` first, then these properties over them.
    pub(crate) fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (k, v) in defaults {
            config.set(*k, *v);
        }
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config
    }
}

/// An error of the Kafka client, with what Sluice was doing and how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("Kafka ({bootstrap}): {doing}: {source}{hint}")]
pub struct KafkaError {
    /// The brokers.
    pub bootstrap: String,
    /// What failed.
    pub doing: String,
    /// The client's error.
    #[source]
    pub source: rdkafka::error::KafkaError,
    /// What to do about it.
    pub hint: String,
}

impl KafkaError {
    pub(crate) fn new(
        bootstrap: &str,
        doing: impl Into<String>,
        source: rdkafka::error::KafkaError,
    ) -> Self {
        let text = source.to_string();
        let hint = if text.contains("Transport")
            || text.contains("BrokerTransportFailure")
            || text.contains("AllBrokersDown")
            || text.contains("timed out")
            || text.contains("TimedOut")
        {
            format!("; check that a Kafka broker is reachable at `{bootstrap}` (bootstrap.servers)")
        } else if text.contains("UnknownTopic") {
            "; create the topic first, or check its name".to_string()
        } else {
            String::new()
        };
        KafkaError {
            bootstrap: bootstrap.to_string(),
            doing: doing.into(),
            source,
            hint,
        }
    }
}

impl From<KafkaError> for sluice_runtime::Error {
    fn from(e: KafkaError) -> Self {
        sluice_runtime::Error::User(Box::new(e))
    }
}

/// A plain failure (no client error behind it), with its hint.
pub(crate) fn user_error(message: String) -> sluice_runtime::Error {
    sluice_runtime::Error::User(message.into())
}
