//! [`SessionAggregateOperator`]: aggregation over session windows (Flink's `SESSION`
//! window table function and `GROUP BY SESSION(ts, gap)` group window).
//!
//! Each input row carries its own window `[ts, ts + gap)` in its `window_start` and
//! `window_end` columns. Per key, the operator keeps the open sessions, sorted and
//! disjoint; a row whose window intersects or touches sessions merges them into one (as
//! Flink's merging windows do), and its accumulators take the merged ones' state. When
//! the watermark passes a session's end, the session emits one row per key and is
//! forgotten. A row whose merged session would already have fired is late: dropped and
//! counted (`late_records_dropped`).
//!
//! State: per key, its sessions with a DataFusion `Accumulator` per aggregate. Keys
//! without an open session are forgotten once they are most of the keys held. A
//! checkpoint writes, per key group, the keys, session bounds and accumulator states as
//! Arrow IPC, so a restore at another parallelism takes the key groups it owns.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use arrow::row::{RowConverter, Rows, SortField};
use datafusion_common::ScalarValue;
use datafusion_expr::Accumulator;
use hashbrown::HashMap;
use sluice_core::{CheckpointId, Watermark};
use sluice_runtime::checkpoint::OperatorSnapshot;
use sluice_runtime::metrics::Counter;
use sluice_runtime::{Collector, Operator, OperatorContext, Result as RuntimeResult};

use crate::batch::{decode_ipc, SqlBatch};
use crate::error::{exec, Error, Result};
use crate::exchange::key_group_of_row;
use crate::operators::group_aggregate::select;
use crate::operators::keyed_state::encode_by_key_group;
use crate::operators::window_aggregate::{window_rows, window_state_schema, WindowAggregateSpec};
use crate::operators::{accumulator_state, timestamps_ms};

struct Session {
    start: i64,
    end: i64,
    accumulators: Vec<Box<dyn Accumulator>>,
    /// Rows of the current batch that belong to the session, applied at its end.
    pending: Vec<u32>,
}

struct Key {
    key_group: u32,
    /// Open sessions, sorted by start and disjoint.
    sessions: Vec<Session>,
}

/// Aggregates rows per key and session.
pub struct SessionAggregateOperator {
    spec: Arc<WindowAggregateSpec>,
    converter: RowConverter,
    key_types: Vec<DataType>,
    rows: Rows,
    index: HashMap<Box<[u8]>, u32>,
    keys: Vec<Key>,
    /// Keys with a session ending at each time (may be stale after merges).
    timers: BTreeMap<i64, Vec<u32>>,
    watermark: i64,
    late: Option<Counter>,
    late_rows: u64,
    max_parallelism: u32,
}

impl SessionAggregateOperator {
    /// An operator computing `spec` (whose window columns hold each row's own window);
    /// keys have the types `key_types`.
    ///
    /// # Errors
    /// When a key type has no row encoding.
    pub fn new(spec: Arc<WindowAggregateSpec>, key_types: Vec<DataType>) -> Result<Self> {
        let converter = RowConverter::new(key_types.iter().cloned().map(SortField::new).collect())?;
        Ok(SessionAggregateOperator {
            rows: converter.empty_rows(0, 0),
            converter,
            key_types,
            spec,
            index: HashMap::new(),
            keys: Vec::new(),
            timers: BTreeMap::new(),
            watermark: i64::MIN,
            late: None,
            late_rows: 0,
            max_parallelism: 128,
        })
    }

    /// Rows dropped because their session had fired.
    pub fn late_rows_dropped(&self) -> u64 {
        self.late_rows
    }

    fn new_accumulators(&self) -> Result<Vec<Box<dyn Accumulator>>> {
        self.spec
            .aggregates
            .iter()
            .map(|c| Ok(c.function.create_accumulator()?))
            .collect()
    }

    /// The key index of each row of `keys`, adding new keys.
    fn key_indices(&mut self, keys: &[ArrayRef], num_rows: usize) -> Result<Vec<u32>> {
        if keys.is_empty() {
            if self.keys.is_empty() {
                self.keys.push(Key {
                    key_group: key_group_of_row(&[] as &[u8], self.max_parallelism),
                    sessions: Vec::new(),
                });
            }
            return Ok(vec![0; num_rows]);
        }
        let rows = self.converter.convert_columns(keys)?;
        let mut out = Vec::with_capacity(num_rows);
        for row in rows.iter() {
            let i = match self.index.get(row.as_ref()) {
                Some(&i) => i,
                None => {
                    let i = self.keys.len() as u32;
                    self.index.insert(row.as_ref().into(), i);
                    self.rows.push(row);
                    self.keys.push(Key {
                        key_group: key_group_of_row(row.as_ref(), self.max_parallelism),
                        sessions: Vec::new(),
                    });
                    i
                }
            };
            out.push(i);
        }
        Ok(out)
    }

