//! The in-process channel: a bounded queue whose two ends rarely wake each other.
//!
//! Waking a parked thread costs a system call and, on virtual machines, an
//! inter-processor interrupt (about 40 µs measured on the 2-core benchmark VM): far more
//! than moving a batch, and paid by the thread that wakes the other, which in a
//! back-pressured pipeline is the busy one. So a waiting side mostly polls, with a sleep
//! that doubles from [`POLL_MIN`] to [`POLL_MAX`] and resets on progress, and the other
//! side wakes it only when that matters:
//!
//! * the sender wakes a waiting receiver for anything that is not a full data batch
//!   (control events, partial batches sent by a flush, the end of the stream), so latency
//!   stays low when input is slow, and when the queue reaches half its capacity, so a
//!   sleeping receiver cannot let a fast sender run into a full queue;
//! * the receiver wakes a waiting sender only when it has emptied the queue, i.e. when it
//!   is about to starve.
//!
//! Before sleeping, either side spins briefly ([`spin_until`]) when the job has a core per
//! task: when the other side is busy, the queue changes within the time of one batch.
//!
//! Invariant: at most `capacity` events are queued (back-pressure); events come out in the
//! order they went in; a waiting side looks at the queue (and at cancellation) at least
//! every [`POLL_MAX`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sluice_core::{BarrierAlignment, Batch, CheckpointBarrier, StreamEvent};

use super::ChannelWriter;
use crate::control::JobControl;
use crate::error::{Error, Result};

/// Wakes the task that reads a set of channels (its input gate).
#[derive(Debug, Default)]
pub struct GateSignal {
    notified: Mutex<bool>,
    cond: Condvar,
    spin: bool,
}

/// First sleep of a side that waits for the other.
pub const POLL_MIN: Duration = Duration::from_micros(50);
/// Longest sleep of a side that waits for the other before it looks again.
pub const POLL_MAX: Duration = Duration::from_millis(2);

/// The next, longer polling sleep.
pub fn next_poll(current: Duration) -> Duration {
    (current * 2).min(POLL_MAX)
}

impl GateSignal {
    /// A new signal; the gate spins briefly before waiting.
    pub fn new() -> Arc<Self> {
        Self::with_spin(true)
    }

    /// A new signal; with `spin` false the gate waits at once when its input is empty
    /// (right when tasks outnumber cores: spinning would take a core another task needs).
    pub fn with_spin(spin: bool) -> Arc<Self> {
        Arc::new(GateSignal {
            spin,
            ..Self::default()
        })
    }

    /// Whether the gate should spin before waiting.
    pub fn spins(&self) -> bool {
        self.spin
    }

    /// Wakes the receiver if it waits, or makes its next wait return at once.
    pub fn notify(&self) {
        let mut notified = self.notified.lock().unwrap_or_else(PoisonError::into_inner);
        if !*notified {
            *notified = true;
            self.cond.notify_one();
        }
    }

