//! [`GroupAggregateOperator`]: a regular `GROUP BY` on a stream (Flink's `GroupAggregate`):
//! after each input batch, every group it changed emits its new result as a changelog:
//! `+I` the first time, then `-U` (the previous result) and `+U` (the new one); an
//! unchanged result emits nothing.
//!
//! State per group: its key (Arrow row format), key group, one DataFusion `Accumulator`
//! per aggregate, the last emitted result (for `-U`), and the number of live input rows:
//! when retractions bring it to zero the group's row is deleted (`-D`) and its state
//! dropped, as in Flink. With `table.exec.state.ttl`, groups idle for longer are dropped.
//! Checkpoints write, per key group, the keys, the accumulators' states, the last results
//! and the row counts as Arrow IPC; a restore merges the key groups a subtask owns. Retractions in the input (`-U`, `-D`) retract from
//! accumulators that support it and fail the job otherwise.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::row::{RowConverter, Rows, SortField};
use datafusion_common::ScalarValue;
use datafusion_expr::Accumulator;
use hashbrown::HashMap;
use sluice_core::CheckpointId;
use sluice_runtime::checkpoint::OperatorSnapshot;
use sluice_runtime::{Collector, Operator, OperatorContext, Result as RuntimeResult};

use crate::batch::{decode_ipc, RowKind, SqlBatch};
use crate::error::{exec, Error, Result};
use crate::exchange::key_group_of_row;
use crate::operators::keyed_state::encode_by_key_group;
use crate::operators::retracting::{new_accumulator, state_types};
use crate::operators::window_aggregate::AggregateCall;
use crate::operators::{accumulator_state, StateTtl};

/// What a group aggregation computes.
pub struct GroupAggregateSpec {
    /// Input columns of the group keys.
    pub key_columns: Vec<usize>,
    /// The aggregates.
    pub aggregates: Vec<AggregateCall>,
    /// The output schema: keys, then aggregates.
    pub schema: SchemaRef,
    /// Expiry of idle groups (`table.exec.state.ttl`).
    pub state_ttl: Option<StateTtl>,
    /// Whether the input retracts rows (then `MIN` and `MAX` keep every value).
    pub retracting: bool,
}

struct Group {
    key_group: u32,
    accumulators: Vec<Box<dyn Accumulator>>,
    emitted: Option<Vec<ScalarValue>>,
    /// Input rows added minus rows retracted: at 0 the group is deleted.
    rows: i64,
    /// Processing time of the last change (for the state TTL).
    last_access: i64,
}

/// Aggregates rows per key and emits changes.
pub struct GroupAggregateOperator {
    spec: Arc<GroupAggregateSpec>,
    converter: RowConverter,
    key_types: Vec<DataType>,
    rows: Rows,
    index: HashMap<Box<[u8]>, usize>,
    groups: Vec<Group>,
    max_parallelism: u32,
    ttl: Option<StateTtl>,
    now: i64,
}

impl GroupAggregateOperator {
    /// An operator computing `spec` over keys of `key_types`.
    ///
    /// # Errors
    /// When a key type has no row encoding.
    pub fn new(spec: Arc<GroupAggregateSpec>, key_types: Vec<DataType>) -> Result<Self> {
        let converter = RowConverter::new(key_types.iter().cloned().map(SortField::new).collect())?;
        Ok(GroupAggregateOperator {
            ttl: spec.state_ttl,
            rows: converter.empty_rows(0, 0),
            converter,
            key_types,
            spec,
            index: HashMap::new(),
            groups: Vec::new(),
            max_parallelism: 128,
            now: 0,
        })
    }

    fn new_accumulators(&self) -> Result<Vec<Box<dyn Accumulator>>> {
        self.spec
            .aggregates
            .iter()
            .map(|c| new_accumulator(c, self.spec.retracting))
            .collect()
    }

    /// The group index of each row of `keys`, adding new groups.
    fn group_indices(&mut self, keys: &[ArrayRef], num_rows: usize) -> Result<Vec<usize>> {
        if keys.is_empty() {
            // No keys (an aggregation of the whole stream): one group.
            if self.groups.is_empty() {
                let accumulators = self.new_accumulators()?;
                self.groups.push(Group {
                    key_group: key_group_of_row(&[] as &[u8], self.max_parallelism),
                    accumulators,
                    emitted: None,
                    rows: 0,
                    last_access: self.now,
                });
            }
            return Ok(vec![0; num_rows]);
        }
        let rows = self.converter.convert_columns(keys)?;
        let mut out = Vec::with_capacity(rows.num_rows());
        for row in rows.iter() {
            let bytes = row.as_ref();
            let i = match self.index.get(bytes) {
                Some(&i) => i,
                None => {
                    let i = self.groups.len();
                    self.index.insert(bytes.into(), i);
                    self.rows.push(row);
                    let accumulators = self.new_accumulators()?;
                    self.groups.push(Group {
                        key_group: key_group_of_row(bytes, self.max_parallelism),
                        accumulators,
                        emitted: None,
                        rows: 0,
                        last_access: self.now,
                    });
                    i
                }
            };
            out.push(i);
        }
        Ok(out)
    }

