//! The per-key views of keyed state that user functions work with: [`ValueState`],
//! [`ListState`], [`MapState`], [`ReducingState`] and [`AggregatingState`].
//!
//! Invariant: a view reads and writes only the current key's entry; an entry that becomes
//! empty (a cleared value, an empty list or map) is removed, so state does not keep keys
//! that hold nothing.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use crate::aggregate::AggregateFunction;
use crate::table::KeyedTable;
use crate::ttl::{forget, touch, TtlTouch};

/// The value of one state for the current key.
pub struct ValueState<'a, K, V> {
    pub(crate) table: &'a mut KeyedTable<K, V>,
    pub(crate) key: &'a K,
    pub(crate) hash: u64,
    pub(crate) ttl: Option<TtlTouch<'a, K>>,
}

impl<K: Eq + Clone, V> ValueState<'_, K, V> {
    /// The current key's value, if it has one.
    pub fn value(&self) -> Option<&V> {
        self.table.get(self.key, self.hash)
    }

    /// The current key's value, mutable, if it has one.
    pub fn value_mut(&mut self) -> Option<&mut V> {
        if self.table.get(self.key, self.hash).is_some() {
            touch(&mut self.ttl, self.key, self.hash);
        }
        self.table.get_mut(self.key, self.hash)
    }

    /// Sets the current key's value.
    pub fn update(&mut self, value: V) {
        touch(&mut self.ttl, self.key, self.hash);
        self.table.insert(self.key.clone(), self.hash, value);
    }

    /// The current key's value, set to `make()` first if it has none.
    pub fn get_or_insert_with(&mut self, make: impl FnOnce() -> V) -> &mut V {
        touch(&mut self.ttl, self.key, self.hash);
        self.table.get_or_insert_with(self.key, self.hash, make)
    }

    /// Removes the current key's value, returning it.
    pub fn clear(&mut self) -> Option<V> {
        forget(&mut self.ttl, self.key, self.hash);
        self.table.remove(self.key, self.hash)
    }
}

/// A list of values for the current key.
pub struct ListState<'a, K, V> {
    pub(crate) table: &'a mut KeyedTable<K, Vec<V>>,
    pub(crate) key: &'a K,
    pub(crate) hash: u64,
    pub(crate) ttl: Option<TtlTouch<'a, K>>,
}

impl<K: Eq + Clone, V> ListState<'_, K, V> {
    /// The current key's values, in the order they were added (empty if none).
    pub fn get(&self) -> &[V] {
        self.table
            .get(self.key, self.hash)
            .map_or(&[], |v| v.as_slice())
    }

    /// Appends a value.
    pub fn add(&mut self, value: V) {
        touch(&mut self.ttl, self.key, self.hash);
        self.table
            .get_or_insert_with(self.key, self.hash, Vec::new)
            .push(value);
    }

    /// Appends values.
    pub fn add_all(&mut self, values: impl IntoIterator<Item = V>) {
        let list = self.table.get_or_insert_with(self.key, self.hash, Vec::new);
        list.extend(values);
        if list.is_empty() {
            self.table.remove(self.key, self.hash);
            forget(&mut self.ttl, self.key, self.hash);
        } else {
            touch(&mut self.ttl, self.key, self.hash);
        }
    }

    /// Replaces the current key's values.
    pub fn update(&mut self, values: Vec<V>) {
        if values.is_empty() {
            self.table.remove(self.key, self.hash);
            forget(&mut self.ttl, self.key, self.hash);
        } else {
            touch(&mut self.ttl, self.key, self.hash);
            self.table.insert(self.key.clone(), self.hash, values);
        }
    }

    /// Removes the current key's values, returning them.
    pub fn clear(&mut self) -> Vec<V> {
        forget(&mut self.ttl, self.key, self.hash);
        self.table.remove(self.key, self.hash).unwrap_or_default()
    }
}

/// A map from user keys to user values for the current key.
pub struct MapState<'a, K, UK, UV> {
    pub(crate) table: &'a mut KeyedTable<K, HashMap<UK, UV>>,
    pub(crate) key: &'a K,
    pub(crate) hash: u64,
    pub(crate) ttl: Option<TtlTouch<'a, K>>,
}

