//! [`TumblingWindowOperator`]: per key, fixed-size, non-overlapping event-time windows,
//! aggregated incrementally as records arrive.
//!
//! State per key is the short list of its open windows (usually one or two) with their
//! accumulators, in the key's key group. A window registers its key once under its end
//! time; when the watermark reaches `end - 1` the window's result goes out, stamped
//! `end - 1`, and its state is removed.

use std::hash::Hash;
use std::sync::Arc;

use sluice_core::{CheckpointId, EventTime, Records, Watermark};
use sluice_state::{AggregateFunction, KeyedTable, StateData, StateKey};

use super::firing::LateRecords;
use super::{require_timestamps, TimeWindow, WindowFirings};
use crate::checkpoint::{restore_table, snapshot_table, OperatorSnapshot};
use crate::error::Result;
use crate::operator::side_output::OutputTag;
use crate::operator::{Collector, Operator, OperatorContext};
use crate::operators::KeySelector;

/// Turns a key, its window and the aggregate's result into the emitted record.
pub type WindowResultFn<K, M, R> = Arc<dyn Fn(&K, TimeWindow, M) -> R + Send + Sync>;

/// Aggregates records per key into tumbling event-time windows.
pub struct TumblingWindowOperator<K, T, ACC, M, R> {
    key_of: KeySelector<T, K>,
    size_ms: i64,
    offset_ms: i64,
    aggregate: Arc<dyn AggregateFunction<T, ACC, M>>,
    result: WindowResultFn<K, M, R>,
    /// Open windows per key: (window start, accumulator).
    state: KeyedTable<K, Vec<(i64, ACC)>>,
    /// Keys with an open window, by window end.
    pending: WindowFirings<K>,
    watermark: i64,
    late: LateRecords<T>,
    operator: String,
    hashes: Vec<u64>,
}

impl<K, T, ACC, M, R> TumblingWindowOperator<K, T, ACC, M, R>
where
    K: Hash + Eq + Clone + Send + 'static,
{
    /// Windows of `size_ms` (aligned to the epoch plus `offset_ms`) over records keyed by
    /// `key_of`, aggregated by `aggregate`, emitted through `result`.
    pub fn new(
        ctx: &OperatorContext,
        key_of: KeySelector<T, K>,
        size_ms: i64,
        offset_ms: i64,
        aggregate: Arc<dyn AggregateFunction<T, ACC, M>>,
        result: WindowResultFn<K, M, R>,
    ) -> Self {
        TumblingWindowOperator {
            key_of,
            size_ms: size_ms.max(1),
            offset_ms,
            aggregate,
            result,
            state: KeyedTable::new(ctx.key_group_range, ctx.max_parallelism),
            pending: WindowFirings::default(),
            watermark: i64::MIN,
            late: LateRecords::new(ctx, None),
            operator: ctx.location.operator.clone(),
            hashes: Vec::new(),
        }
    }

    /// Sends late records to the side output `tag` instead of dropping them.
    #[must_use]
    pub fn with_late_output(mut self, ctx: &OperatorContext, tag: OutputTag<T>) -> Self
    where
        T: Send + 'static,
    {
        self.late = LateRecords::new(ctx, Some(tag));
        self
    }
}

impl<K, T, ACC, M, R> Operator for TumblingWindowOperator<K, T, ACC, M, R>
where
    K: StateKey,
    T: Send + 'static,
    ACC: StateData,
    M: 'static,
    R: Send + 'static,
{
    type In = Records<T>;
    type Out = Records<R>;

    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        let Some(restored) = &ctx.restored else {
            return Ok(());
        };
        // The windows due to fire are derived from the restored windows.
        let (pending, size) = (&mut self.pending, self.size_ms);
        restore_table(&mut self.state, restored, |key, hash, windows| {
            for (start, _) in windows {
                pending.register(start.saturating_add(size), key.clone(), hash);
            }
        })
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId) -> Result<OperatorSnapshot> {
        snapshot_table(&self.state)
    }

    fn on_data(&mut self, batch: Records<T>, out: &mut Collector<'_, Records<R>>) -> Result<()> {
        let (values, timestamps) = batch.into_parts();
        let timestamps = require_timestamps(&self.operator, timestamps)?;
        // Hash every key first so the state slots of records 16 ahead can be prefetched
        // while the current one is added (see `ReduceTable`).
        self.hashes.clear();
        self.hashes
            .extend(values.iter().map(|value| self.key_of.hash(value)));
        for (i, (value, ts)) in values.into_iter().zip(timestamps).enumerate() {
            if let Some(&ahead) = self.hashes.get(i + 16) {
                self.state.prefetch(ahead);
            }
            let window = TimeWindow::tumbling(ts.millis(), self.size_ms, self.offset_ms);
            if window.max_timestamp() <= self.watermark {
                self.late.late(value, ts, out);
                continue;
            }
            let (state, pending, aggregate) = (&mut self.state, &mut self.pending, &self.aggregate);
            // The key may be borrowed from the record: find the accumulator first, then
            // move the record into it.
            let acc = self.key_of.with_key(&value, move |key, hash| {
                let windows = state.get_or_insert_with(key, hash, Vec::new);
                let index = match windows.iter().position(|(start, _)| *start == window.start) {
                    Some(i) => i,
                    None => {
                        windows.push((window.start, aggregate.create_accumulator()));
                        pending.register(window.end, key.clone(), hash);
                        windows.len() - 1
                    }
                };
                &mut windows[index].1
            });
            self.aggregate.add(value, acc);
        }
        Ok(())
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, Records<R>>,
    ) -> Result<()> {
        self.watermark = watermark.0.millis();
        let mut output = Records::new();
        while let Some((end, keys)) = self.pending.pop_due(self.watermark) {
            let window = TimeWindow {
                start: end - self.size_ms,
                end,
            };
            for (key, hash) in keys {
                let Some(windows) = self.state.get_mut(&key, hash) else {
                    continue;
                };
                let Some(i) = windows.iter().position(|(start, _)| *start == window.start) else {
                    continue;
                };
                let (_, acc) = windows.swap_remove(i);
                if windows.is_empty() {
                    self.state.remove(&key, hash);
                }
                let value = (self.result)(&key, window, self.aggregate.get_result(&acc));
                output.push(value, Some(EventTime(window.max_timestamp())));
            }
        }
        out.collect(output)?;
        out.emit_watermark(watermark)
    }
}
