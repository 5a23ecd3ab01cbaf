//! [`KeyedProcessOperator`]: runs a user [`KeyedProcessFunction`] with per-key state.
//!
//! The function registers its states once in [`KeyedProcessFunction::open`] and, for each
//! record, reads and writes the state of the record's key through [`KeyedContext`].
//! Invariant: the context's key is the key of the record being processed, and the state
//! it reaches belongs to that key only.

use std::marker::PhantomData;

use std::sync::Arc;

use std::collections::HashMap;

use sluice_core::{
    key_group_for, stable_hash, CheckpointId, Clock, EventTime, KeyGroupRange, Records, Watermark,
};
use sluice_state::{
    AggregateFunction, AggregatingState, AggregatingStateHandle, KeyedStateBackend,
    KeyedStateStore, ListState, ListStateHandle, MapState, MapStateHandle, ReducingState,
    ReducingStateHandle, StateData, StateHandle, StateKey, StateTtlConfig, ValueState,
    ValueStateHandle,
};

use super::timers::{TimeDomain, TimerQueue};
use super::{KeySelector, UserResult};
use crate::checkpoint::{OperatorSnapshot, RestoredState};
use crate::error::{Error, Result};
use crate::metrics::{Counter, SIDE_OUTPUT_RECORDS_DROPPED};
use crate::operator::side_output::{OutputTag, SideOutputs};
use crate::operator::{Collector, Operator, OperatorContext};

/// What a process function can do when it opens: register its states.
pub struct OpenContext<'a, K> {
    store: &'a mut KeyedStateStore<K>,
    operator: &'a OperatorContext,
}

impl<'a, K> OpenContext<'a, K> {
    /// The open context over `store`.
    pub(crate) fn new(store: &'a mut KeyedStateStore<K>, operator: &'a OperatorContext) -> Self {
        OpenContext { store, operator }
    }
}

impl<K: StateKey> OpenContext<'_, K> {
    /// Registers the value state `name` holding one `V` per key.
    ///
    /// # Errors
    /// If `name` was registered with another type.
    pub fn value_state<V: StateData>(&mut self, name: &str) -> UserResult<ValueStateHandle<V>> {
        Ok(self.store.register_value::<V>(name)?)
    }

    /// Registers the list state `name` holding `V`s per key.
    ///
    /// # Errors
    /// If `name` was registered as another kind or type of state.
    pub fn list_state<V: StateData>(&mut self, name: &str) -> UserResult<ListStateHandle<V>> {
        Ok(self.store.register_list::<V>(name)?)
    }

    /// Registers the map state `name` mapping `UK` to `UV` per key.
    ///
    /// # Errors
    /// If `name` was registered as another kind or type of state.
    pub fn map_state<UK, UV>(&mut self, name: &str) -> UserResult<MapStateHandle<UK, UV>>
    where
        UK: StateKey,
        UV: StateData,
    {
        Ok(self.store.register_map::<UK, UV>(name)?)
    }

    /// Registers the reducing state `name`, reducing added values with `reduce`.
    ///
    /// # Errors
    /// If `name` was registered as another kind or type of state.
    pub fn reducing_state<V: StateData>(
        &mut self,
        name: &str,
        reduce: impl Fn(V, V) -> V + Send + Sync + 'static,
    ) -> UserResult<ReducingStateHandle<V>> {
        Ok(self.store.register_reducing(name, reduce)?)
    }

    /// Registers the aggregating state `name`, aggregating added values with `function`.
    ///
    /// # Errors
    /// If `name` was registered as another kind or type of state.
    pub fn aggregating_state<IN: 'static, ACC: StateData, OUT: 'static>(
        &mut self,
        name: &str,
        function: impl AggregateFunction<IN, ACC, OUT>,
    ) -> UserResult<AggregatingStateHandle<IN, ACC, OUT>> {
        Ok(self.store.register_aggregating(name, function)?)
    }

    /// Gives the state of `handle` a time-to-live (Flink's `enableTimeToLive`): a key's
    /// entry expires `config` after its last write (or read), by the job's clock, and is
    /// never returned once expired.
    pub fn enable_ttl(&mut self, handle: &impl StateHandle, config: StateTtlConfig) {
        self.store.enable_ttl(handle, config);
    }

    /// Where this instance runs (subtask index, parallelism, ...).
    pub fn operator(&self) -> &OperatorContext {
        self.operator
    }
}

