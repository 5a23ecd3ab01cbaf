//! [`WindowAggregateOperator`]: `GROUP BY window_start, window_end, keys...` over a window
//! table function, fired when the watermark passes a window's end (Flink's window
//! aggregation: append-only output, one row per window and key). Over a processing time
//! attribute, rows go to the windows of the operator's clock when they arrive and
//! windows fire as the clock passes their end.
//!
//! State: per open window, the keys seen (Arrow row format) and DataFusion groups
//! accumulators, one group per key, updated a batch at a time. A checkpoint writes, for
//! each key group, the windows' keys and accumulator states as Arrow IPC, so a restore at
//! another parallelism takes the key groups it owns. Rows of windows the watermark passed
//! are dropped and counted (`late_records_dropped`).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, Int64Array, RecordBatch, TimestampMillisecondArray, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::row::{RowConverter, Rows, SortField};
use datafusion_expr::{EmitTo, GroupsAccumulator};
use datafusion_functions_aggregate_common::aggregate::groups_accumulator::GroupsAccumulatorAdapter;
use datafusion_physical_expr::aggregate::AggregateFunctionExpr;
use datafusion_physical_expr::PhysicalExpr;
use hashbrown::HashMap;
use sluice_core::time::{Clock, SystemClock};
use sluice_core::{CheckpointId, Watermark};
use sluice_runtime::checkpoint::OperatorSnapshot;
use sluice_runtime::metrics::Counter;
use sluice_runtime::{Collector, Operator, OperatorContext, Result as RuntimeResult};

use crate::batch::{decode_ipc, SqlBatch};
use crate::catalog::WindowKind;
use crate::error::{exec, Error, Result};
use crate::exchange::key_group_of_row;
use crate::operators::keyed_state::encode_by_key_group;
use crate::operators::window_assigner::windows_of;

/// Where an output column comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowOutput {
    /// The group key with this index.
    Key(usize),
    /// `window_start`.
    Start,
    /// `window_end`.
    End,
    /// `window_time` (`window_end - 1 ms`).
    Time,
    /// The aggregate with this index.
    Aggregate(usize),
}

/// One aggregate call: the function, its `FILTER (WHERE ...)` predicate.
pub struct AggregateCall {
    /// The function with its argument expressions.
    pub function: Arc<AggregateFunctionExpr>,
    /// The filter, over the input's columns.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
}

/// What a window aggregation computes.
pub struct WindowAggregateSpec {
    /// The group keys other than the window columns, over the input's columns.
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Windows of processing time: rows are assigned to the windows of this kind at the
    /// operator's clock when they arrive (their window columns are ignored), and windows
    /// fire as the clock passes their end. `None`: event time.
    pub processing_time: Option<WindowKind>,
    /// The input column of `window_start`.
    pub start_column: usize,
    /// The input column of `window_end`.
    pub end_column: usize,
    /// The aggregates.
    pub aggregates: Vec<AggregateCall>,
    /// The output columns in order.
    pub output: Vec<WindowOutput>,
    /// The output schema.
    pub schema: SchemaRef,
}

struct WindowState {
    start: i64,
    rows: Rows,
    index: HashMap<Box<[u8]>, u32>,
    key_groups: Vec<u32>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
}

/// Aggregates rows per window and key.
pub struct WindowAggregateOperator {
    spec: Arc<WindowAggregateSpec>,
    converter: RowConverter,
    windows: BTreeMap<i64, WindowState>,
    watermark: i64,
    max_parallelism: u32,
    late: Option<Counter>,
    key_types: Vec<DataType>,
    clock: Arc<dyn Clock>,
}

