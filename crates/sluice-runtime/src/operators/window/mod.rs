//! Windows on keyed streams: which windows a record belongs to, and the operators that
//! aggregate records per key and window and fire results when event time passes.
//!
//! Invariant: a window fires once, when the watermark reaches its last millisecond
//! (`end - 1`), with a result stamped `end - 1`; a record whose windows all fired already
//! is late: it is dropped and counted, never added to a fired window.

mod assigner;
mod evictor;
mod firing;
mod function;
mod general;
mod session;
mod sliding;
mod trigger;
mod tumbling;

pub use assigner::WindowAssigner;
pub use evictor::{CountEvictor, Evictor, NoEvictor, TimeEvictor, WindowBuffer};
pub use function::{
    AggregateBuffer, Buffered, FinishFn, Incremental, ProcessWindowFunction, WindowContents,
    WindowContext,
};
pub use general::{WindowOperator, WindowSettings};
pub use session::SessionWindowOperator;
pub use sliding::SlidingWindowOperator;
pub use trigger::{
    CountTrigger, DefaultTrigger, DeltaTrigger, EventTimeTrigger, ProcessingTimeTrigger,
    PurgingTrigger, Trigger, TriggerContext, TriggerResult,
};
pub use tumbling::{TumblingWindowOperator, WindowResultFn};

pub(crate) use firing::{require_timestamps, WindowFirings};

/// A half-open event-time interval `start..end` (milliseconds).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct TimeWindow {
    /// First millisecond of the window.
    pub start: i64,
    /// One past the last millisecond of the window.
    pub end: i64,
}

impl TimeWindow {
    /// The single window of the global window assigner: all of time.
    pub const GLOBAL: TimeWindow = TimeWindow {
        start: i64::MIN,
        end: i64::MAX,
    };

    /// The last millisecond of the window: its results carry this timestamp, and it fires
    /// when the watermark reaches it.
    pub fn max_timestamp(&self) -> i64 {
        self.end - 1
    }

    /// The tumbling window of `size_ms` (aligned to the epoch plus `offset_ms`) that
    /// contains `timestamp`.
    pub fn tumbling(timestamp: i64, size_ms: i64, offset_ms: i64) -> TimeWindow {
        let start = timestamp - timestamp.wrapping_sub(offset_ms).rem_euclid(size_ms);
        TimeWindow {
            start,
            end: start.saturating_add(size_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_windows_align_to_the_epoch_and_handle_negative_times() {
        assert_eq!(
            TimeWindow::tumbling(1_999, 1_000, 0),
            TimeWindow {
                start: 1_000,
                end: 2_000
            }
        );
        assert_eq!(
            TimeWindow::tumbling(2_000, 1_000, 0),
            TimeWindow {
                start: 2_000,
                end: 3_000
            }
        );
        assert_eq!(
            TimeWindow::tumbling(-1, 1_000, 0),
            TimeWindow {
                start: -1_000,
                end: 0
            }
        );
        assert_eq!(
            TimeWindow::tumbling(1_050, 1_000, 100),
            TimeWindow {
                start: 100,
                end: 1_100
            }
        );
        assert_eq!(TimeWindow::tumbling(1_999, 1_000, 0).max_timestamp(), 1_999);
    }
}
