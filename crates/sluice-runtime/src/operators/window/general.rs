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

use std::collections::BTreeMap;
use std::hash::Hash;

use sluice_core::{stable_hash, CheckpointId, Clock, EventTime, Records, Watermark};
use sluice_state::{KeyedTable, StateKey};

use super::function::{WindowContents, WindowContext};
use super::trigger::{TimerRequest, Trigger, TriggerContext, TriggerResult};
use super::{TimeWindow, WindowAssigner};
use crate::checkpoint::{restore_table, snapshot_table, OperatorSnapshot};
use crate::error::{Error, Result};
use crate::metrics::{Counter, LATE_RECORDS_DROPPED, LATE_RECORDS_SIDE_OUTPUT};
use crate::operator::side_output::OutputTag;
use crate::operator::{Collector, Operator, OperatorContext};
use crate::operators::{KeySelector, TimeDomain};

/// One open window of a key.
#[derive(serde::Serialize, serde::Deserialize)]
struct Entry<S, TS> {
    window: TimeWindow,
    contents: S,
    /// Records added since the contents were last purged (nothing to emit at 0).
    count: u64,
    trigger: TS,
    /// Timers registered for this window (usually one or two): a trigger that asks for
    /// the same timer on every record costs a look here, not in the timer queues.
    timers: Vec<(TimeDomain, i64)>,
}

impl<S, TS> Entry<S, TS> {
    fn new(window: TimeWindow, contents: S, trigger: TS) -> Self {
        Entry {
            window,
            contents,
            count: 0,
            trigger,
            timers: Vec::new(),
        }
    }
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

/// Timers by time, with the (key, window) each is for. Duplicates and deletions are
/// settled by each window's own timer list: a timer fires only if its window still lists
/// it, so the queue needs no lookup structure (deleting is lazy).
struct TimerQueue<K> {
    by_time: BTreeMap<i64, Vec<(K, TimeWindow)>>,
}

impl<K> Default for TimerQueue<K> {
    fn default() -> Self {
        TimerQueue {
            by_time: BTreeMap::new(),
        }
    }
}

impl<K> TimerQueue<K> {
    fn register(&mut self, time: i64, key: K, window: TimeWindow) {
        self.by_time.entry(time).or_default().push((key, window));
    }

    /// The earliest time at or before `up_to`, with every timer registered for it.
    fn pop_due(&mut self, up_to: i64) -> Option<(i64, Vec<(K, TimeWindow)>)> {
        let entry = self.by_time.first_entry()?;
        if *entry.key() > up_to {
            return None;
        }
        Some(entry.remove_entry())
    }
}

/// The event-time and processing-time timers of all windows, by key and window.
struct WindowTimers<K> {
    event: TimerQueue<K>,
    processing: TimerQueue<K>,
}

impl<K: Hash + Eq + Clone> WindowTimers<K> {
    fn queue(&mut self, domain: TimeDomain) -> &mut TimerQueue<K> {
        match domain {
            TimeDomain::EventTime => &mut self.event,
            TimeDomain::ProcessingTime => &mut self.processing,
        }
    }

