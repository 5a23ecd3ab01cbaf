//! [`Trigger`]s: when a window's contents are emitted (fired) and when they are dropped
//! (purged), as in Flink.
//!
//! A trigger sees every record added to a window and the timers it registered, and keeps
//! a small per-key-and-window state of its own (a count, the last record that fired). It
//! asks for timers through the [`TriggerContext`]; the window operator keys them by key
//! and window. Built-in: [`EventTimeTrigger`], [`ProcessingTimeTrigger`], [`CountTrigger`],
//! [`DeltaTrigger`], [`PurgingTrigger`], and [`DefaultTrigger`] (the assigner's own).

use std::marker::PhantomData;

use sluice_state::StateData;

use super::{TimeWindow, WindowAssigner};
use crate::operators::TimeDomain;

/// What a trigger decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerResult {
    /// Nothing happens.
    Continue,
    /// Emit the window's result; keep its contents.
    Fire,
    /// Drop the window's contents without emitting.
    Purge,
    /// Emit, then drop the contents.
    FireAndPurge,
}

impl TriggerResult {
    /// Whether the window emits.
    pub fn is_fire(self) -> bool {
        matches!(self, TriggerResult::Fire | TriggerResult::FireAndPurge)
    }

    /// Whether the window's contents are dropped.
    pub fn is_purge(self) -> bool {
        matches!(self, TriggerResult::Purge | TriggerResult::FireAndPurge)
    }
}

/// A timer a trigger asked for or cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerRequest {
    Register(TimeDomain, i64),
    Delete(TimeDomain, i64),
}

/// What a trigger can see and do: time, and timers of the current key and window.
pub struct TriggerContext<'a> {
    watermark: i64,
    now_ms: i64,
    requests: &'a mut Vec<TimerRequest>,
}

impl<'a> TriggerContext<'a> {
    pub(crate) fn new(watermark: i64, now_ms: i64, requests: &'a mut Vec<TimerRequest>) -> Self {
        TriggerContext {
            watermark,
            now_ms,
            requests,
        }
    }

    /// The operator's current watermark (ms; `i64::MIN` before the first).
    pub fn current_watermark(&self) -> i64 {
        self.watermark
    }

    /// The job clock's current time (ms since the Unix epoch).
    pub fn current_processing_time(&self) -> i64 {
        self.now_ms
    }

    /// Calls [`Trigger::on_event_time`] for this key and window when the watermark
    /// reaches `time`.
    pub fn register_event_time_timer(&mut self, time: i64) {
        self.requests
            .push(TimerRequest::Register(TimeDomain::EventTime, time));
    }

    /// Cancels an event-time timer of this key and window.
    pub fn delete_event_time_timer(&mut self, time: i64) {
        self.requests
            .push(TimerRequest::Delete(TimeDomain::EventTime, time));
    }

    /// Calls [`Trigger::on_processing_time`] for this key and window when the job clock
    /// reaches `time`.
    pub fn register_processing_time_timer(&mut self, time: i64) {
        self.requests
            .push(TimerRequest::Register(TimeDomain::ProcessingTime, time));
    }

    /// Cancels a processing-time timer of this key and window.
    pub fn delete_processing_time_timer(&mut self, time: i64) {
        self.requests
            .push(TimerRequest::Delete(TimeDomain::ProcessingTime, time));
    }
}

/// Decides when a window fires and purges (Flink's `Trigger`).
pub trait Trigger<T>: Send + Sync + 'static {
    /// Per key and window state of the trigger (written to checkpoints).
    type State: Default + StateData;

    /// A record was added to `window` (called before the record is added, so that the
    /// trigger may look at it; a fire includes it).
    fn on_element(
        &self,
        value: &T,
        timestamp: i64,
        window: &TimeWindow,
        state: &mut Self::State,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult;

    /// An event-time timer of `window` fired at `time`. Default: continue.
    fn on_event_time(
        &self,
        time: i64,
        window: &TimeWindow,
        state: &mut Self::State,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        let _ = (time, window, state, ctx);
        TriggerResult::Continue
    }

    /// A processing-time timer of `window` fired at `time`. Default: continue.
    fn on_processing_time(
        &self,
        time: i64,
        window: &TimeWindow,
        state: &mut Self::State,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        let _ = (time, window, state, ctx);
        TriggerResult::Continue
    }

    /// The states of two windows that merge (sessions). Default: keeps `a`.
    fn merge_state(&self, a: Self::State, b: Self::State) -> Self::State {
        let _ = b;
        a
    }

    /// Windows merged into `window`, whose state is the merged state: register the timers
    /// the merged window needs. Default: nothing.
    fn on_merge(&self, window: &TimeWindow, state: &mut Self::State, ctx: &mut TriggerContext<'_>) {
        let _ = (window, state, ctx);
    }

    /// `window` is removed: cancel its timers. Default: nothing (a timer of a removed
    /// window is ignored when it fires).
    fn clear(&self, window: &TimeWindow, state: &mut Self::State, ctx: &mut TriggerContext<'_>) {
        let _ = (window, state, ctx);
    }

    /// Whether this is the assigner's default trigger (lets the runtime use its faster
    /// specialised window operators).
    fn is_default(&self) -> bool {
        false
    }
}

