//! The `latency` workload: a source paced to a fixed rate stamps every event with the time
//! it was created; the events go through a keyed pipeline (a shuffle by key and a running
//! count per key in keyed state); the sink measures how long each event took from its
//! creation to the sink and prints percentiles.
//!
//! The first second is warm-up and not measured. Every event after warm-up is recorded in
//! a histogram of 1 µs buckets up to 1 s (pre-allocated and pre-touched, so that recording
//! does not allocate or page-fault on the measured path); percentiles are exact to 1 µs.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sluice_api::connectors::GeneratorSource;
use sluice_api::prelude::*;
use sluice_api::runtime::sink::{Sink, SinkWriter};
use sluice_api::runtime::OperatorContext;
use sluice_api::Records;
use sluice_core::{Clock, SystemClock};

/// Buckets of 1 µs; the last one holds everything from 1 s on.
const BUCKETS: usize = 1_000_001;

/// Latency counts per microsecond, merged from every sink subtask.
type Histogram = Arc<Mutex<Vec<u64>>>;

struct LatencySink {
    histogram: Histogram,
    warmup_until_nanos: u64,
}

struct LatencyWriter {
    histogram: Histogram,
    local: Vec<u64>,
    warmup_until_nanos: u64,
}

impl Sink<(u64, u64, u64)> for LatencySink {
    fn create_writer(
        &self,
        _ctx: &OperatorContext,
    ) -> sluice_api::Result<Box<dyn SinkWriter<(u64, u64, u64)>>> {
        // `vec!` of zeros may map fresh pages lazily; writing them now takes the page
        // faults before the measurement starts.
        let mut local = vec![0u64; BUCKETS];
        for page in local.chunks_mut(512) {
            page[0] = 1;
            page[0] = 0;
        }
        Ok(Box::new(LatencyWriter {
            histogram: Arc::clone(&self.histogram),
            local,
            warmup_until_nanos: self.warmup_until_nanos,
        }))
    }
}

impl SinkWriter<(u64, u64, u64)> for LatencyWriter {
    fn write(&mut self, batch: Records<(u64, u64, u64)>) -> sluice_api::Result<()> {
        let now = SystemClock.monotonic_nanos();
        for (_, created, _) in batch.values() {
            if *created >= self.warmup_until_nanos {
                let micros = (now.saturating_sub(*created) / 1_000) as usize;
                self.local[micros.min(BUCKETS - 1)] += 1;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> sluice_api::Result<()> {
        let mut merged = self
            .histogram
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if merged.is_empty() {
            merged.resize(BUCKETS, 0);
        }
        for (m, l) in merged.iter_mut().zip(&self.local) {
            *m += l;
        }
        Ok(())
    }

    fn stop(&mut self) -> sluice_api::Result<()> {
        self.finish()
    }
}

/// The latency (ms) below which a fraction `p` of the events fall.
fn percentile(histogram: &[u64], total: u64, p: f64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let rank = ((total as f64) * p).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (micros, count) in histogram.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return micros as f64 / 1e3;
        }
    }
    (BUCKETS - 1) as f64 / 1e3
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
    let histogram: Histogram = Arc::new(Mutex::new(Vec::new()));
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
            histogram: Arc::clone(&histogram),
            warmup_until_nanos,
        },
    );
    let job = env.execute_async("bench-latency");
    clock.sleep(Duration::from_secs(seconds + 1));
    job.stop();
    let result = job.join()?;
    let histogram = std::mem::take(&mut *histogram.lock().unwrap_or_else(PoisonError::into_inner));
    let total: u64 = histogram.iter().sum();
    let max = histogram
        .iter()
        .rposition(|c| *c > 0)
        .map_or(0.0, |i| i as f64 / 1e3);
    println!(
        "RESULT workload=latency parallelism={parallelism} rate={rate:.0} measured_events_per_sec={:.0} events={total} seconds={:.3} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={max:.3}",
        total as f64 / seconds as f64,
        result.duration.as_secs_f64(),
        percentile(&histogram, total, 0.50),
        percentile(&histogram, total, 0.99),
        percentile(&histogram, total, 0.999),
    );
    Ok(())
}
