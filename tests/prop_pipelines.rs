//! Property tests: random pipelines on the engine against the sequential reference model.
//!
//! What must not matter is varied: parallelism per operator (1..4), batch sizes, channel
//! capacities, partitioning, chaining. Replay a failure with the printed
//! `SLUICE_TEST_SEED=<seed>`.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use sluice_api::RuntimeMode;
use sluice_testkit::pipeline::{build, env, reference, sorted, stage, PlacedStage};
use sluice_testkit::seed::proptest_config;

fn placed(allow_sum: bool, max_len: usize) -> impl Strategy<Value = Vec<PlacedStage>> {
    proptest::collection::vec((stage(allow_sum), 1u32..=4), 0..max_len)
}

fn input() -> impl Strategy<Value = Vec<(u64, u64)>> {
    proptest::collection::vec((0u64..10, 0u64..1000), 0..300)
}

/// Batch mode makes every stage deterministic (keyed sums emit final values), so the
/// output multiset must equal the reference exactly, whatever the parallelism.
#[test]
fn random_pipelines_match_the_reference_in_batch_mode() {
    let mut runner = TestRunner::new(proptest_config(
        "random_pipelines_match_the_reference_in_batch_mode",
        48,
    ));
    let strategy = (input(), placed(true, 7), 1u32..=4, 1usize..64, 1usize..4);
    runner
        .run(
            &strategy,
            |(input, stages, source_parallelism, batch, capacity)| {
                let env = env(source_parallelism, batch, capacity);
                env.set_runtime_mode(RuntimeMode::Batch);
                let source = env
                    .from_collection(input.clone())
                    .set_parallelism(source_parallelism);
                let out = build(source, &stages).collect();
                env.execute("prop-batch")
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(sorted(out.take()), sorted(reference(&input, &stages, true)));
                Ok(())
            },
        )
        .unwrap();
}

/// Streaming mode: stateless stages, then a keyed running sum. Records of one key may
/// reach the sum in any interleaving of the upstream subtasks, so the running sums are
/// checked order-independently: per key, the differences between consecutive emitted
/// sums (sorted) must be exactly the multiset of values that entered the sum. Values
/// are made positive so running sums strictly increase.
#[test]
fn running_sums_count_every_record_exactly_once() {
    let mut runner = TestRunner::new(proptest_config(
        "running_sums_count_every_record_exactly_once",
        48,
    ));
    let strategy = (
        input(),
        placed(false, 5),
        1u32..=4,
        1u32..=4,
        1usize..64,
        1usize..4,
    );
    runner
        .run(
            &strategy,
            |(input, prefix, source_parallelism, sum_parallelism, batch, capacity)| {
                let env = env(source_parallelism, batch, capacity);
                let source = env
                    .from_collection(input.clone())
                    .set_parallelism(source_parallelism);
                let positive = build(source, &prefix).map(|(k, v)| (k, v + 1));
                let out = positive
                    .key_by(|(k, _)| *k)
                    .sum(|(_, v)| v)
                    .set_parallelism(sum_parallelism)
                    .collect();
                env.execute("prop-streaming")
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;

                let mut expected: HashMap<u64, Vec<u64>> = HashMap::new();
                for (k, v) in reference(&input, &prefix, false) {
                    expected.entry(k).or_default().push(v + 1);
                }
                let mut emitted: HashMap<u64, Vec<u64>> = HashMap::new();
                for (k, s) in out.take() {
                    emitted.entry(k).or_default().push(s);
                }
                prop_assert_eq!(emitted.len(), expected.len());
                for (k, mut values) in expected {
                    let mut sums = emitted.remove(&k).unwrap_or_default();
                    sums.sort_unstable();
                    let mut diffs = Vec::with_capacity(sums.len());
                    let mut previous = 0;
                    for s in sums {
                        diffs.push(s - previous);
                        previous = s;
                    }
                    diffs.sort_unstable();
                    values.sort_unstable();
                    prop_assert_eq!(diffs, values, "key {}", k);
                }
                Ok(())
            },
        )
        .unwrap();
}

/// At parallelism 1 every edge is a single channel, so the engine must produce exactly
/// the reference's output sequence, in order, in streaming mode too.
#[test]
fn single_parallelism_pipelines_preserve_order_exactly() {
    let mut runner = TestRunner::new(proptest_config(
        "single_parallelism_pipelines_preserve_order_exactly",
        32,
    ));
    let stages = proptest::collection::vec(stage(true).prop_map(|s| (s, 1u32)), 0..7);
    let strategy = (input(), stages, 1usize..64, 1usize..4);
    runner
        .run(&strategy, |(input, stages, batch, capacity)| {
            let env = env(1, batch, capacity);
            let source = env.from_collection(input.clone());
            let out = build(source, &stages).collect();
            env.execute("prop-ordered")
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(out.take(), reference(&input, &stages, false));
            Ok(())
        })
        .unwrap();
}