impl<K: Eq + Clone, UK: Hash + Eq, UV> MapState<'_, K, UK, UV> {
    /// The value of `user_key`.
    pub fn get(&self, user_key: &UK) -> Option<&UV> {
        self.table.get(self.key, self.hash)?.get(user_key)
    }

    /// Whether `user_key` has a value.
    pub fn contains(&self, user_key: &UK) -> bool {
        self.get(user_key).is_some()
    }

    /// Sets the value of `user_key`, returning the previous one.
    pub fn put(&mut self, user_key: UK, value: UV) -> Option<UV> {
        touch(&mut self.ttl, self.key, self.hash);
        self.table
            .get_or_insert_with(self.key, self.hash, HashMap::new)
            .insert(user_key, value)
    }

    /// Removes `user_key`, returning its value.
    pub fn remove(&mut self, user_key: &UK) -> Option<UV> {
        let map = self.table.get_mut(self.key, self.hash)?;
        let removed = map.remove(user_key);
        if map.is_empty() {
            self.table.remove(self.key, self.hash);
            forget(&mut self.ttl, self.key, self.hash);
        } else {
            touch(&mut self.ttl, self.key, self.hash);
        }
        removed
    }

    /// The entries, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&UK, &UV)> + '_ {
        self.table
            .get(self.key, self.hash)
            .into_iter()
            .flat_map(|m| m.iter())
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.table.get(self.key, self.hash).is_none()
    }

    /// Removes every entry of the current key.
    pub fn clear(&mut self) {
        forget(&mut self.ttl, self.key, self.hash);
        self.table.remove(self.key, self.hash);
    }
}

/// A value that every added value is reduced into, for the current key.
pub struct ReducingState<'a, K, V> {
    pub(crate) table: &'a mut KeyedTable<K, Option<V>>,
    pub(crate) reduce: &'a Arc<dyn Fn(V, V) -> V + Send + Sync>,
    pub(crate) key: &'a K,
    pub(crate) hash: u64,
    pub(crate) ttl: Option<TtlTouch<'a, K>>,
}

impl<K: Eq + Clone, V> ReducingState<'_, K, V> {
    /// The reduced value, if anything was added.
    pub fn get(&self) -> Option<&V> {
        self.table.get(self.key, self.hash)?.as_ref()
    }

    /// Reduces `value` into the current key's value.
    pub fn add(&mut self, value: V) {
        touch(&mut self.ttl, self.key, self.hash);
        let slot = self.table.get_or_insert_with(self.key, self.hash, || None);
        let next = match slot.take() {
            Some(acc) => (self.reduce)(acc, value),
            None => value,
        };
        *slot = Some(next);
    }

    /// Removes the current key's value, returning it.
    pub fn clear(&mut self) -> Option<V> {
        forget(&mut self.ttl, self.key, self.hash);
        self.table.remove(self.key, self.hash).flatten()
    }
}

/// An accumulator that every added value is aggregated into, for the current key.
pub struct AggregatingState<'a, K, IN, ACC, OUT> {
    pub(crate) table: &'a mut KeyedTable<K, ACC>,
    pub(crate) function: &'a Arc<dyn AggregateFunction<IN, ACC, OUT>>,
    pub(crate) key: &'a K,
    pub(crate) hash: u64,
    pub(crate) ttl: Option<TtlTouch<'a, K>>,
}

impl<K: Eq + Clone, IN: 'static, ACC: 'static, OUT: 'static> AggregatingState<'_, K, IN, ACC, OUT> {
    /// The result so far, if anything was added.
    pub fn get(&self) -> Option<OUT> {
        self.table
            .get(self.key, self.hash)
            .map(|acc| self.function.get_result(acc))
    }

    /// Aggregates `value` into the current key's accumulator.
    pub fn add(&mut self, value: IN) {
        touch(&mut self.ttl, self.key, self.hash);
        let function = Arc::clone(self.function);
        let acc = self
            .table
            .get_or_insert_with(self.key, self.hash, || function.create_accumulator());
        function.add(value, acc);
    }

    /// Removes the current key's accumulator, returning it.
    pub fn clear(&mut self) -> Option<ACC> {
        forget(&mut self.ttl, self.key, self.hash);
        self.table.remove(self.key, self.hash)
    }
}

