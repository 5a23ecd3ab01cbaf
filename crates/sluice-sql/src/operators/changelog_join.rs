//! [`ChangelogJoinOperator`]: regular joins that emit a changelog (Flink's
//! `StreamingJoinOperator`): outer joins (`LEFT`, `RIGHT`, `FULL`), semi and anti joins
//! (`EXISTS`, `NOT EXISTS`), and joins of inputs that retract rows (the output of a
//! `GROUP BY` or a Top-N).
//!
//! Each side keeps its rows (Arrow row format) per join key with a multiplicity and an
//! association count: how many rows of the other side it matches (keys equal and the
//! join's other conditions true). A row that arrives (`+I`, `+U`) is stored and emits its
//! pairs; a row that is retracted (`-U`, `-D`) is removed and retracts them. The
//! association counts tell an outer side when a row goes from unmatched to matched (its
//! NULL-padded row is retracted) and back (it is emitted again), and a semi or anti
//! join when a row enters or leaves its result.
//!
//! Within a batch, the candidate pairs are found and the other conditions evaluated for
//! the whole batch at once (the other side does not change during it); the changes are
//! then applied row by row, in order. State is written per key group as Arrow IPC, so a
//! restore at another parallelism takes the key groups it owns. With
//! `table.exec.state.ttl`, a key whose rows did not change for that long is dropped
//! (both sides, separately).

use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, RecordBatch, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt32Type};
use arrow::row::{RowConverter, Rows, SortField};
use datafusion_physical_expr::PhysicalExpr;
use hashbrown::HashMap;
use sluice_core::CheckpointId;
use sluice_runtime::checkpoint::OperatorSnapshot;
use sluice_runtime::metrics::Counter;
use sluice_runtime::{Collector, OperatorContext, Result as RuntimeResult, TwoInputOperator};

use crate::batch::{decode_ipc, RowKind, SqlBatch};
use crate::error::{exec, Error, Result};
use crate::exchange::key_group_of_row;
use crate::operators::keyed_state::encode_by_key_group;
use crate::operators::StateTtl;

/// Which rows a changelog join emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangelogJoinKind {
    /// Matching pairs.
    Inner,
    /// Pairs, and left rows without a match padded with NULLs.
    Left,
    /// Pairs, and right rows without a match padded with NULLs.
    Right,
    /// Pairs, and rows of either side without a match padded with NULLs.
    Full,
    /// Left rows with a match.
    LeftSemi,
    /// Left rows without a match.
    LeftAnti,
    /// Right rows with a match.
    RightSemi,
    /// Right rows without a match.
    RightAnti,
}

impl ChangelogJoinKind {
    /// Whether unmatched rows of the side (`left`) are emitted padded with NULLs.
    fn outer(self, left: bool) -> bool {
        match self {
            ChangelogJoinKind::Left => left,
            ChangelogJoinKind::Right => !left,
            ChangelogJoinKind::Full => true,
            _ => false,
        }
    }

    /// Whether the output is pairs (else the rows of one side).
    fn pairs(self) -> bool {
        matches!(
            self,
            ChangelogJoinKind::Inner
                | ChangelogJoinKind::Left
                | ChangelogJoinKind::Right
                | ChangelogJoinKind::Full
        )
    }

    /// For semi and anti joins: the side whose rows are output, and whether rows with a
    /// match (semi) or without one (anti) are.
    fn filtered_side(self) -> Option<(bool, bool)> {
        match self {
            ChangelogJoinKind::LeftSemi => Some((true, true)),
            ChangelogJoinKind::LeftAnti => Some((true, false)),
            ChangelogJoinKind::RightSemi => Some((false, true)),
            ChangelogJoinKind::RightAnti => Some((false, false)),
            _ => None,
        }
    }
}

