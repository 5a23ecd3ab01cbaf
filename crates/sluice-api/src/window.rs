//! Windowed keyed streams: the window assigners ([`TumblingEventTimeWindows`],
//! [`SlidingEventTimeWindows`], [`EventTimeSessionWindows`], their processing-time
//! counterparts, [`GlobalWindows`]) and [`WindowedStream`] with triggers, evictors, allowed
//! lateness, the late-data side output and the window functions.
//!
//! The common case — an event-time tumbling, sliding or session window with its default
//! trigger, no evictor, no allowed lateness, aggregated incrementally — runs on
//! specialised operators; everything else runs on the general `WindowOperator`.

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use sluice_core::Data;
use sluice_runtime::graph::NodeKind;
use sluice_runtime::operators::window::{
    AggregateBuffer, Buffered, CountEvictor, CountTrigger, DefaultTrigger, Evictor, FinishFn,
    Incremental, NoEvictor, ProcessWindowFunction, PurgingTrigger, SessionWindowOperator,
    SlidingWindowOperator, TimeWindow, Trigger, TumblingWindowOperator, WindowAssigner,
    WindowOperator, WindowResultFn, WindowSettings,
};
use sluice_runtime::OutputTag;
use sluice_state::{AggregateFunction, StateData};

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

/// Fixed-size, non-overlapping processing-time windows (Flink's
/// `TumblingProcessingTimeWindows`): a record belongs to the window of the job clock's
/// time when it arrives.
#[derive(Debug, Clone, Copy)]
pub struct TumblingProcessingTimeWindows {
    size_ms: i64,
    offset_ms: i64,
}

impl TumblingProcessingTimeWindows {
    /// Windows of `size`, aligned to the Unix epoch.
    pub fn of(size: Duration) -> Self {
        TumblingProcessingTimeWindows {
            size_ms: millis(size).max(1),
            offset_ms: 0,
        }
    }
}

/// Processing-time windows of `size` starting every `slide` (Flink's
/// `SlidingProcessingTimeWindows`).
#[derive(Debug, Clone, Copy)]
pub struct SlidingProcessingTimeWindows {
    size_ms: i64,
    slide_ms: i64,
}

impl SlidingProcessingTimeWindows {
    /// Windows of `size` starting every `slide`, aligned to the Unix epoch.
    pub fn of(size: Duration, slide: Duration) -> Self {
        SlidingProcessingTimeWindows {
            size_ms: millis(size).max(1),
            slide_ms: millis(slide).max(1),
        }
    }
}

/// One window per key holding all its records (Flink's `GlobalWindows`). It never fires
/// by itself: give it a trigger (a count, a delta, ...).
#[derive(Debug, Clone, Copy)]
pub struct GlobalWindows;

