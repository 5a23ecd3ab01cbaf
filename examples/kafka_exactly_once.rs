//! Kafka in, Kafka out, exactly once under crashes: reads numbered records from a topic
//! (bounded: up to the offsets that were the latest at start), counts and sums them per
//! key and 100 ms event-time window (event time = value / 10 ms), and writes one line per
//! window to another topic through Kafka transactions tied to checkpoints. Kill it (even
//! with `kill -9`) and start it again with the same arguments: it resumes from its latest
//! checkpoint, finishes or aborts the transaction it left behind, and a `read_committed`
//! consumer of the output sees every window exactly once.
//!
//! ```text
//! cargo run --release --example kafka_exactly_once -- --bootstrap HOST:PORT \
//!     --input numbers --output windows --checkpoints CHK_DIR [--slow-every N]
//! ```
//! Input records: value = a decimal number `i`, key = the window key (any text).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use sluice_api::connectors::kafka::{KafkaProperties, KafkaSink, KafkaSource};
use sluice_api::prelude::*;
use sluice_api::{CheckpointConfig, RestartStrategy};
use sluice_core::{Clock, SystemClock};

#[derive(Parser, Debug)]
#[command(about = "Kafka to Kafka windows, exactly once across crashes")]
struct Args {
    /// Kafka brokers (`bootstrap.servers`).
    #[arg(long)]
    bootstrap: String,
    /// Topic to read.
    #[arg(long)]
    input: String,
    /// Topic to write.
    #[arg(long)]
    output: String,
    /// Directory of the checkpoints.
    #[arg(long)]
    checkpoints: PathBuf,
    /// Transactional id prefix of the sink (unique per job, stable across restarts).
    #[arg(long, default_value = "kafka-exactly-once")]
    transactional_id: String,
    /// Pause 1 ms after every this many records (0: never), to make a run last.
    #[arg(long, default_value_t = 0)]
    slow_every: u64,
    /// Take unaligned checkpoints.
    #[arg(long)]
    unaligned: bool,
}

/// Count and sum of the values of a window.
struct CountSum;

impl AggregateFunction<(String, u64), (u64, u64), (u64, u64)> for CountSum {
    fn create_accumulator(&self) -> (u64, u64) {
        (0, 0)
    }
    fn add(&self, v: (String, u64), acc: &mut (u64, u64)) {
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
    checkpoints.retained = 2;
    checkpoints.unaligned = args.unaligned;
    checkpoints.restart = RestartStrategy::FixedDelay {
        attempts: 3,
        delay: Duration::from_millis(100),
    };
    env.set_checkpointing(checkpoints);
    let props =
        KafkaProperties::new(&args.bootstrap).set("receive.message.max.bytes", "2000000000");
    let source = KafkaSource::new(props.clone(), &[&args.input], |r| {
        let key = r.key_str()?.unwrap_or("").to_string();
        let value = r.value_str()?.parse::<u64>().map_err(|e| e.to_string())?;
        Ok((key, value))
    })
    .bounded();
    let slow_every = args.slow_every;
    env.from_source(
        "Kafka numbers",
        source,
        WatermarkStrategy::for_monotonous_timestamps()
            .with_timestamp_assigner(|r: &(String, u64)| (r.1 / 10) as i64),
    )
    .map(move |r| {
        if slow_every > 0 && r.1 % slow_every == 0 {
            SystemClock.sleep(Duration::from_millis(1));
        }
        r
    })
    .key_by(|r| r.0.clone())
    .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
    .aggregate_with(CountSum, |k, w, (count, sum)| {
        format!("{k},{},{count},{sum}", w.start)
    })
    .add_sink(
        "Kafka windows",
        KafkaSink::strings(props, &args.output).exactly_once(&args.transactional_id),
    );
    let result = env.execute("kafka exactly-once windows")?;
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
