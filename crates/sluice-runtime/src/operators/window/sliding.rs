//! [`SlidingWindowOperator`]: per key, event-time windows of `size` that start every
//! `slide`, computed from panes so a record is aggregated once, not `size / slide` times.
//!
//! Records go into *panes*: tumbling slices of `gcd(size, slide)`. When the watermark
//! reaches the last millisecond of a window, the window's result is the merge of the
//! accumulators of the panes it covers (pane-based sliding windows, as in "No Pane, No
//! Gain"). Panes no later window needs are dropped right away. A key registers under the
//! end of its next window that holds data, so empty windows are skipped.

use std::hash::Hash;
use std::sync::Arc;

use sluice_core::{CheckpointId, EventTime, Records, Watermark};
use sluice_state::{AggregateFunction, KeyedTable, StateData, StateKey};

use super::firing::LateRecords;
use super::{require_timestamps, TimeWindow, WindowFirings, WindowResultFn};
use crate::checkpoint::{restore_table, snapshot_table, OperatorSnapshot};
use crate::error::Result;
use crate::operator::side_output::OutputTag;
use crate::operator::{Collector, Operator, OperatorContext};
use crate::operators::KeySelector;

/// The panes of one key and the window end it is registered to fire at.
#[derive(serde::Serialize, serde::Deserialize)]
struct KeyPanes<ACC> {
    panes: Vec<(i64, ACC)>,
    registered_end: i64,
}

/// Aggregates records per key into sliding event-time windows.
pub struct SlidingWindowOperator<K, T, ACC, M, R> {
    key_of: KeySelector<T, K>,
    size_ms: i64,
    slide_ms: i64,
    /// Window ends lie at `offset_ms + n * slide_ms`.
    offset_ms: i64,
    pane_ms: i64,
    aggregate: Arc<dyn AggregateFunction<T, ACC, M>>,
    result: WindowResultFn<K, M, R>,
    state: KeyedTable<K, KeyPanes<ACC>>,
    pending: WindowFirings<K>,
    watermark: i64,
    late: LateRecords<T>,
    operator: String,
    hashes: Vec<u64>,
}

