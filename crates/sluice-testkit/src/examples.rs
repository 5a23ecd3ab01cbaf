//! The example binaries `cargo test` builds, for tests that run a job as a child process
//! (and kill it).

use std::path::{Path, PathBuf};

/// The path of example `name`, built next to the running test binary.
///
/// # Panics
/// When the binary is missing: the tests were not run with `cargo test`, which builds
/// the examples.
pub fn binary(name: &str) -> PathBuf {
    // The test binary lies in target/<profile>/deps; the examples in
    // target/<profile>/examples.
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test` (which builds the examples)",
        path.display()
    );
    path
}
