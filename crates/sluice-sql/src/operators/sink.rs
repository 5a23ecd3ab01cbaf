//! [`TableSinkOperator`]: the end of an `INSERT INTO`: rows formatted as text lines
//! ([`crate::format::RowWriter`]) and handed to a connector's typed sink, whose
//! checkpoint behaviour (two-phase commit of part files, Kafka transactions) applies
//! unchanged. A partitioned file sink takes (partition path, line) pairs
//! ([`PartitionedLines`]).

use sluice_core::{CheckpointId, Records, Watermark};
use sluice_runtime::checkpoint::OperatorSnapshot;
use sluice_runtime::sink::SinkOperator;
use sluice_runtime::{Collector, Operator, OperatorContext, Result as RuntimeResult};

use arrow::array::Array;

use crate::batch::SqlBatch;
use crate::error::{exec, Result};
use crate::format::RowWriter;

/// How rows become a sink's records.
pub trait SinkEncoder: Send + 'static {
    /// The sink's record.
    type Record: Send + 'static;
    /// The records of `batch`.
    ///
    /// # Errors
    /// When a value cannot be formatted.
    fn encode(&self, batch: &SqlBatch) -> Result<Vec<Self::Record>>;
}

impl SinkEncoder for RowWriter {
    type Record = String;
    fn encode(&self, batch: &SqlBatch) -> Result<Vec<String>> {
        self.lines(batch)
    }
}

/// Rows as (partition path, line) pairs: the path names the values of the partition
/// columns (`dt=2024-01-31/hm=12%3A00`, escaped as Flink and Hive do), the line the
/// other columns.
#[derive(Clone)]
pub struct PartitionedLines {
    /// Formats the non-partition columns.
    pub writer: RowWriter,
    /// The partition columns' indices and names, in `PARTITIONED BY` order.
    pub partition_columns: Vec<(usize, String)>,
    /// The other columns' indices.
    pub data_columns: Vec<usize>,
}

impl SinkEncoder for PartitionedLines {
    type Record = (String, String);
    fn encode(&self, batch: &SqlBatch) -> Result<Vec<(String, String)>> {
        let data = batch.data();
        let lines = self
            .writer
            .lines(&batch.with_data(data.project(&self.data_columns)?))?;
        if lines.len() != data.num_rows() {
            return Err(crate::error::Error::Execution(
                "a value holds a line break, but a partitioned file sink writes one line per \
                 row; remove line breaks (REPLACE(col, CHR(10), ' '))"
                    .into(),
            ));
        }
        let mut values = Vec::with_capacity(self.partition_columns.len());
        for (c, _) in &self.partition_columns {
            let column = data.column(*c);
            let formatter = arrow::util::display::ArrayFormatter::try_new(
                column.as_ref(),
                &arrow::util::display::FormatOptions::default(),
            )?;
            values.push((column, formatter));
        }
        Ok(lines
            .into_iter()
            .enumerate()
            .map(|(row, line)| {
                let path = self
                    .partition_columns
                    .iter()
                    .zip(&values)
                    .map(|((_, name), (column, formatter))| {
                        let value = if column.is_null(row) {
                            DEFAULT_PARTITION.to_string()
                        } else {
                            escape_path_name(&formatter.value(row).to_string())
                        };
                        format!("{}={value}", escape_path_name(name))
                    })
                    .collect::<Vec<_>>()
                    .join("/");
                (path, line)
            })
            .collect())
    }
}

/// The partition directory of a NULL or empty value (Flink's `partition.default-name`).
pub const DEFAULT_PARTITION: &str = "__DEFAULT_PARTITION__";

/// `value` with the characters Flink and Hive escape in partition paths as `%XX`.
pub fn escape_path_name(value: &str) -> String {
    if value.is_empty() {
        return DEFAULT_PARTITION.to_string();
    }
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let escape = c.is_ascii_control()
            || matches!(
                c,
                '"' | '#'
                    | '%'
                    | '\''
                    | '*'
                    | '/'
                    | ':'
                    | '='
                    | '?'
                    | '\\'
                    | '\u{7f}'
                    | '{'
                    | '['
                    | ']'
                    | '^'
            );
        if escape {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes rows through a sink of records made by an encoder.
pub struct TableSinkOperator<E: SinkEncoder> {
    encoder: E,
    sink: SinkOperator<E::Record>,
}

impl<E: SinkEncoder> TableSinkOperator<E> {
    /// Rows encoded by `encoder` into `sink`.
    pub fn new(encoder: E, sink: SinkOperator<E::Record>) -> Self {
        TableSinkOperator { encoder, sink }
    }
}

impl<E: SinkEncoder> Operator for TableSinkOperator<E> {
    type In = SqlBatch;
    type Out = Records<()>;

    fn open(&mut self, ctx: &OperatorContext) -> RuntimeResult<()> {
        self.sink.open(ctx)
    }

    fn on_data(
        &mut self,
        batch: SqlBatch,
        out: &mut Collector<'_, Records<()>>,
    ) -> RuntimeResult<()> {
        let records = exec(self.encoder.encode(&batch))?;
        self.sink.on_data(Records::from(records), out)
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, Records<()>>,
    ) -> RuntimeResult<()> {
        self.sink.on_watermark(watermark, out)
    }

    fn snapshot_state(&mut self, checkpoint: CheckpointId) -> RuntimeResult<OperatorSnapshot> {
        self.sink.snapshot_state(checkpoint)
    }

    fn notify_checkpoint_complete(
        &mut self,
        checkpoint: CheckpointId,
        out: &mut Collector<'_, Records<()>>,
    ) -> RuntimeResult<()> {
        self.sink.notify_checkpoint_complete(checkpoint, out)
    }

    fn on_end_of_input(&mut self, out: &mut Collector<'_, Records<()>>) -> RuntimeResult<()> {
        self.sink.on_end_of_input(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_are_escaped_as_in_flink() {
        assert_eq!(escape_path_name("12:00"), "12%3A00");
        assert_eq!(escape_path_name("a/b=c"), "a%2Fb%3Dc");
        assert_eq!(escape_path_name("2024-01-31"), "2024-01-31");
        assert_eq!(escape_path_name(""), DEFAULT_PARTITION);
    }
}
