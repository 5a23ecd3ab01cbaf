//! [`RankOperator`]: Top-N and deduplication, `ROW_NUMBER() OVER (PARTITION BY k ORDER BY
//! s) AS rn ... WHERE rn <= N` (Flink's `Rank`, `Deduplicate`, `WindowRank` and
//! `WindowDeduplicate`).
//!
//! Per partition key the operator keeps the best `N` rows in order. Two modes:
//!
//! - **Updating** (a partition key without window columns): after each input batch, every
//!   partition it changed emits the difference as a changelog. With the row number in the
//!   output each rank position is an upsert key, so a position whose row changed emits
//!   `-U` (old row, rank) and `+U` (new row, rank), a new position `+I`. Without it, a
//!   row that left the top `N` emits `-D` and a row that entered `+I`; with `N = 1`
//!   (deduplication) that pair is `-U`/`+U`.
//! - **Window** (the partition key holds `window_start` and `window_end`): rows are kept
//!   until the watermark passes the window's end, then the window's top `N` are emitted
//!   once, as insertions, and forgotten (Flink's window Top-N: append-only output).
//!
//! Over an input that retracts rows (the changelog of an aggregation), every row is kept,
//! not only the top `N`: a retracted top row lets the next one move up (Flink's
//! `RetractableTopNFunction`). A retraction removes the stored row equal to it.
//!
//! Ties keep the row that came first, except for deduplication on a time attribute in
//! descending order (`ORDER BY ts DESC`, `N = 1`: "keep the last row"), where the later row
//! wins, as in Flink.
//!
//! State: the kept rows (Arrow row format) with their sort key and arrival number; in
//! updating mode, `table.exec.state.ttl` drops partitions that did not change for that
//! long. A
//! checkpoint writes them per key group as Arrow IPC columns of the input's schema, so a
//! restore at another parallelism takes the key groups it owns and re-derives the keys.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use arrow::row::{RowConverter, SortField};
use hashbrown::HashMap;
use sluice_core::{CheckpointId, Watermark};
use sluice_runtime::checkpoint::OperatorSnapshot;
use sluice_runtime::{Collector, Operator, OperatorContext, Result as RuntimeResult};

use crate::batch::{decode_ipc, RowKind, SqlBatch};
use crate::error::{exec, Error, Result};
use crate::exchange::key_group_of_row;
use crate::operators::keyed_state::encode_by_key_group;
use crate::operators::{timestamps_ms, StateTtl};

/// What a rank computes.
pub struct RankSpec {
    /// The input's schema (its columns are kept in state).
    pub input_schema: SchemaRef,
    /// Input columns of the partition key.
    pub partition_columns: Vec<usize>,
    /// Input columns of the order, with their direction and null placement.
    pub order: Vec<(usize, arrow::compute::SortOptions)>,
    /// The first rank emitted (1-based).
    pub rank_start: u64,
    /// The last rank emitted (1-based, inclusive): the operator keeps this many rows.
    pub rank_end: u64,
    /// Input columns that are output (the rest were computed for keys).
    pub output_width: usize,
    /// Whether the output carries the row number (then each rank is an upsert key).
    pub emit_rank: bool,
    /// Whether a later row wins a tie ("keep the last row" deduplication).
    pub later_wins_ties: bool,
    /// The input column of `window_end`, in window mode.
    pub window_end: Option<usize>,
    /// Whether the input retracts rows: then every row is kept (not only the top `N`),
    /// so that the next one moves up when a top row is retracted (Flink's
    /// `RetractableTopNFunction`).
    pub retracting: bool,
    /// The output schema: the first `output_width` input columns and the row number.
    pub schema: SchemaRef,
    /// Expiry of partitions whose rows did not change for a while (updating mode,
    /// `table.exec.state.ttl`).
    pub state_ttl: Option<StateTtl>,
}

#[derive(Clone)]
struct Entry {
    sort: Arc<[u8]>,
    seq: u64,
    row: Arc<[u8]>,
}

