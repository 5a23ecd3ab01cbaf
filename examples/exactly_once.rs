//! Exactly-once under crashes: counts and sums per key and 100 ms event-time window over
//! a paced, replayable generated stream, with checkpoints in a directory and the results
//! committed to part files only when a checkpoint completes. Kill it (even with `kill -9`)
//! and start it again with the same directories: it resumes from its latest completed
//! checkpoint, and the committed files end up holding every result exactly once.
//!
//! ```text
//! cargo run --release --example exactly_once -- --output OUT_DIR --checkpoints CHK_DIR
//!     [--records N] [--keys K] [--rate R] [--fresh]
//! ```

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use sluice_api::connectors::GeneratorSource;
use sluice_api::prelude::*;
use sluice_api::{CheckpointConfig, RestartStrategy};

#[derive(Parser, Debug)]
#[command(about = "A windowed job that survives crashes with exactly-once output")]
struct Args {
    /// Directory of the committed part files.
    #[arg(long)]
    output: PathBuf,
    /// Directory of the checkpoints.
    #[arg(long)]
    checkpoints: PathBuf,
    /// Records to generate.
    #[arg(long, default_value_t = 200_000)]
    records: u64,
    /// Distinct keys.
    #[arg(long, default_value_t = 20)]
    keys: u64,
    /// Records per second (the job takes records / rate seconds).
    #[arg(long, default_value_t = 50_000.0)]
    rate: f64,
    /// Ignore checkpoints left by an earlier run.
    #[arg(long)]
    fresh: bool,
    /// Take unaligned checkpoints (in-flight data becomes part of them).
    #[arg(long)]
    unaligned: bool,
}

/// Count and sum of the values of a window.
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

fn main() -> anyhow::Result<()> {
    sluice_examples::init_logging();
    let args = Args::parse();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let mut checkpoints = CheckpointConfig::every(Duration::from_millis(100));
    checkpoints.directory = Some(args.checkpoints.clone());
    checkpoints.resume = !args.fresh;
    checkpoints.retained = 2;
    checkpoints.unaligned = args.unaligned;
    checkpoints.restart = RestartStrategy::FixedDelay {
        attempts: 3,
        delay: Duration::from_millis(100),
    };
    env.set_checkpointing(checkpoints);
    let keys = args.keys.max(1);
    env.from_source(
        "Numbers",
        GeneratorSource::bounded(args.records, move |i| (i % keys, i)).with_rate(args.rate),
        WatermarkStrategy::for_monotonous_timestamps()
            .with_timestamp_assigner(|r: &(u64, u64)| (r.1 / 10) as i64),
    )
    .key_by(|r| r.0)
    .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
    .aggregate_with(CountSum, |k, w, (count, sum)| {
        format!("{k},{},{count},{sum}", w.start)
    })
    .sink_to_files(&args.output);
    let result = env.execute("exactly-once windows")?;
    if let Some(id) = result.restored_from {
        eprintln!("resumed from checkpoint {id}");
    }
    eprintln!(
        "finished in {:.2} s: {} checkpoints completed, {} restarts",
        result.duration.as_secs_f64(),
        result.checkpoints.len(),
        result.restarts
    );
    Ok(())
}
