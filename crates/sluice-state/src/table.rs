//! [`KeyedTable`]: one hash table per key group.
//!
//! Invariant: an entry lives in the table of its key's group, and its stored hash is the
//! key's [`stable_hash`](sluice_core::stable_hash); snapshots and rescaling rely on both.

use hashbrown::HashTable;
use sluice_core::{key_group_for_hash, KeyGroup, KeyGroupRange};

struct Entry<K, V> {
    hash: u64,
    key: K,
    value: V,
}

/// Values of type `V` per key `K`, partitioned by key group.
pub struct KeyedTable<K, V> {
    range: KeyGroupRange,
    max_parallelism: u32,
    groups: Vec<HashTable<Entry<K, V>>>,
    len: usize,
}

impl<K, V> std::fmt::Debug for KeyedTable<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedTable")
            .field("range", &self.range)
            .field("len", &self.len)
            .finish()
    }
}

impl<K: Eq, V> KeyedTable<K, V> {
    /// An empty table for the key groups of `range` out of `max_parallelism`.
    pub fn new(range: KeyGroupRange, max_parallelism: u32) -> Self {
        KeyedTable {
            range,
            max_parallelism,
            groups: (0..range.len()).map(|_| HashTable::new()).collect(),
            len: 0,
        }
    }

    /// The key groups this table holds.
    pub fn key_group_range(&self) -> KeyGroupRange {
        self.range
    }

