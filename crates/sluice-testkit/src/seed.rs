//! Seeds of randomized tests: printed on every run, replayed with `SLUICE_TEST_SEED`.

use proptest::test_runner::{Config, RngSeed};

/// The seed for this run: `SLUICE_TEST_SEED` if set, else a fresh one. It is printed so a
/// failure can be replayed with `SLUICE_TEST_SEED=<seed> cargo test <name>`.
pub fn test_seed(test_name: &str) -> u64 {
    let seed = std::env::var("SLUICE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::UNIX_EPOCH
                .elapsed()
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            t ^ (u64::from(std::process::id()) << 32)
        });
    eprintln!("{test_name}: SLUICE_TEST_SEED={seed}");
    seed
}

/// A proptest configuration with `cases` cases driven by [`test_seed`].
pub fn proptest_config(test_name: &str, cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(test_seed(test_name)),
        // Failures are replayed by seed; no persistence files in the source tree.
        failure_persistence: None,
        ..Config::default()
    }
}