/// What a process function sees while it processes one record.
pub struct KeyedContext<'a, K> {
    key: &'a K,
    hash: u64,
    timestamp: Option<EventTime>,
    watermark: Watermark,
    clock: &'a dyn Clock,
    store: &'a mut KeyedStateStore<K>,
    timers: &'a mut Timers<K>,
}

/// The event-time and processing-time timers of a keyed process operator.
#[derive(Debug)]
pub(crate) struct Timers<K> {
    event: TimerQueue<K>,
    processing: TimerQueue<K>,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            event: TimerQueue::default(),
            processing: TimerQueue::default(),
        }
    }
}

impl<K: StateKey> KeyedContext<'_, K> {
    /// Asks for [`KeyedProcessFunction::on_timer`] to be called for the current key once
    /// the watermark reaches `time` (ms). One timer per key and time: registering it again
    /// does nothing. A bounded input's final watermark fires every event-time timer.
    pub fn register_event_time_timer(&mut self, time: i64) {
        self.timers.event.register(time, self.key);
    }

    /// Cancels the current key's event-time timer at `time`, if any.
    pub fn delete_event_time_timer(&mut self, time: i64) {
        self.timers.event.delete(time, self.key);
    }

    /// Asks for [`KeyedProcessFunction::on_timer`] to be called for the current key once
    /// the job's clock reaches `time` (ms since the Unix epoch). One timer per key and
    /// time. Processing-time timers still pending when the input ends do not fire.
    pub fn register_processing_time_timer(&mut self, time: i64) {
        self.timers.processing.register(time, self.key);
    }

    /// Cancels the current key's processing-time timer at `time`, if any.
    pub fn delete_processing_time_timer(&mut self, time: i64) {
        self.timers.processing.delete(time, self.key);
    }
}

impl<K: StateKey> KeyedContext<'_, K> {
    /// The key of the current record.
    pub fn key(&self) -> &K {
        self.key
    }

    /// The current record's event time, if timestamps were assigned.
    pub fn timestamp(&self) -> Option<EventTime> {
        self.timestamp
    }

    /// The operator's current watermark ([`Watermark::MIN`] before the first one).
    pub fn current_watermark(&self) -> Watermark {
        self.watermark
    }

    /// The current processing time (ms since the Unix epoch) from the job's clock.
    pub fn current_processing_time(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The current key's list of a list state registered in `open`.
    pub fn list_state<V: Send + 'static>(
        &mut self,
        handle: &ListStateHandle<V>,
    ) -> ListState<'_, K, V> {
        self.store.list_state(handle, self.key, self.hash)
    }

    /// The current key's map of a map state registered in `open`.
    pub fn map_state<UK, UV>(&mut self, handle: &MapStateHandle<UK, UV>) -> MapState<'_, K, UK, UV>
    where
        UK: std::hash::Hash + Eq + Send + 'static,
        UV: Send + 'static,
    {
        self.store.map_state(handle, self.key, self.hash)
    }

    /// The current key's value of a reducing state registered in `open`.
    pub fn reducing_state<'s, V: Send + 'static>(
        &'s mut self,
        handle: &'s ReducingStateHandle<V>,
    ) -> ReducingState<'s, K, V> {
        self.store.reducing_state(handle, self.key, self.hash)
    }

    /// The current key's accumulator of an aggregating state registered in `open`.
    pub fn aggregating_state<'s, IN: 'static, ACC: Send + 'static, OUT: 'static>(
        &'s mut self,
        handle: &'s AggregatingStateHandle<IN, ACC, OUT>,
    ) -> AggregatingState<'s, K, IN, ACC, OUT> {
        self.store.aggregating_state(handle, self.key, self.hash)
    }

    /// The current key's value of a state registered in `open`.
    pub fn value_state<V: Send + 'static>(
        &mut self,
        handle: &ValueStateHandle<V>,
    ) -> ValueState<'_, K, V> {
        self.store.value_state(handle, self.key, self.hash)
    }
}