/// What a changelog join computes.
pub struct ChangelogJoinSpec {
    /// Which rows it emits.
    pub kind: ChangelogJoinKind,
    /// The left input's schema (its output columns, then computed keys).
    pub left_schema: SchemaRef,
    /// The right input's schema.
    pub right_schema: SchemaRef,
    /// Key columns of the left rows.
    pub left_keys: Vec<usize>,
    /// Key columns of the right rows.
    pub right_keys: Vec<usize>,
    /// Output columns of the left rows.
    pub left_width: usize,
    /// Output columns of the right rows.
    pub right_width: usize,
    /// Conditions besides key equality, over the joined row (`joined_schema`).
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// Left output columns then right output columns, all nullable.
    pub joined_schema: SchemaRef,
    /// The output schema.
    pub schema: SchemaRef,
    /// Expiry of keys whose rows did not change for a while (`table.exec.state.ttl`).
    pub state_ttl: Option<StateTtl>,
}

/// A stored row: its encoding, how many times it is present, and how many rows of the
/// other side it matches (with their multiplicities).
struct Stored {
    row: Arc<[u8]>,
    count: u32,
    assoc: u32,
}

#[derive(Default)]
struct Side {
    /// Rows by join key, with the key's key group and the processing time the key's rows
    /// last changed (for the state TTL).
    index: HashMap<Box<[u8]>, (u32, Vec<Stored>, i64)>,
}

/// One output row: left and right rows (`None` pads with NULLs) and its kind.
type OutRow = (Option<Arc<[u8]>>, Option<Arc<[u8]>>, RowKind);

/// Joins two changelogs on equal keys.
pub struct ChangelogJoinOperator {
    spec: Arc<ChangelogJoinSpec>,
    keys: RowConverter,
    left_rows: RowConverter,
    right_rows: RowConverter,
    left: Side,
    right: Side,
    max_parallelism: u32,
    unknown_retractions: Option<Counter>,
    ttl: Option<StateTtl>,
    now: i64,
}

fn converter(schema: &SchemaRef) -> Result<RowConverter> {
    Ok(RowConverter::new(
        schema
            .fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect(),
    )?)
}

impl ChangelogJoinOperator {
    /// A join computing `spec` with keys of `key_types`.
    ///
    /// # Errors
    /// When a type has no row encoding.
    pub fn new(spec: Arc<ChangelogJoinSpec>, key_types: Vec<DataType>) -> Result<Self> {
        Ok(ChangelogJoinOperator {
            ttl: spec.state_ttl,
            keys: RowConverter::new(key_types.into_iter().map(SortField::new).collect())?,
            left_rows: converter(&spec.left_schema)?,
            right_rows: converter(&spec.right_schema)?,
            spec,
            left: Side::default(),
            right: Side::default(),
            max_parallelism: 128,
            unknown_retractions: None,
            now: 0,
        })
    }

