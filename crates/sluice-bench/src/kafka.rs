//! The `kafka` workload: throughput against a local Kafka-protocol broker, beside the
//! broker's own limit measured by a plain client.
//!
//! Starts the test broker (`sluice_testkit::broker`, or `--bootstrap` for one already
//! running), writes `messages` records of `size` bytes into a topic of `partitions`
//! partitions with a plain producer (the produce limit), reads them back with a plain
//! consumer (the consume limit), then runs Sluice jobs over the same topic: consume only
//! (bounded source into a discarding sink) and consume-transform-produce (bounded source,
//! a map, a Kafka sink), at-least-once and exactly-once (checkpoints every second).

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sluice_api::connectors::kafka::admin::create_topic;
use sluice_api::connectors::kafka::{KafkaProperties, KafkaRecord, KafkaSink, KafkaSource};
use sluice_api::prelude::*;
use sluice_core::{Clock, SystemClock};
use sluice_testkit::broker::KafkaBroker;

fn seconds_since(start: u64) -> f64 {
    (SystemClock.monotonic_nanos() - start) as f64 / 1e9
}

fn plain_produce(bootstrap: &str, topic: &str, messages: u64, size: usize) -> anyhow::Result<f64> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()?;
    let payload = vec![b'x'; size];
    let start = SystemClock.monotonic_nanos();
    for i in 0..messages {
        let key = (i % 1024).to_string();
        let mut record = BaseRecord::to(topic).key(&key).payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    producer.poll(Duration::from_millis(1));
                    record = r;
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(seconds_since(start))
}

fn plain_consume(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    messages: u64,
) -> anyhow::Result<f64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-plain")
        .set("receive.message.max.bytes", "2000000000")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let start = SystemClock.monotonic_nanos();
    let mut seen = 0;
    while seen < messages {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => seen += 1,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => anyhow::bail!("consume failed: {e}"),
        }
        if seconds_since(start) > 300.0 {
            anyhow::bail!("consumed only {seen} of {messages} messages in 300 s");
        }
    }
    Ok(seconds_since(start))
}

fn result(label: &str, messages: u64, seconds: f64) {
    println!(
        "RESULT workload=kafka mode={label} messages={messages} seconds={seconds:.3} messages_per_sec={:.0}",
        messages as f64 / seconds
    );
}

/// Runs the workload.
pub(crate) fn kafka(
    bootstrap: Option<String>,
    messages: u64,
    size: usize,
    partitions: i32,
    parallelism: u32,
) -> anyhow::Result<()> {
    let broker = match &bootstrap {
        Some(_) => None,
        None => Some(KafkaBroker::start()?),
    };
    let bootstrap = bootstrap
        .or_else(|| broker.as_ref().map(KafkaBroker::bootstrap))
        .unwrap_or_default();
    let props = KafkaProperties::new(&bootstrap).set("receive.message.max.bytes", "2000000000");
    let run = SystemClock.monotonic_nanos();
    let (input, output) = (format!("bench-in-{run}"), format!("bench-out-{run}"));
    for topic in [&input, &output] {
        create_topic(&props, topic, partitions, &[("retention.ms", "-1")])?;
    }
    eprintln!(
        "kafka: {messages} messages of {size} B, {partitions} partitions, broker {bootstrap}"
    );
    result(
        "plain-produce",
        messages,
        plain_produce(&bootstrap, &input, messages, size)?,
    );
    result(
        "plain-consume",
        messages,
        plain_consume(&bootstrap, &input, partitions, messages)?,
    );

    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    let sink = env
        .add_source(
            "Kafka",
            KafkaSource::records(props.clone(), &[&input]).bounded(),
        )
        .discard();
    let job = env.execute("bench-kafka-consume")?;
    anyhow::ensure!(
        sink.count() == messages,
        "read {} of {messages}",
        sink.count()
    );
    result("sluice-consume", messages, job.duration.as_secs_f64());

    for exactly_once in [false, true] {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(parallelism);
        if exactly_once {
            env.enable_checkpointing(Duration::from_secs(1));
        }
        let mut sink = KafkaSink::new(props.clone(), &output, |r: &KafkaRecord| {
            (r.key.clone(), r.value.clone().unwrap_or_default())
        });
        if exactly_once {
            sink = sink.exactly_once(&format!("bench-{run}"));
        }
        env.add_source(
            "Kafka",
            KafkaSource::records(props.clone(), &[&input]).bounded(),
        )
        .map(|mut r: KafkaRecord| {
            if let Some(v) = r.value.as_mut() {
                v.make_ascii_uppercase();
            }
            r
        })
        .add_sink("Kafka out", sink);
        let job = env.execute("bench-kafka-transform")?;
        let label = if exactly_once {
            "sluice-consume-transform-produce-exactly-once"
        } else {
            "sluice-consume-transform-produce-at-least-once"
        };
        result(label, messages, job.duration.as_secs_f64());
    }
    drop(broker);
    Ok(())
}
