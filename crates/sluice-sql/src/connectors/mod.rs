//! Table connectors: what `'connector' = '...'` in a `WITH` clause reads or writes.
//!
//! | connector | source | sink | options (Flink's names) |
//! |---|---|---|---|
//! | `filesystem` | lines of a file or directory | part files in a directory, committed with checkpoints | `path`, `format` (`csv`, `json`), `csv.*`, `json.ignore-parse-errors` |
//! | `nexmark` | the Nexmark generator ([`nexmark`]) | | `events.num`, `first-event.rate`, proportions, ... |
//! | `datagen` | generated rows ([`datagen`]) | | `number-of-rows`, `rows-per-second`, `fields.<f>.kind/min/max/length/start/end` |
//! | `kafka` | record values of topics, in a format, with metadata columns ([`kafka`]) | one record per row, at least or exactly once | `topic`, `properties.*`, `scan.startup.mode`, `format`, `sink.delivery-guarantee`, ... |
//! | `print` | | standard output, Flink's `+I[...]` form | `print-identifier` |
//! | `blackhole` | | discards rows | |
//!
//! Sources deliver a table's physical columns; the planner adds computed columns and
//! watermarks behind them.

pub mod datagen;
pub mod kafka;
pub mod nexmark;

use std::sync::Arc;

use sluice_connectors::kafka::KafkaRecord;
use sluice_connectors::{DiscardSink, PrintSink, TextFileSource, TransactionalFileSink};
use sluice_core::OperatorId;
use sluice_runtime::graph::NodeKind;
use sluice_runtime::sink::{Sink, SinkOperator};

use crate::catalog::CatalogTable;
use crate::error::{Error, Result};
use crate::exchange::SqlPartitioning;
use crate::format::{LineDecoder, RowWriter, TextFormat};
use crate::operators::decode::DecodeOperator;
use crate::operators::sink::{PartitionedLines, SinkEncoder, TableSinkOperator};
use crate::operators::watermark::SplitRegistry;
use crate::planner::graph::GraphBuilder;
use crate::planner::Stream;

fn required<'a>(table: &'a CatalogTable, key: &str) -> Result<&'a str> {
    table.option(key).ok_or_else(|| {
        Error::config(format!(
            "table `{}` ('connector' = '{}') needs the option '{key}'",
            table.def.name,
            table.connector()
        ))
    })
}

/// A table's source as planned.
pub struct PlannedSource {
    /// The node giving the rows of the physical schema (the decoder).
    pub node: OperatorId,
    /// Its parallelism.
    pub parallelism: u32,
    /// The splits each subtask reads, when the source tells them (Kafka partitions).
    pub splits: Option<SplitRegistry>,
}

/// Adds the source of `table` and its decoder; returns the decoder's node (rows of the
/// physical schema) and its parallelism.
///
/// # Errors
/// An unknown connector or bad options.
pub fn add_source(
    graph: &mut GraphBuilder,
    table: &CatalogTable,
    parallelism: u32,
) -> Result<PlannedSource> {
    let name = &table.def.name;
    let plain = |(node, parallelism): (OperatorId, u32)| PlannedSource {
        node,
        parallelism,
        splits: None,
    };
    match table.connector() {
        "filesystem" => {
            let path = required(table, "path")?.to_string();
            let format = TextFormat::from_options(&table.def.options)?;
            // A changelog is read in order: every file whole, by one subtask.
            let (parallelism, files) = if format.is_changelog() {
                (1, TextFileSource::new(&path).whole_files())
            } else {
                (parallelism, TextFileSource::new(&path))
            };
            let source = graph.source::<String>(
                &format!("Source: {name} (filesystem {path})"),
                parallelism,
                Arc::new(files),
            );
            let schema = Arc::clone(&table.physical_schema);
            let origin = format!("table `{name}` ({path})");
            let decoder = graph.typed_operator::<String, _, _>(
                &format!("Decode({name})"),
                parallelism,
                move |_| {
                    Ok(DecodeOperator::new(Box::new(LineDecoder::new(
                        format.clone(),
                        Arc::clone(&schema),
                        origin.clone(),
                    ))))
                },
            );
            graph.typed_forward::<String>(source, decoder);
            Ok(plain((decoder, parallelism)))
        }
        "kafka" => {
            let registry = SplitRegistry::default();
            let announced = Arc::clone(&registry);
            let source =
                kafka::source(table)?.on_partition_assigned(move |subtask, topic, partition| {
                    announced
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .entry(subtask)
                        .or_default()
                        .push(kafka::split_id(topic, partition));
                });
            let spec = kafka::KafkaDecoderSpec::new(table)?;
            let topic = table.option("topic").unwrap_or("a topic pattern");
            let source = graph.source::<KafkaRecord>(
                &format!("Source: {name} (kafka {topic})"),
                parallelism,
                Arc::new(source),
            );
            let decoder = graph.typed_operator::<KafkaRecord, _, _>(
                &format!("Decode({name})"),
                parallelism,
                move |_| Ok(DecodeOperator::new(Box::new(spec.decoder()))),
            );
            graph.typed_forward::<KafkaRecord>(source, decoder);
            Ok(PlannedSource {
                node: decoder,
                parallelism,
                splits: Some(registry),
            })
        }
        "nexmark" => nexmark::add_source(graph, table, parallelism).map(plain),
        "datagen" => datagen::add_source(graph, table, parallelism).map(plain),
        "" => Err(Error::config(format!(
            "table `{name}` has no 'connector' option; add WITH ('connector' = 'filesystem', ...)"
        ))),
        other => Err(Error::config(format!(
            "table `{name}`: connector '{other}' cannot be read (sources: filesystem, kafka, \
             nexmark, datagen)"
        ))),
    }
}

