//! The `kafka` table connector with Flink's option names: a source of record values in
//! the table's format (with `METADATA` columns from the records) and a sink writing one
//! record per row, at least once or exactly once (Kafka transactions committed with
//! checkpoints).
//!
//! | option | meaning |
//! |---|---|
//! | `topic` | topic(s), `;`-separated (source); one topic (sink) |
//! | `topic-pattern` | source: topics whose whole name matches a regular expression |
//! | `properties.bootstrap.servers` | required |
//! | `properties.group.id` | the consumer group (offsets committed on checkpoints) |
//! | `properties.*` | passed to the Kafka client (`librdkafka` names) |
//! | `scan.startup.mode` | `group-offsets` (default, as in Flink), `earliest-offset`, `latest-offset`, `timestamp`, `specific-offsets` |
//! | `scan.startup.timestamp-millis` | with `timestamp` |
//! | `scan.startup.specific-offsets` | with `specific-offsets`: `partition:0,offset:42;partition:1,offset:300` |
//! | `scan.bounded.mode` | `unbounded` (default) or `latest-offset` (stop at the end offsets of the start) |
//! | `scan.topic-partition-discovery.interval` | how often to look for new partitions (default 10 s; `0` turns it off) |
//! | `format` / `value.format` | `csv`, `json` (source and sink), `debezium-json` (sink) |
//! | `sink.delivery-guarantee` | `at-least-once` (default), `exactly-once`, `none` |
//! | `sink.transactional-id-prefix` | required with `exactly-once` |
//! | `sink.partitioner` | `default` (by the client), `round-robin` |
//!
//! Metadata columns (`ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp'`): `timestamp`,
//! `partition`, `offset`, `topic`.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    UInt32Array,
};
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use sluice_connectors::kafka::{
    DeliveryGuarantee, KafkaProperties, KafkaRecord, KafkaSink, KafkaSource, StartingOffsets,
};
use sluice_runtime::{OperatorContext, Result as RuntimeResult};

use crate::batch::SqlBatch;
use crate::catalog::CatalogTable;
use crate::error::{Error, Result};
use crate::format::{LineDecoder, TextFormat};
use crate::operators::decode::RecordDecoder;
use crate::parser::ColumnKind;

/// The metadata keys a Kafka table can read.
const METADATA_KEYS: [&str; 4] = ["timestamp", "partition", "offset", "topic"];

fn option<'a>(table: &'a CatalogTable, key: &str) -> Option<&'a str> {
    table.option(key)
}

/// The client properties of `table`: `properties.bootstrap.servers` and every other
/// `properties.*` option.
pub fn properties(table: &CatalogTable) -> Result<KafkaProperties> {
    let name = &table.def.name;
    let bootstrap = option(table, "properties.bootstrap.servers").ok_or_else(|| {
        Error::config(format!(
            "table `{name}` ('connector' = 'kafka') needs 'properties.bootstrap.servers' \
             (host:port of the brokers)"
        ))
    })?;
    let mut props = KafkaProperties::new(bootstrap);
    for (k, v) in &table.def.options {
        if let Some(key) = k.strip_prefix("properties.") {
            if key != "bootstrap.servers" {
                props = props.set(key, v.as_str());
            }
        }
    }
    Ok(props)
}

/// The format of record values (`value.format` or `format`).
///
/// # Errors
/// A missing or unknown format.
pub fn value_format(table: &CatalogTable) -> Result<TextFormat> {
    let mut options = table.def.options.clone();
    if let Some(f) = table.def.options.get("value.format") {
        options.insert("format".into(), f.clone());
    }
    if !options.contains_key("format") {
        return Err(Error::config(format!(
            "table `{}` ('connector' = 'kafka') needs 'format' (csv, json or debezium-json)",
            table.def.name
        )));
    }
    TextFormat::from_options(&options)
}

