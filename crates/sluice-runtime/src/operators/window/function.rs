//! Window functions: what a window emits when it fires. A [`ProcessWindowFunction`] sees
//! the key, the window and its records (or, combined with an incremental aggregate, the
//! aggregate's single result); [`WindowContents`] is how the window operator keeps a
//! window's records in between — an accumulator ([`Incremental`]) or a buffer of records
//! with an evictor ([`Buffered`]).

use std::sync::Arc;

use sluice_state::{AggregateFunction, StateData};

use super::evictor::{Evictor, WindowBuffer};
use super::TimeWindow;
use crate::operators::UserResult;

/// What a window function knows about the firing window.
#[derive(Debug, Clone, Copy)]
pub struct WindowContext {
    window: TimeWindow,
    watermark: i64,
    processing_time: i64,
}

impl WindowContext {
    pub(crate) fn new(window: TimeWindow, watermark: i64, processing_time: i64) -> Self {
        WindowContext {
            window,
            watermark,
            processing_time,
        }
    }

    /// The window that fires ([`TimeWindow::GLOBAL`] for the global window).
    pub fn window(&self) -> TimeWindow {
        self.window
    }

    /// The operator's current watermark (ms).
    pub fn current_watermark(&self) -> i64 {
        self.watermark
    }

    /// The job clock's time (ms since the Unix epoch).
    pub fn current_processing_time(&self) -> i64 {
        self.processing_time
    }
}

/// Emits the results of one key's window (Flink's `ProcessWindowFunction`).
pub trait ProcessWindowFunction<K, IN, OUT>: Send + Sync + 'static {
    /// Called when the window fires, with its records (after eviction) or the single
    /// result of an incremental aggregate; pushes results to `out`.
    ///
    /// # Errors
    /// An error fails the job, naming the operator and subtask.
    fn process(
        &self,
        key: &K,
        ctx: &WindowContext,
        elements: &[IN],
        out: &mut Vec<OUT>,
    ) -> UserResult;
}

impl<K, IN, OUT, F> ProcessWindowFunction<K, IN, OUT> for F
where
    F: Fn(&K, &WindowContext, &[IN], &mut Vec<OUT>) -> UserResult + Send + Sync + 'static,
{
    fn process(
        &self,
        key: &K,
        ctx: &WindowContext,
        elements: &[IN],
        out: &mut Vec<OUT>,
    ) -> UserResult {
        self(key, ctx, elements, out)
    }
}

/// How the window operator keeps a window's records between firings.
pub trait WindowContents<K, T>: Send + 'static {
    /// Per key and window state (written to checkpoints).
    type State: StateData;
    /// Records emitted.
    type Out: Send + 'static;

    /// The state of an empty window.
    fn create(&self) -> Self::State;
    /// Adds a record.
    fn add(&self, state: &mut Self::State, value: T, timestamp: i64);
    /// The state of two windows merged into one (sessions).
    fn merge(&self, a: Self::State, b: Self::State) -> Self::State;
    /// The window fires: push its results to `out`.
    ///
    /// # Errors
    /// The window function's error.
    fn emit(
        &self,
        key: &K,
        ctx: &WindowContext,
        state: &mut Self::State,
        out: &mut Vec<Self::Out>,
    ) -> UserResult;
}

/// Turns a window's aggregate result into output records: `(key, window, result, out)`.
pub type FinishFn<K, M, R> =
    Arc<dyn Fn(&K, &WindowContext, M, &mut Vec<R>) -> UserResult + Send + Sync>;

/// An accumulator per window, finished by a function of its result.
pub struct Incremental<K, T, ACC, M, R> {
    aggregate: Arc<dyn AggregateFunction<T, ACC, M>>,
    finish: FinishFn<K, M, R>,
}

impl<K, T, ACC, M, R> Incremental<K, T, ACC, M, R> {
    /// Aggregates with `aggregate`, emits through `finish`.
    pub fn new(
        aggregate: Arc<dyn AggregateFunction<T, ACC, M>>,
        finish: FinishFn<K, M, R>,
    ) -> Self {
        Incremental { aggregate, finish }
    }
}

