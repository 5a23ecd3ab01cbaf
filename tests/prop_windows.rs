//! Property tests of tumbling event-time windows against a sequential reference: random
//! out-of-order events (never later than the watermark strategy allows), window sizes,
//! offsets, parallelism and batch boundaries; the fired results, with their timestamps,
//! must equal the reference exactly. Replay with the printed `SLUICE_TEST_SEED=<seed>`.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use sluice_api::{
    EventTime, EventTimeSessionWindows, EventTimeWindows, SlidingEventTimeWindows, TimeWindow,
    TumblingEventTimeWindows, WatermarkStrategy,
};
use sluice_testkit::pipeline::env;
use sluice_testkit::seed::proptest_config;
use sluice_testkit::sink::TimedCollectSink;

const MAX_DELAY_MS: i64 = 200;

/// (key, value, event time): times advance by 0..20 ms per event and jitter back by up to
/// `MAX_DELAY_MS`, so no event is later than the bounded out-of-orderness allows.
fn events() -> impl Strategy<Value = Vec<(u64, u64, i64)>> {
    proptest::collection::vec((0u64..8, 1u64..100, 0i64..20, 0i64..MAX_DELAY_MS), 0..400).prop_map(
        |raw| {
            let mut t = 10_000i64;
            raw.into_iter()
                .map(|(k, v, step, jitter)| {
                    t += step;
                    (k, v, t - jitter)
                })
                .collect()
        },
    )
}

/// A window result `(key, window start, sum)` with its timestamp.
type Fired = ((u64, i64, u64), Option<EventTime>);

/// Parallelism and channel settings of one windowed job.
struct Job {
    source_parallelism: u32,
    window_parallelism: u32,
    batch: usize,
    capacity: usize,
    /// Runs on the general window operator (forced by an allowed lateness, which changes
    /// nothing here because no record is late) instead of the specialised one.
    general: bool,
}

impl Job {
    /// Sums values per key and window of `windows` over `events`; each result is
    /// `(key, window start, sum)` with its timestamp.
    fn run(
        &self,
        events: &[(u64, u64, i64)],
        windows: impl Into<EventTimeWindows>,
    ) -> Result<Vec<Fired>, TestCaseError> {
        let env = env(self.source_parallelism, self.batch, self.capacity);
        let sink = TimedCollectSink::new();
        env.from_collection(events.to_vec())
            .set_parallelism(self.source_parallelism)
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(
                    MAX_DELAY_MS as u64,
                ))
                .with_timestamp_assigner(|(_, _, t)| *t),
            )
            .key_by(|(k, _, _)| *k)
            .window(windows)
            .allowed_lateness(Duration::from_millis(u64::from(self.general) * 50))
            .reduce_with(
                |a, b| (a.0, a.1 + b.1, a.2.max(b.2)),
                |k, w, r| (*k, w.start, r.1),
            )
            .set_parallelism(self.window_parallelism)
            .add_sink("Windows", sink.clone());
        env.execute("prop-windows")
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        Ok(sink.records())
    }
}

