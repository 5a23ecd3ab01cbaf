//! The data plane: channels between tasks on different workers, over TCP, with
//! credit-based flow control (Flink's network stack in miniature).
//!
//! Each worker runs one [`DataPlane`]: a listener that accepts connections from the
//! workers that send to it, and a pool of connections to the workers it sends to (one
//! per peer, shared by every channel to that peer: channels are multiplexed by
//! [`frame::ChannelKey`]).
//!
//! Flow control: the receiving side of a channel is the task's bounded local queue. Once
//! both the channel's writer announced itself (`OPEN`) and the receiving task registered
//! its inbox, the receiver grants the queue's capacity in credits; it returns credits as
//! the task takes events, batched by a quarter of the capacity. A writer sends an event
//! only holding a credit, so the queue never overflows, the connection's reader never
//! blocks (one slow task cannot stall other channels on its connection), and a slow
//! receiver holds its sender back, across machines, with at most `capacity` batches in
//! flight per channel.
//!
//! Failure: when a connection breaks, the receiving side drops the inboxes it fed (their
//! tasks see the input disconnected and fail) and the sending side fails every writer
//! using it. The coordinator then restarts the job from its latest checkpoint.

pub mod frame;

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sluice_runtime::channel::remote::{RemoteInbox, RemoteLink};
use sluice_runtime::JobControl;

use crate::error::{Error, Result};
use frame::{read_frame, read_handshake, write_frame, write_handshake, ChannelKey, FrameKind};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The write half of one connection, shared by everything that writes to it.
struct ConnWriter {
    stream: Mutex<(TcpStream, Vec<u8>)>,
    alive: AtomicBool,
    peer: String,
}

impl ConnWriter {
    fn new(stream: TcpStream, peer: String) -> Self {
        ConnWriter {
            stream: Mutex::new((stream, Vec::new())),
            alive: AtomicBool::new(true),
            peer,
        }
    }

    fn send(&self, kind: FrameKind, key: ChannelKey, payload: &[u8]) -> std::io::Result<()> {
        let mut guard = lock(&self.stream);
        let (stream, scratch) = &mut *guard;
        let result = write_frame(stream, kind, key, payload, scratch);
        if result.is_err() {
            self.alive.store(false, Ordering::Release);
        }
        result
    }
}

/// The receiving side's credit account of one channel.
struct CreditReturn {
    key: ChannelKey,
    capacity: u32,
    /// The connection the writer opened the channel on, once it did.
    conn: Mutex<Option<Arc<ConnWriter>>>,
    /// Events taken and not yet returned as credits.
    pending: AtomicU32,
    /// Whether the initial credits (the capacity) were granted.
    granted: AtomicBool,
}

impl CreditReturn {
    fn threshold(&self) -> u32 {
        (self.capacity / 4).max(1)
    }

    /// The task took an event: return credits once a quarter of the capacity was taken.
    fn taken(&self) {
        let pending = self.pending.fetch_add(1, Ordering::AcqRel) + 1;
        if pending < self.threshold() {
            return;
        }
        let n = self.pending.swap(0, Ordering::AcqRel);
        if n == 0 {
            return;
        }
        let conn = lock(&self.conn).clone();
        match conn {
            Some(conn) => {
                if let Err(e) = conn.send(FrameKind::Credit, self.key, &n.to_le_bytes()) {
                    tracing::debug!(peer = %conn.peer, channel = %self.key, error = %e, "cannot return credits");
                }
            }
            None => {
                self.pending.fetch_add(n, Ordering::AcqRel);
            }
        }
    }

    /// Grants the initial credits once both the writer's connection and the inbox exist.
    fn grant_initial(&self) {
        let Some(conn) = lock(&self.conn).clone() else {
            return;
        };
        if !self.granted.swap(true, Ordering::AcqRel) {
            let _ = conn.send(FrameKind::Credit, self.key, &self.capacity.to_le_bytes());
        }
    }
}

type SharedInbox = Arc<Mutex<Box<dyn RemoteInbox>>>;