impl<K, T, ACC, M, R> WindowContents<K, T> for Incremental<K, T, ACC, M, R>
where
    K: 'static,
    T: 'static,
    ACC: StateData,
    M: 'static,
    R: Send + 'static,
{
    type State = ACC;
    type Out = R;

    fn create(&self) -> ACC {
        self.aggregate.create_accumulator()
    }

    fn add(&self, state: &mut ACC, value: T, _timestamp: i64) {
        self.aggregate.add(value, state);
    }

    fn merge(&self, a: ACC, b: ACC) -> ACC {
        self.aggregate.merge(a, b)
    }

    fn emit(&self, key: &K, ctx: &WindowContext, state: &mut ACC, out: &mut Vec<R>) -> UserResult {
        (self.finish)(key, ctx, self.aggregate.get_result(state), out)
    }
}

/// The records of each window aggregated by `aggregate` when the window fires (an evictor
/// rules out aggregating as records arrive), finished by `finish`.
pub struct AggregateBuffer<K, T, ACC, M, R> {
    aggregate: Arc<dyn AggregateFunction<T, ACC, M>>,
    finish: FinishFn<K, M, R>,
}

impl<K, T, ACC, M, R> AggregateBuffer<K, T, ACC, M, R> {
    /// Aggregates buffered records with `aggregate`, emits through `finish`.
    pub fn new(
        aggregate: Arc<dyn AggregateFunction<T, ACC, M>>,
        finish: FinishFn<K, M, R>,
    ) -> Self {
        AggregateBuffer { aggregate, finish }
    }
}

impl<K, T, ACC, M, R> ProcessWindowFunction<K, T, R> for AggregateBuffer<K, T, ACC, M, R>
where
    K: 'static,
    T: Clone + 'static,
    ACC: 'static,
    M: 'static,
    R: 'static,
{
    fn process(
        &self,
        key: &K,
        ctx: &WindowContext,
        elements: &[T],
        out: &mut Vec<R>,
    ) -> UserResult {
        let mut acc = self.aggregate.create_accumulator();
        for e in elements {
            self.aggregate.add(e.clone(), &mut acc);
        }
        (self.finish)(key, ctx, self.aggregate.get_result(&acc), out)
    }
}

/// The records of each window, evicted by `EV`, given whole to a process function.
pub struct Buffered<K, T, R, EV> {
    evictor: EV,
    function: Arc<dyn ProcessWindowFunction<K, T, R>>,
}

impl<K, T, R, EV> Buffered<K, T, R, EV> {
    /// Buffers records, evicts with `evictor`, emits through `function`.
    pub fn new(evictor: EV, function: Arc<dyn ProcessWindowFunction<K, T, R>>) -> Self {
        Buffered { evictor, function }
    }
}

impl<K, T, R, EV> WindowContents<K, T> for Buffered<K, T, R, EV>
where
    K: 'static,
    T: StateData,
    R: Send + 'static,
    EV: Evictor<T>,
{
    type State = WindowBuffer<T>;
    type Out = R;

    fn create(&self) -> WindowBuffer<T> {
        WindowBuffer::default()
    }

    fn add(&self, state: &mut WindowBuffer<T>, value: T, timestamp: i64) {
        state.push(value, timestamp);
    }

    fn merge(&self, mut a: WindowBuffer<T>, b: WindowBuffer<T>) -> WindowBuffer<T> {
        a.append(b);
        a
    }

    fn emit(
        &self,
        key: &K,
        ctx: &WindowContext,
        state: &mut WindowBuffer<T>,
        out: &mut Vec<R>,
    ) -> UserResult {
        let window = ctx.window();
        self.evictor.evict_before(state, &window);
        self.function.process(key, ctx, state.values(), out)?;
        self.evictor.evict_after(state, &window);
        Ok(())
    }
}
