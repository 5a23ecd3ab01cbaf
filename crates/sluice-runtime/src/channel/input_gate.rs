//! [`InputGate`]: all the input channels of one task, read fairly.
//!
//! Invariant: events of one channel come out in order; a channel that delivered its
//! end-of-stream is never read again; a *blocked* channel (used by barrier alignment) is not
//! read until unblocked, and its sender is then held back by the channel's capacity.

use std::sync::Arc;

use crossbeam_channel::{Select, TryRecvError};
use sluice_core::StreamEvent;

use super::ChannelReceiver;
use crate::control::JobControl;
use crate::error::{Error, Result};

/// One event read from a gate, with the index of the channel it came from.
#[derive(Debug)]
pub struct GateEvent<B> {
    /// Index of the input channel, `0..gate.len()`.
    pub channel: usize,
    /// The event.
    pub event: StreamEvent<B>,
}

/// The input channels of one task.
pub struct InputGate<B> {
    channels: Vec<ChannelReceiver<B>>,
    finished: Vec<bool>,
    blocked: Vec<bool>,
    open: usize,
    cursor: usize,
    control: Arc<JobControl>,
}

impl<B> std::fmt::Debug for InputGate<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputGate")
            .field("channels", &self.channels.len())
            .field("open", &self.open)
            .finish()
    }
}

impl<B: Send> InputGate<B> {
    /// A gate over `channels`.
    pub fn new(channels: Vec<ChannelReceiver<B>>, control: Arc<JobControl>) -> Self {
        let n = channels.len();
        InputGate {
            channels,
            finished: vec![false; n],
            blocked: vec![false; n],
            open: n,
            cursor: 0,
            control,
        }
    }

    /// Number of channels.
    pub fn len(&self) -> usize {
        self.channels.len()
    }

    /// Whether the gate has no channel.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// Whether every channel delivered its end-of-stream.
    pub fn is_finished(&self) -> bool {
        self.open == 0
    }

    /// Stops reading `channel` until [`InputGate::unblock_all`] (barrier alignment).
    pub fn block(&mut self, channel: usize) {
        self.blocked[channel] = true;
    }

    /// Reads every channel again.
    pub fn unblock_all(&mut self) {
        self.blocked.iter_mut().for_each(|b| *b = false);
    }

    fn readable(&self, i: usize) -> bool {
        !self.finished[i] && !self.blocked[i]
    }

    fn accept(&mut self, channel: usize, event: StreamEvent<B>) -> GateEvent<B> {
        if matches!(event, StreamEvent::EndOfStream) {
            self.finished[channel] = true;
            self.open -= 1;
        }
        GateEvent { channel, event }
    }

    /// The next event from any readable channel, round robin. When none has an event,
    /// calls `on_idle` once (tasks flush partial output batches there, so latency stays low
    /// when input is slow) and then blocks.
    ///
    /// Returns `Ok(None)` once every channel finished.
    ///
    /// # Errors
    /// [`Error::Cancelled`] when the job is cancelled while waiting; [`Error::ChannelClosed`]
    /// when an upstream task disappeared without an end-of-stream (it failed).
    pub fn next(
        &mut self,
        mut on_idle: impl FnMut() -> Result<()>,
    ) -> Result<Option<GateEvent<B>>> {
        if self.open == 0 {
            return Ok(None);
        }
        let n = self.channels.len();
        for step in 0..n {
            let i = (self.cursor + step) % n;
            if !self.readable(i) {
                continue;
            }
            match self.channels[i].try_recv() {
                Ok(event) => {
                    self.cursor = (i + 1) % n;
                    return Ok(Some(self.accept(i, event)));
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => return Err(Error::ChannelClosed),
            }
        }
        on_idle()?;
        self.next_blocking()
    }

    fn next_blocking(&mut self) -> Result<Option<GateEvent<B>>> {
        if self.control.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let mut select = Select::new();
        let mut indexes = Vec::with_capacity(self.channels.len());
        for i in 0..self.channels.len() {
            if self.readable(i) {
                select.recv(&self.channels[i]);
                indexes.push(i);
            }
        }
        if indexes.is_empty() {
            return Err(Error::Internal(
                "input gate waits with every open channel blocked".into(),
            ));
        }
        let cancel_index = select.recv(self.control.cancel_receiver());
        let op = select.select();
        let position = op.index();
        if position == cancel_index {
            let _ = op.recv(self.control.cancel_receiver());
            return Err(Error::Cancelled);
        }
        let channel = indexes[position];
        match op.recv(&self.channels[channel]) {
            Ok(event) => {
                self.cursor = (channel + 1) % self.channels.len();
                Ok(Some(self.accept(channel, event)))
            }
            Err(_) => Err(Error::ChannelClosed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{local_channel, ChannelWriter};

    #[test]
    fn reads_all_channels_in_order_until_finished() {
        let control = JobControl::new();
        let (mut w0, r0) = local_channel::<u32>(4, &control);
        let (mut w1, r1) = local_channel::<u32>(4, &control);
        w0.send(StreamEvent::Data(1)).unwrap();
        w0.send(StreamEvent::Data(2)).unwrap();
        w0.send(StreamEvent::EndOfStream).unwrap();
        w1.send(StreamEvent::Data(10)).unwrap();
        w1.send(StreamEvent::EndOfStream).unwrap();
        let mut gate = InputGate::new(vec![r0, r1], control);
        let mut per_channel: Vec<Vec<u32>> = vec![vec![], vec![]];
        while let Some(ev) = gate.next(|| Ok(())).unwrap() {
            if let StreamEvent::Data(v) = ev.event {
                per_channel[ev.channel].push(v);
            }
        }
        assert_eq!(per_channel, vec![vec![1, 2], vec![10]]);
        assert!(gate.is_finished());
    }

    #[test]
    fn blocked_channel_is_not_read() {
        let control = JobControl::new();
        let (mut w0, r0) = local_channel::<u32>(4, &control);
        let (mut w1, r1) = local_channel::<u32>(4, &control);
        w0.send(StreamEvent::Data(1)).unwrap();
        w1.send(StreamEvent::Data(2)).unwrap();
        let mut gate = InputGate::new(vec![r0, r1], control);
        gate.block(0);
        let ev = gate.next(|| Ok(())).unwrap().unwrap();
        assert_eq!(ev.channel, 1);
        gate.unblock_all();
        let ev = gate.next(|| Ok(())).unwrap().unwrap();
        assert_eq!(ev.channel, 0);
    }

    #[test]
    fn idle_callback_runs_before_blocking() {
        let control = JobControl::new();
        let (mut w0, r0) = local_channel::<u32>(4, &control);
        let mut gate = InputGate::new(vec![r0], control);
        let mut idle_calls = 0;
        let ev = gate
            .next(|| {
                idle_calls += 1;
                w0.send(StreamEvent::Data(7))
            })
            .unwrap()
            .unwrap();
        assert_eq!(ev.event, StreamEvent::Data(7));
        assert_eq!(idle_calls, 1);
    }

    #[test]
    fn failed_upstream_is_reported() {
        let control = JobControl::new();
        let (w0, r0) = local_channel::<u32>(4, &control);
        drop(w0);
        let mut gate = InputGate::new(vec![r0], control);
        assert!(matches!(gate.next(|| Ok(())), Err(Error::ChannelClosed)));
    }
}
