//! Runnable Sluice jobs and the end-to-end tests of whole jobs.
//!
//! The jobs live in `examples/` (run one with `cargo run --release --example wordcount`);
//! the tests in `tests/` run whole jobs through the public API. This library holds only
//! the path of the text bundled for the examples.

use std::path::PathBuf;

/// The text the examples read when no `--input` is given: Hamlet's soliloquy.
pub fn bundled_text() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/hamlet.txt")
}
