//! The `exchange` benchmark: records through one remote channel between two processes
//! over loopback TCP (the cluster's data plane with its credits), as a worker-to-worker
//! shuffle sends them. The parent sends; a child process of this binary receives.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{bail, Context};
use sluice_cluster::transport::frame::ChannelKey;
use sluice_cluster::transport::DataPlane;
use sluice_core::{Clock, Records, StreamEvent, SystemClock};
use sluice_runtime::channel::{ChannelReceiver, ChannelWriter, GateSignal, TryRecv};
use sluice_runtime::factories::RecordsEdge;
use sluice_runtime::graph::{ChannelSettings, EdgeFactory};
use sluice_runtime::partition::PartitionStrategy;
use sluice_runtime::placement::ChannelId;
use sluice_runtime::JobControl;

const KEY: ChannelKey = ChannelKey {
    deployment: 1,
    channel: ChannelId {
        edge: 0,
        from: 0,
        to: 0,
    },
};
const CAPACITY: usize = 16;

fn edge() -> RecordsEdge<u64> {
    RecordsEdge::new(PartitionStrategy::Forward)
}

/// The receiving side: prints its data address, counts records until the end of stream,
/// prints the count.
pub(crate) fn receive() -> anyhow::Result<()> {
    let plane = DataPlane::bind("127.0.0.1:0")?;
    let control = JobControl::new();
    let on_take = plane.credit_return(KEY, CAPACITY as u32);
    let (inbox, receiver) = edge().create_remote_receiver(
        ChannelSettings {
            capacity: CAPACITY,
            batch_size: 1024,
        },
        Arc::new(GateSignal::default()),
        &control,
        on_take,
    )?;
    plane.accept(KEY, inbox)?;
    let receiver = *receiver
        .downcast::<ChannelReceiver<Records<u64>>>()
        .map_err(|_| anyhow::anyhow!("receiver of another type"))?;
    println!("{}", plane.local_addr());
    std::io::stdout().flush()?;
    let mut count = 0u64;
    let mut checksum = 0u64;
    loop {
        match receiver.try_recv() {
            TryRecv::Event(StreamEvent::Data(batch)) => {
                count += batch.len() as u64;
                checksum = batch
                    .values()
                    .iter()
                    .fold(checksum, |a, v| a.wrapping_add(*v));
            }
            TryRecv::Event(StreamEvent::EndOfStream) => break,
            TryRecv::Event(_) | TryRecv::Empty => std::hint::spin_loop(),
            TryRecv::Disconnected => bail!("the sender went away"),
        }
    }
    println!("{count} {checksum}");
    Ok(())
}

/// The sending side: starts the receiver, sends `events` u64 records in batches of
/// `batch`, reports records/s and bytes/s.
pub(crate) fn exchange(events: u64, batch: usize) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .arg("exchange-receive")
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the receiving process")?;
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let peer = lines.next().context("the receiver printed no address")??;
    let plane = DataPlane::bind("127.0.0.1:0")?;
    let control = JobControl::new();
    let link = plane.link_to(&peer, KEY)?;
    let mut writer = *edge()
        .create_remote_writer(link, &control)?
        .downcast::<Box<dyn ChannelWriter<Records<u64>>>>()
        .map_err(|_| anyhow::anyhow!("writer of another type"))?;
    let clock = SystemClock;
    let start = clock.monotonic_nanos();
    let mut sent = 0u64;
    let mut expected_sum = 0u64;
    while sent < events {
        let n = (events - sent).min(batch as u64);
        let values: Vec<u64> = (sent..sent + n).collect();
        expected_sum = values.iter().fold(expected_sum, |a, v| a.wrapping_add(*v));
        writer.send(StreamEvent::Data(Records::from(values)))?;
        sent += n;
    }
    writer.send(StreamEvent::EndOfStream)?;
    let result = lines.next().context("the receiver printed no count")??;
    let secs = (clock.monotonic_nanos() - start) as f64 / 1e9;
    child.wait()?;
    let mut parts = result.split_whitespace();
    let received: u64 = parts.next().context("no count")?.parse()?;
    let sum: u64 = parts.next().context("no checksum")?.parse()?;
    if received != events || sum != expected_sum {
        bail!("received {received} records (checksum {sum}), sent {events} ({expected_sum})");
    }
    // Each record is a u64 (postcard varint on the wire, 1 to 10 bytes; about 4 here).
    let bytes = events * 8;
    println!(
        "exchange: {events} records in batches of {batch} in {secs:.2} s: {:.1} M records/s, {:.0} MB/s of 8-byte records",
        events as f64 / secs / 1e6,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}
