//! Moving [`SqlBatch`]es between tasks: the edge factory of SQL jobs and its router, which
//! splits each batch over the downstream subtasks by the pattern of the edge.
//!
//! Invariant (as for the typed API's router): rows of one key always go to the subtask
//! owning the key's key group, rows keep their order within a channel, and every control
//! event reaches every channel after the rows that preceded it.

use std::sync::Arc;

use arrow::array::{ArrayRef, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use sluice_core::{key_group_for_hash, operator_index_for_key_group, stable_hash, StreamEvent};
use sluice_runtime::channel::remote::{remote_receiver, remote_writer, RemoteInbox, RemoteLink};
use sluice_runtime::channel::{local_channel, ChannelWriter, GateSignal};
use sluice_runtime::checkpoint::ChannelStateCodec;
use sluice_runtime::control::JobControl;
use sluice_runtime::factories::erase_sink;
use sluice_runtime::graph::{
    ChannelSettings, EdgeFactory, ErasedReceiver, ErasedSink, ErasedWriter, RouterSettings,
};
use sluice_runtime::operator::chain::EventSink;
use sluice_runtime::operator::side_output::SideOutput;
use sluice_runtime::partition::Partitioning;
use sluice_runtime::{Error as RuntimeError, Result as RuntimeResult};

use crate::batch::{RowKind, SqlBatch};
use crate::error::{exec, Error, Result};

/// The key group of a key in Arrow's row format: the one the hash exchange sends it to,
/// so keyed operators put state where their input arrives.
pub fn key_group_of_row(row: &[u8], max_parallelism: u32) -> u32 {
    key_group_for_hash(stable_hash(row), max_parallelism).0
}

/// The stable hashes of the key of each row: the key columns are encoded with Arrow's
/// row format and hashed with [`stable_hash`], so a key's hash (and key group) is the
/// same in every process and version.
pub struct KeyHasher {
    converter: RowConverter,
}

impl KeyHasher {
    /// A hasher of keys with these columns' types.
    ///
    /// # Errors
    /// When a type has no row encoding.
    pub fn new(schema: &SchemaRef, key_columns: &[usize]) -> Result<Self> {
        let fields = key_columns
            .iter()
            .map(|&i| SortField::new(schema.field(i).data_type().clone()))
            .collect();
        Ok(KeyHasher {
            converter: RowConverter::new(fields)?,
        })
    }

    /// One hash per row of `columns` (the key columns of a batch).
    ///
    /// # Errors
    /// When the columns do not have the hasher's types.
    pub fn hashes(&self, columns: &[ArrayRef]) -> Result<Vec<u64>> {
        let rows = self.converter.convert_columns(columns)?;
        Ok(rows.iter().map(|r| stable_hash(r.as_ref())).collect())
    }
}

/// How an SQL edge distributes rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlPartitioning {
    /// Subtask `i` to subtask `i`.
    Forward,
    /// Round robin over all downstream subtasks.
    Rebalance,
    /// Every row to every downstream subtask.
    Broadcast,
    /// By the hash of these columns to the owner of the key group.
    Hash(Vec<usize>),
    /// Every row to subtask 0 (a global operator of parallelism 1).
    Global,
}

/// The edge factory of SQL jobs.
pub struct SqlEdge {
    partitioning: SqlPartitioning,
    schema: SchemaRef,
}

impl SqlEdge {
    /// An edge carrying rows of `schema`, distributed by `partitioning`.
    pub fn new(schema: SchemaRef, partitioning: SqlPartitioning) -> Self {
        SqlEdge {
            partitioning,
            schema,
        }
    }
}

impl EdgeFactory for SqlEdge {
    fn partitioning(&self) -> Partitioning {
        match self.partitioning {
            SqlPartitioning::Forward => Partitioning::Forward,
            SqlPartitioning::Rebalance => Partitioning::Rebalance,
            SqlPartitioning::Broadcast => Partitioning::Broadcast,
            SqlPartitioning::Hash(_) | SqlPartitioning::Global => Partitioning::Hash,
        }
    }

