//! A Rust DataStream job on a cluster: this binary is both the worker that runs it and
//! the client that submits it (closures cannot be shipped, so every worker runs the
//! binary that defines the job).
//!
//! ```text
//! sluice coordinator --listen 127.0.0.1:6123 &
//! cargo run --release --example cluster_job -- worker --coordinator 127.0.0.1:6123 --slots 2 &
//! cargo run --release --example cluster_job -- worker --coordinator 127.0.0.1:6123 --slots 2 &
//! cargo run --release --example cluster_job -- submit --coordinator 127.0.0.1:6123 --out /tmp/sums
//! ```
//!
//! The job sums the numbers `0..=events` per key `n % 100` across two parallel subtasks
//! and writes `key,sum` lines under `--out`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use sluice_api::prelude::*;
use sluice_cluster::registry::JobRegistry;
use sluice_cluster::worker::{run_worker, WorkerConfig};

#[derive(Parser)]
#[command(about = "A Rust job on a Sluice cluster")]
struct Args {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Join the cluster as a worker that can run this binary's jobs.
    Worker {
        #[arg(long, default_value = "127.0.0.1:6123")]
        coordinator: String,
        #[arg(long, default_value_t = 1)]
        slots: u32,
        #[arg(long, default_value = "127.0.0.1:0")]
        data_listen: String,
    },
    /// Submit the job.
    Submit {
        #[arg(long, default_value = "127.0.0.1:6123")]
        coordinator: String,
        /// Directory for the `key,sum` part files.
        #[arg(long)]
        out: String,
        /// How many numbers to sum.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
}

/// The jobs of this binary, by name.
fn registry() -> JobRegistry {
    let mut jobs = JobRegistry::new();
    jobs.register("sums-per-key", |params: &BTreeMap<String, String>| {
        let param = |k: &str| {
            params.get(k).cloned().ok_or_else(|| {
                sluice_cluster::Error::InvalidJob(format!("parameter `{k}` is missing"))
            })
        };
        let events: u64 = param("events")?
            .parse()
            .map_err(|e| sluice_cluster::Error::InvalidJob(format!("events: {e}")))?;
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(2);
        env.set_runtime_mode(RuntimeMode::Batch);
        env.from_sequence(0, events)
            .map(|n: u64| (n % 100, n))
            .key_by(|(k, _): &(u64, u64)| *k)
            .sum(|(_, n)| n)
            .map(|(k, s): (u64, u64)| format!("{k},{s}"))
            .sink_to_files(param("out")?);
        Ok((env.job_graph("sums-per-key"), env.config()))
    });
    jobs
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    match Args::parse().command {
        Mode::Worker {
            coordinator,
            slots,
            data_listen,
        } => {
            let config = WorkerConfig {
                coordinator,
                slots,
                data_listen,
                data_advertise: None,
                name: format!("cluster-job-{}", std::process::id()),
            };
            run_worker(
                config,
                Arc::new(registry()),
                Arc::new(AtomicBool::new(false)),
            )?;
        }
        Mode::Submit {
            coordinator,
            out,
            events,
        } => {
            let params = BTreeMap::from([
                ("out".to_string(), out),
                ("events".to_string(), events.to_string()),
            ]);
            let submission = registry().submission("sums-per-key", params)?;
            let id = sluice_cluster::client::submit(&coordinator, &submission)?;
            println!("submitted job {id}; `sluice list --coordinator {coordinator}` follows it");
        }
    }
    Ok(())
}
