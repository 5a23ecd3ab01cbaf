//! [`WatermarkAssigner`]: generates a table's watermarks from its `WATERMARK FOR col AS
//! expr` declaration: after each batch, the largest value of `expr` seen so far, when it
//! advanced (Flink SQL's semantics: rows at or before the watermark are late). When the
//! source tells each batch's split (Kafka partitions), the largest value is kept per
//! split and the watermark is the smallest of them, as Flink's per-partition watermarks:
//! a partition that lags does not make the others' rows late. A split counts from its
//! first batch on, or from the start when the source announces its splits (the Kafka
//! source tells its partitions as its readers start); with `table.exec.source.idle-timeout`, a split without rows for that
//! long (processing time) stops holding the watermark back until its next row.
//!
//! Watermarks arriving from upstream are dropped except the final one, which a bounded
//! source sends at its end so that every window fires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::Array;
use arrow::compute::kernels::aggregate::max;
use datafusion_physical_expr::PhysicalExpr;
use sluice_core::{CheckpointId, EventTime, Watermark};
use sluice_runtime::checkpoint::OperatorSnapshot;
use sluice_runtime::{Collector, Operator, Result as RuntimeResult};

use crate::batch::SqlBatch;
use crate::error::{exec, Error};

/// The splits each subtask of a source reads, by subtask index, filled by the source as
/// its readers start (before their records flow): the watermark waits for all of them.
pub type SplitRegistry = Arc<Mutex<HashMap<u32, Vec<u32>>>>;

/// Emits the watermark of a table.
pub struct WatermarkAssigner {
    expr: Arc<dyn PhysicalExpr>,
    /// `column ± fixed interval` (the usual `ts - INTERVAL '5' SECOND`): the largest value
    /// is the column's largest plus the offset, without evaluating the expression row by
    /// row (Arrow's interval arithmetic is calendar-aware, and slow).
    shifted_column: Option<(usize, i64)>,
    current: i64,
    /// The largest value per split (`None`: batches without a split) and the processing
    /// time of its last batch.
    splits: HashMap<Option<u32>, (i64, i64)>,
    idle_timeout_ms: Option<i64>,
    now: i64,
    known: Option<SplitRegistry>,
    known_seen: usize,
    subtask: u32,
}

impl WatermarkAssigner {
    /// Watermarks from `expr`, a timestamp expression over the batch's columns; splits
    /// without rows for `idle_timeout_ms` stop holding the watermark back.
    pub fn new(expr: Arc<dyn PhysicalExpr>, idle_timeout_ms: Option<i64>) -> Self {
        WatermarkAssigner {
            shifted_column: column_plus_fixed_interval(&expr),
            expr,
            current: i64::MIN,
            splits: HashMap::new(),
            idle_timeout_ms,
            now: 0,
            known: None,
            known_seen: 0,
            subtask: 0,
        }
    }

    /// Also waits for the splits `known` lists for this subtask before their first rows.
    #[must_use]
    pub fn with_known_splits(mut self, known: Option<SplitRegistry>) -> Self {
        self.known = known;
        self
    }

    /// Adds the splits the source announced since the last look, as not yet advanced.
    fn sync_known(&mut self) {
        let Some(known) = &self.known else { return };
        let known = known.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(mine) = known.get(&self.subtask) else {
            return;
        };
        if mine.len() == self.known_seen {
            return;
        }
        for &split in &mine[self.known_seen..] {
            self.splits
                .entry(Some(split))
                .or_insert((i64::MIN, self.now));
        }
        self.known_seen = mine.len();
    }

    /// The smallest per-split value among the active splits, if it advanced.
    fn advanced(&mut self) -> Option<i64> {
        let cutoff = self.idle_timeout_ms.map(|t| self.now - t);
        let min = self
            .splits
            .values()
            .filter(|(_, seen)| cutoff.is_none_or(|c| *seen >= c))
            .map(|(v, _)| *v)
            .min()?;
        (min > self.current).then(|| {
            self.current = min;
            min
        })
    }

