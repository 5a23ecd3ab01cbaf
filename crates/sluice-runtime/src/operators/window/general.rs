//! [`WindowOperator`]: the general window operator — any [`WindowAssigner`], any
//! [`Trigger`], incremental or buffered contents with evictors, allowed lateness with
//! late firings, and a side output for late records (Flink's `WindowOperator` and
//! `EvictingWindowOperator`).
//!
//! Per key it keeps the key's open windows, each with its contents and trigger state.
//! Timers are keyed by key and window; a timer of a window that no longer exists (merged
//! away or cleaned up) is ignored. A window's state is removed at its cleanup time: the
//! end of the window plus the allowed lateness in event time (never for the global
//! window), the end of the window in processing time. A record whose windows are all
//! past cleanup is late: it goes to the late-data side output if there is one, and is
//! counted either way. Results carry the window's last millisecond; results of the
//! global window carry the time of the record or timer that fired them.

use std::hash::Hash;

use sluice_core::{stable_hash, Clock, EventTime, Records, Watermark};
use sluice_state::KeyedTable;

use super::function::{WindowContents, WindowContext};
use super::trigger::{TimerRequest, Trigger, TriggerContext, TriggerResult};
use super::{TimeWindow, WindowAssigner};
use crate::error::{Error, Result};
use crate::metrics::{Counter, LATE_RECORDS_DROPPED, LATE_RECORDS_SIDE_OUTPUT};
use crate::operator::side_output::OutputTag;
use crate::operator::{Collector, Operator, OperatorContext};
use crate::operators::timers::TimerQueue;
use crate::operators::{KeySelector, TimeDomain};

/// One open window of a key.
struct Entry<S, TS> {
    window: TimeWindow,
    contents: S,
    /// Records added since the contents were last purged (nothing to emit at 0).
    count: u64,
    trigger: TS,
}

/// Settings of a [`WindowOperator`] besides its functions.
#[derive(Debug, Clone)]
pub struct WindowSettings<T> {
    /// How records are cut into windows.
    pub assigner: WindowAssigner,
    /// How long (ms) after a window's end late records still update it.
    pub allowed_lateness_ms: i64,
    /// Where late records go; counted and dropped without one.
    pub late_tag: Option<OutputTag<T>>,
}

type Windows<C, K, T, TS> = Vec<Entry<<C as WindowContents<K, T>>::State, TS>>;

/// The general window operator (see the module docs).
pub struct WindowOperator<K, T, TR: Trigger<T>, C: WindowContents<K, T>> {
    key_of: KeySelector<T, K>,
    settings: WindowSettings<T>,
    trigger: TR,
    contents: C,
    state: KeyedTable<K, Windows<C, K, T, TR::State>>,
    event_timers: TimerQueue<(K, TimeWindow)>,
    processing_timers: TimerQueue<(K, TimeWindow)>,
    watermark: i64,
    clock: std::sync::Arc<dyn Clock>,
    late_dropped: Counter,
    late_side: Counter,
    operator: String,
    assigned: Vec<TimeWindow>,
    requests: Vec<TimerRequest>,
}