/// A channel's receiving side as the registry knows it.
struct InboxSlot {
    inbox: Option<SharedInbox>,
    credit: Option<Arc<CreditReturn>>,
    /// The writer opened the channel on this connection before the inbox existed.
    opened_on: Option<Arc<ConnWriter>>,
}

/// The sending side's credits of one channel.
struct CreditCell {
    credits: Mutex<i64>,
    more: Condvar,
    closed: AtomicBool,
}

/// A connection this worker dialed to send to a peer.
struct Outgoing {
    writer: Arc<ConnWriter>,
    cells: Mutex<HashMap<ChannelKey, Arc<CreditCell>>>,
}

struct Shared {
    inboxes: Mutex<HashMap<ChannelKey, InboxSlot>>,
    outgoing: Mutex<HashMap<String, Arc<Outgoing>>>,
    closed: AtomicBool,
}

/// One worker's end of the data plane: a listener for channels into this worker and
/// connections for channels out of it.
#[derive(Clone)]
pub struct DataPlane {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl DataPlane {
    /// Listens on `addr` (port 0 picks a free port) and serves incoming channels on
    /// background threads.
    ///
    /// # Errors
    /// [`Error::Bind`] when the address cannot be bound.
    pub fn bind(addr: &str) -> Result<Self> {
        let listener = TcpListener::bind(addr).map_err(|source| Error::Bind {
            what: "data plane",
            addr: addr.to_string(),
            source,
        })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Bind {
            what: "data plane",
            addr: addr.to_string(),
            source,
        })?;
        let shared = Arc::new(Shared {
            inboxes: Mutex::new(HashMap::new()),
            outgoing: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        });
        let accept_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("data plane accept".into())
            .spawn(move || accept_loop(&listener, &accept_shared))
            .map_err(|e| Error::Internal(format!("cannot start the data plane: {e}")))?;
        Ok(DataPlane { shared, local_addr })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The credit account of the receiving side of `key`, holding `capacity` events;
    /// the returned function is the channel's `on_take` hook.
    pub fn credit_return(&self, key: ChannelKey, capacity: u32) -> Arc<dyn Fn() + Send + Sync> {
        let mut inboxes = lock(&self.shared.inboxes);
        let slot = inboxes.entry(key).or_insert_with(|| InboxSlot {
            inbox: None,
            credit: None,
            opened_on: None,
        });
        let credit = Arc::new(CreditReturn {
            key,
            capacity: capacity.max(1),
            conn: Mutex::new(slot.opened_on.clone()),
            pending: AtomicU32::new(0),
            granted: AtomicBool::new(false),
        });
        slot.credit = Some(Arc::clone(&credit));
        Arc::new(move || credit.taken())
    }

    /// Registers the inbox of `key`'s receiving side; its writer gets credits from now on.
    ///
    /// # Errors
    /// [`Error::Internal`] when the channel has no credit account or an inbox already.
    pub fn accept(&self, key: ChannelKey, inbox: Box<dyn RemoteInbox>) -> Result<()> {
        let credit = {
            let mut inboxes = lock(&self.shared.inboxes);
            let slot = inboxes
                .get_mut(&key)
                .ok_or_else(|| Error::Internal(format!("channel {key} has no credit account")))?;
            if slot.inbox.is_some() {
                return Err(Error::Internal(format!("channel {key} registered twice")));
            }
            slot.inbox = Some(Arc::new(Mutex::new(inbox)));
            slot.credit.clone()
        };
        if let Some(credit) = credit {
            credit.grant_initial();
        }
        Ok(())
    }

