//! Accumulators of updating aggregations that retract where DataFusion's do not, as
//! Flink's retracting aggregate functions do: `SUM` ([`NegatingSum`]: adds negated values
//! and counts the non-NULL ones) and `MIN`, `MAX` and `COUNT(DISTINCT)` over an input
//! that retracts ([`RetractingExtreme`]: every value with its count, in order). Their checkpointed state
//! is what their `state()` gives ([`state_types`]).

use std::collections::BTreeMap;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use datafusion_common::ScalarValue;
use datafusion_expr::Accumulator;

use crate::error::Result;
use crate::operators::window_aggregate::AggregateCall;

/// A row accumulator of `call`, retracting where Flink's would; with `retracting` (an
/// input that retracts rows) `MIN` and `MAX` keep every value.
///
/// # Errors
/// What DataFusion reports.
pub fn new_accumulator(call: &AggregateCall, retracting: bool) -> Result<Box<dyn Accumulator>> {
    let name = call.function.fun().name();
    let distinct = call.function.is_distinct();
    if retracting && !distinct && (name == "min" || name == "max") {
        let data_type = call.function.field().data_type().clone();
        return Ok(Box::new(RetractingExtreme {
            kind: if name == "max" {
                Extreme::Max
            } else {
                Extreme::Min
            },
            values: BTreeMap::new(),
            data_type,
        }));
    }
    if retracting && distinct && name == "count" {
        // DataFusion's distinct count keeps a list of the argument's values.
        let data_type = match call.function.state_fields()?.first().map(|f| f.data_type()) {
            Some(DataType::List(item)) => item.data_type().clone(),
            _ => DataType::Null,
        };
        return Ok(Box::new(RetractingExtreme {
            kind: Extreme::DistinctCount,
            values: BTreeMap::new(),
            data_type,
        }));
    }
    let acc = call.function.create_accumulator()?;
    Ok(
        if name == "sum" && !distinct && !acc.supports_retract_batch() {
            Box::new(NegatingSum {
                sum: acc,
                values: 0,
            })
        } else {
            acc
        },
    )
}

/// The types of the state `call`'s accumulator checkpoints (those of its `state()`,
/// which may differ from DataFusion's `state_fields` for Sluice's own accumulators).
///
/// # Errors
/// What DataFusion reports.
pub fn state_types(call: &AggregateCall, retracting: bool) -> Result<Vec<DataType>> {
    Ok(new_accumulator(call, retracting)?
        .state()?
        .iter()
        .map(ScalarValue::data_type)
        .collect())
}

/// `SUM` that retracts by adding the negated values, and counts the non-NULL values it
/// holds so that it is NULL again when none is left (as Flink's retracting sum is):
/// DataFusion's sum accumulator does not retract, and its sliding variant's state has
/// another shape. Its state is the sum's, then the count.
#[derive(Debug)]
pub struct NegatingSum {
    sum: Box<dyn Accumulator>,
    values: i64,
}

fn non_null(values: &[ArrayRef]) -> i64 {
    values
        .first()
        .map_or(0, |v| (v.len() - v.null_count()) as i64)
}

