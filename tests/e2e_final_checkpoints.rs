//! Checkpoints after tasks finished: a job whose bounded side input ended keeps taking
//! checkpoints (the finished tasks take part with their final state), and a job stopped
//! while a finished task waits for a checkpoint with its final state ends cleanly.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_api::connectors::GeneratorSource;
use sluice_api::prelude::*;
use sluice_api::CheckpointConfig;
use sluice_testkit::watchdog::{wait_until, Watchdog};

/// A bounded input of 100 records and an unbounded paced one, unioned into a sum.
fn job(interval: Duration) -> (StreamExecutionEnvironment, Arc<AtomicU64>) {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1).set_handle_ctrl_c(false);
    env.set_checkpointing(CheckpointConfig::every(interval));
    let seen = Arc::new(AtomicU64::new(0));
    let s = Arc::clone(&seen);
    let side = env.add_source("Side", GeneratorSource::bounded(100, |i| i));
    let main = env.add_source(
        "Main",
        GeneratorSource::unbounded(|i| i).with_rate(20_000.0),
    );
    main.union(&[side])
        .map(move |v| {
            s.fetch_add(1, Ordering::Relaxed);
            v
        })
        .key_by(|v| v % 3)
        .sum(|v| v)
        .discard();
    (env, seen)
}

#[test]
fn checkpoints_go_on_after_a_bounded_input_ended() {
    let _watchdog = Watchdog::start("checkpoints after finish", Duration::from_secs(60));
    let (env, seen) = job(Duration::from_millis(20));
    let handle = env.execute_async("side input");
    // Well after the side input's 100 records ended.
    wait_until("records to flow", || seen.load(Ordering::Relaxed) > 10_000);
    handle.stop();
    let result = handle.join().unwrap();
    assert!(
        result.checkpoints.len() >= 10,
        "checkpoints stopped when the side input ended: {:?}",
        result.checkpoints
    );
}

#[test]
fn a_stop_while_a_finished_task_waits_for_its_checkpoint_ends_the_job() {
    let _watchdog = Watchdog::start("stop while waiting", Duration::from_secs(60));
    // No periodic checkpoint comes within the test: the side input's finished source
    // waits for one until the stop.
    let (env, seen) = job(Duration::from_secs(3600));
    let handle = env.execute_async("side input, stopped");
    wait_until("records to flow", || seen.load(Ordering::Relaxed) > 2_000);
    handle.stop();
    let result = handle.join().unwrap();
    assert_eq!(result.status, JobStatus::Stopped);
}
