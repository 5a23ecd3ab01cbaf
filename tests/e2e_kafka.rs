//! The Kafka source and sink against a real Kafka-protocol broker started on 127.0.0.1
//! by the test (`sluice_testkit::broker`), checked with a plain Kafka client.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sluice_api::prelude::*;
use sluice_api::{CheckpointConfig, RestartStrategy};
use sluice_connectors::kafka::admin::create_topic;
use sluice_connectors::kafka::{KafkaProperties, KafkaSink, KafkaSource, MalformedPolicy};
use sluice_core::Clock;
use sluice_testkit::broker::KafkaBroker;
use sluice_testkit::watchdog::{wait_until, Watchdog};

fn broker() -> KafkaBroker {
    KafkaBroker::start().unwrap_or_else(|e| panic!("cannot start the test broker: {e}"))
}

/// Client properties for tests (the broker may answer with large fetch responses).
fn props(broker: &KafkaBroker) -> KafkaProperties {
    KafkaProperties::new(broker.bootstrap()).set("receive.message.max.bytes", "2000000000")
}

fn topic(broker: &KafkaBroker, name: &str, partitions: i32) {
    create_topic(&props(broker), name, partitions, &[("retention.ms", "-1")]).unwrap();
}

fn produce(broker: &KafkaBroker, topic: &str, records: &[(Option<String>, String)]) {
    broker.produce(topic, records).unwrap();
}

fn consume_all(broker: &KafkaBroker, topic: &str, partitions: i32, expected: usize) -> Vec<String> {
    broker.read_committed(topic, partitions, expected).unwrap()
}

#[test]
fn strings_round_trip_through_a_job_in_bounded_mode() {
    let _watchdog = Watchdog::start("kafka round trip", Duration::from_secs(120));
    let broker = broker();
    topic(&broker, "words", 3);
    topic(&broker, "upper", 2);
    let input: Vec<(Option<String>, String)> = (0..5_000)
        .map(|i| (Some(format!("k{}", i % 17)), format!("word-{i}")))
        .collect();
    produce(&broker, "words", &input);
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2).set_handle_ctrl_c(false);
    env.add_source(
        "Kafka",
        KafkaSource::strings(props(&broker), &["words"]).bounded(),
    )
    .map(|s: String| s.to_uppercase())
    .add_sink("Kafka out", KafkaSink::strings(props(&broker), "upper"));
    let result = env.execute("kafka round trip").unwrap();
    assert_eq!(result.status, JobStatus::Finished);
    let mut expected: Vec<String> = input.iter().map(|(_, v)| v.to_uppercase()).collect();
    expected.sort();
    assert_eq!(consume_all(&broker, "upper", 2, expected.len()), expected);
}

#[test]
fn offsets_in_checkpoints_restore_keyed_state_exactly_once_and_reach_the_group() {
    let _watchdog = Watchdog::start("kafka checkpoints", Duration::from_secs(120));
    let broker = broker();
    topic(&broker, "numbers", 4);
    let n = 20_000u64;
    let input: Vec<(Option<String>, String)> = (0..n)
        .map(|i| (Some((i % 13).to_string()), i.to_string()))
        .collect();
    produce(&broker, "numbers", &input);
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2)
        .set_batch_size(64)
        .set_handle_ctrl_c(false);
    let mut config = CheckpointConfig::every(Duration::from_millis(10));
    config.restart = RestartStrategy::FixedDelay {
        attempts: 5,
        delay: Duration::from_millis(10),
    };
    env.set_checkpointing(config);
    let failed = Arc::new(AtomicU64::new(0));
    let f = Arc::clone(&failed);
    let source = KafkaSource::new(props(&broker).set("group.id", "sums"), &["numbers"], |r| {
        r.value_str()?.parse::<u64>().map_err(|e| e.to_string())
    });
    let sums = env
        .add_source("Kafka", source)
        .map(move |v: u64| {
            if v == n / 2 && f.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("injected failure at {v}");
            }
            (v % 13, v)
        })
        .key_by(|r| r.0)
        .sum(|r| &mut r.1)
        .collect();
    let job = env.execute_async("kafka sums");
    // The source is unbounded: wait until every record was summed, and the group's
    // committed offsets cover the whole topic.
    let mut expected: BTreeMap<u64, u64> = BTreeMap::new();
    for i in 0..n {
        *expected.entry(i % 13).or_default() += i;
    }
    let checker: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "sums")
        .create()
        .unwrap();
    wait_until("the group's committed offsets to reach the end", || {
        let mut tpl = TopicPartitionList::new();
        for p in 0..4 {
            tpl.add_partition("numbers", p);
        }
        let committed = checker
            .committed_offsets(tpl, Duration::from_secs(5))
            .unwrap();
        let total: i64 = committed
            .elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            })
            .sum();
        total == n as i64
    });
    job.cancel();
    let result = job.join();
    assert!(failed.load(Ordering::SeqCst) >= 1, "the failure happened");
    let _ = result;
    // Running sums: the last value per key must be the full sum, and no key may have
    // gone past it (a record counted twice would).
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    for (k, s) in sums.take() {
        let e = last.entry(k).or_default();
        *e = (*e).max(s);
    }
    assert_eq!(last, expected, "every record summed exactly once");
}