    /// Applies a batch and returns the changes it caused.
    ///
    /// # Errors
    /// When an expression or accumulator fails.
    pub fn add(&mut self, batch: &SqlBatch) -> Result<Option<SqlBatch>> {
        let data = batch.data();
        let rows = data.num_rows();
        let keys: Vec<ArrayRef> = self
            .spec
            .key_columns
            .iter()
            .map(|&c| Arc::clone(data.column(c)))
            .collect();
        let groups = self.group_indices(&keys, rows)?;
        // Rows per touched group, additions and retractions apart, in first-touch order.
        let mut touched: Vec<usize> = Vec::new();
        let mut per_group: HashMap<usize, (Vec<u32>, Vec<u32>)> = HashMap::new();
        for (row, &g) in groups.iter().enumerate() {
            let entry = per_group.entry(g).or_insert_with(|| {
                touched.push(g);
                (Vec::new(), Vec::new())
            });
            if batch.kind(row).is_addition() {
                entry.0.push(row as u32);
            } else {
                entry.1.push(row as u32);
            }
        }
        // Arguments and filters once per batch.
        let spec = Arc::clone(&self.spec);
        let mut args: Vec<Vec<ArrayRef>> = Vec::with_capacity(spec.aggregates.len());
        let mut filters: Vec<Option<ArrayRef>> = Vec::with_capacity(spec.aggregates.len());
        for call in &spec.aggregates {
            args.push(
                call.function
                    .expressions()
                    .iter()
                    .map(|e| e.evaluate(data).and_then(|v| v.into_array(rows)))
                    .collect::<std::result::Result<_, _>>()?,
            );
            filters.push(match &call.filter {
                None => None,
                Some(f) => Some(f.evaluate(data)?.into_array(rows)?),
            });
        }
        for &g in &touched {
            let (adds, retracts) = &per_group[&g];
            let group = &mut self.groups[g];
            group.rows += adds.len() as i64 - retracts.len() as i64;
            group.last_access = self.now;
            for (a, acc) in group.accumulators.iter_mut().enumerate() {
                for (indices, retract) in [(adds, false), (retracts, true)] {
                    if indices.is_empty() {
                        continue;
                    }
                    let selected = select(indices, filters[a].as_ref())?;
                    if selected.is_empty() {
                        continue;
                    }
                    let idx = UInt32Array::from(selected);
                    let values = args[a]
                        .iter()
                        .map(|c| take(c.as_ref(), &idx, None))
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    if retract {
                        if !acc.supports_retract_batch() {
                            return Err(Error::unsupported(format!(
                                "aggregate `{}` over an updating input (it cannot retract)",
                                spec.aggregates[a].function.name()
                            )));
                        }
                        acc.retract_batch(&values)?;
                    } else {
                        acc.update_batch(&values)?;
                    }
                }
            }
        }
        self.changes(&touched)
    }

