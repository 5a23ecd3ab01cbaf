//! Partitioners: which downstream subtask receives each record.
//!
//! [`Partitioning`] names the pattern of an edge (Flink's words: forward, rebalance,
//! broadcast, hash); [`RouterOutput`] applies it to a typed stream, splitting each batch
//! into per-channel batches that it ships once they reach the target size (or on a
//! control event, or when the task is idle).
//!
//! Invariant: a partitioner never reorders records within a key (hash) or within a
//! channel, never drops a record, and sends every control event to every channel after
//! all records that preceded it.

use std::sync::Arc;

use sluice_core::{
    key_group_for_hash, operator_index_for_key_group, EventTime, Records, StreamEvent,
};

use crate::channel::ChannelWriter;
use crate::error::Result;
use crate::operator::chain::EventSink;

/// How the records of an edge are distributed over the downstream subtasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Partitioning {
    /// Subtask `i` sends to subtask `i` (equal parallelism); chained when possible.
    Forward,
    /// Records are dealt round robin over all downstream subtasks.
    Rebalance,
    /// Every record goes to every downstream subtask.
    Broadcast,
    /// Records go to the subtask owning their key's key group.
    Hash,
}

impl Partitioning {
    /// Whether subtask `i` connects to every downstream subtask (else only to subtask `i`).
    pub fn is_all_to_all(self) -> bool {
        !matches!(self, Partitioning::Forward)
    }
}

impl std::fmt::Display for Partitioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Partitioning::Forward => "FORWARD",
            Partitioning::Rebalance => "REBALANCE",
            Partitioning::Broadcast => "BROADCAST",
            Partitioning::Hash => "HASH",
        })
    }
}

/// The stable hash of a record's key (see [`sluice_core::stable_hash`]).
pub type KeyHashFn<T> = Arc<dyn Fn(&T) -> u64 + Send + Sync>;

/// The partitioning of a typed edge, with what it needs to route records.
pub enum PartitionStrategy<T> {
    /// See [`Partitioning::Forward`].
    Forward,
    /// See [`Partitioning::Rebalance`].
    Rebalance,
    /// See [`Partitioning::Broadcast`].
    Broadcast,
    /// See [`Partitioning::Hash`]; the function gives the key's stable hash.
    Hash(KeyHashFn<T>),
}

impl<T> Clone for PartitionStrategy<T> {
    fn clone(&self) -> Self {
        match self {
            PartitionStrategy::Forward => PartitionStrategy::Forward,
            PartitionStrategy::Rebalance => PartitionStrategy::Rebalance,
            PartitionStrategy::Broadcast => PartitionStrategy::Broadcast,
            PartitionStrategy::Hash(f) => PartitionStrategy::Hash(Arc::clone(f)),
        }
    }
}

impl<T> PartitionStrategy<T> {
    /// The pattern this strategy follows.
    pub fn partitioning(&self) -> Partitioning {
        match self {
            PartitionStrategy::Forward => Partitioning::Forward,
            PartitionStrategy::Rebalance => Partitioning::Rebalance,
            PartitionStrategy::Broadcast => Partitioning::Broadcast,
            PartitionStrategy::Hash(_) => Partitioning::Hash,
        }
    }
}

/// The output of a task on one edge: partitions batches over the edge's channels.
pub struct RouterOutput<T> {
    writers: Vec<Box<dyn ChannelWriter<Records<T>>>>,
    strategy: PartitionStrategy<T>,
    pending: Vec<Records<T>>,
    batch_size: usize,
    max_parallelism: u32,
    next_channel: usize,
}

impl<T: Clone + Send + 'static> RouterOutput<T> {
    /// A router over `writers` (one per downstream subtask for all-to-all patterns, one
    /// for forward), starting round robin at `first_channel`.
    pub fn new(
        writers: Vec<Box<dyn ChannelWriter<Records<T>>>>,
        strategy: PartitionStrategy<T>,
        batch_size: usize,
        max_parallelism: u32,
        first_channel: usize,
    ) -> Self {
        let n = writers.len();
        RouterOutput {
            pending: (0..n).map(|_| Records::new()).collect(),
            writers,
            strategy,
            batch_size: batch_size.max(1),
            max_parallelism,
            next_channel: first_channel % n.max(1),
        }
    }

    fn ship(&mut self, channel: usize) -> Result<()> {
        if self.pending[channel].is_empty() {
            return Ok(());
        }
        let batch = self.pending[channel].take(self.batch_size);
        self.writers[channel].send(StreamEvent::Data(batch))
    }

    fn ship_full(&mut self) -> Result<()> {
        for channel in 0..self.pending.len() {
            if self.pending[channel].len() >= self.batch_size {
                self.ship(channel)?;
            }
        }
        Ok(())
    }

    fn route(&mut self, batch: Records<T>) -> Result<()> {
        let n = self.writers.len();
        if n == 1 {
            // One channel: no per-record work; a full batch goes out as it is.
            if self.pending[0].is_empty() && batch.len() >= self.batch_size {
                return self.writers[0].send(StreamEvent::Data(batch));
            }
            self.pending[0].append(batch);
            return self.ship_full();
        }
        match &self.strategy {
            PartitionStrategy::Broadcast => {
                for channel in 0..n {
                    self.pending[channel].append(batch.clone());
                }
            }
            PartitionStrategy::Forward | PartitionStrategy::Rebalance => {
                let mut next = self.next_channel;
                for (value, ts) in batch.into_iter_timed() {
                    self.pending[next].push(value, ts);
                    next += 1;
                    if next == n {
                        next = 0;
                    }
                }
                self.next_channel = next;
            }
            PartitionStrategy::Hash(key_hash) => {
                let key_hash = Arc::clone(key_hash);
                let (max, parallelism) = (self.max_parallelism, n as u32);
                let (values, timestamps) = batch.into_parts();
                let mut push = |value: T, ts: Option<EventTime>| {
                    let group = key_group_for_hash(key_hash(&value), max);
                    let channel = operator_index_for_key_group(group, max, parallelism) as usize;
                    self.pending[channel].push(value, ts);
                };
                match timestamps {
                    None => values.into_iter().for_each(|v| push(v, None)),
                    Some(ts) => values
                        .into_iter()
                        .zip(ts)
                        .for_each(|(v, t)| push(v, Some(t))),
                }
            }
        }
        self.ship_full()
    }
}

