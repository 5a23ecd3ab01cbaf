//! [`InputGate`]: all the input channels of one task, read fairly.
//!
//! Invariant: events of one channel come out in order; a channel that delivered its
//! end-of-stream is never read again; a *blocked* channel (used by barrier alignment) is not
//! read until unblocked, and its sender is then held back by the channel's capacity.

use std::sync::Arc;

use sluice_core::StreamEvent;

use super::local::{next_poll, spin_until, GateSignal, TryRecv, POLL_MIN};
use super::{ChannelReceiver, GateInput};
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
    channels: Vec<Box<dyn GateInput<B>>>,
    finished: Vec<bool>,
    blocked: Vec<bool>,
    open: usize,
    cursor: usize,
    signal: Arc<GateSignal>,
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

impl<B: Send + 'static> InputGate<B> {
    /// A gate over `channels`, whose senders wake it through `signal`.
    pub fn new(
        channels: Vec<ChannelReceiver<B>>,
        signal: Arc<GateSignal>,
        control: Arc<JobControl>,
    ) -> Self {
        let inputs = channels
            .into_iter()
            .map(|c| Box::new(c) as Box<dyn GateInput<B>>)
            .collect();
        Self::from_inputs(inputs, signal, control)
    }

    /// A gate over converted channels (see [`super::MappedInput`]).
    pub fn from_inputs(
        channels: Vec<Box<dyn GateInput<B>>>,
        signal: Arc<GateSignal>,
        control: Arc<JobControl>,
    ) -> Self {
        let n = channels.len();
        InputGate {
            channels,
            finished: vec![false; n],
            blocked: vec![false; n],
            open: n,
            cursor: 0,
            signal,
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

    /// Calls `visit` with each data batch among the first `n` events queued on
    /// `channel`, without taking them (what an unaligned barrier just read there
    /// overtook).
    ///
    /// # Errors
    /// What `visit` returns.
    pub fn visit_queued(
        &self,
        channel: usize,
        n: usize,
        visit: &mut dyn FnMut(&B) -> Result<()>,
    ) -> Result<()> {
        match self.channels.get(channel) {
            Some(input) => input.visit_queued(n, visit),
            None => Err(Error::Internal(format!("no input channel {channel}"))),
        }
    }

    fn readable(&self, i: usize) -> bool {
        !self.finished[i] && !self.blocked[i]
    }

    /// One round-robin pass over the readable channels.
    fn poll(&mut self) -> Result<Option<GateEvent<B>>> {
        let n = self.channels.len();
        for step in 0..n {
            let i = (self.cursor + step) % n;
            if !self.readable(i) {
                continue;
            }
            match self.channels[i].try_recv() {
                TryRecv::Event(event) => {
                    self.cursor = (i + 1) % n;
                    if matches!(event, StreamEvent::EndOfStream) {
                        self.finished[i] = true;
                        self.open -= 1;
                    }
                    return Ok(Some(GateEvent { channel: i, event }));
                }
                TryRecv::Empty => {}
                TryRecv::Disconnected => {
                    return Err(match self.channels[i].lost_peer() {
                        Some(peer) => Error::PeerLost { peer },
                        None => Error::ChannelClosed,
                    })
                }
            }
        }
        Ok(None)
    }

    /// The next event from any readable channel, round robin. When none has an event,
    /// calls `on_idle` before each wait (tasks flush partial output batches there, so
    /// latency stays low when input is slow, and fire processing-time timers) and waits
    /// at most one polling sleep at a time.
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
        if self.control.is_cancelled() {
            // Cancel drops what is queued: a cancelled task does not work through its input.
            return Err(Error::Cancelled);
        }
        if let Some(event) = self.poll()? {
            return Ok(Some(event));
        }
        let mut poll = POLL_MIN;
        loop {
            on_idle()?;
            if self.control.is_cancelled() {
                return Err(Error::Cancelled);
            }
            if let Some(event) = self.poll()? {
                return Ok(Some(event));
            }
            if !self
                .channels
                .iter()
                .enumerate()
                .any(|(i, _)| self.readable(i))
            {
                return Err(Error::Internal(
                    "input gate waits with every open channel blocked".into(),
                ));
            }
            let spun = self.signal.spins()
                && spin_until(|| {
                    self.channels
                        .iter()
                        .enumerate()
                        .any(|(i, c)| self.readable(i) && c.has_queued())
                });
            if !spun {
                self.signal.wait(poll);
                poll = next_poll(poll);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{local_channel, ChannelWriter, LocalChannelWriter};
    use sluice_core::Records;

    type Writer = LocalChannelWriter<Records<u32>>;

    fn gate(n: usize) -> (Vec<Writer>, InputGate<Records<u32>>, Arc<JobControl>) {
        let control = JobControl::new();
        let signal = GateSignal::new();
        let mut writers = vec![];
        let mut readers = vec![];
        for _ in 0..n {
            let (w, r) = local_channel(4, 1024, Arc::clone(&signal), &control);
            writers.push(w);
            readers.push(r);
        }
        (
            writers,
            InputGate::new(readers, signal, Arc::clone(&control)),
            control,
        )
    }

    fn data(v: u32) -> StreamEvent<Records<u32>> {
        StreamEvent::Data(Records::from(vec![v]))
    }

    fn value(ev: &StreamEvent<Records<u32>>) -> Option<u32> {
        match ev {
            StreamEvent::Data(b) => b.values().first().copied(),
            _ => None,
        }
    }

    #[test]
    fn reads_all_channels_in_order_until_finished() {
        let (mut w, mut gate, _) = gate(2);
        w[0].send(data(1)).unwrap();
        w[0].send(data(2)).unwrap();
        w[0].send(StreamEvent::EndOfStream).unwrap();
        w[1].send(data(10)).unwrap();
        w[1].send(StreamEvent::EndOfStream).unwrap();
        let mut per_channel: Vec<Vec<u32>> = vec![vec![], vec![]];
        while let Some(ev) = gate.next(|| Ok(())).unwrap() {
            if let Some(v) = value(&ev.event) {
                per_channel[ev.channel].push(v);
            }
        }
        assert_eq!(per_channel, vec![vec![1, 2], vec![10]]);
        assert!(gate.is_finished());
    }

    #[test]
    fn blocked_channel_is_not_read() {
        let (mut w, mut gate, _) = gate(2);
        w[0].send(data(1)).unwrap();
        w[1].send(data(2)).unwrap();
        gate.block(0);
        let ev = gate.next(|| Ok(())).unwrap().unwrap();
        assert_eq!(ev.channel, 1);
        gate.unblock_all();
        let ev = gate.next(|| Ok(())).unwrap().unwrap();
        assert_eq!(ev.channel, 0);
    }

    #[test]
    fn idle_callback_runs_before_waiting() {
        let (mut w, mut gate, _) = gate(1);
        let mut idle_calls = 0;
        let ev = gate
            .next(|| {
                idle_calls += 1;
                w[0].send(data(7))
            })
            .unwrap()
            .unwrap();
        assert_eq!(value(&ev.event), Some(7));
        assert_eq!(idle_calls, 1);
    }

    #[test]
    fn a_waiting_gate_wakes_for_data_from_another_thread() {
        let (w, mut gate, _) = gate(1);
        let sender = std::thread::spawn(move || {
            let mut w = w;
            w[0].send(data(5)).unwrap();
            w
        });
        let ev = gate.next(|| Ok(())).unwrap().unwrap();
        assert_eq!(value(&ev.event), Some(5));
        drop(sender.join().unwrap());
    }

    #[test]
    fn failed_upstream_and_cancel_are_reported() {
        let (w, mut first, _) = gate(1);
        drop(w);
        assert!(matches!(first.next(|| Ok(())), Err(Error::ChannelClosed)));
        let (_w, mut second, control) = gate(1);
        control.cancel();
        assert!(matches!(second.next(|| Ok(())), Err(Error::Cancelled)));
    }

    /// Many senders, random capacities, full and partial batches mixed, spinning on or
    /// off: the gate must deliver every event of every sender, in order, and never hang
    /// (a lost wake-up would only delay by one polling sleep; a lost event fails the test).
    #[test]
    fn stress_many_senders_lose_and_reorder_nothing() {
        for round in 0..40u32 {
            let senders = 1 + (round % 4) as usize;
            let capacity = 1 + (round % 5) as usize;
            let spin = round % 2 == 0;
            let control = JobControl::new();
            let signal = GateSignal::with_spin(spin);
            let mut readers = vec![];
            let mut threads = vec![];
            for s in 0..senders {
                let (mut w, r) =
                    local_channel::<Records<u32>>(capacity, 3, Arc::clone(&signal), &control);
                readers.push(r);
                threads.push(std::thread::spawn(move || {
                    for i in 0..500u32 {
                        // Sizes 1..=4 around the full size 3: partial and full batches.
                        let len = 1 + ((i + s as u32) % 4) as usize;
                        w.send(StreamEvent::Data(Records::from(vec![i; len])))
                            .unwrap();
                    }
                    w.send(StreamEvent::EndOfStream).unwrap();
                }));
            }
            let mut gate = InputGate::new(readers, signal, control);
            let mut next = vec![0u32; senders];
            while let Some(ev) = gate.next(|| Ok(())).unwrap() {
                if let Some(v) = value(&ev.event) {
                    assert_eq!(
                        v, next[ev.channel],
                        "round {round}: order or loss on channel {}",
                        ev.channel
                    );
                    next[ev.channel] += 1;
                }
            }
            assert!(next.iter().all(|&n| n == 500), "round {round}: {next:?}");
            for t in threads {
                t.join().unwrap();
            }
        }
    }
}
