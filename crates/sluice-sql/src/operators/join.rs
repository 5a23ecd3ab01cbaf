//! [`JoinOperator`]: a regular inner equi-join of two append-only streams (Flink's
//! `Join` on unbounded inputs): each row is kept in its side's state and probes the other
//! side's state; every match that passes the join's other conditions is emitted at once,
//! as an insertion. Rows with a NULL key never match (SQL semantics).
//!
//! State: per side, the rows received so far (Arrow batches) and an index from the join
//! key (Arrow row format) to them. It grows with the inputs unless
//! `table.exec.state.ttl` drops batches stored longer ago than that. Checkpoints write
//! per key group both sides' rows as Arrow IPC, so a restore at another parallelism takes
//! the key groups it owns.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, filter_record_batch, interleave, take};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::row::{RowConverter, SortField};
use datafusion_physical_expr::PhysicalExpr;
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use sluice_core::{CheckpointId, Watermark};
use sluice_runtime::checkpoint::OperatorSnapshot;
use sluice_runtime::{Collector, OperatorContext, Result as RuntimeResult, TwoInputOperator};

use crate::batch::{decode_ipc, encode_ipc, SqlBatch};
use crate::error::{exec, Error, Result};
use crate::exchange::key_group_of_row;
use crate::operators::keyed_state::split_by_key_group;
use crate::operators::StateTtl;

/// Which rows a join emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// Every matching pair, left columns then right columns.
    Inner,
    /// Each left row that has a match, once (`WHERE EXISTS`, or an inner join whose right
    /// side is unique per key and not selected, as DataFusion rewrites it).
    LeftSemi,
    /// Each right row that has a match, once.
    RightSemi,
}

/// What a join computes.
pub struct JoinSpec {
    /// Which rows the join emits.
    pub kind: JoinKind,
    /// Left columns then right columns: what the join's other conditions see.
    pub joined_schema: SchemaRef,
    /// Key columns of the left input's rows.
    pub left_keys: Vec<usize>,
    /// Key columns of the right input's rows.
    pub right_keys: Vec<usize>,
    /// Columns of the left rows that are output (the rest are computed keys).
    pub left_width: usize,
    /// Columns of the right rows that are output.
    pub right_width: usize,
    /// Conditions besides key equality, over the joined row (`joined_schema`).
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// The output schema: the joined row for inner joins, one side's row for semi joins.
    pub schema: SchemaRef,
    /// Expiry of stored rows (`table.exec.state.ttl`), by the time they were stored.
    pub state_ttl: Option<StateTtl>,
    /// When stored rows can no longer match, for a window join or an interval join.
    pub expiry: Option<RowExpiry>,
}

/// When a stored row of one side can no longer match: once the watermark reaches its time
/// column plus an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SideExpiry {
    /// The row's time column.
    pub column: usize,
    /// Added to the time: the row expires when the watermark reaches the sum.
    pub offset_ms: i64,
}

/// Expiry of both sides' rows by the watermark (the minimum of both inputs'):
/// - a **window join** (both inputs' `window_end`s equal in the condition): a row expires
///   at its `window_end - 1`, when every row of its window has arrived on both sides;
/// - an **interval join** (`l.t BETWEEN r.t + lower AND r.t + upper` on both inputs'
///   time attributes): a left row at `t` expires at `t - lower`, a right row at
///   `t + upper`; rows that arrive at or behind the watermark are late and dropped, as in
///   Flink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowExpiry {
    /// The left rows'.
    pub left: SideExpiry,
    /// The right rows'.
    pub right: SideExpiry,
    /// Whether rows at or behind the watermark are dropped on arrival.
    pub drop_late: bool,
}

/// Matches of a stored batch: its rows, and for each the (batch, row) it matched on the
/// other side.
type Matches = (Vec<u32>, Vec<(usize, usize)>);

/// One side's rows and their index by key.
struct Side {
    batches: Vec<RecordBatch>,
    index: HashMap<Box<[u8]>, Vec<(u32, u32)>>,
    key_groups: Vec<Vec<u32>>,
    /// For the emitted side of a semi join: whether each row was emitted already.
    emitted: Vec<Vec<bool>>,
    /// When each batch was stored (processing time, for the state TTL).
    inserted: Vec<i64>,
}

impl Side {
    fn new() -> Self {
        Side {
            batches: Vec::new(),
            index: HashMap::new(),
            key_groups: Vec::new(),
            emitted: Vec::new(),
            inserted: Vec::new(),
        }
    }