    /// Applies a trigger's timer requests for `key`'s window `window`, whose registered
    /// timers are `registered`.
    fn apply(
        &mut self,
        requests: &mut Vec<TimerRequest>,
        registered: &mut Vec<(TimeDomain, i64)>,
        key: &K,
        window: TimeWindow,
    ) {
        for request in requests.drain(..) {
            match request {
                TimerRequest::Register(domain, time) => {
                    if !registered.contains(&(domain, time)) {
                        registered.push((domain, time));
                        self.queue(domain).register(time, key.clone(), window);
                    }
                }
                TimerRequest::Delete(domain, time) => {
                    // Lazily: the queued timer finds itself no longer listed and does nothing.
                    if let Some(i) = registered.iter().position(|r| *r == (domain, time)) {
                        registered.swap_remove(i);
                    }
                }
            }
        }
    }
}

/// The time results of `window` carry when fired at `time`.
fn result_time(window: &TimeWindow, time: i64) -> i64 {
    if *window == TimeWindow::GLOBAL {
        time
    } else {
        window.max_timestamp()
    }
}

/// Emits `entry`'s results into `output` if `result` fires, then purges it if asked.
#[allow(clippy::too_many_arguments)]
fn act<K, T, C: WindowContents<K, T>, TS>(
    contents: &C,
    key: &K,
    entry: &mut Entry<C::State, TS>,
    result: TriggerResult,
    time: i64,
    ctx: WindowContext,
    output: &mut Records<C::Out>,
    scratch: &mut Vec<C::Out>,
) -> Result<()> {
    if result.is_fire() && entry.count > 0 {
        contents
            .emit(key, &ctx, &mut entry.contents, scratch)
            .map_err(Error::User)?;
        let stamp = EventTime(result_time(&entry.window, time));
        for r in scratch.drain(..) {
            output.push(r, Some(stamp));
        }
    }
    if result.is_purge() {
        entry.contents = contents.create();
        entry.count = 0;
    }
    Ok(())
}

/// The general window operator (see the module docs).
pub struct WindowOperator<K, T, TR: Trigger<T>, C: WindowContents<K, T>> {
    key_of: KeySelector<T, K>,
    settings: WindowSettings<T>,
    trigger: TR,
    contents: C,
    state: KeyedTable<K, Windows<C, K, T, TR::State>>,
    timers: WindowTimers<K>,
    watermark: i64,
    clock: std::sync::Arc<dyn Clock>,
    late_dropped: Counter,
    late_side: Counter,
    operator: String,
    assigned: Vec<TimeWindow>,
    requests: Vec<TimerRequest>,
    hashes: Vec<u64>,
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
            timers: WindowTimers {
                event: TimerQueue::default(),
                processing: TimerQueue::default(),
            },
            watermark: i64::MIN,
            clock: std::sync::Arc::clone(&ctx.clock),
            late_dropped: ctx.counter(LATE_RECORDS_DROPPED),
            late_side: ctx.counter(LATE_RECORDS_SIDE_OUTPUT),
            operator: ctx.location.operator.clone(),
            assigned: Vec::new(),
            requests: Vec::new(),
            hashes: Vec::new(),
        }
    }

    /// The domain of the assigner's windows (and of their cleanup timers).
    fn domain(&self) -> TimeDomain {
        if self.settings.assigner.is_event_time() {
            TimeDomain::EventTime
        } else {
            TimeDomain::ProcessingTime
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

    /// Merges the key's windows overlapping `window` into one and returns the merged
    /// window, or `None` if the merged window would be late (the record is then late).
    fn merge_sessions(
        &mut self,
        key: &K,
        hash: u64,
        window: TimeWindow,
        now: i64,
    ) -> Option<TimeWindow> {
        let mut merged = window;
        if let Some(entries) = self.state.get(key, hash) {
            // A merge can bridge windows that an earlier one in the list did not reach:
            // repeat until nothing grows.
            loop {
                let before = merged;
                for e in entries {
                    if e.window.start <= merged.end && merged.start <= e.window.end {
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
        let cleanup = self.cleanup_time(&merged);
        let domain = self.domain();
        let entries = self.state.get_or_insert_with(key, hash, Vec::new);
        let mut absorbed: Option<Entry<C::State, TR::State>> = None;
        let mut absorbed_count = 0;
        let mut i = 0;
        while i < entries.len() {
            let w = entries[i].window;
            if w.start <= merged.end && merged.start <= w.end {
                let e = entries.swap_remove(i);
                absorbed_count += 1;
                absorbed = Some(match absorbed {
                    None => e,
                    Some(a) => Entry {
                        window: merged,
                        contents: self.contents.merge(a.contents, e.contents),
                        count: a.count + e.count,
                        trigger: self.trigger.merge_state(a.trigger, e.trigger),
                        timers: Vec::new(),
                    },
                });
            } else {
                i += 1;
            }
        }
        if let Some(mut entry) = absorbed {
            // Unchanged only when one session absorbed the record without growing.
            if absorbed_count > 1 || entry.window != merged {
                // The merged window is a new window: the old windows' timers are left to
                // fire for windows that no longer exist (and do nothing).
                entry.window = merged;
                entry.timers.clear();
                let mut ctx = TriggerContext::new(self.watermark, now, &mut self.requests);
                self.trigger.on_merge(&merged, &mut entry.trigger, &mut ctx);
                if let Some(t) = cleanup {
                    self.requests.push(TimerRequest::Register(domain, t));
                }
                self.timers
                    .apply(&mut self.requests, &mut entry.timers, key, merged);
            }
            entries.push(entry);
        }
        Some(merged)
    }

    #[allow(clippy::too_many_arguments)]
    fn on_record(
        &mut self,
        value: T,
        timestamp: Option<EventTime>,
        hash: u64,
        now: i64,
        output: &mut Records<C::Out>,
        scratch: &mut Vec<C::Out>,
        out: &mut Collector<'_, Records<C::Out>>,
    ) -> Result<()>
    where
        T: Clone,
    {
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
        let key = self.key_of.owned_key(&value);
        let mut assigned = std::mem::take(&mut self.assigned);
        assigned.clear();
        self.settings.assigner.assign(ts, now, &mut assigned);
        if self.settings.assigner.is_merging() {
            let merged = assigned
                .first()
                .copied()
                .and_then(|w| self.merge_sessions(&key, hash, w, now));
            assigned.clear();
            assigned.extend(merged);
        }
        let domain = self.domain();
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
            let cleanup = self.cleanup_time(&window);
            let ctx = WindowContext::new(window, self.watermark, now);
            let WindowOperator {
                state,
                contents,
                trigger,
                timers,
                requests,
                watermark,
                ..
            } = self;
            let entries = state.get_or_insert_with(&key, hash, Vec::new);
            let index = match entries.iter().position(|e| e.window == window) {
                Some(index) => index,
                None => {
                    entries.push(Entry::new(window, contents.create(), TR::State::default()));
                    // A window's cleanup time is fixed: register it when the window appears.
                    if let Some(t) = cleanup {
                        requests.push(TimerRequest::Register(domain, t));
                    }
                    entries.len() - 1
                }
            };
            let entry = &mut entries[index];
            let mut tctx = TriggerContext::new(*watermark, now, requests);
            let result = trigger.on_element(&v, ts, &window, &mut entry.trigger, &mut tctx);
            contents.add(&mut entry.contents, v, ts);
            entry.count += 1;
            timers.apply(requests, &mut entry.timers, &key, window);
            if result != TriggerResult::Continue {
                act(&*contents, &key, entry, result, ts, ctx, output, scratch)?;
            }
        }
        self.assigned = assigned;
        // A record no window took is late when its time is past the lateness (Flink's
        // `isElementLate`); one that falls in a gap between sliding windows is not.
        let late = !accepted
            && self.settings.assigner.is_event_time()
            && ts.saturating_add(self.settings.allowed_lateness_ms) <= self.watermark;
        if let (true, Some(v)) = (late, value) {
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

    /// Fires the timer of `key`'s `window` at `time`, if the window still lists it.
    #[allow(clippy::too_many_arguments)]
    fn fire_timer(
        &mut self,
        domain: TimeDomain,
        time: i64,
        key: K,
        window: TimeWindow,
        cleanup_domain: TimeDomain,
        now: i64,
        output: &mut Records<C::Out>,
        scratch: &mut Vec<C::Out>,
    ) -> Result<()> {
        let hash = stable_hash(&key);
        let is_cleanup = domain == cleanup_domain && self.cleanup_time(&window) == Some(time);
        let ctx = WindowContext::new(window, self.watermark, now);
        let WindowOperator {
            state,
            contents,
            trigger,
            timers,
            requests,
            watermark,
            ..
        } = self;
        let Some(entries) = state.get_mut(&key, hash) else {
            return Ok(());
        };
        let Some(index) = entries.iter().position(|e| e.window == window) else {
            return Ok(());
        };
        let entry = &mut entries[index];
        // A timer deleted (or already fired) since it was queued does nothing.
        let Some(i) = entry.timers.iter().position(|r| *r == (domain, time)) else {
            return Ok(());
        };
        entry.timers.swap_remove(i);
        let mut tctx = TriggerContext::new(*watermark, now, requests);
        let result = match domain {
            TimeDomain::EventTime => {
                trigger.on_event_time(time, &window, &mut entry.trigger, &mut tctx)
            }
            TimeDomain::ProcessingTime => {
                trigger.on_processing_time(time, &window, &mut entry.trigger, &mut tctx)
            }
        };
        act(&*contents, &key, entry, result, time, ctx, output, scratch)?;
        if is_cleanup {
            let mut tctx = TriggerContext::new(*watermark, now, requests);
            trigger.clear(&window, &mut entry.trigger, &mut tctx);
            timers.apply(requests, &mut entry.timers, &key, window);
            entries.swap_remove(index);
            if entries.is_empty() {
                state.remove(&key, hash);
            }
        } else {
            timers.apply(requests, &mut entry.timers, &key, window);
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
        let cleanup_domain = self.domain();
        while let Some((time, due)) = self.timers.queue(domain).pop_due(up_to) {
            let now = self.clock.now_ms();
            for (key, window) in due {
                self.fire_timer(
                    domain,
                    time,
                    key,
                    window,
                    cleanup_domain,
                    now,
                    output,
                    &mut scratch,
                )?;
            }
        }
        Ok(())
    }
}

impl<K, T, TR, C> Operator for WindowOperator<K, T, TR, C>
where
    K: StateKey,
    T: Clone + Send + 'static,
    TR: Trigger<T>,
    C: WindowContents<K, T>,
{
    type In = Records<T>;
    type Out = Records<C::Out>;

    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        let Some(restored) = &ctx.restored else {
            return Ok(());
        };
        // Timers are derived from the windows' own timer lists.
        let timers = &mut self.timers;
        restore_table(&mut self.state, restored, |key, _, entries| {
            for entry in entries {
                for &(domain, time) in &entry.timers {
                    timers
                        .queue(domain)
                        .register(time, key.clone(), entry.window);
                }
            }
        })
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId) -> Result<OperatorSnapshot> {
        snapshot_table(&self.state)
    }

    fn on_data(&mut self, batch: Records<T>, out: &mut Collector<'_, Self::Out>) -> Result<()> {
        let mut output = Records::new();
        let mut scratch = Vec::new();
        let now = self.clock.now_ms();
        // Hash every key first so the state slots of records 16 ahead can be prefetched
        // while the current one is handled (see `ReduceTable`).
        let mut hashes = std::mem::take(&mut self.hashes);
        hashes.clear();
        hashes.extend(batch.values().iter().map(|v| self.key_of.hash(v)));
        for (i, (value, timestamp)) in batch.into_iter_timed().enumerate() {
            if let Some(&ahead) = hashes.get(i + 16) {
                self.state.prefetch(ahead);
            }
            let hash = hashes[i];
            self.on_record(value, timestamp, hash, now, &mut output, &mut scratch, out)?;
        }
        self.hashes = hashes;
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
