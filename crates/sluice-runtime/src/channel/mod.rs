//! Channels between tasks: bounded queues of [`StreamEvent`]s, one per pair of
//! (upstream subtask, downstream subtask).
//!
//! The transport is an abstraction on the sending side: a task writes through a
//! [`ChannelWriter`], which is an in-process queue today ([`LocalChannelWriter`]) and will
//! be a TCP stream with credits between workers. The receiving side is always a local
//! bounded queue read by an [`InputGate`]; a network reader feeds it for remote channels,
//! exactly as Flink's local and remote input channels do.
//!
//! Invariant: a channel delivers events in the order they were written and never holds
//! more than its capacity in batches, so a slow receiver blocks its senders (back-pressure)
//! instead of growing a queue. The one exception is an unaligned checkpoint barrier
//! ([`ChannelWriter::send_overtaking`]): it goes to the head of the queue, counting the
//! events it overtook, without waiting for room.

mod input_gate;
mod local;
pub mod remote;

pub use input_gate::{GateEvent, InputGate};

pub use local::{
    local_channel, local_channel_observed, next_poll, spin_until, GateSignal, LocalChannelReceiver,
    LocalChannelWriter, TryRecv, POLL_MAX, POLL_MIN,
};

use sluice_core::{CheckpointBarrier, StreamEvent};

use crate::error::Result;

/// The sending end of one channel.
pub trait ChannelWriter<B>: Send {
    /// Sends an event, blocking while the channel is full (this is back-pressure).
    ///
    /// # Errors
    /// [`crate::Error::Cancelled`] if the job was cancelled while waiting, and
    /// [`crate::Error::ChannelClosed`] if the receiving task is gone.
    fn send(&mut self, event: StreamEvent<B>) -> Result<()>;

    /// Sends an unaligned checkpoint barrier ahead of the data (Flink's priority events):
    /// appends `pending` (a partial batch the sender held, which belongs before the
    /// barrier), then puts the barrier at the head of the queue with
    /// [`BarrierAlignment::Unaligned::overtaken`](sluice_core::BarrierAlignment) set to
    /// the number of events it overtook. Never waits for room: the queue may exceed its
    /// capacity by that batch and the barrier, so a checkpoint never waits behind
    /// back-pressure.
    ///
    /// # Errors
    /// [`crate::Error::ChannelClosed`] if the receiving task is gone.
    fn send_overtaking(&mut self, barrier: CheckpointBarrier, pending: Option<B>) -> Result<()>;
}

/// The receiving end of one channel, read by an [`InputGate`]. Remote channels (issue #7)
/// feed the same local queue from a network reader.
pub type ChannelReceiver<B> = LocalChannelReceiver<B>;

/// One input of an [`InputGate`]: a channel, or a channel whose batches are converted (the
/// two inputs of a two-input operator are read as one gate of [`sluice_core::TwoInputBatch`]).
pub trait GateInput<B>: Send {
    /// Takes the next event without waiting.
    fn try_recv(&self) -> TryRecv<StreamEvent<B>>;
    /// Whether an event may be queued, read without locking (for spinning).
    fn has_queued(&self) -> bool;
    /// Calls `visit` with each data batch among the first `n` queued events, without
    /// taking them (the in-flight data an unaligned barrier overtook).
    ///
    /// # Errors
    /// What `visit` returns.
    fn visit_queued(&self, n: usize, visit: &mut dyn FnMut(&B) -> Result<()>) -> Result<()>;
    /// When the channel's writer is in another process whose connection was lost: its
    /// address (the gate then reports [`crate::Error::PeerLost`], a root cause).
    fn lost_peer(&self) -> Option<String> {
        None
    }
}

impl<B: Send> GateInput<B> for LocalChannelReceiver<B> {
    fn try_recv(&self) -> TryRecv<StreamEvent<B>> {
        LocalChannelReceiver::try_recv(self)
    }
    fn has_queued(&self) -> bool {
        LocalChannelReceiver::has_queued(self)
    }
    fn lost_peer(&self) -> Option<String> {
        LocalChannelReceiver::lost_peer(self)
    }
    fn visit_queued(&self, n: usize, visit: &mut dyn FnMut(&B) -> Result<()>) -> Result<()> {
        LocalChannelReceiver::visit_queued(self, n, &mut |event| match event {
            StreamEvent::Data(batch) => visit(batch),
            _ => Ok(()),
        })
    }
}

/// A channel of `A` batches read as `B` batches, converted by a function pointer.
pub struct MappedInput<A, B> {
    receiver: ChannelReceiver<A>,
    convert: fn(A) -> B,
}

impl<A, B> MappedInput<A, B> {
    /// Reads `receiver`, converting each batch with `convert`.
    pub fn new(receiver: ChannelReceiver<A>, convert: fn(A) -> B) -> Self {
        MappedInput { receiver, convert }
    }
}

impl<A: Clone + Send, B: Send> GateInput<B> for MappedInput<A, B> {
    fn try_recv(&self) -> TryRecv<StreamEvent<B>> {
        match self.receiver.try_recv() {
            TryRecv::Event(StreamEvent::Data(batch)) => {
                TryRecv::Event(StreamEvent::Data((self.convert)(batch)))
            }
            TryRecv::Event(control) => match control.map_control() {
                Some(event) => TryRecv::Event(event),
                None => TryRecv::Empty,
            },
            TryRecv::Empty => TryRecv::Empty,
            TryRecv::Disconnected => TryRecv::Disconnected,
        }
    }
    fn has_queued(&self) -> bool {
        self.receiver.has_queued()
    }
    fn lost_peer(&self) -> Option<String> {
        self.receiver.lost_peer()
    }
    fn visit_queued(&self, n: usize, visit: &mut dyn FnMut(&B) -> Result<()>) -> Result<()> {
        self.receiver.visit_queued(n, &mut |event| match event {
            StreamEvent::Data(batch) => visit(&(self.convert)(batch.clone())),
            _ => Ok(()),
        })
    }
}
