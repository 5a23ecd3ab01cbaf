//! [`SqlBatch`]: the batch SQL operators exchange, an Arrow `RecordBatch` with, for
//! updating streams, the kind of change of each row.
//!
//! Invariant: when `kinds` is present it has exactly one entry per row; absent means
//! every row is an insertion (an append-only stream).

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sluice_core::Batch;

/// The kind of change a row of an updating stream is (Flink's `RowKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RowKind {
    /// A new row (`+I`).
    Insert,
    /// The previous value of an updated row (`-U`).
    UpdateBefore,
    /// The new value of an updated row (`+U`).
    UpdateAfter,
    /// A removed row (`-D`).
    Delete,
}

impl RowKind {
    /// Flink's short form: `+I`, `-U`, `+U`, `-D`.
    pub fn short(self) -> &'static str {
        match self {
            RowKind::Insert => "+I",
            RowKind::UpdateBefore => "-U",
            RowKind::UpdateAfter => "+U",
            RowKind::Delete => "-D",
        }
    }

    /// Whether the row adds to the result (insert or update-after).
    pub fn is_addition(self) -> bool {
        matches!(self, RowKind::Insert | RowKind::UpdateAfter)
    }
}

/// Rows travelling between SQL operators.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlBatch {
    data: RecordBatch,
    kinds: Option<Arc<[RowKind]>>,
    /// The source split (a Kafka partition) all rows come from, when a source knows it:
    /// watermarks are generated per split. Not carried across exchanges.
    split: Option<u32>,
}

impl SqlBatch {
    /// Inserted rows.
    pub fn new(data: RecordBatch) -> Self {
        SqlBatch {
            data,
            kinds: None,
            split: None,
        }
    }

    /// Rows with one kind of change each.
    ///
    /// # Panics
    /// When `kinds` has another length than `data` (a bug in the operator).
    pub fn with_kinds(data: RecordBatch, kinds: Vec<RowKind>) -> Self {
        assert_eq!(
            data.num_rows(),
            kinds.len(),
            "a row kind column must have one entry per row"
        );
        let all_inserts = kinds.iter().all(|k| *k == RowKind::Insert);
        SqlBatch {
            data,
            kinds: (!all_inserts).then(|| kinds.into()),
            split: None,
        }
    }

    /// The rows.
    pub fn data(&self) -> &RecordBatch {
        &self.data
    }

    /// The rows' schema.
    pub fn schema(&self) -> SchemaRef {
        self.data.schema()
    }

    /// The kind of each row, `None` when all are insertions.
    pub fn kinds(&self) -> Option<&[RowKind]> {
        self.kinds.as_deref()
    }

    /// The kind of row `i`.
    pub fn kind(&self, i: usize) -> RowKind {
        self.kinds.as_ref().map_or(RowKind::Insert, |k| k[i])
    }

    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.data.num_rows()
    }

    /// The rows and their kinds.
    pub fn into_parts(self) -> (RecordBatch, Option<Arc<[RowKind]>>) {
        (self.data, self.kinds)
    }

    /// Other rows with the same kinds (a projection of this batch).
    ///
    /// # Panics
    /// When `data` has another number of rows.
    pub fn with_data(&self, data: RecordBatch) -> Self {
        assert_eq!(data.num_rows(), self.data.num_rows());
        SqlBatch {
            data,
            kinds: self.kinds.clone(),
            split: self.split,
        }
    }

    /// These rows, all from source split `split`.
    pub fn with_split(mut self, split: u32) -> Self {
        self.split = Some(split);
        self
    }

    /// The source split the rows come from, when known.
    pub fn split(&self) -> Option<u32> {
        self.split
    }

    /// These rows, from the split of `other` (for operators that rebuild a batch).
    pub fn with_split_of(mut self, other: &SqlBatch) -> Self {
        self.split = other.split;
        self
    }
}

impl Batch for SqlBatch {
    fn len(&self) -> usize {
        self.data.num_rows()
    }
}

/// The wire form of a batch: Arrow IPC stream bytes and the row kinds.
#[derive(Serialize, Deserialize)]
struct WireBatch {
    ipc: Vec<u8>,
    kinds: Option<Vec<RowKind>>,
}

/// Encodes `batch` as an Arrow IPC stream (schema and one record batch).
///
/// # Errors
/// What Arrow's writer reports.
pub fn encode_ipc(batch: &RecordBatch) -> Result<Vec<u8>, arrow::error::ArrowError> {
    let mut out = Vec::new();
    {
        let mut writer = StreamWriter::try_new(&mut out, &batch.schema())?;
        writer.write(batch)?;
        writer.finish()?;
    }
    Ok(out)
}

/// Decodes what [`encode_ipc`] wrote (several concatenated batches are concatenated).
///
/// # Errors
/// What Arrow's reader reports on damaged bytes.
pub fn decode_ipc(bytes: &[u8]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let reader = StreamReader::try_new(bytes, None)?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    arrow::compute::concat_batches(&schema, &batches)
}

impl Serialize for SqlBatch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let ipc = encode_ipc(&self.data).map_err(serde::ser::Error::custom)?;
        WireBatch {
            ipc,
            kinds: self.kinds.as_ref().map(|k| k.to_vec()),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SqlBatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireBatch::deserialize(deserializer)?;
        let data = decode_ipc(&wire.ipc).map_err(serde::de::Error::custom)?;
        match wire.kinds {
            None => Ok(SqlBatch::new(data)),
            Some(kinds) if kinds.len() == data.num_rows() => Ok(SqlBatch::with_kinds(data, kinds)),
            Some(_) => Err(serde::de::Error::custom(
                "row kinds do not match the number of rows",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("x"), None, Some("z")])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn round_trips_through_postcard_with_kinds() {
        let b = SqlBatch::with_kinds(
            batch(),
            vec![RowKind::Insert, RowKind::UpdateBefore, RowKind::UpdateAfter],
        );
        let bytes = postcard::to_allocvec(&b).unwrap();
        let back: SqlBatch = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, b);
        assert_eq!(back.kind(1), RowKind::UpdateBefore);
    }

    #[test]
    fn all_inserts_need_no_kind_column() {
        let b = SqlBatch::with_kinds(batch(), vec![RowKind::Insert; 3]);
        assert!(b.kinds().is_none());
        assert_eq!(b.len(), 3);
    }
}
