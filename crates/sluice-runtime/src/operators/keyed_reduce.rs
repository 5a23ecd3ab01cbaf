//! [`KeyedReduceOperator`]: a running reduction per key (`reduce`, `sum`, `min`, `max`).
//!
//! In streaming mode every input emits the key's updated value (with the input's
//! timestamp); in batch mode each key's final value is emitted once the input is complete
//! (at the final watermark, or at the end of a stopped input).

use std::hash::Hash;
use std::sync::Arc;

use sluice_core::{CheckpointId, Records, Watermark};
use sluice_state::{StateData, StateKey};

use super::reduce_table::ReduceTable;
use super::KeySelector;
use crate::checkpoint::OperatorSnapshot;
use crate::config::RuntimeMode;
use crate::error::Result;
use crate::operator::{Collector, Operator, OperatorContext};

/// Reduces the values of each key with a function `(accumulated, new) -> accumulated`.
pub struct KeyedReduceOperator<K, T, RF: ?Sized> {
    state: ReduceTable<K, T, RF>,
    mode: RuntimeMode,
    batch_size: usize,
}

impl<K, T, RF> KeyedReduceOperator<K, T, RF>
where
    K: Hash + Eq + Clone + Send + 'static,
    T: Send + 'static,
    RF: Fn(T, T) -> T + Send + Sync + ?Sized + 'static,
{
    /// A reduction keyed by `key_of` for the key groups of `ctx`.
    pub fn new(ctx: &OperatorContext, key_of: KeySelector<T, K>, reduce: Arc<RF>) -> Self {
        KeyedReduceOperator {
            state: ReduceTable::new(ctx.key_group_range, ctx.max_parallelism, key_of, reduce),
            mode: ctx.runtime_mode,
            batch_size: ctx.batch_size,
        }
    }
}

impl<K, T, RF> Operator for KeyedReduceOperator<K, T, RF>
where
    K: StateKey,
    T: StateData + Clone,
    RF: Fn(T, T) -> T + Send + Sync + ?Sized + 'static,
{
    type In = Records<T>;
    type Out = Records<T>;

    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        match &ctx.restored {
            Some(restored) => self.state.restore(restored),
            None => Ok(()),
        }
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId) -> Result<OperatorSnapshot> {
        self.state.snapshot()
    }

    fn on_data(&mut self, batch: Records<T>, out: &mut Collector<'_, Records<T>>) -> Result<()> {
        let (values, timestamps) = batch.into_parts();
        if self.mode == RuntimeMode::Batch {
            return self.state.fold(values, |_, _| {});
        }
        let mut output = Records::with_capacity(values.len());
        self.state.fold(values, |i, acc| {
            output.push(acc.clone(), timestamps.as_ref().map(|t| t[i]));
        })?;
        out.collect(output)
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, Records<T>>,
    ) -> Result<()> {
        // In batch mode the final watermark means the input is complete: the results go
        // out before it, so that event time downstream does not pass them by.
        if self.mode == RuntimeMode::Batch && watermark == Watermark::MAX {
            self.state.drain_into(self.batch_size, out)?;
        }
        out.emit_watermark(watermark)
    }

    fn on_end_of_input(&mut self, out: &mut Collector<'_, Records<T>>) -> Result<()> {
        if self.mode != RuntimeMode::Batch {
            return Ok(());
        }
        // After a stop there was no final watermark: what is left goes out now.
        self.state.drain_into(self.batch_size, out)
    }
}