    fn changes(&mut self, touched: &[usize]) -> Result<Option<SqlBatch>> {
        let mut out_groups: Vec<usize> = Vec::new();
        let mut kinds: Vec<RowKind> = Vec::new();
        let mut values: Vec<Vec<ScalarValue>> = vec![Vec::new(); self.spec.aggregates.len()];
        let mut dead = Vec::new();
        for &g in touched {
            let group = &mut self.groups[g];
            if group.rows <= 0 {
                // Every row retracted: the group's row is deleted and its state dropped.
                if let Some(old) = group.emitted.take() {
                    out_groups.push(g);
                    kinds.push(RowKind::Delete);
                    for (a, v) in old.into_iter().enumerate() {
                        values[a].push(v);
                    }
                }
                dead.push(g);
                continue;
            }
            let new: Vec<ScalarValue> = group
                .accumulators
                .iter_mut()
                .map(|a| a.evaluate())
                .collect::<std::result::Result<_, _>>()?;
            match &group.emitted {
                Some(old) if *old == new => continue,
                Some(old) => {
                    out_groups.push(g);
                    kinds.push(RowKind::UpdateBefore);
                    for (a, v) in old.iter().enumerate() {
                        values[a].push(v.clone());
                    }
                    out_groups.push(g);
                    kinds.push(RowKind::UpdateAfter);
                }
                None => {
                    out_groups.push(g);
                    kinds.push(RowKind::Insert);
                }
            }
            for (a, v) in new.iter().enumerate() {
                values[a].push(v.clone());
            }
            group.emitted = Some(new);
        }
        if out_groups.is_empty() {
            self.remove_groups(&dead);
            return Ok(None);
        }
        let keys = self
            .converter
            .convert_rows(out_groups.iter().map(|&g| self.rows.row(g)))?;
        self.remove_groups(&dead);
        let mut columns = keys;
        let n_keys = columns.len();
        for (a, v) in values.into_iter().enumerate() {
            let target = self.spec.schema.field(n_keys + a).data_type();
            let array = ScalarValue::iter_to_array(v)?;
            columns.push(if array.data_type() == target {
                array
            } else {
                arrow::compute::cast(&array, target)?
            });
        }
        for (i, c) in columns.iter_mut().enumerate().take(n_keys) {
            let target = self.spec.schema.field(i).data_type();
            if c.data_type() != target {
                *c = arrow::compute::cast(c, target)?;
            }
        }
        let data = RecordBatch::try_new(Arc::clone(&self.spec.schema), columns)?;
        Ok(Some(SqlBatch::with_kinds(data, kinds)))
    }

    /// Drops the groups `dead` (indices), keeping the others' order.
    fn remove_groups(&mut self, dead: &[usize]) {
        if dead.is_empty() {
            return;
        }
        let mut is_dead = vec![false; self.groups.len()];
        for &g in dead {
            is_dead[g] = true;
        }
        let mut rows = self.converter.empty_rows(self.groups.len(), 0);
        let mut index = HashMap::with_capacity(self.groups.len());
        let mut kept = Vec::with_capacity(self.groups.len());
        for (g, group) in std::mem::take(&mut self.groups).into_iter().enumerate() {
            if is_dead[g] {
                continue;
            }
            if !self.key_types.is_empty() {
                let row = self.rows.row(g);
                index.insert(row.as_ref().into(), kept.len());
                rows.push(row);
            }
            kept.push(group);
        }
        self.rows = rows;
        self.index = index;
        self.groups = kept;
    }