#[test]
fn malformed_records_fail_with_their_position_or_are_skipped_and_counted() {
    let _watchdog = Watchdog::start("kafka malformed", Duration::from_secs(120));
    let broker = broker();
    topic(&broker, "mixed", 1);
    let input: Vec<(Option<String>, String)> = ["1", "2", "x", "4"]
        .iter()
        .map(|v| (None, v.to_string()))
        .collect();
    produce(&broker, "mixed", &input);
    let job = |policy: MalformedPolicy| {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(1).set_handle_ctrl_c(false);
        let source = KafkaSource::new(props(&broker), &["mixed"], |r| {
            r.value_str()?.parse::<u64>().map_err(|e| e.to_string())
        })
        .bounded()
        .malformed(policy);
        let out = env.add_source("Kafka", source).collect();
        (env.execute("malformed"), out)
    };
    let (failed, _) = job(MalformedPolicy::Fail);
    let message = failed.unwrap_err().to_string();
    assert!(
        message.contains("`mixed` partition 0 at offset 2") && message.contains("invalid digit"),
        "{message}"
    );
    let (result, out) = job(MalformedPolicy::SkipAndCount);
    let result = result.unwrap();
    let mut got = out.take();
    got.sort_unstable();
    assert_eq!(got, vec![1, 2, 4]);
    assert_eq!(result.counter_total("numMalformedRecords"), 1);

    // Dead letters: the record goes, unchanged, to another topic with the reason.
    topic(&broker, "dead", 1);
    let (result, out) = job(MalformedPolicy::DeadLetter {
        topic: "dead".into(),
    });
    let result = result.unwrap();
    let mut got = out.take();
    got.sort_unstable();
    assert_eq!(got, vec![1, 2, 4]);
    assert_eq!(result.counter_total("numMalformedRecords"), 1);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "dead-reader")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("dead", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let letter = loop {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            use rdkafka::message::{Headers, Message};
            let headers: BTreeMap<String, String> = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            let value = String::from_utf8_lossy(h.value.unwrap_or_default());
                            (h.key.to_string(), value.into_owned())
                        })
                        .collect()
                })
                .unwrap_or_default();
            break (m.payload().map(<[u8]>::to_vec), headers);
        }
    };
    assert_eq!(letter.0.as_deref(), Some(&b"x"[..]));
    assert_eq!(letter.1["sluice.source"], "mixed/0/2");
    assert!(
        letter.1["sluice.error"].contains("invalid digit"),
        "{:?}",
        letter.1
    );
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Bid {
    auction: u64,
    bidder: String,
    price: f64,
}