impl GlobalWindows {
    /// The global window assigner.
    pub fn create() -> Self {
        GlobalWindows
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Former name of [`WindowAssigner`], kept for existing jobs.
pub type EventTimeWindows = WindowAssigner;

impl From<TumblingEventTimeWindows> for WindowAssigner {
    fn from(w: TumblingEventTimeWindows) -> Self {
        WindowAssigner::Tumbling {
            size_ms: w.size_ms,
            offset_ms: w.offset_ms,
        }
    }
}

impl From<SlidingEventTimeWindows> for WindowAssigner {
    fn from(w: SlidingEventTimeWindows) -> Self {
        WindowAssigner::Sliding {
            size_ms: w.size_ms,
            slide_ms: w.slide_ms,
            offset_ms: w.offset_ms,
        }
    }
}

impl From<EventTimeSessionWindows> for WindowAssigner {
    fn from(w: EventTimeSessionWindows) -> Self {
        WindowAssigner::Session { gap_ms: w.gap_ms }
    }
}

impl From<TumblingProcessingTimeWindows> for WindowAssigner {
    fn from(w: TumblingProcessingTimeWindows) -> Self {
        WindowAssigner::TumblingProcessingTime {
            size_ms: w.size_ms,
            offset_ms: w.offset_ms,
        }
    }
}

impl From<SlidingProcessingTimeWindows> for WindowAssigner {
    fn from(w: SlidingProcessingTimeWindows) -> Self {
        WindowAssigner::SlidingProcessingTime {
            size_ms: w.size_ms,
            slide_ms: w.slide_ms,
            offset_ms: 0,
        }
    }
}

impl From<GlobalWindows> for WindowAssigner {
    fn from(_: GlobalWindows) -> Self {
        WindowAssigner::Global
    }
}

/// A keyed stream cut into windows; give it a window function to get results per key and
/// window. `TR` is its trigger and `EV` its evictor.
pub struct WindowedStream<K, T, TR = DefaultTrigger, EV = NoEvictor> {
    keyed: KeyedStream<K, T>,
    assigner: WindowAssigner,
    trigger: TR,
    evictor: EV,
    allowed_lateness_ms: i64,
    late_tag: Option<OutputTag<T>>,
}

impl<K, T, TR, EV> std::fmt::Debug for WindowedStream<K, T, TR, EV> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowedStream")
            .field("assigner", &self.assigner)
            .field("allowed_lateness_ms", &self.allowed_lateness_ms)
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
    /// Cuts the keyed stream into windows (event-time windows need timestamps: see
    /// [`DataStream::assign_timestamps_and_watermarks`]).
    pub fn window(&self, windows: impl Into<WindowAssigner>) -> WindowedStream<K, T> {
        let assigner = windows.into();
        WindowedStream {
            keyed: self.clone(),
            assigner,
            trigger: DefaultTrigger::for_assigner(&assigner),
            evictor: NoEvictor,
            allowed_lateness_ms: 0,
            late_tag: None,
        }
    }

    /// Tumbling count windows: each window holds `size` records of a key and fires when
    /// full (Flink's `countWindow(size)`).
    pub fn count_window(&self, size: u64) -> WindowedStream<K, T, PurgingTrigger<CountTrigger>> {
        self.window(GlobalWindows)
            .trigger(PurgingTrigger::of(CountTrigger::of(size)))
    }

    /// Sliding count windows: every `slide` records of a key, a window over its last
    /// `size` records (Flink's `countWindow(size, slide)`).
    pub fn count_window_sliding(
        &self,
        size: u64,
        slide: u64,
    ) -> WindowedStream<K, T, CountTrigger, CountEvictor> {
        self.window(GlobalWindows)
            .evictor(CountEvictor::of(
                usize::try_from(size).unwrap_or(usize::MAX),
            ))
            .trigger(CountTrigger::of(slide))
    }
}

impl<K, T, TR, EV> WindowedStream<K, T, TR, EV>
where
    K: Data + Hash + Eq,
    T: Data,
    TR: Trigger<T> + Clone,
    EV: Evictor<T> + Clone,
{
    /// Fires windows with `trigger` instead of the assigner's default (Flink's
    /// `trigger`).
    pub fn trigger<TR2: Trigger<T> + Clone>(self, trigger: TR2) -> WindowedStream<K, T, TR2, EV> {
        WindowedStream {
            keyed: self.keyed,
            assigner: self.assigner,
            trigger,
            evictor: self.evictor,
            allowed_lateness_ms: self.allowed_lateness_ms,
            late_tag: self.late_tag,
        }
    }

    /// Evicts records with `evictor` before or after the window function (windows then
    /// keep their records instead of an accumulator).
    pub fn evictor<EV2: Evictor<T> + Clone>(self, evictor: EV2) -> WindowedStream<K, T, TR, EV2> {
        WindowedStream {
            keyed: self.keyed,
            assigner: self.assigner,
            trigger: self.trigger,
            evictor,
            allowed_lateness_ms: self.allowed_lateness_ms,
            late_tag: self.late_tag,
        }
    }

    /// Keeps event-time windows for `lateness` after their end: a late record within it
    /// updates its window, which fires again with the updated result (Flink's
    /// `allowedLateness`). Default: zero.
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.allowed_lateness_ms = millis(lateness);
        self
    }

