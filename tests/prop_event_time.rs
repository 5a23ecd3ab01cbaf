//! Property tests of event time through whole jobs: timestamps travel with their records
//! through any pipeline, and watermarks downstream never overtake a record when the input
//! is no more out of order than the strategy allows. Replay with the printed
//! `SLUICE_TEST_SEED=<seed>`.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use sluice_api::{EventTime, WatermarkStrategy};
use sluice_core::Watermark;
use sluice_testkit::pipeline::{build, env, reference_timed, stage, PlacedStage, Stage};
use sluice_testkit::seed::proptest_config;
use sluice_testkit::sink::{Received, TimedCollectSink};

const MAX_DELAY_MS: i64 = 100;

/// Records `(key, value)` with event times that increase by 10 ms per record, jittered by
/// up to 50 ms: never more out of order than `MAX_DELAY_MS`.
fn timed_input() -> impl Strategy<Value = Vec<((u64, u64), i64)>> {
    proptest::collection::vec(((0u64..10, 0u64..1000), 0i64..50), 0..300).prop_map(|records| {
        records
            .into_iter()
            .enumerate()
            .map(|(i, (r, jitter))| (r, 1_000_000 + i as i64 * 10 + jitter))
            .collect()
    })
}

fn stateless_stages() -> impl Strategy<Value = Vec<PlacedStage>> {
    proptest::collection::vec((stage(false), 1u32..=4), 0..6)
}

/// The input with its event time in the value, so the assigner can read it back.
fn encode(input: &[((u64, u64), i64)]) -> Vec<(u64, u64, i64)> {
    input.iter().map(|((k, v), t)| (*k, *v, *t)).collect()
}

fn assigned(
    env: &sluice_api::StreamExecutionEnvironment,
    input: &[((u64, u64), i64)],
    parallelism: u32,
) -> sluice_api::DataStream<(u64, u64)> {
    env.from_collection(encode(input))
        .set_parallelism(parallelism)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(
                MAX_DELAY_MS as u64,
            ))
            .with_timestamp_assigner(|(_, _, t)| *t),
        )
        .map(|(k, v, _)| (k, v))
}

#[test]
fn timestamps_travel_with_their_records_through_random_pipelines() {
    let mut runner = TestRunner::new(proptest_config(
        "timestamps_travel_with_their_records_through_random_pipelines",
        40,
    ));
    let strategy = (
        timed_input(),
        stateless_stages(),
        1u32..=4,
        1usize..64,
        1usize..4,
    );
    runner
        .run(
            &strategy,
            |(input, stages, source_parallelism, batch, capacity)| {
                let env = env(source_parallelism, batch, capacity);
                let sink = TimedCollectSink::new();
                build(assigned(&env, &input, source_parallelism), &stages)
                    .add_sink("Timed", sink.clone());
                env.execute("prop-timestamps")
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let mut got: Vec<((u64, u64), Option<i64>)> = sink
                    .records()
                    .into_iter()
                    .map(|(r, t)| (r, t.map(EventTime::millis)))
                    .collect();
                let timed: Vec<((u64, u64), Option<i64>)> =
                    input.iter().map(|(r, t)| (*r, Some(*t))).collect();
                let mut expected = reference_timed(&timed, &stages, false);
                got.sort_unstable();
                expected.sort_unstable();
                prop_assert_eq!(got, expected);
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn at_parallelism_one_running_sums_carry_the_timestamp_of_their_update() {
    let mut runner = TestRunner::new(proptest_config(
        "at_parallelism_one_running_sums_carry_the_timestamp_of_their_update",
        32,
    ));
    let stages = proptest::collection::vec(stage(true).prop_map(|s| (s, 1u32)), 0..6);
    let strategy = (timed_input(), stages, 1usize..64);
    runner
        .run(&strategy, |(input, stages, batch)| {
            let env = env(1, batch, 2);
            let sink = TimedCollectSink::new();
            build(assigned(&env, &input, 1), &stages).add_sink("Timed", sink.clone());
            env.execute("prop-ordered-timestamps")
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let got: Vec<((u64, u64), Option<i64>)> = sink
                .records()
                .into_iter()
                .map(|(r, t)| (r, t.map(EventTime::millis)))
                .collect();
            let timed: Vec<((u64, u64), Option<i64>)> =
                input.iter().map(|(r, t)| (*r, Some(*t))).collect();
            prop_assert_eq!(got, reference_timed(&timed, &stages, false));
            Ok(())
        })
        .unwrap();
}

#[test]
fn watermarks_are_monotonic_and_never_overtake_a_record() {
    let mut runner = TestRunner::new(proptest_config(
        "watermarks_are_monotonic_and_never_overtake_a_record",
        40,
    ));
    let strategy = (
        timed_input(),
        stateless_stages(),
        1u32..=4,
        1u32..=4,
        1usize..64,
        1usize..4,
    );
    runner
        .run(
            &strategy,
            |(input, stages, source_parallelism, sink_parallelism, batch, capacity)| {
                prop_assume!(!stages.iter().any(|(s, _)| *s == Stage::KeyedSum));
                let env = env(source_parallelism, batch, capacity);
                let sink = TimedCollectSink::new();
                build(assigned(&env, &input, source_parallelism), &stages)
                    .rebalance()
                    .add_sink("Timed", sink.clone())
                    .set_parallelism(sink_parallelism);
                env.execute("prop-watermarks")
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                for (subtask, received) in sink.per_subtask().into_iter().enumerate() {
                    let mut watermark = Watermark::MIN;
                    for item in received {
                        match item {
                            Received::Watermark(w) => {
                                prop_assert!(
                                    w > watermark,
                                    "subtask {}: watermark {:?} after {:?}",
                                    subtask,
                                    w,
                                    watermark
                                );
                                watermark = w;
                            }
                            Received::Record(r, t) => {
                                let t = t.expect("every record has a timestamp");
                                prop_assert!(
                                    Watermark(t) > watermark,
                                    "subtask {}: record {:?} at {:?} after watermark {:?}",
                                    subtask,
                                    r,
                                    t,
                                    watermark
                                );
                            }
                        }
                    }
                    prop_assert_eq!(
                        watermark,
                        Watermark::MAX,
                        "subtask {} ends at the final watermark",
                        subtask
                    );
                }
                Ok(())
            },
        )
        .unwrap();
}