fn starting_offsets(table: &CatalogTable, topics: &[String]) -> Result<StartingOffsets> {
    let name = &table.def.name;
    let mode = option(table, "scan.startup.mode").unwrap_or("group-offsets");
    Ok(match mode {
        "earliest-offset" => StartingOffsets::Earliest,
        "latest-offset" => StartingOffsets::Latest,
        "group-offsets" => {
            if option(table, "properties.group.id").is_none() {
                return Err(Error::config(format!(
                    "table `{name}`: 'scan.startup.mode' = 'group-offsets' (the default) needs \
                     'properties.group.id'; set it, or set 'scan.startup.mode' = \
                     'earliest-offset'"
                )));
            }
            let reset = option(table, "properties.auto.offset.reset").unwrap_or("latest");
            StartingOffsets::Committed {
                reset_to_latest: reset != "earliest" && reset != "smallest",
            }
        }
        "timestamp" => {
            let ms = option(table, "scan.startup.timestamp-millis")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .ok_or_else(|| {
                    Error::config(format!(
                        "table `{name}`: 'scan.startup.mode' = 'timestamp' needs \
                         'scan.startup.timestamp-millis' (ms since the epoch)"
                    ))
                })?;
            StartingOffsets::Timestamp(ms)
        }
        "specific-offsets" => {
            let [topic] = topics else {
                return Err(Error::config(format!(
                    "table `{name}`: 'specific-offsets' needs exactly one 'topic'"
                )));
            };
            let spec = option(table, "scan.startup.specific-offsets").unwrap_or("");
            let mut offsets = BTreeMap::new();
            for part in spec.split(';').filter(|p| !p.trim().is_empty()) {
                let mut partition = None;
                let mut offset = None;
                for kv in part.split(',') {
                    match kv.trim().split_once(':') {
                        Some(("partition", v)) => partition = v.trim().parse::<i32>().ok(),
                        Some(("offset", v)) => offset = v.trim().parse::<i64>().ok(),
                        _ => {}
                    }
                }
                let (Some(p), Some(o)) = (partition, offset) else {
                    return Err(Error::config(format!(
                        "table `{name}`: bad 'scan.startup.specific-offsets' entry `{part}`; \
                         write 'partition:0,offset:42;partition:1,offset:300'"
                    )));
                };
                offsets.insert((topic.clone(), p), o);
            }
            StartingOffsets::Specific(offsets)
        }
        other => {
            return Err(Error::config(format!(
                "table `{name}`: unknown 'scan.startup.mode' = '{other}' (use group-offsets, \
                 earliest-offset, latest-offset, timestamp or specific-offsets)"
            )))
        }
    })
}

/// The split id of a Kafka partition (per-partition watermarks).
pub fn split_id(topic: &str, partition: i32) -> u32 {
    sluice_core::stable_hash(format!("{topic}/{partition}").as_bytes()) as u32
}

