//! A job process killed with SIGKILL at random times, several times, and started again
//! with the same directories each time, resumes from its latest completed checkpoint; in
//! the end its committed output equals that of a failure-free run exactly. Runs the
//! `exactly_once` example binary (built by `cargo test`). Prints its seed; replay with
//! `SLUICE_TEST_SEED=<seed>`.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use sluice_core::{Clock, SystemClock};
use sluice_testkit::seed::test_seed;
use sluice_testkit::watchdog::Watchdog;

const RECORDS: u64 = 120_000;
const KEYS: u64 = 10;
const RATE: &str = "40000";

fn example() -> PathBuf {
    sluice_testkit::examples::binary("exactly_once")
}

fn command(out: &Path, chk: &Path) -> Command {
    let mut c = Command::new(example());
    c.args(["--output"])
        .arg(out)
        .arg("--checkpoints")
        .arg(chk)
        .args([
            "--records",
            &RECORDS.to_string(),
            "--keys",
            &KEYS.to_string(),
            "--rate",
            RATE,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn expected() -> Vec<String> {
    let mut windows: BTreeMap<(u64, u64), (u64, u64)> = BTreeMap::new();
    for i in 0..RECORDS {
        let e = windows.entry((i % KEYS, (i / 10) / 100 * 100)).or_default();
        e.0 += 1;
        e.1 += i;
    }
    let mut lines: Vec<String> = windows
        .into_iter()
        .map(|((k, start), (count, sum))| format!("{k},{start},{count},{sum}"))
        .collect();
    lines.sort();
    lines
}

fn committed(dir: &std::path::Path) -> Vec<String> {
    sluice_testkit::files::committed_lines(dir).unwrap()
}

#[test]
fn a_job_killed_with_sigkill_resumes_from_its_checkpoints_exactly_once() {
    let _watchdog = Watchdog::start("kill -9 recovery", Duration::from_secs(240));
    let mut rng =
        test_seed("a_job_killed_with_sigkill_resumes_from_its_checkpoints_exactly_once") | 1;
    let mut next = |bound: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % bound
    };
    let dir = tempfile::tempdir().unwrap();
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
    let clock = SystemClock;
    let mut resumed = 0;
    let mut finished = false;
    for kill in 0..3 {
        // Runs alternate at random between aligned and unaligned checkpoints: either
        // kind restores the other's checkpoints.
        let unaligned = next(2) == 1;
        let mut cmd = command(&out, &chk);
        if unaligned {
            cmd.arg("--unaligned");
        }
        let mut child = cmd.spawn().unwrap();
        let after = 300 + next(2_700);
        clock.sleep(Duration::from_millis(after));
        child.kill().unwrap(); // SIGKILL (nothing happens if the run already ended)
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprintln!(
            "run {kill} (unaligned: {unaligned}): killed after {after} ms; {}",
            stderr.trim()
        );
        if stderr.contains("resuming from checkpoint") {
            resumed += 1;
        }
        if stderr.contains("finished in") {
            // This run got to the end before the kill: the job is done.
            finished = true;
            break;
        }
    }
    if !finished {
        let output = command(&out, &chk).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprintln!("final run: {}", stderr.trim());
        assert!(output.status.success(), "the final run failed: {stderr}");
        if stderr.contains("resuming from checkpoint") {
            resumed += 1;
        }
    }
    assert!(
        resumed >= 1,
        "no run resumed from a checkpoint of the one before"
    );
    assert_eq!(
        committed(&out),
        expected(),
        "committed output differs from a failure-free run"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".inprogress"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "in-progress files left: {leftovers:?}"
    );
    // A finished job leaves no checkpoint to resume from.
    let left: Vec<String> = std::fs::read_dir(&chk)
        .unwrap()
        .flatten()
        .flat_map(|job| std::fs::read_dir(job.path()).unwrap().flatten())
        .map(|e| {
            let inside: Vec<String> = std::fs::read_dir(e.path())
                .map(|d| {
                    d.flatten()
                        .map(|f| f.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            format!("{} {inside:?}", e.file_name().to_string_lossy())
        })
        .collect();
    assert!(
        left.is_empty(),
        "checkpoints left after the job finished: {left:?}"
    );
}
