//! [`Watchdog`]: turns a hanging test into a failing one.
//!
//! A test that waits for a job can hang forever if the job never ends; CI then stalls
//! until its global timeout with no hint. A watchdog aborts the test process with a message
//! naming the test once its limit passes. [`wait_until`] polls a condition with a deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_core::{Clock, SystemClock};

/// Aborts the process if not dropped within its limit.
#[derive(Debug)]
pub struct Watchdog {
    done: Arc<AtomicBool>,
}

impl Watchdog {
    /// Starts watching: the process aborts unless the returned guard is dropped before
    /// `limit` passes.
    pub fn start(name: &'static str, limit: Duration) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        std::thread::spawn(move || {
            let clock = SystemClock;
            let deadline = clock.monotonic_nanos() + limit.as_nanos() as u64;
            while !flag.load(Ordering::SeqCst) {
                if clock.monotonic_nanos() > deadline {
                    eprintln!("{name}: still running after {limit:?}; aborting the test process");
                    std::process::abort();
                }
                clock.sleep(Duration::from_millis(20));
            }
        });
        Watchdog { done }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
    }
}

/// Polls `condition` every 5 ms until it holds.
///
/// # Panics
/// After 30 seconds, naming `what` was awaited: a test fails instead of hanging.
pub fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let clock = SystemClock;
    let deadline = clock.monotonic_nanos() + 30_000_000_000;
    while !condition() {
        assert!(
            clock.monotonic_nanos() < deadline,
            "timed out waiting for {what}"
        );
        clock.sleep(Duration::from_millis(5));
    }
}