    /// Applies a batch of one side and returns the changes it causes.
    ///
    /// # Errors
    /// When keys or conditions cannot be evaluated.
    pub fn add(&mut self, batch: &SqlBatch, is_left: bool) -> Result<Option<SqlBatch>> {
        let data = batch.data();
        let n = data.num_rows();
        if n == 0 {
            return Ok(None);
        }
        let key_columns = if is_left {
            &self.spec.left_keys
        } else {
            &self.spec.right_keys
        };
        let key_arrays: Vec<ArrayRef> = key_columns
            .iter()
            .map(|&c| Arc::clone(data.column(c)))
            .collect();
        let keys = self.keys.convert_columns(&key_arrays)?;
        let rows = if is_left {
            self.left_rows.convert_columns(data.columns())?
        } else {
            self.right_rows.convert_columns(data.columns())?
        };
        let null_key: Vec<bool> = (0..n)
            .map(|i| key_arrays.iter().any(|k| k.is_null(i)))
            .collect();
        let passing = self.passing_pairs(data, is_left, &keys, &null_key)?;
        let mut out: Vec<OutRow> = Vec::new();
        for i in 0..n {
            let row: Arc<[u8]> = rows.row(i).as_ref().into();
            let key = keys.row(i);
            let matches = &passing[i];
            if batch.kind(i).is_addition() {
                self.accumulate(is_left, key.as_ref(), row, matches, null_key[i], &mut out);
            } else {
                self.retract(is_left, key.as_ref(), row, matches, null_key[i], &mut out);
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        self.output(&out).map(Some)
    }

    /// For each row of `data`: the indices (into the other side's list for its key) of
    /// the rows it matches, keys equal and the other conditions true.
    fn passing_pairs(
        &self,
        data: &RecordBatch,
        is_left: bool,
        keys: &Rows,
        null_key: &[bool],
    ) -> Result<Vec<Vec<usize>>> {
        let other = if is_left { &self.right } else { &self.left };
        let mut candidates: Vec<(u32, usize)> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            if null_key[i] {
                continue;
            }
            if let Some((_, list, _)) = other.index.get(key.as_ref()) {
                candidates.extend((0..list.len()).map(|j| (i as u32, j)));
            }
        }
        let mut passing = vec![Vec::new(); data.num_rows()];
        let Some(filter) = &self.spec.filter else {
            for (i, j) in candidates {
                passing[i as usize].push(j);
            }
            return Ok(passing);
        };
        if candidates.is_empty() {
            return Ok(passing);
        }
        // The joined rows of the candidates, evaluated at once.
        let mine = UInt32Array::from_iter_values(candidates.iter().map(|c| c.0));
        let other_rows: Vec<Arc<[u8]>> = candidates
            .iter()
            .map(|&(i, j)| {
                let key = keys.row(i as usize);
                other
                    .index
                    .get(key.as_ref())
                    .map(|(_, list, _)| Arc::clone(&list[j].row))
                    .ok_or_else(|| Error::Execution("join candidate vanished".into()))
            })
            .collect::<Result<_>>()?;
        let other_converter = if is_left {
            &self.right_rows
        } else {
            &self.left_rows
        };
        let parser = other_converter.parser();
        let other_columns =
            other_converter.convert_rows(other_rows.iter().map(|r| parser.parse(r)))?;
        let mine_columns: Vec<ArrayRef> = data
            .columns()
            .iter()
            .map(|c| arrow::compute::take(c.as_ref(), &mine, None))
            .collect::<std::result::Result<_, _>>()?;
        let (left_cols, right_cols) = if is_left {
            (&mine_columns, &other_columns)
        } else {
            (&other_columns, &mine_columns)
        };
        let mut columns: Vec<ArrayRef> = left_cols[..self.spec.left_width].to_vec();
        columns.extend_from_slice(&right_cols[..self.spec.right_width]);
        let joined = RecordBatch::try_new(Arc::clone(&self.spec.joined_schema), columns)?;
        let mask = filter.evaluate(&joined)?.into_array(joined.num_rows())?;
        let mask = mask
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| Error::Execution("a join condition is not a boolean".into()))?;
        for (c, &(i, j)) in candidates.iter().enumerate() {
            if mask.is_valid(c) && mask.value(c) {
                passing[i as usize].push(j);
            }
        }
        Ok(passing)
    }

    fn pair(is_left: bool, mine: &Arc<[u8]>, other: Option<&Arc<[u8]>>, kind: RowKind) -> OutRow {
        let other = other.cloned();
        if is_left {
            (Some(Arc::clone(mine)), other, kind)
        } else {
            (other, Some(Arc::clone(mine)), kind)
        }
    }

