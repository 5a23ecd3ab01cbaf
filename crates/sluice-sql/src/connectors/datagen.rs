//! The `datagen` connector: rows computed from their index, as Flink's `datagen`:
//! `number-of-rows` (unbounded when absent), `rows-per-second` (default 10000, `0` for
//! as fast as possible), and per field `fields.<name>.kind` = `random` (default; `min`,
//! `max`, `length`) or `sequence` (`start`, `end`). Random values are a hash of the row
//! index and column, so a replay after a failure produces the same rows.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, SchemaRef};
use sluice_connectors::GeneratorSource;
use sluice_core::OperatorId;
use sluice_runtime::Result as RuntimeResult;

use crate::batch::SqlBatch;
use crate::catalog::CatalogTable;
use crate::error::{Error, Result};
use crate::operators::decode::{DecodeOperator, RecordDecoder};
use crate::planner::graph::GraphBuilder;

#[derive(Debug, Clone)]
enum FieldGen {
    Random { min: i64, max: i64, length: usize },
    Sequence { start: i64, end: i64 },
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Builds rows from row indices.
pub struct DatagenDecoder {
    schema: SchemaRef,
    fields: Vec<FieldGen>,
}

fn parse_i64(table: &CatalogTable, key: &str, default: i64) -> Result<i64> {
    match table.option(key) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            Error::config(format!(
                "table `{}`: option '{key}' must be a whole number, got '{v}'",
                table.def.name
            ))
        }),
    }
}

impl DatagenDecoder {
    fn new(table: &CatalogTable) -> Result<Self> {
        let mut fields = Vec::new();
        for f in table.physical_schema.fields() {
            let prefix = format!("fields.{}.", f.name());
            let kind = table.option(&format!("{prefix}kind")).unwrap_or("random");
            let gen = match kind {
                "random" => FieldGen::Random {
                    min: parse_i64(table, &format!("{prefix}min"), 0)?,
                    max: parse_i64(table, &format!("{prefix}max"), i64::from(i32::MAX))?,
                    length: parse_i64(table, &format!("{prefix}length"), 100)?.max(0) as usize,
                },
                "sequence" => FieldGen::Sequence {
                    start: parse_i64(table, &format!("{prefix}start"), 0)?,
                    end: parse_i64(table, &format!("{prefix}end"), i64::MAX)?,
                },
                other => {
                    return Err(Error::config(format!(
                        "table `{}`: '{prefix}kind' must be 'random' or 'sequence', got '{other}'",
                        table.def.name
                    )))
                }
            };
            match f.data_type() {
                DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Float32
                | DataType::Float64
                | DataType::Utf8
                | DataType::Boolean
                | DataType::Timestamp(_, _)
                | DataType::Decimal128(_, _) => {}
                other => {
                    return Err(Error::config(format!(
                        "table `{}`: datagen cannot generate column `{}` of type {other}",
                        table.def.name,
                        f.name()
                    )))
                }
            }
            fields.push(gen);
        }
        Ok(DatagenDecoder {
            schema: Arc::clone(&table.physical_schema),
            fields,
        })
    }

