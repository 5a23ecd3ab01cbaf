//! The `sluice` command.
//!
//! `sluice sql FILE.sql [FILE.sql ...] [-D KEY=VALUE ...]` runs Flink SQL scripts on the
//! embedded runtime: the files are read in order as one script, `${KEY}` is replaced by
//! the `-D` values, every `INSERT INTO` runs as one job, bounded sources run to
//! completion, unbounded ones until Ctrl-C (the first stops the sources and drains the
//! job, the second cancels it). `EXPLAIN` statements print plans.

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
            let mut script = String::new();
            for f in &files {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("cannot read {}", f.display()))?;
                script.push_str(&text);
                script.push_str("\n;\n");
            }
            let script = sluice_sql::substitute(&script, &vars)?;
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
    }
}