/// Where a process function sends its results; each inherits the input's timestamp.
pub struct ProcessOutput<'a, O> {
    records: &'a mut Records<O>,
    timestamp: Option<EventTime>,
    side: Option<&'a mut SideOutputs>,
    unconsumed_side: &'a Counter,
}

impl<'a, O> ProcessOutput<'a, O> {
    /// Output into `records` (and `side`), stamped `timestamp`. Side records whose tag
    /// nothing consumes are counted in `unconsumed_side`.
    pub(crate) fn new(
        records: &'a mut Records<O>,
        timestamp: Option<EventTime>,
        side: Option<&'a mut SideOutputs>,
        unconsumed_side: &'a Counter,
    ) -> Self {
        ProcessOutput {
            records,
            timestamp,
            side,
            unconsumed_side,
        }
    }

    /// Emits one value.
    pub fn collect(&mut self, value: O) {
        self.records.push(value, self.timestamp);
    }

    /// Emits one value stamped `timestamp` instead of the input's timestamp.
    pub fn collect_at(&mut self, value: O, timestamp: EventTime) {
        self.records.push(value, Some(timestamp));
    }

    /// Emits one value to the side output `tag` (read it with `DataStream::side_output`).
    /// When no operator consumes that side output, the value is counted and dropped.
    pub fn output<X: Send + 'static>(&mut self, tag: &OutputTag<X>, value: X) {
        match self.side.as_deref_mut().and_then(|s| s.buffer(tag)) {
            Some(buffer) => buffer.push(value, self.timestamp),
            None => self.unconsumed_side.inc(),
        }
    }
}

/// User logic run per record of a keyed stream, with per-key state.
///
/// One instance runs per parallel subtask (cloned from the one given to the API), so
/// fields are per-subtask; keep per-key data in state, not in fields.
pub trait KeyedProcessFunction<K, I, O>: Send + 'static {
    /// Registers states. Called once per subtask before the first record. Default: none.
    ///
    /// # Errors
    /// An error fails the job before any record is processed.
    fn open(&mut self, ctx: &mut OpenContext<'_, K>) -> UserResult {
        let _ = ctx;
        Ok(())
    }

    /// Processes one record of the key `ctx.key()`.
    ///
    /// # Errors
    /// An error fails the job, naming the operator and subtask.
    fn process_element(
        &mut self,
        value: I,
        ctx: &mut KeyedContext<'_, K>,
        out: &mut ProcessOutput<'_, O>,
    ) -> UserResult;

    /// A timer of `ctx.key()` registered for `time` in `domain` fired. Outputs of an
    /// event-time timer carry `time` as their timestamp; those of a processing-time timer
    /// carry none. Default: nothing.
    ///
    /// # Errors
    /// An error fails the job, naming the operator and subtask.
    fn on_timer(
        &mut self,
        time: i64,
        domain: TimeDomain,
        ctx: &mut KeyedContext<'_, K>,
        out: &mut ProcessOutput<'_, O>,
    ) -> UserResult {
        let _ = (time, domain, ctx, out);
        Ok(())
    }
}

/// Runs a [`KeyedProcessFunction`] over a keyed stream.
pub struct KeyedProcessOperator<K, I, O, P> {
    key_of: KeySelector<I, K>,
    function: P,
    keyed: KeyedRuntime<K>,
    unconsumed_side: Counter,
    range: KeyGroupRange,
    max_parallelism: u32,
    _types: PhantomData<fn(I) -> O>,
}

/// A state-layer error as a job failure the user can act on.
fn state_error(e: sluice_state::Error) -> Error {
    Error::User(Box::new(e))
}

/// How often (ms of processing time) expired state entries are swept.
const EXPIRY_INTERVAL_MS: i64 = 1_000;

/// What a process function's contexts give access to: state, timers, time.
pub(crate) struct KeyedRuntime<K> {
    pub(crate) store: KeyedStateStore<K>,
    next_expiry_ms: i64,
    timers: Timers<K>,
    pub(crate) watermark: Watermark,
    clock: Arc<dyn Clock>,
}

