//! End-to-end: bounded channels give back-pressure. A slow sink slows an unbounded
//! source: records produced but not yet consumed stay below what the channels and
//! partial batches can hold, and the process's memory stays flat. Also: stop drains
//! every record read, and cancel ends a blocked job at once.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_api::connectors::GeneratorSource;
use sluice_api::runtime::sink::{Sink, SinkWriter};
use sluice_api::runtime::OperatorContext;
use sluice_api::{JobStatus, Records, StreamExecutionEnvironment};
use sluice_core::{Clock, SystemClock};
use sluice_testkit::memory::resident_bytes;
use sluice_testkit::watchdog::{wait_until, Watchdog};

/// A sink that takes `delay` per batch and counts what it consumed.
#[derive(Clone)]
struct SlowSink {
    delay: Duration,
    consumed: Arc<AtomicU64>,
}

struct SlowWriter {
    delay: Duration,
    consumed: Arc<AtomicU64>,
}

impl<T: Send + 'static> Sink<T> for SlowSink {
    fn create_writer(&self, _ctx: &OperatorContext) -> sluice_api::Result<Box<dyn SinkWriter<T>>> {
        Ok(Box::new(SlowWriter {
            delay: self.delay,
            consumed: Arc::clone(&self.consumed),
        }))
    }
}

impl<T: Send + 'static> SinkWriter<T> for SlowWriter {
    fn write(&mut self, batch: Records<T>) -> sluice_api::Result<()> {
        SystemClock.sleep(self.delay);
        self.consumed
            .fetch_add(batch.len() as u64, Ordering::SeqCst);
        Ok(())
    }
}

struct Counters {
    produced: Arc<AtomicU64>,
    consumed: Arc<AtomicU64>,
}

/// An unbounded source of 1 KiB records, counted as they leave the source chain, into a
/// hash edge and a slow sink.
fn slow_job(env: &StreamExecutionEnvironment, delay: Duration) -> Counters {
    let produced = Arc::new(AtomicU64::new(0));
    let consumed = Arc::new(AtomicU64::new(0));
    let p = Arc::clone(&produced);
    env.add_source(
        "Endless",
        GeneratorSource::unbounded(|i| (i, "x".repeat(1024))),
    )
    .map(move |r| {
        p.fetch_add(1, Ordering::SeqCst);
        r
    })
    .key_by(|(i, _)| i % 100)
    .map(|r| r)
    .add_sink(
        "Slow",
        SlowSink {
            delay,
            consumed: Arc::clone(&consumed),
        },
    );
    Counters { produced, consumed }
}

#[test]
fn a_slow_sink_bounds_the_source_and_memory() {
    let _watchdog = Watchdog::start(
        "a_slow_sink_bounds_the_source_and_memory",
        Duration::from_secs(120),
    );
    let (parallelism, batch, capacity) = (2u32, 100usize, 2usize);
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism)
        .set_batch_size(batch)
        .set_channel_capacity(capacity)
        .set_handle_ctrl_c(false);
    let counters = slow_job(&env, Duration::from_millis(2));
    let job = env.execute_async("backpressure");
    wait_until("the sink to consume", || {
        counters.consumed.load(Ordering::SeqCst) > 2_000
    });
    let rss_start = resident_bytes();

    // In flight at most: per channel `capacity` batches plus one pending in the router,
    // and one batch being processed by each task. A shipped batch holds fewer than
    // `2 x batch` records (a router ships once a channel's pending records reach `batch`,
    // after adding at most one input batch's worth).
    let channels = (parallelism * parallelism) as u64;
    let most_per_batch = 2 * batch as u64;
    let bound =
        channels * (capacity as u64 + 1) * most_per_batch + 4 * parallelism as u64 * most_per_batch;
    let consumed_before = counters.consumed.load(Ordering::SeqCst);
    let mut max_gap = 0;
    for _ in 0..100 {
        SystemClock.sleep(Duration::from_millis(10));
        let consumed = counters.consumed.load(Ordering::SeqCst);
        let produced = counters.produced.load(Ordering::SeqCst);
        max_gap = max_gap.max(produced.saturating_sub(consumed));
    }
    let consumed = counters.consumed.load(Ordering::SeqCst);
    assert!(
        max_gap <= bound,
        "{max_gap} records in flight, bound {bound}"
    );
    // Without back-pressure the generator would have produced millions of 1 KiB records
    // (gigabytes) in this second; with it, memory stays where it was.
    if let (Some(before), Some(after)) = (rss_start, resident_bytes()) {
        let grown = after.saturating_sub(before);
        assert!(grown < 64 << 20, "memory grew by {grown} bytes");
    }
    job.cancel();
    let result = job.join().unwrap();
    assert_eq!(result.status, JobStatus::Cancelled);
    assert!(
        consumed > consumed_before,
        "the sink kept consuming while we sampled"
    );
}

#[test]
fn stop_drains_every_record_the_source_read() {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2)
        .set_batch_size(50)
        .set_handle_ctrl_c(false);
    let counters = slow_job(&env, Duration::from_micros(200));
    let job = env.execute_async("stop");
    wait_until("the sink to consume", || {
        counters.consumed.load(Ordering::SeqCst) > 1_000
    });
    job.stop();
    let result = job.join().unwrap();
    assert_eq!(result.status, JobStatus::Stopped);
    assert_eq!(
        counters.produced.load(Ordering::SeqCst),
        counters.consumed.load(Ordering::SeqCst),
        "every record read before the stop reached the sink"
    );
}

#[test]
fn cancel_ends_a_job_blocked_by_back_pressure() {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2)
        .set_batch_size(10)
        .set_channel_capacity(1)
        .set_handle_ctrl_c(false);
    let counters = slow_job(&env, Duration::from_millis(200));
    let job = env.execute_async("cancel");
    wait_until("the sink to consume", || {
        counters.consumed.load(Ordering::SeqCst) > 0
    });
    let clock = SystemClock;
    let start = clock.monotonic_nanos();
    job.cancel();
    assert_eq!(job.join().unwrap().status, JobStatus::Cancelled);
    let waited = Duration::from_nanos(clock.monotonic_nanos() - start);
    // The slow sink may finish the batch it holds (200 ms); queued input is dropped.
    assert!(waited < Duration::from_secs(5), "cancel took {waited:?}");
}