#[test]
fn json_in_csv_out() {
    let _watchdog = Watchdog::start("kafka formats", Duration::from_secs(120));
    let broker = broker();
    topic(&broker, "bids-json", 2);
    topic(&broker, "bids-csv", 1);
    let bids: Vec<Bid> = (0..500)
        .map(|i| Bid {
            auction: i % 7,
            bidder: format!("bidder \"{i}\", inc."),
            price: i as f64 / 4.0,
        })
        .collect();
    let input: Vec<(Option<String>, String)> = bids
        .iter()
        .map(|b| (None, serde_json::to_string(b).unwrap()))
        .collect();
    produce(&broker, "bids-json", &input);
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2).set_handle_ctrl_c(false);
    env.add_source(
        "Bids",
        KafkaSource::<Bid>::json(props(&broker), &["bids-json"]).bounded(),
    )
    .map(|mut b: Bid| {
        b.price *= 2.0;
        b
    })
    .add_sink(
        "CSV",
        KafkaSink::csv(props(&broker), "bids-csv", |b: &Bid| {
            Some(b.auction.to_string().into_bytes())
        }),
    );
    env.execute("formats").unwrap();
    let got = consume_all(&broker, "bids-csv", 1, bids.len());
    let mut expected: Vec<String> = bids
        .iter()
        .map(|b| {
            let doubled = Bid {
                price: b.price * 2.0,
                ..b.clone()
            };
            let line = sluice_connectors::kafka::format::to_csv(&doubled).unwrap();
            String::from_utf8(line).unwrap()
        })
        .collect();
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn an_unreachable_broker_is_named_in_the_error() {
    let env = StreamExecutionEnvironment::new();
    env.set_handle_ctrl_c(false);
    let props =
        KafkaProperties::new("127.0.0.1:1").set("socket.connection.setup.timeout.ms", "1000");
    env.add_source(
        "Kafka",
        KafkaSource::strings(props, &["t"])
            .bounded()
            .request_timeout(Duration::from_secs(2)),
    )
    .discard();
    let message = env.execute("unreachable").unwrap_err().to_string();
    assert!(
        message.contains("127.0.0.1:1") && message.contains("reachable"),
        "{message}"
    );
}

/// Wraps the exactly-once Kafka sink and fails once right before a commit (the
/// checkpoint completed, its transaction not yet written) and once right after one.
struct CrashingSink {
    inner: KafkaSink<String>,
    failures: Arc<AtomicU64>,
    /// Notifications over all subtasks and attempts.
    notified: Arc<AtomicU64>,
}

struct CrashingWriter {
    inner: Box<dyn sluice_runtime::sink::SinkWriter<String>>,
    failures: Arc<AtomicU64>,
    notified: Arc<AtomicU64>,
}

impl sluice_runtime::sink::Sink<String> for CrashingSink {
    fn create_writer(
        &self,
        ctx: &sluice_runtime::OperatorContext,
    ) -> sluice_api::Result<Box<dyn sluice_runtime::sink::SinkWriter<String>>> {
        Ok(Box::new(CrashingWriter {
            inner: self.inner.create_writer(ctx)?,
            failures: Arc::clone(&self.failures),
            notified: Arc::clone(&self.notified),
        }))
    }
}

impl sluice_runtime::sink::SinkWriter<String> for CrashingWriter {
    fn write(&mut self, batch: sluice_api::Records<String>) -> sluice_api::Result<()> {
        self.inner.write(batch)
    }
    fn snapshot_state(
        &mut self,
        checkpoint: sluice_core::CheckpointId,
    ) -> sluice_api::Result<Option<Vec<u8>>> {
        self.inner.snapshot_state(checkpoint)
    }
    fn notify_checkpoint_complete(
        &mut self,
        checkpoint: sluice_core::CheckpointId,
    ) -> sluice_api::Result<()> {
        let notified = self.notified.fetch_add(1, Ordering::SeqCst) + 1;
        if notified >= 3 && self.failures.fetch_or(1, Ordering::SeqCst) & 1 == 0 {
            return Err(sluice_api::Error::User("crash before the commit".into()));
        }
        self.inner.notify_checkpoint_complete(checkpoint)?;
        if notified >= 7 && self.failures.fetch_or(2, Ordering::SeqCst) & 2 == 0 {
            return Err(sluice_api::Error::User("crash after the commit".into()));
        }
        Ok(())
    }
    fn stop(&mut self) -> sluice_api::Result<()> {
        self.inner.stop()
    }
    fn finish(&mut self) -> sluice_api::Result<()> {
        self.inner.finish()
    }
}

