//! [`WindowAssigner`]: which windows a record belongs to (Flink's `WindowAssigner`s).
//!
//! Event-time assigners place a record by its timestamp; processing-time assigners by the
//! job clock when the record arrives; the global window holds every record of a key (it
//! fires only through a custom trigger, e.g. a count). Session windows merge.

use super::TimeWindow;

/// How records are cut into windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowAssigner {
    /// Fixed-size, non-overlapping event-time windows.
    Tumbling {
        /// Window length in ms.
        size_ms: i64,
        /// Shift of window starts from the epoch in ms.
        offset_ms: i64,
    },
    /// Fixed-size event-time windows starting every `slide_ms`.
    Sliding {
        /// Window length in ms.
        size_ms: i64,
        /// Distance between window starts in ms.
        slide_ms: i64,
        /// Shift of window starts from the epoch in ms.
        offset_ms: i64,
    },
    /// Event-time sessions: records closer than `gap_ms` share a window.
    Session {
        /// Inactivity that closes a session, in ms.
        gap_ms: i64,
    },
    /// Fixed-size, non-overlapping processing-time windows.
    TumblingProcessingTime {
        /// Window length in ms.
        size_ms: i64,
        /// Shift of window starts from the epoch in ms.
        offset_ms: i64,
    },
    /// Fixed-size processing-time windows starting every `slide_ms`.
    SlidingProcessingTime {
        /// Window length in ms.
        size_ms: i64,
        /// Distance between window starts in ms.
        slide_ms: i64,
        /// Shift of window starts from the epoch in ms.
        offset_ms: i64,
    },
    /// One window per key holding every record ([`TimeWindow::GLOBAL`]).
    Global,
}

impl WindowAssigner {
    /// Whether windows follow event time (late records exist only then).
    pub fn is_event_time(&self) -> bool {
        matches!(
            self,
            WindowAssigner::Tumbling { .. }
                | WindowAssigner::Sliding { .. }
                | WindowAssigner::Session { .. }
        )
    }

    /// Whether windows follow processing time.
    pub fn is_processing_time(&self) -> bool {
        matches!(
            self,
            WindowAssigner::TumblingProcessingTime { .. }
                | WindowAssigner::SlidingProcessingTime { .. }
        )
    }

    /// Whether overlapping windows of a key merge into one.
    pub fn is_merging(&self) -> bool {
        matches!(self, WindowAssigner::Session { .. })
    }

    /// Appends to `out` the windows of a record at event time `timestamp` arriving at
    /// processing time `now_ms`.
    pub fn assign(&self, timestamp: i64, now_ms: i64, out: &mut Vec<TimeWindow>) {
        match *self {
            WindowAssigner::Tumbling { size_ms, offset_ms } => {
                out.push(TimeWindow::tumbling(timestamp, size_ms, offset_ms));
            }
            WindowAssigner::TumblingProcessingTime { size_ms, offset_ms } => {
                out.push(TimeWindow::tumbling(now_ms, size_ms, offset_ms));
            }
            WindowAssigner::Sliding {
                size_ms,
                slide_ms,
                offset_ms,
            } => sliding(timestamp, size_ms, slide_ms, offset_ms, out),
            WindowAssigner::SlidingProcessingTime {
                size_ms,
                slide_ms,
                offset_ms,
            } => sliding(now_ms, size_ms, slide_ms, offset_ms, out),
            WindowAssigner::Session { gap_ms } => out.push(TimeWindow {
                start: timestamp,
                end: timestamp.saturating_add(gap_ms),
            }),
            WindowAssigner::Global => out.push(TimeWindow::GLOBAL),
        }
    }
}

/// Every window of `size_ms`, starting every `slide_ms`, that contains `t`.
fn sliding(t: i64, size_ms: i64, slide_ms: i64, offset_ms: i64, out: &mut Vec<TimeWindow>) {
    let last_start = t - t.wrapping_sub(offset_ms).rem_euclid(slide_ms);
    let mut start = last_start;
    while start > t.saturating_sub(size_ms) {
        out.push(TimeWindow {
            start,
            end: start.saturating_add(size_ms),
        });
        start = start.saturating_sub(slide_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_assigns_every_window_containing_the_record() {
        let mut out = Vec::new();
        WindowAssigner::Sliding {
            size_ms: 10,
            slide_ms: 4,
            offset_ms: 0,
        }
        .assign(9, 0, &mut out);
        // Windows [8,18), [4,14), [0,10) contain 9.
        assert_eq!(
            out,
            vec![
                TimeWindow { start: 8, end: 18 },
                TimeWindow { start: 4, end: 14 },
                TimeWindow { start: 0, end: 10 }
            ]
        );
        out.clear();
        WindowAssigner::Global.assign(5, 0, &mut out);
        assert_eq!(out, vec![TimeWindow::GLOBAL]);
        out.clear();
        WindowAssigner::TumblingProcessingTime {
            size_ms: 100,
            offset_ms: 0,
        }
        .assign(5, 250, &mut out);
        assert_eq!(
            out,
            vec![TimeWindow {
                start: 200,
                end: 300
            }]
        );
    }
}