    fn create_channel(
        &self,
        settings: ChannelSettings,
        gate: Arc<GateSignal>,
        control: &Arc<JobControl>,
    ) -> (ErasedWriter, ErasedReceiver) {
        let (w, r) =
            local_channel::<SqlBatch>(settings.capacity, settings.batch_size, gate, control);
        let writer: Box<dyn ChannelWriter<SqlBatch>> = Box::new(w);
        (Box::new(writer), Box::new(r))
    }

    fn create_remote_writer(
        &self,
        link: Arc<dyn RemoteLink>,
        control: &Arc<JobControl>,
    ) -> RuntimeResult<ErasedWriter> {
        Ok(remote_writer::<SqlBatch>(
            link,
            ChannelStateCodec::serde(),
            control,
        ))
    }

    fn create_remote_receiver(
        &self,
        settings: ChannelSettings,
        gate: Arc<GateSignal>,
        control: &Arc<JobControl>,
        on_take: Arc<dyn Fn() + Send + Sync>,
    ) -> RuntimeResult<(Box<dyn RemoteInbox>, ErasedReceiver)> {
        Ok(remote_receiver::<SqlBatch>(
            settings,
            gate,
            control,
            ChannelStateCodec::serde(),
            on_take,
        ))
    }

    fn build_side_output(
        &self,
        _id: u64,
        _routers: Vec<ErasedSink>,
    ) -> RuntimeResult<Box<dyn SideOutput>> {
        Err(RuntimeError::Internal(
            "SQL operators have no side outputs".into(),
        ))
    }

    fn build_router(
        &self,
        writers: Vec<ErasedWriter>,
        settings: RouterSettings,
    ) -> RuntimeResult<ErasedSink> {
        let writers = writers
            .into_iter()
            .map(|w| {
                w.downcast::<Box<dyn ChannelWriter<SqlBatch>>>()
                    .map(|b| *b)
                    .map_err(|_| RuntimeError::Internal("SQL edge writer of another type".into()))
            })
            .collect::<RuntimeResult<Vec<_>>>()?;
        let hasher = match &self.partitioning {
            SqlPartitioning::Hash(cols) => {
                Some((exec(KeyHasher::new(&self.schema, cols))?, cols.clone()))
            }
            _ => None,
        };
        let router = SqlRouter {
            pending: writers.iter().map(|_| Pending::default()).collect(),
            writers,
            partitioning: self.partitioning.clone(),
            hasher,
            schema: Arc::clone(&self.schema),
            batch_size: settings.batch_size.max(1),
            max_parallelism: settings.max_parallelism,
            next_channel: settings.first_channel,
        };
        Ok(erase_sink::<SqlBatch>(Box::new(router)))
    }
}

#[derive(Default)]
struct Pending {
    batches: Vec<SqlBatch>,
    rows: usize,
}

/// Concatenates batches of one schema, keeping their row kinds.
///
/// # Errors
/// When the batches' schemas differ.
pub fn concat(schema: &SchemaRef, batches: Vec<SqlBatch>) -> Result<SqlBatch> {
    if batches.len() == 1 {
        if let Some(b) = batches.into_iter().next() {
            return Ok(b);
        }
        return Err(Error::Execution("batch vanished".into()));
    }
    let any_kinds = batches.iter().any(|b| b.kinds().is_some());
    let kinds = any_kinds.then(|| {
        batches
            .iter()
            .flat_map(|b| (0..b.num_rows()).map(move |i| b.kind(i)))
            .collect::<Vec<RowKind>>()
    });
    let data = concat_batches(schema, batches.iter().map(SqlBatch::data))?;
    Ok(match kinds {
        Some(k) => SqlBatch::with_kinds(data, k),
        None => SqlBatch::new(data),
    })
}

/// Rows `indices` of `batch`, with their kinds.
///
/// # Errors
/// What Arrow's `take` reports.
pub fn take_rows(batch: &SqlBatch, indices: &[u32]) -> Result<SqlBatch> {
    let data = take_record_batch(batch.data(), &UInt32Array::from(indices.to_vec()))?;
    Ok(match batch.kinds() {
        None => SqlBatch::new(data),
        Some(k) => SqlBatch::with_kinds(data, indices.iter().map(|&i| k[i as usize]).collect()),
    })
}