    fn column(&self, c: usize, rows: &[u64]) -> Result<ArrayRef> {
        let gen = &self.fields[c];
        let seed = (c as u64 + 1).wrapping_mul(0x1000_0000_01B3);
        let int = |n: u64| -> i64 {
            match gen {
                FieldGen::Sequence { start, .. } => start.saturating_add(n as i64),
                FieldGen::Random { min, max, .. } => {
                    let span = (max.saturating_sub(*min) as u64).saturating_add(1).max(1);
                    min.saturating_add((mix(n ^ seed) % span) as i64)
                }
            }
        };
        let t = self.schema.field(c).data_type();
        let array: ArrayRef = match t {
            DataType::Utf8 => {
                let length = match gen {
                    FieldGen::Random { length, .. } => *length,
                    FieldGen::Sequence { .. } => 0,
                };
                Arc::new(StringArray::from_iter_values(rows.iter().map(
                    |&n| match gen {
                        FieldGen::Sequence { .. } => int(n).to_string(),
                        FieldGen::Random { .. } => {
                            let mut h = mix(n ^ seed);
                            (0..length)
                                .map(|_| {
                                    h = mix(h);
                                    (b'a' + (h % 26) as u8) as char
                                })
                                .collect::<String>()
                        }
                    },
                )))
            }
            DataType::Boolean => Arc::new(BooleanArray::from_iter(
                rows.iter().map(|&n| Some(mix(n ^ seed) & 1 == 1)),
            )),
            DataType::Float32 | DataType::Float64 => {
                let a = Float64Array::from_iter_values(rows.iter().map(|&n| match gen {
                    FieldGen::Sequence { .. } => int(n) as f64,
                    FieldGen::Random { min, max, .. } => {
                        let u = (mix(n ^ seed) >> 11) as f64 / (1u64 << 53) as f64;
                        *min as f64 + u * (*max - *min) as f64
                    }
                }));
                arrow::compute::cast(&a, t)?
            }
            DataType::Timestamp(_, tz) => {
                let a = TimestampMillisecondArray::from_iter_values(rows.iter().map(|&n| int(n)))
                    .with_timezone_opt(tz.clone());
                arrow::compute::cast(&a, t)?
            }
            _ => {
                let a = Int64Array::from_iter_values(rows.iter().map(|&n| int(n)));
                arrow::compute::cast(&a, t)?
            }
        };
        Ok(array)
    }

    fn rows(&self, indices: &[u64]) -> Result<RecordBatch> {
        let columns = (0..self.fields.len())
            .map(|c| self.column(c, indices))
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

impl RecordDecoder<u64> for DatagenDecoder {
    fn decode(&mut self, records: Vec<u64>) -> RuntimeResult<Option<SqlBatch>> {
        if records.is_empty() {
            return Ok(None);
        }
        self.rows(&records)
            .map(|b| Some(SqlBatch::new(b)))
            .map_err(Error::into_runtime)
    }
}

/// Adds the generator and decoder of a `datagen` table.
///
/// # Errors
/// Bad options.
pub fn add_source(
    graph: &mut GraphBuilder,
    table: &CatalogTable,
    parallelism: u32,
) -> Result<(OperatorId, u32)> {
    let rows = table
        .option("number-of-rows")
        .map(|_| parse_i64(table, "number-of-rows", 0))
        .transpose()?;
    let rate = parse_i64(table, "rows-per-second", 10_000)?;
    // Sequences must not exceed their end: bound the rows by the shortest sequence.
    let decoder = DatagenDecoder::new(table)?;
    let sequence_rows = decoder
        .fields
        .iter()
        .filter_map(|f| match f {
            FieldGen::Sequence { start, end } => {
                Some((end.saturating_sub(*start)).saturating_add(1).max(0) as u64)
            }
            FieldGen::Random { .. } => None,
        })
        .min();
    let count = match (rows, sequence_rows) {
        (Some(r), Some(s)) => Some((r.max(0) as u64).min(s)),
        (Some(r), None) => Some(r.max(0) as u64),
        (None, s) => s,
    };
    let mut source = match count {
        Some(n) => GeneratorSource::bounded(n, |i| i),
        None => GeneratorSource::unbounded(|i| i),
    };
    if rate > 0 {
        source = source.with_rate(rate as f64);
    }
    let name = &table.def.name;
    let node = graph.source::<u64>(
        &format!("Source: {name} (datagen)"),
        parallelism,
        Arc::new(source),
    );
    let table_def = Arc::new(decoder);
    let decoder =
        graph.typed_operator::<u64, _, _>(&format!("Decode({name})"), parallelism, move |_| {
            let d = DatagenDecoder {
                schema: Arc::clone(&table_def.schema),
                fields: table_def.fields.clone(),
            };
            Ok(DecodeOperator::new(Box::new(d)))
        });
    graph.typed_forward::<u64>(node, decoder);
    Ok((decoder, parallelism))
}