impl Accumulator for NegatingSum {
    fn update_batch(&mut self, values: &[ArrayRef]) -> datafusion_common::Result<()> {
        self.values += non_null(values);
        self.sum.update_batch(values)
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> datafusion_common::Result<()> {
        self.values -= non_null(values);
        let negated = values
            .iter()
            .map(|v| arrow::compute::kernels::numeric::neg(v.as_ref()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        self.sum.update_batch(&negated)
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn evaluate(&mut self) -> datafusion_common::Result<ScalarValue> {
        let sum = self.sum.evaluate()?;
        if self.values > 0 {
            Ok(sum)
        } else {
            ScalarValue::try_from(sum.data_type())
        }
    }
    fn size(&self) -> usize {
        self.sum.size() + 8
    }
    fn state(&mut self) -> datafusion_common::Result<Vec<ScalarValue>> {
        let mut state = self.sum.state()?;
        state.push(ScalarValue::Int64(Some(self.values)));
        Ok(state)
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> datafusion_common::Result<()> {
        let Some((count, sum)) = states.split_last() else {
            return Ok(());
        };
        if let Some(c) = count.as_primitive_opt::<arrow::datatypes::Int64Type>() {
            self.values += c.iter().flatten().sum::<i64>();
        }
        self.sum.merge_batch(sum)
    }
}

/// A value ordered for a [`BTreeMap`] (values of one type are totally ordered, except
/// floating-point NaN, which compares equal to everything here).
#[derive(Debug, Clone, PartialEq)]
struct Ordered(ScalarValue);

impl Eq for Ordered {}

impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .partial_cmp(&other.0)
            .unwrap_or(std::cmp::Ordering::Equal)
    }
}

/// What a [`RetractingExtreme`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extreme {
    Min,
    Max,
    DistinctCount,
}

/// `MIN`, `MAX` or `COUNT(DISTINCT)` that retracts: every value with its number of
/// occurrences, so removing the current extreme reveals the next one (Flink's
/// `MinWithRetract`/`MaxWithRetract`) and a value counts while one occurrence is left.
/// Its state is two lists: the values and their counts.
#[derive(Debug)]
pub struct RetractingExtreme {
    kind: Extreme,
    values: BTreeMap<Ordered, i64>,
    /// The type of the values.
    data_type: DataType,
}

impl RetractingExtreme {
    fn add(&mut self, array: &ArrayRef, delta: i64) -> datafusion_common::Result<()> {
        for i in 0..array.len() {
            if array.is_null(i) {
                continue;
            }
            let v = Ordered(ScalarValue::try_from_array(array, i)?);
            let count = self.values.entry(v.clone()).or_insert(0);
            *count += delta;
            if *count <= 0 {
                self.values.remove(&v);
            }
        }
        Ok(())
    }
}

impl Accumulator for RetractingExtreme {
    fn update_batch(&mut self, values: &[ArrayRef]) -> datafusion_common::Result<()> {
        match values.first() {
            Some(a) => self.add(a, 1),
            None => Ok(()),
        }
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> datafusion_common::Result<()> {
        match values.first() {
            Some(a) => self.add(a, -1),
            None => Ok(()),
        }
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn evaluate(&mut self) -> datafusion_common::Result<ScalarValue> {
        let extreme = match self.kind {
            Extreme::Max => self.values.keys().next_back(),
            Extreme::Min => self.values.keys().next(),
            Extreme::DistinctCount => {
                return Ok(ScalarValue::Int64(Some(self.values.len() as i64)));
            }
        };
        match extreme {
            Some(v) => Ok(v.0.clone()),
            None => ScalarValue::try_from(&self.data_type),
        }
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.len() * 64
    }
    fn state(&mut self) -> datafusion_common::Result<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = self.values.keys().map(|v| v.0.clone()).collect();
        let counts: Vec<ScalarValue> = self
            .values
            .values()
            .map(|&c| ScalarValue::Int64(Some(c)))
            .collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.data_type)),
            ScalarValue::List(ScalarValue::new_list_nullable(&counts, &DataType::Int64)),
        ])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> datafusion_common::Result<()> {
        let (Some(values), Some(counts)) = (states.first(), states.get(1)) else {
            return Ok(());
        };
        let (Some(values), Some(counts)) =
            (values.as_list_opt::<i32>(), counts.as_list_opt::<i32>())
        else {
            return Ok(());
        };
        for row in 0..values.len() {
            if values.is_null(row) || counts.is_null(row) {
                continue;
            }
            let vs = values.value(row);
            let cs = counts.value(row);
            let Some(cs) = cs.as_primitive_opt::<Int64Type>() else {
                continue;
            };
            for i in 0..vs.len() {
                if vs.is_null(i) {
                    continue;
                }
                let v = Ordered(ScalarValue::try_from_array(&vs, i)?);
                *self.values.entry(v).or_insert(0) += cs.value(i);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use std::sync::Arc;

    fn ints(v: &[i64]) -> Vec<ArrayRef> {
        vec![Arc::new(Int64Array::from(v.to_vec())) as ArrayRef]
    }

    #[test]
    fn max_retracts_to_the_next_value_and_round_trips_its_state() {
        let mut max = RetractingExtreme {
            kind: Extreme::Max,
            values: BTreeMap::new(),
            data_type: DataType::Int64,
        };
        max.update_batch(&ints(&[3, 9, 9, 5])).unwrap();
        assert_eq!(max.evaluate().unwrap(), ScalarValue::Int64(Some(9)));
        max.retract_batch(&ints(&[9])).unwrap();
        assert_eq!(max.evaluate().unwrap(), ScalarValue::Int64(Some(9)));
        max.retract_batch(&ints(&[9])).unwrap();
        assert_eq!(max.evaluate().unwrap(), ScalarValue::Int64(Some(5)));
        let state: Vec<ArrayRef> = max
            .state()
            .unwrap()
            .iter()
            .map(|v| v.to_array().unwrap())
            .collect();
        let mut restored = RetractingExtreme {
            kind: Extreme::Max,
            values: BTreeMap::new(),
            data_type: DataType::Int64,
        };
        restored.merge_batch(&state).unwrap();
        restored.retract_batch(&ints(&[5, 3])).unwrap();
        assert_eq!(restored.evaluate().unwrap(), ScalarValue::Int64(None));
    }
}