    /// Drops the groups idle since before `cutoff` (processing time).
    pub fn expire(&mut self, cutoff: i64) {
        let dead: Vec<usize> = self
            .groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.last_access < cutoff)
            .map(|(i, _)| i)
            .collect();
        self.remove_groups(&dead);
    }

    /// The number of groups held.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    fn state_schema(&self) -> Result<SchemaRef> {
        let mut fields = vec![Field::new("__key_group", DataType::UInt32, false)];
        for (i, t) in self.key_types.iter().enumerate() {
            fields.push(Field::new(format!("__key{i}"), t.clone(), true));
        }
        for (a, call) in self.spec.aggregates.iter().enumerate() {
            for (s, t) in state_types(call, self.spec.retracting)?
                .into_iter()
                .enumerate()
            {
                fields.push(Field::new(format!("__agg{a}_{s}"), t, true));
            }
        }
        fields.push(Field::new("__emitted", DataType::Boolean, false));
        fields.push(Field::new("__rows", DataType::Int64, false));
        let n_keys = self.key_types.len();
        for a in 0..self.spec.aggregates.len() {
            let t = self.spec.schema.field(n_keys + a).data_type().clone();
            fields.push(Field::new(format!("__out{a}"), t, true));
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    /// The groups' state, one Arrow IPC blob per key group.
    ///
    /// # Errors
    /// When an accumulator cannot give its state.
    pub fn snapshot(&mut self) -> Result<Vec<(u32, Vec<u8>)>> {
        if self.groups.is_empty() {
            return Ok(Vec::new());
        }
        let schema = self.state_schema()?;
        let n = self.groups.len();
        let mut columns: Vec<ArrayRef> = vec![Arc::new(UInt32Array::from(
            self.groups.iter().map(|g| g.key_group).collect::<Vec<_>>(),
        ))];
        columns.extend(self.converter.convert_rows(self.rows.iter())?);
        let widths: Vec<usize> = self
            .spec
            .aggregates
            .iter()
            .map(|c| state_types(c, self.spec.retracting).map(|t| t.len()))
            .collect::<Result<_>>()?;
        for (a, &width) in widths.iter().enumerate() {
            let mut fields: Vec<Vec<ScalarValue>> = vec![Vec::with_capacity(n); width];
            let call = &self.spec.aggregates[a];
            let retracting = self.spec.retracting;
            for g in &mut self.groups {
                let state = accumulator_state(&mut g.accumulators[a], || {
                    new_accumulator(call, retracting)
                })?;
                for (s, v) in state.into_iter().enumerate().take(width) {
                    fields[s].push(v);
                }
            }
            for values in fields {
                let target = schema.field(columns.len()).data_type().clone();
                let array = if values.is_empty() {
                    arrow::array::new_empty_array(&target)
                } else {
                    ScalarValue::iter_to_array(values)?
                };
                columns.push(array);
            }
        }
        columns.push(Arc::new(BooleanArray::from(
            self.groups
                .iter()
                .map(|g| g.emitted.is_some())
                .collect::<Vec<_>>(),
        )));
        columns.push(Arc::new(arrow::array::Int64Array::from_iter_values(
            self.groups.iter().map(|g| g.rows),
        )));
        let n_keys = self.key_types.len();
        for a in 0..self.spec.aggregates.len() {
            let t = self.spec.schema.field(n_keys + a).data_type();
            let values: Vec<ScalarValue> = self
                .groups
                .iter()
                .map(|g| match &g.emitted {
                    Some(v) => Ok(v[a].clone()),
                    None => ScalarValue::try_from(t),
                })
                .collect::<std::result::Result<_, _>>()?;
            let array = ScalarValue::iter_to_array(values)?;
            columns.push(if array.data_type() == t {
                array
            } else {
                arrow::compute::cast(&array, t)?
            });
        }
        let all = RecordBatch::try_new(schema, columns)?;
        encode_by_key_group(&all, self.groups.iter().map(|g| g.key_group))
    }

    /// Adds groups written by [`Self::snapshot`].
    ///
    /// # Errors
    /// On damaged state or state of another query.
    pub fn restore(&mut self, blob: &[u8]) -> Result<()> {
        let batch = decode_ipc(blob)?;
        crate::operators::keyed_state::check_state_schema(
            &batch,
            &self.state_schema()?,
            "aggregation",
        )?;
        let k = self.key_types.len();
        let keys: Vec<ArrayRef> = batch.columns()[1..1 + k].to_vec();
        let groups = self.group_indices(&keys, batch.num_rows())?;
        let spec = Arc::clone(&self.spec);
        let mut column = 1 + k;
        for (a, call) in spec.aggregates.iter().enumerate() {
            let width = state_types(call, self.spec.retracting)?.len();
            for (row, &g) in groups.iter().enumerate() {
                let state: Vec<ArrayRef> = batch.columns()[column..column + width]
                    .iter()
                    .map(|c| c.slice(row, 1))
                    .collect();
                self.groups[g].accumulators[a].merge_batch(&state)?;
            }
            column += width;
        }
        let emitted = batch.column(column).as_boolean().clone();
        let live = batch
            .column(column + 1)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .clone();
        for (row, &g) in groups.iter().enumerate() {
            self.groups[g].rows += live.value(row);
        }
        column += 2;
        for (row, &g) in groups.iter().enumerate() {
            if emitted.value(row) {
                let values = (0..spec.aggregates.len())
                    .map(|a| ScalarValue::try_from_array(batch.column(column + a), row))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                self.groups[g].emitted = Some(values);
            }
        }
        Ok(())
    }
}

/// `indices` where `filter` (a boolean column over the batch) is true.
pub(crate) fn select(indices: &[u32], filter: Option<&ArrayRef>) -> Result<Vec<u32>> {
    let Some(filter) = filter else {
        return Ok(indices.to_vec());
    };
    let mask = filter
        .as_boolean_opt()
        .ok_or_else(|| Error::Execution("a FILTER condition is not a boolean".into()))?;
    Ok(indices
        .iter()
        .copied()
        .filter(|&i| mask.is_valid(i as usize) && mask.value(i as usize))
        .collect())
}

impl Operator for GroupAggregateOperator {
    type In = SqlBatch;
    type Out = SqlBatch;

    fn open(&mut self, ctx: &OperatorContext) -> RuntimeResult<()> {
        self.max_parallelism = ctx.max_parallelism;
        self.now = ctx.clock.now_ms();
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