/// Fires a window once the watermark passes its end, and again for every late record
/// added within the allowed lateness (Flink's `EventTimeTrigger`).
#[derive(Debug, Clone, Copy, Default)]
pub struct EventTimeTrigger;

impl<T> Trigger<T> for EventTimeTrigger {
    type State = ();

    fn on_element(
        &self,
        _value: &T,
        _timestamp: i64,
        window: &TimeWindow,
        _state: &mut (),
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        if window.max_timestamp() <= ctx.current_watermark() {
            // A late record within the allowed lateness: fire the update at once.
            TriggerResult::Fire
        } else {
            ctx.register_event_time_timer(window.max_timestamp());
            TriggerResult::Continue
        }
    }

    fn on_event_time(
        &self,
        time: i64,
        window: &TimeWindow,
        _state: &mut (),
        _ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        if time == window.max_timestamp() {
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        }
    }

    fn on_merge(&self, window: &TimeWindow, _state: &mut (), ctx: &mut TriggerContext<'_>) {
        if window.max_timestamp() > ctx.current_watermark() {
            ctx.register_event_time_timer(window.max_timestamp());
        }
    }

    fn clear(&self, window: &TimeWindow, _state: &mut (), ctx: &mut TriggerContext<'_>) {
        ctx.delete_event_time_timer(window.max_timestamp());
    }
}

/// Fires a window when the job clock passes its end (Flink's `ProcessingTimeTrigger`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessingTimeTrigger;

impl<T> Trigger<T> for ProcessingTimeTrigger {
    type State = ();

    fn on_element(
        &self,
        _value: &T,
        _timestamp: i64,
        window: &TimeWindow,
        _state: &mut (),
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        ctx.register_processing_time_timer(window.max_timestamp());
        TriggerResult::Continue
    }

    fn on_processing_time(
        &self,
        _time: i64,
        _window: &TimeWindow,
        _state: &mut (),
        _ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        TriggerResult::Fire
    }

    fn on_merge(&self, window: &TimeWindow, _state: &mut (), ctx: &mut TriggerContext<'_>) {
        ctx.register_processing_time_timer(window.max_timestamp());
    }

    fn clear(&self, window: &TimeWindow, _state: &mut (), ctx: &mut TriggerContext<'_>) {
        ctx.delete_processing_time_timer(window.max_timestamp());
    }
}

/// Fires every `count` records of a window (Flink's `CountTrigger`).
#[derive(Debug, Clone, Copy)]
pub struct CountTrigger {
    count: u64,
}

impl CountTrigger {
    /// Fires after every `count` records (at least 1).
    pub fn of(count: u64) -> Self {
        CountTrigger {
            count: count.max(1),
        }
    }
}

impl<T> Trigger<T> for CountTrigger {
    type State = u64;

    fn on_element(
        &self,
        _value: &T,
        _timestamp: i64,
        _window: &TimeWindow,
        seen: &mut u64,
        _ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        *seen += 1;
        if *seen >= self.count {
            *seen = 0;
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        }
    }

    fn merge_state(&self, a: u64, b: u64) -> u64 {
        a + b
    }
}

/// Turns every fire of the wrapped trigger into fire-and-purge (Flink's
/// `PurgingTrigger`), so each result covers only the records since the last one.
#[derive(Debug, Clone, Copy)]
pub struct PurgingTrigger<TR> {
    inner: TR,
}

impl<TR> PurgingTrigger<TR> {
    /// Purges whenever `inner` fires.
    pub fn of(inner: TR) -> Self {
        PurgingTrigger { inner }
    }
}

fn purging(result: TriggerResult) -> TriggerResult {
    if result.is_fire() {
        TriggerResult::FireAndPurge
    } else {
        result
    }
}

impl<T, TR: Trigger<T>> Trigger<T> for PurgingTrigger<TR> {
    type State = TR::State;

    fn on_element(
        &self,
        value: &T,
        timestamp: i64,
        window: &TimeWindow,
        state: &mut TR::State,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        purging(self.inner.on_element(value, timestamp, window, state, ctx))
    }

    fn on_event_time(
        &self,
        time: i64,
        window: &TimeWindow,
        state: &mut TR::State,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        purging(self.inner.on_event_time(time, window, state, ctx))
    }

