//! [`SplitWatermarks`]: watermarks generated per source split (file range, partition,
//! generated stream) and combined inside one source subtask, with idleness (Flink's
//! per-partition watermarks of `fromSource` and `withIdleness`).
//!
//! Each split has its own generator, so a split that runs ahead does not make the records
//! of a split that lags late. The subtask's watermark is the minimum over splits that are
//! neither finished nor idle; a split is idle when it produced nothing for the idleness
//! timeout (processing time) and active again with its next record. When every open split
//! is idle the subtask reports [`WatermarkStatus::Idle`], so it does not hold back the
//! watermark downstream. Invariant: the emitted watermark never goes backwards.

use std::collections::BTreeMap;

use sluice_core::{EventTime, Watermark, WatermarkStatus};

use super::{BoundedOutOfOrdernessGenerator, WatermarkBound};

#[derive(Debug)]
struct Split {
    generator: BoundedOutOfOrdernessGenerator,
    last_active_ms: i64,
    finished: bool,
}

/// What changed after [`SplitWatermarks::poll`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatermarkUpdate {
    /// The subtask's status changed to this (emit it before the watermark).
    pub status: Option<WatermarkStatus>,
    /// The subtask's watermark advanced to this.
    pub watermark: Option<Watermark>,
}

/// Per-split watermark generators of one subtask, and their combination.
#[derive(Debug)]
pub struct SplitWatermarks {
    bound: WatermarkBound,
    idle_timeout_ms: Option<i64>,
    splits: BTreeMap<u32, Split>,
    emitted: Watermark,
    status: WatermarkStatus,
}

impl SplitWatermarks {
    /// Generators bounded by `bound`; splits without records for `idle_timeout_ms` are
    /// idle (never, when `None`).
    pub fn new(bound: WatermarkBound, idle_timeout_ms: Option<i64>) -> Self {
        SplitWatermarks {
            bound,
            idle_timeout_ms,
            splits: BTreeMap::new(),
            emitted: Watermark::MIN,
            status: WatermarkStatus::Active,
        }
    }

    fn split(&mut self, split: u32, now_ms: i64) -> &mut Split {
        let bound = self.bound;
        self.splits.entry(split).or_insert_with(|| Split {
            generator: BoundedOutOfOrdernessGenerator::new(bound),
            last_active_ms: now_ms,
            finished: false,
        })
    }

    /// Records with `timestamps` came from `split` at processing time `now_ms`. Returns
    /// [`WatermarkStatus::Active`] if the subtask was idle: emit it before the records.
    pub fn on_records(
        &mut self,
        split: u32,
        timestamps: &[EventTime],
        now_ms: i64,
    ) -> Option<WatermarkStatus> {
        let s = self.split(split, now_ms);
        for &t in timestamps {
            s.generator.on_event(t);
        }
        if !timestamps.is_empty() {
            s.last_active_ms = now_ms;
        }
        if !timestamps.is_empty() && self.status == WatermarkStatus::Idle {
            self.status = WatermarkStatus::Active;
            return Some(WatermarkStatus::Active);
        }
        None
    }

    /// `split` was assigned to this subtask (it holds the watermark back until it
    /// produces records or goes idle).
    pub fn add_split(&mut self, split: u32, now_ms: i64) {
        self.split(split, now_ms);
    }

    /// `split` has no more records: it no longer holds the watermark back.
    pub fn finish_split(&mut self, split: u32, now_ms: i64) {
        self.split(split, now_ms).finished = true;
    }

    /// The subtask's watermark and status at processing time `now_ms`.
    pub fn poll(&mut self, now_ms: i64) -> WatermarkUpdate {
        let timeout = self.idle_timeout_ms;
        let is_idle =
            |s: &Split| timeout.is_some_and(|t| now_ms.saturating_sub(s.last_active_ms) >= t);
        let mut any_open = false;
        let mut active_min: Option<Watermark> = None;
        for s in self.splits.values().filter(|s| !s.finished) {
            any_open = true;
            if !is_idle(s) {
                let w = s.generator.current();
                active_min = Some(active_min.map_or(w, |m| m.min(w)));
            }
        }
        let all_idle = any_open && active_min.is_none();
        let mut update = WatermarkUpdate::default();
        let status = if all_idle {
            WatermarkStatus::Idle
        } else {
            WatermarkStatus::Active
        };
        if status != self.status {
            self.status = status;
            update.status = Some(status);
        }
        if let Some(candidate) = active_min {
            if candidate > self.emitted {
                self.emitted = candidate;
                update.watermark = Some(candidate);
            }
        }
        update
    }

    /// The last watermark emitted.
    pub fn current(&self) -> Watermark {
        self.emitted
    }

    /// The subtask's current status.
    pub fn status(&self) -> WatermarkStatus {
        self.status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ts(v: &[i64]) -> Vec<EventTime> {
        v.iter().copied().map(EventTime).collect()
    }

    fn wm(t: i64) -> Option<Watermark> {
        Some(Watermark(EventTime(t)))
    }

    #[test]
    fn the_slowest_open_split_sets_the_watermark() {
        let mut w = SplitWatermarks::new(WatermarkBound::OutOfOrderness(Duration::ZERO), None);
        w.add_split(0, 0);
        w.add_split(1, 0);
        w.on_records(0, &ts(&[100, 200]), 0);
        assert_eq!(w.poll(0).watermark, None, "split 1 has no records yet");
        w.on_records(1, &ts(&[50]), 0);
        assert_eq!(w.poll(0).watermark, wm(49));
        w.on_records(1, &ts(&[300]), 0);
        assert_eq!(w.poll(0).watermark, wm(199));
        w.finish_split(0, 0);
        assert_eq!(w.poll(0).watermark, wm(299));
    }

    #[test]
    fn idle_splits_stop_holding_back_and_wake_up_with_records() {
        let mut w = SplitWatermarks::new(WatermarkBound::Monotonous, Some(1_000));
        w.on_records(0, &ts(&[10]), 0);
        w.on_records(1, &ts(&[500]), 0);
        assert_eq!(w.poll(0).watermark, wm(9));
        w.on_records(1, &ts(&[900]), 800);
        let update = w.poll(1_200);
        assert_eq!(update.watermark, wm(899), "split 0 idle since 0");
        assert_eq!(update.status, None);
        let update = w.poll(1_800);
        assert_eq!(update.status, Some(WatermarkStatus::Idle), "both idle");
        assert_eq!(
            w.on_records(0, &ts(&[20]), 1_900),
            Some(WatermarkStatus::Active)
        );
        let update = w.poll(1_900);
        assert_eq!(update.status, None, "already reported active");
        assert_eq!(update.watermark, None, "split 0 is behind: never backwards");
        assert_eq!(w.current(), Watermark(EventTime(899)));
    }
}