    /// The link through which a local task writes `key` to the worker listening at
    /// `peer`; announces the channel to the receiver.
    ///
    /// # Errors
    /// [`Error::Connect`] when the peer cannot be reached.
    pub fn link_to(&self, peer: &str, key: ChannelKey) -> Result<Arc<dyn RemoteLink>> {
        let out = self.connection(peer)?;
        let cell = Arc::new(CreditCell {
            credits: Mutex::new(0),
            more: Condvar::new(),
            closed: AtomicBool::new(false),
        });
        lock(&out.cells).insert(key, Arc::clone(&cell));
        out.writer
            .send(FrameKind::Open, key, &[])
            .map_err(|source| Error::Connect {
                what: "worker data plane",
                addr: peer.to_string(),
                source,
            })?;
        Ok(Arc::new(TcpLink {
            writer: Arc::clone(&out.writer),
            key,
            cell,
        }))
    }

    /// Drops what this worker holds of `deployment` (an attempt that ended): its inboxes
    /// (their tasks see their input disconnected if still running) and credit cells.
    pub fn forget(&self, deployment: u64) {
        lock(&self.shared.inboxes).retain(|k, _| k.deployment != deployment);
        for out in lock(&self.shared.outgoing).values() {
            lock(&out.cells).retain(|k, _| k.deployment != deployment);
        }
    }

    /// The pooled connection to `peer`, dialed when there is none or it broke.
    fn connection(&self, peer: &str) -> Result<Arc<Outgoing>> {
        let mut pool = lock(&self.shared.outgoing);
        if let Some(out) = pool.get(peer) {
            if out.writer.alive.load(Ordering::Acquire) {
                return Ok(Arc::clone(out));
            }
        }
        let connect_error = |source| Error::Connect {
            what: "worker data plane",
            addr: peer.to_string(),
            source,
        };
        let addr = peer
            .to_socket_addrs()
            .map_err(connect_error)?
            .next()
            .ok_or_else(|| {
                connect_error(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the name resolves to no address",
                ))
            })?;
        let mut stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(connect_error)?;
        let _ = stream.set_nodelay(true);
        write_handshake(&mut stream).map_err(connect_error)?;
        let read_half = stream.try_clone().map_err(connect_error)?;
        let out = Arc::new(Outgoing {
            writer: Arc::new(ConnWriter::new(stream, peer.to_string())),
            cells: Mutex::new(HashMap::new()),
        });
        let reader_out = Arc::clone(&out);
        std::thread::Builder::new()
            .name(format!("data plane credits from {peer}"))
            .spawn(move || credit_loop(read_half, &reader_out))
            .map_err(|e| Error::Internal(format!("cannot start a data plane reader: {e}")))?;
        pool.insert(peer.to_string(), Arc::clone(&out));
        Ok(out)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
    }
}

/// The writer's side of one remote channel.
struct TcpLink {
    writer: Arc<ConnWriter>,
    key: ChannelKey,
    cell: Arc<CreditCell>,
}

impl RemoteLink for TcpLink {
    fn acquire(&self, control: &JobControl, wait: bool) -> sluice_runtime::Result<()> {
        let mut credits = lock(&self.cell.credits);
        loop {
            if self.cell.closed.load(Ordering::Acquire)
                || !self.writer.alive.load(Ordering::Acquire)
            {
                return Err(sluice_runtime::Error::PeerLost {
                    peer: self.writer.peer.clone(),
                });
            }
            if *credits > 0 || !wait {
                *credits -= 1;
                return Ok(());
            }
            if control.is_cancelled() {
                return Err(sluice_runtime::Error::Cancelled);
            }
            credits = self
                .cell
                .more
                .wait_timeout(credits, sluice_runtime::channel::POLL_MAX)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn send(&self, frame: &[u8], priority: bool) -> sluice_runtime::Result<()> {
        let kind = if priority {
            FrameKind::Priority
        } else {
            FrameKind::Data
        };
        self.writer.send(kind, self.key, frame).map_err(|e| {
            tracing::warn!(peer = %self.writer.peer, channel = %self.key, error = %e, "data connection lost");
            sluice_runtime::Error::PeerLost {
                peer: self.writer.peer.clone(),
            }
        })
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "data plane: cannot accept a connection");
                continue;
            }
        };
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string());
        let shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name(format!("data plane from {peer}"))
            .spawn(move || {
                if let Err(e) = serve_connection(stream, &peer, &shared) {
                    tracing::warn!(peer = %peer, error = %e, "data connection ended");
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "data plane: cannot start a connection reader");
        }
    }
}

