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

/// Checkpoints every 5 ms, restarting up to `attempts` times in a row, 1 ms apart.
fn restarting(attempts: u32) -> CheckpointConfig {
    let mut config = CheckpointConfig::every(Duration::from_millis(5));
    config.restart = RestartStrategy::FixedDelay {
        attempts,
        delay: Duration::from_millis(1),
    };
    config
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
    let mut config = restarting(10);
    config.mode = mode;
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

/// The transactional file sink with two injected failures, each once: right after its
/// pre-commit of its `fail_snapshot`-th checkpoint (which then never completes), and when
/// told that its `fail_notify`-th checkpoint completed, before it commits (the failure
/// between pre-commit and commit that a restore must finish).
#[derive(Clone)]
struct FailingSink {
    dir: std::path::PathBuf,
    fail_snapshot: u64,
    fail_notify: u64,
    failed: Arc<AtomicU64>,
    /// Pre-commits holding files and commit notifications so far, over every subtask
    /// and attempt (counted per writer, a short last attempt might never reach them).
    snapshots: Arc<AtomicU64>,
    notifications: Arc<AtomicU64>,
}

struct FailingWriter {
    inner: Box<dyn sluice_api::runtime::sink::SinkWriter<String>>,
    sink: FailingSink,
}

impl sluice_api::runtime::sink::Sink<String> for FailingSink {
    fn create_writer(
        &self,
        ctx: &sluice_api::runtime::OperatorContext,
    ) -> sluice_api::Result<Box<dyn sluice_api::runtime::sink::SinkWriter<String>>> {
        let files =
            sluice_api::connectors::TransactionalFileSink::new(&self.dir, |s: &String| s.clone());
        Ok(Box::new(FailingWriter {
            inner: files.create_writer(ctx)?,
            sink: self.clone(),
        }))
    }
}

impl sluice_api::runtime::sink::SinkWriter<String> for FailingWriter {
    fn open(&mut self, ctx: &sluice_api::runtime::OperatorContext) -> sluice_api::Result<()> {
        self.inner.open(ctx)
    }

    fn write(&mut self, batch: sluice_api::Records<String>) -> sluice_api::Result<()> {
        self.inner.write(batch)
    }

    fn snapshot_state(
        &mut self,
        checkpoint: sluice_core::CheckpointId,
    ) -> sluice_api::Result<Option<Vec<u8>>> {
        let state = self.inner.snapshot_state(checkpoint)?;
        // Count only pre-commits that hold files (the state lists more than the next file
        // number and an empty pending list): failing then leaves pre-committed output.
        let snapshots = if state.as_ref().is_some_and(|s| s.len() > 16) {
            self.sink.snapshots.fetch_add(1, Ordering::SeqCst) + 1
        } else {
            self.sink.snapshots.load(Ordering::SeqCst)
        };
        if snapshots >= self.sink.fail_snapshot
            && self.sink.failed.fetch_or(1, Ordering::SeqCst) & 1 == 0
        {
            return Err(sluice_api::Error::User(
                "injected failure after a pre-commit".into(),
            ));
        }
        Ok(state)
    }

    fn notify_checkpoint_complete(
        &mut self,
        checkpoint: sluice_core::CheckpointId,
    ) -> sluice_api::Result<()> {
        let notifications = self.sink.notifications.fetch_add(1, Ordering::SeqCst) + 1;
        if notifications >= self.sink.fail_notify
            && self.sink.failed.fetch_or(2, Ordering::SeqCst) & 2 == 0
        {
            return Err(sluice_api::Error::User(
                "injected failure between pre-commit and commit".into(),
            ));
        }
        self.inner.notify_checkpoint_complete(checkpoint)
    }

    fn finish(&mut self) -> sluice_api::Result<()> {
        self.inner.finish()
    }
}

/// A windowed job writing through the transactional file sink: counts and sums per key
/// and 100 ms event-time window, failing at each index of `fail_at` once, and once in a
/// second sink's snapshot and once in its commit notification.
fn run_windowed(
    dir: &std::path::Path,
    n: u64,
    keys: u64,
    parallelism: u32,
    fail_at: Vec<u64>,
    failing: FailingSink,
) -> JobResult {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism)
        .set_batch_size(64)
        .set_handle_ctrl_c(false);
    env.set_checkpointing(restarting(10));
    let failures = Arc::new(fail_at);
    let next_failure = Arc::new(AtomicU64::new(0));
    let windows = env
        .generate(n, move |i| (i % keys, i))
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|r: &(u64, u64)| (r.1 / 10) as i64),
        )
        .map(move |(k, v)| {
            let f = next_failure.load(Ordering::SeqCst) as usize;
            if failures.get(f) == Some(&v) {
                next_failure.fetch_add(1, Ordering::SeqCst);
                panic!("injected failure at record {v}");
            }
            (k, v)
        })
        .key_by(|r| r.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
        .aggregate_with(CountSum, |k, w, (count, sum)| {
            format!("{k},{},{count},{sum}", w.start)
        });
    let _ = dir;
    windows.add_sink("Files", failing);
    env.execute("windowed sums").unwrap()
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

fn committed_lines(dir: &std::path::Path) -> Vec<String> {
    sluice_testkit::files::committed_lines(dir).unwrap()
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

#[test]
fn windows_and_the_transactional_sink_commit_every_result_exactly_once() {
    let _watchdog = Watchdog::start("windowed failure injection", Duration::from_secs(300));
    let mut rng =
        Rng(test_seed("windows_and_the_transactional_sink_commit_every_result_exactly_once") | 1);
    for round in 0..4 {
        let n = 100_000 + rng.next(150_000);
        let keys = 1 + rng.next(50);
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
        let failing = FailingSink {
            dir: dir.path().to_path_buf(),
            fail_snapshot: 1 + rng.next(2),
            fail_notify: 1 + rng.next(3),
            snapshots: Arc::default(),
            notifications: Arc::default(),
            failed: Arc::new(AtomicU64::new(0)),
        };
        let fired = Arc::clone(&failing.failed);
        let result = run_windowed(dir.path(), n, keys, parallelism, fail_at, failing);
        assert_eq!(
            fired.load(Ordering::SeqCst),
            3,
            "both the failure after a pre-commit and the one before a commit happened"
        );
        assert!(
            result.restores.iter().any(|&id| id > 0),
            "{:?}",
            result.restores
        );
        assert!(result.restarts >= 1);
        eprintln!(
            "round {round}: {} restarts, {} checkpoints",
            result.restarts,
            result.checkpoints.len()
        );
        assert_eq!(
            committed_lines(dir.path()),
            expected_windows(n, keys),
            "round {round}: committed output differs from a failure-free run"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".inprogress"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "in-progress files left: {leftovers:?}"
        );
    }
}

/// The summing job over a paced source of `n` records with a fixed source parallelism of
/// 2 and `parallelism` summing subtasks; `seen` counts records read.
fn paced_sums(
    env: &StreamExecutionEnvironment,
    n: u64,
    keys: u64,
    parallelism: u32,
    seen: Arc<AtomicU64>,
) -> sluice_api::connectors::CollectSink<(u64, u64)> {
    env.add_source(
        "Paced",
        sluice_api::connectors::GeneratorSource::bounded(n, move |i| (i % keys, i))
            .with_rate(100_000.0),
    )
    .set_parallelism(2)
    .map(move |r| {
        seen.fetch_add(1, Ordering::Relaxed);
        r
    })
    .set_parallelism(2)
    .key_by(|r| r.0)
    .process(FinalSum::default())
    .set_parallelism(parallelism)
    .collect()
}

#[test]
fn a_savepoint_restores_keyed_state_into_another_parallelism() {
    let _watchdog = Watchdog::start("savepoint and rescale", Duration::from_secs(120));
    let (n, keys) = (150_000, 97);
    let dir = tempfile::tempdir().unwrap();
    let savepoint_dir = dir.path().join("savepoint");
    for (before, after) in [(2, 1), (2, 4)] {
        let _ = std::fs::remove_dir_all(&savepoint_dir);
        // The first job runs for a while, takes a savepoint and is cancelled.
        let env = StreamExecutionEnvironment::new();
        env.set_handle_ctrl_c(false)
            .enable_checkpointing(Duration::from_secs(3600));
        let seen = Arc::new(AtomicU64::new(0));
        let first = paced_sums(&env, n, keys, before, Arc::clone(&seen));
        let job = env.execute_async("rescaled sums");
        sluice_testkit::watchdog::wait_until("records to flow", || {
            seen.load(Ordering::Relaxed) > n / 4
        });
        let path = job.trigger_savepoint(&savepoint_dir).unwrap();
        assert_eq!(path, savepoint_dir);
        job.cancel();
        let _ = job.join();
        assert!(
            first.take().is_empty(),
            "a cancelled job emits no final sums"
        );
        // The second job starts from the savepoint with another parallelism.
        let env = StreamExecutionEnvironment::new();
        env.set_handle_ctrl_c(false);
        let mut config = CheckpointConfig::every(Duration::from_secs(3600));
        config.restore_from = Some(savepoint_dir.clone());
        env.set_checkpointing(config);
        let seen_after = Arc::new(AtomicU64::new(0));
        let second = paced_sums(&env, n, keys, after, Arc::clone(&seen_after));
        let result = env.execute("rescaled sums").unwrap();
        assert!(result.restored_from.is_some());
        assert!(
            seen_after.load(Ordering::Relaxed) < n,
            "the second job read only what came after the savepoint"
        );
        let mut got = second.take();
        got.sort_unstable();
        assert_eq!(got, expected(n, keys), "{before} -> {after} subtasks");
    }
}

#[test]
fn a_file_source_rewinds_to_its_checkpointed_position() {
    let _watchdog = Watchdog::start("file source rewind", Duration::from_secs(120));
    let mut rng = Rng(test_seed("a_file_source_rewinds_to_its_checkpointed_position") | 1);
    let dir = tempfile::tempdir().unwrap();
    // Several files, so each subtask reads several splits in turn.
    let n: u64 = 300_000;
    let files = 5u64;
    for f in 0..files {
        let text: String = (0..n)
            .filter(|i| i % files == f)
            .map(|i| format!("{i}\n"))
            .collect();
        std::fs::write(dir.path().join(format!("numbers-{f}.txt")), text).unwrap();
    }
    for round in 0..3 {
        let parallelism = 1 + rng.next(3) as u32;
        let fail_at = n / 8 + rng.next(n * 3 / 4);
        eprintln!("round {round}: parallelism {parallelism}, failure at {fail_at}");
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(parallelism)
            .set_batch_size(64)
            .set_handle_ctrl_c(false);
        env.set_checkpointing(restarting(3));
        let failed = Arc::new(AtomicU64::new(0));
        let sums = env
            .read_text_file(dir.path())
            .map(move |line: String| {
                let v: u64 = line.parse().unwrap();
                if v == fail_at && failed.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("injected failure at line {v}");
                }
                (v % 7, v)
            })
            .key_by(|r| r.0)
            .process(FinalSum::default())
            .collect();
        let result = env.execute("file sums").unwrap();
        assert_eq!(result.restarts, 1);
        let mut got = sums.take();
        got.sort_unstable();
        assert_eq!(
            got,
            expected(n, 7),
            "round {round}: every line counted once"
        );
    }
}

#[test]
fn checkpoints_time_out_and_only_the_retained_ones_stay() {
    let _watchdog = Watchdog::start("timeouts and retention", Duration::from_secs(120));
    // Each record takes 5 ms downstream of a source that is always ahead, so a barrier
    // waits behind full channels for more than 5 ms: with a 1 ms timeout no checkpoint
    // completes (the job runs on and stops cleanly), with a generous one they do.
    for (timeout, completes) in [
        (Duration::from_millis(1), false),
        (Duration::from_secs(10), true),
    ] {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(1)
            .set_batch_size(1)
            .set_channel_capacity(1)
            .set_handle_ctrl_c(false);
        let mut config = CheckpointConfig::every(Duration::from_millis(10));
        config.timeout = timeout;
        env.set_checkpointing(config);
        let seen = Arc::new(AtomicU64::new(0));
        let s = Arc::clone(&seen);
        env.add_source(
            "Paced",
            sluice_api::connectors::GeneratorSource::unbounded(|i| i).with_rate(5_000.0),
        )
        .start_new_chain()
        .map(move |v| {
            sleep_ms(5);
            s.fetch_add(1, Ordering::Relaxed);
            v
        })
        .start_new_chain()
        .key_by(|v| v % 3)
        .sum(|v| v)
        .discard();
        let job = env.execute_async("slow");
        sluice_testkit::watchdog::wait_until("records to flow", || {
            seen.load(Ordering::Relaxed) > 60
        });
        job.stop();
        let result = job.join().unwrap();
        if completes {
            assert!(
                !result.checkpoints.is_empty(),
                "with a 10 s timeout they complete"
            );
        } else {
            assert!(result.checkpoints.is_empty(), "{:?}", result.checkpoints);
            assert!(
                result.checkpoints_aborted > 2,
                "{}",
                result.checkpoints_aborted
            );
        }
    }

    // An unbounded job stopped after several checkpoints keeps only the retained ones.
    let dir = tempfile::tempdir().unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2).set_handle_ctrl_c(false);
    let mut config = CheckpointConfig::every(Duration::from_millis(5));
    config.directory = Some(dir.path().to_path_buf());
    config.retained = 2;
    env.set_checkpointing(config);
    let seen = Arc::new(AtomicU64::new(0));
    let s = Arc::clone(&seen);
    env.add_source(
        "Endless",
        sluice_api::connectors::GeneratorSource::unbounded(|i| (i % 5, i)).with_rate(50_000.0),
    )
    .map(move |r| {
        s.fetch_add(1, Ordering::Relaxed);
        r
    })
    .key_by(|r| r.0)
    .process(FinalSum::default())
    .discard();
    let job = env.execute_async("retained");
    sluice_testkit::watchdog::wait_until("records to flow", || {
        seen.load(Ordering::Relaxed) > 20_000
    });
    job.stop();
    let result = job.join().unwrap();
    assert!(result.checkpoints.len() > 2, "{:?}", result.checkpoints);
    let kept: Vec<String> = std::fs::read_dir(dir.path().join("retained"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    let last = result.checkpoints.last().unwrap();
    assert!(kept.contains(&format!("chk-{last}")), "{kept:?}");
}

/// Sleeps through the job's clock abstraction (tests do not call `thread::sleep`).
fn sleep_ms(ms: u64) {
    use sluice_core::Clock;
    sluice_core::SystemClock.sleep(Duration::from_millis(ms));
}

/// Fails once in `open` when it starts from a restored state: the failure happens during
/// the restore, and the job must restore again.
#[derive(Clone)]
struct FailingRestore {
    inner: FinalSum,
    failed: Arc<AtomicU64>,
}

impl KeyedProcessFunction<u64, (u64, u64), (u64, u64)> for FailingRestore {
    fn open(&mut self, ctx: &mut OpenContext<'_, u64>) -> UserResult {
        if ctx.operator().restored.is_some() && self.failed.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err("injected failure during restore".into());
        }
        self.inner.open(ctx)
    }

    fn process_element(
        &mut self,
        value: (u64, u64),
        ctx: &mut KeyedContext<'_, u64>,
        out: &mut ProcessOutput<'_, (u64, u64)>,
    ) -> UserResult {
        self.inner.process_element(value, ctx, out)
    }

    fn on_timer(
        &mut self,
        time: i64,
        domain: TimeDomain,
        ctx: &mut KeyedContext<'_, u64>,
        out: &mut ProcessOutput<'_, (u64, u64)>,
    ) -> UserResult {
        self.inner.on_timer(time, domain, ctx, out)
    }
}

#[test]
fn a_failure_during_restore_restores_again() {
    let _watchdog = Watchdog::start("failure during restore", Duration::from_secs(120));
    let (n, keys) = (200_000, 31);
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2)
        .set_batch_size(64)
        .set_handle_ctrl_c(false);
    env.set_checkpointing(restarting(5));
    let failed = Arc::new(AtomicU64::new(0));
    let sums = env
        .generate(n, move |i| (i % keys, i))
        .map(move |(k, v)| {
            if v == n / 3 && failed.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("injected failure at record {v}");
            }
            (k, v)
        })
        .key_by(|r| r.0)
        .process(FailingRestore {
            inner: FinalSum::default(),
            failed: Arc::new(AtomicU64::new(0)),
        })
        .collect();
    let result = env.execute("restore failure").unwrap();
    let mut got = sums.take();
    got.sort_unstable();
    assert_eq!(got, expected(n, keys));
    assert_eq!(result.restarts, 2, "the failure and the failed restore");
}

