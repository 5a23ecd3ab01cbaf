//! [`JobControl`]: how a running job is stopped or cancelled from outside its tasks.
//!
//! *Stop* is graceful: sources stop reading and send end-of-stream, so every record already
//! read is processed and sinks flush. *Cancel* is immediate: every blocked send or receive
//! wakes up and tasks exit. Invariant: once cancelled, a job never becomes un-cancelled.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender};

/// Shared stop and cancel signals of one job run.
#[derive(Debug)]
pub struct JobControl {
    stop: AtomicBool,
    cancelled: AtomicBool,
    // Dropping the sender disconnects every clone of `cancel_rx`, which wakes every
    // `Select` that includes it: cancellation reaches tasks blocked on a channel.
    cancel_tx: Mutex<Option<Sender<()>>>,
    cancel_rx: Receiver<()>,
}

impl Default for JobControl {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::bounded(0);
        JobControl {
            stop: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
            cancel_tx: Mutex::new(Some(tx)),
            cancel_rx: rx,
        }
    }
}

impl JobControl {
    /// A fresh control, neither stopped nor cancelled.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Asks sources to stop reading and end their streams; the job then drains.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Whether a graceful stop was requested.
    pub fn is_stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Cancels the job: every task exits as soon as it can.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.stop();
        if let Ok(mut tx) = self.cancel_tx.lock() {
            tx.take();
        }
    }

    /// Whether the job was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// A receiver that becomes ready (disconnected) when the job is cancelled; add it to a
    /// `Select` to wake a blocked task.
    pub fn cancel_receiver(&self) -> &Receiver<()> {
        &self.cancel_rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_wakes_a_blocked_select() {
        let control = JobControl::new();
        let c = Arc::clone(&control);
        let waiter = std::thread::spawn(move || {
            let (_tx, rx) = crossbeam_channel::bounded::<u8>(1);
            crossbeam_channel::select! {
                recv(rx) -> _ => "data",
                recv(c.cancel_receiver()) -> _ => "cancelled",
            }
        });
        control.cancel();
        assert_eq!(waiter.join().unwrap(), "cancelled");
        assert!(control.is_cancelled());
        assert!(control.is_stop_requested());
    }
}