    fn accumulate(
        &mut self,
        is_left: bool,
        key: &[u8],
        row: Arc<[u8]>,
        matches: &[usize],
        null_key: bool,
        out: &mut Vec<OutRow>,
    ) {
        let kind = self.spec.kind;
        let max_parallelism = self.max_parallelism;
        let now = self.now;
        let (mine, other) = if is_left {
            (&mut self.left, &mut self.right)
        } else {
            (&mut self.right, &mut self.left)
        };
        let mut weight = 0;
        if let Some((_, list, _)) = other.index.get_mut(key).filter(|_| !null_key) {
            for &j in matches {
                let m = &mut list[j];
                weight += m.count;
                if kind.outer(!is_left) && m.assoc == 0 {
                    for _ in 0..m.count {
                        out.push(Self::pair(!is_left, &m.row, None, RowKind::Delete));
                    }
                }
                if let Some((side_left, semi)) = kind.filtered_side() {
                    if side_left != is_left && m.assoc == 0 {
                        let k = if semi {
                            RowKind::Insert
                        } else {
                            RowKind::Delete
                        };
                        for _ in 0..m.count {
                            out.push((Some(Arc::clone(&m.row)), None, k));
                        }
                    }
                }
                m.assoc += 1;
                if kind.pairs() {
                    for _ in 0..m.count {
                        out.push(Self::pair(is_left, &row, Some(&m.row), RowKind::Insert));
                    }
                }
            }
        }
        if kind.outer(is_left) && weight == 0 {
            out.push(Self::pair(is_left, &row, None, RowKind::Insert));
        }
        if let Some((side_left, semi)) = kind.filtered_side() {
            if side_left == is_left && (weight > 0) == semi {
                out.push((Some(Arc::clone(&row)), None, RowKind::Insert));
            }
        }
        if null_key && !kind.outer(is_left) && kind.filtered_side() != Some((is_left, false)) {
            // A NULL key never matches: only an outer or anti side needs the row later.
            return;
        }
        let entry = mine
            .index
            .entry(key.into())
            .or_insert_with(|| (key_group_of_row(key, max_parallelism), Vec::new(), now));
        entry.2 = now;
        match entry.1.iter_mut().find(|s| s.row == row) {
            Some(s) => s.count += 1,
            None => entry.1.push(Stored {
                row,
                count: 1,
                assoc: weight,
            }),
        }
    }

    fn retract(
        &mut self,
        is_left: bool,
        key: &[u8],
        row: Arc<[u8]>,
        matches: &[usize],
        null_key: bool,
        out: &mut Vec<OutRow>,
    ) {
        let kind = self.spec.kind;
        let now = self.now;
        let (mine, other) = if is_left {
            (&mut self.left, &mut self.right)
        } else {
            (&mut self.right, &mut self.left)
        };
        // Remove one occurrence; a row never stored (state of another run) is counted.
        let stored = mine.index.get_mut(key).and_then(|(_, list, last)| {
            *last = now;
            let at = list.iter().position(|s| s.row == row)?;
            list[at].count -= 1;
            if list[at].count == 0 {
                list.remove(at);
            }
            Some(())
        });
        if mine.index.get(key).is_some_and(|(_, l, _)| l.is_empty()) {
            mine.index.remove(key);
        }
        let expected_stored =
            !null_key || kind.outer(is_left) || kind.filtered_side() == Some((is_left, false));
        if stored.is_none() && expected_stored {
            if let Some(c) = &self.unknown_retractions {
                c.inc();
            }
            return;
        }
        let mut weight = 0;
        if let Some((_, list, _)) = other.index.get_mut(key).filter(|_| !null_key) {
            for &j in matches {
                let m = &mut list[j];
                weight += m.count;
                if kind.pairs() {
                    for _ in 0..m.count {
                        out.push(Self::pair(is_left, &row, Some(&m.row), RowKind::Delete));
                    }
                }
                m.assoc = m.assoc.saturating_sub(1);
                if kind.outer(!is_left) && m.assoc == 0 {
                    for _ in 0..m.count {
                        out.push(Self::pair(!is_left, &m.row, None, RowKind::Insert));
                    }
                }
                if let Some((side_left, semi)) = kind.filtered_side() {
                    if side_left != is_left && m.assoc == 0 {
                        let k = if semi {
                            RowKind::Delete
                        } else {
                            RowKind::Insert
                        };
                        for _ in 0..m.count {
                            out.push((Some(Arc::clone(&m.row)), None, k));
                        }
                    }
                }
            }
        }
        if kind.outer(is_left) && weight == 0 {
            out.push(Self::pair(is_left, &row, None, RowKind::Delete));
        }
        if let Some((side_left, semi)) = kind.filtered_side() {
            if side_left == is_left && (weight > 0) == semi {
                out.push((Some(Arc::clone(&row)), None, RowKind::Delete));
            }
        }
    }

