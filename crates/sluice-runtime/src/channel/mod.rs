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
//! instead of growing a queue.

mod input_gate;
mod local;

pub use input_gate::{GateEvent, InputGate};
pub use local::{
    local_channel, next_poll, spin_until, GateSignal, LocalChannelReceiver, LocalChannelWriter,
    TryRecv, POLL_MAX, POLL_MIN,
};

use sluice_core::StreamEvent;

use crate::error::Result;

/// The sending end of one channel.
pub trait ChannelWriter<B>: Send {
    /// Sends an event, blocking while the channel is full (this is back-pressure).
    ///
    /// # Errors
    /// [`crate::Error::Cancelled`] if the job was cancelled while waiting, and
    /// [`crate::Error::ChannelClosed`] if the receiving task is gone.
    fn send(&mut self, event: StreamEvent<B>) -> Result<()>;
}

/// The receiving end of one channel, read by an [`InputGate`]. Remote channels (issue #7)
/// feed the same local queue from a network reader.
pub type ChannelReceiver<B> = LocalChannelReceiver<B>;
