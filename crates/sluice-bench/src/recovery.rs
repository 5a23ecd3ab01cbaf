//! The `recovery` workload: a running sum per key over many keys (1 M by default) with
//! checkpoints, and one injected failure (at 60% of the events by default). It reports what a checkpoint of that
//! much keyed state costs (duration from trigger to completion, bytes) and how long the
//! job was down: from the failure to the first record processed after the restore
//! (cancelling the failed attempt, reading the checkpoint, redeploying, restoring the
//! state).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_api::prelude::*;
use sluice_api::{CheckpointStats, RestartStrategy};
use sluice_core::{Clock, SystemClock};

/// Nanoseconds on the monotonic clock; 0 means "not yet".
fn now_nanos() -> u64 {
    SystemClock.monotonic_nanos().max(1)
}

/// Mean and maximum of the checkpoints' durations (ms), and the largest state (bytes).
pub(crate) fn summarize(stats: &[CheckpointStats]) -> String {
    if stats.is_empty() {
        return String::new();
    }
    let ms: Vec<f64> = stats
        .iter()
        .map(|s| s.duration.as_secs_f64() * 1e3)
        .collect();
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    let max = ms.iter().copied().fold(0.0, f64::max);
    let state = stats.iter().map(|s| s.state_bytes).max().unwrap_or(0);
    let in_flight = stats.iter().map(|s| s.in_flight_bytes).max().unwrap_or(0);
    format!(
        " checkpoint_ms_mean={mean:.1} checkpoint_ms_max={max:.1} state_bytes_max={state} in_flight_bytes_max={in_flight}"
    )
}

/// Runs the workload on `env` (which must have checkpointing enabled).
pub(crate) fn recovery(
    env: &StreamExecutionEnvironment,
    events: u64,
    keys: u64,
    parallelism: u32,
    fail_at: u64,
) -> anyhow::Result<()> {
    eprintln!(
        "recovery: {events} events, {keys} keys, parallelism {parallelism}, failure at event {fail_at}"
    );
    let failed_at = Arc::new(AtomicU64::new(0));
    let resumed_at = Arc::new(AtomicU64::new(0));
    let (failed, resumed) = (Arc::clone(&failed_at), Arc::clone(&resumed_at));
    // One source subtask (and the map chained to it), so no other subtask of the failed
    // attempt stamps a record after the failure.
    let sink = env
        .generate(events, move |i| (i % keys, i))
        .set_parallelism(1)
        .map(move |(k, i)| {
            if failed.load(Ordering::Relaxed) == 0 {
                if i == fail_at {
                    failed.store(now_nanos(), Ordering::SeqCst);
                    panic!("injected failure at event {i}");
                }
            } else if resumed.load(Ordering::Relaxed) == 0 {
                resumed.store(now_nanos(), Ordering::SeqCst);
            }
            (k, i)
        })
        .set_parallelism(1)
        .key_by(|(k, _)| *k)
        .sum(|(_, v)| v)
        .set_parallelism(parallelism)
        .discard();
    let result = env.execute("bench-recovery")?;
    let (failed, resumed) = (
        failed_at.load(Ordering::SeqCst),
        resumed_at.load(Ordering::SeqCst),
    );
    anyhow::ensure!(
        failed > 0 && resumed > failed,
        "the injected failure did not happen (fail-at beyond the events?)"
    );
    let downtime = Duration::from_nanos(resumed - failed);
    let seconds = result.duration.as_secs_f64();
    println!(
        "RESULT workload=recovery parallelism={parallelism} events={events} keys={keys} seconds={seconds:.3} events_per_sec={:.0} outputs={} restarts={} restored_from={:?} recovery_ms={:.1} checkpoints={}{}",
        events as f64 / seconds,
        sink.count(),
        result.restarts,
        result.restores,
        downtime.as_secs_f64() * 1e3,
        result.checkpoints.len(),
        summarize(&result.checkpoint_stats)
    );
    Ok(())
}

/// The restart strategy of the workload: at once, once.
pub(crate) fn restart_at_once() -> RestartStrategy {
    RestartStrategy::FixedDelay {
        attempts: 1,
        delay: Duration::ZERO,
    }
}
