//! What a Kafka source hands the job: [`KafkaRecord`] (everything a record carries) or a
//! value deserialized from it, and what happens to records that do not deserialize
//! ([`MalformedPolicy`]).

use serde::{Deserialize, Serialize};

/// One record read from Kafka, with everything it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaRecord {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset in the partition.
    pub offset: i64,
    /// The record's timestamp (ms since the Unix epoch), when it has one.
    pub timestamp_ms: Option<i64>,
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value (`None` for a tombstone).
    pub value: Option<Vec<u8>>,
    /// The headers, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl KafkaRecord {
    /// The value as UTF-8 text.
    ///
    /// # Errors
    /// When the value is missing or not UTF-8.
    pub fn value_str(&self) -> Result<&str, String> {
        let bytes = self.value.as_deref().ok_or("the record has no value")?;
        std::str::from_utf8(bytes).map_err(|e| format!("the value is not UTF-8: {e}"))
    }

    /// The key as UTF-8 text, if there is a key.
    ///
    /// # Errors
    /// When the key is not UTF-8.
    pub fn key_str(&self) -> Result<Option<&str>, String> {
        self.key
            .as_deref()
            .map(|k| std::str::from_utf8(k).map_err(|e| format!("the key is not UTF-8: {e}")))
            .transpose()
    }
}

/// What a source does with a record its deserializer rejects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MalformedPolicy {
    /// Fail the job, naming topic, partition and offset (the default).
    #[default]
    Fail,
    /// Skip it and count it (`numMalformedRecords`), with a warning.
    SkipAndCount,
    /// Write it unchanged (key, value, headers) to this topic, with the headers
    /// `sluice.error` (why) and `sluice.source` (`topic/partition/offset`), and count it.
    /// A checkpoint completes only once the broker acknowledged the dead letters before
    /// it; one that cannot be delivered fails the job.
    DeadLetter {
        /// The dead-letter topic (it must exist).
        topic: String,
    },
}
