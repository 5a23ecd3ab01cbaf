//! [`WatermarkTracker`]: the watermark of a task is the minimum over its input channels.
//!
//! Invariant: the combined watermark never goes backwards; a finished channel no longer
//! holds it back (when every channel finished, the combined watermark is whatever the
//! channels last reported; sources end with [`Watermark::MAX`]); an idle channel does not
//! hold it back either until it becomes active again. The task is idle downstream while
//! every open channel is idle.

use sluice_core::{Watermark, WatermarkStatus};

/// Tracks per-channel watermarks and their minimum.
#[derive(Debug, Clone)]
pub struct WatermarkTracker {
    channels: Vec<Watermark>,
    finished: Vec<bool>,
    idle: Vec<bool>,
    combined: Watermark,
    status: WatermarkStatus,
}

/// What changed downstream after a channel's status changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusChange {
    /// The combined watermark advanced to this.
    pub watermark: Option<Watermark>,
    /// The task's own status changed to this.
    pub status: Option<WatermarkStatus>,
}

impl WatermarkTracker {
    /// A tracker over `channels` input channels, all active at [`Watermark::MIN`].
    pub fn new(channels: usize) -> Self {
        WatermarkTracker {
            channels: vec![Watermark::MIN; channels],
            finished: vec![false; channels],
            idle: vec![false; channels],
            combined: Watermark::MIN,
            status: WatermarkStatus::Active,
        }
    }

    /// The current combined watermark.
    pub fn current(&self) -> Watermark {
        self.combined
    }

    /// Whether every open channel is idle.
    pub fn status(&self) -> WatermarkStatus {
        self.status
    }

    /// Records `watermark` on `channel`; returns the new combined watermark if it advanced.
    /// A channel's watermark going backwards is ignored (it cannot undo progress).
    pub fn update(&mut self, channel: usize, watermark: Watermark) -> Option<Watermark> {
        if watermark == Watermark::MAX {
            // The end of an input completes its event time, idle or not.
            self.idle[channel] = false;
        }
        if watermark > self.channels[channel] {
            self.channels[channel] = watermark;
        }
        self.recompute()
    }

    /// Marks `channel` finished; returns the new combined watermark if it advanced.
    pub fn finish(&mut self, channel: usize) -> Option<Watermark> {
        self.finished[channel] = true;
        self.recompute()
    }

    /// Records that `channel` went idle or became active again.
    pub fn set_status(&mut self, channel: usize, status: WatermarkStatus) -> StatusChange {
        self.idle[channel] = status == WatermarkStatus::Idle;
        let watermark = self.recompute();
        let all_idle = self
            .idle
            .iter()
            .zip(&self.finished)
            .filter(|(_, finished)| !**finished)
            .all(|(idle, _)| *idle);
        let now = if all_idle && self.finished.iter().any(|f| !f) {
            WatermarkStatus::Idle
        } else {
            WatermarkStatus::Active
        };
        let status = (now != self.status).then_some(now);
        self.status = now;
        StatusChange { watermark, status }
    }

    fn recompute(&mut self) -> Option<Watermark> {
        let open_min = self
            .channels
            .iter()
            .zip(&self.finished)
            .zip(&self.idle)
            .filter(|((_, finished), idle)| !**finished && !**idle)
            .map(|((w, _), _)| *w)
            .min();
        let candidate = open_min?;
        if candidate > self.combined {
            self.combined = candidate;
            Some(candidate)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::EventTime;

    fn wm(t: i64) -> Watermark {
        Watermark(EventTime(t))
    }

    #[test]
    fn minimum_over_channels_and_monotonic() {
        let mut t = WatermarkTracker::new(2);
        assert_eq!(t.update(0, wm(10)), None);
        assert_eq!(t.update(1, wm(5)), Some(wm(5)));
        assert_eq!(t.update(1, wm(3)), None, "backwards is ignored");
        assert_eq!(t.update(1, wm(20)), Some(wm(10)));
        assert_eq!(t.current(), wm(10));
    }

    #[test]
    fn finished_channels_do_not_hold_back() {
        let mut t = WatermarkTracker::new(2);
        t.update(0, wm(7));
        assert_eq!(t.finish(1), Some(wm(7)));
        assert_eq!(t.update(0, wm(9)), Some(wm(9)));
        assert_eq!(t.finish(0), None);
    }

    #[test]
    fn idle_channels_do_not_hold_back_until_active_again() {
        let mut t = WatermarkTracker::new(2);
        t.update(0, wm(50));
        assert_eq!(t.update(1, wm(10)), Some(wm(10)));
        let change = t.set_status(1, WatermarkStatus::Idle);
        assert_eq!(
            change.watermark,
            Some(wm(50)),
            "the idle channel no longer counts"
        );
        assert_eq!(change.status, None, "channel 0 is still active");
        assert_eq!(t.update(0, wm(60)), Some(wm(60)));
        let change = t.set_status(0, WatermarkStatus::Idle);
        assert_eq!(change.status, Some(WatermarkStatus::Idle));
        assert_eq!(t.status(), WatermarkStatus::Idle);
        let change = t.set_status(1, WatermarkStatus::Active);
        assert_eq!(change.status, Some(WatermarkStatus::Active));
        assert_eq!(change.watermark, None);
        assert_eq!(t.update(1, wm(55)), None, "behind the combined watermark");
        assert_eq!(t.update(1, wm(70)), Some(wm(70)));
        assert_eq!(t.current(), wm(70));
    }
}
