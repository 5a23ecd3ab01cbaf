//! Channels whose writer and receiver run in different processes.
//!
//! The runtime does no network I/O itself: a transport (`sluice-cluster`'s TCP data plane)
//! implements [`RemoteLink`] for the sending side and feeds a [`RemoteInbox`] on the
//! receiving side. This module turns events into frames and back, and keeps the credit
//! discipline that makes back-pressure cross processes:
//!
//! * the receiving side is the same bounded local queue a local channel has, read by the
//!   same [`super::InputGate`];
//! * the receiver grants one credit per free place in that queue, and returns one credit
//!   for every event its task takes (the `on_take` hook of
//!   [`super::local::local_channel_observed`]);
//! * the writer takes one credit per event and waits while it has none, so the queue
//!   never overflows and the network reader that fills it never blocks (a slow task
//!   never stalls the other channels multiplexed on its connection).
//!
//! Invariant: events arrive in the order they were written. The one exception is an
//! unaligned checkpoint barrier, which overtakes what the receiver queued, exactly as on a
//! local channel; it takes a credit without waiting (the credit count may go negative,
//! and the queue may exceed its capacity by that barrier and one partial batch, as
//! [`ChannelWriter::send_overtaking`] allows).

use std::sync::Arc;

use sluice_core::{
    BarrierAlignment, Batch, CheckpointBarrier, CheckpointId, EventTime, StreamEvent, Watermark,
    WatermarkStatus,
};

use super::local::{local_channel_observed, GateSignal, LocalChannelWriter};
use super::ChannelWriter;
use crate::checkpoint::ChannelStateCodec;
use crate::control::JobControl;
use crate::error::{Error, Result};
use crate::graph::{ChannelSettings, ErasedReceiver, ErasedWriter};

/// The transport under the writer of a remote channel.
pub trait RemoteLink: Send + Sync {
    /// Takes one credit for an event, waiting while there is none unless `wait` is false
    /// (an unaligned barrier, which may take the count below zero).
    ///
    /// # Errors
    /// [`Error::Cancelled`] when `control` is cancelled while waiting, and
    /// [`Error::ChannelClosed`] when the connection to the receiver is lost.
    fn acquire(&self, control: &JobControl, wait: bool) -> Result<()>;

    /// Sends one encoded event; `priority` marks an unaligned barrier that the receiver
    /// puts ahead of what it queued.
    ///
    /// # Errors
    /// [`Error::ChannelClosed`] when the connection to the receiver is lost.
    fn send(&self, frame: &[u8], priority: bool) -> Result<()>;
}

/// The receiving side of a remote channel: decodes frames into the local queue its task
/// reads. Dropping it closes the channel (the task sees its input disconnected, unless an
/// end of stream came first).
pub trait RemoteInbox: Send {
    /// Delivers one frame, as [`RemoteLink::send`] sent it.
    ///
    /// # Errors
    /// [`Error::Internal`] on a frame that does not decode (a transport bug or a version
    /// mismatch between workers), and [`Error::ChannelClosed`] when the task is gone.
    fn deliver(&mut self, frame: &[u8], priority: bool) -> Result<()>;

    /// The connection to the writer, at `peer`, was lost: the task reading the channel
    /// fails with [`Error::PeerLost`] (unless the channel had ended).
    fn connection_lost(&mut self, peer: &str);
}

const DATA: u8 = 0;
const WATERMARK: u8 = 1;
const STATUS: u8 = 2;
const BARRIER: u8 = 3;
const END: u8 = 4;

/// Appends the frame of `event` to `out`: a tag byte, then the batch as `codec` encodes
/// it, or the control event's fields in little-endian order.
///
/// # Errors
/// What `codec` returns for a batch it cannot encode.
pub fn encode_event<B>(
    event: &StreamEvent<B>,
    codec: &ChannelStateCodec<B>,
    out: &mut Vec<u8>,
) -> Result<()> {
    match event {
        StreamEvent::Data(batch) => {
            out.push(DATA);
            out.extend_from_slice(&(codec.encode)(batch)?);
        }
        StreamEvent::Watermark(w) => {
            out.push(WATERMARK);
            out.extend_from_slice(&w.0 .0.to_le_bytes());
        }
        StreamEvent::WatermarkStatus(s) => {
            out.push(STATUS);
            out.push(u8::from(*s == WatermarkStatus::Idle));
        }
        StreamEvent::Barrier(b) => {
            out.push(BARRIER);
            out.extend_from_slice(&b.id.0.to_le_bytes());
            out.extend_from_slice(&b.timestamp_ms.to_le_bytes());
            out.push(u8::from(b.is_unaligned()));
        }
        StreamEvent::EndOfStream => out.push(END),
    }
    Ok(())
}

fn corrupt(what: &str) -> Error {
    Error::Internal(format!(
        "a remote channel delivered a malformed {what} frame (workers of different Sluice versions?)"
    ))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
}

/// Decodes what [`encode_event`] wrote.
///
/// # Errors
/// [`Error::Internal`] on a malformed frame; what `codec` returns for a batch.
pub fn decode_event<B>(frame: &[u8], codec: &ChannelStateCodec<B>) -> Result<StreamEvent<B>> {
    let (&tag, rest) = frame.split_first().ok_or_else(|| corrupt("empty"))?;
    Ok(match tag {
        DATA => StreamEvent::Data((codec.decode)(rest)?),
        WATERMARK => {
            let t = read_u64(rest, 0).ok_or_else(|| corrupt("watermark"))?;
            StreamEvent::Watermark(Watermark(EventTime(t as i64)))
        }
        STATUS => match rest.first() {
            Some(0) => StreamEvent::WatermarkStatus(WatermarkStatus::Active),
            Some(1) => StreamEvent::WatermarkStatus(WatermarkStatus::Idle),
            _ => return Err(corrupt("watermark status")),
        },
        BARRIER => {
            let (Some(id), Some(ts), Some(&unaligned)) =
                (read_u64(rest, 0), read_u64(rest, 8), rest.get(16))
            else {
                return Err(corrupt("barrier"));
            };
            StreamEvent::Barrier(CheckpointBarrier {
                id: CheckpointId(id),
                timestamp_ms: ts as i64,
                alignment: if unaligned == 1 {
                    BarrierAlignment::Unaligned { overtaken: 0 }
                } else {
                    BarrierAlignment::Aligned
                },
            })
        }
        END => StreamEvent::EndOfStream,
        _ => return Err(corrupt("unknown")),
    })
}