    /// The largest watermark value in `batch`, in milliseconds.
    fn batch_max(&self, batch: &SqlBatch) -> Result<Option<i64>, Error> {
        if let Some((column, offset_ms)) = self.shifted_column {
            let ms = super::timestamps_ms(batch.data().column(column), "the watermark column")?;
            return Ok(max(&ms).map(|m| m.saturating_add(offset_ms)));
        }
        let values = self
            .expr
            .evaluate(batch.data())?
            .into_array(batch.num_rows())?;
        let ms = super::timestamps_ms(&values, "the watermark expression")?;
        if ms.null_count() == ms.len() {
            return Ok(None);
        }
        Ok(max(&ms))
    }
}

/// `(column, offset)` when `expr` is a column plus or minus an interval of a fixed
/// number of milliseconds (no days or months, whose length depends on the calendar).
fn column_plus_fixed_interval(expr: &Arc<dyn PhysicalExpr>) -> Option<(usize, i64)> {
    use datafusion_common::ScalarValue;
    use datafusion_expr::Operator as Op;
    use datafusion_physical_expr::expressions::{BinaryExpr, Column, Literal};
    let b = expr.downcast_ref::<BinaryExpr>()?;
    let column = b.left().downcast_ref::<Column>()?;
    let literal = b.right().downcast_ref::<Literal>()?;
    let ms = match literal.value() {
        ScalarValue::IntervalMonthDayNano(Some(v))
            if v.months == 0 && v.days == 0 && v.nanoseconds % 1_000_000 == 0 =>
        {
            v.nanoseconds / 1_000_000
        }
        ScalarValue::IntervalDayTime(Some(v)) if v.days == 0 => i64::from(v.milliseconds),
        _ => return None,
    };
    match b.op() {
        Op::Minus => Some((column.index(), -ms)),
        Op::Plus => Some((column.index(), ms)),
        _ => None,
    }
}

impl Operator for WatermarkAssigner {
    type In = SqlBatch;
    type Out = SqlBatch;

    fn on_data(&mut self, batch: SqlBatch, out: &mut Collector<'_, SqlBatch>) -> RuntimeResult<()> {
        self.sync_known();
        let batch_max = exec(self.batch_max(&batch))?;
        let split = batch.split();
        out.collect(batch)?;
        if let Some(m) = batch_max {
            let now = self.now;
            let best = self.splits.entry(split).or_insert((i64::MIN, now));
            *best = (best.0.max(m), now);
            if let Some(w) = self.advanced() {
                out.emit_watermark(Watermark(EventTime(w)))?;
            }
        }
        Ok(())
    }

    fn open(&mut self, ctx: &sluice_runtime::OperatorContext) -> RuntimeResult<()> {
        self.now = ctx.clock.now_ms();
        self.subtask = ctx.location.subtask;
        Ok(())
    }