fn sink_node<E, S>(
    graph: &mut GraphBuilder,
    name: &str,
    parallelism: u32,
    encoder: E,
    sink: S,
) -> OperatorId
where
    E: SinkEncoder + Clone + Sync,
    S: Sink<E::Record>,
{
    let sink = Arc::new(sink);
    graph.operator(name, parallelism, NodeKind::Sink, move |ctx| {
        Ok(TableSinkOperator::new(
            encoder.clone(),
            SinkOperator::new(sink.create_writer(ctx)?),
        ))
    })
}

/// The encoder of a `PARTITIONED BY` file table: partition columns go into the path.
fn partitioned_lines(table: &CatalogTable, writer: RowWriter) -> Result<PartitionedLines> {
    let schema = &table.physical_schema;
    let mut partition_columns = Vec::new();
    for key in &table.def.partition_keys {
        let i = schema.index_of(key).map_err(|_| {
            Error::plan(format!(
                "table `{}`: PARTITIONED BY column `{key}` is not a physical column",
                table.def.name
            ))
        })?;
        partition_columns.push((i, key.clone()));
    }
    let data_columns = (0..schema.fields().len())
        .filter(|i| !partition_columns.iter().any(|(p, _)| p == i))
        .collect();
    Ok(PartitionedLines {
        writer,
        partition_columns,
        data_columns,
    })
}

/// Adds the sink of `table` behind `input` (rows of the table's physical schema).
///
/// # Errors
/// An unknown connector or bad options.
pub fn add_sink(graph: &mut GraphBuilder, table: &CatalogTable, input: &Stream) -> Result<()> {
    let name = &table.def.name;
    let p = input.parallelism;
    let node = match table.connector() {
        "print" => {
            let identifier = table.option("print-identifier").map(str::to_string);
            let sink = PrintSink::new(|line: &String| line.clone());
            sink_node(graph, &format!("Sink: {name} (print)"), p, RowWriter::Print { identifier }, sink)
        }
        "blackhole" => sink_node(
            graph,
            &format!("Sink: {name} (blackhole)"),
            p,
            RowWriter::Nothing,
            DiscardSink::new(),
        ),
        "filesystem" => {
            let path = required(table, "path")?.to_string();
            let writer = match TextFormat::from_options(&table.def.options)? {
                TextFormat::Csv(o) => RowWriter::Csv(o),
                TextFormat::Json { .. } => RowWriter::Json,
                TextFormat::DebeziumJson { .. } => RowWriter::DebeziumJson,
            };
            if !input.append_only && !writer.accepts_changelog() {
                return Err(Error::plan(format!(
                    "table `{name}` ('format' = '{}') takes only insertions, but the query \
                     updates its results (a GROUP BY without a window); write it with \
                     'format' = 'debezium-json', or to 'connector' = 'print'",
                    table.option("format").unwrap_or("csv")
                )));
            }
            if let Some(key) = table
                .def
                .options
                .keys()
                .find(|k| k.starts_with("sink.partition-commit."))
            {
                return Err(Error::config(format!(
                    "table `{name}`: '{key}' is not supported yet (Sluice commits partition \
                     files with checkpoints, without success files or metastore policies); \
                     remove the option"
                )));
            }
            let label = format!("Sink: {name} (filesystem {path})");
            if table.def.partition_keys.is_empty() {
                let sink = TransactionalFileSink::new(path.clone(), |line: &String| line.clone());
                sink_node(graph, &label, p, writer, sink)
            } else {
                let encoder = partitioned_lines(table, writer)?;
                let sink = TransactionalFileSink::partitioned(
                    path.clone(),
                    |r: &(String, String)| r.1.clone(),
                    |r: &(String, String)| r.0.clone(),
                );
                sink_node(graph, &label, p, encoder, sink)
            }
        }
        "kafka" => {
            let writer = match kafka::value_format(table)? {
                TextFormat::Csv(o) => RowWriter::Csv(o),
                TextFormat::Json { .. } => RowWriter::Json,
                TextFormat::DebeziumJson { .. } => RowWriter::DebeziumJson,
            };
            if !input.append_only && !writer.accepts_changelog() {
                return Err(Error::plan(format!(
                    "table `{name}` (Kafka, 'format' = '{}') takes only insertions, but the \
                     query updates its results; write it with 'format' = 'debezium-json'",
                    table.option("format").unwrap_or("csv")
                )));
            }
            let sink = kafka::sink(table)?;
            let topic = table.option("topic").unwrap_or_default();
            sink_node(graph, &format!("Sink: {name} (kafka {topic})"), p, writer, sink)
        }
        "" => {
            return Err(Error::config(format!(
                "table `{name}` has no 'connector' option; add WITH ('connector' = 'print') or another sink"
            )))
        }
        other => {
            return Err(Error::config(format!(
                "table `{name}`: connector '{other}' cannot be written (sinks: print, blackhole, \
                 filesystem, kafka)"
            )))
        }
    };
    graph.connect(
        input.node,
        node,
        Arc::clone(&input.schema),
        SqlPartitioning::Forward,
    );
    Ok(())
}
