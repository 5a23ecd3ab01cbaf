//! Keyed state of SQL operators in checkpoints: rows of state split by key group, so a
//! restore at another parallelism takes the key groups a subtask owns.

use std::collections::BTreeMap;

use arrow::array::{RecordBatch, UInt32Array};

use crate::error::Result;

/// The rows of `batch` by key group, `groups` giving each row's key group in order.
///
/// # Errors
/// What Arrow's `take` reports.
pub fn split_by_key_group(
    batch: &RecordBatch,
    groups: impl IntoIterator<Item = u32>,
) -> Result<BTreeMap<u32, RecordBatch>> {
    let mut by_group: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (i, g) in groups.into_iter().enumerate() {
        by_group.entry(g).or_default().push(i as u32);
    }
    let mut out = BTreeMap::new();
    for (g, indices) in by_group {
        out.insert(
            g,
            arrow::compute::take_record_batch(batch, &UInt32Array::from(indices))?,
        );
    }
    Ok(out)
}

/// [`split_by_key_group`], each part encoded as Arrow IPC: an operator's keyed snapshot.
///
/// # Errors
/// What Arrow reports.
pub fn encode_by_key_group(
    batch: &RecordBatch,
    groups: impl IntoIterator<Item = u32>,
) -> Result<Vec<(u32, Vec<u8>)>> {
    split_by_key_group(batch, groups)?
        .into_iter()
        .map(|(g, part)| Ok((g, crate::batch::encode_ipc(&part)?)))
        .collect()
}

/// Checks that a restored state batch has the columns and types this operator writes:
/// `what` names the state in the error, which says how to go on.
///
/// # Errors
/// When the checkpoint was written by another query.
pub fn check_state_schema(
    batch: &RecordBatch,
    expected: &arrow::datatypes::SchemaRef,
    what: &str,
) -> Result<()> {
    let matches = batch.num_columns() == expected.fields().len()
        && batch
            .schema()
            .fields()
            .iter()
            .zip(expected.fields())
            .all(|(a, b)| a.data_type() == b.data_type());
    if matches {
        return Ok(());
    }
    Err(crate::error::Error::Execution(format!(
        "the checkpoint's {what} state does not match this query (the query changed since \
         the checkpoint); start it without the checkpoint"
    )))
}
