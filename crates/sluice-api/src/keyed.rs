//! [`KeyedStream`]: a stream partitioned by key, and the per-key operations on it.

use std::hash::Hash;
use std::ops::AddAssign;
use std::sync::Arc;

use sluice_core::Data;
use sluice_runtime::graph::NodeKind;
use sluice_runtime::operators::{
    KeySelector, KeyedProcessFunction, KeyedProcessOperator, KeyedReduceOperator,
    LocalReduceOperator,
};
use sluice_runtime::RuntimeMode;

use crate::datastream::DataStream;

/// A stream whose records are grouped by a key of type `K`.
pub struct KeyedStream<K, T> {
    pub(crate) stream: DataStream<T>,
    pub(crate) key_of: KeySelector<T, K>,
}

impl<K, T> Clone for KeyedStream<K, T> {
    fn clone(&self) -> Self {
        KeyedStream {
            stream: self.stream.clone(),
            key_of: self.key_of.clone(),
        }
    }
}

impl<K, T> std::fmt::Debug for KeyedStream<K, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedStream")
            .field("stream", &self.stream)
            .finish()
    }
}

impl<K: Data + Hash + Eq, T: Data> KeyedStream<K, T> {
    pub(crate) fn new(stream: DataStream<T>, key_of: KeySelector<T, K>) -> Self {
        KeyedStream { stream, key_of }
    }

    /// The keyed stream as a plain stream whose next operator receives it partitioned by
    /// key (every record of a key at the same subtask).
    pub fn as_stream(&self) -> DataStream<T> {
        self.stream.clone()
    }

    /// [`DataStream::map`] on records partitioned by key.
    pub fn map<U: Data>(&self, f: impl Fn(T) -> U + Send + Sync + 'static) -> DataStream<U> {
        self.stream.map(f)
    }

    /// [`DataStream::filter`] on records partitioned by key.
    pub fn filter(&self, f: impl Fn(&T) -> bool + Send + Sync + 'static) -> DataStream<T> {
        self.stream.filter(f)
    }

    /// [`DataStream::flat_map`] on records partitioned by key.
    pub fn flat_map<U: Data, I>(&self, f: impl Fn(T) -> I + Send + Sync + 'static) -> DataStream<U>
    where
        I: IntoIterator<Item = U> + 'static,
    {
        self.stream.flat_map(f)
    }

    /// A running reduction per key: `f(accumulated, record)`. In streaming mode every
    /// record emits its key's new value; in batch mode each key emits its final value, and
    /// records are pre-aggregated per key before the shuffle, so `f` must be associative
    /// (`f(f(a, b), c) == f(a, f(b, c))`), as sums, minima and maxima are.
    pub fn reduce(&self, f: impl Fn(T, T) -> T + Send + Sync + 'static) -> DataStream<T> {
        self.reduce_named("Keyed Reduce", f)
    }

    fn reduce_named(
        &self,
        name: &str,
        f: impl Fn(T, T) -> T + Send + Sync + 'static,
    ) -> DataStream<T> {
        let f = Arc::new(f);
        let key_of = self.key_of.clone();
        let input = if self.stream.env.config().runtime_mode == RuntimeMode::Batch {
            self.pre_aggregate(name, Arc::clone(&f))
        } else {
            self.stream.clone()
        };
        input.add_operator(name, NodeKind::Operator, move |ctx| {
            Ok(KeyedReduceOperator::new(
                ctx,
                key_of.clone(),
                Arc::clone(&f),
            ))
        })
    }

    /// In batch mode, reduces per key before the shuffle (see `LocalReduceOperator`): the
    /// combiner runs chained to the upstream operator, with its parallelism, and the
    /// returned stream is hash-partitioned like this keyed stream.
    fn pre_aggregate<RF>(&self, name: &str, f: Arc<RF>) -> DataStream<T>
    where
        RF: Fn(T, T) -> T + Send + Sync + 'static,
    {
        let upstream = self.stream.id;
        let mut unshuffled = self.stream.clone();
        unshuffled.partition = None;
        let key_of = self.key_of.clone();
        let local_name = format!("Local {}", name.trim_start_matches("Keyed "));
        let mut local = unshuffled.add_operator(&local_name, NodeKind::Operator, move |ctx| {
            Ok(LocalReduceOperator::new(
                ctx,
                key_of.clone(),
                Arc::clone(&f),
            ))
        });
        self.stream
            .env
            .with_builder(|b| b.follow_parallelism(local.id, upstream));
        local.partition = self.stream.partition.clone();
        local
    }

    /// A running sum of the field `field` selects; the other fields are those of the
    /// key's first record (Flink's `sum`).
    pub fn sum<V>(&self, field: impl Fn(&mut T) -> &mut V + Send + Sync + 'static) -> DataStream<T>
    where
        V: AddAssign + Clone + 'static,
    {
        self.reduce_named("Keyed Sum", move |mut acc, mut next| {
            let add = field(&mut next).clone();
            *field(&mut acc) += add;
            acc
        })
    }

    /// A running minimum of the field `field` selects; the other fields are those of the
    /// key's first record (Flink's `min`; see [`KeyedStream::min_by`] for whole records).
    pub fn min<V>(&self, field: impl Fn(&mut T) -> &mut V + Send + Sync + 'static) -> DataStream<T>
    where
        V: PartialOrd + Clone + 'static,
    {
        self.reduce_named("Keyed Min", move |mut acc, mut next| {
            let candidate = field(&mut next).clone();
            let current = field(&mut acc);
            if candidate < *current {
                *current = candidate;
            }
            acc
        })
    }

    /// A running maximum of the field `field` selects (see [`KeyedStream::min`]).
    pub fn max<V>(&self, field: impl Fn(&mut T) -> &mut V + Send + Sync + 'static) -> DataStream<T>
    where
        V: PartialOrd + Clone + 'static,
    {
        self.reduce_named("Keyed Max", move |mut acc, mut next| {
            let candidate = field(&mut next).clone();
            let current = field(&mut acc);
            if candidate > *current {
                *current = candidate;
            }
            acc
        })
    }

    /// The record with the smallest field so far, per key (the earlier one on ties).
    pub fn min_by<V>(&self, field: impl Fn(&T) -> V + Send + Sync + 'static) -> DataStream<T>
    where
        V: PartialOrd + 'static,
    {
        self.reduce_named("Keyed Min By", move |acc, next| {
            if field(&next) < field(&acc) {
                next
            } else {
                acc
            }
        })
    }

    /// The record with the largest field so far, per key (the earlier one on ties).
    pub fn max_by<V>(&self, field: impl Fn(&T) -> V + Send + Sync + 'static) -> DataStream<T>
    where
        V: PartialOrd + 'static,
    {
        self.reduce_named("Keyed Max By", move |acc, next| {
            if field(&next) > field(&acc) {
                next
            } else {
                acc
            }
        })
    }

    /// Runs `function` on every record with access to its key's state. Each subtask gets
    /// its own clone of `function`.
    pub fn process<O, P>(&self, function: P) -> DataStream<O>
    where
        O: Data,
        P: KeyedProcessFunction<K, T, O> + Clone + Sync,
    {
        let key_of = self.key_of.clone();
        self.stream
            .add_operator("Keyed Process", NodeKind::Operator, move |ctx| {
                Ok(KeyedProcessOperator::new(
                    ctx,
                    key_of.clone(),
                    function.clone(),
                ))
            })
    }
}
