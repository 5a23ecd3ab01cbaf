//! [`SessionWindowOperator`]: per key, event-time sessions: runs of records separated by
//! at most a gap (windows that touch merge, as Flink's `TimeWindow::intersects`). A record opens the window `[t, t + gap)`; windows that overlap merge
//! (their accumulators with [`AggregateFunction::merge`]), whatever order records arrive
//! in. A session fires when the watermark reaches its last millisecond.

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

/// Aggregates records per key into event-time sessions.
pub struct SessionWindowOperator<K, T, ACC, M, R> {
    key_of: KeySelector<T, K>,
    gap_ms: i64,
    aggregate: Arc<dyn AggregateFunction<T, ACC, M>>,
    result: WindowResultFn<K, M, R>,
    /// Open sessions per key, disjoint: (window, accumulator).
    state: KeyedTable<K, Vec<(TimeWindow, ACC)>>,
    /// Keys by the end of a session they had open when registered (may be stale: a
    /// session that grew registers again under its new end).
    pending: WindowFirings<K>,
    watermark: i64,
    late: LateRecords<T>,
    operator: String,
}

impl<K, T, ACC, M, R> SessionWindowOperator<K, T, ACC, M, R>
where
    K: Hash + Eq + Clone + Send + 'static,
{
    /// Sessions closed by `gap_ms` without records, per key from `key_of`.
    pub fn new(
        ctx: &OperatorContext,
        key_of: KeySelector<T, K>,
        gap_ms: i64,
        aggregate: Arc<dyn AggregateFunction<T, ACC, M>>,
        result: WindowResultFn<K, M, R>,
    ) -> Self {
        SessionWindowOperator {
            key_of,
            gap_ms: gap_ms.max(1),
            aggregate,
            result,
            state: KeyedTable::new(ctx.key_group_range, ctx.max_parallelism),
            pending: WindowFirings::default(),
            watermark: i64::MIN,
            late: LateRecords::new(ctx, None),
            operator: ctx.location.operator.clone(),
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

impl<K, T, ACC, M, R> Operator for SessionWindowOperator<K, T, ACC, M, R>
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
        let pending = &mut self.pending;
        restore_table(&mut self.state, restored, |key, hash, sessions| {
            for (window, _) in sessions {
                pending.register(window.end, key.clone(), hash);
            }
        })
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId) -> Result<OperatorSnapshot> {
        snapshot_table(&self.state)
    }

    fn on_data(&mut self, batch: Records<T>, out: &mut Collector<'_, Records<R>>) -> Result<()> {
        let (values, timestamps) = batch.into_parts();
        let timestamps = require_timestamps(&self.operator, timestamps)?;
        for (value, ts) in values.into_iter().zip(timestamps) {
            let t = ts.millis();
            let window = TimeWindow {
                start: t,
                end: t.saturating_add(self.gap_ms),
            };
            if window.max_timestamp() <= self.watermark {
                // Behind the watermark, the record still joins a session that is open
                // (its end is ahead of the watermark, so the merged session is too).
                let state = &self.state;
                let joins_open = self.key_of.with_key(&value, |key, hash| {
                    state.get(key, hash).is_some_and(|sessions| {
                        sessions
                            .iter()
                            .any(|(w, _)| w.start <= window.end && window.start <= w.end)
                    })
                });
                if !joins_open {
                    self.late.late(value, ts, out);
                    continue;
                }
            }
            let (state, pending, aggregate) = (&mut self.state, &mut self.pending, &self.aggregate);
            let acc = self.key_of.with_key(&value, move |key, hash| {
                let sessions = state.get_or_insert_with(key, hash, Vec::new);
                // Merge every session that overlaps the new record's window into one.
                let mut merged = window;
                let mut acc: Option<ACC> = None;
                let mut ends = Vec::new();
                let mut i = 0;
                while i < sessions.len() {
                    let w = sessions[i].0;
                    if w.start <= merged.end && merged.start <= w.end {
                        let (w, a) = sessions.swap_remove(i);
                        ends.push(w.end);
                        merged = TimeWindow {
                            start: merged.start.min(w.start),
                            end: merged.end.max(w.end),
                        };
                        acc = Some(match acc {
                            Some(b) => aggregate.merge(b, a),
                            None => a,
                        });
                    } else {
                        i += 1;
                    }
                }
                let acc = acc.unwrap_or_else(|| aggregate.create_accumulator());
                if !ends.contains(&merged.end) {
                    // A session that keeps its end is registered there already.
                    pending.register(merged.end, key.clone(), hash);
                }
                sessions.push((merged, acc));
                let last = sessions.len() - 1;
                &mut sessions[last].1
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
            for (key, hash) in keys {
                let Some(sessions) = self.state.get_mut(&key, hash) else {
                    continue;
                };
                // Only a session that still ends here fires; one that grew waits for its
                // new end (it registered again).
                let Some(i) = sessions.iter().position(|(w, _)| w.end == end) else {
                    continue;
                };
                let (window, acc) = sessions.swap_remove(i);
                if sessions.is_empty() {
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