struct SqlRouter {
    writers: Vec<Box<dyn ChannelWriter<SqlBatch>>>,
    pending: Vec<Pending>,
    partitioning: SqlPartitioning,
    hasher: Option<(KeyHasher, Vec<usize>)>,
    schema: SchemaRef,
    batch_size: usize,
    max_parallelism: u32,
    next_channel: usize,
}

impl SqlRouter {
    fn take_pending(&mut self, channel: usize) -> RuntimeResult<Option<SqlBatch>> {
        let pending = std::mem::take(&mut self.pending[channel]);
        if pending.rows == 0 {
            return Ok(None);
        }
        exec(concat(&self.schema, pending.batches)).map(Some)
    }

    fn ship(&mut self, channel: usize) -> RuntimeResult<()> {
        if let Some(batch) = self.take_pending(channel)? {
            self.writers[channel].send(StreamEvent::Data(batch))?;
        }
        Ok(())
    }

    fn push(&mut self, channel: usize, batch: SqlBatch) -> RuntimeResult<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.pending[channel].rows == 0 && batch.num_rows() >= self.batch_size {
            return self.writers[channel].send(StreamEvent::Data(batch));
        }
        let p = &mut self.pending[channel];
        p.rows += batch.num_rows();
        p.batches.push(batch);
        if p.rows >= self.batch_size {
            self.ship(channel)?;
        }
        Ok(())
    }

    fn route(&mut self, batch: SqlBatch) -> RuntimeResult<()> {
        let n = self.writers.len();
        if n == 1 {
            return self.push(0, batch);
        }
        let rows = batch.num_rows();
        let channels: Vec<u32> = match &self.partitioning {
            SqlPartitioning::Broadcast => {
                for channel in 0..n {
                    self.push(channel, batch.clone())?;
                }
                return Ok(());
            }
            SqlPartitioning::Global => return self.push(0, batch),
            SqlPartitioning::Forward | SqlPartitioning::Rebalance => {
                // Whole batches round robin: rows of a batch stay together, the load
                // spreads over batches.
                let channel = self.next_channel % n;
                self.next_channel = (channel + 1) % n;
                return self.push(channel, batch);
            }
            SqlPartitioning::Hash(_) => {
                let Some((hasher, cols)) = &self.hasher else {
                    return Err(RuntimeError::Internal("hash edge without hasher".into()));
                };
                let keys: Vec<ArrayRef> = cols
                    .iter()
                    .map(|&c| Arc::clone(batch.data().column(c)))
                    .collect();
                let hashes = exec(hasher.hashes(&keys))?;
                let (max, parallelism) = (self.max_parallelism, n as u32);
                hashes
                    .into_iter()
                    .map(|h| {
                        operator_index_for_key_group(key_group_for_hash(h, max), max, parallelism)
                    })
                    .collect()
            }
        };
        let mut per_channel: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (row, channel) in channels.into_iter().enumerate().take(rows) {
            per_channel[channel as usize].push(row as u32);
        }
        for (channel, indices) in per_channel.into_iter().enumerate() {
            if indices.len() == rows {
                return self.push(channel, batch);
            }
            if !indices.is_empty() {
                let part = exec(take_rows(&batch, &indices))?;
                self.push(channel, part)?;
            }
        }
        Ok(())
    }
}

impl EventSink<SqlBatch> for SqlRouter {
    fn on_event(&mut self, event: StreamEvent<SqlBatch>) -> RuntimeResult<()> {
        match event {
            StreamEvent::Data(batch) => self.route(batch),
            StreamEvent::Barrier(barrier) if barrier.is_unaligned() => {
                for channel in 0..self.writers.len() {
                    let held = self.take_pending(channel)?;
                    self.writers[channel].send_overtaking(barrier, held)?;
                }
                Ok(())
            }
            control => {
                self.flush()?;
                for writer in &mut self.writers {
                    if let Some(ev) = control.map_control() {
                        writer.send(ev)?;
                    }
                }
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> RuntimeResult<()> {
        for channel in 0..self.pending.len() {
            self.ship(channel)?;
        }
        Ok(())
    }
}
