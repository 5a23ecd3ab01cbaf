//! Watermark generation from record timestamps (Flink's `WatermarkGenerator`).
//!
//! Invariant: a generator's watermark never goes backwards, and with a bound of `delay`
//! it never passes `max_timestamp - delay - 1`, so a record at most `delay` behind the
//! newest one seen is never late.

use std::time::Duration;

use sluice_core::{EventTime, Watermark};

/// How far behind the newest timestamp the watermark trails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatermarkBound {
    /// Timestamps only increase (within a subtask): the watermark follows the newest
    /// timestamp (Flink's `forMonotonousTimestamps`).
    Monotonous,
    /// Records arrive at most this late: the watermark trails the newest timestamp by
    /// it (Flink's `forBoundedOutOfOrderness`).
    OutOfOrderness(Duration),
}

/// Tracks the newest timestamp seen and derives the watermark from it.
#[derive(Debug, Clone)]
pub struct BoundedOutOfOrdernessGenerator {
    delay_ms: i64,
    max_timestamp: Option<i64>,
}

impl BoundedOutOfOrdernessGenerator {
    /// A generator for `bound`.
    pub fn new(bound: WatermarkBound) -> Self {
        let delay_ms = match bound {
            WatermarkBound::Monotonous => 0,
            WatermarkBound::OutOfOrderness(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        };
        BoundedOutOfOrdernessGenerator {
            delay_ms,
            max_timestamp: None,
        }
    }

    /// Notes a record's timestamp.
    #[inline]
    pub fn on_event(&mut self, timestamp: EventTime) {
        let t = timestamp.millis();
        if self.max_timestamp.is_none_or(|m| t > m) {
            self.max_timestamp = Some(t);
        }
    }

    /// The watermark: `max_timestamp - delay - 1`, or [`Watermark::MIN`] before any record.
    pub fn current(&self) -> Watermark {
        match self.max_timestamp {
            None => Watermark::MIN,
            Some(m) => Watermark(EventTime(m.saturating_sub(self.delay_ms).saturating_sub(1))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trails_the_newest_timestamp_by_the_bound() {
        let mut g = BoundedOutOfOrdernessGenerator::new(WatermarkBound::OutOfOrderness(
            Duration::from_millis(5),
        ));
        assert_eq!(g.current(), Watermark::MIN);
        for t in [10, 5, 30, 20] {
            g.on_event(EventTime(t));
        }
        assert_eq!(g.current(), Watermark(EventTime(24)));
        let mut m = BoundedOutOfOrdernessGenerator::new(WatermarkBound::Monotonous);
        m.on_event(EventTime(7));
        assert_eq!(m.current(), Watermark(EventTime(6)));
        m.on_event(EventTime(i64::MIN));
        assert_eq!(m.current(), Watermark(EventTime(6)), "never backwards");
    }
}
