//! The data plane between two [`DataPlane`]s in one process, over loopback TCP.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_core::{Clock, SystemClock};

use sluice_core::{Records, StreamEvent};
use sluice_runtime::channel::{ChannelReceiver, ChannelWriter, GateSignal, TryRecv};
use sluice_runtime::factories::RecordsEdge;
use sluice_runtime::graph::{ChannelSettings, EdgeFactory};
use sluice_runtime::partition::PartitionStrategy;
use sluice_runtime::placement::ChannelId;
use sluice_runtime::JobControl;

use super::frame::ChannelKey;
use super::DataPlane;

type Batch = Records<u64>;

fn key(deployment: u64) -> ChannelKey {
    ChannelKey {
        deployment,
        channel: ChannelId {
            edge: 0,
            from: 0,
            to: 0,
        },
    }
}

/// A remote channel from plane `a` to plane `b` holding `capacity` batches.
fn channel(
    a: &DataPlane,
    b: &DataPlane,
    k: ChannelKey,
    capacity: usize,
) -> (Box<dyn ChannelWriter<Batch>>, ChannelReceiver<Batch>) {
    let edge = RecordsEdge::<u64>::new(PartitionStrategy::Forward);
    let control = JobControl::new();
    let on_take = b.credit_return(k, capacity as u32);
    let (inbox, receiver) = edge
        .create_remote_receiver(
            ChannelSettings {
                capacity,
                batch_size: 100,
            },
            Arc::new(GateSignal::default()),
            &control,
            on_take,
        )
        .unwrap();
    b.accept(k, inbox).unwrap();
    let link = a.link_to(&b.local_addr().to_string(), k).unwrap();
    let writer = edge.create_remote_writer(link, &control).unwrap();
    (
        *writer.downcast::<Box<dyn ChannelWriter<Batch>>>().unwrap(),
        *receiver.downcast::<ChannelReceiver<Batch>>().unwrap(),
    )
}

fn recv(r: &ChannelReceiver<Batch>) -> StreamEvent<Batch> {
    let clock = SystemClock;
    let deadline = clock.monotonic_nanos() + 10_000_000_000;
    loop {
        match r.try_recv() {
            TryRecv::Event(e) => return e,
            TryRecv::Empty if clock.monotonic_nanos() < deadline => std::thread::yield_now(),
            other => panic!("no event: {other:?}"),
        }
    }
}

#[test]
fn events_arrive_in_order_across_processes_boundary() {
    let a = DataPlane::bind("127.0.0.1:0").unwrap();
    let b = DataPlane::bind("127.0.0.1:0").unwrap();
    let (mut w, r) = channel(&a, &b, key(1), 8);
    let sender = std::thread::spawn(move || {
        for i in 0..500u64 {
            w.send(StreamEvent::Data(Records::from(
                (i * 10..i * 10 + 10).collect::<Vec<_>>(),
            )))
            .unwrap();
        }
        w.send(StreamEvent::EndOfStream).unwrap();
    });
    let mut next = 0u64;
    loop {
        match recv(&r) {
            StreamEvent::Data(batch) => {
                for v in batch.values() {
                    assert_eq!(*v, next);
                    next += 1;
                }
            }
            StreamEvent::EndOfStream => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(next, 5000);
    sender.join().unwrap();
}

#[test]
fn a_slow_receiver_holds_the_sender_to_the_channel_capacity() {
    let a = DataPlane::bind("127.0.0.1:0").unwrap();
    let b = DataPlane::bind("127.0.0.1:0").unwrap();
    let capacity = 4;
    let (mut w, r) = channel(&a, &b, key(2), capacity);
    let sent = Arc::new(AtomicUsize::new(0));
    let sent_by_sender = Arc::clone(&sent);
    let sender = std::thread::spawn(move || {
        for i in 0..200u64 {
            w.send(StreamEvent::Data(Records::from(vec![i]))).unwrap();
            sent_by_sender.fetch_add(1, Ordering::SeqCst);
        }
        w.send(StreamEvent::EndOfStream).unwrap();
    });
    // Nothing is read: the sender stops once the receiver's queue is full.
    SystemClock.sleep(Duration::from_millis(300));
    assert_eq!(sent.load(Ordering::SeqCst), capacity);
    assert_eq!(r.len(), capacity);
    // Reading slowly lets it go on, never more than the capacity ahead.
    let mut taken = 0usize;
    loop {
        match recv(&r) {
            StreamEvent::Data(_) => taken += 1,
            StreamEvent::EndOfStream => break,
            other => panic!("unexpected {other:?}"),
        }
        // The sender counts a batch after `send` returns, so the receiver
        // may already hold the batch being counted: one ahead of the count.
        let counted = sent.load(Ordering::SeqCst);
        assert!(taken <= counted + 1, "took {taken}, sent {counted}");
        let ahead = counted.saturating_sub(taken);
        assert!(
            ahead <= capacity,
            "{ahead} batches in flight with capacity {capacity}"
        );
    }
    assert_eq!(taken, 200);
    sender.join().unwrap();
}

#[test]
fn a_channel_whose_writer_connected_first_gets_credits_when_the_receiver_registers() {
    let a = DataPlane::bind("127.0.0.1:0").unwrap();
    let b = DataPlane::bind("127.0.0.1:0").unwrap();
    let k = key(3);
    let edge = RecordsEdge::<u64>::new(PartitionStrategy::Forward);
    let control = JobControl::new();
    // The writer announces itself before the receiving task exists.
    let link = a.link_to(&b.local_addr().to_string(), k).unwrap();
    let writer = edge.create_remote_writer(link, &control).unwrap();
    let mut w = *writer.downcast::<Box<dyn ChannelWriter<Batch>>>().unwrap();
    let sender = std::thread::spawn(move || {
        w.send(StreamEvent::Data(Records::from(vec![7]))).unwrap();
        w.send(StreamEvent::EndOfStream).unwrap();
    });
    SystemClock.sleep(Duration::from_millis(100));
    let on_take = b.credit_return(k, 2);
    let (inbox, receiver) = edge
        .create_remote_receiver(
            ChannelSettings {
                capacity: 2,
                batch_size: 100,
            },
            Arc::new(GateSignal::default()),
            &control,
            on_take,
        )
        .unwrap();
    b.accept(k, inbox).unwrap();
    let r = *receiver.downcast::<ChannelReceiver<Batch>>().unwrap();
    assert_eq!(recv(&r), StreamEvent::Data(Records::from(vec![7])));
    assert_eq!(recv(&r), StreamEvent::EndOfStream);
    sender.join().unwrap();
}

#[test]
fn a_cancelled_writer_waiting_for_credits_gives_up() {
    let a = DataPlane::bind("127.0.0.1:0").unwrap();
    let b = DataPlane::bind("127.0.0.1:0").unwrap();
    let k = key(4);
    let edge = RecordsEdge::<u64>::new(PartitionStrategy::Forward);
    let control = JobControl::new();
    let link = a.link_to(&b.local_addr().to_string(), k).unwrap();
    let writer = edge.create_remote_writer(link, &control).unwrap();
    let mut w = *writer.downcast::<Box<dyn ChannelWriter<Batch>>>().unwrap();
    let canceller = Arc::clone(&control);
    std::thread::spawn(move || {
        SystemClock.sleep(Duration::from_millis(50));
        canceller.cancel();
    });
    let err = w.send(StreamEvent::EndOfStream).unwrap_err();
    assert!(matches!(err, sluice_runtime::Error::Cancelled), "{err}");
}
