//! [`KeyedStateStore`]: the named keyed states of one operator subtask.
//!
//! A user function registers each state once (in `open`) and gets a typed handle; on
//! every record it reads and writes the state of the current key through a view (see
//! [`crate::views`]). Invariant: a handle only indexes the store that issued it, and a
//! name is bound to one kind and type of state for the life of the store.

use std::any::{type_name, Any};
use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use sluice_core::KeyGroupRange;

use crate::aggregate::AggregateFunction;
use crate::error::{Error, Result};
use crate::table::KeyedTable;
use crate::views::{AggregatingState, ListState, MapState, ReducingState, ValueState};

macro_rules! copy_handle {
    ($name:ident < $($p:ident),+ >, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug)]
        pub struct $name<$($p),+> {
            index: usize,
            _types: PhantomData<fn() -> ($($p,)+)>,
        }

        impl<$($p),+> Clone for $name<$($p),+> {
            fn clone(&self) -> Self {
                *self
            }
        }

        impl<$($p),+> Copy for $name<$($p),+> {}
    };
}

copy_handle!(
    ValueStateHandle<V>,
    "A registered value state: one `V` per key."
);
copy_handle!(
    ListStateHandle<V>,
    "A registered list state: a list of `V` per key."
);
copy_handle!(MapStateHandle<UK, UV>, "A registered map state: a map from `UK` to `UV` per key.");

/// A registered reducing state: one `V` per key that added values are reduced into.
pub struct ReducingStateHandle<V> {
    index: usize,
    reduce: Arc<dyn Fn(V, V) -> V + Send + Sync>,
}

impl<V> Clone for ReducingStateHandle<V> {
    fn clone(&self) -> Self {
        ReducingStateHandle {
            index: self.index,
            reduce: Arc::clone(&self.reduce),
        }
    }
}

impl<V> std::fmt::Debug for ReducingStateHandle<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReducingStateHandle")
            .field("index", &self.index)
            .finish()
    }
}

/// A registered aggregating state: one accumulator per key that added values are
/// aggregated into.
pub struct AggregatingStateHandle<IN, ACC, OUT> {
    index: usize,
    function: Arc<dyn AggregateFunction<IN, ACC, OUT>>,
}

impl<IN, ACC, OUT> Clone for AggregatingStateHandle<IN, ACC, OUT> {
    fn clone(&self) -> Self {
        AggregatingStateHandle {
            index: self.index,
            function: Arc::clone(&self.function),
        }
    }
}

impl<IN, ACC, OUT> std::fmt::Debug for AggregatingStateHandle<IN, ACC, OUT> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregatingStateHandle")
            .field("index", &self.index)
            .finish()
    }
}

struct RegisteredState {
    name: String,
    /// Kind and stored type, e.g. "list state of alloc::string::String".
    description: String,
    table: Box<dyn Any + Send>,
}

/// The keyed states of one operator subtask, all over the same key groups.
pub struct KeyedStateStore<K> {
    range: KeyGroupRange,
    max_parallelism: u32,
    states: Vec<RegisteredState>,
    by_name: HashMap<String, usize>,
    _key: PhantomData<fn() -> K>,
}

