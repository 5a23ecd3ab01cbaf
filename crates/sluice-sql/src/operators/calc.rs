//! [`CalcOperator`]: a filter and a projection evaluated on whole batches (Flink's
//! `Calc`). Row kinds travel with their rows.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch, RecordBatchOptions};
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use datafusion_physical_expr::PhysicalExpr;
use sluice_runtime::{Collector, Operator, Result as RuntimeResult};

use crate::batch::SqlBatch;
use crate::error::{exec, Error};

/// Filters rows by a predicate, then computes the output columns.
pub struct CalcOperator {
    filter: Option<Arc<dyn PhysicalExpr>>,
    projection: Option<Vec<Arc<dyn PhysicalExpr>>>,
    schema: SchemaRef,
}

impl CalcOperator {
    /// Keeps rows where `filter` is true (all when `None`), then evaluates `projection`
    /// (the input columns when `None`) into batches of `schema`.
    pub fn new(
        filter: Option<Arc<dyn PhysicalExpr>>,
        projection: Option<Vec<Arc<dyn PhysicalExpr>>>,
        schema: SchemaRef,
    ) -> Self {
        CalcOperator {
            filter,
            projection,
            schema,
        }
    }

    /// Applies the filter and projection to one batch.
    ///
    /// # Errors
    /// When an expression fails on the batch (a cast of a bad value, a division by zero).
    pub fn apply(&self, batch: SqlBatch) -> Result<SqlBatch, Error> {
        let batch = match &self.filter {
            None => batch,
            Some(predicate) => {
                let mask = predicate
                    .evaluate(batch.data())?
                    .into_array(batch.num_rows())?;
                let mask = mask
                    .as_boolean_opt()
                    .ok_or_else(|| Error::Execution("a WHERE condition is not a boolean".into()))?;
                if mask.true_count() == batch.num_rows() {
                    batch
                } else {
                    let data = filter_record_batch(batch.data(), mask)?;
                    let filtered = match batch.kinds() {
                        None => SqlBatch::new(data),
                        Some(kinds) => SqlBatch::with_kinds(
                            data,
                            kinds
                                .iter()
                                .zip(mask.iter())
                                .filter(|(_, keep)| keep.unwrap_or(false))
                                .map(|(k, _)| *k)
                                .collect(),
                        ),
                    };
                    filtered.with_split_of(&batch)
                }
            }
        };
        let Some(projection) = &self.projection else {
            return Ok(batch);
        };
        let rows = batch.num_rows();
        let columns = projection
            .iter()
            .map(|e| e.evaluate(batch.data()).and_then(|v| v.into_array(rows)))
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        let columns = columns
            .into_iter()
            .zip(self.schema.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c)
                } else {
                    arrow::compute::cast(&c, f.data_type())
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        let data = RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)?;
        Ok(batch.with_data(data))
    }
}

impl Operator for CalcOperator {
    type In = SqlBatch;
    type Out = SqlBatch;

    fn on_data(&mut self, batch: SqlBatch, out: &mut Collector<'_, SqlBatch>) -> RuntimeResult<()> {
        let result = exec(self.apply(batch))?;
        out.collect(result)
    }
}