#[test]
fn the_exactly_once_sink_commits_each_checkpoint_once_across_failures_around_commits() {
    let _watchdog = Watchdog::start("kafka exactly-once sink", Duration::from_secs(120));
    let broker = broker();
    topic(&broker, "in", 2);
    topic(&broker, "out", 3);
    let n = 12_000u64;
    let input: Vec<(Option<String>, String)> = (0..n).map(|i| (None, i.to_string())).collect();
    produce(&broker, "in", &input);
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2)
        .set_batch_size(64)
        .set_handle_ctrl_c(false);
    let mut config = CheckpointConfig::every(Duration::from_millis(50));
    config.restart = RestartStrategy::FixedDelay {
        attempts: 5,
        delay: Duration::from_millis(10),
    };
    env.set_checkpointing(config);
    let failures = Arc::new(AtomicU64::new(0));
    let panicked = Arc::new(AtomicU64::new(0));
    let p = Arc::clone(&panicked);
    env.add_source(
        "Kafka",
        KafkaSource::strings(props(&broker), &["in"]).bounded(),
    )
    .map(move |s: String| {
        // Slow enough for several checkpoints; one panic two thirds in.
        if s.ends_with("0") {
            sluice_core::SystemClock.sleep(Duration::from_millis(1));
        }
        if s == (2 * n / 3).to_string() && p.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("injected failure at {s}");
        }
        s
    })
    .add_sink(
        "Kafka out",
        CrashingSink {
            inner: KafkaSink::strings(props(&broker), "out").exactly_once("eos-test"),
            failures: Arc::clone(&failures),
            notified: Arc::default(),
        },
    );
    let result = env.execute("kafka exactly-once").unwrap();
    assert_eq!(
        failures.load(Ordering::SeqCst),
        3,
        "both the crash before and the one after a commit happened"
    );
    // The panic and a sink failure may fall into one attempt.
    assert!(result.restarts >= 2, "{} restarts", result.restarts);
    let got = consume_all(&broker, "out", 3, n as usize);
    let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
    for v in &got {
        *counts.entry(v.parse().unwrap()).or_default() += 1;
    }
    let twice: Vec<u64> = counts
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(v, _)| *v)
        .collect();
    let missing: Vec<u64> = (0..n).filter(|v| !counts.contains_key(v)).collect();
    assert!(
        twice.is_empty() && missing.is_empty() && got.len() == n as usize,
        "{} committed for {n} records; {} duplicated (first {:?}), {} missing (first {:?})",
        got.len(),
        twice.len(),
        &twice[..twice.len().min(5)],
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

/// The context of subtask 0 of a checkpointing sink, restored from `state` (with the id
/// of its checkpoint) if given.
fn sink_context(state: Option<(Option<Vec<u8>>, u64)>) -> sluice_runtime::OperatorContext {
    use sluice_core::{KeyGroupRange, DEFAULT_MAX_PARALLELISM};
    sluice_runtime::OperatorContext {
        location: sluice_runtime::TaskLocation {
            operator: "Sink".into(),
            subtask: 0,
            parallelism: 1,
        },
        max_parallelism: DEFAULT_MAX_PARALLELISM,
        key_group_range: KeyGroupRange::for_subtask(DEFAULT_MAX_PARALLELISM, 1, 0),
        runtime_mode: sluice_runtime::RuntimeMode::Streaming,
        batch_size: 64,
        clock: Arc::new(sluice_core::SystemClock),
        metrics: sluice_runtime::metrics::MetricRegistry::new(),
        operator_id: sluice_core::OperatorId(1),
        restored: state.map(|(operator, id)| {
            Arc::new(sluice_runtime::checkpoint::RestoredState {
                checkpoint: Some(sluice_core::CheckpointId(id)),
                keyed: Vec::new(),
                operator,
                channels: Vec::new(),
            })
        }),
        snapshots: Some(Arc::default()),
    }
}

#[test]
fn a_restored_exactly_once_sink_commits_exactly_the_checkpoints_that_did_not_commit() {
    use sluice_core::CheckpointId;
    use sluice_runtime::sink::Sink;
    let _watchdog = Watchdog::start("kafka sink restore", Duration::from_secs(60));
    let broker = broker();
    topic(&broker, "committed", 1);
    let sink = || KafkaSink::strings(props(&broker), "committed").exactly_once("restore-test");
    let batch = |values: &[&str]| {
        sluice_api::Records::from(values.iter().map(|v| v.to_string()).collect::<Vec<_>>())
    };
    // Checkpoint 1 commits; checkpoint 2 commits, then the process "crashes" (its
    // state still lists entry 2); checkpoint 3 is pre-committed, then it crashes again
    // before the commit.
    let mut w = sink().create_writer(&sink_context(None)).unwrap();
    w.write(batch(&["a1", "a2"])).unwrap();
    w.snapshot_state(CheckpointId(1)).unwrap();
    w.notify_checkpoint_complete(CheckpointId(1)).unwrap();
    w.write(batch(&["b1"])).unwrap();
    let state2 = w.snapshot_state(CheckpointId(2)).unwrap();
    w.notify_checkpoint_complete(CheckpointId(2)).unwrap();
    drop(w);
    // Restored from checkpoint 2 after its commit: nothing is written again.
    let mut w = sink()
        .create_writer(&sink_context(Some((state2, 2))))
        .unwrap();
    w.write(batch(&["c1", "c2"])).unwrap();
    let state3 = w.snapshot_state(CheckpointId(3)).unwrap();
    drop(w);
    // Restored from checkpoint 3 before its commit: entry 3 is committed now.
    let mut w = sink()
        .create_writer(&sink_context(Some((state3, 3))))
        .unwrap();
    w.write(batch(&["d1"])).unwrap();
    w.snapshot_state(CheckpointId(4)).unwrap();
    w.notify_checkpoint_complete(CheckpointId(4)).unwrap();
    drop(w);
    assert_eq!(
        consume_all(&broker, "committed", 1, 6),
        vec!["a1", "a2", "b1", "c1", "c2", "d1"]
    );
    // A fresh run (no restored state) starts its checkpoint ids at 1 again: the marker
    // of the earlier run must not hide its entries.
    let mut w = sink().create_writer(&sink_context(None)).unwrap();
    w.write(batch(&["e1"])).unwrap();
    let state = w.snapshot_state(CheckpointId(1)).unwrap();
    drop(w);
    let w = sink()
        .create_writer(&sink_context(Some((state, 1))))
        .unwrap();
    drop(w);
    assert_eq!(
        consume_all(&broker, "committed", 1, 7),
        vec!["a1", "a2", "b1", "c1", "c2", "d1", "e1"]
    );
}

#[test]
fn a_topic_pattern_discovers_topics_created_while_running() {
    let _watchdog = Watchdog::start("kafka discovery", Duration::from_secs(120));
    let broker = broker();
    topic(&broker, "grow-a", 2);
    topic(&broker, "other", 1);
    let first: Vec<(Option<String>, String)> = (0..100).map(|i| (None, format!("a{i}"))).collect();
    produce(&broker, "grow-a", &first);
    produce(&broker, "other", &[(None, "not mine".to_string())]);
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2).set_handle_ctrl_c(false);
    let source = KafkaSource::strings(props(&broker), &[])
        .topic_pattern("grow-.*")
        .unwrap()
        .partition_discovery(Some(Duration::from_millis(200)));
    let seen = Arc::new(AtomicU64::new(0));
    let s = Arc::clone(&seen);
    let out = env
        .add_source("Kafka", source)
        .map(move |v: String| {
            s.fetch_add(1, Ordering::SeqCst);
            v
        })
        .collect();
    let job = env.execute_async("discovery");
    wait_until("the first topic to be read", || {
        seen.load(Ordering::SeqCst) == 100
    });
    topic(&broker, "grow-b", 3);
    let second: Vec<(Option<String>, String)> = (0..50).map(|i| (None, format!("b{i}"))).collect();
    produce(&broker, "grow-b", &second);
    wait_until("the new topic to be discovered and read", || {
        seen.load(Ordering::SeqCst) == 150
    });
    job.cancel();
    let _ = job.join();
    let mut got = out.take();
    got.sort();
    let mut expected: Vec<String> = first.into_iter().chain(second).map(|(_, v)| v).collect();
    expected.sort();
    assert_eq!(got, expected, "both topics, not `other`");
}