    /// The output batch of `rows`.
    fn output(&self, rows: &[OutRow]) -> Result<SqlBatch> {
        let n = rows.len();
        let side_columns = |converter: &RowConverter,
                            schema: &SchemaRef,
                            width: usize,
                            pick: &dyn Fn(&OutRow) -> Option<Arc<[u8]>>|
         -> Result<Vec<ArrayRef>> {
            let present: Vec<(usize, Arc<[u8]>)> = rows
                .iter()
                .enumerate()
                .filter_map(|(i, r)| pick(r).map(|row| (i, row)))
                .collect();
            let parser = converter.parser();
            let columns = converter.convert_rows(present.iter().map(|(_, r)| parser.parse(r)))?;
            if present.len() == n {
                return Ok(columns.into_iter().take(width).collect());
            }
            // Rows padded with NULLs: place the present values, NULLs elsewhere.
            let mut positions: Vec<Option<u32>> = vec![None; n];
            for (p, (i, _)) in present.iter().enumerate() {
                positions[*i] = Some(p as u32);
            }
            let indices = UInt32Array::from(positions);
            columns
                .iter()
                .zip(schema.fields())
                .take(width)
                .map(|(c, f)| {
                    if c.is_empty() {
                        Ok(new_null_array(f.data_type(), n))
                    } else {
                        Ok(arrow::compute::take(c.as_ref(), &indices, None)?)
                    }
                })
                .collect()
        };
        let mut columns = Vec::with_capacity(self.spec.schema.fields().len());
        match self.spec.kind.filtered_side() {
            Some((true, _)) => columns.extend(side_columns(
                &self.left_rows,
                &self.spec.left_schema,
                self.spec.left_width,
                &|r| r.0.clone(),
            )?),
            Some((false, _)) => columns.extend(side_columns(
                &self.right_rows,
                &self.spec.right_schema,
                self.spec.right_width,
                &|r| r.0.clone(),
            )?),
            None => {
                columns.extend(side_columns(
                    &self.left_rows,
                    &self.spec.left_schema,
                    self.spec.left_width,
                    &|r| r.0.clone(),
                )?);
                columns.extend(side_columns(
                    &self.right_rows,
                    &self.spec.right_schema,
                    self.spec.right_width,
                    &|r| r.1.clone(),
                )?);
            }
        }
        let columns = columns
            .into_iter()
            .zip(self.spec.schema.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c)
                } else {
                    Ok(arrow::compute::cast(&c, f.data_type())?)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let data = RecordBatch::try_new(Arc::clone(&self.spec.schema), columns)?;
        Ok(SqlBatch::with_kinds(
            data,
            rows.iter().map(|r| r.2).collect(),
        ))
    }

    /// Drops the keys (of either side) whose rows last changed before `cutoff`.
    pub fn expire(&mut self, cutoff: i64) {
        for side in [&mut self.left, &mut self.right] {
            side.index.retain(|_, (_, _, last)| *last >= cutoff);
        }
    }

    fn state_schema(schema: &SchemaRef) -> SchemaRef {
        let mut fields = vec![
            Field::new("__key_group", DataType::UInt32, false),
            Field::new("__count", DataType::UInt32, false),
            Field::new("__assoc", DataType::UInt32, false),
        ];
        fields.extend(
            schema
                .fields()
                .iter()
                .map(|f| Field::new(f.name(), f.data_type().clone(), true)),
        );
        Arc::new(Schema::new(fields))
    }

