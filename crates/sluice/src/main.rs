//! The `sluice` command.
//!
//! `sluice sql FILE.sql [FILE.sql ...] [-D KEY=VALUE ...]` runs Flink SQL scripts on the
//! embedded runtime: the files are read in order as one script, `${KEY}` is replaced by
//! the `-D` values, every `INSERT INTO` runs as one job, bounded sources run to
//! completion, unbounded ones until Ctrl-C (the first stops the sources and drains the
//! job, the second cancels it). `EXPLAIN` statements print plans.
//!
//! Cluster mode: `sluice coordinator`, `sluice worker`, then `sluice submit FILE.sql`,
//! `sluice list`, `sluice cancel JOB` and `sluice savepoint JOB` against the coordinator
//! (see `docs/cluster.md`).

mod cluster;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use sluice_runtime::JobControl;
use sluice_sql::SqlSession;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Sluice: a stream processor for Flink SQL and Rust jobs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run SQL scripts (Flink dialect) on the embedded runtime.
    Sql {
        /// Script files, read in order as one script.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Replace `${KEY}` in the scripts by VALUE.
        #[arg(short = 'D', value_name = "KEY=VALUE")]
        define: Vec<String>,
        /// Print the plan of every INSERT instead of running the job.
        #[arg(long)]
        explain: bool,
    },
    /// Run a cluster coordinator: workers register with it, jobs are submitted to it.
    Coordinator {
        /// Address to listen on for workers and clients (port 0 picks one).
        #[arg(long, default_value = "127.0.0.1:6123")]
        listen: String,
        /// Where jobs are persisted (and checkpoints of jobs that set no directory).
        #[arg(long, default_value = "sluice-coordinator")]
        state_dir: PathBuf,
        /// A worker silent for this long is declared lost and its jobs restart.
        #[arg(long, default_value_t = 5000)]
        heartbeat_timeout_ms: u64,
    },
    /// Run a worker offering task slots to a coordinator.
    Worker {
        /// The coordinator's address.
        #[arg(long, default_value = "127.0.0.1:6123")]
        coordinator: String,
        /// Task slots: each runs one subtask of every operator chain of a job.
        #[arg(long, default_value_t = 1)]
        slots: u32,
        /// Where the data plane listens for other workers (port 0 picks one).
        #[arg(long, default_value = "127.0.0.1:0")]
        data_listen: String,
        /// The address other workers dial (needed when listening on 0.0.0.0).
        #[arg(long)]
        data_advertise: Option<String>,
        /// A name for logs and listings.
        #[arg(long)]
        name: Option<String>,
    },
    /// Submit SQL scripts as a job to a cluster.
    Submit {
        /// Script files, read in order as one script.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Replace `${KEY}` in the scripts by VALUE.
        #[arg(short = 'D', value_name = "KEY=VALUE")]
        define: Vec<String>,
        /// The coordinator's address.
        #[arg(long, default_value = "127.0.0.1:6123")]
        coordinator: String,
    },
    /// List the jobs of a cluster.
    List {
        /// The coordinator's address.
        #[arg(long, default_value = "127.0.0.1:6123")]
        coordinator: String,
    },
    /// Cancel a job of a cluster.
    Cancel {
        /// The job's id (see `sluice list`).
        job: u64,
        /// The coordinator's address.
        #[arg(long, default_value = "127.0.0.1:6123")]
        coordinator: String,
    },
    /// Take a savepoint of a running job of a cluster.
    Savepoint {
        /// The job's id (see `sluice list`).
        job: u64,
        /// Directory to write it under (reachable by every worker and the coordinator).
        #[arg(long)]
        dir: String,
        /// The coordinator's address.
        #[arg(long, default_value = "127.0.0.1:6123")]
        coordinator: String,
    },
}

fn read_script(files: &[PathBuf]) -> Result<String> {
    let mut script = String::new();
    for f in files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        script.push_str(&text);
        script.push_str("\n;\n");
    }
    Ok(script)
}

fn defines(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .with_context(|| format!("-D {p}: write -D KEY=VALUE"))?;
            Ok((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Sql {
            files,
            define,
            explain,
        } => {
            let vars = defines(&define)?;
            let script = sluice_sql::substitute(&read_script(&files)?, &vars)?;
            let control = JobControl::new();
            let c = Arc::clone(&control);
            ctrlc::set_handler(move || {
                if c.is_stop_requested() {
                    eprintln!("second Ctrl-C: cancelling the job");
                    c.cancel();
                } else {
                    eprintln!("Ctrl-C: stopping sources and draining the job; press Ctrl-C again to cancel");
                    c.stop();
                }
            })
            .context("cannot install the Ctrl-C handler")?;
            let mut session = SqlSession::new();
            session.set_explain_only(explain);
            match session.execute_script(&script, control) {
                Ok(Some(result)) => {
                    eprintln!(
                        "job finished in {:.2} s ({:?})",
                        result.duration.as_secs_f64(),
                        result.status
                    );
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => bail!("{e}"),
            }
        }
        Command::Coordinator {
            listen,
            state_dir,
            heartbeat_timeout_ms,
        } => cluster::coordinator(listen, state_dir, heartbeat_timeout_ms),
        Command::Worker {
            coordinator,
            slots,
            data_listen,
            data_advertise,
            name,
        } => cluster::worker(coordinator, slots, data_listen, data_advertise, name),
        Command::Submit {
            files,
            define,
            coordinator,
        } => cluster::submit(&coordinator, read_script(&files)?, defines(&define)?),
        Command::List { coordinator } => cluster::list(&coordinator),
        Command::Cancel { job, coordinator } => cluster::cancel(&coordinator, job),
        Command::Savepoint {
            job,
            dir,
            coordinator,
        } => cluster::savepoint(&coordinator, job, &dir),
    }
}
