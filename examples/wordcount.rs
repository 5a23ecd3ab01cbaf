//! Word count: reads a text file, splits lines on whitespace, counts each word, and writes
//! the final counts as `word,count` lines (one per distinct word) to a file or stdout.
//!
//! ```text
//! cargo run --release --example wordcount -- [--input FILE] [--output FILE] [--parallelism N]
//! ```
//!
//! Without `--input` it counts the words of a text bundled in the repository.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use sluice_api::connectors::PrintSink;
use sluice_api::prelude::*;

#[derive(Parser, Debug)]
#[command(about = "Count the words of a text file with Sluice")]
struct Args {
    /// Text file (or directory of text files) to read; default: a bundled text.
    #[arg(long)]
    input: Option<PathBuf>,
    /// File to write `word,count` lines to; default: standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Parallelism of the job; default: the number of cores.
    #[arg(long)]
    parallelism: Option<u32>,
}

fn main() -> anyhow::Result<()> {
    sluice_examples::init_logging();
    let args = Args::parse();
    let input = args.input.unwrap_or_else(sluice_examples::bundled_text);

    let env = StreamExecutionEnvironment::new();
    if let Some(p) = args.parallelism {
        env.set_parallelism(p);
    }
    // Batch mode: each word's count is emitted once, when the input is exhausted.
    env.set_runtime_mode(RuntimeMode::Batch);

    let counts = sluice_examples::wordcount(&env, &input);

    match &args.output {
        Some(path) => counts.write_as_text(path).set_parallelism(1),
        None => counts
            .add_sink("Stdout", PrintSink::new(|line: &String| line.clone()))
            .set_parallelism(1),
    };

    let result = env
        .execute("wordcount")
        .with_context(|| format!("word count of {} failed", input.display()))?;
    if let Some(path) = &args.output {
        eprintln!(
            "wrote word counts to {} in {:.3} s",
            path.display(),
            result.duration.as_secs_f64()
        );
    }
    Ok(())
}
