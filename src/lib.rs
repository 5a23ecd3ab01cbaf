//! Runnable Sluice jobs and the end-to-end tests of whole jobs.
//!
//! The jobs live in `examples/` (run one with `cargo run --release --example wordcount`);
//! the tests in `tests/` run whole jobs through the public API. The job definitions the
//! examples run are here, so the tests exercise exactly what the examples do.

pub mod fraud;
pub mod stocks;

use std::path::{Path, PathBuf};

use sluice_api::{DataStream, StreamExecutionEnvironment};

/// Logs of the examples to standard error, at the level of `RUST_LOG` (default: warnings).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// The text the examples read when no `--input` is given: Hamlet's soliloquy.
pub fn bundled_text() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/hamlet.txt")
}

/// The word count job: lines of `input` split on whitespace, counted per word; the stream
/// of `word,count` lines. Run in batch mode it holds one final line per distinct word.
pub fn wordcount(env: &StreamExecutionEnvironment, input: &Path) -> DataStream<String> {
    env.read_text_file(input)
        .flat_map(|line: String| {
            line.split_whitespace()
                .map(|word| (word.to_string(), 1u64))
                .collect::<Vec<_>>()
        })
        .name("Tokenize")
        .key_by_ref(|(word, _): &(String, u64)| word)
        .sum(|(_, count)| count)
        .name("Count")
        .map(|(word, count)| format!("{word},{count}"))
        .name("Format")
}

/// The README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The user guide's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/user-guide.md")]
pub struct UserGuideDoctests;