    fn on_processing_time(
        &self,
        time: i64,
        window: &TimeWindow,
        state: &mut TR::State,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        purging(self.inner.on_processing_time(time, window, state, ctx))
    }

    fn merge_state(&self, a: TR::State, b: TR::State) -> TR::State {
        self.inner.merge_state(a, b)
    }

    fn on_merge(&self, window: &TimeWindow, state: &mut TR::State, ctx: &mut TriggerContext<'_>) {
        self.inner.on_merge(window, state, ctx);
    }

    fn clear(&self, window: &TimeWindow, state: &mut TR::State, ctx: &mut TriggerContext<'_>) {
        self.inner.clear(window, state, ctx);
    }
}

/// Fires when `delta(last fired record, record)` exceeds `threshold` (Flink's
/// `DeltaTrigger`); the first record of a window only becomes the reference.
pub struct DeltaTrigger<T, F> {
    threshold: f64,
    delta: F,
    _records: PhantomData<fn(&T)>,
}

impl<T, F> DeltaTrigger<T, F>
where
    F: Fn(&T, &T) -> f64 + Send + Sync + 'static,
{
    /// Fires when `delta(reference, record) > threshold`; the record that fired becomes
    /// the new reference.
    pub fn of(threshold: f64, delta: F) -> Self {
        DeltaTrigger {
            threshold,
            delta,
            _records: PhantomData,
        }
    }
}

impl<T, F: Clone> Clone for DeltaTrigger<T, F> {
    fn clone(&self) -> Self {
        DeltaTrigger {
            threshold: self.threshold,
            delta: self.delta.clone(),
            _records: PhantomData,
        }
    }
}

impl<T, F> Trigger<T> for DeltaTrigger<T, F>
where
    T: Clone + StateData,
    F: Fn(&T, &T) -> f64 + Send + Sync + 'static,
{
    type State = Option<T>;

    fn on_element(
        &self,
        value: &T,
        _timestamp: i64,
        _window: &TimeWindow,
        last: &mut Option<T>,
        _ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        match last {
            None => {
                *last = Some(value.clone());
                TriggerResult::Continue
            }
            Some(reference) if (self.delta)(reference, value) > self.threshold => {
                *last = Some(value.clone());
                TriggerResult::Fire
            }
            Some(_) => TriggerResult::Continue,
        }
    }
}

/// The trigger an assigner comes with: event time for event-time windows, processing
/// time for processing-time windows, never for the global window.
#[derive(Debug, Clone, Copy)]
pub struct DefaultTrigger {
    domain: Option<TimeDomain>,
}

impl DefaultTrigger {
    /// The default trigger of `assigner`.
    pub fn for_assigner(assigner: &WindowAssigner) -> Self {
        let domain = if assigner.is_event_time() {
            Some(TimeDomain::EventTime)
        } else if assigner.is_processing_time() {
            Some(TimeDomain::ProcessingTime)
        } else {
            None
        };
        DefaultTrigger { domain }
    }
}

impl DefaultTrigger {
    /// The time trigger this default stands for (none for the global window).
    fn inner<T: 'static>(&self) -> Option<&'static dyn Trigger<T, State = ()>> {
        match self.domain {
            Some(TimeDomain::EventTime) => Some(&EventTimeTrigger),
            Some(TimeDomain::ProcessingTime) => Some(&ProcessingTimeTrigger),
            None => None,
        }
    }
}

impl<T: 'static> Trigger<T> for DefaultTrigger {
    type State = ();

    fn on_element(
        &self,
        value: &T,
        timestamp: i64,
        window: &TimeWindow,
        state: &mut (),
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        self.inner::<T>().map_or(TriggerResult::Continue, |t| {
            t.on_element(value, timestamp, window, state, ctx)
        })
    }

    fn on_event_time(
        &self,
        time: i64,
        window: &TimeWindow,
        state: &mut (),
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        self.inner::<T>().map_or(TriggerResult::Continue, |t| {
            t.on_event_time(time, window, state, ctx)
        })
    }

    fn on_processing_time(
        &self,
        time: i64,
        window: &TimeWindow,
        state: &mut (),
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        self.inner::<T>().map_or(TriggerResult::Continue, |t| {
            t.on_processing_time(time, window, state, ctx)
        })
    }

    fn on_merge(&self, window: &TimeWindow, state: &mut (), ctx: &mut TriggerContext<'_>) {
        if let Some(t) = self.inner::<T>() {
            t.on_merge(window, state, ctx);
        }
    }

    fn clear(&self, window: &TimeWindow, state: &mut (), ctx: &mut TriggerContext<'_>) {
        if let Some(t) = self.inner::<T>() {
            t.clear(window, state, ctx);
        }
    }

    fn is_default(&self) -> bool {
        true
    }
}
