//! [`DecodeOperator`]: turns the typed records a connector reads (text lines, Nexmark
//! events) into Arrow batches of a table's physical columns, chained right behind the
//! source.

use sluice_core::Records;
use sluice_runtime::{Collector, Operator, OperatorContext, Result as RuntimeResult};

use crate::batch::SqlBatch;

/// Converts records of type `T` into rows.
pub trait RecordDecoder<T>: Send + 'static {
    /// Called once before the first batch (to register counters). Default: nothing.
    ///
    /// # Errors
    /// When the decoder cannot start.
    fn open(&mut self, ctx: &OperatorContext) -> RuntimeResult<()> {
        let _ = ctx;
        Ok(())
    }

    /// Decodes `records` into rows. A decoder that skips bad records counts them; one
    /// whose policy is to fail returns an error naming the record.
    ///
    /// # Errors
    /// A malformed record when the table's policy is to fail.
    fn decode(&mut self, records: Vec<T>) -> RuntimeResult<Option<SqlBatch>>;
}

/// Runs a [`RecordDecoder`] on every batch of a source.
pub struct DecodeOperator<T> {
    decoder: Box<dyn RecordDecoder<T>>,
}

impl<T> DecodeOperator<T> {
    /// An operator running `decoder`.
    pub fn new(decoder: Box<dyn RecordDecoder<T>>) -> Self {
        DecodeOperator { decoder }
    }
}

impl<T: Send + 'static> Operator for DecodeOperator<T> {
    type In = Records<T>;
    type Out = SqlBatch;

    fn open(&mut self, ctx: &OperatorContext) -> RuntimeResult<()> {
        self.decoder.open(ctx)
    }

    fn on_data(
        &mut self,
        batch: Records<T>,
        out: &mut Collector<'_, SqlBatch>,
    ) -> RuntimeResult<()> {
        if let Some(rows) = self.decoder.decode(batch.into_values())? {
            out.collect(rows)?;
        }
        Ok(())
    }
}