    fn side_snapshot(&self, is_left: bool) -> Result<Option<RecordBatch>> {
        let (side, converter, schema) = if is_left {
            (&self.left, &self.left_rows, &self.spec.left_schema)
        } else {
            (&self.right, &self.right_rows, &self.spec.right_schema)
        };
        let stored: Vec<(u32, &Stored)> = side
            .index
            .values()
            .flat_map(|(g, list, _)| list.iter().map(move |s| (*g, s)))
            .collect();
        if stored.is_empty() {
            return Ok(None);
        }
        let parser = converter.parser();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from_iter_values(stored.iter().map(|s| s.0))),
            Arc::new(UInt32Array::from_iter_values(
                stored.iter().map(|s| s.1.count),
            )),
            Arc::new(UInt32Array::from_iter_values(
                stored.iter().map(|s| s.1.assoc),
            )),
        ];
        columns.extend(converter.convert_rows(stored.iter().map(|s| parser.parse(&s.1.row)))?);
        Ok(Some(RecordBatch::try_new(
            Self::state_schema(schema),
            columns,
        )?))
    }

    /// Both sides' rows, one Arrow IPC blob per key group holding a blob per side.
    ///
    /// # Errors
    /// What Arrow reports.
    pub fn snapshot(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        let mut by_group: std::collections::BTreeMap<u32, (Vec<u8>, Vec<u8>)> =
            std::collections::BTreeMap::new();
        for is_left in [true, false] {
            let Some(batch) = self.side_snapshot(is_left)? else {
                continue;
            };
            let groups = batch
                .column(0)
                .as_any()
                .downcast_ref::<UInt32Array>()
                .map(|a| a.values().to_vec())
                .unwrap_or_default();
            for (g, blob) in encode_by_key_group(&batch, groups)? {
                let e = by_group.entry(g).or_default();
                if is_left {
                    e.0 = blob;
                } else {
                    e.1 = blob;
                }
            }
        }
        by_group
            .into_iter()
            .map(|(g, (l, r))| {
                postcard::to_allocvec(&(l, r))
                    .map(|b| (g, b))
                    .map_err(|e| Error::Execution(format!("join state: {e}")))
            })
            .collect()
    }

    /// Adds state written by [`Self::snapshot`].
    ///
    /// # Errors
    /// On damaged state or state of another query.
    pub fn restore(&mut self, blob: &[u8]) -> Result<()> {
        let (l, r): (Vec<u8>, Vec<u8>) = postcard::from_bytes(blob)
            .map_err(|e| Error::Execution(format!("damaged join state: {e}")))?;
        let now = self.now;
        for (is_left, bytes) in [(true, l), (false, r)] {
            if bytes.is_empty() {
                continue;
            }
            let batch = decode_ipc(&bytes)?;
            let (schema, keys) = if is_left {
                (&self.spec.left_schema, &self.spec.left_keys)
            } else {
                (&self.spec.right_schema, &self.spec.right_keys)
            };
            if batch.num_columns() != schema.fields().len() + 3 {
                return Err(Error::Execution(
                    "the checkpoint's join state does not match this query; start it without \
                     the checkpoint"
                        .into(),
                ));
            }
            let groups = batch.column(0).as_primitive::<UInt32Type>().clone();
            let counts = batch.column(1).as_primitive::<UInt32Type>().clone();
            let assoc = batch.column(2).as_primitive::<UInt32Type>().clone();
            let data = &batch.columns()[3..];
            let key_arrays: Vec<ArrayRef> = keys.iter().map(|&k| Arc::clone(&data[k])).collect();
            let key_rows = self.keys.convert_columns(&key_arrays)?;
            let converter = if is_left {
                &self.left_rows
            } else {
                &self.right_rows
            };
            let rows = converter.convert_columns(data)?;
            let side = if is_left {
                &mut self.left
            } else {
                &mut self.right
            };
            for i in 0..batch.num_rows() {
                let entry = side
                    .index
                    .entry(key_rows.row(i).as_ref().into())
                    .or_insert_with(|| (groups.value(i), Vec::new(), now));
                entry.1.push(Stored {
                    row: rows.row(i).as_ref().into(),
                    count: counts.value(i),
                    assoc: assoc.value(i),
                });
            }
        }
        Ok(())
    }
}

impl TwoInputOperator for ChangelogJoinOperator {
    type In1 = SqlBatch;
    type In2 = SqlBatch;
    type Out = SqlBatch;

    fn open(&mut self, ctx: &OperatorContext) -> RuntimeResult<()> {
        self.max_parallelism = ctx.max_parallelism;
        self.now = ctx.clock.now_ms();
        self.unknown_retractions = Some(ctx.counter("join_retractions_of_unknown_rows"));
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
        if let Some(changes) = exec(self.add(&batch, true))? {
            out.collect(changes)?;
        }
        Ok(())
    }

    fn on_data2(
        &mut self,
        batch: SqlBatch,
        out: &mut Collector<'_, SqlBatch>,
    ) -> RuntimeResult<()> {
        if let Some(changes) = exec(self.add(&batch, false))? {
            out.collect(changes)?;
        }
        Ok(())
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