/// The writer of a remote channel: encodes each event on the sending task's thread and
/// hands the frame to its [`RemoteLink`] once it holds a credit.
pub struct RemoteChannelWriter<B> {
    link: Arc<dyn RemoteLink>,
    codec: ChannelStateCodec<B>,
    control: Arc<JobControl>,
    frame: Vec<u8>,
}

impl<B> RemoteChannelWriter<B> {
    /// A writer sending through `link`, encoding batches with `codec`.
    pub fn new(
        link: Arc<dyn RemoteLink>,
        codec: ChannelStateCodec<B>,
        control: Arc<JobControl>,
    ) -> Self {
        RemoteChannelWriter {
            link,
            codec,
            control,
            frame: Vec::new(),
        }
    }

    fn ship(&mut self, event: &StreamEvent<B>, wait: bool, priority: bool) -> Result<()> {
        self.link.acquire(&self.control, wait)?;
        self.frame.clear();
        encode_event(event, &self.codec, &mut self.frame)?;
        self.link.send(&self.frame, priority)
    }
}

impl<B: Send> ChannelWriter<B> for RemoteChannelWriter<B> {
    fn send(&mut self, event: StreamEvent<B>) -> Result<()> {
        self.ship(&event, true, false)
    }

    fn send_overtaking(&mut self, barrier: CheckpointBarrier, pending: Option<B>) -> Result<()> {
        if let Some(batch) = pending {
            self.ship(&StreamEvent::Data(batch), false, false)?;
        }
        self.ship(&StreamEvent::Barrier(barrier), false, true)
    }
}

struct TypedInbox<B> {
    writer: LocalChannelWriter<B>,
    codec: ChannelStateCodec<B>,
}

impl<B: Batch> RemoteInbox for TypedInbox<B> {
    fn deliver(&mut self, frame: &[u8], priority: bool) -> Result<()> {
        match decode_event(frame, &self.codec)? {
            StreamEvent::Barrier(barrier) if priority => self.writer.send_overtaking(barrier, None),
            event => self.writer.push_without_waiting(event),
        }
    }

    fn connection_lost(&mut self, peer: &str) {
        self.writer.mark_peer_lost(peer);
    }
}

/// A type-erased [`RemoteChannelWriter`] for an edge factory of batch type `B`.
pub fn remote_writer<B: Batch>(
    link: Arc<dyn RemoteLink>,
    codec: ChannelStateCodec<B>,
    control: &Arc<JobControl>,
) -> ErasedWriter {
    let writer: Box<dyn ChannelWriter<B>> =
        Box::new(RemoteChannelWriter::new(link, codec, Arc::clone(control)));
    Box::new(writer)
}

/// The receiving side of a remote channel for an edge factory of batch type `B`: the
/// inbox the transport feeds, and the type-erased receiver the task reads. `on_take`
/// returns a credit to the sender for each event the task takes.
pub fn remote_receiver<B: Batch>(
    settings: ChannelSettings,
    gate: Arc<GateSignal>,
    control: &Arc<JobControl>,
    codec: ChannelStateCodec<B>,
    on_take: Arc<dyn Fn() + Send + Sync>,
) -> (Box<dyn RemoteInbox>, ErasedReceiver) {
    let (writer, receiver) = local_channel_observed::<B>(
        settings.capacity,
        settings.batch_size,
        gate,
        control,
        Some(on_take),
    );
    (Box::new(TypedInbox { writer, codec }), Box::new(receiver))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::Records;

    fn codec() -> ChannelStateCodec<Records<u32>> {
        ChannelStateCodec::serde()
    }

    #[test]
    fn every_event_kind_survives_a_round_trip() {
        let events = vec![
            StreamEvent::Data(Records::from(vec![1u32, 2, 3])),
            StreamEvent::Watermark(Watermark(EventTime(-5))),
            StreamEvent::Watermark(Watermark(EventTime::MAX)),
            StreamEvent::WatermarkStatus(WatermarkStatus::Idle),
            StreamEvent::WatermarkStatus(WatermarkStatus::Active),
            StreamEvent::Barrier(CheckpointBarrier {
                id: CheckpointId(7),
                timestamp_ms: 1_700_000_000_000,
                alignment: BarrierAlignment::Aligned,
            }),
            StreamEvent::Barrier(CheckpointBarrier {
                id: CheckpointId(8),
                timestamp_ms: 3,
                alignment: BarrierAlignment::Unaligned { overtaken: 0 },
            }),
            StreamEvent::EndOfStream,
        ];
        for event in events {
            let mut frame = Vec::new();
            encode_event(&event, &codec(), &mut frame).unwrap();
            assert_eq!(decode_event(&frame, &codec()).unwrap(), event);
        }
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        for frame in [&[][..], &[1, 2, 3], &[2, 9], &[3, 0, 0], &[99]] {
            assert!(decode_event(frame, &codec()).is_err(), "{frame:?}");
        }
    }
}