/// The output rows of windows: one per entry of `starts`/`ends`, with the keys' columns
/// and the aggregates' results, in the order `spec.output` gives.
///
/// # Errors
/// When a column cannot be cast to the output type.
pub(crate) fn window_rows(
    spec: &WindowAggregateSpec,
    keys: &[ArrayRef],
    starts: &[i64],
    ends: &[i64],
    results: &[ArrayRef],
) -> Result<RecordBatch> {
    let times = |values: Vec<i64>, i: usize| -> ArrayRef {
        let tz = match spec.schema.field(i).data_type() {
            DataType::Timestamp(_, tz) => tz.clone(),
            _ => None,
        };
        Arc::new(TimestampMillisecondArray::from(values).with_timezone_opt(tz))
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(spec.output.len());
    for (i, out) in spec.output.iter().enumerate() {
        let column: ArrayRef = match *out {
            WindowOutput::Key(k) => Arc::clone(&keys[k]),
            WindowOutput::Start => times(starts.to_vec(), i),
            WindowOutput::End => times(ends.to_vec(), i),
            WindowOutput::Time => times(ends.iter().map(|e| e - 1).collect(), i),
            WindowOutput::Aggregate(a) => Arc::clone(&results[a]),
        };
        let target = spec.schema.field(i).data_type();
        columns.push(if column.data_type() == target {
            column
        } else {
            arrow::compute::cast(&column, target)?
        });
    }
    Ok(RecordBatch::try_new(Arc::clone(&spec.schema), columns)?)
}

/// The schema of windows' checkpointed state: key group, window bounds, keys, and the
/// aggregates' state fields.
///
/// # Errors
/// When an aggregate cannot tell its state fields.
pub(crate) fn window_state_schema(
    key_types: &[DataType],
    aggregates: &[AggregateCall],
) -> Result<SchemaRef> {
    let mut fields = vec![
        Field::new("__key_group", DataType::UInt32, false),
        Field::new("__start", DataType::Int64, false),
        Field::new("__end", DataType::Int64, false),
    ];
    for (i, t) in key_types.iter().enumerate() {
        fields.push(Field::new(format!("__key{i}"), t.clone(), true));
    }
    for (a, call) in aggregates.iter().enumerate() {
        for (s, f) in call.function.state_fields()?.iter().enumerate() {
            fields.push(Field::new(
                format!("__agg{a}_{s}"),
                f.data_type().clone(),
                true,
            ));
        }
    }
    Ok(Arc::new(Schema::new(fields)))
}

fn accumulator(call: &AggregateCall) -> Result<Box<dyn GroupsAccumulator>> {
    let f = &call.function;
    if f.groups_accumulator_supported() {
        Ok(f.create_groups_accumulator()?)
    } else {
        let f = Arc::clone(f);
        Ok(Box::new(GroupsAccumulatorAdapter::new(move || {
            f.create_accumulator()
        })))
    }
}

fn millis(array: &ArrayRef) -> Result<Vec<i64>> {
    Ok(super::timestamps_ms(array, "the window column")?
        .values()
        .to_vec())
}

impl WindowAggregateOperator {
    /// An operator computing `spec`; keys have the types `key_types`.
    ///
    /// # Errors
    /// When a key type has no row encoding.
    pub fn new(spec: Arc<WindowAggregateSpec>, key_types: Vec<DataType>) -> Result<Self> {
        let converter = RowConverter::new(key_types.iter().cloned().map(SortField::new).collect())?;
        Ok(WindowAggregateOperator {
            spec,
            converter,
            windows: BTreeMap::new(),
            watermark: i64::MIN,
            max_parallelism: 128,
            late: None,
            key_types,
            clock: Arc::new(SystemClock),
        })
    }

    fn new_window(&self, start: i64) -> Result<WindowState> {
        Ok(WindowState {
            start,
            rows: self.converter.empty_rows(0, 0),
            index: HashMap::new(),
            key_groups: Vec::new(),
            accumulators: self
                .spec
                .aggregates
                .iter()
                .map(accumulator)
                .collect::<Result<_>>()?,
        })
    }

    /// The group index of each row of `keys` in window `end`, adding new groups.
    fn group_indices(
        &mut self,
        end: i64,
        start: i64,
        keys: &[ArrayRef],
        rows: usize,
    ) -> Result<Vec<usize>> {
        if !self.windows.contains_key(&end) {
            let w = self.new_window(start)?;
            self.windows.insert(end, w);
        }
        let max_parallelism = self.max_parallelism;
        let Some(window) = self.windows.get_mut(&end) else {
            return Err(Error::Execution("window vanished".into()));
        };
        if keys.is_empty() {
            // No keys (`GROUP BY window_start, window_end` only): one group per window.
            if window.key_groups.is_empty() {
                window
                    .key_groups
                    .push(key_group_of_row(&[] as &[u8], max_parallelism));
            }
            return Ok(vec![0; rows]);
        }
        let batch_rows = self.converter.convert_columns(keys)?;
        let mut indices = Vec::with_capacity(batch_rows.num_rows());
        for row in batch_rows.iter() {
            let bytes = row.as_ref();
            let index = match window.index.get(bytes) {
                Some(&i) => i,
                None => {
                    let i = window.key_groups.len() as u32;
                    window.index.insert(bytes.into(), i);
                    window.rows.push(row);
                    window
                        .key_groups
                        .push(key_group_of_row(bytes, max_parallelism));
                    i
                }
            };
            indices.push(index as usize);
        }
        Ok(indices)
    }

    fn update(&mut self, batch: &RecordBatch, end: i64, start: i64) -> Result<()> {
        let rows = batch.num_rows();
        let keys = self
            .spec
            .keys
            .iter()
            .map(|k| k.evaluate(batch).and_then(|v| v.into_array(rows)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let groups = self.group_indices(end, start, &keys, rows)?;
        let spec = Arc::clone(&self.spec);
        let Some(window) = self.windows.get_mut(&end) else {
            return Err(Error::Execution("window vanished".into()));
        };
        let total = window.key_groups.len();
        for (call, acc) in spec.aggregates.iter().zip(&mut window.accumulators) {
            let args = call
                .function
                .expressions()
                .iter()
                .map(|e| e.evaluate(batch).and_then(|v| v.into_array(rows)))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let filter = match &call.filter {
                None => None,
                Some(f) => Some(f.evaluate(batch)?.into_array(rows)?),
            };
            let filter = filter.as_ref().and_then(|f| f.as_boolean_opt());
            acc.update_batch(&args, &groups, filter, total)?;
        }
        Ok(())
    }

    /// Adds a batch of rows with window columns.
    ///
    /// # Errors
    /// When an expression or accumulator fails.
    pub fn add(&mut self, batch: &SqlBatch) -> Result<()> {
        if batch.kinds().is_some() {
            return Err(Error::unsupported(
                "a window aggregation over an updating input; aggregate an append-only stream",
            ));
        }
        let data = batch.data();
        if let Some(kind) = self.spec.processing_time {
            let mut windows = Vec::new();
            windows_of(kind, self.clock.now_ms(), &mut windows);
            for (start, end) in windows {
                self.update(data, end, start)?;
            }
            return Ok(());
        }
        let ends = millis(data.column(self.spec.end_column))?;
        let starts = millis(data.column(self.spec.start_column))?;
        let mut by_window: BTreeMap<i64, (i64, Vec<u32>)> = BTreeMap::new();
        let mut late = 0u64;
        for (i, (&end, &start)) in ends.iter().zip(&starts).enumerate() {
            if end - 1 <= self.watermark {
                late += 1;
                continue;
            }
            by_window
                .entry(end)
                .or_insert((start, Vec::new()))
                .1
                .push(i as u32);
        }
        if late > 0 {
            if let Some(c) = &self.late {
                c.add(late);
            }
        }
        let single = by_window.len() == 1 && late == 0;
        for (end, (start, indices)) in by_window {
            if single {
                self.update(data, end, start)?;
            } else {
                let part = arrow::compute::take_record_batch(data, &UInt32Array::from(indices))?;
                self.update(&part, end, start)?;
            }
        }
        Ok(())
    }

    fn window_output(&self, end: i64, mut window: WindowState) -> Result<Option<RecordBatch>> {
        let n = window.key_groups.len();
        if n == 0 {
            return Ok(None);
        }
        let keys = self.converter.convert_rows(window.rows.iter())?;
        let mut results = Vec::with_capacity(window.accumulators.len());
        for acc in &mut window.accumulators {
            results.push(acc.evaluate(EmitTo::All)?);
        }
        let batch = window_rows(
            &self.spec,
            &keys,
            &vec![window.start; n],
            &vec![end; n],
            &results,
        )?;
        Ok(Some(batch))
    }

    /// Fires every window whose end the watermark passed, in end order.
    ///
    /// # Errors
    /// When an accumulator fails.
    pub fn fire(&mut self, watermark: i64) -> Result<Vec<RecordBatch>> {
        self.watermark = self.watermark.max(watermark);
        let mut out = Vec::new();
        while let Some(entry) = self.windows.first_entry() {
            if *entry.key() - 1 > self.watermark {
                break;
            }
            let end = *entry.key();
            let window = entry.remove();
            if let Some(b) = self.window_output(end, window)? {
                out.push(b);
            }
        }
        Ok(out)
    }

    fn state_schema(&self) -> Result<SchemaRef> {
        window_state_schema(&self.key_types, &self.spec.aggregates)
    }

    /// The open windows' state, one Arrow IPC blob per key group.
    ///
    /// # Errors
    /// When an accumulator cannot give or take back its state.
    pub fn snapshot(&mut self) -> Result<Vec<(u32, Vec<u8>)>> {
        let schema = self.state_schema()?;
        let spec = Arc::clone(&self.spec);
        let mut parts = Vec::new();
        for (&end, w) in &mut self.windows {
            let n = w.key_groups.len();
            if n == 0 {
                continue;
            }
            let mut columns: Vec<ArrayRef> = vec![
                Arc::new(UInt32Array::from(w.key_groups.clone())),
                Arc::new(Int64Array::from(vec![w.start; n])),
                Arc::new(Int64Array::from(vec![end; n])),
            ];
            columns.extend(self.converter.convert_rows(w.rows.iter())?);
            let all_groups: Vec<usize> = (0..n).collect();
            for (call, acc) in spec.aggregates.iter().zip(&mut w.accumulators) {
                // `state` drains the accumulator: its state goes back into a new one.
                let state = acc.state(EmitTo::All)?;
                let mut fresh = accumulator(call)?;
                fresh.merge_batch(&state, &all_groups, n)?;
                *acc = fresh;
                columns.extend(state);
            }
            parts.push(RecordBatch::try_new(Arc::clone(&schema), columns)?);
        }
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        let all = arrow::compute::concat_batches(&schema, &parts)?;
        let groups = self
            .windows
            .values()
            .flat_map(|w| w.key_groups.iter().copied());
        encode_by_key_group(&all, groups)
    }

    /// Adds state written by [`Self::snapshot`] (of the key groups this subtask owns).
    ///
    /// # Errors
    /// On damaged state or state of another query.
    pub fn restore(&mut self, blob: &[u8]) -> Result<()> {
        let batch = decode_ipc(blob)?;
        let k = self.key_types.len();
        crate::operators::keyed_state::check_state_schema(&batch, &self.state_schema()?, "window")?;
        let starts = batch
            .column(1)
            .as_primitive::<arrow::datatypes::Int64Type>();
        let ends = batch
            .column(2)
            .as_primitive::<arrow::datatypes::Int64Type>();
        let mut by_window: BTreeMap<(i64, i64), Vec<u32>> = BTreeMap::new();
        for i in 0..batch.num_rows() {
            by_window
                .entry((ends.value(i), starts.value(i)))
                .or_default()
                .push(i as u32);
        }
        let spec = Arc::clone(&self.spec);
        for ((end, start), indices) in by_window {
            let part = arrow::compute::take_record_batch(&batch, &UInt32Array::from(indices))?;
            let keys: Vec<ArrayRef> = part.columns()[3..3 + k].to_vec();
            let groups = self.group_indices(end, start, &keys, part.num_rows())?;
            let Some(window) = self.windows.get_mut(&end) else {
                return Err(Error::Execution("window vanished".into()));
            };
            let total = window.key_groups.len();
            let mut column = 3 + k;
            for (call, acc) in spec.aggregates.iter().zip(&mut window.accumulators) {
                let width = call.function.state_fields()?.len();
                let state = &part.columns()[column..column + width];
                acc.merge_batch(state, &groups, total)?;
                column += width;
            }
        }
        Ok(())
    }
}

impl Operator for WindowAggregateOperator {
    type In = SqlBatch;
    type Out = SqlBatch;

    fn open(&mut self, ctx: &OperatorContext) -> RuntimeResult<()> {
        self.late = Some(ctx.counter("late_records_dropped"));
        self.max_parallelism = ctx.max_parallelism;
        self.clock = Arc::clone(&ctx.clock);
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
        // Processing time windows fire by the clock; the final watermark of a bounded
        // input fires them all, so no row is left behind.
        if self.spec.processing_time.is_none() || watermark == Watermark::MAX {
            for batch in exec(self.fire(watermark.0 .0))? {
                out.collect(SqlBatch::new(batch))?;
            }
        }
        out.emit_watermark(watermark)
    }

    fn on_end_of_input(&mut self, out: &mut Collector<'_, SqlBatch>) -> RuntimeResult<()> {
        if self.spec.processing_time.is_some() {
            for batch in exec(self.fire(i64::MAX))? {
                out.collect(SqlBatch::new(batch))?;
            }
        }
        Ok(())
    }

    fn on_processing_time(
        &mut self,
        now_ms: i64,
        out: &mut Collector<'_, SqlBatch>,
    ) -> RuntimeResult<()> {
        if self.spec.processing_time.is_some() {
            // A window [start, end) is complete when the clock reaches its end.
            for batch in exec(self.fire(now_ms - 1))? {
                out.collect(SqlBatch::new(batch))?;
            }
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