#[test]
fn tumbling_window_sums_equal_the_reference() {
    let mut runner = TestRunner::new(proptest_config(
        "tumbling_window_sums_equal_the_reference",
        48,
    ));
    let strategy = (
        events(),
        1i64..500,
        0i64..100,
        1u32..=4,
        1u32..=4,
        1usize..64,
        (1usize..4, any::<bool>()),
    );
    runner
        .run(
            &strategy,
            |(
                events,
                size,
                offset,
                source_parallelism,
                window_parallelism,
                batch,
                (capacity, general),
            )| {
                let offset = offset % size;
                let mut expected: BTreeMap<(u64, i64), u64> = BTreeMap::new();
                for &(k, v, t) in &events {
                    let w = TimeWindow::tumbling(t, size, offset);
                    *expected.entry((k, w.start)).or_insert(0) += v;
                }
                let mut expected: Vec<Fired> = expected
                    .into_iter()
                    .map(|((k, start), sum)| ((k, start, sum), Some(EventTime(start + size - 1))))
                    .collect();

                let job = Job {
                    source_parallelism,
                    window_parallelism,
                    batch,
                    capacity,
                    general,
                };
                let mut got = job.run(
                    &events,
                    TumblingEventTimeWindows::of(Duration::from_millis(size as u64))
                        .with_offset(Duration::from_millis(offset as u64)),
                )?;
                got.sort_unstable();
                expected.sort_unstable();
                prop_assert_eq!(got, expected);
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn sliding_window_sums_equal_the_reference() {
    let mut runner = TestRunner::new(proptest_config(
        "sliding_window_sums_equal_the_reference",
        48,
    ));
    let strategy = (
        events(),
        1i64..60,
        1i64..6,
        0i64..50,
        1u32..=4,
        1u32..=4,
        1usize..64,
        (1usize..4, any::<bool>()),
    );
    runner
        .run(
            &strategy,
            |(
                events,
                slide,
                panes_per_window,
                offset,
                source_parallelism,
                window_parallelism,
                batch,
                (capacity, general),
            )| {
                // Sizes that are and are not multiples of the slide.
                let size = if panes_per_window % 2 == 0 {
                    slide * panes_per_window
                } else {
                    slide * panes_per_window + slide / 2 + 1
                };
                let offset = offset % slide;
                // Reference (Flink's alignment): every window starting at
                // `offset + n * slide` that holds an event.
                let mut expected: BTreeMap<(u64, i64), u64> = BTreeMap::new();
                for &(k, v, t) in &events {
                    let mut start = t - (t - offset).rem_euclid(slide);
                    while start > t - size {
                        *expected.entry((k, start)).or_insert(0) += v;
                        start -= slide;
                    }
                }
                let mut expected: Vec<Fired> = expected
                    .into_iter()
                    .map(|((k, start), sum)| ((k, start, sum), Some(EventTime(start + size - 1))))
                    .collect();

                let job = Job {
                    source_parallelism,
                    window_parallelism,
                    batch,
                    capacity,
                    general,
                };
                let mut got = job.run(
                    &events,
                    SlidingEventTimeWindows::of(
                        Duration::from_millis(size as u64),
                        Duration::from_millis(slide as u64),
                    )
                    .with_offset(Duration::from_millis(offset as u64)),
                )?;
                got.sort_unstable();
                expected.sort_unstable();
                prop_assert_eq!(
                    got,
                    expected,
                    "size {} slide {} offset {}",
                    size,
                    slide,
                    offset
                );
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn session_window_sums_equal_the_reference() {
    let mut runner = TestRunner::new(proptest_config(
        "session_window_sums_equal_the_reference",
        48,
    ));
    let strategy = (
        events(),
        1i64..120,
        1u32..=4,
        1u32..=4,
        1usize..64,
        (1usize..4, any::<bool>()),
    );
    runner
        .run(
            &strategy,
            |(events, gap, source_parallelism, window_parallelism, batch, (capacity, general))| {
                // Reference: per key, events in time order; a session goes on while the next
                // event starts at or before the session's end (last event + gap).
                let mut per_key: BTreeMap<u64, Vec<(i64, u64)>> = BTreeMap::new();
                for &(k, v, t) in &events {
                    per_key.entry(k).or_default().push((t, v));
                }
                let mut expected: Vec<Fired> = Vec::new();
                for (k, mut list) in per_key {
                    list.sort_unstable();
                    let mut current: Option<(i64, i64, u64)> = None;
                    for (t, v) in list {
                        current = match current {
                            // Sessions that touch merge (Flink's `TimeWindow.intersects`).
                            Some((start, end, sum)) if t <= end => {
                                Some((start, end.max(t + gap), sum + v))
                            }
                            Some((start, end, sum)) => {
                                expected.push(((k, start, sum), Some(EventTime(end - 1))));
                                Some((t, t + gap, v))
                            }
                            None => Some((t, t + gap, v)),
                        };
                    }
                    if let Some((start, end, sum)) = current {
                        expected.push(((k, start, sum), Some(EventTime(end - 1))));
                    }
                }

                let job = Job {
                    source_parallelism,
                    window_parallelism,
                    batch,
                    capacity,
                    general,
                };
                let mut got = job.run(
                    &events,
                    EventTimeSessionWindows::with_gap(Duration::from_millis(gap as u64)),
                )?;
                got.sort_unstable();
                expected.sort_unstable();
                prop_assert_eq!(got, expected, "gap {}", gap);
                Ok(())
            },
        )
        .unwrap();
}
