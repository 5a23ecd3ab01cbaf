//! Micro-benchmarks of the runtime's hot paths, without whole jobs: state table updates,
//! hash partitioning of batches, and batches crossing a channel between two threads.
//! Each prints one `RESULT` line like the whole-job workloads.

use std::sync::Arc;

use sluice_core::{stable_hash, Clock, KeyGroupRange, Records, StreamEvent, SystemClock};
use sluice_runtime::channel::{local_channel, ChannelWriter, GateSignal, InputGate};
use sluice_runtime::operator::chain::EventSink;
use sluice_runtime::partition::{PartitionStrategy, RouterOutput};
use sluice_runtime::JobControl;
use sluice_state::KeyedTable;

/// A batch of `(key, value)` records.
type Pairs = Records<(u64, u64)>;

fn report(workload: &str, events: u64, nanos: u64, extra: &str) {
    let seconds = nanos as f64 / 1e9;
    println!(
        "RESULT workload={workload} parallelism=1 events={events} seconds={seconds:.3} events_per_sec={:.0}{extra}",
        events as f64 / seconds
    );
}

/// `events` increments of `keys` keys in a key-group table, with and without prefetching.
pub(crate) fn state(events: u64, keys: u64) -> anyhow::Result<()> {
    let clock = SystemClock;
    for prefetch in [false, true] {
        let mut table: KeyedTable<u64, u64> =
            KeyedTable::new(KeyGroupRange::for_subtask(128, 1, 0), 128);
        let batch: Vec<u64> = (0..1024u64).collect();
        let mut hashes = vec![0u64; batch.len()];
        let start = clock.monotonic_nanos();
        let mut done = 0u64;
        let mut base = 0u64;
        while done < events {
            for (h, i) in hashes.iter_mut().zip(&batch) {
                *h = stable_hash(&((base + i) % keys));
            }
            for (j, i) in batch.iter().enumerate() {
                if prefetch {
                    if let Some(&ahead) = hashes.get(j + 16) {
                        table.prefetch(ahead);
                    }
                }
                let key = (base + i) % keys;
                *table.get_or_insert_with(&key, hashes[j], || 0) += 1;
            }
            base += batch.len() as u64;
            done += batch.len() as u64;
        }
        let nanos = clock.monotonic_nanos() - start;
        anyhow::ensure!(
            table.len() as u64 == keys.min(done),
            "table holds {} keys",
            table.len()
        );
        report(
            "micro-state",
            done,
            nanos,
            &format!(" keys={keys} prefetch={prefetch}"),
        );
    }
    Ok(())
}

/// `events` records of `(key, value)` hash-partitioned into `channels` channels (drained on
/// the same thread, so only the partitioner is measured).
pub(crate) fn partition(events: u64, channels: usize) -> anyhow::Result<()> {
    let clock = SystemClock;
    let control = JobControl::new();
    let signal = GateSignal::new();
    let mut writers: Vec<Box<dyn ChannelWriter<Pairs>>> = Vec::new();
    let mut readers = Vec::new();
    for _ in 0..channels {
        let (w, r) = local_channel(1 << 20, 1024, Arc::clone(&signal), &control);
        writers.push(Box::new(w));
        readers.push(r);
    }
    let strategy = PartitionStrategy::Hash(Arc::new(|r: &(u64, u64)| stable_hash(&r.0)));
    let mut router = RouterOutput::new(writers, strategy, 1024, 128, 0);
    let start = clock.monotonic_nanos();
    let mut sent = 0u64;
    let mut received = 0u64;
    while sent < events {
        let batch: Vec<(u64, u64)> = (sent..sent + 1024).map(|i| (i % 100_000, i)).collect();
        sent += batch.len() as u64;
        router.on_event(StreamEvent::Data(Records::from(batch)))?;
        for r in &readers {
            while let sluice_runtime::channel::TryRecv::Event(StreamEvent::Data(b)) = r.try_recv() {
                received += b.len() as u64;
            }
        }
    }
    router.flush()?;
    for r in &readers {
        while let sluice_runtime::channel::TryRecv::Event(StreamEvent::Data(b)) = r.try_recv() {
            received += b.len() as u64;
        }
    }
    let nanos = clock.monotonic_nanos() - start;
    anyhow::ensure!(received == sent, "sent {sent}, received {received}");
    report(
        "micro-partition",
        sent,
        nanos,
        &format!(" channels={channels}"),
    );
    Ok(())
}

/// `events` records in batches of `batch` through one channel of capacity 4 from a
/// sender thread to a receiving input gate.
pub(crate) fn channel(events: u64, batch: usize) -> anyhow::Result<()> {
    let clock = SystemClock;
    let control = JobControl::new();
    let signal = GateSignal::new();
    let (mut w, r) = local_channel::<Records<u64>>(4, batch, Arc::clone(&signal), &control);
    let batches = events / batch as u64;
    let start = clock.monotonic_nanos();
    let sender = std::thread::spawn(move || -> sluice_runtime::Result<()> {
        for i in 0..batches {
            w.send(StreamEvent::Data(Records::from(vec![i; batch])))?;
        }
        w.send(StreamEvent::EndOfStream)
    });
    let mut gate = InputGate::new(vec![r], signal, control);
    let mut received = 0u64;
    while let Some(ev) = gate.next(|| Ok(()))? {
        if let StreamEvent::Data(b) = ev.event {
            received += b.len() as u64;
        }
    }
    sender
        .join()
        .map_err(|_| anyhow::anyhow!("sender thread panicked"))??;
    let nanos = clock.monotonic_nanos() - start;
    anyhow::ensure!(received == batches * batch as u64, "lost records");
    report(
        "micro-channel",
        received,
        nanos,
        &format!(
            " batch={batch} batches_per_sec={:.0}",
            batches as f64 / (nanos as f64 / 1e9)
        ),
    );
    Ok(())
}
