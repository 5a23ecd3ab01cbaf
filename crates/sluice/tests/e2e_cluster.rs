//! Cluster mode end to end, with real processes on 127.0.0.1: a coordinator and workers
//! started from the `sluice` binary run a windowed SQL job with an exactly-once file sink.
//! Failures are injected with `kill -9` (a worker, the coordinator); the committed output
//! must equal the embedded run's exactly (every window once, no window twice).

// Helpers outside `#[test]` functions unwrap too: a test fails loudly on a broken setup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use sluice_cluster::job::{JobInfo, JobState};
use sluice_core::{Clock, SystemClock};
use sluice_testkit::files::committed_lines;
use sluice_testkit::watchdog::Watchdog;

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

/// The tests start several processes each: run them one at a time on small machines.
static SERIAL: Mutex<()> = Mutex::new(());

/// 100 000 rows at 20 000 rows/s (5 s), windows of one second per key; checkpoints every
/// 300 ms.
fn script(out: &Path, checkpoints: &Path) -> String {
    format!(
        "SET 'parallelism.default' = '2';
         SET 'execution.checkpointing.interval' = '300ms';
         SET 'state.checkpoints.dir' = '{checkpoints}';
         SET 'pipeline.name' = 'cluster-e2e';
         CREATE TABLE gen (
           seq BIGINT, k INT, v BIGINT,
           ts AS CAST(TO_TIMESTAMP_LTZ(seq * 10 - MOD(seq * 7919, 997), 3) AS TIMESTAMP(3)),
           WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
         ) WITH (
           'connector' = 'datagen', 'number-of-rows' = '100000', 'rows-per-second' = '20000',
           'fields.seq.kind' = 'sequence', 'fields.seq.start' = '0', 'fields.seq.end' = '99999',
           'fields.k.min' = '0', 'fields.k.max' = '40', 'fields.v.min' = '1', 'fields.v.max' = '1000'
         );
         CREATE TABLE out (k INT, window_end TIMESTAMP(3), c BIGINT, s BIGINT)
         WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'csv');
         INSERT INTO out
         SELECT k, window_end, COUNT(*), SUM(v)
         FROM TABLE(TUMBLE(TABLE gen, DESCRIPTOR(ts), INTERVAL '1' SECOND))
         GROUP BY k, window_start, window_end;",
        checkpoints = checkpoints.display(),
        out = out.display()
    )
}

/// The output of the job run embedded, once for all tests.
fn reference() -> &'static Vec<String> {
    static REFERENCE: OnceLock<Vec<String>> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let file = dir.path().join("job.sql");
        std::fs::write(&file, script(&out, &dir.path().join("checkpoints"))).unwrap();
        let status = Command::new(SLUICE).arg("sql").arg(&file).status().unwrap();
        assert!(status.success());
        let lines = committed_lines(&out).unwrap();
        assert!(
            lines.len() > 1000,
            "the reference run wrote {} rows",
            lines.len()
        );
        lines
    })
}

/// A process that is killed when dropped.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log_contains(&self, text: &str) -> bool {
        std::fs::read_to_string(&self.log).is_ok_and(|l| l.contains(text))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A coordinator and its workers, in a temporary directory.
struct Cluster {
    dir: Option<tempfile::TempDir>,
    coordinator: Option<Process>,
    address: String,
    workers: Vec<Process>,
}

