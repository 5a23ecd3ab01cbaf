//! Event time, watermarks and the processing-time [`Clock`].
//!
//! All processing time in Sluice is read through a [`Clock`]: [`SystemClock`] in production,
//! [`ManualClock`] in tests, which only moves when the test moves it. This module is the one
//! place allowed to call `Instant::now`, `SystemTime::now` and `thread::sleep`.

// This module is the clock: it is the one place that may read the machine's time.
#![allow(clippy::disallowed_methods)]

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A point in event time: milliseconds since the Unix epoch, as carried by records.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct EventTime(pub i64);

impl EventTime {
    /// The earliest representable time; also the timestamp of records that have none.
    pub const MIN: EventTime = EventTime(i64::MIN);
    /// The latest representable time.
    pub const MAX: EventTime = EventTime(i64::MAX);

    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> i64 {
        self.0
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Event time has progressed to this point on a channel: records with an earlier
/// timestamp that still arrive are late.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Watermark(pub EventTime);

impl Watermark {
    /// No progress yet.
    pub const MIN: Watermark = Watermark(EventTime::MIN);
    /// The final watermark, emitted when a bounded input ends: it fires every pending
    /// window and event-time timer.
    pub const MAX: Watermark = Watermark(EventTime::MAX);
}

/// Source of processing time. Implementations must be monotonic in [`Clock::monotonic_nanos`].
pub trait Clock: Send + Sync + fmt::Debug {
    /// Wall-clock processing time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// A monotonic reading in nanoseconds from an arbitrary origin, for measuring durations.
    fn monotonic_nanos(&self) -> u64;
    /// Blocks the calling thread for `duration` of this clock's time. A [`ManualClock`]
    /// returns immediately after advancing itself, so tests never wait.
    fn sleep(&self, duration: Duration);
}

/// The real clock of the machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

fn process_origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    fn monotonic_nanos(&self) -> u64 {
        Instant::now().duration_since(process_origin()).as_nanos() as u64
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now_ms: Arc<AtomicI64>,
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A manual clock reading `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        let clock = ManualClock::default();
        clock.now_ms.store(start_ms, Ordering::SeqCst);
        clock
    }

    /// Moves the clock forward by `duration`.
    pub fn advance(&self, duration: Duration) {
        self.now_ms
            .fetch_add(duration.as_millis() as i64, Ordering::SeqCst);
        self.nanos
            .fetch_add(duration.as_nanos() as u64, Ordering::SeqCst);
    }

    /// Moves the clock forward to `now_ms` (never backwards: an earlier time is ignored).
    pub fn set(&self, now_ms: i64) {
        let current = self.now_ms.load(Ordering::SeqCst);
        if now_ms > current {
            self.advance(Duration::from_millis((now_ms - current) as u64));
        }
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    fn monotonic_nanos(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }

    fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced_and_clones_share_time() {
        let clock = ManualClock::new(1_000);
        let other = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        other.advance(Duration::from_millis(250));
        assert_eq!(clock.now_ms(), 1_250);
        clock.sleep(Duration::from_millis(50));
        assert_eq!(other.now_ms(), 1_300);
        assert_eq!(other.monotonic_nanos(), 300_000_000);
    }

    #[test]
    fn system_clock_is_monotonic() {
        let clock = SystemClock;
        let a = clock.monotonic_nanos();
        let b = clock.monotonic_nanos();
        assert!(b >= a);
        assert!(clock.now_ms() > 1_600_000_000_000);
    }

    #[test]
    fn watermarks_order_by_time() {
        assert!(Watermark::MIN < Watermark(EventTime(0)));
        assert!(Watermark(EventTime(0)) < Watermark::MAX);
    }
}
