//! [`IntervalJoinFunction`]: joins two keyed streams on event time, pairing a left record
//! at `t` with every right record of the same key in `[t + lower, t + upper]` (bounds
//! inclusive, as Flink's interval join).
//!
//! Each side buffers its records by timestamp in keyed state. A record is joined with the
//! other side's buffer when it arrives, then buffered itself until no future record of the
//! other side can match it: a left record at `t` once the watermark reaches `t + upper`, a
//! right record at `r` once it reaches `r - lower`. Records behind the watermark on arrival
//! are late (as Flink's `isLate`: `t < watermark`) and dropped, counted as
//! `numLateRecordsDropped`. Results carry the larger of the two timestamps.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_core::EventTime;
use sluice_state::{StateData, StateKey, ValueStateHandle};

use super::co_process::KeyedCoProcessFunction;
use super::keyed_process::{KeyedContext, OpenContext, ProcessOutput};
use super::timers::TimeDomain;
use super::UserResult;
use crate::metrics::{Counter, LATE_RECORDS_DROPPED};

/// Makes the joined record of a left and a right record.
pub type JoinFn<A, B, O> = Arc<dyn Fn(&A, &B) -> O + Send + Sync>;

type Buffer<T> = BTreeMap<i64, Vec<T>>;

/// The interval join as a co-process function (see the module docs).
pub struct IntervalJoinFunction<A, B, O> {
    lower: i64,
    upper: i64,
    join: JoinFn<A, B, O>,
    left: Option<ValueStateHandle<Buffer<A>>>,
    right: Option<ValueStateHandle<Buffer<B>>>,
    late_dropped: Counter,
}

impl<A, B, O> IntervalJoinFunction<A, B, O> {
    /// Joins left `t` with right `r` when `t + lower <= r <= t + upper`.
    pub fn new(lower: i64, upper: i64, join: JoinFn<A, B, O>) -> Self {
        IntervalJoinFunction {
            lower,
            upper,
            join,
            left: None,
            right: None,
            late_dropped: Counter::detached(),
        }
    }
}

fn timestamp_of<K: StateKey>(ctx: &KeyedContext<'_, K>) -> UserResult<i64> {
    ctx.timestamp().map(|t| t.millis()).ok_or_else(|| {
        "interval join needs event time on both inputs; call `assign_timestamps_and_watermarks` upstream"
            .into()
    })
}

impl<K, A, B, O> KeyedCoProcessFunction<K, A, B, O> for IntervalJoinFunction<A, B, O>
where
    K: StateKey,
    A: StateData,
    B: StateData,
    O: Send + 'static,
{
    fn open(&mut self, ctx: &mut OpenContext<'_, K>) -> UserResult {
        self.late_dropped = ctx.operator().counter(LATE_RECORDS_DROPPED);
        self.left = Some(ctx.value_state("interval-join-left")?);
        self.right = Some(ctx.value_state("interval-join-right")?);
        Ok(())
    }

    fn process_element1(
        &mut self,
        value: A,
        ctx: &mut KeyedContext<'_, K>,
        out: &mut ProcessOutput<'_, O>,
    ) -> UserResult {
        let (Some(left), Some(right)) = (self.left, self.right) else {
            return Err("interval join used before open".into());
        };
        let t = timestamp_of(ctx)?;
        if t < ctx.current_watermark().0.millis() {
            self.late_dropped.inc();
            return Ok(());
        }
        if let Some(buffer) = ctx.value_state(&right).value() {
            let from = t.saturating_add(self.lower);
            let to = t.saturating_add(self.upper);
            if from <= to {
                for (&r, rights) in buffer.range(from..=to) {
                    for b in rights {
                        out.collect_at((self.join)(&value, b), EventTime(t.max(r)));
                    }
                }
            }
        }
        ctx.value_state(&left)
            .get_or_insert_with(BTreeMap::new)
            .entry(t)
            .or_default()
            .push(value);
        ctx.register_event_time_timer(t.saturating_add(self.upper));
        Ok(())
    }

    fn process_element2(
        &mut self,
        value: B,
        ctx: &mut KeyedContext<'_, K>,
        out: &mut ProcessOutput<'_, O>,
    ) -> UserResult {
        let (Some(left), Some(right)) = (self.left, self.right) else {
            return Err("interval join used before open".into());
        };
        let r = timestamp_of(ctx)?;
        if r < ctx.current_watermark().0.millis() {
            self.late_dropped.inc();
            return Ok(());
        }
        if let Some(buffer) = ctx.value_state(&left).value() {
            let from = r.saturating_sub(self.upper);
            let to = r.saturating_sub(self.lower);
            if from <= to {
                for (&t, lefts) in buffer.range(from..=to) {
                    for a in lefts {
                        out.collect_at((self.join)(a, &value), EventTime(t.max(r)));
                    }
                }
            }
        }
        ctx.value_state(&right)
            .get_or_insert_with(BTreeMap::new)
            .entry(r)
            .or_default()
            .push(value);
        ctx.register_event_time_timer(r.saturating_sub(self.lower));
        Ok(())
    }

    fn on_timer(
        &mut self,
        time: i64,
        _domain: TimeDomain,
        ctx: &mut KeyedContext<'_, K>,
        _out: &mut ProcessOutput<'_, O>,
    ) -> UserResult {
        let (Some(left), Some(right)) = (self.left, self.right) else {
            return Err("interval join used before open".into());
        };
        // Left records at `t <= time - upper` and right records at `r <= time + lower`
        // can match nothing that is still to come.
        let mut left_state = ctx.value_state(&left);
        if let Some(buffer) = left_state.value_mut() {
            let keep = buffer.split_off(&time.saturating_sub(self.upper).saturating_add(1));
            *buffer = keep;
            if buffer.is_empty() {
                left_state.clear();
            }
        }
        let mut right_state = ctx.value_state(&right);
        if let Some(buffer) = right_state.value_mut() {
            let keep = buffer.split_off(&time.saturating_add(self.lower).saturating_add(1));
            *buffer = keep;
            if buffer.is_empty() {
                right_state.clear();
            }
        }
        Ok(())
    }
}
