//! Windowed keyed streams: [`TumblingEventTimeWindows`], [`SlidingEventTimeWindows`] and
//! [`WindowedStream`].

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use sluice_core::Data;
use sluice_runtime::graph::NodeKind;
use sluice_runtime::operators::window::{
    SessionWindowOperator, SlidingWindowOperator, TimeWindow, TumblingWindowOperator,
    WindowResultFn,
};
use sluice_state::AggregateFunction;

use crate::datastream::DataStream;
use crate::keyed::KeyedStream;

/// Fixed-size, non-overlapping event-time windows (Flink's `TumblingEventTimeWindows`).
#[derive(Debug, Clone, Copy)]
pub struct TumblingEventTimeWindows {
    size_ms: i64,
    offset_ms: i64,
}

impl TumblingEventTimeWindows {
    /// Windows of `size`, aligned to the Unix epoch.
    pub fn of(size: Duration) -> Self {
        TumblingEventTimeWindows {
            size_ms: i64::try_from(size.as_millis()).unwrap_or(i64::MAX).max(1),
            offset_ms: 0,
        }
    }

    /// Shifts window boundaries by `offset` (e.g. for time zones).
    pub fn with_offset(mut self, offset: Duration) -> Self {
        self.offset_ms = i64::try_from(offset.as_millis()).unwrap_or(0);
        self
    }
}

/// Event-time windows of `size` that start every `slide`, so each record belongs to
/// `size / slide` windows (Flink's `SlidingEventTimeWindows`). Records are aggregated once
/// per pane of `gcd(size, slide)`, not once per window.
#[derive(Debug, Clone, Copy)]
pub struct SlidingEventTimeWindows {
    size_ms: i64,
    slide_ms: i64,
    offset_ms: i64,
}

impl SlidingEventTimeWindows {
    /// Windows of `size` starting every `slide`, aligned to the Unix epoch.
    pub fn of(size: Duration, slide: Duration) -> Self {
        SlidingEventTimeWindows {
            size_ms: i64::try_from(size.as_millis()).unwrap_or(i64::MAX).max(1),
            slide_ms: i64::try_from(slide.as_millis()).unwrap_or(i64::MAX).max(1),
            offset_ms: 0,
        }
    }

    /// Shifts window boundaries by `offset`.
    pub fn with_offset(mut self, offset: Duration) -> Self {
        self.offset_ms = i64::try_from(offset.as_millis()).unwrap_or(0);
        self
    }
}

/// Sessions per key: runs of records with gaps shorter than `gap` between them (Flink's
/// `EventTimeSessionWindows`). Sessions merge as records arrive, in any order.
#[derive(Debug, Clone, Copy)]
pub struct EventTimeSessionWindows {
    gap_ms: i64,
}

impl EventTimeSessionWindows {
    /// Sessions that close after `gap` without records.
    pub fn with_gap(gap: Duration) -> Self {
        EventTimeSessionWindows {
            gap_ms: i64::try_from(gap.as_millis()).unwrap_or(i64::MAX).max(1),
        }
    }
}

/// Which event-time windows a [`WindowedStream`] uses.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum EventTimeWindows {
    /// See [`TumblingEventTimeWindows`].
    Tumbling(TumblingEventTimeWindows),
    /// See [`SlidingEventTimeWindows`].
    Sliding(SlidingEventTimeWindows),
    /// See [`EventTimeSessionWindows`].
    Session(EventTimeSessionWindows),
}

impl From<EventTimeSessionWindows> for EventTimeWindows {
    fn from(w: EventTimeSessionWindows) -> Self {
        EventTimeWindows::Session(w)
    }
}

impl From<TumblingEventTimeWindows> for EventTimeWindows {
    fn from(w: TumblingEventTimeWindows) -> Self {
        EventTimeWindows::Tumbling(w)
    }
}

impl From<SlidingEventTimeWindows> for EventTimeWindows {
    fn from(w: SlidingEventTimeWindows) -> Self {
        EventTimeWindows::Sliding(w)
    }
}

/// A keyed stream cut into windows; aggregate it to get one result per key and window.
pub struct WindowedStream<K, T> {
    keyed: KeyedStream<K, T>,
    windows: EventTimeWindows,
}

impl<K, T> std::fmt::Debug for WindowedStream<K, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowedStream")
            .field("windows", &self.windows)
            .finish()
    }
}

/// `reduce` as an aggregation: the accumulator is the reduced value so far.
struct ReduceAggregate<T> {
    reduce: Arc<dyn Fn(T, T) -> T + Send + Sync>,
}

