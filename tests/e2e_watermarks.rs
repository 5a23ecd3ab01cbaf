//! End-to-end: per-split watermarks generated inside a source, and idleness, which lets
//! event time advance while one input has nothing to say.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sluice_api::connectors::{GeneratorSource, SplitGeneratorSource};
use sluice_api::prelude::*;
use sluice_api::runtime::metrics::LATE_RECORDS_DROPPED;
use sluice_testkit::pipeline::env;
use sluice_testkit::watchdog::{wait_until, Watchdog};

/// Two splits read by one subtask: split 0's event time runs ten times faster than
/// split 1's. Each split alone is in order.
fn two_speed_splits() -> SplitGeneratorSource<(u32, i64)> {
    SplitGeneratorSource::bounded(2, 2_000, |split, i| {
        let t = if split == 0 { i as i64 * 10 } else { i as i64 };
        (split, t)
    })
}

fn count_per_window(stream: DataStream<(u32, i64)>) -> DataStream<(u32, i64, u64)> {
    stream
        .key_by(|r| r.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
        .aggregate_with(Count, |k, w, n| (*k, w.start, n))
}

struct Count;

impl AggregateFunction<(u32, i64), u64, u64> for Count {
    fn create_accumulator(&self) -> u64 {
        0
    }
    fn add(&self, _: (u32, i64), acc: &mut u64) {
        *acc += 1;
    }
    fn get_result(&self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&self, a: u64, b: u64) -> u64 {
        a + b
    }
}

#[test]
fn per_split_watermarks_keep_a_slow_split_from_being_late() {
    let strategy = || {
        WatermarkStrategy::for_bounded_out_of_orderness(Duration::ZERO)
            .with_timestamp_assigner(|r: &(u32, i64)| r.1)
    };
    // Watermarks per split: the slow split holds event time back, nothing is late.
    let env1 = env(1, 64, 4);
    let out =
        count_per_window(env1.from_source("splits", two_speed_splits(), strategy())).collect();
    let job = env1.execute("per-split").unwrap();
    let counted: u64 = out.take().iter().map(|r| r.2).sum();
    assert_eq!(counted, 4_000, "every record counted in its window");
    assert_eq!(job.counter_total(LATE_RECORDS_DROPPED), 0);

    // One watermark for the whole subtask, from records of both splits: the fast split
    // drives it, and most of the slow split's records arrive late.
    let env = env(1, 64, 4);
    let out = count_per_window(
        env.add_source("splits", two_speed_splits())
            .assign_timestamps_and_watermarks(strategy()),
    )
    .collect();
    let job = env.execute("per-subtask").unwrap();
    let counted: u64 = out.take().iter().map(|r| r.2).sum();
    let late = job.counter_total(LATE_RECORDS_DROPPED);
    assert!(late > 1_000, "only {late} late");
    assert_eq!(counted + late, 4_000);
}

#[test]
fn an_idle_input_does_not_stall_event_time() {
    let _watchdog = Watchdog::start(
        "an_idle_input_does_not_stall_event_time",
        Duration::from_secs(60),
    );
    let env = env(1, 16, 4);
    let strategy = WatermarkStrategy::for_monotonous_timestamps()
        .with_timestamp_assigner(|r: &(u32, i64)| r.1)
        .with_idleness(Duration::from_millis(50));
    // An input that has records, and one that never has any (as a quiet partition).
    let busy = env.from_source(
        "busy",
        SplitGeneratorSource::unbounded(1, |_, i| (0u32, i as i64)).with_rate_per_split(20_000.0),
        strategy.clone(),
    );
    let quiet = env
        .add_source(
            "quiet",
            GeneratorSource::unbounded(|i| (1u32, i as i64)).with_rate(0.0),
        )
        .assign_timestamps_and_watermarks(strategy);
    let windows = count_per_window(busy.union(&[quiet])).collect();
    let job = env.execute_async("idleness");
    // Without idleness the quiet input's watermark would hold every window back until
    // the job ends, which this unbounded job never does.
    wait_until("windows to fire while one input is idle", || {
        windows.handle().lock().unwrap().len() >= 5
    });
    job.cancel();
    let _ = job.join();
    let fired = windows.take();
    assert!(fired.iter().all(|r| r.0 == 0 && r.2 == 100), "{fired:?}");
}