    /// Drops the batches stored before `cutoff`, keeping the index of the others.
    fn expire(&mut self, cutoff: i64) {
        if !self.inserted.iter().any(|&t| t < cutoff) {
            return;
        }
        let mut remap: Vec<Option<u32>> = Vec::with_capacity(self.batches.len());
        let mut next = 0;
        for &t in &self.inserted {
            if t >= cutoff {
                remap.push(Some(next));
                next += 1;
            } else {
                remap.push(None);
            }
        }
        keep_mapped(&mut self.batches, &remap);
        keep_mapped(&mut self.key_groups, &remap);
        keep_mapped(&mut self.emitted, &remap);
        keep_mapped(&mut self.inserted, &remap);
        self.index.retain(|_, rows| {
            rows.retain_mut(|(b, _)| match remap[*b as usize] {
                Some(n) => {
                    *b = n;
                    true
                }
                None => false,
            });
            !rows.is_empty()
        });
    }
}

/// Keeps the items of `v` whose `remap` entry is `Some`.
fn keep_mapped<T>(v: &mut Vec<T>, remap: &[Option<u32>]) {
    let mut i = 0;
    v.retain(|_| {
        i += 1;
        remap[i - 1].is_some()
    });
}

/// Joins two inputs on equal keys.
pub struct JoinOperator {
    spec: Arc<JoinSpec>,
    converter: RowConverter,
    left: Side,
    right: Side,
    max_parallelism: u32,
    ttl: Option<StateTtl>,
    now: i64,
    watermark: i64,
    late: Option<sluice_runtime::metrics::Counter>,
}

#[derive(Serialize, Deserialize, Default)]
struct KeyGroupState {
    left: Option<Vec<u8>>,
    right: Option<Vec<u8>>,
}

impl JoinOperator {
    /// A join of keys of `key_types` (equal on both sides).
    ///
    /// # Errors
    /// When a key type has no row encoding.
    pub fn new(spec: Arc<JoinSpec>, key_types: Vec<DataType>) -> Result<Self> {
        Ok(JoinOperator {
            converter: RowConverter::new(key_types.into_iter().map(SortField::new).collect())?,
            ttl: spec.state_ttl,
            spec,
            left: Side::new(),
            right: Side::new(),
            max_parallelism: 128,
            now: 0,
            watermark: i64::MIN,
            late: None,
        })
    }

    /// Interval join: the rows of `batch` not behind the watermark (late rows are dropped
    /// and counted).
    fn without_late(&self, batch: RecordBatch, is_left: bool) -> Result<RecordBatch> {
        let Some(expiry) = self.spec.expiry.filter(|e| e.drop_late) else {
            return Ok(batch);
        };
        if self.watermark == i64::MIN {
            return Ok(batch);
        }
        let column = if is_left {
            expiry.left.column
        } else {
            expiry.right.column
        };
        let times = crate::operators::timestamps_ms(batch.column(column), "a join time")?;
        let keep: BooleanArray = times
            .iter()
            .map(|t| Some(t.is_some_and(|t| t > self.watermark)))
            .collect();
        let dropped = batch.num_rows() - keep.true_count();
        if dropped == 0 {
            return Ok(batch);
        }
        if let Some(c) = &self.late {
            c.add(dropped as u64);
        }
        Ok(filter_record_batch(&batch, &keep)?)
    }

    /// Drops the rows stored before `cutoff` (processing time), on both sides.
    pub fn expire(&mut self, cutoff: i64) {
        self.left.expire(cutoff);
        self.right.expire(cutoff);
    }

    /// The number of rows stored on each side.
    pub fn stored_rows(&self) -> (usize, usize) {
        let count = |s: &Side| s.batches.iter().map(RecordBatch::num_rows).sum();
        (count(&self.left), count(&self.right))
    }