impl Cluster {
    fn start(workers: usize, slots: u32) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Cluster {
            dir: Some(dir),
            coordinator: None,
            address: "127.0.0.1:0".into(),
            workers: Vec::new(),
        };
        cluster.start_coordinator();
        for _ in 0..workers {
            cluster.add_worker(slots);
        }
        cluster
    }

    fn root(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new("."), |d| d.path())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root().join(name)
    }

    /// Starts (or restarts, on the same address and state) the coordinator.
    fn start_coordinator(&mut self) {
        let n = std::fs::read_dir(self.root()).unwrap().count();
        let log = self.path(&format!("coordinator-{n}.log"));
        let mut child = Command::new(SLUICE)
            .args([
                "coordinator",
                "--listen",
                &self.address,
                "--heartbeat-timeout-ms",
                "3000",
            ])
            .arg("--state-dir")
            .arg(self.path("state"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        self.address = line
            .trim()
            .strip_prefix("coordinator listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}; see {}", log.display()))
            .to_string();
        self.coordinator = Some(Process { child, log });
    }

    fn add_worker(&mut self, slots: u32) {
        let log = self.path(&format!("worker-{}.log", self.workers.len()));
        let child = Command::new(SLUICE)
            .args([
                "worker",
                "--coordinator",
                &self.address,
                "--slots",
                &slots.to_string(),
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        self.workers.push(Process { child, log });
    }

    fn submit(&self, out: &Path) -> u64 {
        self.submit_script(&script(out, &self.path("checkpoints")))
    }

    fn submit_script(&self, text: &str) -> u64 {
        let n = std::fs::read_dir(self.root()).unwrap().count();
        let file = self.path(&format!("job-{n}.sql"));
        std::fs::write(&file, text).unwrap();
        let output = Command::new(SLUICE)
            .args(["submit", "--coordinator", &self.address])
            .arg(&file)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "submit failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
            .trim()
            .strip_prefix("submitted job ")
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("unexpected submit output {stdout:?}"))
    }

    fn job(&self, id: u64) -> Option<JobInfo> {
        sluice_cluster::client::list(&self.address)
            .ok()?
            .into_iter()
            .find(|j| j.id == id)
    }

    /// Waits (at most `limit`) until job `id` satisfies `done`; returns its info.
    fn wait_for(
        &self,
        id: u64,
        limit: Duration,
        what: &str,
        done: impl Fn(&JobInfo) -> bool,
    ) -> JobInfo {
        let clock = SystemClock;
        let deadline = clock.monotonic_nanos() + limit.as_nanos() as u64;
        loop {
            if let Some(info) = self.job(id) {
                if done(&info) {
                    return info;
                }
                assert!(
                    !info.state.is_terminal(),
                    "job ended as {:?} ({:?}) while waiting for {what}; logs in {}",
                    info.state,
                    info.message,
                    self.root().display()
                );
            }
            assert!(
                clock.monotonic_nanos() < deadline,
                "timed out waiting for {what}: {:?}; logs in {}",
                self.job(id),
                self.root().display()
            );
            clock.sleep(Duration::from_millis(50));
        }
    }

    fn wait_finished(&self, id: u64) -> JobInfo {
        let info = self.wait_for(id, Duration::from_secs(120), "the job to end", |j| {
            j.state.is_terminal()
        });
        assert_eq!(
            info.state,
            JobState::Finished,
            "{:?}; logs in {}",
            info.message,
            self.root().display()
        );
        info
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.workers.clear();
        self.coordinator = None;
        if std::thread::panicking() {
            // Keep the logs of a failed test.
            if let Some(dir) = self.dir.take() {
                eprintln!("cluster logs kept in {}", dir.keep().display());
            }
        }
    }
}

#[test]
fn runs_a_windowed_job_across_workers_like_the_embedded_run() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _watchdog = Watchdog::start("cluster run", Duration::from_secs(240));
    let expected = reference();
    let cluster = Cluster::start(2, 1);
    let out = cluster.path("out");
    let id = cluster.submit(&out);
    let info = cluster.wait_finished(id);
    assert_eq!(info.restarts, 0);
    assert!(info.last_checkpoint >= 1, "{info:?}");
    // Both workers ran tasks: the job's two slots were spread over them.
    for w in &cluster.workers {
        assert!(
            w.log_contains("running"),
            "a worker ran nothing: {}",
            w.log.display()
        );
    }
    assert_eq!(&committed_lines(&out).unwrap(), expected);
}