impl<K: StateKey> KeyedRuntime<K> {
    /// State and timers for the key groups of `ctx`.
    pub(crate) fn new(ctx: &OperatorContext) -> Self {
        let mut store = KeyedStateStore::new(ctx.key_group_range, ctx.max_parallelism);
        store.set_clock(Arc::clone(&ctx.clock));
        KeyedRuntime {
            store,
            next_expiry_ms: i64::MIN,
            timers: Timers::default(),
            watermark: Watermark::MIN,
            clock: Arc::clone(&ctx.clock),
        }
    }

    /// Fires every timer of `domain` due at `up_to` through `on_timer`, including timers
    /// that firing ones register for times already due, and emits what they output.
    pub(crate) fn fire_timers<O: Send + 'static>(
        &mut self,
        domain: TimeDomain,
        up_to: i64,
        out: &mut Collector<'_, Records<O>>,
        unconsumed_side: &Counter,
        mut on_timer: impl FnMut(
            i64,
            TimeDomain,
            &mut KeyedContext<'_, K>,
            &mut ProcessOutput<'_, O>,
        ) -> UserResult,
    ) -> Result<()> {
        if domain == TimeDomain::ProcessingTime && up_to >= self.next_expiry_ms {
            // Entries with a time-to-live that nobody reads again are removed here.
            self.store.expire(up_to);
            self.next_expiry_ms = up_to.saturating_add(EXPIRY_INTERVAL_MS);
        }
        let mut output = Records::new();
        loop {
            let queue = match domain {
                TimeDomain::EventTime => &mut self.timers.event,
                TimeDomain::ProcessingTime => &mut self.timers.processing,
            };
            let Some((time, key)) = queue.pop_due(up_to) else {
                break;
            };
            let timestamp = match domain {
                TimeDomain::EventTime => Some(EventTime(time)),
                TimeDomain::ProcessingTime => None,
            };
            let mut ctx = self.context(&key, timestamp);
            let mut emit =
                ProcessOutput::new(&mut output, timestamp, out.side_outputs(), unconsumed_side);
            on_timer(time, domain, &mut ctx, &mut emit).map_err(Error::User)?;
        }
        out.collect(output)
    }

    /// Runs `process` on every record of `batch` with the context of its key (keyed by
    /// `key_of`) and emits what it outputs.
    pub(crate) fn process_batch<I, O: Send + 'static>(
        &mut self,
        batch: Records<I>,
        key_of: &KeySelector<I, K>,
        out: &mut Collector<'_, Records<O>>,
        unconsumed_side: &Counter,
        mut process: impl FnMut(I, &mut KeyedContext<'_, K>, &mut ProcessOutput<'_, O>) -> UserResult,
    ) -> Result<()> {
        let mut output = Records::with_capacity(batch.len());
        for (value, timestamp) in batch.into_iter_timed() {
            // The context owns a copy of the key so the function may consume the record.
            let key = key_of.owned_key(&value);
            let mut ctx = self.context(&key, timestamp);
            let mut emit =
                ProcessOutput::new(&mut output, timestamp, out.side_outputs(), unconsumed_side);
            process(value, &mut ctx, &mut emit).map_err(Error::User)?;
        }
        out.collect(output)
    }

    /// The keyed state and timers of every key group of this subtask, one blob per group.
    pub(crate) fn snapshot(
        &self,
        range: KeyGroupRange,
        max_parallelism: u32,
    ) -> Result<OperatorSnapshot> {
        type Timers<'k, K> = (Vec<(i64, &'k K)>, Vec<(i64, &'k K)>);
        let mut timers: HashMap<u32, Timers<'_, K>> = HashMap::new();
        for (time, key) in self.timers.event.iter() {
            let g = key_group_for(key, max_parallelism).0;
            timers.entry(g).or_default().0.push((time, key));
        }
        for (time, key) in self.timers.processing.iter() {
            let g = key_group_for(key, max_parallelism).0;
            timers.entry(g).or_default().1.push((time, key));
        }
        let mut keyed = Vec::new();
        for group in range.iter() {
            let state = self.store.snapshot_group(group).map_err(state_error)?;
            let (event, processing) = timers.remove(&group.0).unwrap_or_default();
            let blob = postcard::to_allocvec(&(state, event, processing))
                .map_err(|e| Error::Internal(format!("cannot encode keyed state: {e}")))?;
            keyed.push((group.0, blob));
        }
        Ok(OperatorSnapshot {
            keyed,
            ..OperatorSnapshot::default()
        })
    }

    /// Restores what [`KeyedRuntime::snapshot`] wrote for the key groups of this subtask.
    pub(crate) fn restore(&mut self, restored: &RestoredState) -> Result<()> {
        for (group, bytes) in &restored.keyed {
            type Blob<K> = (Vec<u8>, Vec<(i64, K)>, Vec<(i64, K)>);
            let (state, event, processing): Blob<K> = postcard::from_bytes(bytes).map_err(|e| {
                Error::User(
                    format!("keyed state of key group {} is unreadable: {e}", group.0).into(),
                )
            })?;
            self.store
                .restore_group(*group, &state)
                .map_err(state_error)?;
            for (time, key) in event {
                self.timers.event.register(time, &key);
            }
            for (time, key) in processing {
                self.timers.processing.register(time, &key);
            }
        }
        Ok(())
    }

    /// The context of `key` for a record or timer stamped `timestamp`.
    pub(crate) fn context<'a>(
        &'a mut self,
        key: &'a K,
        timestamp: Option<EventTime>,
    ) -> KeyedContext<'a, K> {
        KeyedContext {
            key,
            hash: stable_hash(key),
            timestamp,
            watermark: self.watermark,
            clock: self.clock.as_ref(),
            store: &mut self.store,
            timers: &mut self.timers,
        }
    }
}