impl<T: Clone + Send + 'static> EventSink<Records<T>> for RouterOutput<T> {
    fn on_event(&mut self, event: StreamEvent<Records<T>>) -> Result<()> {
        match event {
            StreamEvent::Data(batch) => self.route(batch),
            StreamEvent::Barrier(barrier) if barrier.is_unaligned() => {
                // Ahead of the data: never waits for room downstream. The partial batches
                // held here belong before the barrier and travel behind it as in-flight
                // data.
                let batch_size = self.batch_size;
                for (writer, pending) in self.writers.iter_mut().zip(&mut self.pending) {
                    let held = (!pending.is_empty()).then(|| pending.take(batch_size));
                    writer.send_overtaking(barrier, held)?;
                }
                Ok(())
            }
            control => {
                self.flush()?;
                for writer in &mut self.writers {
                    if let Some(ev) = control.map_control() {
                        writer.send(ev)?;
                    }
                }
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> Result<()> {
        for channel in 0..self.pending.len() {
            self.ship(channel)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelReceiver;
    use crate::channel::{local_channel, GateSignal, TryRecv};
    use crate::control::JobControl;
    use sluice_core::stable_hash;

    fn router(
        n: usize,
        strategy: PartitionStrategy<u64>,
        batch: usize,
    ) -> (RouterOutput<u64>, Vec<ChannelReceiver<Records<u64>>>) {
        let control = JobControl::new();
        let mut writers: Vec<Box<dyn ChannelWriter<Records<u64>>>> = vec![];
        let mut readers = vec![];
        for _ in 0..n {
            let (w, r) = local_channel(1000, 1024, GateSignal::new(), &control);
            writers.push(Box::new(w));
            readers.push(r);
        }
        (RouterOutput::new(writers, strategy, batch, 128, 0), readers)
    }

    fn drain(r: &ChannelReceiver<Records<u64>>) -> (Vec<u64>, Vec<String>) {
        let mut values = vec![];
        let mut events = vec![];
        while let TryRecv::Event(ev) = r.try_recv() {
            match ev {
                StreamEvent::Data(b) => {
                    events.push(format!("data{}", b.len()));
                    values.extend(b.into_values());
                }
                StreamEvent::EndOfStream => events.push("end".into()),
                other => events.push(format!("{other:?}")),
            }
        }
        (values, events)
    }

    #[test]
    fn hash_routes_each_key_to_its_key_group_owner_in_order() {
        let strategy = PartitionStrategy::Hash(Arc::new(|v: &u64| stable_hash(&(v % 10))));
        let (mut r, readers) = router(3, strategy, 4);
        r.on_event(StreamEvent::Data(Records::from(
            (0..100).collect::<Vec<u64>>(),
        )))
        .unwrap();
        r.on_event(StreamEvent::EndOfStream).unwrap();
        let mut total = 0;
        for (i, reader) in readers.iter().enumerate() {
            let (values, events) = drain(reader);
            assert_eq!(events.last().map(String::as_str), Some("end"));
            total += values.len();
            let mut sorted = values.clone();
            sorted.sort_unstable();
            assert_eq!(values, sorted, "order within a channel is kept");
            for v in values {
                let g = sluice_core::key_group_for(&(v % 10), 128);
                assert_eq!(operator_index_for_key_group(g, 128, 3) as usize, i);
            }
        }
        assert_eq!(total, 100);
    }

    #[test]
    fn rebalance_deals_round_robin_and_broadcast_copies() {
        let (mut r, readers) = router(3, PartitionStrategy::Rebalance, 1000);
        r.on_event(StreamEvent::Data(Records::from(
            (0..9).collect::<Vec<u64>>(),
        )))
        .unwrap();
        r.flush().unwrap();
        assert_eq!(drain(&readers[1]).0, vec![1, 4, 7]);
        let (mut r, readers) = router(2, PartitionStrategy::Broadcast, 1000);
        r.on_event(StreamEvent::Data(Records::from(vec![5, 6])))
            .unwrap();
        r.flush().unwrap();
        assert_eq!(drain(&readers[0]).0, vec![5, 6]);
        assert_eq!(drain(&readers[1]).0, vec![5, 6]);
    }

    #[test]
    fn batches_fill_to_target_and_flush_before_control_events() {
        let (mut r, readers) = router(1, PartitionStrategy::Forward, 4);
        for i in 0..3 {
            r.on_event(StreamEvent::Data(Records::from(vec![i, i])))
                .unwrap();
        }
        r.on_event(StreamEvent::Watermark(sluice_core::Watermark(EventTime(1))))
            .unwrap();
        let (values, events) = drain(&readers[0]);
        assert_eq!(values, vec![0, 0, 1, 1, 2, 2]);
        assert_eq!(events[0], "data4");
        assert_eq!(events[1], "data2");
        assert!(events[2].starts_with("Watermark"));
    }
}
