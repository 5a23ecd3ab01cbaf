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

pub use input_gate::{GateEvent, InputGate};

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use sluice_core::StreamEvent;

use crate::control::JobControl;
use crate::error::{Error, Result};

/// The sending end of one channel.
pub trait ChannelWriter<B>: Send {
    /// Sends an event, blocking while the channel is full (this is back-pressure).
    ///
    /// # Errors
    /// [`Error::Cancelled`] if the job was cancelled while waiting, and
    /// [`Error::ChannelClosed`] if the receiving task is gone.
    fn send(&mut self, event: StreamEvent<B>) -> Result<()>;
}

/// The receiving end of one channel, read by an [`InputGate`].
pub type ChannelReceiver<B> = Receiver<StreamEvent<B>>;

/// A channel inside one process: a bounded crossbeam queue.
pub struct LocalChannelWriter<B> {
    tx: Sender<StreamEvent<B>>,
    control: Arc<JobControl>,
}

impl<B> std::fmt::Debug for LocalChannelWriter<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalChannelWriter")
            .field("queued", &self.tx.len())
            .finish()
    }
}

/// Creates an in-process channel holding at most `capacity` events.
pub fn local_channel<B: Send>(
    capacity: usize,
    control: &Arc<JobControl>,
) -> (LocalChannelWriter<B>, ChannelReceiver<B>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    (
        LocalChannelWriter {
            tx,
            control: Arc::clone(control),
        },
        rx,
    )
}

impl<B: Send> ChannelWriter<B> for LocalChannelWriter<B> {
    fn send(&mut self, event: StreamEvent<B>) -> Result<()> {
        match self.tx.try_send(event) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(_)) => Err(Error::ChannelClosed),
            Err(TrySendError::Full(event)) => {
                // Full: wait for room or for cancellation, whichever comes first.
                crossbeam_channel::select! {
                    send(self.tx, event) -> sent => sent.map_err(|_| Error::ChannelClosed),
                    recv(self.control.cancel_receiver()) -> _ => Err(Error::Cancelled),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_channel_blocks_until_cancelled() {
        let control = JobControl::new();
        let (mut w, _rx) = local_channel::<Vec<u8>>(1, &control);
        w.send(StreamEvent::Data(vec![1])).unwrap();
        let c = Arc::clone(&control);
        let canceller = std::thread::spawn(move || c.cancel());
        let r = w.send(StreamEvent::Data(vec![2]));
        canceller.join().unwrap();
        assert!(matches!(r, Err(Error::Cancelled)));
    }

    #[test]
    fn send_to_dropped_receiver_reports_closed() {
        let control = JobControl::new();
        let (mut w, rx) = local_channel::<Vec<u8>>(1, &control);
        drop(rx);
        assert!(matches!(
            w.send(StreamEvent::EndOfStream),
            Err(Error::ChannelClosed)
        ));
    }
}
