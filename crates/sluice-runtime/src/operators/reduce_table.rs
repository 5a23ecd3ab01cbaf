//! [`ReduceTable`]: per-key accumulators of a reduction, shared by the keyed reduction
//! and the pre-aggregation before a shuffle.
//!
//! A batch is folded in two passes: first every key is hashed (owned keys are computed
//! once and kept), then each record is folded into its key's accumulator while the state
//! slot of a record 16 ahead, and the key bytes of a record 8 ahead, are prefetched, so the
//! cache misses of random state access overlap.

use std::hash::Hash;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sluice_core::{stable_hash, KeyGroupRange, Records};
use sluice_state::KeyedTable;

use super::KeySelector;
use crate::checkpoint::{restore_table, snapshot_table, OperatorSnapshot, RestoredState};
use crate::error::{Error, Result};
use crate::operator::Collector;

/// How many records ahead the state slot is prefetched (its out-of-line key bytes are
/// prefetched half as far ahead, once the slot arrived): enough to cover a memory access
/// with the work of the records in between.
const PREFETCH_DISTANCE: usize = 16;

/// Accumulators of `reduce` per key, over the key groups of a range.
pub(crate) struct ReduceTable<K, T, RF: ?Sized> {
    key_of: KeySelector<T, K>,
    reduce: Arc<RF>,
    // `None` only transiently, while the reduce function owns the accumulator.
    table: KeyedTable<K, Option<T>>,
    // Per-batch scratch space, kept to avoid allocating per batch.
    hashes: Vec<u64>,
    keys: Vec<K>,
}

impl<K, T, RF> ReduceTable<K, T, RF>
where
    K: Hash + Eq + Clone + Send + 'static,
    T: Send + 'static,
    RF: Fn(T, T) -> T + Send + Sync + ?Sized + 'static,
{
    pub(crate) fn new(
        range: KeyGroupRange,
        max_parallelism: u32,
        key_of: KeySelector<T, K>,
        reduce: Arc<RF>,
    ) -> Self {
        ReduceTable {
            key_of,
            reduce,
            table: KeyedTable::new(range, max_parallelism),
            hashes: Vec::new(),
            keys: Vec::new(),
        }
    }

    /// Number of keys with an accumulator.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The accumulators of every key group, one blob per group.
    pub(crate) fn snapshot(&self) -> Result<OperatorSnapshot>
    where
        K: Serialize,
        T: Serialize,
    {
        snapshot_table(&self.table)
    }

    /// Restores what [`ReduceTable::snapshot`] wrote.
    pub(crate) fn restore(&mut self, restored: &RestoredState) -> Result<()>
    where
        K: DeserializeOwned,
        T: DeserializeOwned,
    {
        restore_table(&mut self.table, restored, |_, _, _| {})
    }

    /// Folds every value into its key's accumulator; `on_update(i, acc)` sees the new
    /// accumulator of value `i`.
    pub(crate) fn fold(
        &mut self,
        values: Vec<T>,
        mut on_update: impl FnMut(usize, &T),
    ) -> Result<()> {
        self.hashes.clear();
        self.keys.clear();
        match &self.key_of {
            KeySelector::Owned(select) => {
                for value in &values {
                    let key = select(value);
                    self.hashes.push(stable_hash(&key));
                    self.keys.push(key);
                }
            }
            KeySelector::Borrowed(select) => {
                self.hashes
                    .extend(values.iter().map(|value| stable_hash(select(value))));
            }
        }
        let mut owned_keys = self.keys.drain(..);
        for (i, value) in values.into_iter().enumerate() {
            if let Some(&ahead) = self.hashes.get(i + PREFETCH_DISTANCE) {
                self.table.prefetch(ahead);
            }
            if let Some(&ahead) = self.hashes.get(i + PREFETCH_DISTANCE / 2) {
                self.table.prefetch_key(ahead);
            }
            let hash = self.hashes[i];
            let slot = match &self.key_of {
                KeySelector::Owned(_) => match owned_keys.next() {
                    Some(key) => self.table.get_or_insert_owned(key, hash, || None),
                    None => return Err(Error::Internal("fewer keys than records".into())),
                },
                KeySelector::Borrowed(select) => {
                    self.table.get_or_insert_with(select(&value), hash, || None)
                }
            };
            let next = match slot.take() {
                Some(acc) => (self.reduce)(acc, value),
                None => value,
            };
            on_update(i, &next);
            *slot = Some(next);
        }
        Ok(())
    }

    /// Removes every accumulator and emits them in batches of `batch_size`, without
    /// timestamps.
    pub(crate) fn drain_into(
        &mut self,
        batch_size: usize,
        out: &mut Collector<'_, Records<T>>,
    ) -> Result<()> {
        let batch_size = batch_size.max(1);
        let mut output = Records::with_capacity(batch_size.min(self.table.len()));
        for (_, value) in self.table.drain() {
            if let Some(value) = value {
                output.push(value, None);
            }
            if output.len() >= batch_size {
                out.collect(output.take(batch_size))?;
            }
        }
        out.collect(output)
    }
}
