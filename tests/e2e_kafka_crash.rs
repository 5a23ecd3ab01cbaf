//! Kafka to Kafka, exactly once across `kill -9`: the `kafka_exactly_once` example (a
//! windowed job reading a topic and writing another through transactions tied to
//! checkpoints) is killed at random times several times and started again each time;
//! a plain `read_committed` consumer of the output then sees every window exactly once,
//! as a failure-free computation gives it. Prints its seed; replay with
//! `SLUICE_TEST_SEED=<seed>`.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use sluice_connectors::kafka::admin::create_topic;
use sluice_connectors::kafka::KafkaProperties;
use sluice_core::{Clock, SystemClock};
use sluice_testkit::broker::KafkaBroker;
use sluice_testkit::seed::test_seed;
use sluice_testkit::watchdog::Watchdog;

const RECORDS: u64 = 60_000;
const KEYS: u64 = 12;

fn example() -> PathBuf {
    sluice_testkit::examples::binary("kafka_exactly_once")
}

fn expected() -> Vec<String> {
    let mut windows: BTreeMap<(String, u64), (u64, u64)> = BTreeMap::new();
    for i in 0..RECORDS {
        let e = windows
            .entry((format!("k{}", i % KEYS), (i / 10) / 100 * 100))
            .or_default();
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

#[test]
fn kafka_to_kafka_is_exactly_once_across_sigkill() {
    let _watchdog = Watchdog::start("kafka kill -9", Duration::from_secs(300));
    let mut rng = test_seed("kafka_to_kafka_is_exactly_once_across_sigkill") | 1;
    let mut next = |bound: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % bound
    };
    let broker = KafkaBroker::start().unwrap();
    let props = KafkaProperties::new(broker.bootstrap());
    create_topic(&props, "numbers", 3, &[("retention.ms", "-1")]).unwrap();
    create_topic(&props, "windows", 2, &[("retention.ms", "-1")]).unwrap();
    let input: Vec<(Option<String>, String)> = (0..RECORDS)
        .map(|i| (Some(format!("k{}", i % KEYS)), i.to_string()))
        .collect();
    broker.produce("numbers", &input).unwrap();
    let chk = tempfile::tempdir().unwrap();
    let command = |unaligned: bool| {
        let mut c = Command::new(example());
        c.args(["--bootstrap", &broker.bootstrap()])
            .args(["--input", "numbers", "--output", "windows"])
            .arg("--checkpoints")
            .arg(chk.path())
            // About 3 s per run: 1 ms every 20 records.
            .args(["--slow-every", "20"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if unaligned {
            c.arg("--unaligned");
        }
        c
    };
    let clock = SystemClock;
    let mut finished = false;
    for kill in 0..3 {
        let unaligned = next(2) == 1;
        let mut child = command(unaligned).spawn().unwrap();
        let after = 400 + next(2_000);
        clock.sleep(Duration::from_millis(after));
        child.kill().unwrap(); // SIGKILL (nothing happens if the run already ended)
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprintln!(
            "run {kill} (unaligned: {unaligned}): killed after {after} ms; {}",
            stderr.trim()
        );
        if stderr.contains("finished in") {
            finished = true;
            break;
        }
    }
    if !finished {
        let output = command(false).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprintln!("final run: {}", stderr.trim());
        assert!(output.status.success(), "the final run failed: {stderr}");
    }
    let expected = expected();
    let got = broker.read_committed("windows", 2, expected.len()).unwrap();
    if got != expected {
        eprintln!("broker log:\n{}", broker.log());
    }
    assert_eq!(
        got.len(),
        expected.len(),
        "committed windows: {} instead of {}",
        got.len(),
        expected.len()
    );
    assert_eq!(
        got, expected,
        "committed output differs from a failure-free run"
    );
}