    /// Window and interval joins: drops the rows that can no longer match (see
    /// [`RowExpiry`]).
    ///
    /// # Errors
    /// When a time column is not a timestamp.
    pub fn expire_rows(&mut self, watermark: i64) -> Result<()> {
        self.watermark = self.watermark.max(watermark);
        let Some(expiry) = self.spec.expiry else {
            return Ok(());
        };
        for (is_left, side_expiry) in [(true, expiry.left), (false, expiry.right)] {
            let side = if is_left { &self.left } else { &self.right };
            let mut masks = Vec::with_capacity(side.batches.len());
            let mut expired = false;
            for b in &side.batches {
                let times =
                    crate::operators::timestamps_ms(b.column(side_expiry.column), "a join time")?;
                let keep: BooleanArray = times
                    .iter()
                    .map(|t| {
                        Some(t.is_none_or(|t| t.saturating_add(side_expiry.offset_ms) > watermark))
                    })
                    .collect();
                expired |= keep.true_count() < b.num_rows();
                masks.push(keep);
            }
            if !expired {
                continue;
            }
            // Store the rows that stay again, on a fresh side.
            let old = std::mem::replace(
                if is_left {
                    &mut self.left
                } else {
                    &mut self.right
                },
                Side::new(),
            );
            for ((batch, emitted), keep) in old.batches.into_iter().zip(old.emitted).zip(masks) {
                if keep.true_count() == 0 {
                    continue;
                }
                let flags: Vec<bool> = emitted
                    .iter()
                    .zip(keep.values().iter())
                    .filter(|(_, k)| *k)
                    .map(|(f, _)| *f)
                    .collect();
                let kept = filter_record_batch(&batch, &keep)?;
                self.store(kept, is_left, flags, false)?;
            }
        }
        Ok(())
    }

    /// Puts `batch` on its side with its rows' `emitted` flags, indexing its keys (rows
    /// with a NULL key are kept but never match). With `probe`, first looks each key up
    /// on the other side: returns the matching pairs (row of `batch`, (batch, row) of the
    /// other side).
    fn store(
        &mut self,
        batch: RecordBatch,
        is_left: bool,
        emitted: Vec<bool>,
        probe: bool,
    ) -> Result<Matches> {
        let key_columns = if is_left {
            &self.spec.left_keys
        } else {
            &self.spec.right_keys
        };
        let keys: Vec<ArrayRef> = key_columns
            .iter()
            .map(|&c| Arc::clone(batch.column(c)))
            .collect();
        let rows = self.converter.convert_columns(&keys)?;
        let now = self.now;
        let (mine, other) = if is_left {
            (&mut self.left, &self.right)
        } else {
            (&mut self.right, &self.left)
        };
        let batch_index = mine.batches.len() as u32;
        let mut probed: Vec<u32> = Vec::new();
        let mut matched: Vec<(usize, usize)> = Vec::new();
        let mut groups = Vec::with_capacity(batch.num_rows());
        for (i, row) in rows.iter().enumerate() {
            let bytes = row.as_ref();
            groups.push(key_group_of_row(bytes, self.max_parallelism));
            if keys.iter().any(|k| k.is_null(i)) {
                continue;
            }
            if probe {
                if let Some(hits) = other.index.get(bytes) {
                    for &(b, r) in hits {
                        probed.push(i as u32);
                        matched.push((b as usize, r as usize));
                    }
                }
            }
            mine.index
                .entry(bytes.into())
                .or_default()
                .push((batch_index, i as u32));
        }
        mine.key_groups.push(groups);
        mine.emitted.push(emitted);
        mine.batches.push(batch);
        mine.inserted.push(now);
        Ok((probed, matched))
    }