#[test]
fn whole_records_carry_key_value_timestamp_partition_and_offset() {
    let _watchdog = Watchdog::start("kafka records", Duration::from_secs(60));
    let broker = broker();
    topic(&broker, "raw", 2);
    let input: Vec<(Option<String>, String)> = (0..40)
        .map(|i| (Some(format!("k{}", i % 4)), format!("v{i}")))
        .collect();
    produce(&broker, "raw", &input);
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2).set_handle_ctrl_c(false);
    let out = env
        .add_source(
            "Kafka",
            KafkaSource::records(props(&broker), &["raw"]).bounded(),
        )
        .collect();
    env.execute("raw records").unwrap();
    let records = out.take();
    assert_eq!(records.len(), 40);
    let mut per_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for r in &records {
        assert_eq!(r.topic, "raw");
        let key = String::from_utf8(r.key.clone().unwrap()).unwrap();
        let value = String::from_utf8(r.value.clone().unwrap()).unwrap();
        let i: u64 = value[1..].parse().unwrap();
        assert_eq!(key, format!("k{}", i % 4), "key and value travel together");
        assert!(r.timestamp_ms.is_some_and(|t| t > 0));
        per_partition.entry(r.partition).or_default().push(r.offset);
    }
    // Every offset of every partition once, from 0 up.
    for offsets in per_partition.values_mut() {
        offsets.sort_unstable();
        assert_eq!(*offsets, (0..offsets.len() as i64).collect::<Vec<_>>());
    }
}

