//! [`WatermarkTracker`]: the watermark of a task is the minimum over its input channels.
//!
//! Invariant: the combined watermark never goes backwards, and a finished channel no longer
//! holds it back (when every channel finished, the combined watermark is whatever the
//! channels last reported; sources end with [`Watermark::MAX`]).

use sluice_core::Watermark;

/// Tracks per-channel watermarks and their minimum.
#[derive(Debug, Clone)]
pub struct WatermarkTracker {
    channels: Vec<Watermark>,
    finished: Vec<bool>,
    combined: Watermark,
}

impl WatermarkTracker {
    /// A tracker over `channels` input channels, all at [`Watermark::MIN`].
    pub fn new(channels: usize) -> Self {
        WatermarkTracker {
            channels: vec![Watermark::MIN; channels],
            finished: vec![false; channels],
            combined: Watermark::MIN,
        }
    }

    /// The current combined watermark.
    pub fn current(&self) -> Watermark {
        self.combined
    }

    /// Records `watermark` on `channel`; returns the new combined watermark if it advanced.
    /// A channel's watermark going backwards is ignored (it cannot undo progress).
    pub fn update(&mut self, channel: usize, watermark: Watermark) -> Option<Watermark> {
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

    fn recompute(&mut self) -> Option<Watermark> {
        let open_min = self
            .channels
            .iter()
            .zip(&self.finished)
            .filter(|(_, finished)| !**finished)
            .map(|(w, _)| *w)
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
}
