//! The `latency` workload: a source paced to a fixed rate stamps every event with the time
//! it was created; the events go through a keyed pipeline (a shuffle by key and a running
//! count per key in keyed state); the sink measures how long each event took from its
//! creation to the sink and prints percentiles.
//!
//! The first second is warm-up and not measured. Latencies are exact (every event after
//! warm-up is recorded), not sampled.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sluice_api::connectors::GeneratorSource;
use sluice_api::prelude::*;
use sluice_api::runtime::sink::{Sink, SinkWriter};
use sluice_api::runtime::OperatorContext;
use sluice_api::Records;
use sluice_core::{Clock, SystemClock};

/// Latencies (ns) recorded by all sink subtasks.
type Samples = Arc<Mutex<Vec<u64>>>;

struct LatencySink {
    samples: Samples,
    warmup_until_nanos: u64,
    /// Room for every sample, so that recording never reallocates mid-run.
    capacity: usize,
}

struct LatencyWriter {
    samples: Samples,
    local: Vec<u64>,
    warmup_until_nanos: u64,
}

impl Sink<(u64, u64, u64)> for LatencySink {
    fn create_writer(
        &self,
        _ctx: &OperatorContext,
    ) -> sluice_api::Result<Box<dyn SinkWriter<(u64, u64, u64)>>> {
        Ok(Box::new(LatencyWriter {
            samples: Arc::clone(&self.samples),
            local: Vec::with_capacity(self.capacity),
            warmup_until_nanos: self.warmup_until_nanos,
        }))
    }
}

impl SinkWriter<(u64, u64, u64)> for LatencyWriter {
    fn write(&mut self, batch: Records<(u64, u64, u64)>) -> sluice_api::Result<()> {
        let now = SystemClock.monotonic_nanos();
        for (_, created, _) in batch.values() {
            if *created >= self.warmup_until_nanos {
                self.local.push(now.saturating_sub(*created));
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> sluice_api::Result<()> {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .append(&mut self.local);
        Ok(())
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1e6
}

/// Runs the latency workload at `rate` events/s for `seconds` (plus one of warm-up).
pub(crate) fn latency(
    env: &StreamExecutionEnvironment,
    rate: f64,
    seconds: u64,
    keys: u64,
    parallelism: u32,
) -> anyhow::Result<()> {
    eprintln!(
        "latency: {rate:.0} events/s for {seconds} s after 1 s of warm-up, {keys} keys, parallelism {parallelism}"
    );
    let clock = SystemClock;
    let samples: Samples = Arc::new(Mutex::new(Vec::new()));
    let warmup_until_nanos = clock.monotonic_nanos() + 1_000_000_000;
    let keys = keys.max(1);
    env.add_source(
        "Paced",
        GeneratorSource::unbounded(move |i| (i % keys, SystemClock.monotonic_nanos(), 0u64))
            .with_rate(rate),
    )
    .key_by(|r: &(u64, u64, u64)| r.0)
    .reduce(|a, b| (b.0, b.1, a.2 + 1))
    .add_sink(
        "Latency",
        LatencySink {
            samples: Arc::clone(&samples),
            warmup_until_nanos,
            capacity: (rate * (seconds as f64 + 1.0) * 1.1) as usize,
        },
    );
    let job = env.execute_async("bench-latency");
    clock.sleep(Duration::from_secs(seconds + 1));
    job.stop();
    let result = job.join()?;
    let mut all = std::mem::take(&mut *samples.lock().unwrap_or_else(PoisonError::into_inner));
    all.sort_unstable();
    let measured = all.len() as f64 / seconds as f64;
    println!(
        "RESULT workload=latency parallelism={parallelism} rate={rate:.0} measured_events_per_sec={measured:.0} events={} seconds={:.3} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={:.3}",
        all.len(),
        result.duration.as_secs_f64(),
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        percentile(&all, 0.999),
        percentile(&all, 1.0),
    );
    Ok(())
}