    /// Puts the window `[start, end)` of key `k` into its sessions, merging those it
    /// intersects or touches; returns the session's index, or `None` when it is late.
    fn place(&mut self, k: u32, start: i64, end: i64) -> Result<Option<usize>> {
        let watermark = self.watermark;
        let sessions = &self.keys[k as usize].sessions;
        let first = sessions.partition_point(|s| s.end < start);
        let last = first + sessions[first..].partition_point(|s| s.start <= end);
        let (merged_start, merged_end) = if last > first {
            (
                sessions[first].start.min(start),
                sessions[last - 1].end.max(end),
            )
        } else {
            (start, end)
        };
        if merged_end - 1 <= watermark {
            return Ok(None);
        }
        let at = if first == last {
            let accumulators = self.new_accumulators()?;
            self.keys[k as usize].sessions.insert(
                first,
                Session {
                    start,
                    end,
                    accumulators,
                    pending: Vec::new(),
                },
            );
            first
        } else {
            let sessions = &mut self.keys[k as usize].sessions;
            let merged: Vec<Session> = sessions.drain(first + 1..last).collect();
            let target = &mut sessions[first];
            for other in merged {
                merge_into(target, other)?;
            }
            target.start = merged_start;
            target.end = merged_end;
            first
        };
        self.timers.entry(merged_end).or_default().push(k);
        Ok(Some(at))
    }