#[test]
fn a_restore_from_an_older_checkpoint_does_not_hide_the_new_output() {
    use sluice_core::CheckpointId;
    use sluice_runtime::sink::Sink;
    let _watchdog = Watchdog::start("kafka sink savepoint restore", Duration::from_secs(60));
    let broker = broker();
    topic(&broker, "restarted", 1);
    let sink = || KafkaSink::strings(props(&broker), "restarted").exactly_once("sp-test");
    let one = |v: &str| sluice_api::Records::from(vec![v.to_string()]);
    // A run commits checkpoints 1 to 3; its state at 2 is kept (a savepoint).
    let mut w = sink().create_writer(&sink_context(None)).unwrap();
    w.write(one("x1")).unwrap();
    w.snapshot_state(CheckpointId(1)).unwrap();
    w.notify_checkpoint_complete(CheckpointId(1)).unwrap();
    w.write(one("x2")).unwrap();
    let state2 = w.snapshot_state(CheckpointId(2)).unwrap();
    w.notify_checkpoint_complete(CheckpointId(2)).unwrap();
    w.write(one("x3")).unwrap();
    w.snapshot_state(CheckpointId(3)).unwrap();
    w.notify_checkpoint_complete(CheckpointId(3)).unwrap();
    drop(w);
    // A new run starts from the state at 2: its checkpoint 3 is new output, although the
    // marker of the earlier run already says 3.
    let mut w = sink()
        .create_writer(&sink_context(Some((state2, 2))))
        .unwrap();
    w.write(one("y3")).unwrap();
    w.snapshot_state(CheckpointId(3)).unwrap();
    w.notify_checkpoint_complete(CheckpointId(3)).unwrap();
    drop(w);
    assert_eq!(
        consume_all(&broker, "restarted", 1, 4),
        vec!["x1", "x2", "x3", "y3"]
    );
}
