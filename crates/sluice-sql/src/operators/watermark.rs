//! [`WatermarkAssigner`]: generates a table's watermarks from its `WATERMARK FOR col AS
//! expr` declaration: after each batch, the largest value of `expr` seen so far, when it
//! advanced (Flink SQL's semantics: rows at or before the watermark are late).
//!
//! Watermarks arriving from upstream are dropped except the final one, which a bounded
//! source sends at its end so that every window fires.

use std::sync::Arc;

use arrow::array::Array;
use arrow::compute::kernels::aggregate::max;
use datafusion_physical_expr::PhysicalExpr;
use sluice_core::{CheckpointId, EventTime, Watermark};
use sluice_runtime::checkpoint::OperatorSnapshot;
use sluice_runtime::{Collector, Operator, Result as RuntimeResult};

use crate::batch::SqlBatch;
use crate::error::{exec, Error};

/// Emits the watermark of a table.
pub struct WatermarkAssigner {
    expr: Arc<dyn PhysicalExpr>,
    current: i64,
}

impl WatermarkAssigner {
    /// Watermarks from `expr`, a timestamp expression over the batch's columns.
    pub fn new(expr: Arc<dyn PhysicalExpr>) -> Self {
        WatermarkAssigner {
            expr,
            current: i64::MIN,
        }
    }

    /// The largest watermark value in `batch`, in milliseconds.
    fn batch_max(&self, batch: &SqlBatch) -> Result<Option<i64>, Error> {
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

impl Operator for WatermarkAssigner {
    type In = SqlBatch;
    type Out = SqlBatch;

    fn on_data(&mut self, batch: SqlBatch, out: &mut Collector<'_, SqlBatch>) -> RuntimeResult<()> {
        let batch_max = exec(self.batch_max(&batch))?;
        out.collect(batch)?;
        if let Some(m) = batch_max {
            if m > self.current {
                self.current = m;
                out.emit_watermark(Watermark(EventTime(m)))?;
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