struct Partition {
    key_group: u32,
    entries: Vec<Entry>,
    /// Processing time of the last change (for the state TTL).
    last_access: i64,
}

/// Keeps the top rows per partition key and emits their changes.
pub struct RankOperator {
    spec: Arc<RankSpec>,
    partition_converter: RowConverter,
    sort_converter: RowConverter,
    row_converter: RowConverter,
    partitions: HashMap<Box<[u8]>, Partition>,
    /// Window mode: the partitions of each window end.
    windows: BTreeMap<i64, Vec<Box<[u8]>>>,
    next_seq: u64,
    watermark: i64,
    late_rows_dropped: u64,
    /// Retractions of rows that were not kept (expired by the TTL, or never seen).
    unknown_retractions: u64,
    late: Option<sluice_runtime::metrics::Counter>,
    unknown: Option<sluice_runtime::metrics::Counter>,
    max_parallelism: u32,
    ttl: Option<StateTtl>,
    now: i64,
}

impl RankOperator {
    /// An operator computing `spec`.
    ///
    /// # Errors
    /// When a column type has no row encoding.
    pub fn new(spec: Arc<RankSpec>) -> Result<Self> {
        let field = |i: usize| spec.input_schema.field(i).data_type().clone();
        let partition_converter = RowConverter::new(
            spec.partition_columns
                .iter()
                .map(|&c| SortField::new(field(c)))
                .collect(),
        )?;
        let sort_converter = RowConverter::new(
            spec.order
                .iter()
                .map(|&(c, o)| SortField::new_with_options(field(c), o))
                .collect(),
        )?;
        let row_converter = RowConverter::new(
            spec.input_schema
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?;
        Ok(RankOperator {
            ttl: spec.state_ttl.filter(|_| spec.window_end.is_none()),
            now: 0,
            spec,
            partition_converter,
            sort_converter,
            row_converter,
            partitions: HashMap::new(),
            windows: BTreeMap::new(),
            next_seq: 0,
            watermark: i64::MIN,
            late_rows_dropped: 0,
            unknown_retractions: 0,
            late: None,
            unknown: None,
            max_parallelism: 128,
        })
    }

    /// Rows of window mode that arrived after their window was emitted.
    pub fn late_rows_dropped(&self) -> u64 {
        self.late_rows_dropped
    }

    /// Where `sort` goes in `entries`, or `None` when it does not make the kept rows.
    fn position(&self, entries: &[Entry], sort: &[u8]) -> Option<usize> {
        let at = if self.spec.later_wins_ties {
            entries.partition_point(|e| e.sort.as_ref() < sort)
        } else {
            entries.partition_point(|e| e.sort.as_ref() <= sort)
        };
        (self.spec.retracting || at < self.spec.rank_end as usize).then_some(at)
    }

    /// Removes the row `row` (sort key `sort`) from the partition `key`; false when it
    /// is not there.
    fn remove(&mut self, key: &[u8], sort: &[u8], row: &[u8]) -> bool {
        let Some(p) = self.partitions.get_mut(key) else {
            return false;
        };
        p.last_access = self.now;
        let lo = p.entries.partition_point(|e| e.sort.as_ref() < sort);
        let hi = p.entries.partition_point(|e| e.sort.as_ref() <= sort);
        match (lo..hi).find(|&j| p.entries[j].row.as_ref() == row) {
            Some(j) => {
                p.entries.remove(j);
                true
            }
            None => false,
        }
    }

    /// Adds the rows of `data` (all insertions); in updating mode returns the changes.
    ///
    /// # Errors
    /// When a key cannot be encoded or the window end is not a timestamp.
    pub fn add(&mut self, batch: &SqlBatch) -> Result<Option<SqlBatch>> {
        if !self.spec.retracting
            && batch
                .kinds()
                .is_some_and(|k| k.iter().any(|k| !k.is_addition()))
        {
            return Err(Error::Execution(
                "a Top-N (ROW_NUMBER) received a retraction; its input must be append-only".into(),
            ));
        }
        let shown = self.spec.rank_end as usize;
        let data = batch.data();
        let columns = |cols: &mut dyn Iterator<Item = usize>| -> Vec<ArrayRef> {
            cols.map(|c| Arc::clone(data.column(c))).collect()
        };
        let keys = self
            .partition_converter
            .convert_columns(&columns(&mut self.spec.partition_columns.iter().copied()))?;
        let sorts = self
            .sort_converter
            .convert_columns(&columns(&mut self.spec.order.iter().map(|o| o.0)))?;
        let ends = match self.spec.window_end {
            Some(c) => Some(timestamps_ms(data.column(c), "window_end")?),
            None => None,
        };
        let mut rows = None;
        // Updating mode: each touched partition's entries before this batch.
        let mut before: HashMap<Box<[u8]>, Vec<Entry>> = HashMap::new();
        for i in 0..data.num_rows() {
            let window_end = match &ends {
                Some(e) if e.is_null(i) => continue,
                Some(e) => {
                    let end = e.value(i);
                    if end - 1 <= self.watermark {
                        self.late_rows_dropped += 1;
                        if let Some(c) = &self.late {
                            c.inc();
                        }
                        continue;
                    }
                    end
                }
                None => 0,
            };
            let key = keys.row(i);
            let sort = sorts.row(i);
            if !batch.kind(i).is_addition() {
                if rows.is_none() {
                    rows = Some(self.row_converter.convert_columns(data.columns())?);
                }
                let Some(all) = &rows else { continue };
                if let Some(p) = self.partitions.get(key.as_ref()) {
                    if !before.contains_key(key.as_ref()) {
                        let top = p.entries[..p.entries.len().min(shown)].to_vec();
                        before.insert(key.as_ref().into(), top);
                    }
                }
                if !self.remove(key.as_ref(), sort.as_ref(), all.row(i).as_ref()) {
                    self.unknown_retractions += 1;
                    if let Some(c) = &self.unknown {
                        c.inc();
                    }
                }
                continue;
            }
            let at = match self.partitions.get(key.as_ref()) {
                Some(p) => match self.position(&p.entries, sort.as_ref()) {
                    Some(at) => at,
                    None => continue,
                },
                None => 0,
            };
            if rows.is_none() {
                rows = Some(self.row_converter.convert_columns(data.columns())?);
            }
            let Some(all) = &rows else { continue };
            let entry = Entry {
                sort: sort.as_ref().into(),
                seq: self.next_seq,
                row: all.row(i).as_ref().into(),
            };
            self.next_seq += 1;
            let limit = self.spec.rank_end as usize;
            let retracting = self.spec.retracting;
            let max_parallelism = self.max_parallelism;
            let windowed = self.spec.window_end.is_some();
            let now = self.now;
            let partition = self
                .partitions
                .entry(key.as_ref().into())
                .or_insert_with(|| {
                    if windowed {
                        self.windows
                            .entry(window_end)
                            .or_default()
                            .push(key.as_ref().into());
                    }
                    Partition {
                        key_group: key_group_of_row(key.as_ref(), max_parallelism),
                        entries: Vec::new(),
                        last_access: now,
                    }
                });
            partition.last_access = now;
            if !windowed && !before.contains_key(key.as_ref()) {
                let top = partition.entries[..partition.entries.len().min(shown)].to_vec();
                before.insert(key.as_ref().into(), top);
            }
            partition.entries.insert(at, entry);
            if !retracting {
                partition.entries.truncate(limit);
            }
        }
        if self.spec.window_end.is_some() || before.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::new();
        for (key, old) in &before {
            let new = self
                .partitions
                .get(key)
                .map(|p| p.entries.as_slice())
                .unwrap_or_default();
            self.diff(old, new, &mut out);
        }
        self.output(out).map(Some)
    }

    /// The changes from `old` to `new` (one partition's entries), as (row, rank, kind).
    fn diff<'a>(
        &self,
        old: &'a [Entry],
        new: &'a [Entry],
        out: &mut Vec<(&'a [u8], u64, RowKind)>,
    ) {
        let start = self.spec.rank_start as usize - 1;
        let end = self.spec.rank_end as usize;
        let shown = |entries: &'a [Entry]| {
            entries
                .get(start.min(entries.len())..end.min(entries.len()))
                .unwrap_or_default()
        };
        let (old, new) = (shown(old), shown(new));
        if self.spec.emit_rank {
            for r in 0..old.len().max(new.len()) {
                let rank = (start + r + 1) as u64;
                match (old.get(r), new.get(r)) {
                    (Some(o), Some(n)) if o.seq != n.seq => {
                        out.push((&o.row, rank, RowKind::UpdateBefore));
                        out.push((&n.row, rank, RowKind::UpdateAfter));
                    }
                    (Some(o), None) => out.push((&o.row, rank, RowKind::Delete)),
                    (None, Some(n)) => out.push((&n.row, rank, RowKind::Insert)),
                    _ => {}
                }
            }
            return;
        }
        let removed: Vec<(usize, &Entry)> = old
            .iter()
            .enumerate()
            .filter(|(_, o)| !new.iter().any(|n| n.seq == o.seq))
            .collect();
        let added: Vec<(usize, &Entry)> = new
            .iter()
            .enumerate()
            .filter(|(_, n)| !old.iter().any(|o| o.seq == n.seq))
            .collect();
        let upsert = self.spec.rank_end - self.spec.rank_start == 0;
        for &(r, o) in &removed {
            let kind = if upsert && !added.is_empty() {
                RowKind::UpdateBefore
            } else {
                RowKind::Delete
            };
            out.push((&o.row, (start + r + 1) as u64, kind));
        }
        for &(r, n) in &added {
            let kind = if upsert && !removed.is_empty() {
                RowKind::UpdateAfter
            } else {
                RowKind::Insert
            };
            out.push((&n.row, (start + r + 1) as u64, kind));
        }
    }