/// The first `offset + k * slide` at or after `t` (saturating at the ends of time: the
/// watermark starts at `i64::MIN` and ends at `i64::MAX`).
fn aligned_end_at_or_after(t: i64, offset: i64, slide: i64) -> i64 {
    let (t, offset, slide) = (i128::from(t), i128::from(offset), i128::from(slide));
    let end = t + (offset - t).rem_euclid(slide);
    i64::try_from(end).unwrap_or(i64::MAX)
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl<K, T, ACC, M, R> SlidingWindowOperator<K, T, ACC, M, R>
where
    K: Hash + Eq + Clone + Send + 'static,
{
    /// Windows of `size_ms` starting every `slide_ms`, window starts aligned to the epoch
    /// plus `offset_ms` as in Flink (a slide larger than the size is treated as equal to
    /// it; the API runs such windows on the general operator).
    pub fn new(
        ctx: &OperatorContext,
        key_of: KeySelector<T, K>,
        size_ms: i64,
        slide_ms: i64,
        offset_ms: i64,
        aggregate: Arc<dyn AggregateFunction<T, ACC, M>>,
        result: WindowResultFn<K, M, R>,
    ) -> Self {
        let size_ms = size_ms.max(1);
        let slide_ms = slide_ms.clamp(1, size_ms);
        SlidingWindowOperator {
            key_of,
            size_ms,
            slide_ms,
            // Internally windows are found by their ends: starts at `offset + n * slide`
            // are ends at `offset + size + n * slide`.
            offset_ms: offset_ms.wrapping_add(size_ms).rem_euclid(slide_ms),
            pane_ms: gcd(size_ms, slide_ms),
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

    /// The first window end (aligned to the slide) at or after `t`.
    fn end_at_or_after(&self, t: i64) -> i64 {
        aligned_end_at_or_after(t, self.offset_ms, self.slide_ms)
    }

    /// The last window end (aligned to the slide) at or before `t`.
    fn end_at_or_before(&self, t: i64) -> i64 {
        let (t128, offset, slide) = (
            i128::from(t),
            i128::from(self.offset_ms),
            i128::from(self.slide_ms),
        );
        i64::try_from(t128 - (t128 - offset).rem_euclid(slide)).unwrap_or(i64::MIN)
    }
}

impl<K, T, ACC, M, R> Operator for SlidingWindowOperator<K, T, ACC, M, R>
where
    K: StateKey,
    T: Send + 'static,
    ACC: Clone + StateData,
    M: 'static,
    R: Send + 'static,
{
    type In = Records<T>;
    type Out = Records<R>;

    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        let Some(restored) = &ctx.restored else {
            return Ok(());
        };
        let pending = &mut self.pending;
        restore_table(&mut self.state, restored, |key, hash, panes| {
            if panes.registered_end != i64::MAX {
                pending.register(panes.registered_end, key.clone(), hash);
            }
        })
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId) -> Result<OperatorSnapshot> {
        snapshot_table(&self.state)
    }

    fn on_data(&mut self, batch: Records<T>, out: &mut Collector<'_, Records<R>>) -> Result<()> {
        let (values, timestamps) = batch.into_parts();
        let timestamps = require_timestamps(&self.operator, timestamps)?;
        self.hashes.clear();
        self.hashes
            .extend(values.iter().map(|value| self.key_of.hash(value)));
        for (i, (value, ts)) in values.into_iter().zip(timestamps).enumerate() {
            if let Some(&ahead) = self.hashes.get(i + 16) {
                self.state.prefetch(ahead);
            }
            let pane = TimeWindow::tumbling(ts.millis(), self.pane_ms, self.offset_ms);
            let first_end = self.end_at_or_after(pane.end);
            let last_end = self.end_at_or_before(pane.start.saturating_add(self.size_ms));
            if last_end.saturating_sub(1) <= self.watermark {
                self.late.late(value, ts, out);
                continue;
            }
            // Windows of this pane that already fired cannot take it any more; the next
            // one to fire is the first not yet complete.
            let fire_at = first_end.max(self.end_at_or_after(self.watermark.saturating_add(2)));
            let (state, pending, aggregate) = (&mut self.state, &mut self.pending, &self.aggregate);
            let acc = self.key_of.with_key(&value, move |key, hash| {
                let entry = state.get_or_insert_with(key, hash, || KeyPanes {
                    panes: Vec::new(),
                    registered_end: i64::MAX,
                });
                if fire_at < entry.registered_end {
                    entry.registered_end = fire_at;
                    pending.register(fire_at, key.clone(), hash);
                }
                let index = match entry
                    .panes
                    .iter()
                    .position(|(start, _)| *start == pane.start)
                {
                    Some(i) => i,
                    None => {
                        entry
                            .panes
                            .push((pane.start, aggregate.create_accumulator()));
                        entry.panes.len() - 1
                    }
                };
                &mut entry.panes[index].1
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
        let (offset, slide, pane_ms) = (self.offset_ms, self.slide_ms, self.pane_ms);
        while let Some((end, keys)) = self.pending.pop_due(self.watermark) {
            let window = TimeWindow {
                start: end - self.size_ms,
                end,
            };
            for (key, hash) in keys {
                let Some(panes) = self.state.get_mut(&key, hash) else {
                    continue;
                };
                if panes.registered_end != end {
                    // Registered again for an earlier end since; that one fired already.
                    continue;
                }
                let mut merged: Option<ACC> = None;
                for (start, acc) in &panes.panes {
                    if *start >= window.start && *start < window.end {
                        merged = Some(match merged {
                            Some(m) => self.aggregate.merge(m, acc.clone()),
                            None => acc.clone(),
                        });
                    }
                }
                if let Some(merged) = merged {
                    let value = (self.result)(&key, window, self.aggregate.get_result(&merged));
                    output.push(value, Some(EventTime(window.max_timestamp())));
                }
                // Keep only panes a later window still covers, and register for the next
                // window end that holds one of them.
                let next_start = end + self.slide_ms - self.size_ms;
                panes.panes.retain(|(start, _)| *start >= next_start);
                let next = panes
                    .panes
                    .iter()
                    .map(|(start, _)| {
                        aligned_end_at_or_after(start + pane_ms, offset, slide).max(end + slide)
                    })
                    .min();
                match next {
                    Some(next) => {
                        panes.registered_end = next;
                        self.pending.register(next, key, hash);
                    }
                    None => {
                        self.state.remove(&key, hash);
                    }
                }
            }
        }
        out.collect(output)?;
        out.emit_watermark(watermark)
    }
}
