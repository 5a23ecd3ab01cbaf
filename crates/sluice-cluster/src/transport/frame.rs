//! The data plane's wire format: a handshake, then length-prefixed frames.
//!
//! ```text
//! handshake   "SLCD" version:u8                       (dialing side, once)
//! frame       len:u32 kind:u8 key:ChannelKey payload  (len counts kind, key and payload)
//! ChannelKey  deployment:u64 edge:u32 from:u32 to:u32 (little-endian)
//! kinds       OPEN (writer -> receiver: a channel's writer exists)
//!             DATA, PRIORITY (writer -> receiver: one encoded event; PRIORITY is an
//!                            unaligned barrier that overtakes what the receiver queued)
//!             CREDIT n:u32 (receiver -> writer: room for n more events)
//! ```
//!
//! Invariant: a reader never trusts a length: frames above [`MAX_FRAME_BYTES`] and frames
//! too short for their kind are errors, never allocations or panics.

use std::io::{self, Read, Write};

use sluice_runtime::placement::ChannelId;

/// Bytes that open every data connection, then the protocol version.
pub const MAGIC: &[u8; 4] = b"SLCD";
/// The protocol version; both ends must speak the same.
pub const VERSION: u8 = 1;
/// The largest frame accepted (a batch of very wide rows still fits).
pub const MAX_FRAME_BYTES: usize = 1 << 30;

/// A channel of one deployment (one attempt of one job) across the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelKey {
    /// The deployment: unique per attempt of a job in the cluster.
    pub deployment: u64,
    /// The channel within the job's plan.
    pub channel: ChannelId,
}

impl std::fmt::Display for ChannelKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "deployment {} {}", self.deployment, self.channel)
    }
}

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A channel's writer exists.
    Open,
    /// An encoded event.
    Data,
    /// An unaligned barrier that overtakes what the receiver queued.
    Priority,
    /// Room for more events.
    Credit,
}

impl FrameKind {
    fn byte(self) -> u8 {
        match self {
            FrameKind::Open => 1,
            FrameKind::Data => 2,
            FrameKind::Priority => 3,
            FrameKind::Credit => 4,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => FrameKind::Open,
            2 => FrameKind::Data,
            3 => FrameKind::Priority,
            4 => FrameKind::Credit,
            _ => return None,
        })
    }
}

const HEADER: usize = 1 + 8 + 4 + 4 + 4;

/// Writes one frame in a single `write_all` (one system call for small frames).
///
/// # Errors
/// What the stream returns.
pub fn write_frame(
    out: &mut impl Write,
    kind: FrameKind,
    key: ChannelKey,
    payload: &[u8],
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    let len = u32::try_from(HEADER + payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame above 4 GiB"))?;
    scratch.clear();
    scratch.reserve(4 + HEADER + payload.len());
    scratch.extend_from_slice(&len.to_le_bytes());
    scratch.push(kind.byte());
    scratch.extend_from_slice(&key.deployment.to_le_bytes());
    scratch.extend_from_slice(&key.channel.edge.to_le_bytes());
    scratch.extend_from_slice(&key.channel.from.to_le_bytes());
    scratch.extend_from_slice(&key.channel.to.to_le_bytes());
    scratch.extend_from_slice(payload);
    out.write_all(scratch)
}

/// Reads the next frame into `buf`; returns its kind, key and payload range (within
/// `buf`), or `None` at a clean end of stream.
///
/// # Errors
/// What the stream returns, and [`io::ErrorKind::InvalidData`] on a malformed frame.
pub fn read_frame(
    input: &mut impl Read,
    buf: &mut Vec<u8>,
) -> io::Result<Option<(FrameKind, ChannelKey, std::ops::Range<usize>)>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if !(HEADER..=MAX_FRAME_BYTES).contains(&len) {
        return Err(invalid(format!("a frame of {len} bytes")));
    }
    buf.resize(len, 0);
    input.read_exact(buf)?;
    let kind =
        FrameKind::from_byte(buf[0]).ok_or_else(|| invalid(format!("frame kind {}", buf[0])))?;
    let u32_at = |at: usize| u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
    let mut deployment = [0u8; 8];
    deployment.copy_from_slice(&buf[1..9]);
    let key = ChannelKey {
        deployment: u64::from_le_bytes(deployment),
        channel: ChannelId {
            edge: u32_at(9),
            from: u32_at(13),
            to: u32_at(17),
        },
    };
    Ok(Some((kind, key, HEADER..len)))
}

/// Writes the handshake.
///
/// # Errors
/// What the stream returns.
pub fn write_handshake(out: &mut impl Write) -> io::Result<()> {
    let mut hello = MAGIC.to_vec();
    hello.push(VERSION);
    out.write_all(&hello)
}

/// Reads and checks the handshake.
///
/// # Errors
/// [`io::ErrorKind::InvalidData`] when the peer is not a Sluice worker of this version.
pub fn read_handshake(input: &mut impl Read) -> io::Result<()> {
    let mut hello = [0u8; 5];
    input.read_exact(&mut hello)?;
    if &hello[..4] != MAGIC {
        return Err(invalid(
            "the peer is not a Sluice worker (a data address pointing at another service?)".into(),
        ));
    }
    if hello[4] != VERSION {
        return Err(invalid(format!(
            "the peer speaks data protocol version {}, this worker {VERSION}: run the same Sluice version on every worker",
            hello[4]
        )));
    }
    Ok(())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let key = ChannelKey {
            deployment: 42,
            channel: ChannelId {
                edge: 3,
                from: 1,
                to: 7,
            },
        };
        let mut wire = Vec::new();
        let mut scratch = Vec::new();
        write_frame(&mut wire, FrameKind::Data, key, b"hello", &mut scratch).unwrap();
        write_frame(
            &mut wire,
            FrameKind::Credit,
            key,
            &9u32.to_le_bytes(),
            &mut scratch,
        )
        .unwrap();
        let mut input = &wire[..];
        let mut buf = Vec::new();
        let (kind, k, range) = read_frame(&mut input, &mut buf).unwrap().unwrap();
        assert_eq!(
            (kind, k, &buf[range]),
            (FrameKind::Data, key, &b"hello"[..])
        );
        let (kind, _, range) = read_frame(&mut input, &mut buf).unwrap().unwrap();
        assert_eq!(
            (kind, &buf[range]),
            (FrameKind::Credit, &9u32.to_le_bytes()[..])
        );
        assert!(read_frame(&mut input, &mut buf).unwrap().is_none());
    }

    #[test]
    fn malformed_input_is_an_error() {
        let mut buf = Vec::new();
        let huge = u32::MAX.to_le_bytes();
        assert!(read_frame(&mut &huge[..], &mut buf).is_err());
        let short = 3u32.to_le_bytes();
        assert!(read_frame(&mut &short[..], &mut buf).is_err());
        let mut bad_kind = (HEADER as u32).to_le_bytes().to_vec();
        bad_kind.extend_from_slice(&[9; HEADER]);
        assert!(read_frame(&mut &bad_kind[..], &mut buf).is_err());
        assert!(read_handshake(&mut &b"HTTP/"[..]).is_err());
        assert!(read_handshake(&mut &b"SLCD\x09"[..]).is_err());
    }
}