/// The Kafka source of `table`: whole records, for [`KafkaDecoder`].
///
/// # Errors
/// Missing or bad options.
pub fn source(table: &CatalogTable) -> Result<KafkaSource<KafkaRecord>> {
    let name = &table.def.name;
    let props = properties(table)?;
    let topics: Vec<String> = option(table, "topic")
        .map(|t| {
            t.split(';')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let pattern = option(table, "topic-pattern");
    if topics.is_empty() && pattern.is_none() {
        return Err(Error::config(format!(
            "table `{name}` ('connector' = 'kafka') needs 'topic' or 'topic-pattern'"
        )));
    }
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let mut source = KafkaSource::records(props, &refs);
    if let Some(p) = pattern {
        source = source
            .topic_pattern(p)
            .map_err(|e| Error::config(format!("table `{name}`: {e}")))?;
    }
    source = source.starting_offsets(starting_offsets(table, &topics)?);
    match option(table, "scan.bounded.mode").unwrap_or("unbounded") {
        "unbounded" => {}
        "latest-offset" => source = source.bounded(),
        other => {
            return Err(Error::unsupported(format!(
                "table `{name}`: 'scan.bounded.mode' = '{other}' (Sluice has unbounded and \
                 latest-offset)"
            )))
        }
    }
    if let Some(v) = option(table, "scan.topic-partition-discovery.interval") {
        let d = crate::config::parse_duration("scan.topic-partition-discovery.interval", v)?;
        source = source.partition_discovery((!d.is_zero()).then_some(d));
    }
    Ok(source)
}

/// Where each column of a Kafka table comes from.
#[derive(Debug, Clone)]
enum KafkaColumn {
    /// The value column with this index.
    Value(usize),
    /// A metadata key.
    Metadata(&'static str),
}

/// What a [`KafkaDecoder`] needs, checked when the job is planned.
#[derive(Clone)]
pub struct KafkaDecoderSpec {
    format: TextFormat,
    value_schema: SchemaRef,
    origin: String,
    columns: Vec<KafkaColumn>,
    schema: SchemaRef,
}

/// Decodes Kafka records into rows: values in the table's format, metadata columns from
/// the records.
pub struct KafkaDecoder {
    lines: LineDecoder,
    columns: Vec<KafkaColumn>,
    schema: SchemaRef,
    changelog: bool,
}

impl KafkaDecoderSpec {
    /// The decoding of the records of `table`.
    ///
    /// # Errors
    /// An unknown metadata key, or a bad format.
    pub fn new(table: &CatalogTable) -> Result<Self> {
        let format = value_format(table)?;
        let has_metadata = table
            .def
            .columns
            .iter()
            .any(|c| matches!(c.kind, ColumnKind::Metadata { .. }));
        if format.is_changelog() && has_metadata {
            return Err(Error::unsupported(format!(
                "table `{}`: METADATA columns with 'debezium-json' values",
                table.def.name
            )));
        }
        let mut value_fields = Vec::new();
        let mut columns = Vec::new();
        for c in table
            .def
            .columns
            .iter()
            .filter(|c| !matches!(c.kind, ColumnKind::Computed(_)))
        {
            match &c.kind {
                ColumnKind::Metadata { key, .. } => {
                    let known = METADATA_KEYS
                        .into_iter()
                        .find(|k| k == key)
                        .ok_or_else(|| {
                            Error::unsupported(format!(
                                "table `{}`: metadata '{key}' (Kafka tables have {})",
                                table.def.name,
                                METADATA_KEYS.join(", ")
                            ))
                        })?;
                    columns.push(KafkaColumn::Metadata(known));
                }
                _ => {
                    columns.push(KafkaColumn::Value(value_fields.len()));
                    value_fields.push(Field::new(&c.name, c.data_type.clone(), c.nullable));
                }
            }
        }
        Ok(KafkaDecoderSpec {
            format,
            value_schema: Arc::new(Schema::new(value_fields)),
            origin: format!("Kafka table `{}`", table.def.name),
            columns,
            schema: Arc::clone(&table.physical_schema),
        })
    }

    /// A decoder (one per subtask).
    pub fn decoder(&self) -> KafkaDecoder {
        KafkaDecoder {
            lines: LineDecoder::new(
                self.format.clone(),
                Arc::clone(&self.value_schema),
                self.origin.clone(),
            ),
            columns: self.columns.clone(),
            schema: Arc::clone(&self.schema),
            changelog: self.format.is_changelog(),
        }
    }
}

impl KafkaDecoder {
    fn metadata(
        &self,
        key: &str,
        records: &[KafkaRecord],
        rows: &UInt32Array,
        target: &DataType,
    ) -> Result<ArrayRef> {
        let all: ArrayRef = match key {
            "timestamp" => Arc::new(TimestampMillisecondArray::from(
                records.iter().map(|r| r.timestamp_ms).collect::<Vec<_>>(),
            )),
            "partition" => Arc::new(Int32Array::from_iter_values(
                records.iter().map(|r| r.partition),
            )),
            "offset" => Arc::new(Int64Array::from_iter_values(
                records.iter().map(|r| r.offset),
            )),
            _ => Arc::new(StringArray::from_iter_values(
                records.iter().map(|r| r.topic.as_str()),
            )),
        };
        let taken = take(all.as_ref(), rows, None)?;
        Ok(if taken.data_type() == target {
            taken
        } else {
            arrow::compute::cast(&taken, target)?
        })
    }

    /// Rows of `records`, with their kinds of change for a changelog format.
    ///
    /// # Errors
    /// A malformed value when the table's policy is to fail.
    pub fn decode(&self, records: &[KafkaRecord]) -> Result<Option<SqlBatch>> {
        if self.changelog {
            let mut lines = Vec::with_capacity(records.len());
            for r in records {
                // A record without a value (a tombstone) is no change.
                if r.value.is_none() {
                    continue;
                }
                match r.value_str() {
                    Ok(v) => lines.push(v.to_string()),
                    Err(e) if self.lines.skips_malformed() => {
                        self.lines.skip_record();
                        tracing::debug!(topic = %r.topic, partition = r.partition, offset = r.offset, error = %e, "skipping a malformed record");
                    }
                    Err(e) => {
                        return Err(Error::Execution(format!(
                            "malformed record in {} (topic `{}`, partition {}, offset {}): {e} \
                             (set 'debezium-json.ignore-parse-errors' = 'true' to skip it)",
                            self.lines.origin(),
                            r.topic,
                            r.partition,
                            r.offset
                        )))
                    }
                }
            }
            return self.lines.decode_changelog(&lines);
        }
        Ok(self.decode_records(records)?.map(SqlBatch::new))
    }

    /// Rows of `records`.
    ///
    /// # Errors
    /// A malformed value when the table's policy is to fail.
    pub fn decode_records(&self, records: &[KafkaRecord]) -> Result<Option<RecordBatch>> {
        let mut lines = Vec::with_capacity(records.len());
        for r in records {
            match r.value_str() {
                Ok(v) => lines.push(v.to_string()),
                Err(e) if self.lines.skips_malformed() => {
                    self.lines.skip_record();
                    tracing::debug!(topic = %r.topic, partition = r.partition, offset = r.offset, error = %e, "skipping a malformed record");
                    lines.push(String::new());
                }
                Err(e) => {
                    return Err(Error::Execution(format!(
                        "malformed record in {} (topic `{}`, partition {}, offset {}): {e} (set \
                         'csv.ignore-parse-errors' or 'json.ignore-parse-errors' to skip it)",
                        self.lines.origin(),
                        r.topic,
                        r.partition,
                        r.offset
                    )))
                }
            }
        }
        let (values, kept) = self.lines.decode_lines_kept(&lines)?;
        let Some(values) = values else {
            return Ok(None);
        };
        let rows = UInt32Array::from(kept);
        let mut columns = Vec::with_capacity(self.columns.len());
        for (i, c) in self.columns.iter().enumerate() {
            columns.push(match c {
                KafkaColumn::Value(v) => Arc::clone(values.column(*v)),
                KafkaColumn::Metadata(key) => {
                    self.metadata(key, records, &rows, self.schema.field(i).data_type())?
                }
            });
        }
        Ok(Some(RecordBatch::try_new(
            Arc::clone(&self.schema),
            columns,
        )?))
    }
}

impl RecordDecoder<KafkaRecord> for KafkaDecoder {
    fn open(&mut self, ctx: &OperatorContext) -> RuntimeResult<()> {
        RecordDecoder::<String>::open(&mut self.lines, ctx)
    }

    fn decode(&mut self, records: Vec<KafkaRecord>) -> RuntimeResult<Option<SqlBatch>> {
        // The source polls one partition per batch: its rows form one split, for
        // watermarks per partition.
        let split = records.first().map(|r| split_id(&r.topic, r.partition));
        KafkaDecoder::decode(self, &records)
            .map(|b| {
                b.map(|b| match split {
                    Some(s) => b.with_split(s),
                    None => b,
                })
            })
            .map_err(Error::into_runtime)
    }
}

/// The Kafka sink of `table`, writing lines as record values.
///
/// # Errors
/// Missing or bad options.
pub fn sink(table: &CatalogTable) -> Result<KafkaSink<String>> {
    let name = &table.def.name;
    let props = properties(table)?;
    let topic = option(table, "topic").ok_or_else(|| {
        Error::config(format!(
            "table `{name}` ('connector' = 'kafka') needs 'topic' to write to"
        ))
    })?;
    if topic.contains(';') {
        return Err(Error::config(format!(
            "table `{name}`: a Kafka sink writes one 'topic', not `{topic}`"
        )));
    }
    if table
        .def
        .columns
        .iter()
        .any(|c| matches!(c.kind, ColumnKind::Metadata { .. }))
    {
        return Err(Error::unsupported(format!(
            "table `{name}`: writing METADATA columns to Kafka; write it through a table \
             without them"
        )));
    }
    if table.def.options.contains_key("key.fields") || table.def.options.contains_key("key.format")
    {
        return Err(Error::unsupported(format!(
            "table `{name}`: 'key.fields'/'key.format' (record keys are not written yet)"
        )));
    }
    let mut sink = KafkaSink::strings(props, topic);
    match option(table, "sink.delivery-guarantee").unwrap_or("at-least-once") {
        "at-least-once" => sink = sink.delivery_guarantee(DeliveryGuarantee::AtLeastOnce),
        "none" => sink = sink.delivery_guarantee(DeliveryGuarantee::None),
        "exactly-once" => {
            let prefix = option(table, "sink.transactional-id-prefix").ok_or_else(|| {
                Error::config(format!(
                    "table `{name}`: 'sink.delivery-guarantee' = 'exactly-once' needs \
                     'sink.transactional-id-prefix' (unique to this sink, stable across restarts)"
                ))
            })?;
            sink = sink.exactly_once(prefix);
        }
        other => {
            return Err(Error::config(format!(
                "table `{name}`: unknown 'sink.delivery-guarantee' = '{other}' (use \
                 at-least-once, exactly-once or none)"
            )))
        }
    }
    match option(table, "sink.partitioner").unwrap_or("default") {
        "default" => {}
        "round-robin" => sink = sink.round_robin(),
        other => {
            return Err(Error::unsupported(format!(
                "table `{name}`: 'sink.partitioner' = '{other}' (Sluice has default and \
                 round-robin)"
            )))
        }
    }
    Ok(sink)
}
