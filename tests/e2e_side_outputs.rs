//! End-to-end: side outputs of process functions, at several parallelisms, with chained and
//! unchained consumers; side streams keep timestamps and watermarks.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sluice_api::prelude::*;

/// Routes negative amounts to the side output `rejected` (as text) and passes the rest.
#[derive(Clone)]
struct Validate {
    rejected: OutputTag<String>,
}

impl KeyedProcessFunction<u32, (u32, i64), (u32, i64)> for Validate {
    fn process_element(
        &mut self,
        (account, amount): (u32, i64),
        _ctx: &mut KeyedContext<'_, u32>,
        out: &mut ProcessOutput<'_, (u32, i64)>,
    ) -> UserResult {
        if amount < 0 {
            out.output(&self.rejected, format!("{account}:{amount}"));
        } else {
            out.collect((account, amount));
        }
        Ok(())
    }
}

fn input() -> Vec<(u32, i64)> {
    (0..5_000i64)
        .map(|i| ((i % 17) as u32, if i % 7 == 0 { -i } else { i }))
        .collect()
}

#[test]
fn process_function_side_output_receives_exactly_the_rejected_records() {
    for parallelism in [1, 3] {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(parallelism).set_batch_size(64);
        let rejected = OutputTag::<String>::new("rejected");
        let valid = env
            .from_collection(input())
            .key_by(|r| r.0)
            .process(Validate {
                rejected: rejected.clone(),
            });
        let main = valid.collect();
        let side = valid.side_output(&rejected).collect();
        // A second consumer of the same side output gets the same records.
        let side_count = valid
            .side_output(&rejected)
            .map(|_| 1u64)
            .set_parallelism(1)
            .collect();
        env.execute("side outputs").unwrap();

        let mut expected_main: Vec<(u32, i64)> = input().into_iter().filter(|r| r.1 >= 0).collect();
        let mut expected_side: Vec<String> = input()
            .into_iter()
            .filter(|r| r.1 < 0)
            .map(|(a, v)| format!("{a}:{v}"))
            .collect();
        let mut got_main = main.take();
        let mut got_side = side.take();
        expected_main.sort_unstable();
        got_main.sort_unstable();
        expected_side.sort_unstable();
        got_side.sort_unstable();
        assert_eq!(got_main, expected_main, "parallelism {parallelism}");
        assert_eq!(got_side, expected_side, "parallelism {parallelism}");
        assert_eq!(side_count.take().len(), expected_side.len());
    }
}

#[test]
fn side_records_keep_their_timestamps_and_side_streams_get_watermarks() {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2).set_batch_size(16);
    let rejected = OutputTag::<String>::new("rejected");
    let stamped = env
        .from_collection(input())
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::ZERO)
                .with_timestamp_assigner(|r: &(u32, i64)| r.1.abs()),
        );
    let valid = stamped.key_by(|r| r.0).process(Validate {
        rejected: rejected.clone(),
    });
    // Count the rejected records per 1000 ms of event time: this only fires if the side
    // stream carries timestamps and watermarks.
    let counts = valid
        .side_output(&rejected)
        .map(|s| (0u8, s))
        .key_by(|r| r.0)
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .aggregate_with(Count, |_, w, n| (w.start, n))
        .collect();
    valid.discard();
    env.execute("side timestamps").unwrap();

    let mut expected = std::collections::BTreeMap::new();
    for (_, v) in input().into_iter().filter(|r| r.1 < 0) {
        *expected.entry(v.abs() / 1000 * 1000).or_insert(0u64) += 1;
    }
    let mut got = counts.take();
    got.sort_unstable();
    assert_eq!(got, expected.into_iter().collect::<Vec<_>>());
}

struct Count;

impl AggregateFunction<(u8, String), u64, u64> for Count {
    fn create_accumulator(&self) -> u64 {
        0
    }
    fn add(&self, _: (u8, String), acc: &mut u64) {
        *acc += 1;
    }
    fn get_result(&self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&self, a: u64, b: u64) -> u64 {
        a + b
    }
}

/// Splits a stream three ways: even numbers on the main output, multiples of three (odd)
/// and the rest on two side outputs of different types.
#[derive(Clone)]
struct Split {
    threes: OutputTag<u64>,
    rest: OutputTag<String>,
}

impl ProcessFunction<u64, u64> for Split {
    fn process_element(
        &mut self,
        value: u64,
        _ctx: &ProcessContext,
        out: &mut ProcessOutput<'_, u64>,
    ) -> UserResult {
        if value % 2 == 0 {
            out.collect(value);
        } else if value % 3 == 0 {
            out.output(&self.threes, value);
        } else {
            out.output(&self.rest, value.to_string());
        }
        Ok(())
    }
}

#[test]
fn a_process_function_splits_a_stream_into_typed_side_outputs() {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2).set_batch_size(32);
    let split = Split {
        threes: OutputTag::new("threes"),
        rest: OutputTag::new("rest"),
    };
    let main = env.from_sequence(0, 999).process(split.clone());
    let evens = main.collect();
    let threes = main.side_output(&split.threes).collect();
    let rest = main.side_output(&split.rest).collect();
    env.execute("split").unwrap();
    let mut evens = evens.take();
    evens.sort_unstable();
    assert_eq!(
        evens,
        (0..1000).filter(|v| v % 2 == 0).collect::<Vec<u64>>()
    );
    let mut threes = threes.take();
    threes.sort_unstable();
    assert_eq!(
        threes,
        (0..1000)
            .filter(|v| v % 2 == 1 && v % 3 == 0)
            .collect::<Vec<u64>>()
    );
    let mut rest: Vec<u64> = rest.take().iter().map(|s| s.parse().unwrap()).collect();
    rest.sort_unstable();
    assert_eq!(
        rest,
        (0..1000)
            .filter(|v| v % 2 == 1 && v % 3 != 0)
            .collect::<Vec<u64>>()
    );
}