    /// Number of keys with a value.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no key has a value.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn group_index(&self, hash: u64) -> usize {
        let group = key_group_for_hash(hash, self.max_parallelism);
        debug_assert!(
            self.range.contains(group),
            "key group {group:?} routed to a subtask owning {:?}",
            self.range
        );
        // A key outside the range is a routing bug; clamping keeps release builds
        // memory-safe while debug builds catch it above.
        self.range
            .offset(group)
            .min(self.groups.len().saturating_sub(1))
    }

    /// The value of `key` (whose stable hash is `hash`).
    #[inline]
    pub fn get(&self, key: &K, hash: u64) -> Option<&V> {
        let g = self.group_index(hash);
        self.groups[g]
            .find(hash, |e| e.hash == hash && e.key == *key)
            .map(|e| &e.value)
    }

    /// The value of `key`, mutable.
    #[inline]
    pub fn get_mut(&mut self, key: &K, hash: u64) -> Option<&mut V> {
        let g = self.group_index(hash);
        self.groups[g]
            .find_mut(hash, |e| e.hash == hash && e.key == *key)
            .map(|e| &mut e.value)
    }

    /// Sets the value of `key`, returning the previous one.
    #[inline]
    pub fn insert(&mut self, key: K, hash: u64, value: V) -> Option<V> {
        if let Some(v) = self.get_mut(&key, hash) {
            return Some(std::mem::replace(v, value));
        }
        let g = self.group_index(hash);
        self.groups[g].insert_unique(hash, Entry { hash, key, value }, |e| e.hash);
        self.len += 1;
        None
    }

    /// The value of `key`, inserting `make()` first if it has none. `key` is only cloned
    /// when it is inserted.
    #[inline]
    pub fn get_or_insert_with(&mut self, key: &K, hash: u64, make: impl FnOnce() -> V) -> &mut V
    where
        K: Clone,
    {
        let g = self.group_index(hash);
        let table = &mut self.groups[g];
        let entry = table.entry(hash, |e| e.hash == hash && e.key == *key, |e| e.hash);
        match entry {
            hashbrown::hash_table::Entry::Occupied(o) => &mut o.into_mut().value,
            hashbrown::hash_table::Entry::Vacant(v) => {
                self.len += 1;
                &mut v
                    .insert(Entry {
                        hash,
                        key: key.clone(),
                        value: make(),
                    })
                    .into_mut()
                    .value
            }
        }
    }

    /// Like [`KeyedTable::get_or_insert_with`] for an owned key, which is moved in when the
    /// key is new: no clone.
    #[inline]
    pub fn get_or_insert_owned(&mut self, key: K, hash: u64, make: impl FnOnce() -> V) -> &mut V {
        let g = self.group_index(hash);
        let table = &mut self.groups[g];
        let entry = table.entry(hash, |e| e.hash == hash && e.key == key, |e| e.hash);
        match entry {
            hashbrown::hash_table::Entry::Occupied(o) => &mut o.into_mut().value,
            hashbrown::hash_table::Entry::Vacant(v) => {
                self.len += 1;
                &mut v
                    .insert(Entry {
                        hash,
                        key,
                        value: make(),
                    })
                    .into_mut()
                    .value
            }
        }
    }

    /// Removes the value of `key`, returning it.
    #[inline]
    pub fn remove(&mut self, key: &K, hash: u64) -> Option<V> {
        let g = self.group_index(hash);
        match self.groups[g].find_entry(hash, |e| e.hash == hash && e.key == *key) {
            Ok(occupied) => {
                self.len -= 1;
                Some(occupied.remove().0.value)
            }
            Err(_) => None,
        }
    }

    /// Iterates over `(key, value)` of one key group.
    pub fn iter_group(&self, group: KeyGroup) -> impl Iterator<Item = (&K, &V)> + '_ {
        let table = if self.range.contains(group) {
            self.groups.get(self.range.offset(group))
        } else {
            None
        };
        table
            .into_iter()
            .flat_map(|t| t.iter().map(|e| (&e.key, &e.value)))
    }

    /// Iterates over every `(key, value)`, key group by key group.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.groups
            .iter()
            .flat_map(|t| t.iter().map(|e| (&e.key, &e.value)))
    }

    /// Removes and yields every `(key, value)`, key group by key group.
    pub fn drain(&mut self) -> impl Iterator<Item = (K, V)> + '_ {
        self.len = 0;
        self.groups
            .iter_mut()
            .flat_map(|t| t.drain().map(|e| (e.key, e.value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sluice_core::stable_hash;
    use std::collections::HashMap;

    fn table() -> KeyedTable<u64, i64> {
        KeyedTable::new(KeyGroupRange::for_subtask(128, 1, 0), 128)
    }

    #[test]
    fn insert_get_remove() {
        let mut t = table();
        let h = stable_hash(&5u64);
        assert_eq!(t.insert(5, h, 10), None);
        assert_eq!(t.insert(5, h, 11), Some(10));
        assert_eq!(t.get(&5, h), Some(&11));
        assert_eq!(t.len(), 1);
        assert_eq!(t.remove(&5, h), Some(11));
        assert!(t.is_empty());
        assert_eq!(t.get(&5, h), None);
    }

    #[test]
    fn iter_group_yields_only_that_group() {
        let mut t = table();
        for k in 0..1000u64 {
            t.insert(k, stable_hash(&k), 1);
        }
        let g = sluice_core::key_group_for(&7u64, 128);
        let keys: Vec<u64> = t.iter_group(g).map(|(k, _)| *k).collect();
        assert!(keys.contains(&7));
        assert!(keys.iter().all(|k| sluice_core::key_group_for(k, 128) == g));
    }

    proptest! {
        #[test]
        fn behaves_like_a_hash_map(ops in proptest::collection::vec((0u64..50, -5i64..5, 0u8..4), 0..400)) {
            let mut t = table();
            let mut model: HashMap<u64, i64> = HashMap::new();
            for (k, v, op) in ops {
                let h = stable_hash(&k);
                match op {
                    0 => { prop_assert_eq!(t.insert(k, h, v), model.insert(k, v)); }
                    1 => { prop_assert_eq!(t.remove(&k, h), model.remove(&k)); }
                    2 => { *t.get_or_insert_with(&k, h, || 0) += v; *model.entry(k).or_insert(0) += v; }
                    _ => { *t.get_or_insert_owned(k, h, || 0) -= v; *model.entry(k).or_insert(0) -= v; }
                }
                prop_assert_eq!(t.len(), model.len());
            }
            let mut drained: Vec<(u64, i64)> = t.drain().collect();
            drained.sort_unstable();
            let mut expected: Vec<(u64, i64)> = model.into_iter().collect();
            expected.sort_unstable();
            prop_assert_eq!(drained, expected);
            prop_assert!(t.is_empty());
        }
    }
}
