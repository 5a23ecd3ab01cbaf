//! [`KeyedReduceOperator`]: a running reduction per key (`reduce`, `sum`, `min`, `max`).
//!
//! In streaming mode every input emits the key's updated value (with the input's
//! timestamp); in batch mode each key's final value is emitted once the input ends.

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use sluice_core::{stable_hash, Records};
use sluice_state::KeyedTable;

use super::KeySelector;
use crate::config::RuntimeMode;
use crate::error::{Error, Result};
use crate::operator::{Collector, Operator, OperatorContext};

/// How many records ahead the state slot is prefetched (its out-of-line key bytes are
/// prefetched half as far ahead, once the slot arrived): enough to cover a memory access
/// with the work of the records in between.
const PREFETCH_DISTANCE: usize = 16;

/// Reduces the values of each key with a function `(accumulated, new) -> accumulated`.
pub struct KeyedReduceOperator<K, T, RF: ?Sized> {
    key_of: KeySelector<T, K>,
    reduce: Arc<RF>,
    // `None` only transiently, while the reduce function owns the value.
    table: KeyedTable<K, Option<T>>,
    mode: RuntimeMode,
    batch_size: usize,
    // Per-batch scratch space, kept to avoid allocating per batch.
    hashes: Vec<u64>,
    keys: Vec<K>,
    _types: PhantomData<fn(T)>,
}

impl<K, T, RF: ?Sized> KeyedReduceOperator<K, T, RF>
where
    K: Hash + Eq,
{
    /// A reduction keyed by `key_of` for the key groups of `ctx`.
    pub fn new(ctx: &OperatorContext, key_of: KeySelector<T, K>, reduce: Arc<RF>) -> Self {
        KeyedReduceOperator {
            key_of,
            reduce,
            table: KeyedTable::new(ctx.key_group_range, ctx.max_parallelism),
            mode: ctx.runtime_mode,
            batch_size: ctx.batch_size,
            hashes: Vec::new(),
            keys: Vec::new(),
            _types: PhantomData,
        }
    }
}

impl<K, T, RF: ?Sized> Operator for KeyedReduceOperator<K, T, RF>
where
    K: Hash + Eq + Clone + Send + 'static,
    T: Clone + Send + 'static,
    RF: Fn(T, T) -> T + Send + Sync + 'static,
{
    type In = Records<T>;
    type Out = Records<T>;

    fn on_data(&mut self, batch: Records<T>, out: &mut Collector<'_, Records<T>>) -> Result<()> {
        let emit = self.mode == RuntimeMode::Streaming;
        let mut output = if emit {
            Records::with_capacity(batch.len())
        } else {
            Records::new()
        };
        let (values, timestamps) = batch.into_parts();
        // Pass 1: hash every key (and keep computed keys), so that pass 2 can prefetch
        // the state slots of upcoming records while it updates the current one.
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
            if emit {
                output.push(next.clone(), timestamps.as_ref().map(|t| t[i]));
            }
            *slot = Some(next);
        }
        out.collect(output)
    }

    fn on_end_of_input(&mut self, out: &mut Collector<'_, Records<T>>) -> Result<()> {
        if self.mode != RuntimeMode::Batch {
            return Ok(());
        }
        let mut output = Records::with_capacity(self.batch_size);
        let drained: Vec<T> = self.table.drain().filter_map(|(_, v)| v).collect();
        for value in drained {
            output.push(value, None);
            if output.len() >= self.batch_size {
                out.collect(output.take(self.batch_size))?;
            }
        }
        out.collect(output)
    }
}