impl<K, T, TR, C> WindowOperator<K, T, TR, C>
where
    K: Hash + Eq + Clone + Send + 'static,
    T: Send + 'static,
    TR: Trigger<T>,
    C: WindowContents<K, T>,
{
    /// Windows of records keyed by `key_of`, cut by `settings`, fired by `trigger`, kept
    /// and emitted by `contents`.
    pub fn new(
        ctx: &OperatorContext,
        key_of: KeySelector<T, K>,
        settings: WindowSettings<T>,
        trigger: TR,
        contents: C,
    ) -> Self {
        WindowOperator {
            key_of,
            settings,
            trigger,
            contents,
            state: KeyedTable::new(ctx.key_group_range, ctx.max_parallelism),
            event_timers: TimerQueue::default(),
            processing_timers: TimerQueue::default(),
            watermark: i64::MIN,
            clock: std::sync::Arc::clone(&ctx.clock),
            late_dropped: ctx.counter(LATE_RECORDS_DROPPED),
            late_side: ctx.counter(LATE_RECORDS_SIDE_OUTPUT),
            operator: ctx.location.operator.clone(),
            assigned: Vec::new(),
            requests: Vec::new(),
        }
    }

    /// When the state of `window` is removed, in the assigner's time domain; `None` for
    /// the global window, which is never cleaned up.
    fn cleanup_time(&self, window: &TimeWindow) -> Option<i64> {
        if *window == TimeWindow::GLOBAL {
            return None;
        }
        if self.settings.assigner.is_event_time() {
            Some(
                window
                    .max_timestamp()
                    .saturating_add(self.settings.allowed_lateness_ms),
            )
        } else {
            Some(window.max_timestamp())
        }
    }

    /// Whether `window` is past its cleanup time in event time.
    fn is_window_late(&self, window: &TimeWindow) -> bool {
        self.settings.assigner.is_event_time()
            && self
                .cleanup_time(window)
                .is_some_and(|t| t <= self.watermark)
    }

    fn timers(&mut self, domain: TimeDomain) -> &mut TimerQueue<(K, TimeWindow)> {
        match domain {
            TimeDomain::EventTime => &mut self.event_timers,
            TimeDomain::ProcessingTime => &mut self.processing_timers,
        }
    }

    /// Applies the timer requests a trigger made for `key` and `window`.
    fn apply_requests(&mut self, key: &K, window: TimeWindow) {
        let requests = std::mem::take(&mut self.requests);
        for request in &requests {
            let target = (key.clone(), window);
            match *request {
                TimerRequest::Register(domain, time) => self.timers(domain).register(time, &target),
                TimerRequest::Delete(domain, time) => self.timers(domain).delete(time, &target),
            }
        }
        self.requests = requests;
        self.requests.clear();
    }

    /// The time results of `window` carry when fired at `time`.
    fn result_time(window: &TimeWindow, time: i64) -> i64 {
        if *window == TimeWindow::GLOBAL {
            time
        } else {
            window.max_timestamp()
        }
    }

    /// Emits `entry`'s results into `output`, then purges it if asked.
    fn act(
        &self,
        key: &K,
        entry: &mut Entry<C::State, TR::State>,
        result: TriggerResult,
        time: i64,
        output: &mut Records<C::Out>,
        scratch: &mut Vec<C::Out>,
    ) -> Result<()> {
        if result.is_fire() && entry.count > 0 {
            let ctx = WindowContext::new(entry.window, self.watermark, self.clock.now_ms());
            self.contents
                .emit(key, &ctx, &mut entry.contents, scratch)
                .map_err(Error::User)?;
            let stamp = EventTime(Self::result_time(&entry.window, time));
            for r in scratch.drain(..) {
                output.push(r, Some(stamp));
            }
        }
        if result.is_purge() {
            entry.contents = self.contents.create();
            entry.count = 0;
        }
        Ok(())
    }

    /// Merges the key's windows overlapping `window` into one and returns the merged
    /// window, or `None` if the merged window would be late (the record is then late).
    fn merge_sessions(&mut self, key: &K, hash: u64, window: TimeWindow) -> Option<TimeWindow> {
        let mut merged = window;
        if let Some(entries) = self.state.get(key, hash) {
            // A merge can bridge windows that an earlier one in the list did not reach:
            // repeat until nothing grows.
            loop {
                let before = merged;
                for e in entries {
                    if e.window.start < merged.end && merged.start < e.window.end {
                        merged = TimeWindow {
                            start: merged.start.min(e.window.start),
                            end: merged.end.max(e.window.end),
                        };
                    }
                }
                if before == merged {
                    break;
                }
            }
        }
        if self.is_window_late(&merged) {
            return None;
        }
        let entries = self.state.get_or_insert_with(key, hash, Vec::new);
        let mut absorbed: Option<Entry<C::State, TR::State>> = None;
        let mut i = 0;
        while i < entries.len() {
            let w = entries[i].window;
            if w.start < merged.end && merged.start < w.end {
                let e = entries.swap_remove(i);
                absorbed = Some(match absorbed {
                    None => e,
                    Some(a) => Entry {
                        window: merged,
                        contents: self.contents.merge(a.contents, e.contents),
                        count: a.count + e.count,
                        trigger: self.trigger.merge_state(a.trigger, e.trigger),
                    },
                });
            } else {
                i += 1;
            }
        }
        if let Some(mut entry) = absorbed {
            let was = entry.window;
            entry.window = merged;
            if was != merged {
                let mut ctx =
                    TriggerContext::new(self.watermark, self.clock.now_ms(), &mut self.requests);
                self.trigger.on_merge(&merged, &mut entry.trigger, &mut ctx);
            }
            entries.push(entry);
            self.apply_requests(key, merged);
        }
        Some(merged)
    }

    fn on_record(
        &mut self,
        value: T,
        timestamp: Option<EventTime>,
        output: &mut Records<C::Out>,
        scratch: &mut Vec<C::Out>,
        out: &mut Collector<'_, Records<C::Out>>,
    ) -> Result<()>
    where
        T: Clone,
    {
        let now = self.clock.now_ms();
        let ts = match timestamp {
            Some(t) => t.millis(),
            None if self.settings.assigner.is_event_time() => {
                return Err(Error::User(
                    format!(
                        "`{}` windows by event time, but its records have no timestamps; call `assign_timestamps_and_watermarks` upstream",
                        self.operator
                    )
                    .into(),
                ))
            }
            None => now,
        };
        let key = match &self.key_of {
            KeySelector::Owned(f) => f(&value),
            KeySelector::Borrowed(f) => f(&value).clone(),
        };
        let hash = stable_hash(&key);
        let mut assigned = std::mem::take(&mut self.assigned);
        assigned.clear();
        self.settings.assigner.assign(ts, now, &mut assigned);
        if self.settings.assigner.is_merging() {
            let merged = assigned
                .first()
                .copied()
                .and_then(|w| self.merge_sessions(&key, hash, w));
            assigned.clear();
            assigned.extend(merged);
        }
        let mut accepted = false;
        let mut value = Some(value);
        let count = assigned.len();
        for (i, window) in assigned.iter().copied().enumerate() {
            if self.is_window_late(&window) {
                continue;
            }
            accepted = true;
            let Some(v) = (if i + 1 == count {
                value.take()
            } else {
                value.clone()
            }) else {
                break;
            };
            let mut requests = std::mem::take(&mut self.requests);
            let entries = self.state.get_or_insert_with(&key, hash, Vec::new);
            let index = match entries.iter().position(|e| e.window == window) {
                Some(index) => index,
                None => {
                    entries.push(Entry {
                        window,
                        contents: self.contents.create(),
                        count: 0,
                        trigger: TR::State::default(),
                    });
                    entries.len() - 1
                }
            };
            let entry = &mut entries[index];
            let mut ctx = TriggerContext::new(self.watermark, now, &mut requests);
            let result = self
                .trigger
                .on_element(&v, ts, &window, &mut entry.trigger, &mut ctx);
            self.contents.add(&mut entry.contents, v, ts);
            entry.count += 1;
            self.requests = requests;
            // Borrow the entry again after the trigger's timer requests are applied.
            self.apply_requests(&key, window);
            if let Some(cleanup) = self.cleanup_time(&window) {
                let domain = if self.settings.assigner.is_event_time() {
                    TimeDomain::EventTime
                } else {
                    TimeDomain::ProcessingTime
                };
                self.timers(domain)
                    .register(cleanup, &(key.clone(), window));
            }
            if result != TriggerResult::Continue {
                let mut entries = self.state.get_mut(&key, hash).map(std::mem::take);
                if let Some(list) = entries.as_mut() {
                    if let Some(entry) = list.iter_mut().find(|e| e.window == window) {
                        self.act(&key, entry, result, ts, output, scratch)?;
                    }
                }
                if let (Some(list), Some(slot)) = (entries, self.state.get_mut(&key, hash)) {
                    *slot = list;
                }
            }
        }
        self.assigned = assigned;
        // Only event-time windows can all be past cleanup; then the record is late.
        if let (false, Some(v)) = (accepted, value) {
            match self
                .settings
                .late_tag
                .as_ref()
                .and_then(|tag| out.side_output(tag))
            {
                Some(side) => {
                    side.push(v, Some(EventTime(ts)));
                    self.late_side.inc();
                }
                None => self.late_dropped.inc(),
            }
        }
        Ok(())
    }

    /// Fires the timers of `domain` due at `up_to`.
    fn fire_timers(
        &mut self,
        domain: TimeDomain,
        up_to: i64,
        output: &mut Records<C::Out>,
    ) -> Result<()> {
        let mut scratch = Vec::new();
        while let Some((time, (key, window))) = self.timers(domain).pop_due(up_to) {
            let hash = stable_hash(&key);
            let Some(mut entries) = self.state.get_mut(&key, hash).map(std::mem::take) else {
                continue;
            };
            if let Some(index) = entries.iter().position(|e| e.window == window) {
                let now = self.clock.now_ms();
                let mut requests = std::mem::take(&mut self.requests);
                let mut ctx = TriggerContext::new(self.watermark, now, &mut requests);
                let entry = &mut entries[index];
                let result = match domain {
                    TimeDomain::EventTime => {
                        self.trigger
                            .on_event_time(time, &window, &mut entry.trigger, &mut ctx)
                    }
                    TimeDomain::ProcessingTime => {
                        self.trigger
                            .on_processing_time(time, &window, &mut entry.trigger, &mut ctx)
                    }
                };
                self.act(&key, entry, result, time, output, &mut scratch)?;
                let cleanup_domain = if self.settings.assigner.is_event_time() {
                    TimeDomain::EventTime
                } else {
                    TimeDomain::ProcessingTime
                };
                if domain == cleanup_domain && self.cleanup_time(&window) == Some(time) {
                    let mut entry = entries.swap_remove(index);
                    self.trigger.clear(&window, &mut entry.trigger, &mut ctx);
                }
                self.requests = requests;
                self.apply_requests(&key, window);
            }
            if entries.is_empty() {
                self.state.remove(&key, hash);
            } else if let Some(slot) = self.state.get_mut(&key, hash) {
                *slot = entries;
            }
        }
        Ok(())
    }
}

impl<K, T, TR, C> Operator for WindowOperator<K, T, TR, C>
where
    K: Hash + Eq + Clone + Send + 'static,
    T: Clone + Send + 'static,
    TR: Trigger<T>,
    C: WindowContents<K, T>,
{
    type In = Records<T>;
    type Out = Records<C::Out>;

    fn on_data(&mut self, batch: Records<T>, out: &mut Collector<'_, Self::Out>) -> Result<()> {
        let mut output = Records::new();
        let mut scratch = Vec::new();
        for (value, timestamp) in batch.into_iter_timed() {
            self.on_record(value, timestamp, &mut output, &mut scratch, out)?;
        }
        out.collect(output)
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, Self::Out>,
    ) -> Result<()> {
        self.watermark = watermark.0.millis();
        let mut output = Records::new();
        self.fire_timers(TimeDomain::EventTime, self.watermark, &mut output)?;
        out.collect(output)?;
        out.emit_watermark(watermark)
    }

    fn on_processing_time(
        &mut self,
        now_ms: i64,
        out: &mut Collector<'_, Self::Out>,
    ) -> Result<()> {
        let mut output = Records::new();
        self.fire_timers(TimeDomain::ProcessingTime, now_ms, &mut output)?;
        out.collect(output)
    }
}
