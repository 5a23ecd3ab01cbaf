//! The `kafka` table connector against a real Kafka-protocol broker started on 127.0.0.1
//! by the test: a window aggregation from one topic into another, malformed records
//! skipped and counted, metadata columns read, and exactly-once output across a failure.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_connectors::kafka::admin::create_topic;
use sluice_connectors::kafka::KafkaProperties;
use sluice_testkit::broker::KafkaBroker;
use sluice_testkit::watchdog::Watchdog;

use crate::recovery::run_failing;

fn broker() -> KafkaBroker {
    KafkaBroker::start().unwrap_or_else(|e| panic!("cannot start the test broker: {e}"))
}

fn topic(broker: &KafkaBroker, name: &str, partitions: i32) {
    let props = KafkaProperties::new(broker.bootstrap());
    create_topic(&props, name, partitions, &[("retention.ms", "-1")]).unwrap();
}

/// `n` CSV lines `k,v,ms` (keys 0..7, times 10 ms apart), keyed by `k`.
fn input(n: u64) -> Vec<(Option<String>, String)> {
    (0..n)
        .map(|i| {
            let k = i % 7;
            (Some(k.to_string()), format!("{k},{},{}", i % 100, i * 10))
        })
        .collect()
}

/// Per key and 1-second window: count, sum and the number of partitions the key's
/// records came from (one: the producer partitions by key), as the job's JSON output.
fn reference(rows: &[(Option<String>, String)]) -> Vec<String> {
    let mut groups: BTreeMap<(i64, i64), (i64, i64)> = BTreeMap::new();
    for (_, line) in rows {
        let f: Vec<i64> = line.split(',').map(|x| x.parse().unwrap()).collect();
        let g = groups.entry((f[0], f[2] / 1000)).or_default();
        g.0 += 1;
        g.1 += f[1];
    }
    let mut out: Vec<String> = groups
        .into_iter()
        .map(|((k, w), (n, s))| {
            let (h, m, sec) = (w / 3600, w / 60 % 60, w % 60);
            format!(
                r#"{{"k":{k},"w":"1970-01-01 {h:02}:{m:02}:{sec:02}.000","n":{n},"total":{s},"parts":1}}"#
            )
        })
        .collect();
    out.sort();
    out
}

fn script(broker: &KafkaBroker, extra: &str, sink_options: &str, value: &str) -> String {
    format!(
        "SET 'parallelism.default' = '2';
         {extra}
         CREATE TABLE src (
           k BIGINT, v BIGINT, ms BIGINT,
           part INT METADATA FROM 'partition' VIRTUAL,
           ts AS CAST(TO_TIMESTAMP_LTZ(ms, 3) AS TIMESTAMP(3)),
           WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
         ) WITH (
           'connector' = 'kafka', 'topic' = 'in',
           'properties.bootstrap.servers' = '{bootstrap}',
           'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
           'format' = 'csv', 'csv.ignore-parse-errors' = 'true'
         );
         CREATE TABLE dst (k BIGINT, w TIMESTAMP(3), n BIGINT, total BIGINT, parts BIGINT) WITH (
           'connector' = 'kafka', 'topic' = 'out',
           'properties.bootstrap.servers' = '{bootstrap}', 'format' = 'json' {sink_options}
         );
         INSERT INTO dst
         SELECT k, window_start, COUNT(*), SUM({value}), COUNT(DISTINCT part)
         FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND))
         GROUP BY k, window_start, window_end;",
        bootstrap = broker.bootstrap(),
    )
}

#[test]
fn a_window_aggregation_reads_and_writes_kafka_topics() {
    let _watchdog = Watchdog::start("kafka sql", Duration::from_secs(180));
    let broker = broker();
    topic(&broker, "in", 3);
    topic(&broker, "out", 2);
    let rows = input(3_000);
    let mut produced = rows.clone();
    // Malformed values: skipped and counted, never fatal with ignore-parse-errors.
    produced.insert(100, (None, "not,a,number".into()));
    produced.insert(2_000, (None, "7".into()));
    broker.produce("in", &produced).unwrap();
    let result = run_failing(&script(&broker, "", "", "v"), u64::MAX);
    assert_eq!(result.restarts, 0);
    let expected = reference(&rows);
    let got = broker.read_committed("out", 2, expected.len()).unwrap();
    let mut got: Vec<String> = got.into_iter().collect();
    got.sort();
    assert_eq!(got, expected);
}

#[test]
fn exactly_once_kafka_output_survives_a_failure() {
    let _watchdog = Watchdog::start("kafka sql exactly once", Duration::from_secs(180));
    let broker = broker();
    topic(&broker, "in", 3);
    topic(&broker, "out", 2);
    let rows = input(200_000);
    broker.produce("in", &rows).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = format!(
        "SET 'execution.checkpointing.interval' = '50ms';
         SET 'state.checkpoints.dir' = '{}';",
        dir.path().display()
    );
    let sink = ", 'sink.delivery-guarantee' = 'exactly-once', \
                'sink.transactional-id-prefix' = 'sql-exactly-once'";
    let result = run_failing(
        &script(&broker, &checkpoints, sink, "fail_once(v)"),
        150_000,
    );
    assert_eq!(
        result.restarts, 1,
        "the injected failure restarts the job once"
    );
    let expected = reference(&rows);
    let mut got = broker.read_committed("out", 2, expected.len()).unwrap();
    got.sort();
    assert_eq!(got, expected, "restored from {:?}", result.restores);
}

/// Watermarks per partition from the start: every partition of the topic holds rows of
/// the whole minute, and whichever the consumer reads first, none of the others' rows is
/// late (the source announces its partitions before their records).
#[test]
fn a_partition_read_later_is_not_late() {
    let _watchdog = Watchdog::start("kafka sql partitions", Duration::from_secs(180));
    let broker = broker();
    topic(&broker, "in", 4);
    topic(&broker, "out", 1);
    // Ten keys spread over the partitions, each with rows over the whole minute.
    let rows: Vec<(Option<String>, String)> = (0..6_000u64)
        .map(|i| {
            let k = i % 10;
            (Some(format!("key-{k}")), format!("{k},1,{}", i * 10))
        })
        .collect();
    broker.produce("in", &rows).unwrap();
    let sql = script(&broker, "", "", "v")
        .replace("'parallelism.default' = '2'", "'parallelism.default' = '1'");
    let result = run_failing(&sql, u64::MAX);
    assert_eq!(result.counter_total("late_records_dropped"), 0);
    let expected = reference(&rows);
    let mut got = broker.read_committed("out", 1, expected.len()).unwrap();
    got.sort();
    assert_eq!(got, expected);
}