    /// A batch of `rows` with their ranks and kinds.
    fn output(&self, rows: Vec<(&[u8], u64, RowKind)>) -> Result<SqlBatch> {
        let parser = self.row_converter.parser();
        let columns = self
            .row_converter
            .convert_rows(rows.iter().map(|(r, _, _)| parser.parse(r)))?;
        let mut columns: Vec<ArrayRef> = columns.into_iter().take(self.spec.output_width).collect();
        columns.push(Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|r| r.1),
        )));
        let data = RecordBatch::try_new(Arc::clone(&self.spec.schema), columns)?;
        let kinds: Vec<RowKind> = rows.iter().map(|r| r.2).collect();
        Ok(SqlBatch::with_kinds(data, kinds))
    }

    /// Window mode: emits the windows whose end the watermark passed.
    ///
    /// # Errors
    /// When rows cannot be decoded.
    pub fn fire(&mut self, watermark: i64) -> Result<Option<SqlBatch>> {
        self.watermark = self.watermark.max(watermark);
        let mut fired = Vec::new();
        while let Some(entry) = self.windows.first_entry() {
            if *entry.key() - 1 > self.watermark {
                break;
            }
            for key in entry.remove() {
                if let Some(p) = self.partitions.remove(&key) {
                    fired.push(p);
                }
            }
        }
        if fired.is_empty() {
            return Ok(None);
        }
        let start = self.spec.rank_start as usize - 1;
        let rows: Vec<(&[u8], u64, RowKind)> = fired
            .iter()
            .flat_map(|p| {
                p.entries
                    .iter()
                    .enumerate()
                    .skip(start)
                    .map(|(r, e)| (e.row.as_ref(), r as u64 + 1, RowKind::Insert))
            })
            .collect();
        if rows.is_empty() {
            return Ok(None);
        }
        let batch = self.output(rows)?;
        Ok(Some(SqlBatch::new(batch.data().clone())))
    }

    fn state_schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = vec![
            Field::new("__key_group", DataType::UInt32, false),
            Field::new("__seq", DataType::UInt64, false),
        ];
        fields.extend(
            self.spec
                .input_schema
                .fields()
                .iter()
                .map(|f| Field::new(f.name(), f.data_type().clone(), true)),
        );
        Arc::new(Schema::new(fields))
    }

    /// The kept rows, one Arrow IPC blob per key group.
    ///
    /// # Errors
    /// What Arrow reports.
    pub fn snapshot(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        let entries: Vec<(u32, &Entry)> = self
            .partitions
            .values()
            .flat_map(|p| p.entries.iter().map(move |e| (p.key_group, e)))
            .collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let parser = self.row_converter.parser();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from_iter_values(entries.iter().map(|e| e.0))),
            Arc::new(UInt64Array::from_iter_values(
                entries.iter().map(|e| e.1.seq),
            )),
        ];
        columns.extend(
            self.row_converter
                .convert_rows(entries.iter().map(|e| parser.parse(&e.1.row)))?,
        );
        let all = RecordBatch::try_new(self.state_schema(), columns)?;
        encode_by_key_group(&all, entries.iter().map(|e| e.0))
    }

    /// Adds rows written by [`Self::snapshot`], in their order of arrival.
    ///
    /// # Errors
    /// On damaged state or state of another query.
    pub fn restore(&mut self, blob: &[u8]) -> Result<()> {
        let batch = decode_ipc(blob)?;
        crate::operators::keyed_state::check_state_schema(&batch, &self.state_schema(), "Top-N")?;
        let seqs = batch.column(1).as_primitive::<UInt64Type>().clone();
        let mut order: Vec<usize> = (0..batch.num_rows()).collect();
        order.sort_by_key(|&i| seqs.value(i));
        let order = UInt32Array::from_iter_values(order.iter().map(|&i| i as u32));
        let data = RecordBatch::try_new(
            Arc::clone(&self.spec.input_schema),
            batch.columns()[2..]
                .iter()
                .map(|c| arrow::compute::take(c, &order, None))
                .collect::<std::result::Result<_, _>>()?,
        )?;
        // Replaying the kept rows in arrival order rebuilds the same lists; their
        // arrival numbers continue after the restored ones.
        let max_seq = seqs.iter().flatten().max().unwrap_or(0);
        let watermark = std::mem::replace(&mut self.watermark, i64::MIN);
        let restored = self.add(&SqlBatch::new(data));
        self.watermark = watermark;
        restored?;
        self.next_seq = self.next_seq.max(max_seq + 1);
        Ok(())
    }
}

