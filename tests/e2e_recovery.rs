//! Recovery from damaged checkpoint storage: a job whose latest checkpoint cannot be read
//! falls back to an older retained one, and its committed output is still exactly that
//! of a failure-free run.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_api::connectors::GeneratorSource;
use sluice_api::prelude::*;
use sluice_api::{CheckpointConfig, RestartStrategy};
use sluice_testkit::watchdog::{wait_until, Watchdog};

/// Runs the job: every record, keyed and passed through keyed state (a count per key),
/// written as a line through the transactional file sink. Stops after `stop_after`
/// records when given.
fn run(out: &Path, chk: &Path, n: u64, stop_after: Option<u64>) -> JobResult {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2).set_handle_ctrl_c(false);
    let mut config = CheckpointConfig::every(Duration::from_millis(if stop_after.is_some() {
        5
    } else {
        10_000
    }));
    config.directory = Some(chk.to_path_buf());
    config.retained = 3;
    config.restart = RestartStrategy::None;
    env.set_checkpointing(config);
    let seen = Arc::new(AtomicU64::new(0));
    let s = Arc::clone(&seen);
    env.add_source(
        "Numbers",
        GeneratorSource::bounded(n, |i| (i % 7, i)).with_rate(40_000.0),
    )
    .map(move |r| {
        s.fetch_add(1, Ordering::Relaxed);
        r
    })
    .key_by(|r| r.0)
    .reduce(|a, b| (a.0, b.1))
    .map(|r| format!("{},{}", r.0, r.1))
    .sink_to_files(out);
    let handle = env.execute_async("fallback");
    if let Some(after) = stop_after {
        wait_until("records to flow", || seen.load(Ordering::Relaxed) > after);
        handle.stop();
    }
    handle.join().unwrap()
}

#[test]
fn a_corrupt_latest_checkpoint_falls_back_to_an_older_retained_one() {
    let _watchdog = Watchdog::start("checkpoint fallback", Duration::from_secs(120));
    let n = 40_000;
    let dir = tempfile::tempdir().unwrap();
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
    let stopped = run(&out, &chk, n, Some(n / 3));
    assert_eq!(stopped.status, JobStatus::Stopped);
    let latest = *stopped.checkpoints.last().expect("checkpoints");
    assert!(stopped.checkpoints.len() >= 2, "{:?}", stopped.checkpoints);
    // Damage every state file of the latest checkpoint.
    let latest_dir = chk.join("fallback").join(format!("chk-{latest}"));
    let mut damaged = 0;
    for entry in std::fs::read_dir(&latest_dir).unwrap().flatten() {
        if entry.file_name().to_string_lossy().ends_with(".state") {
            std::fs::write(entry.path(), b"\xff\xff\xff").unwrap();
            damaged += 1;
        }
    }
    assert!(damaged > 0, "no state files in {}", latest_dir.display());
    let resumed = run(&out, &chk, n, None);
    assert_eq!(resumed.status, JobStatus::Finished);
    let from = resumed.restored_from.expect("resumed");
    assert!(
        from < latest,
        "resumed from {from}, not the damaged {latest}"
    );
    // The reduce emits its running value per record: each record's line appears once.
    let mut expected: Vec<String> = (0..n).map(|i| format!("{},{i}", i % 7)).collect();
    expected.sort();
    assert_eq!(
        sluice_testkit::files::committed_lines(&out).unwrap(),
        expected
    );
}
