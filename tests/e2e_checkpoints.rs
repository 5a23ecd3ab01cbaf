//! Failure injection: jobs with keyed state and timers over a replayable source take
//! checkpoints, fail at a random record (a panicking operator), restart from the latest
//! completed checkpoint, and must end with exactly the state of a failure-free run: every
//! record counted once. Each test prints its seed; replay with `SLUICE_TEST_SEED=<seed>`.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_api::prelude::*;
use sluice_api::{CheckpointConfig, CheckpointingMode, RestartStrategy};
use sluice_testkit::seed::test_seed;
use sluice_testkit::watchdog::Watchdog;

/// Sums the values of each key in keyed state and emits the sum when the input ends (an
/// event-time timer at the end of time, fired by the final watermark).
#[derive(Clone, Default)]
struct FinalSum {
    sum: Option<ValueStateHandle<u64>>,
}

impl KeyedProcessFunction<u64, (u64, u64), (u64, u64)> for FinalSum {
    fn open(&mut self, ctx: &mut OpenContext<'_, u64>) -> UserResult {
        self.sum = Some(ctx.value_state("sum")?);
        Ok(())
    }

    fn process_element(
        &mut self,
        (_, v): (u64, u64),
        ctx: &mut KeyedContext<'_, u64>,
        _out: &mut ProcessOutput<'_, (u64, u64)>,
    ) -> UserResult {
        let h = self.sum.ok_or("not opened")?;
        *ctx.value_state(&h).get_or_insert_with(|| 0) += v;
        ctx.register_event_time_timer(i64::MAX - 1);
        Ok(())
    }

    fn on_timer(
        &mut self,
        _time: i64,
        _domain: TimeDomain,
        ctx: &mut KeyedContext<'_, u64>,
        out: &mut ProcessOutput<'_, (u64, u64)>,
    ) -> UserResult {
        let h = self.sum.ok_or("not opened")?;
        let key = *ctx.key();
        if let Some(sum) = ctx.value_state(&h).value() {
            out.collect((key, *sum));
        }
        Ok(())
    }
}

/// A small deterministic generator of test parameters.
struct Rng(u64);

impl Rng {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

fn expected(n: u64, keys: u64) -> Vec<(u64, u64)> {
    let mut sums: BTreeMap<u64, u64> = BTreeMap::new();
    for i in 0..n {
        *sums.entry(i % keys).or_default() += i;
    }
    sums.into_iter().collect()
}

/// Runs the summing job over `n` records, failing once at each index of `fail_at`.
fn run(
    n: u64,
    keys: u64,
    parallelism: u32,
    mode: CheckpointingMode,
    fail_at: Vec<u64>,
) -> (Vec<(u64, u64)>, JobResult) {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism)
        .set_batch_size(64)
        .set_handle_ctrl_c(false);
    let mut config = CheckpointConfig::every(Duration::from_millis(5));
    config.mode = mode;
    config.restart = RestartStrategy::FixedDelay {
        attempts: 10,
        delay: Duration::from_millis(1),
    };
    env.set_checkpointing(config);
    // The next failure point; each failure moves on to the next one.
    let failures = Arc::new(fail_at);
    let next_failure = Arc::new(AtomicU64::new(0));
    let sums = env
        .generate(n, move |i| (i % keys, i))
        .map(move |(k, v)| {
            let f = next_failure.load(Ordering::SeqCst) as usize;
            if failures.get(f) == Some(&v) {
                next_failure.fetch_add(1, Ordering::SeqCst);
                panic!("injected failure at record {v}");
            }
            (k, v)
        })
        .key_by(|r| r.0)
        .process(FinalSum::default())
        .collect();
    let result = env.execute("checkpointed sums").unwrap();
    let mut got = sums.take();
    got.sort_unstable();
    (got, result)
}

#[test]
fn a_failed_job_restores_keyed_state_and_timers_exactly_once() {
    let _watchdog = Watchdog::start("checkpoint failure injection", Duration::from_secs(300));
    let mut rng = Rng(test_seed("a_failed_job_restores_keyed_state_and_timers_exactly_once") | 1);
    for round in 0..6 {
        let n = 200_000 + rng.next(200_000);
        let keys = 1 + rng.next(500);
        let parallelism = 1 + rng.next(3) as u32;
        let failures = 1 + rng.next(3);
        let mut fail_at: Vec<u64> = (0..failures).map(|_| n / 8 + rng.next(n * 3 / 4)).collect();
        fail_at.sort_unstable();
        fail_at.dedup();
        eprintln!(
            "round {round}: n={n} keys={keys} parallelism={parallelism} failures at {fail_at:?}"
        );
        let (got, result) = run(
            n,
            keys,
            parallelism,
            CheckpointingMode::ExactlyOnce,
            fail_at.clone(),
        );
        // A failure point a restored subtask has already passed is not hit again.
        assert!(
            (1..=fail_at.len()).contains(&(result.restarts as usize)),
            "{} restarts for {} failure points",
            result.restarts,
            fail_at.len()
        );
        assert_eq!(
            got,
            expected(n, keys),
            "round {round}: every record counted exactly once"
        );
        eprintln!(
            "round {round}: {} checkpoints completed, {} restarts",
            result.checkpoints.len(),
            result.restarts
        );
    }
}

#[test]
fn checkpoints_complete_while_the_job_runs() {
    let (got, result) = run(400_000, 100, 2, CheckpointingMode::ExactlyOnce, Vec::new());
    assert_eq!(got, expected(400_000, 100));
    assert!(!result.checkpoints.is_empty(), "no checkpoint completed");
    assert!(result.checkpoints.windows(2).all(|w| w[0] < w[1]));
    let (got, result) = run(400_000, 100, 2, CheckpointingMode::AtLeastOnce, Vec::new());
    assert_eq!(
        got,
        expected(400_000, 100),
        "without failures at-least-once is exact too"
    );
    assert!(!result.checkpoints.is_empty());
}