impl Operator for RankOperator {
    type In = SqlBatch;
    type Out = SqlBatch;

    fn open(&mut self, ctx: &OperatorContext) -> RuntimeResult<()> {
        self.max_parallelism = ctx.max_parallelism;
        self.now = ctx.clock.now_ms();
        self.late = Some(ctx.counter("late_records_dropped"));
        self.unknown = Some(ctx.counter("retractions_of_unknown_rows"));
        if let Some(restored) = &ctx.restored {
            for (_, blob) in &restored.keyed {
                exec(self.restore(blob))?;
            }
        }
        Ok(())
    }

    fn on_data(&mut self, batch: SqlBatch, out: &mut Collector<'_, SqlBatch>) -> RuntimeResult<()> {
        if let Some(changes) = exec(self.add(&batch))? {
            out.collect(changes)?;
        }
        Ok(())
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, SqlBatch>,
    ) -> RuntimeResult<()> {
        if self.spec.window_end.is_some() {
            if let Some(rows) = exec(self.fire(watermark.0 .0))? {
                out.collect(rows)?;
            }
        }
        out.emit_watermark(watermark)
    }

    fn on_processing_time(
        &mut self,
        now_ms: i64,
        _out: &mut Collector<'_, SqlBatch>,
    ) -> RuntimeResult<()> {
        self.now = now_ms;
        if let Some(cutoff) = self.ttl.as_mut().and_then(|t| t.sweep_due(now_ms)) {
            self.partitions.retain(|_, p| p.last_access >= cutoff);
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