    /// Sends records too late for every window they belong to to the side output `tag`
    /// (read it with [`DataStream::side_output`]) instead of dropping them; either way
    /// they are counted (`numLateRecordsDropped` / `numLateRecordsSideOutput`).
    pub fn side_output_late_data(mut self, tag: &OutputTag<T>) -> Self {
        self.late_tag = Some(tag.clone());
        self
    }

    fn settings(&self) -> WindowSettings<T> {
        WindowSettings {
            assigner: self.assigner,
            allowed_lateness_ms: self.allowed_lateness_ms,
            late_tag: self.late_tag.clone(),
        }
    }

    /// Whether the specialised incremental operators can run this window.
    fn fast_path(&self) -> bool {
        self.trigger.is_default()
            && self.evictor.is_none()
            && self.allowed_lateness_ms == 0
            && match self.assigner {
                WindowAssigner::Tumbling { .. } | WindowAssigner::Session { .. } => true,
                // Panes need windows that cover time without gaps.
                WindowAssigner::Sliding {
                    size_ms, slide_ms, ..
                } => slide_ms <= size_ms,
                _ => false,
            }
    }

    /// The general window operator with `contents`.
    fn general<C>(&self, contents: impl Fn() -> C + Send + Sync + 'static) -> DataStream<C::Out>
    where
        C: sluice_runtime::operators::window::WindowContents<K, T>,
        C::Out: Data,
    {
        let key_of = self.keyed.key_of.clone();
        let settings = self.settings();
        let trigger = self.trigger.clone();
        self.keyed
            .stream
            .add_operator("Window", NodeKind::Operator, move |ctx| {
                Ok(WindowOperator::new(
                    ctx,
                    key_of.clone(),
                    settings.clone(),
                    trigger.clone(),
                    contents(),
                ))
            })
    }

    /// One result per key and window firing from `aggregate`, emitted as `f(key, window,
    /// result)` and stamped with the window's last millisecond. Without an evictor the
    /// records are aggregated as they arrive.
    pub fn aggregate_with<ACC, M, R>(
        &self,
        aggregate: impl AggregateFunction<T, ACC, M>,
        f: impl Fn(&K, TimeWindow, M) -> R + Send + Sync + 'static,
    ) -> DataStream<R>
    where
        ACC: Clone + StateData,
        M: 'static,
        R: Data,
    {
        let aggregate: Arc<dyn AggregateFunction<T, ACC, M>> = Arc::new(aggregate);
        let result: WindowResultFn<K, M, R> = Arc::new(f);
        if self.fast_path() {
            return self.fast_aggregate(aggregate, result);
        }
        let finish: FinishFn<K, M, R> = Arc::new(move |key, ctx, m, out| {
            out.push(result(key, ctx.window(), m));
            Ok(())
        });
        self.aggregate_then(aggregate, finish)
    }

    /// Incremental aggregation (or aggregation of the buffered records when there is an
    /// evictor), finished by `finish(key, window context, result, out)`.
    fn aggregate_then<ACC, M, R>(
        &self,
        aggregate: Arc<dyn AggregateFunction<T, ACC, M>>,
        finish: FinishFn<K, M, R>,
    ) -> DataStream<R>
    where
        ACC: StateData,
        M: 'static,
        R: Data,
    {
        if self.evictor.is_none() {
            return self
                .general(move || Incremental::new(Arc::clone(&aggregate), Arc::clone(&finish)));
        }
        let evictor = self.evictor.clone();
        let function: Arc<dyn ProcessWindowFunction<K, T, R>> =
            Arc::new(AggregateBuffer::new(aggregate, finish));
        self.general(move || Buffered::new(evictor.clone(), Arc::clone(&function)))
    }

    /// Incremental aggregation combined with a process window function, which receives
    /// the single aggregate result of each window firing together with the window
    /// (Flink's `aggregate(aggFunction, windowFunction)`).
    pub fn aggregate_process<ACC, M, R>(
        &self,
        aggregate: impl AggregateFunction<T, ACC, M>,
        function: impl ProcessWindowFunction<K, M, R>,
    ) -> DataStream<R>
    where
        ACC: StateData,
        M: 'static,
        R: Data,
    {
        let function = Arc::new(function);
        let finish: FinishFn<K, M, R> = Arc::new(move |key, ctx, m, out| {
            function.process(key, ctx, std::slice::from_ref(&m), out)
        });
        self.aggregate_then(Arc::new(aggregate), finish)
    }

    /// A process window function over all records of each window firing (after
    /// eviction), with the key and window (Flink's `process`). Windows keep their
    /// records until cleanup.
    pub fn process<R: Data>(&self, function: impl ProcessWindowFunction<K, T, R>) -> DataStream<R> {
        let evictor = self.evictor.clone();
        let function: Arc<dyn ProcessWindowFunction<K, T, R>> = Arc::new(function);
        self.general(move || Buffered::new(evictor.clone(), Arc::clone(&function)))
    }

    /// One result per key and window firing from `aggregate`.
    pub fn aggregate<ACC, OUT>(
        &self,
        aggregate: impl AggregateFunction<T, ACC, OUT>,
    ) -> DataStream<OUT>
    where
        ACC: Clone + StateData,
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

    /// The specialised operators for default-trigger event-time windows.
    fn fast_aggregate<ACC, M, R>(
        &self,
        aggregate: Arc<dyn AggregateFunction<T, ACC, M>>,
        result: WindowResultFn<K, M, R>,
    ) -> DataStream<R>
    where
        ACC: Clone + StateData,
        M: 'static,
        R: Data,
    {
        let key_of = self.keyed.key_of.clone();
        let late = self.late_tag.clone();
        let stream = &self.keyed.stream;
        match self.assigner {
            WindowAssigner::Sliding {
                size_ms,
                slide_ms,
                offset_ms,
            } => stream.add_operator("Sliding Window", NodeKind::Operator, move |ctx| {
                let op = SlidingWindowOperator::new(
                    ctx,
                    key_of.clone(),
                    size_ms,
                    slide_ms,
                    offset_ms,
                    Arc::clone(&aggregate),
                    Arc::clone(&result),
                );
                Ok(match &late {
                    Some(tag) => op.with_late_output(ctx, tag.clone()),
                    None => op,
                })
            }),
            WindowAssigner::Session { gap_ms } => {
                stream.add_operator("Session Window", NodeKind::Operator, move |ctx| {
                    let op = SessionWindowOperator::new(
                        ctx,
                        key_of.clone(),
                        gap_ms,
                        Arc::clone(&aggregate),
                        Arc::clone(&result),
                    );
                    Ok(match &late {
                        Some(tag) => op.with_late_output(ctx, tag.clone()),
                        None => op,
                    })
                })
            }
            _ => {
                let (size_ms, offset_ms) = match self.assigner {
                    WindowAssigner::Tumbling { size_ms, offset_ms } => (size_ms, offset_ms),
                    _ => (i64::MAX, 0),
                };
                stream.add_operator("Tumbling Window", NodeKind::Operator, move |ctx| {
                    let op = TumblingWindowOperator::new(
                        ctx,
                        key_of.clone(),
                        size_ms,
                        offset_ms,
                        Arc::clone(&aggregate),
                        Arc::clone(&result),
                    );
                    Ok(match &late {
                        Some(tag) => op.with_late_output(ctx, tag.clone()),
                        None => op,
                    })
                })
            }
        }
    }
}
