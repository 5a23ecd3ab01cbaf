//! [`LocalReduceOperator`]: pre-aggregation before a hash shuffle, in batch mode.
//!
//! In batch mode a keyed reduction only reports each key's final value, so partial
//! results can be combined on the sending side first (the map-side combiner of MapReduce,
//! Spark's `reduceByKey`, Flink SQL's local-global aggregation). Each subtask reduces the
//! records it sees per key and ships one partial value per key to the final
//! [`KeyedReduceOperator`](super::KeyedReduceOperator), which reduces the partials with the
//! same function. This requires the function to be associative, as reductions in batch
//! mode are documented to be.
//!
//! In streaming mode every record must produce an update, so the operator passes batches
//! through untouched. Memory stays bounded: past [`LOCAL_REDUCE_KEYS_MAX`] keys the partials
//! are shipped and the table starts over.

use std::hash::Hash;
use std::sync::Arc;

use sluice_core::{KeyGroupRange, Records, Watermark};

use super::reduce_table::ReduceTable;
use super::KeySelector;
use crate::config::RuntimeMode;
use crate::error::Result;
use crate::operator::{Collector, Operator, OperatorContext};

/// Most keys held before partial results are shipped.
pub const LOCAL_REDUCE_KEYS_MAX: usize = 1 << 20;

/// Combines records per key before they are shuffled (batch mode only).
pub struct LocalReduceOperator<K, T, RF: ?Sized> {
    // Every key group: this operator sits before the shuffle and sees any key.
    state: ReduceTable<K, T, RF>,
    active: bool,
    batch_size: usize,
}

impl<K, T, RF> LocalReduceOperator<K, T, RF>
where
    K: Hash + Eq + Clone + Send + 'static,
    T: Send + 'static,
    RF: Fn(T, T) -> T + Send + Sync + ?Sized + 'static,
{
    /// A combiner keyed by `key_of`, reducing with `reduce`.
    pub fn new(ctx: &OperatorContext, key_of: KeySelector<T, K>, reduce: Arc<RF>) -> Self {
        let all_groups = KeyGroupRange::for_subtask(ctx.max_parallelism, 1, 0);
        LocalReduceOperator {
            state: ReduceTable::new(all_groups, ctx.max_parallelism, key_of, reduce),
            active: ctx.runtime_mode == RuntimeMode::Batch,
            batch_size: ctx.batch_size,
        }
    }
}

impl<K, T, RF> Operator for LocalReduceOperator<K, T, RF>
where
    K: Hash + Eq + Clone + Send + 'static,
    T: Send + 'static,
    RF: Fn(T, T) -> T + Send + Sync + ?Sized + 'static,
{
    type In = Records<T>;
    type Out = Records<T>;

    fn on_data(&mut self, batch: Records<T>, out: &mut Collector<'_, Records<T>>) -> Result<()> {
        if !self.active {
            return out.collect(batch);
        }
        self.state.fold(batch.into_values(), |_, _| {})?;
        if self.state.len() > LOCAL_REDUCE_KEYS_MAX {
            self.state.drain_into(self.batch_size, out)?;
        }
        Ok(())
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, Records<T>>,
    ) -> Result<()> {
        // Partials go out before the final watermark, like the results they feed.
        if self.active && watermark == Watermark::MAX {
            self.state.drain_into(self.batch_size, out)?;
        }
        out.emit_watermark(watermark)
    }

    fn on_end_of_input(&mut self, out: &mut Collector<'_, Records<T>>) -> Result<()> {
        if !self.active {
            return Ok(());
        }
        self.state.drain_into(self.batch_size, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TaskLocation;
    use crate::operator::chain::{ChainLink, EventSink};
    use sluice_core::{StreamEvent, SystemClock};
    use std::sync::Mutex;

    struct Gather(Arc<Mutex<Vec<(u64, u64)>>>);
    impl EventSink<Records<(u64, u64)>> for Gather {
        fn on_event(&mut self, event: StreamEvent<Records<(u64, u64)>>) -> Result<()> {
            if let StreamEvent::Data(b) = event {
                self.0.lock().unwrap().extend(b.into_values());
            }
            Ok(())
        }
        fn flush(&mut self) -> Result<()> {
            Ok(())
        }
    }

    fn run(mode: RuntimeMode, input: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
        let ctx = OperatorContext {
            location: TaskLocation {
                operator: "Local Sum".into(),
                subtask: 0,
                parallelism: 1,
            },
            max_parallelism: 128,
            key_group_range: KeyGroupRange::for_subtask(128, 1, 0),
            runtime_mode: mode,
            batch_size: 3,
            clock: Arc::new(SystemClock),
            metrics: crate::metrics::MetricRegistry::new(),
            operator_id: sluice_core::OperatorId(0),
            restored: None,
            snapshots: None,
        };
        let key_of: KeySelector<(u64, u64), u64> =
            KeySelector::Owned(Arc::new(|r: &(u64, u64)| r.0));
        let op = LocalReduceOperator::new(
            &ctx,
            key_of,
            Arc::new(|a: (u64, u64), b: (u64, u64)| (a.0, a.1 + b.1)),
        );
        let out = Arc::new(Mutex::new(vec![]));
        let mut link = ChainLink::new(op, ctx, Box::new(Gather(Arc::clone(&out))));
        link.on_event(StreamEvent::Data(Records::from(input)))
            .unwrap();
        link.on_event(StreamEvent::EndOfStream).unwrap();
        let v = out.lock().unwrap().clone();
        v
    }

    #[test]
    fn batch_mode_ships_one_partial_per_key_at_the_end() {
        let input: Vec<(u64, u64)> = (0..100).map(|i| (i % 7, i)).collect();
        let expected: Vec<(u64, u64)> = (0..7)
            .map(|k| (k, (0..100).filter(|i| i % 7 == k).sum()))
            .collect();
        let mut got = run(RuntimeMode::Batch, input);
        got.sort_unstable();
        assert_eq!(got, expected);
    }

    #[test]
    fn streaming_mode_passes_records_through() {
        let input = vec![(1, 1), (1, 2), (2, 3)];
        assert_eq!(run(RuntimeMode::Streaming, input.clone()), input);
    }
}