    /// Stores `batch` on its side and returns its matches with the other side.
    ///
    /// # Errors
    /// When an expression fails.
    pub fn add(&mut self, batch: RecordBatch, is_left: bool) -> Result<Option<RecordBatch>> {
        let batch = self.without_late(batch, is_left)?;
        if batch.num_rows() == 0 {
            return Ok(None);
        }
        let batch_index = if is_left {
            self.left.batches.len()
        } else {
            self.right.batches.len()
        } as u32;
        let (probe, matched) =
            self.store(batch.clone(), is_left, vec![false; batch.num_rows()], true)?;
        if probe.is_empty() {
            return Ok(None);
        }
        let other = if is_left { &self.right } else { &self.left };
        let (this_width, other_width) = if is_left {
            (self.spec.left_width, self.spec.right_width)
        } else {
            (self.spec.right_width, self.spec.left_width)
        };
        let idx = UInt32Array::from(probe.clone());
        let this_cols: Vec<ArrayRef> = batch.columns()[..this_width]
            .iter()
            .map(|c| take(c.as_ref(), &idx, None))
            .collect::<std::result::Result<_, _>>()?;
        let mut other_cols = Vec::with_capacity(other_width);
        for c in 0..other_width {
            let arrays: Vec<&dyn Array> =
                other.batches.iter().map(|b| b.column(c).as_ref()).collect();
            other_cols.push(interleave(&arrays, &matched)?);
        }
        let columns = if is_left {
            this_cols.into_iter().chain(other_cols).collect()
        } else {
            other_cols.into_iter().chain(this_cols).collect()
        };
        let joined = RecordBatch::try_new(Arc::clone(&self.spec.joined_schema), columns)?;
        let mask = match &self.spec.filter {
            None => None,
            Some(filter) => {
                let mask = filter.evaluate(&joined)?.into_array(joined.num_rows())?;
                let mask = arrow::array::AsArray::as_boolean_opt(&mask)
                    .ok_or_else(|| Error::Execution("a join condition is not a boolean".into()))?
                    .clone();
                Some(mask)
            }
        };
        let passes = |i: usize| mask.as_ref().is_none_or(|m| m.is_valid(i) && m.value(i));
        match self.spec.kind {
            JoinKind::Inner => {
                let kept = match &mask {
                    None => joined,
                    Some(m) => filter_record_batch(&joined, m)?,
                };
                Ok((kept.num_rows() > 0).then_some(kept))
            }
            JoinKind::LeftSemi | JoinKind::RightSemi => {
                let emit_left = self.spec.kind == JoinKind::LeftSemi;
                // The rows of the emitted side that matched, each once.
                let mut rows: Vec<(usize, usize)> = Vec::new();
                let batch_index = batch_index as usize;
                if is_left == emit_left {
                    let side = if is_left {
                        &mut self.left
                    } else {
                        &mut self.right
                    };
                    for (i, &row) in probe.iter().enumerate() {
                        let flag = &mut side.emitted[batch_index][row as usize];
                        if passes(i) && !*flag {
                            *flag = true;
                            rows.push((batch_index, row as usize));
                        }
                    }
                } else {
                    let side = if is_left {
                        &mut self.right
                    } else {
                        &mut self.left
                    };
                    for (i, &(b, r)) in matched.iter().enumerate() {
                        let flag = &mut side.emitted[b][r];
                        if passes(i) && !*flag {
                            *flag = true;
                            rows.push((b, r));
                        }
                    }
                }
                if rows.is_empty() {
                    return Ok(None);
                }
                let side = if emit_left { &self.left } else { &self.right };
                let width = self.spec.schema.fields().len();
                let mut columns = Vec::with_capacity(width);
                for c in 0..width {
                    let arrays: Vec<&dyn Array> =
                        side.batches.iter().map(|b| b.column(c).as_ref()).collect();
                    columns.push(interleave(&arrays, &rows)?);
                }
                Ok(Some(RecordBatch::try_new(
                    Arc::clone(&self.spec.schema),
                    columns,
                )?))
            }
        }
    }

    fn side_by_group(side: &Side) -> Result<BTreeMap<u32, RecordBatch>> {
        if side.batches.is_empty() {
            return Ok(BTreeMap::new());
        }
        let schema = side.batches[0].schema();
        let rows = concat_batches(&schema, &side.batches)?;
        // The semi join's emitted flags travel as a last column.
        let flags = BooleanArray::from(side.emitted.iter().flatten().copied().collect::<Vec<_>>());
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("__emitted", DataType::Boolean, false));
        let mut columns = rows.columns().to_vec();
        columns.push(Arc::new(flags));
        let all = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        split_by_key_group(&all, side.key_groups.iter().flatten().copied())
    }

    /// Both sides' rows, one blob per key group.
    ///
    /// # Errors
    /// When encoding fails.
    pub fn snapshot(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        let left = Self::side_by_group(&self.left)?;
        let right = Self::side_by_group(&self.right)?;
        let mut groups: Vec<u32> = left.keys().chain(right.keys()).copied().collect();
        groups.sort_unstable();
        groups.dedup();
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            let state = KeyGroupState {
                left: left.get(&g).map(encode_ipc).transpose()?,
                right: right.get(&g).map(encode_ipc).transpose()?,
            };
            let bytes = postcard::to_allocvec(&state)
                .map_err(|e| Error::Execution(format!("join state: {e}")))?;
            out.push((g, bytes));
        }
        Ok(out)
    }

    /// Adds rows written by [`Self::snapshot`] (without emitting matches: they were
    /// emitted before the checkpoint).
    ///
    /// # Errors
    /// On damaged state.
    pub fn restore(&mut self, blob: &[u8]) -> Result<()> {
        let state: KeyGroupState = postcard::from_bytes(blob)
            .map_err(|e| Error::Execution(format!("damaged join state in a checkpoint: {e}")))?;
        for (bytes, is_left) in [(state.left, true), (state.right, false)] {
            let Some(bytes) = bytes else { continue };
            let stored = decode_ipc(&bytes)?;
            let last = stored.num_columns().saturating_sub(1);
            let flags: Vec<bool> = arrow::array::AsArray::as_boolean_opt(stored.column(last))
                .ok_or_else(|| Error::Execution("damaged join state: no emitted flags".into()))?
                .values()
                .iter()
                .collect();
            let batch = stored.project(&(0..last).collect::<Vec<_>>())?;
            // Matches of restored rows were emitted before the checkpoint: no probing.
            self.store(batch, is_left, flags, false)?;
        }
        Ok(())
    }

    fn on_side(
        &mut self,
        batch: SqlBatch,
        is_left: bool,
        out: &mut Collector<'_, SqlBatch>,
    ) -> RuntimeResult<()> {
        if batch.kinds().is_some() {
            return Err(
                Error::unsupported("a join of an input that produces updates").into_runtime(),
            );
        }
        let (data, _) = batch.into_parts();
        if let Some(joined) = exec(self.add(data, is_left))? {
            out.collect(SqlBatch::new(joined))?;
        }
        Ok(())
    }
}