impl<K> std::fmt::Debug for KeyedStateStore<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedStateStore")
            .field("range", &self.range)
            .field("states", &self.by_name.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<K: Eq + Clone + Send + 'static> KeyedStateStore<K> {
    /// An empty store for the key groups in `range` out of `max_parallelism`.
    pub fn new(range: KeyGroupRange, max_parallelism: u32) -> Self {
        KeyedStateStore {
            range,
            max_parallelism,
            states: Vec::new(),
            by_name: HashMap::new(),
            _key: PhantomData,
        }
    }

    /// The key groups this store holds.
    pub fn key_group_range(&self) -> KeyGroupRange {
        self.range
    }

    /// Registers (or finds again) state `name` of `kind` storing an `S` per key.
    fn register<S: Send + 'static>(&mut self, name: &str, kind: &str) -> Result<usize> {
        let description = format!("{kind} of {}", type_name::<S>());
        if let Some(&index) = self.by_name.get(name) {
            let state = &self.states[index];
            if state.description == description && state.table.is::<KeyedTable<K, S>>() {
                return Ok(index);
            }
            return Err(Error::TypeMismatch {
                name: name.to_string(),
                registered: state.description.clone(),
                requested: description,
            });
        }
        let index = self.states.len();
        self.states.push(RegisteredState {
            name: name.to_string(),
            description,
            table: Box::new(KeyedTable::<K, S>::new(self.range, self.max_parallelism)),
        });
        self.by_name.insert(name.to_string(), index);
        Ok(index)
    }

    /// Registers (or finds again) the value state `name` holding a `V` per key.
    ///
    /// # Errors
    /// [`Error::TypeMismatch`] if `name` was registered as another kind or type.
    pub fn register_value<V: Send + 'static>(&mut self, name: &str) -> Result<ValueStateHandle<V>> {
        let index = self.register::<V>(name, "value state")?;
        Ok(ValueStateHandle {
            index,
            _types: PhantomData,
        })
    }

    /// Registers (or finds again) the list state `name` holding `V`s per key.
    ///
    /// # Errors
    /// [`Error::TypeMismatch`] if `name` was registered as another kind or type.
    pub fn register_list<V: Send + 'static>(&mut self, name: &str) -> Result<ListStateHandle<V>> {
        let index = self.register::<Vec<V>>(name, "list state")?;
        Ok(ListStateHandle {
            index,
            _types: PhantomData,
        })
    }

    /// Registers (or finds again) the map state `name` mapping `UK` to `UV` per key.
    ///
    /// # Errors
    /// [`Error::TypeMismatch`] if `name` was registered as another kind or type.
    pub fn register_map<UK, UV>(&mut self, name: &str) -> Result<MapStateHandle<UK, UV>>
    where
        UK: Hash + Eq + Send + 'static,
        UV: Send + 'static,
    {
        let index = self.register::<HashMap<UK, UV>>(name, "map state")?;
        Ok(MapStateHandle {
            index,
            _types: PhantomData,
        })
    }

    /// Registers (or finds again) the reducing state `name` reducing `V`s with `reduce`.
    ///
    /// # Errors
    /// [`Error::TypeMismatch`] if `name` was registered as another kind or type.
    pub fn register_reducing<V: Send + 'static>(
        &mut self,
        name: &str,
        reduce: impl Fn(V, V) -> V + Send + Sync + 'static,
    ) -> Result<ReducingStateHandle<V>> {
        let index = self.register::<Option<V>>(name, "reducing state")?;
        Ok(ReducingStateHandle {
            index,
            reduce: Arc::new(reduce),
        })
    }

    /// Registers (or finds again) the aggregating state `name` aggregating with `function`.
    ///
    /// # Errors
    /// [`Error::TypeMismatch`] if `name` was registered as another kind or type.
    pub fn register_aggregating<IN, ACC, OUT>(
        &mut self,
        name: &str,
        function: impl AggregateFunction<IN, ACC, OUT>,
    ) -> Result<AggregatingStateHandle<IN, ACC, OUT>>
    where
        IN: 'static,
        ACC: Send + 'static,
        OUT: 'static,
    {
        let index = self.register::<ACC>(name, "aggregating state")?;
        Ok(AggregatingStateHandle {
            index,
            function: Arc::new(function),
        })
    }

    fn table<S: Send + 'static>(&mut self, index: usize) -> &mut KeyedTable<K, S> {
        let state = &mut self.states[index];
        let name = &state.name;
        match state.table.downcast_mut::<KeyedTable<K, S>>() {
            Some(table) => table,
            None => panic!("state handle for `{name}` used with a store that did not issue it"),
        }
    }

    /// The whole table behind a value state, for operators that work on many keys.
    ///
    /// # Panics
    /// If `handle` was issued by another store (a bug in the caller).
    pub fn table_mut<V: Send + 'static>(
        &mut self,
        handle: &ValueStateHandle<V>,
    ) -> &mut KeyedTable<K, V> {
        self.table(handle.index)
    }

    /// The value state of `key` (with stable hash `hash`).
    ///
    /// # Panics
    /// If `handle` was issued by another store.
    pub fn value_state<'a, V: Send + 'static>(
        &'a mut self,
        handle: &ValueStateHandle<V>,
        key: &'a K,
        hash: u64,
    ) -> ValueState<'a, K, V> {
        ValueState {
            table: self.table(handle.index),
            key,
            hash,
        }
    }

    /// The list state of `key`.
    ///
    /// # Panics
    /// If `handle` was issued by another store.
    pub fn list_state<'a, V: Send + 'static>(
        &'a mut self,
        handle: &ListStateHandle<V>,
        key: &'a K,
        hash: u64,
    ) -> ListState<'a, K, V> {
        ListState {
            table: self.table(handle.index),
            key,
            hash,
        }
    }

    /// The map state of `key`.
    ///
    /// # Panics
    /// If `handle` was issued by another store.
    pub fn map_state<'a, UK, UV>(
        &'a mut self,
        handle: &MapStateHandle<UK, UV>,
        key: &'a K,
        hash: u64,
    ) -> MapState<'a, K, UK, UV>
    where
        UK: Hash + Eq + Send + 'static,
        UV: Send + 'static,
    {
        MapState {
            table: self.table(handle.index),
            key,
            hash,
        }
    }

    /// The reducing state of `key`.
    ///
    /// # Panics
    /// If `handle` was issued by another store.
    pub fn reducing_state<'a, V: Send + 'static>(
        &'a mut self,
        handle: &'a ReducingStateHandle<V>,
        key: &'a K,
        hash: u64,
    ) -> ReducingState<'a, K, V> {
        ReducingState {
            table: self.table(handle.index),
            reduce: &handle.reduce,
            key,
            hash,
        }
    }

    /// The aggregating state of `key`.
    ///
    /// # Panics
    /// If `handle` was issued by another store.
    pub fn aggregating_state<'a, IN: 'static, ACC: Send + 'static, OUT: 'static>(
        &'a mut self,
        handle: &'a AggregatingStateHandle<IN, ACC, OUT>,
        key: &'a K,
        hash: u64,
    ) -> AggregatingState<'a, K, IN, ACC, OUT> {
        AggregatingState {
            table: self.table(handle.index),
            function: &handle.function,
            key,
            hash,
        }
    }

    #[cfg(test)]
    pub(crate) fn table_len_for_test<V: Send + 'static>(
        &mut self,
        handle: ListStateHandle<V>,
    ) -> usize {
        self.table::<Vec<V>>(handle.index).len()
    }

    /// Names of the registered states, in registration order.
    pub fn state_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.states.iter().map(|s| s.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::stable_hash;

    fn store() -> KeyedStateStore<String> {
        KeyedStateStore::new(KeyGroupRange::for_subtask(128, 2, 1), 128)
    }

    fn key_in_range(range: KeyGroupRange) -> String {
        (0..)
            .map(|i| format!("k{i}"))
            .find(|k| range.contains(sluice_core::key_group_for(k, 128)))
            .unwrap()
    }

    #[test]
    fn registering_twice_returns_the_same_state() {
        let mut s = store();
        let a = s.register_value::<u64>("count").unwrap();
        let key = key_in_range(s.key_group_range());
        let h = stable_hash(&key);
        s.value_state(&a, &key, h).update(3);
        let b = s.register_value::<u64>("count").unwrap();
        assert_eq!(s.value_state(&b, &key, h).value(), Some(&3));
        assert_eq!(s.state_names().collect::<Vec<_>>(), vec!["count"]);
    }

    #[test]
    fn registering_with_another_type_is_an_error() {
        let mut s = store();
        s.register_value::<u64>("count").unwrap();
        let err = s.register_value::<String>("count").unwrap_err();
        assert!(err
            .to_string()
            .contains("state `count` is already registered"));
    }

    #[test]
    fn clear_removes_the_value() {
        let mut s = store();
        let h1 = s.register_value::<Vec<u8>>("bytes").unwrap();
        let key = key_in_range(s.key_group_range());
        let hash = stable_hash(&key);
        let mut v = s.value_state(&h1, &key, hash);
        v.get_or_insert_with(Vec::new).push(1);
        v.value_mut().unwrap().push(2);
        assert_eq!(v.clear(), Some(vec![1, 2]));
        assert_eq!(v.value(), None);
    }
}
