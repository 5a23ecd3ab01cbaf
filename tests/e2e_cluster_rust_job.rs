//! A Rust DataStream job on a cluster, in one test process: a coordinator and two workers
//! (each with its own gRPC client, data plane and tokio runtime, talking over loopback
//! TCP) run a job registered in a [`JobRegistry`] and submitted by name.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use sluice_api::prelude::*;
use sluice_cluster::coordinator::{run_coordinator, CoordinatorConfig};
use sluice_cluster::job::JobState;
use sluice_cluster::registry::JobRegistry;
use sluice_cluster::worker::{run_worker, WorkerConfig};
use sluice_core::{Clock, SystemClock};
use sluice_testkit::files::committed_lines;
use sluice_testkit::watchdog::Watchdog;

fn registry() -> JobRegistry {
    let mut jobs = JobRegistry::new();
    jobs.register("sums", |params: &BTreeMap<String, String>| {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(2).set_runtime_mode(RuntimeMode::Batch);
        // `from_sequence` includes its end.
        env.from_sequence(0, 100_000)
            .map(|n: u64| (n % 7, n))
            .key_by(|(k, _): &(u64, u64)| *k)
            .sum(|(_, n)| n)
            .map(|(k, s): (u64, u64)| format!("{k},{s}"))
            .sink_to_files(PathBuf::from(&params["out"]));
        Ok((env.job_graph("sums"), env.config()))
    });
    jobs
}

#[test]
fn a_registered_rust_job_runs_on_workers_that_build_it() {
    let _watchdog = Watchdog::start("rust job on a cluster", Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let shutdown = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let config = CoordinatorConfig {
        listen: "127.0.0.1:0".into(),
        state_dir: dir.path().join("state"),
        heartbeat_interval: Duration::from_millis(200),
        heartbeat_timeout: Duration::from_secs(5),
    };
    let stop = Arc::clone(&shutdown);
    let coordinator = std::thread::spawn(move || {
        run_coordinator(config, stop, |addr| tx.send(addr.to_string()).unwrap()).unwrap();
    });
    let address = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let workers: Vec<_> = (0..2)
        .map(|i| {
            let config = WorkerConfig {
                coordinator: address.clone(),
                slots: 1,
                data_listen: "127.0.0.1:0".into(),
                data_advertise: None,
                name: format!("w{i}"),
            };
            let stop = Arc::clone(&shutdown);
            std::thread::spawn(move || run_worker(config, Arc::new(registry()), stop).unwrap())
        })
        .collect();

    let out = dir.path().join("out");
    let params = BTreeMap::from([("out".to_string(), out.display().to_string())]);
    let submission = registry().submission("sums", params).unwrap();
    assert_eq!(submission.plan.slots_needed(), 2);
    let unknown = registry().submission("nope", BTreeMap::new()).unwrap_err();
    assert!(unknown.to_string().contains("\"sums\""), "{unknown}");
    let id = sluice_cluster::client::submit(&address, &submission).unwrap();

    let clock = SystemClock;
    let info = loop {
        let jobs = sluice_cluster::client::list(&address).unwrap();
        let job = jobs.into_iter().find(|j| j.id == id).unwrap();
        if job.state.is_terminal() {
            break job;
        }
        clock.sleep(Duration::from_millis(50));
    };
    assert_eq!(info.state, JobState::Finished, "{:?}", info.message);
    let mut expected: Vec<String> = (0..7u64)
        .map(|k| {
            format!(
                "{k},{}",
                (0..=100_000u64).filter(|n| n % 7 == k).sum::<u64>()
            )
        })
        .collect();
    expected.sort();
    assert_eq!(committed_lines(&out).unwrap(), expected);

    shutdown.store(true, Ordering::Release);
    coordinator.join().unwrap();
    for w in workers {
        w.join().unwrap();
    }
}