    /// Waits until notified or `timeout` passed; consumes the notification.
    pub fn wait(&self, timeout: Duration) {
        let mut notified = self.notified.lock().unwrap_or_else(PoisonError::into_inner);
        if !*notified {
            notified = self
                .cond
                .wait_timeout(notified, timeout)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *notified = false;
    }
}

/// Spins, then yields, for a short while until `ready()` holds; returns whether it did.
/// Meant for the moment before parking a thread: a few microseconds of polling are much
/// cheaper than a park and wake-up when the other side is about to act.
pub fn spin_until(ready: impl Fn() -> bool) -> bool {
    const SPIN_ROUNDS: u32 = 6;
    const YIELD_ROUNDS: u32 = 40;
    for round in 0..SPIN_ROUNDS + YIELD_ROUNDS {
        if ready() {
            return true;
        }
        if round < SPIN_ROUNDS {
            for _ in 0..(1u32 << round.min(8)) * 8 {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
    }
    ready()
}

struct State<B> {
    queue: VecDeque<StreamEvent<B>>,
    sender_waiting: bool,
    sender_alive: bool,
    receiver_alive: bool,
}

struct Shared<B> {
    state: Mutex<State<B>>,
    /// Mirror of `state.queue.len()`, written under the lock, read without it to spin.
    queued: AtomicUsize,
    not_full: Condvar,
    capacity: usize,
    batch_size: usize,
    gate: Arc<GateSignal>,
    spin: bool,
    /// Told of every event the receiver takes (a remote channel returns credits so).
    on_take: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Set when a remote writer's connection was lost: its address.
    lost_peer: Mutex<Option<String>>,
}

impl<B> Shared<B> {
    fn lock(&self) -> MutexGuard<'_, State<B>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<B: Batch> Shared<B> {
    /// Appends `event` under the held lock, then wakes the receiver when it is urgent (a
    /// control event or a partial batch) or the queue is half full.
    fn push(&self, mut state: MutexGuard<'_, State<B>>, event: StreamEvent<B>) {
        let urgent = match &event {
            StreamEvent::Data(batch) => batch.len() < self.batch_size,
            _ => true,
        };
        state.queue.push_back(event);
        self.queued.store(state.queue.len(), Ordering::Release);
        let wake = urgent || state.queue.len() * 2 >= self.capacity;
        drop(state);
        if wake {
            self.gate.notify();
        }
    }
}

/// Creates an in-process channel of at most `capacity` events, whose receiver is read by
/// the gate woken through `gate` (whose spin setting the sender shares). `batch_size` tells full data batches (which may wait for
/// company before waking the receiver) from partial ones (which wake it at once).
pub fn local_channel<B: Batch>(
    capacity: usize,
    batch_size: usize,
    gate: Arc<GateSignal>,
    control: &Arc<JobControl>,
) -> (LocalChannelWriter<B>, LocalChannelReceiver<B>) {
    local_channel_observed(capacity, batch_size, gate, control, None)
}

/// [`local_channel`] whose receiver calls `on_take` after taking each event, outside the
/// queue's lock. A network reader feeds such a channel and returns one credit to the
/// remote sender per event taken.
pub fn local_channel_observed<B: Batch>(
    capacity: usize,
    batch_size: usize,
    gate: Arc<GateSignal>,
    control: &Arc<JobControl>,
    on_take: Option<Arc<dyn Fn() + Send + Sync>>,
) -> (LocalChannelWriter<B>, LocalChannelReceiver<B>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::with_capacity(capacity.max(1)),
            sender_waiting: false,
            sender_alive: true,
            receiver_alive: true,
        }),
        queued: AtomicUsize::new(0),
        not_full: Condvar::new(),
        capacity: capacity.max(1),
        batch_size,
        spin: gate.spins(),
        gate,
        on_take,
        lost_peer: Mutex::new(None),
    });
    (
        LocalChannelWriter {
            shared: Arc::clone(&shared),
            control: Arc::clone(control),
        },
        LocalChannelReceiver { shared },
    )
}

/// The sending end of an in-process channel.
pub struct LocalChannelWriter<B> {
    shared: Arc<Shared<B>>,
    control: Arc<JobControl>,
}

impl<B> std::fmt::Debug for LocalChannelWriter<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalChannelWriter")
            .field("capacity", &self.shared.capacity)
            .finish()
    }
}

impl<B: Batch> ChannelWriter<B> for LocalChannelWriter<B> {
    fn send(&mut self, event: StreamEvent<B>) -> Result<()> {
        let capacity = self.shared.capacity;
        if self.shared.spin && self.shared.queued.load(Ordering::Acquire) >= capacity {
            spin_until(|| self.shared.queued.load(Ordering::Acquire) < capacity);
        }
        let mut state = self.shared.lock();
        let mut poll = POLL_MIN;
        loop {
            if !state.receiver_alive {
                return Err(Error::ChannelClosed);
            }
            if state.queue.len() < self.shared.capacity {
                break;
            }
            if self.control.is_cancelled() {
                return Err(Error::Cancelled);
            }
            state.sender_waiting = true;
            state = self
                .shared
                .not_full
                .wait_timeout(state, poll)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            poll = next_poll(poll);
        }
        state.sender_waiting = false;
        self.shared.push(state, event);
        Ok(())
    }

    fn send_overtaking(&mut self, barrier: CheckpointBarrier, pending: Option<B>) -> Result<()> {
        let mut state = self.shared.lock();
        if !state.receiver_alive {
            return Err(Error::ChannelClosed);
        }
        if let Some(batch) = pending {
            state.queue.push_back(StreamEvent::Data(batch));
        }
        let overtaken = u32::try_from(state.queue.len()).unwrap_or(u32::MAX);
        state
            .queue
            .push_front(StreamEvent::Barrier(CheckpointBarrier {
                alignment: BarrierAlignment::Unaligned { overtaken },
                ..barrier
            }));
        self.shared
            .queued
            .store(state.queue.len(), Ordering::Release);
        drop(state);
        self.shared.gate.notify();
        Ok(())
    }
}

impl<B> LocalChannelWriter<B> {
    /// Records that the remote writer feeding this channel is gone (its connection to
    /// `peer` was lost); the receiving task then fails with [`Error::PeerLost`] once the
    /// queue is drained and this writer dropped.
    pub fn mark_peer_lost(&self, peer: &str) {
        *self
            .shared
            .lost_peer
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(peer.to_string());
    }
}