/// Reads the frames of one incoming connection into the inboxes of its channels.
fn serve_connection(stream: TcpStream, peer: &str, shared: &Arc<Shared>) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let write_half = stream.try_clone()?;
    let mut input = BufReader::with_capacity(1 << 16, stream);
    read_handshake(&mut input)?;
    let conn = Arc::new(ConnWriter::new(write_half, peer.to_string()));
    let mut opened: Vec<ChannelKey> = Vec::new();
    let mut buf = Vec::new();
    let result = loop {
        let (kind, key, range) = match read_frame(&mut input, &mut buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        match kind {
            FrameKind::Open => {
                opened.push(key);
                let credit = {
                    let mut inboxes = lock(&shared.inboxes);
                    let slot = inboxes.entry(key).or_insert_with(|| InboxSlot {
                        inbox: None,
                        credit: None,
                        opened_on: None,
                    });
                    slot.opened_on = Some(Arc::clone(&conn));
                    let credit = slot.credit.clone();
                    if let Some(c) = &credit {
                        *lock(&c.conn) = Some(Arc::clone(&conn));
                    }
                    credit.filter(|_| slot.inbox.is_some())
                };
                if let Some(credit) = credit {
                    credit.grant_initial();
                }
            }
            FrameKind::Data | FrameKind::Priority => {
                // One lookup per batch; an inbox removed from the registry (its
                // deployment ended) is never fed again.
                let inbox = lock(&shared.inboxes)
                    .get(&key)
                    .and_then(|s| s.inbox.clone());
                // A channel of a deployment that ended (or whose task is gone) drops
                // what is still in flight for it.
                let Some(inbox) = inbox else { continue };
                let delivered = lock(&inbox).deliver(&buf[range], kind == FrameKind::Priority);
                if let Err(e) = delivered {
                    tracing::debug!(channel = %key, error = %e, "dropping a channel whose task is gone");
                    lock(&shared.inboxes).remove(&key);
                }
            }
            FrameKind::Credit => {
                break Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "a credit frame on an incoming connection",
                ));
            }
        }
    };
    // The writer is gone: the channels it fed end without an end of stream, so their
    // tasks fail and the job restarts (unless the channels had ended already).
    let mut lost = Vec::new();
    {
        let mut inboxes = lock(&shared.inboxes);
        for key in opened {
            let ours = inboxes
                .get(&key)
                .and_then(|s| s.opened_on.as_ref())
                .is_some_and(|c| Arc::ptr_eq(c, &conn));
            if ours {
                lost.extend(inboxes.remove(&key).and_then(|s| s.inbox));
            }
        }
    }
    for inbox in lost {
        lock(&inbox).connection_lost(peer);
    }
    let _ = lock(&conn.stream).0.flush();
    result
}

/// Reads the credits a peer returns on a connection this worker dialed.
fn credit_loop(stream: TcpStream, out: &Arc<Outgoing>) {
    let mut input = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        match read_frame(&mut input, &mut buf) {
            Ok(Some((FrameKind::Credit, key, range))) => {
                let n = buf
                    .get(range)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u32::from_le_bytes);
                let cell = lock(&out.cells).get(&key).cloned();
                if let Some(cell) = cell {
                    *lock(&cell.credits) += i64::from(n);
                    cell.more.notify_all();
                }
            }
            Ok(Some((kind, key, _))) => {
                tracing::warn!(peer = %out.writer.peer, channel = %key, ?kind, "unexpected frame on an outgoing connection");
                break;
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(peer = %out.writer.peer, error = %e, "outgoing data connection ended");
                break;
            }
        }
    }
    out.writer.alive.store(false, Ordering::Release);
    for cell in lock(&out.cells).values() {
        cell.closed.store(true, Ordering::Release);
        cell.more.notify_all();
    }
}

#[cfg(test)]
mod tests;