#[test]
fn recovers_exactly_once_after_a_worker_is_killed_mid_stream() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _watchdog = Watchdog::start("worker kill", Duration::from_secs(240));
    let expected = reference();
    let mut cluster = Cluster::start(3, 2);
    let out = cluster.path("out");
    let id = cluster.submit(&out);
    cluster.wait_for(id, Duration::from_secs(60), "two checkpoints", |j| {
        j.state == JobState::Running && j.last_checkpoint >= 2
    });
    let victim = cluster
        .workers
        .iter()
        .position(|w| w.log_contains("running"))
        .expect("no worker runs tasks");
    // SIGKILL: no goodbye, the coordinator notices the missing heartbeats and the peers
    // their broken connections.
    cluster.workers[victim].kill();
    let info = cluster.wait_finished(id);
    assert!(info.restarts >= 1, "the job did not restart: {info:?}");
    assert_eq!(&committed_lines(&out).unwrap(), expected);
}

#[test]
fn a_restarted_coordinator_resumes_the_job_from_its_latest_checkpoint() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _watchdog = Watchdog::start("coordinator kill", Duration::from_secs(240));
    let expected = reference();
    let mut cluster = Cluster::start(2, 1);
    let out = cluster.path("out");
    let id = cluster.submit(&out);
    let before = cluster.wait_for(id, Duration::from_secs(60), "two checkpoints", |j| {
        j.state == JobState::Running && j.last_checkpoint >= 2
    });
    if let Some(c) = cluster.coordinator.as_mut() {
        c.kill();
    }
    cluster.start_coordinator();
    let info = cluster.wait_finished(id);
    assert!(
        info.attempt >= 2 && info.last_checkpoint >= before.last_checkpoint,
        "{info:?}"
    );
    assert_eq!(&committed_lines(&out).unwrap(), expected);
}

#[test]
fn a_job_waits_for_slots_until_a_worker_is_added() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _watchdog = Watchdog::start("worker added", Duration::from_secs(240));
    let expected = reference();
    let mut cluster = Cluster::start(1, 1);
    let out = cluster.path("out");
    let id = cluster.submit(&out);
    let waiting = cluster.wait_for(
        id,
        Duration::from_secs(30),
        "the job to wait for slots",
        |j| j.state == JobState::WaitingForSlots && j.message.is_some(),
    );
    assert!(
        waiting
            .message
            .as_deref()
            .unwrap_or("")
            .contains("start workers"),
        "{waiting:?}"
    );
    cluster.add_worker(1);
    cluster.wait_finished(id);
    assert_eq!(&committed_lines(&out).unwrap(), expected);
}

/// Runs `sluice ARGS --coordinator ADDR` and returns its standard output.
fn client(cluster: &Cluster, args: &[&str]) -> String {
    let output = Command::new(SLUICE)
        .args(args)
        .args(["--coordinator", &cluster.address])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "sluice {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_savepoint_of_a_cancelled_job_starts_its_successor_exactly_where_it_was() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _watchdog = Watchdog::start("savepoint and cancel", Duration::from_secs(240));
    let expected = reference();
    let cluster = Cluster::start(2, 1);
    let out = cluster.path("out");
    let id = cluster.submit(&out);
    cluster.wait_for(id, Duration::from_secs(60), "a checkpoint", |j| {
        j.state == JobState::Running && j.last_checkpoint >= 1
    });
    let savepoints = cluster.path("savepoints");
    let said = client(
        &cluster,
        &[
            "savepoint",
            &id.to_string(),
            "--dir",
            &savepoints.display().to_string(),
        ],
    );
    assert!(said.starts_with("savepoint written to "), "{said}");
    client(&cluster, &["cancel", &id.to_string()]);
    let cancelled = cluster.wait_for(id, Duration::from_secs(60), "the cancel", |j| {
        j.state.is_terminal()
    });
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert!(
        committed_lines(&out).unwrap().len() < expected.len(),
        "the job ended before it was cancelled; nothing is tested"
    );
    // The successor checkpoints elsewhere and starts from the savepoint.
    let successor = format!(
        "SET 'execution.savepoint.path' = '{}';\n{}",
        savepoints.display(),
        script(&out, &cluster.path("checkpoints-2"))
    );
    let id2 = cluster.submit_script(&successor);
    cluster.wait_finished(id2);
    assert_eq!(&committed_lines(&out).unwrap(), expected);
}
