//! Two-input operators against sequential references: a keyed co-process function sharing
//! state between two streams, and the interval join on random out-of-order streams with
//! random bounds, parallelism and batch boundaries. Replay with the printed
//! `SLUICE_TEST_SEED=<seed>`.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use sluice_api::prelude::*;
use sluice_api::EventTime;
use sluice_testkit::pipeline::env;
use sluice_testkit::seed::proptest_config;
use sluice_testkit::sink::TimedCollectSink;

const MAX_DELAY_MS: i64 = 50;

/// (key, id, event time), out of order by at most `MAX_DELAY_MS`.
fn events(keys: u64) -> impl Strategy<Value = Vec<(u64, u64, i64)>> {
    proptest::collection::vec((0..keys, 0i64..15, 0i64..MAX_DELAY_MS), 0..150).prop_map(|raw| {
        let mut t = 1_000i64;
        raw.into_iter()
            .enumerate()
            .map(|(i, (k, step, jitter))| {
                t += step;
                (k, i as u64, t - jitter)
            })
            .collect()
    })
}

fn stamped(
    env: &StreamExecutionEnvironment,
    events: &[(u64, u64, i64)],
    parallelism: u32,
) -> DataStream<(u64, u64, i64)> {
    env.from_collection(events.to_vec())
        .set_parallelism(parallelism)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(
                MAX_DELAY_MS as u64,
            ))
            .with_timestamp_assigner(|(_, _, t)| *t),
        )
}

#[test]
fn interval_join_equals_the_reference() {
    let mut runner = TestRunner::new(proptest_config("interval_join_equals_the_reference", 40));
    let strategy = (
        events(5),
        events(5),
        -60i64..60,
        0i64..80,
        1u32..=3,
        1u32..=3,
        1usize..32,
    );
    runner
        .run(
            &strategy,
            |(left, right, lower, width, source_parallelism, join_parallelism, batch)| {
                let upper = lower + width;
                let mut expected = Vec::new();
                for &(k, a, t) in &left {
                    for &(k2, b, r) in &right {
                        if k == k2 && t + lower <= r && r <= t + upper {
                            expected.push(((k, a, b), Some(EventTime(t.max(r)))));
                        }
                    }
                }
                let env = env(source_parallelism, batch, 2);
                let sink = TimedCollectSink::new();
                let l = stamped(&env, &left, source_parallelism).key_by(|e| e.0);
                let r = stamped(&env, &right, source_parallelism).key_by(|e| e.0);
                l.interval_join(&r)
                    .between(lower, upper)
                    .process(|a, b| (a.0, a.1, b.1))
                    .set_parallelism(join_parallelism)
                    .add_sink("Joined", sink.clone());
                env.execute("interval join")
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let mut got = sink.records();
                got.sort_unstable();
                expected.sort_unstable();
                prop_assert_eq!(got, expected);
                Ok(())
            },
        )
        .unwrap();
}

/// Orders add to a key's balance, payments subtract; the balance lives in state shared by
/// both inputs and is emitted by an event-time timer when the inputs end.
#[derive(Clone, Default)]
struct Balance {
    balance: Option<ValueStateHandle<i64>>,
}

impl KeyedCoProcessFunction<u64, (u64, u64, i64), (u64, u64, i64), (u64, i64)> for Balance {
    fn open(&mut self, ctx: &mut OpenContext<'_, u64>) -> UserResult {
        self.balance = Some(ctx.value_state("balance")?);
        Ok(())
    }

    fn process_element1(
        &mut self,
        order: (u64, u64, i64),
        ctx: &mut KeyedContext<'_, u64>,
        _out: &mut ProcessOutput<'_, (u64, i64)>,
    ) -> UserResult {
        let h = self.balance.ok_or("not opened")?;
        *ctx.value_state(&h).get_or_insert_with(|| 0) += order.1 as i64;
        ctx.register_event_time_timer(i64::MAX - 1);
        Ok(())
    }

    fn process_element2(
        &mut self,
        payment: (u64, u64, i64),
        ctx: &mut KeyedContext<'_, u64>,
        _out: &mut ProcessOutput<'_, (u64, i64)>,
    ) -> UserResult {
        let h = self.balance.ok_or("not opened")?;
        *ctx.value_state(&h).get_or_insert_with(|| 0) -= payment.1 as i64;
        ctx.register_event_time_timer(i64::MAX - 1);
        Ok(())
    }