#[test]
fn the_text_file_sink_truncates_to_its_checkpoint_on_restore() {
    let _watchdog = Watchdog::start("text file sink restore", Duration::from_secs(120));
    let n = 200_000u64;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("numbers.txt");
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2)
        .set_batch_size(64)
        .set_handle_ctrl_c(false);
    env.set_checkpointing(restarting(3));
    let failed = Arc::new(AtomicU64::new(0));
    env.generate(n, |i| i)
        .map(move |v| {
            if v == n / 3 && failed.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("injected failure at record {v}");
            }
            v
        })
        .write_as_text(&path)
        .set_parallelism(1);
    let result = env.execute("text file").unwrap();
    assert_eq!(result.restarts, 1);
    let mut lines: Vec<u64> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        (0..n).collect::<Vec<_>>(),
        "every record once in the file"
    );
}

#[test]
fn a_stopped_job_resumes_where_it_stopped_and_commits_each_result_once() {
    let _watchdog = Watchdog::start("stop and resume", Duration::from_secs(120));
    let (n, keys) = (60_000u64, 13u64);
    let dir = tempfile::tempdir().unwrap();
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
    let job = |stop_after: Option<u64>| {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(2).set_handle_ctrl_c(false);
        // The stopped run checkpoints often (one is likely in progress when it stops); the
        // resumed run rarely, so it writes few files: files the stopped run made final
        // after its last checkpoint would not all be overwritten by the replay.
        let interval = if stop_after.is_some() { 5 } else { 10_000 };
        let mut config = CheckpointConfig::every(Duration::from_millis(interval));
        config.directory = Some(chk.clone());
        env.set_checkpointing(config);
        let seen = Arc::new(AtomicU64::new(0));
        let s = Arc::clone(&seen);
        env.from_source(
            "Numbers",
            sluice_api::connectors::GeneratorSource::bounded(n, move |i| (i % keys, i))
                .with_rate(40_000.0),
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|r: &(u64, u64)| (r.1 / 10) as i64),
        )
        .map(move |r| {
            s.fetch_add(1, Ordering::Relaxed);
            r
        })
        .key_by(|r| r.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
        .aggregate_with(CountSum, |k, w, (count, sum)| {
            format!("{k},{},{count},{sum}", w.start)
        })
        .sink_to_files(&out);
        let handle = env.execute_async("stop and resume");
        if let Some(after) = stop_after {
            sluice_testkit::watchdog::wait_until("records to flow", || {
                seen.load(Ordering::Relaxed) > after
            });
            handle.stop();
        }
        handle.join().unwrap()
    };
    let stopped = job(Some(n / 3));
    assert_eq!(stopped.status, JobStatus::Stopped);
    assert!(!stopped.checkpoints.is_empty());
    let resumed = job(None);
    assert_eq!(resumed.status, JobStatus::Finished);
    assert!(resumed.restored_from.is_some(), "the second run resumed");
    assert_eq!(committed_lines(&out), expected_windows(n, keys));
}