impl<B: Batch> LocalChannelWriter<B> {
    /// Appends `event` even when the queue is full. For a network reader feeding a remote
    /// channel: the sender's credits already keep the queue within its capacity (except
    /// for what an unaligned barrier let through), and a reader that blocked on one
    /// channel would stall every channel sharing its connection.
    ///
    /// # Errors
    /// [`Error::ChannelClosed`] if the receiving task is gone.
    pub fn push_without_waiting(&mut self, event: StreamEvent<B>) -> Result<()> {
        let state = self.shared.lock();
        if !state.receiver_alive {
            return Err(Error::ChannelClosed);
        }
        self.shared.push(state, event);
        Ok(())
    }
}

impl<B> Drop for LocalChannelWriter<B> {
    fn drop(&mut self) {
        self.shared.lock().sender_alive = false;
        self.shared.gate.notify();
    }
}

/// What a non-blocking receive found.
#[derive(Debug, PartialEq, Eq)]
pub enum TryRecv<T> {
    /// An event.
    Event(T),
    /// Nothing now.
    Empty,
    /// Nothing, ever: the sender is gone.
    Disconnected,
}

/// The receiving end of an in-process channel.
pub struct LocalChannelReceiver<B> {
    shared: Arc<Shared<B>>,
}

impl<B> std::fmt::Debug for LocalChannelReceiver<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalChannelReceiver").finish()
    }
}

impl<B> LocalChannelReceiver<B> {
    /// Takes the next event without waiting.
    pub fn try_recv(&self) -> TryRecv<StreamEvent<B>> {
        let mut state = self.shared.lock();
        match state.queue.pop_front() {
            Some(event) => {
                self.shared
                    .queued
                    .store(state.queue.len(), Ordering::Release);
                if state.sender_waiting && state.queue.is_empty() {
                    state.sender_waiting = false;
                    self.shared.not_full.notify_one();
                }
                drop(state);
                if let Some(on_take) = &self.shared.on_take {
                    on_take();
                }
                TryRecv::Event(event)
            }
            None if state.sender_alive => TryRecv::Empty,
            None => TryRecv::Disconnected,
        }
    }

    /// Calls `visit` with each of the first `n` queued events, without taking them.
    ///
    /// # Errors
    /// What `visit` returns.
    pub fn visit_queued(
        &self,
        n: usize,
        visit: &mut dyn FnMut(&StreamEvent<B>) -> Result<()>,
    ) -> Result<()> {
        let state = self.shared.lock();
        state.queue.iter().take(n).try_for_each(visit)
    }

