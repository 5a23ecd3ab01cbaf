//! End-to-end: Ctrl-C (SIGINT) stops a running unbounded job cleanly: the first signal
//! stops the sources and every record already read reaches the sink; `execute` returns
//! `Stopped`. This test sends real signals to its own process, so it lives in its own
//! test binary.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_api::connectors::GeneratorSource;
use sluice_api::{JobStatus, StreamExecutionEnvironment};
use sluice_testkit::watchdog::{wait_until, Watchdog};

fn send_sigint_when(condition: impl Fn() -> bool + Send + 'static) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        wait_until("the job to make progress", condition);
        let status = std::process::Command::new("kill")
            .args(["-INT", &std::process::id().to_string()])
            .status()
            .expect("the `kill` command runs");
        assert!(status.success());
    })
}

#[test]
fn ctrl_c_stops_an_unbounded_job_and_drains_it() {
    let _watchdog = Watchdog::start(
        "ctrl_c_stops_an_unbounded_job_and_drains_it",
        Duration::from_secs(60),
    );
    let produced = Arc::new(AtomicU64::new(0));
    let consumed = Arc::new(AtomicU64::new(0));
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let p = Arc::clone(&produced);
    let sink = env
        .add_source("Endless", GeneratorSource::unbounded(|i| i))
        .map(move |x| {
            p.fetch_add(1, Ordering::SeqCst);
            x
        })
        .key_by(|x| x % 16)
        .sum(|x| x)
        .discard();
    let counter = sink.counter();
    let c = Arc::clone(&consumed);
    let signaller = send_sigint_when(move || {
        c.store(counter.load(Ordering::SeqCst), Ordering::SeqCst);
        c.load(Ordering::SeqCst) > 100_000
    });
    let result = env.execute("ctrl-c").unwrap();
    signaller.join().unwrap();
    assert_eq!(result.status, JobStatus::Stopped);
    assert_eq!(
        produced.load(Ordering::SeqCst),
        sink.count(),
        "every record read before Ctrl-C was summed and reached the sink"
    );
}