impl<K, I, O, P> KeyedProcessOperator<K, I, O, P>
where
    K: StateKey,
{
    /// Runs `function` on records keyed by `key_of`, for the key groups of `ctx`.
    pub fn new(ctx: &OperatorContext, key_of: KeySelector<I, K>, function: P) -> Self {
        KeyedProcessOperator {
            key_of,
            function,
            keyed: KeyedRuntime::new(ctx),
            unconsumed_side: ctx.counter(SIDE_OUTPUT_RECORDS_DROPPED),
            range: ctx.key_group_range,
            max_parallelism: ctx.max_parallelism,
            _types: PhantomData,
        }
    }
}

impl<K, I, O, P> KeyedProcessOperator<K, I, O, P>
where
    K: StateKey,
    I: Send + 'static,
    O: Send + 'static,
    P: KeyedProcessFunction<K, I, O>,
{
    fn fire(
        &mut self,
        domain: TimeDomain,
        up_to: i64,
        out: &mut Collector<'_, Records<O>>,
    ) -> Result<()> {
        let function = &mut self.function;
        self.keyed.fire_timers(
            domain,
            up_to,
            out,
            &self.unconsumed_side,
            |time, domain, ctx, emit| function.on_timer(time, domain, ctx, emit),
        )
    }
}

impl<K, I, O, P> Operator for KeyedProcessOperator<K, I, O, P>
where
    K: StateKey,
    I: Send + 'static,
    O: Send + 'static,
    P: KeyedProcessFunction<K, I, O>,
{
    type In = Records<I>;
    type Out = Records<O>;

    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        if let Some(restored) = &ctx.restored {
            self.keyed.restore(restored)?;
        }
        let mut open = OpenContext {
            store: &mut self.keyed.store,
            operator: ctx,
        };
        self.function.open(&mut open).map_err(Error::User)
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId) -> Result<OperatorSnapshot> {
        self.keyed.snapshot(self.range, self.max_parallelism)
    }

    fn on_data(&mut self, batch: Records<I>, out: &mut Collector<'_, Records<O>>) -> Result<()> {
        let function = &mut self.function;
        self.keyed.process_batch(
            batch,
            &self.key_of,
            out,
            &self.unconsumed_side,
            |value, ctx, emit| function.process_element(value, ctx, emit),
        )
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, Records<O>>,
    ) -> Result<()> {
        self.keyed.watermark = watermark;
        self.fire(TimeDomain::EventTime, watermark.0.millis(), out)?;
        out.emit_watermark(watermark)
    }

    fn on_processing_time(
        &mut self,
        now_ms: i64,
        out: &mut Collector<'_, Records<O>>,
    ) -> Result<()> {
        self.fire(TimeDomain::ProcessingTime, now_ms, out)
    }
}