    /// The address of a remote writer whose connection was lost, if that is why the
    /// channel disconnected.
    pub fn lost_peer(&self) -> Option<String> {
        self.shared
            .lost_peer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Number of queued events.
    pub fn len(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Whether an event may be queued, read without locking (for spinning).
    pub fn has_queued(&self) -> bool {
        self.shared.queued.load(Ordering::Acquire) > 0
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<B> Drop for LocalChannelReceiver<B> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_alive = false;
        state.queue.clear();
        self.shared.queued.store(0, Ordering::Release);
        drop(state);
        self.shared.not_full.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::Records;

    type TestChannel = (
        LocalChannelWriter<Records<u32>>,
        LocalChannelReceiver<Records<u32>>,
        Arc<GateSignal>,
        Arc<JobControl>,
    );

    fn channel(capacity: usize) -> TestChannel {
        let control = JobControl::new();
        let gate = GateSignal::new();
        let (w, r) = local_channel(capacity, 2, Arc::clone(&gate), &control);
        (w, r, gate, control)
    }

    fn data(v: u32) -> StreamEvent<Records<u32>> {
        StreamEvent::Data(Records::from(vec![v, v]))
    }

    #[test]
    fn keeps_order_and_reports_disconnection_after_draining() {
        let (mut w, r, _, _) = channel(4);
        w.send(data(1)).unwrap();
        w.send(StreamEvent::EndOfStream).unwrap();
        drop(w);
        assert_eq!(r.try_recv(), TryRecv::Event(data(1)));
        assert_eq!(r.try_recv(), TryRecv::Event(StreamEvent::EndOfStream));
        assert_eq!(r.try_recv(), TryRecv::Disconnected);
    }

    #[test]
    fn a_full_channel_blocks_the_sender_until_a_slot_frees() {
        let (mut w, r, _, _) = channel(4);
        for i in 0..4 {
            w.send(data(i)).unwrap();
        }
        let sender = std::thread::spawn(move || {
            w.send(data(99)).unwrap();
            w
        });
        // The sender cannot proceed while the queue is full.
        crate::channel::local::tests::wait_for(|| r.shared.lock().sender_waiting);
        assert_eq!(r.len(), 4);
        assert!(matches!(r.try_recv(), TryRecv::Event(_)));
        let _w = sender.join().unwrap();
        assert_eq!(r.len(), 4);
        // The late event is last.
        let mut last = None;
        while let TryRecv::Event(e) = r.try_recv() {
            last = Some(e);
        }
        assert_eq!(last, Some(data(99)));
    }

    #[test]
    fn cancel_and_receiver_drop_unblock_a_sender() {
        let (mut w, r, _, control) = channel(1);
        w.send(data(1)).unwrap();
        let sender = std::thread::spawn(move || w.send(data(2)));
        wait_for(|| r.shared.lock().sender_waiting);
        control.cancel();
        assert!(matches!(sender.join().unwrap(), Err(Error::Cancelled)));

        let (mut w, r, _, _) = channel(1);
        w.send(data(1)).unwrap();
        let sender = std::thread::spawn(move || w.send(data(2)));
        wait_for(|| r.shared.lock().sender_waiting);
        drop(r);
        assert!(matches!(sender.join().unwrap(), Err(Error::ChannelClosed)));
    }

    #[test]
    fn partial_batches_and_control_events_notify_at_once_full_ones_at_half() {
        let notified = |gate: &GateSignal| *gate.notified.lock().unwrap();
        let (mut w, r, gate, _) = channel(8);
        w.send(data(1)).unwrap();
        assert!(!notified(&gate), "one full batch waits for company");
        w.send(StreamEvent::Data(Records::from(vec![1]))).unwrap();
        assert!(notified(&gate), "a partial batch wakes the reader");
        gate.wait(POLL_MIN);
        w.send(data(2)).unwrap();
        assert!(!notified(&gate), "three of eight: not yet");
        w.send(data(3)).unwrap();
        assert!(notified(&gate), "half capacity wakes the reader");
        gate.wait(POLL_MIN);
        while let TryRecv::Event(_) = r.try_recv() {}
        w.send(StreamEvent::Watermark(sluice_core::Watermark::MIN))
            .unwrap();
        assert!(notified(&gate), "a control event wakes the reader");
        gate.wait(POLL_MIN);
        w.send(StreamEvent::EndOfStream).unwrap();
        assert!(notified(&gate), "the end of the stream wakes the reader");
    }

    #[test]
    fn the_receiver_wakes_a_waiting_sender_only_when_it_emptied_the_queue() {
        let (mut w, r, _, _) = channel(2);
        w.send(data(1)).unwrap();
        w.send(data(2)).unwrap();
        r.shared.lock().sender_waiting = true;
        assert!(matches!(r.try_recv(), TryRecv::Event(_)));
        assert!(
            r.shared.lock().sender_waiting,
            "one left: the sender polls by itself"
        );
        assert!(matches!(r.try_recv(), TryRecv::Event(_)));
        assert!(
            !r.shared.lock().sender_waiting,
            "empty: the sender is woken"
        );
    }

    #[test]
    fn an_unaligned_barrier_overtakes_the_queue_and_counts_what_it_passed() {
        let (mut w, r, _, _) = channel(2);
        w.send(data(1)).unwrap();
        w.send(data(2)).unwrap();
        let barrier = CheckpointBarrier {
            id: sluice_core::CheckpointId(7),
            timestamp_ms: 0,
            alignment: BarrierAlignment::Unaligned { overtaken: 0 },
        };
        // Full, yet the barrier and the held-back batch go in without waiting.
        w.send_overtaking(barrier, Some(Records::from(vec![3])))
            .unwrap();
        assert_eq!(
            r.try_recv(),
            TryRecv::Event(StreamEvent::Barrier(CheckpointBarrier {
                alignment: BarrierAlignment::Unaligned { overtaken: 3 },
                ..barrier
            }))
        );
        assert_eq!(r.try_recv(), TryRecv::Event(data(1)));
        assert_eq!(r.try_recv(), TryRecv::Event(data(2)));
        assert_eq!(
            r.try_recv(),
            TryRecv::Event(StreamEvent::Data(Records::from(vec![3])))
        );
        assert_eq!(r.try_recv(), TryRecv::Empty);
    }

    pub(super) fn wait_for(condition: impl Fn() -> bool) {
        let clock = sluice_core::SystemClock;
        use sluice_core::Clock;
        let deadline = clock.monotonic_nanos() + 10_000_000_000;
        while !condition() {
            assert!(clock.monotonic_nanos() < deadline, "condition never held");
            std::thread::yield_now();
        }
    }
}