#[cfg(test)]
mod tests {
    use crate::aggregate::AggregateFunction;
    use crate::store::KeyedStateStore;
    use sluice_core::{stable_hash, KeyGroupRange};

    fn store() -> KeyedStateStore<u64> {
        KeyedStateStore::new(KeyGroupRange::for_subtask(128, 1, 0), 128)
    }

    #[test]
    fn list_state_appends_per_key_and_drops_empty_lists() {
        let mut s = store();
        let h = s.register_list::<String>("events").unwrap();
        let (a, b) = (1u64, 2u64);
        s.list_state(&h, &a, stable_hash(&a)).add("x".into());
        s.list_state(&h, &a, stable_hash(&a))
            .add_all(["y".to_string(), "z".to_string()]);
        s.list_state(&h, &b, stable_hash(&b)).add("other".into());
        assert_eq!(
            s.list_state(&h, &a, stable_hash(&a)).get(),
            &["x", "y", "z"]
        );
        assert_eq!(s.list_state(&h, &b, stable_hash(&b)).clear(), vec!["other"]);
        assert!(s.list_state(&h, &b, stable_hash(&b)).get().is_empty());
        s.list_state(&h, &a, stable_hash(&a)).update(vec![]);
        assert_eq!(s.table_len_for_test(h), 0, "empty lists hold no key");
    }

    #[test]
    fn map_state_puts_removes_and_iterates() {
        let mut s = store();
        let h = s.register_map::<String, u32>("counts").unwrap();
        let k = 7u64;
        let hash = stable_hash(&k);
        let mut m = s.map_state(&h, &k, hash);
        assert!(m.is_empty());
        assert_eq!(m.put("a".into(), 1), None);
        assert_eq!(m.put("a".into(), 2), Some(1));
        m.put("b".into(), 3);
        assert!(m.contains(&"a".to_string()));
        let mut entries: Vec<(String, u32)> = m.iter().map(|(k, v)| (k.clone(), *v)).collect();
        entries.sort();
        assert_eq!(entries, vec![("a".into(), 2), ("b".into(), 3)]);
        assert_eq!(m.remove(&"a".to_string()), Some(2));
        assert_eq!(m.remove(&"b".to_string()), Some(3));
        assert!(m.is_empty(), "the last removal drops the key");
    }

    #[test]
    fn reducing_and_aggregating_state_fold_added_values() {
        struct Mean;
        impl AggregateFunction<i64, (i64, i64), f64> for Mean {
            fn create_accumulator(&self) -> (i64, i64) {
                (0, 0)
            }
            fn add(&self, v: i64, acc: &mut (i64, i64)) {
                acc.0 += v;
                acc.1 += 1;
            }
            fn get_result(&self, acc: &(i64, i64)) -> f64 {
                acc.0 as f64 / acc.1 as f64
            }
            fn merge(&self, a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
                (a.0 + b.0, a.1 + b.1)
            }
        }
        let mut s = store();
        let max = s.register_reducing::<i64>("max", |a, b| a.max(b)).unwrap();
        let mean = s.register_aggregating("mean", Mean).unwrap();
        let k = 3u64;
        let hash = stable_hash(&k);
        for v in [4, 9, 2] {
            s.reducing_state(&max, &k, hash).add(v);
            s.aggregating_state(&mean, &k, hash).add(v);
        }
        assert_eq!(s.reducing_state(&max, &k, hash).get(), Some(&9));
        assert_eq!(s.aggregating_state(&mean, &k, hash).get(), Some(5.0));
        assert_eq!(s.reducing_state(&max, &k, hash).clear(), Some(9));
        assert_eq!(s.reducing_state(&max, &k, hash).get(), None);
    }

    #[test]
    fn one_name_cannot_be_two_kinds_of_state() {
        let mut s = store();
        s.register_value::<u64>("x").unwrap();
        let err = s.register_reducing::<u64>("x", |a, b| a + b).unwrap_err();
        assert!(
            err.to_string()
                .contains("registered as value state of u64, not reducing state"),
            "{err}"
        );
        assert!(s.register_list::<u64>("x").is_err());
    }
}