    fn on_processing_time(
        &mut self,
        now_ms: i64,
        out: &mut Collector<'_, SqlBatch>,
    ) -> RuntimeResult<()> {
        self.now = now_ms;
        if self.idle_timeout_ms.is_some() && self.splits.len() > 1 {
            if let Some(w) = self.advanced() {
                out.emit_watermark(Watermark(EventTime(w)))?;
            }
        }
        Ok(())
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, SqlBatch>,
    ) -> RuntimeResult<()> {
        if watermark == Watermark::MAX {
            self.current = i64::MAX;
            out.emit_watermark(watermark)?;
        }
        Ok(())
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId) -> RuntimeResult<OperatorSnapshot> {
        // Like Flink's, the watermark restarts from nothing after a restore: rows read
        // again raise it again.
        Ok(OperatorSnapshot::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{RecordBatch, TimestampMillisecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion_physical_expr::expressions::Column;
    use sluice_core::StreamEvent;
    use sluice_runtime::RuntimeMode;
    use sluice_testkit::harness::OperatorHarness;

    fn rows(split: u32, times: &[i64]) -> SqlBatch {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        )]));
        let data = RecordBatch::try_new(
            schema,
            vec![Arc::new(TimestampMillisecondArray::from(times.to_vec()))],
        )
        .unwrap();
        SqlBatch::new(data).with_split(split)
    }

    fn watermarks(h: &OperatorHarness<WatermarkAssigner>) -> Vec<i64> {
        h.take_output()
            .into_iter()
            .filter_map(|e| match e {
                StreamEvent::Watermark(w) => Some(w.0 .0),
                _ => None,
            })
            .collect()
    }

    fn harness(idle: Option<i64>) -> OperatorHarness<WatermarkAssigner> {
        OperatorHarness::new(RuntimeMode::Streaming, |_| {
            Ok(WatermarkAssigner::new(Arc::new(Column::new("ts", 0)), idle))
        })
        .unwrap()
    }

    #[test]
    fn a_column_minus_an_interval_is_computed_from_the_column_maximum() {
        use arrow::datatypes::IntervalMonthDayNano;
        use datafusion_common::ScalarValue;
        use datafusion_expr::Operator as Op;
        use datafusion_physical_expr::expressions::{BinaryExpr, Literal};
        let minus_4s = |ns: i64| -> Arc<dyn PhysicalExpr> {
            Arc::new(BinaryExpr::new(
                Arc::new(Column::new("ts", 0)),
                Op::Minus,
                Arc::new(Literal::new(ScalarValue::IntervalMonthDayNano(Some(
                    IntervalMonthDayNano::new(0, 0, ns),
                )))),
            ))
        };
        let fast = WatermarkAssigner::new(minus_4s(4_000_000_000), None);
        assert_eq!(fast.shifted_column, Some((0, -4_000)));
        let batch = rows(1, &[1_000, 9_000, 5_000]);
        assert_eq!(fast.batch_max(&batch).unwrap(), Some(5_000));
        // A whole day is calendar arithmetic: evaluated row by row.
        let day: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            Arc::new(Column::new("ts", 0)),
            Op::Minus,
            Arc::new(Literal::new(ScalarValue::IntervalMonthDayNano(Some(
                IntervalMonthDayNano::new(0, 1, 0),
            )))),
        ));
        let slow = WatermarkAssigner::new(day, None);
        assert_eq!(slow.shifted_column, None);
        assert_eq!(slow.batch_max(&batch).unwrap(), Some(9_000 - 86_400_000));
    }

    #[test]
    fn the_watermark_is_the_smallest_of_the_splits() {
        let mut h = harness(None);
        h.push(rows(1, &[10_000])).unwrap();
        h.push(rows(2, &[2_000])).unwrap();
        h.push(rows(2, &[12_000])).unwrap();
        assert_eq!(watermarks(&h), [10_000]);
        h.push(rows(1, &[15_000])).unwrap();
        assert_eq!(watermarks(&h), [12_000]);
    }

    #[test]
    fn an_idle_split_stops_holding_the_watermark_back() {
        let mut h = harness(Some(1_000));
        h.push(rows(1, &[5_000])).unwrap();
        h.push(rows(2, &[3_000])).unwrap();
        h.push(rows(1, &[9_000])).unwrap();
        assert_eq!(watermarks(&h), [5_000]);
        h.clock().advance(std::time::Duration::from_millis(2_000));
        h.tick().unwrap();
        h.push(rows(1, &[9_500])).unwrap();
        assert_eq!(watermarks(&h), [9_500]);
        // Split 2 is back: it holds the watermark again.
        h.push(rows(2, &[4_000])).unwrap();
        h.push(rows(1, &[20_000])).unwrap();
        assert!(watermarks(&h).is_empty());
    }
}