    /// Adds a batch of rows with their own windows.
    ///
    /// # Errors
    /// When an expression or accumulator fails.
    pub fn add(&mut self, batch: &SqlBatch) -> Result<()> {
        if batch.kinds().is_some() {
            return Err(Error::unsupported(
                "a session window aggregation over an updating input",
            ));
        }
        let data = batch.data();
        let n = data.num_rows();
        let key_arrays = self
            .spec
            .keys
            .iter()
            .map(|k| k.evaluate(data).and_then(|v| v.into_array(n)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let keys = self.key_indices(&key_arrays, n)?;
        let starts = timestamps_ms(data.column(self.spec.start_column), "window_start")?;
        let ends = timestamps_ms(data.column(self.spec.end_column), "window_end")?;
        let mut touched: Vec<u32> = Vec::new();
        let mut late = 0;
        for (i, &k) in keys.iter().enumerate() {
            if starts.is_null(i) || ends.is_null(i) {
                continue;
            }
            match self.place(k, starts.value(i), ends.value(i))? {
                Some(at) => {
                    let sessions = &mut self.keys[k as usize].sessions;
                    if sessions.iter().all(|s| s.pending.is_empty()) {
                        touched.push(k);
                    }
                    sessions[at].pending.push(i as u32);
                }
                None => late += 1,
            }
        }
        if late > 0 {
            self.late_rows += late;
            if let Some(c) = &self.late {
                c.add(late);
            }
        }
        self.apply_pending(data, &touched)
    }

    /// Updates the accumulators of the touched keys' sessions with their pending rows.
    fn apply_pending(&mut self, data: &RecordBatch, touched: &[u32]) -> Result<()> {
        if touched.is_empty() {
            return Ok(());
        }
        let n = data.num_rows();
        let spec = Arc::clone(&self.spec);
        let mut inputs = Vec::with_capacity(spec.aggregates.len());
        for call in &spec.aggregates {
            let args = call
                .function
                .expressions()
                .iter()
                .map(|e| e.evaluate(data).and_then(|v| v.into_array(n)))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let filter = match &call.filter {
                None => None,
                Some(f) => Some(f.evaluate(data)?.into_array(n)?),
            };
            inputs.push((args, filter));
        }
        for &k in touched {
            for session in &mut self.keys[k as usize].sessions {
                if session.pending.is_empty() {
                    continue;
                }
                let pending = std::mem::take(&mut session.pending);
                for ((args, filter), acc) in inputs.iter().zip(&mut session.accumulators) {
                    let rows = select(&pending, filter.as_ref())?;
                    if rows.is_empty() {
                        continue;
                    }
                    let indices = UInt32Array::from(rows);
                    let taken = args
                        .iter()
                        .map(|a| arrow::compute::take(a, &indices, None))
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    acc.update_batch(&taken)?;
                }
            }
        }
        Ok(())
    }

    /// Emits the sessions whose end the watermark passed.
    ///
    /// # Errors
    /// When an accumulator fails.
    pub fn fire(&mut self, watermark: i64) -> Result<Option<RecordBatch>> {
        self.watermark = self.watermark.max(watermark);
        let mut fired: Vec<(u32, Session)> = Vec::new();
        while let Some(entry) = self.timers.first_entry() {
            if *entry.key() - 1 > self.watermark {
                break;
            }
            for k in entry.remove() {
                let sessions = &mut self.keys[k as usize].sessions;
                let done = sessions.partition_point(|s| s.end - 1 <= self.watermark);
                fired.extend(sessions.drain(..done).map(|s| (k, s)));
            }
        }
        if fired.is_empty() {
            return Ok(None);
        }
        let out = self.output(fired)?;
        self.drop_idle_keys();
        Ok(Some(out))
    }

    /// Forgets the keys without an open session once they are most of the keys held
    /// (so state does not grow with every key ever seen), renumbering the rest.
    fn drop_idle_keys(&mut self) {
        let idle = self.keys.iter().filter(|k| k.sessions.is_empty()).count();
        if idle < 1024 || idle * 2 < self.keys.len() || self.key_types.is_empty() {
            return;
        }
        let mut rows = self.converter.empty_rows(self.keys.len() - idle, 0);
        let mut index = HashMap::with_capacity(self.keys.len() - idle);
        let mut kept = Vec::with_capacity(self.keys.len() - idle);
        let mut timers: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        for (k, key) in std::mem::take(&mut self.keys).into_iter().enumerate() {
            if key.sessions.is_empty() {
                continue;
            }
            let n = kept.len() as u32;
            let row = self.rows.row(k);
            index.insert(row.as_ref().into(), n);
            rows.push(row);
            for s in &key.sessions {
                timers.entry(s.end).or_default().push(n);
            }
            kept.push(key);
        }
        self.rows = rows;
        self.index = index;
        self.keys = kept;
        self.timers = timers;
    }

    /// The number of keys held (with or without open sessions).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    fn output(&self, mut fired: Vec<(u32, Session)>) -> Result<RecordBatch> {
        let n = fired.len();
        let keys = if self.key_types.is_empty() {
            Vec::new()
        } else {
            self.converter
                .convert_rows(fired.iter().map(|(k, _)| self.rows.row(*k as usize)))?
        };
        let mut results: Vec<Vec<ScalarValue>> =
            vec![Vec::with_capacity(n); self.spec.aggregates.len()];
        for (_, s) in &mut fired {
            for (a, acc) in s.accumulators.iter_mut().enumerate() {
                results[a].push(acc.evaluate()?);
            }
        }
        let results = results
            .into_iter()
            .map(ScalarValue::iter_to_array)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let starts: Vec<i64> = fired.iter().map(|(_, s)| s.start).collect();
        let ends: Vec<i64> = fired.iter().map(|(_, s)| s.end).collect();
        window_rows(&self.spec, &keys, &starts, &ends, &results)
    }

    fn state_schema(&self) -> Result<SchemaRef> {
        window_state_schema(&self.key_types, &self.spec.aggregates)
    }

    /// The open sessions, one Arrow IPC blob per key group.
    ///
    /// # Errors
    /// When an accumulator cannot give its state.
    pub fn snapshot(&mut self) -> Result<Vec<(u32, Vec<u8>)>> {
        let open: Vec<(u32, usize)> = self
            .keys
            .iter()
            .enumerate()
            .flat_map(|(k, key)| (0..key.sessions.len()).map(move |s| (k as u32, s)))
            .collect();
        if open.is_empty() {
            return Ok(Vec::new());
        }
        let schema = self.state_schema()?;
        let session = |&(k, s): &(u32, usize)| &self.keys[k as usize].sessions[s];
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from_iter_values(
                open.iter().map(|(k, _)| self.keys[*k as usize].key_group),
            )),
            Arc::new(Int64Array::from_iter_values(
                open.iter().map(|o| session(o).start),
            )),
            Arc::new(Int64Array::from_iter_values(
                open.iter().map(|o| session(o).end),
            )),
        ];
        if !self.key_types.is_empty() {
            columns.extend(
                self.converter
                    .convert_rows(open.iter().map(|(k, _)| self.rows.row(*k as usize)))?,
            );
        }
        let spec = Arc::clone(&self.spec);
        for (a, call) in spec.aggregates.iter().enumerate() {
            let width = call.function.state_fields()?.len();
            let mut fields: Vec<Vec<ScalarValue>> = vec![Vec::with_capacity(open.len()); width];
            for &(k, s) in &open {
                let acc = &mut self.keys[k as usize].sessions[s].accumulators[a];
                let state = accumulator_state(acc, || Ok(call.function.create_accumulator()?))?;
                for (f, v) in state.into_iter().enumerate() {
                    if let Some(values) = fields.get_mut(f) {
                        values.push(v);
                    }
                }
            }
            for values in fields {
                columns.push(ScalarValue::iter_to_array(values)?);
            }
        }
        let columns = columns
            .into_iter()
            .zip(schema.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c)
                } else {
                    arrow::compute::cast(&c, f.data_type())
                }
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let all = RecordBatch::try_new(schema, columns)?;
        let groups: Vec<u32> = open
            .iter()
            .map(|(k, _)| self.keys[*k as usize].key_group)
            .collect();
        encode_by_key_group(&all, groups)
    }

    /// Adds sessions written by [`Self::snapshot`].
    ///
    /// # Errors
    /// On damaged state or state of another query.
    pub fn restore(&mut self, blob: &[u8]) -> Result<()> {
        let batch = decode_ipc(blob)?;
        crate::operators::keyed_state::check_state_schema(
            &batch,
            &self.state_schema()?,
            "session window",
        )?;
        let k = self.key_types.len();
        let keys = self.key_indices(&batch.columns()[3..3 + k], batch.num_rows())?;
        let starts = batch.column(1).as_primitive::<Int64Type>().clone();
        let ends = batch.column(2).as_primitive::<Int64Type>().clone();
        let widths = self
            .spec
            .aggregates
            .iter()
            .map(|c| c.function.state_fields().map(|f| f.len()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for (row, &key) in keys.iter().enumerate() {
            let mut accumulators = self.new_accumulators()?;
            let mut column = 3 + k;
            for (acc, &width) in accumulators.iter_mut().zip(&widths) {
                let state: Vec<ArrayRef> = batch.columns()[column..column + width]
                    .iter()
                    .map(|c| c.slice(row, 1))
                    .collect();
                acc.merge_batch(&state)?;
                column += width;
            }
            let (start, end) = (starts.value(row), ends.value(row));
            let sessions = &mut self.keys[key as usize].sessions;
            let at = sessions.partition_point(|s| s.start < start);
            sessions.insert(
                at,
                Session {
                    start,
                    end,
                    accumulators,
                    pending: Vec::new(),
                },
            );
            self.timers.entry(end).or_default().push(key);
        }
        Ok(())
    }
}

/// Merges session `other` into `target`: accumulator states and pending rows.
fn merge_into(target: &mut Session, mut other: Session) -> Result<()> {
    for (acc, from) in target.accumulators.iter_mut().zip(&mut other.accumulators) {
        let state = from
            .state()?
            .into_iter()
            .map(|v| v.to_array())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        acc.merge_batch(&state)?;
    }
    target.pending.append(&mut other.pending);
    Ok(())
}

impl Operator for SessionAggregateOperator {
    type In = SqlBatch;
    type Out = SqlBatch;

    fn open(&mut self, ctx: &OperatorContext) -> RuntimeResult<()> {
        self.late = Some(ctx.counter("late_records_dropped"));
        self.max_parallelism = ctx.max_parallelism;
        if let Some(restored) = &ctx.restored {
            for (_, blob) in &restored.keyed {
                exec(self.restore(blob))?;
            }
        }
        Ok(())
    }

    fn on_data(
        &mut self,
        batch: SqlBatch,
        _out: &mut Collector<'_, SqlBatch>,
    ) -> RuntimeResult<()> {
        exec(self.add(&batch))
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, SqlBatch>,
    ) -> RuntimeResult<()> {
        if let Some(batch) = exec(self.fire(watermark.0 .0))? {
            out.collect(SqlBatch::new(batch))?;
        }
        out.emit_watermark(watermark)
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId) -> RuntimeResult<OperatorSnapshot> {
        Ok(OperatorSnapshot {
            keyed: exec(self.snapshot())?,
            ..OperatorSnapshot::default()
        })
    }
}