impl TwoInputOperator for JoinOperator {
    type In1 = SqlBatch;
    type In2 = SqlBatch;
    type Out = SqlBatch;

    fn open(&mut self, ctx: &OperatorContext) -> RuntimeResult<()> {
        self.max_parallelism = ctx.max_parallelism;
        self.now = ctx.clock.now_ms();
        self.late = Some(ctx.counter("late_records_dropped"));
        if let Some(restored) = &ctx.restored {
            for (_, blob) in &restored.keyed {
                exec(self.restore(blob))?;
            }
        }
        Ok(())
    }

    fn on_data1(
        &mut self,
        batch: SqlBatch,
        out: &mut Collector<'_, SqlBatch>,
    ) -> RuntimeResult<()> {
        self.on_side(batch, true, out)
    }

    fn on_data2(
        &mut self,
        batch: SqlBatch,
        out: &mut Collector<'_, SqlBatch>,
    ) -> RuntimeResult<()> {
        self.on_side(batch, false, out)
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, SqlBatch>,
    ) -> RuntimeResult<()> {
        exec(self.expire_rows(watermark.0 .0))?;
        out.emit_watermark(watermark)
    }

    fn on_processing_time(
        &mut self,
        now_ms: i64,
        _out: &mut Collector<'_, SqlBatch>,
    ) -> RuntimeResult<()> {
        self.now = now_ms;
        if let Some(cutoff) = self.ttl.as_mut().and_then(|t| t.sweep_due(now_ms)) {
            self.expire(cutoff);
        }
        Ok(())
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId) -> RuntimeResult<OperatorSnapshot> {
        Ok(OperatorSnapshot {
            keyed: exec(self.snapshot())?,
            ..OperatorSnapshot::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, TimestampMillisecondArray};
    use arrow::datatypes::TimeUnit;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new(
                "window_end",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                true,
            ),
        ]))
    }

    fn rows(keys: &[i64], ends: &[i64]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from(keys.to_vec())),
                Arc::new(TimestampMillisecondArray::from(ends.to_vec())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_window_join_drops_the_rows_of_closed_windows() {
        let joined = Arc::new(Schema::new(
            [schema().fields().to_vec(), schema().fields().to_vec()].concat(),
        ));
        let spec = Arc::new(JoinSpec {
            kind: JoinKind::Inner,
            joined_schema: Arc::clone(&joined),
            left_keys: vec![0],
            right_keys: vec![0],
            left_width: 2,
            right_width: 2,
            filter: None,
            schema: joined,
            state_ttl: None,
            expiry: Some(RowExpiry {
                left: SideExpiry {
                    column: 1,
                    offset_ms: -1,
                },
                right: SideExpiry {
                    column: 1,
                    offset_ms: -1,
                },
                drop_late: false,
            }),
        });
        let mut join = JoinOperator::new(spec, vec![DataType::Int64]).unwrap();
        join.add(rows(&[1, 2, 3], &[1000, 1000, 2000]), true)
            .unwrap();
        let out = join
            .add(rows(&[1, 3], &[1000, 2000]), false)
            .unwrap()
            .unwrap();
        assert_eq!(out.num_rows(), 2);
        assert_eq!(join.stored_rows(), (3, 2));
        // The window ending at 1000 closes when the watermark reaches 999.
        join.expire_rows(998).unwrap();
        assert_eq!(join.stored_rows(), (3, 2));
        join.expire_rows(999).unwrap();
        assert_eq!(join.stored_rows(), (1, 1));
        // What stays still joins.
        let out = join.add(rows(&[3], &[2000]), true).unwrap().unwrap();
        assert_eq!(out.num_rows(), 1);
        join.expire_rows(1999).unwrap();
        assert_eq!(join.stored_rows(), (0, 0));
    }
}