    fn on_timer(
        &mut self,
        _time: i64,
        _domain: TimeDomain,
        ctx: &mut KeyedContext<'_, u64>,
        out: &mut ProcessOutput<'_, (u64, i64)>,
    ) -> UserResult {
        let h = self.balance.ok_or("not opened")?;
        let key = *ctx.key();
        if let Some(balance) = ctx.value_state(&h).clear() {
            out.collect((key, balance));
        }
        Ok(())
    }
}

#[test]
fn co_process_shares_keyed_state_between_both_inputs() {
    let mut runner = TestRunner::new(proptest_config(
        "co_process_shares_keyed_state_between_both_inputs",
        24,
    ));
    let strategy = (events(7), events(7), 1u32..=3, 1u32..=4, 1usize..32);
    runner
        .run(
            &strategy,
            |(orders, payments, source_parallelism, parallelism, batch)| {
                let mut expected: BTreeMap<u64, i64> = BTreeMap::new();
                for &(k, v, _) in &orders {
                    *expected.entry(k).or_default() += v as i64;
                }
                for &(k, v, _) in &payments {
                    *expected.entry(k).or_default() -= v as i64;
                }
                let env = env(source_parallelism, batch, 2);
                let o = stamped(&env, &orders, source_parallelism).key_by(|e| e.0);
                let p = stamped(&env, &payments, source_parallelism).key_by(|e| e.0);
                let out = o
                    .connect(&p)
                    .process(Balance::default())
                    .set_parallelism(parallelism)
                    .collect();
                env.execute("co-process")
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let mut got = out.take();
                got.sort_unstable();
                prop_assert_eq!(got, expected.into_iter().collect::<Vec<_>>());
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn window_join_and_co_group_equal_the_reference() {
    let mut runner = TestRunner::new(proptest_config(
        "window_join_and_co_group_equal_the_reference",
        24,
    ));
    let strategy = (
        events(4),
        events(4),
        1i64..200,
        1u32..=3,
        1u32..=3,
        1usize..32,
    );
    runner
        .run(
            &strategy,
            |(left, right, size, source_parallelism, parallelism, batch)| {
                let window = |t: i64| t - t.rem_euclid(size);
                let mut expected_join = Vec::new();
                for &(k, a, t) in &left {
                    for &(k2, b, r) in &right {
                        if k == k2 && window(t) == window(r) {
                            expected_join.push((k, a, b));
                        }
                    }
                }
                let mut groups: BTreeMap<(u64, i64), (usize, usize)> = BTreeMap::new();
                for &(k, _, t) in &left {
                    groups.entry((k, window(t))).or_default().0 += 1;
                }
                for &(k, _, r) in &right {
                    groups.entry((k, window(r))).or_default().1 += 1;
                }
                let expected_groups: Vec<_> = groups
                    .into_iter()
                    .map(|((k, start), (n1, n2))| (k, start, n1, n2))
                    .collect();

                let env = env(source_parallelism, batch, 2);
                let l = stamped(&env, &left, source_parallelism);
                let r = stamped(&env, &right, source_parallelism);
                let windows = TumblingEventTimeWindows::of(Duration::from_millis(size as u64));
                let joined = l
                    .join(&r)
                    .where_key(|e| e.0)
                    .equal_to(|e| e.0)
                    .window(windows)
                    .apply(|a, b| (a.0, a.1, b.1))
                    .set_parallelism(parallelism)
                    .collect();
                let grouped = l
                    .co_group(&r)
                    .where_key(|e| e.0)
                    .equal_to(|e| e.0)
                    .window(windows)
                    .apply_co_group(|k, ctx, first, second, out| {
                        out.push((*k, ctx.window().start, first.len(), second.len()));
                        Ok(())
                    })
                    .set_parallelism(parallelism)
                    .collect();
                env.execute("window join")
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let mut got = joined.take();
                got.sort_unstable();
                expected_join.sort_unstable();
                prop_assert_eq!(got, expected_join);
                let mut got = grouped.take();
                got.sort_unstable();
                prop_assert_eq!(got, expected_groups);
                Ok(())
            },
        )
        .unwrap();
}