impl<T: Clone + Send + 'static> AggregateFunction<T, Option<T>, T> for ReduceAggregate<T> {
    fn create_accumulator(&self) -> Option<T> {
        None
    }
    fn add(&self, value: T, acc: &mut Option<T>) {
        *acc = Some(match acc.take() {
            Some(a) => (self.reduce)(a, value),
            None => value,
        });
    }
    fn get_result(&self, acc: &Option<T>) -> T {
        match acc {
            Some(v) => v.clone(),
            None => unreachable!("a window fires only after a record created its accumulator"),
        }
    }
    fn merge(&self, a: Option<T>, b: Option<T>) -> Option<T> {
        match (a, b) {
            (Some(a), Some(b)) => Some((self.reduce)(a, b)),
            (a, b) => a.or(b),
        }
    }
}

impl<K: Data + Hash + Eq, T: Data> KeyedStream<K, T> {
    /// Cuts the keyed stream into event-time windows (records need timestamps: see
    /// [`DataStream::assign_timestamps_and_watermarks`]).
    pub fn window(&self, windows: impl Into<EventTimeWindows>) -> WindowedStream<K, T> {
        WindowedStream {
            keyed: self.clone(),
            windows: windows.into(),
        }
    }
}

impl<K: Data + Hash + Eq, T: Data> WindowedStream<K, T> {
    /// One result per key and window from `aggregate`, emitted as `f(key, window,
    /// result)` when the watermark passes the window's end, stamped with the window's
    /// last millisecond. Records that arrive after their window fired are dropped (and
    /// counted).
    pub fn aggregate_with<ACC, M, R>(
        &self,
        aggregate: impl AggregateFunction<T, ACC, M>,
        f: impl Fn(&K, TimeWindow, M) -> R + Send + Sync + 'static,
    ) -> DataStream<R>
    where
        ACC: Clone + Send + 'static,
        M: 'static,
        R: Data,
    {
        let key_of = self.keyed.key_of.clone();
        let aggregate: Arc<dyn AggregateFunction<T, ACC, M>> = Arc::new(aggregate);
        let result: WindowResultFn<K, M, R> = Arc::new(f);
        let stream = &self.keyed.stream;
        match self.windows {
            EventTimeWindows::Tumbling(TumblingEventTimeWindows { size_ms, offset_ms }) => stream
                .add_operator("Tumbling Window", NodeKind::Operator, move |ctx| {
                    Ok(TumblingWindowOperator::new(
                        ctx,
                        key_of.clone(),
                        size_ms,
                        offset_ms,
                        Arc::clone(&aggregate),
                        Arc::clone(&result),
                    ))
                }),
            EventTimeWindows::Sliding(SlidingEventTimeWindows {
                size_ms,
                slide_ms,
                offset_ms,
            }) => stream.add_operator("Sliding Window", NodeKind::Operator, move |ctx| {
                Ok(SlidingWindowOperator::new(
                    ctx,
                    key_of.clone(),
                    size_ms,
                    slide_ms,
                    offset_ms,
                    Arc::clone(&aggregate),
                    Arc::clone(&result),
                ))
            }),
            EventTimeWindows::Session(EventTimeSessionWindows { gap_ms }) => {
                stream.add_operator("Session Window", NodeKind::Operator, move |ctx| {
                    Ok(SessionWindowOperator::new(
                        ctx,
                        key_of.clone(),
                        gap_ms,
                        Arc::clone(&aggregate),
                        Arc::clone(&result),
                    ))
                })
            }
        }
    }

    /// One result per key and window from `aggregate`.
    pub fn aggregate<ACC, OUT>(
        &self,
        aggregate: impl AggregateFunction<T, ACC, OUT>,
    ) -> DataStream<OUT>
    where
        ACC: Clone + Send + 'static,
        OUT: Data,
    {
        self.aggregate_with(aggregate, |_, _, result| result)
    }

    /// The records of each key and window reduced with `f` (which must be associative).
    pub fn reduce(&self, f: impl Fn(T, T) -> T + Send + Sync + 'static) -> DataStream<T> {
        self.aggregate(ReduceAggregate {
            reduce: Arc::new(f),
        })
    }

    /// Like [`WindowedStream::reduce`], emitting `g(key, window, reduced)`.
    pub fn reduce_with<R: Data>(
        &self,
        f: impl Fn(T, T) -> T + Send + Sync + 'static,
        g: impl Fn(&K, TimeWindow, T) -> R + Send + Sync + 'static,
    ) -> DataStream<R> {
        self.aggregate_with(
            ReduceAggregate {
                reduce: Arc::new(f),
            },
            g,
        )
    }
}
