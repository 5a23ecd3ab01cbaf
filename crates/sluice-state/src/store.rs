//! [`KeyedStateStore`]: the named keyed states of one operator subtask.
//!
//! A user function registers each state once (in `open`) and gets a typed, copyable
//! handle; on every record it reads and writes the state of the current key through a
//! view such as [`ValueState`]. Invariant: a handle only indexes the store that issued it.

use std::any::{type_name, Any};
use std::collections::HashMap;
use std::marker::PhantomData;

use sluice_core::KeyGroupRange;

use crate::error::{Error, Result};
use crate::table::KeyedTable;

/// A registered value state holding one `V` per key.
#[derive(Debug)]
pub struct ValueStateHandle<V> {
    index: usize,
    _value: PhantomData<fn() -> V>,
}

impl<V> Clone for ValueStateHandle<V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<V> Copy for ValueStateHandle<V> {}

struct RegisteredState {
    name: String,
    type_name: &'static str,
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

    /// Registers (or finds again) the value state `name` holding a `V` per key.
    ///
    /// # Errors
    /// [`Error::TypeMismatch`] if `name` was registered with another value type.
    pub fn register_value<V: Send + 'static>(&mut self, name: &str) -> Result<ValueStateHandle<V>> {
        let requested = type_name::<KeyedTable<K, V>>();
        if let Some(&index) = self.by_name.get(name) {
            let state = &self.states[index];
            if state.table.is::<KeyedTable<K, V>>() {
                return Ok(ValueStateHandle {
                    index,
                    _value: PhantomData,
                });
            }
            return Err(Error::TypeMismatch {
                name: name.to_string(),
                registered: state.type_name,
                requested,
            });
        }
        let index = self.states.len();
        self.states.push(RegisteredState {
            name: name.to_string(),
            type_name: requested,
            table: Box::new(KeyedTable::<K, V>::new(self.range, self.max_parallelism)),
        });
        self.by_name.insert(name.to_string(), index);
        Ok(ValueStateHandle {
            index,
            _value: PhantomData,
        })
    }

    /// The whole table behind a value state, for operators that work on many keys.
    ///
    /// # Panics
    /// If `handle` was issued by another store (a bug in the caller).
    pub fn table_mut<V: Send + 'static>(
        &mut self,
        handle: &ValueStateHandle<V>,
    ) -> &mut KeyedTable<K, V> {
        let state = &mut self.states[handle.index];
        let name = &state.name;
        match state.table.downcast_mut::<KeyedTable<K, V>>() {
            Some(table) => table,
            None => panic!("state handle for `{name}` used with a store that did not issue it"),
        }
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
            table: self.table_mut(handle),
            key,
            hash,
        }
    }

    /// Names of the registered states, in registration order.
    pub fn state_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.states.iter().map(|s| s.name.as_str())
    }
}

/// The value of one state for the current key.
pub struct ValueState<'a, K, V> {
    table: &'a mut KeyedTable<K, V>,
    key: &'a K,
    hash: u64,
}

impl<K: Eq + Clone, V> ValueState<'_, K, V> {
    /// The current key's value, if it has one.
    pub fn value(&self) -> Option<&V> {
        self.table.get(self.key, self.hash)
    }

    /// The current key's value, mutable, if it has one.
    pub fn value_mut(&mut self) -> Option<&mut V> {
        self.table.get_mut(self.key, self.hash)
    }

    /// Sets the current key's value.
    pub fn update(&mut self, value: V) {
        self.table.insert(self.key.clone(), self.hash, value);
    }

    /// The current key's value, set to `make()` first if it has none.
    pub fn get_or_insert_with(&mut self, make: impl FnOnce() -> V) -> &mut V {
        self.table.get_or_insert_with(self.key, self.hash, make)
    }

    /// Removes the current key's value, returning it.
    pub fn clear(&mut self) -> Option<V> {
        self.table.remove(self.key, self.hash)
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
