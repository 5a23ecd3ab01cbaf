//! Unaligned checkpoints: barriers overtake the data queued in back-pressured channels,
//! which becomes part of the checkpoint and is replayed on restore.
//!
//! * Under heavy back-pressure, aligned checkpoints time out while unaligned ones
//!   complete well within the same timeout.
//! * Failure injection: a two-input keyed job and a windowed job, both writing through
//!   the transactional file sink, fail at random records and restore from unaligned
//!   checkpoints holding in-flight data; the committed output equals a failure-free run.
//! * A job stopped with in-flight data in its last checkpoint resumes exactly; at another
//!   parallelism it is refused with an explanation.
//!
//! Each randomized test prints its seed; replay with `SLUICE_TEST_SEED=<seed>`.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_api::connectors::GeneratorSource;
use sluice_api::prelude::*;
use sluice_api::{CheckpointConfig, CheckpointStats, RestartStrategy};
use sluice_testkit::seed::test_seed;
use sluice_testkit::watchdog::{wait_until, Watchdog};

/// Sleeps through the clock abstraction (tests do not call `thread::sleep`).
fn sleep_ms(ms: u64) {
    use sluice_core::Clock;
    sluice_core::SystemClock.sleep(Duration::from_millis(ms));
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

/// Unaligned checkpoints every 5 ms, restarting up to 10 times in a row, 1 ms apart.
fn unaligned(interval_ms: u64) -> CheckpointConfig {
    let mut config = CheckpointConfig::every(Duration::from_millis(interval_ms));
    config.unaligned = true;
    config.restart = RestartStrategy::FixedDelay {
        attempts: 10,
        delay: Duration::from_millis(1),
    };
    config
}

#[test]
fn unaligned_checkpoints_complete_under_back_pressure_where_aligned_ones_time_out() {
    let _watchdog = Watchdog::start("back-pressured checkpoints", Duration::from_secs(180));
    // A fast source, a forwarding task, and a sink task that takes 1 ms per record. With
    // 16-record batches and 32 batches per channel, an aligned barrier waits behind about
    // 1,000 queued records (over 1 s) before the sink sees it; an unaligned one waits
    // only for the batch each task is working on.
    let timeout = Duration::from_millis(400);
    let mut figures = Vec::new();
    for unaligned in [false, true] {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(1)
            .set_batch_size(16)
            .set_channel_capacity(32)
            .set_handle_ctrl_c(false);
        let mut config = CheckpointConfig::every(Duration::from_millis(100));
        config.timeout = timeout;
        config.unaligned = unaligned;
        env.set_checkpointing(config);
        let seen = Arc::new(AtomicU64::new(0));
        let s = Arc::clone(&seen);
        env.add_source("Fast", GeneratorSource::unbounded(|i| i))
            .start_new_chain()
            .map(|v| v + 1)
            .start_new_chain()
            .map(move |v| {
                sleep_ms(1);
                s.fetch_add(1, Ordering::Relaxed);
                v
            })
            .discard();
        let job = env.execute_async("back-pressured");
        wait_until("the slow sink to work through 2,500 records", || {
            seen.load(Ordering::Relaxed) > 2_500
        });
        job.cancel();
        let result = job.join().unwrap();
        eprintln!(
            "unaligned={unaligned}: {} completed, {} aborted; {:?}",
            result.checkpoints.len(),
            result.checkpoints_aborted,
            result.checkpoint_stats
        );
        figures.push(result);
    }
    let (aligned, unaligned) = (&figures[0], &figures[1]);
    assert!(
        aligned.checkpoints.is_empty() && aligned.checkpoints_aborted >= 1,
        "aligned barriers wait behind the full channels and time out"
    );
    assert!(
        unaligned.checkpoints.len() >= 3,
        "unaligned checkpoints complete under the same back-pressure: {:?}",
        unaligned.checkpoint_stats
    );
    for stats in &unaligned.checkpoint_stats {
        assert!(stats.unaligned && stats.duration < timeout, "{stats:?}");
    }
    assert!(
        unaligned
            .checkpoint_stats
            .iter()
            .any(|s| s.in_flight_bytes > 0),
        "the overtaken in-flight data is part of the checkpoints"
    );
}

/// Sums per key over both inputs, emitted when the input ends.
#[derive(Clone, Default)]
struct BothSums {
    sum: Option<ValueStateHandle<u64>>,
}

impl BothSums {
    fn add(&self, v: u64, ctx: &mut KeyedContext<'_, u64>) -> UserResult {
        let h = self.sum.ok_or("not opened")?;
        *ctx.value_state(&h).get_or_insert_with(|| 0) += v;
        ctx.register_event_time_timer(i64::MAX - 1);
        Ok(())
    }
}

impl KeyedCoProcessFunction<u64, (u64, u64), (u64, u64), String> for BothSums {
    fn open(&mut self, ctx: &mut OpenContext<'_, u64>) -> UserResult {
        self.sum = Some(ctx.value_state("sum")?);
        Ok(())
    }

    fn process_element1(
        &mut self,
        (_, v): (u64, u64),
        ctx: &mut KeyedContext<'_, u64>,
        _out: &mut ProcessOutput<'_, String>,
    ) -> UserResult {
        self.add(v, ctx)
    }

    fn process_element2(
        &mut self,
        (_, v): (u64, u64),
        ctx: &mut KeyedContext<'_, u64>,
        _out: &mut ProcessOutput<'_, String>,
    ) -> UserResult {
        self.add(v * 1_000_000, ctx)
    }

    fn on_timer(
        &mut self,
        _time: i64,
        _domain: TimeDomain,
        ctx: &mut KeyedContext<'_, u64>,
        out: &mut ProcessOutput<'_, String>,
    ) -> UserResult {
        let h = self.sum.ok_or("not opened")?;
        let key = *ctx.key();
        if let Some(sum) = ctx.value_state(&h).value() {
            out.collect(format!("{key},{sum}"));
        }
        Ok(())
    }
}

/// A map that panics once at each record value in `fail_at` (shared by its subtasks).
fn failing_map(
    stream: &DataStream<(u64, u64)>,
    fail_at: Vec<u64>,
    slow_every: u64,
) -> DataStream<(u64, u64)> {
    let failures = Arc::new(fail_at);
    let next = Arc::new(AtomicU64::new(0));
    stream.map(move |(k, v)| {
        let f = next.load(Ordering::SeqCst) as usize;
        if failures.get(f) == Some(&v) {
            next.fetch_add(1, Ordering::SeqCst);
            panic!("injected failure at record {v}");
        }
        // Now and then a pause, so the channels behind fill and stay full.
        if slow_every > 0 && v % slow_every == 0 {
            sleep_ms(1);
        }
        (k, v)
    })
}

fn committed_lines(dir: &Path) -> Vec<String> {
    sluice_testkit::files::committed_lines(dir).unwrap()
}

fn in_flight_restores(result: &JobResult) -> usize {
    let with_data: Vec<&CheckpointStats> = result
        .checkpoint_stats
        .iter()
        .filter(|s| s.in_flight_bytes > 0)
        .collect();
    result
        .restores
        .iter()
        .filter(|id| with_data.iter().any(|s| s.id.0 == **id))
        .count()
}

#[test]
fn a_two_input_job_restores_its_in_flight_data_exactly_once() {
    let _watchdog = Watchdog::start("unaligned two-input restore", Duration::from_secs(300));
    let mut rng = Rng(test_seed("a_two_input_job_restores_its_in_flight_data_exactly_once") | 1);
    let (mut restores_with_data, mut rounds) = (0, 0);
    for round in 0..5 {
        let (n1, n2) = (40_000 + rng.next(60_000), 20_000 + rng.next(40_000));
        let keys = 1 + rng.next(200);
        let parallelism = 1 + rng.next(3) as u32;
        let fail1: Vec<u64> = {
            let mut f: Vec<u64> = (0..1 + rng.next(2))
                .map(|_| n1 / 8 + rng.next(n1 * 3 / 4))
                .collect();
            f.sort_unstable();
            f.dedup();
            f
        };
        let fail2 = vec![n2 / 4 + rng.next(n2 / 2)];
        eprintln!(
            "round {round}: n1={n1} n2={n2} keys={keys} parallelism={parallelism} failures at {fail1:?} and {fail2:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(parallelism)
            .set_batch_size(16)
            .set_channel_capacity(4)
            .set_handle_ctrl_c(false);
        env.set_checkpointing(unaligned(5));
        let first =
            failing_map(&env.generate(n1, move |i| (i % keys, i)), fail1, 500).key_by(|r| r.0);
        let second =
            failing_map(&env.generate(n2, move |i| (i % keys, i)), fail2, 0).key_by(|r| r.0);
        first
            .connect(&second)
            .process(BothSums::default())
            .sink_to_files(dir.path());
        let result = env.execute("unaligned two inputs").unwrap();
        let mut expected: BTreeMap<u64, u64> = BTreeMap::new();
        for i in 0..n1 {
            *expected.entry(i % keys).or_default() += i;
        }
        for i in 0..n2 {
            *expected.entry(i % keys).or_default() += i * 1_000_000;
        }
        let mut expected: Vec<String> = expected
            .into_iter()
            .map(|(k, s)| format!("{k},{s}"))
            .collect();
        expected.sort();
        assert!(result.restarts >= 1);
        eprintln!(
            "round {round}: {} restarts from {:?}; {} checkpoints, {} with in-flight data",
            result.restarts,
            result.restores,
            result.checkpoints.len(),
            result
                .checkpoint_stats
                .iter()
                .filter(|s| s.in_flight_bytes > 0)
                .count()
        );
        assert_eq!(
            committed_lines(dir.path()),
            expected,
            "round {round}: committed output differs from a failure-free run"
        );
        restores_with_data += in_flight_restores(&result);
        rounds += 1;
    }
    assert!(
        restores_with_data > 0,
        "in {rounds} rounds no restore had in-flight data to replay: the test lost its point"
    );
}

struct CountSum;

impl AggregateFunction<(u64, u64), (u64, u64), (u64, u64)> for CountSum {
    fn create_accumulator(&self) -> (u64, u64) {
        (0, 0)
    }
    fn add(&self, v: (u64, u64), acc: &mut (u64, u64)) {
        acc.0 += 1;
        acc.1 += v.1;
    }
    fn get_result(&self, acc: &(u64, u64)) -> (u64, u64) {
        *acc
    }
    fn merge(&self, a: (u64, u64), b: (u64, u64)) -> (u64, u64) {
        (a.0 + b.0, a.1 + b.1)
    }
}

fn expected_windows(n: u64, keys: u64) -> Vec<String> {
    let mut windows: BTreeMap<(u64, u64), (u64, u64)> = BTreeMap::new();
    for i in 0..n {
        let start = (i / 10) / 100 * 100;
        let e = windows.entry((i % keys, start)).or_default();
        e.0 += 1;
        e.1 += i;
    }
    let mut lines: Vec<String> = windows
        .into_iter()
        .map(|((k, start), (count, sum))| format!("{k},{start},{count},{sum}"))
        .collect();
    lines.sort();
    lines
}

/// Counts and sums per key and 100 ms event-time window, written to `out`.
fn windowed_job(
    env: &StreamExecutionEnvironment,
    source: GeneratorSource<(u64, u64)>,
    fail_at: Vec<u64>,
    out: &Path,
) {
    let stamped = env.from_source(
        "Numbers",
        source,
        WatermarkStrategy::for_monotonous_timestamps()
            .with_timestamp_assigner(|r: &(u64, u64)| (r.1 / 10) as i64),
    );
    failing_map(&stamped, fail_at, 700)
        .key_by(|r| r.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
        .aggregate_with(CountSum, |k, w, (count, sum)| {
            format!("{k},{},{count},{sum}", w.start)
        })
        .sink_to_files(out);
}

#[test]
fn windows_restore_their_in_flight_data_and_commit_each_result_once() {
    let _watchdog = Watchdog::start("unaligned windows", Duration::from_secs(300));
    let mut rng =
        Rng(test_seed("windows_restore_their_in_flight_data_and_commit_each_result_once") | 1);
    let mut restores_with_data = 0;
    for round in 0..4 {
        let n = 60_000 + rng.next(100_000);
        let keys = 1 + rng.next(60);
        let parallelism = 1 + rng.next(3) as u32;
        let mut fail_at: Vec<u64> = (0..1 + rng.next(3))
            .map(|_| n / 8 + rng.next(n * 3 / 4))
            .collect();
        fail_at.sort_unstable();
        fail_at.dedup();
        eprintln!(
            "round {round}: n={n} keys={keys} parallelism={parallelism} failures at {fail_at:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(parallelism)
            .set_batch_size(16)
            .set_channel_capacity(4)
            .set_handle_ctrl_c(false);
        env.set_checkpointing(unaligned(5));
        let keys_ = keys;
        windowed_job(
            &env,
            GeneratorSource::bounded(n, move |i| (i % keys_, i)),
            fail_at,
            dir.path(),
        );
        let result = env.execute("unaligned windows").unwrap();
        assert!(result.restarts >= 1);
        eprintln!(
            "round {round}: {} restarts from {:?}; {} checkpoints",
            result.restarts,
            result.restores,
            result.checkpoints.len()
        );
        assert_eq!(
            committed_lines(dir.path()),
            expected_windows(n, keys),
            "round {round}: committed output differs from a failure-free run"
        );
        restores_with_data += in_flight_restores(&result);
    }
    assert!(
        restores_with_data > 0,
        "no restore had in-flight data to replay: the test lost its point"
    );
}

#[test]
fn a_stopped_job_resumes_its_in_flight_data_and_refuses_another_parallelism() {
    let _watchdog = Watchdog::start("unaligned stop and resume", Duration::from_secs(180));
    let (n, keys) = (60_000u64, 11u64);
    let dir = tempfile::tempdir().unwrap();
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
    // Source and map form one task without inputs; the slow keyed function and the sink
    // form the only task with input channels, so all in-flight data is its.
    let job = |stop_after: Option<u64>, parallelism: u32| {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(2)
            .set_batch_size(16)
            .set_channel_capacity(4)
            .set_handle_ctrl_c(false);
        let mut config = unaligned(if stop_after.is_some() { 5 } else { 10_000 });
        config.directory = Some(chk.clone());
        config.restart = RestartStrategy::None;
        env.set_checkpointing(config);
        let seen = Arc::new(AtomicU64::new(0));
        let s = Arc::clone(&seen);
        env.add_source(
            "Numbers",
            GeneratorSource::bounded(n, move |i| (i % keys, i)).with_rate(40_000.0),
        )
        .map(move |r| {
            s.fetch_add(1, Ordering::Relaxed);
            r
        })
        .key_by(|r| r.0)
        .process(Slow)
        .set_parallelism(parallelism)
        .sink_to_files(&out)
        .set_parallelism(parallelism);
        let handle = env.execute_async("unaligned stop and resume");
        if let Some(after) = stop_after {
            wait_until("records to flow", || seen.load(Ordering::Relaxed) > after);
            handle.stop();
        }
        handle.join()
    };
    let stopped = job(Some(n / 3), 2).unwrap();
    assert_eq!(stopped.status, JobStatus::Stopped);
    eprintln!("stopped run: {:?}", stopped.checkpoint_stats);
    let last = stopped.checkpoint_stats.last().expect("a checkpoint");
    assert!(
        last.in_flight_bytes > 0,
        "the consumer is half as fast as the source: its channels are full"
    );
    let refused = job(None, 3).unwrap_err().to_string();
    assert!(
        refused.contains("in-flight data") && refused.contains("savepoint"),
        "{refused}"
    );
    let resumed = job(None, 2).unwrap();
    assert_eq!(resumed.status, JobStatus::Finished);
    assert!(resumed.restored_from.is_some(), "the second run resumed");
    let mut expected: Vec<String> = (0..n).map(|i| format!("{},{i}", i % keys)).collect();
    expected.sort();
    assert_eq!(committed_lines(&out), expected, "every record once");
}

/// Passes each record on as a line, slowly now and then (so the channels in front of it
/// stay full).
#[derive(Clone)]
struct Slow;

impl KeyedProcessFunction<u64, (u64, u64), String> for Slow {
    fn process_element(
        &mut self,
        (k, v): (u64, u64),
        _ctx: &mut KeyedContext<'_, u64>,
        out: &mut ProcessOutput<'_, String>,
    ) -> UserResult {
        // About 10,000 records a second per subtask: half the source's rate.
        if v % 10 == 0 {
            sleep_ms(1);
        }
        out.collect(format!("{k},{v}"));
        Ok(())
    }
}
