//! [`KeyedTable`]: the values of one keyed state, one hash table per key group.
//!
//! Each key group has an open-addressing table with linear probing, whose slot index comes
//! from the low bits of the key's stable hash (the high bits pick the key group). A slot
//! holds the hash, the key and the value together, so a lookup usually touches one cache
//! line, and [`KeyedTable::prefetch`] can start loading it ahead of time: operators
//! prefetch the slots of upcoming records of a batch so cache misses overlap.
//!
//! Invariant: an entry lives in the table of its key's group, and its stored hash is the
//! key's [`stable_hash`](sluice_core::stable_hash); snapshots and rescaling rely on both.
//! Within a group table, every entry is reachable from its ideal slot without crossing an
//! empty slot (removal shifts entries back to keep this).

use sluice_core::{key_group_for_hash, KeyGroup, KeyGroupRange};

use crate::prefetch::{prefetch_key_data, prefetch_read};

struct Slot<K, V> {
    hash: u64,
    key: K,
    value: V,
}

/// Smallest non-empty capacity of a group table.
const MIN_CAPACITY: usize = 8;

/// One key group's table. Capacity is zero or a power of two; load stays at most 7/8.
struct GroupTable<K, V> {
    slots: Vec<Option<Slot<K, V>>>,
    len: usize,
}

impl<K: Eq, V> GroupTable<K, V> {
    fn new() -> Self {
        GroupTable {
            slots: Vec::new(),
            len: 0,
        }
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// `Ok(slot)` holding `key`, or `Err(empty slot)` where it would go. The table must
    /// have capacity.
    #[inline]
    fn find(&self, key: &K, hash: u64) -> Result<usize, usize> {
        let mask = self.mask();
        let mut i = hash as usize & mask;
        loop {
            match &self.slots[i] {
                None => return Err(i),
                Some(s) if s.hash == hash && s.key == *key => return Ok(i),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    #[inline]
    fn lookup(&self, key: &K, hash: u64) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        self.find(key, hash).ok()
    }

    /// Makes room for one more entry.
    #[inline]
    fn reserve_one(&mut self) {
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            self.grow();
        }
    }

    #[cold]
    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(MIN_CAPACITY);
        let old = std::mem::replace(&mut self.slots, (0..capacity).map(|_| None).collect());
        let mask = self.mask();
        for slot in old.into_iter().flatten() {
            let mut i = slot.hash as usize & mask;
            while self.slots[i].is_some() {
                i = (i + 1) & mask;
            }
            self.slots[i] = Some(slot);
        }
    }

    fn remove_at(&mut self, i: usize) -> Option<Slot<K, V>> {
        let removed = self.slots[i].take()?;
        self.len -= 1;
        // Backward-shift deletion: move later entries of the probe run into the hole when
        // the hole lies between their ideal slot and where they are.
        let mask = self.mask();
        let mut hole = i;
        let mut j = (i + 1) & mask;
        while let Some(slot) = &self.slots[j] {
            let ideal = slot.hash as usize & mask;
            let probe_distance = j.wrapping_sub(ideal) & mask;
            let hole_distance = j.wrapping_sub(hole) & mask;
            if probe_distance >= hole_distance {
                self.slots[hole] = self.slots[j].take();
                hole = j;
            }
            j = (j + 1) & mask;
        }
        Some(removed)
    }
}

/// Values of type `V` per key `K`, partitioned by key group.
pub struct KeyedTable<K, V> {
    range: KeyGroupRange,
    max_parallelism: u32,
    groups: Vec<GroupTable<K, V>>,
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
            groups: (0..range.len()).map(|_| GroupTable::new()).collect(),
            len: 0,
        }
    }

    /// The key groups this table holds.
    pub fn key_group_range(&self) -> KeyGroupRange {
        self.range
    }

    /// The key group of a key with stable hash `hash`.
    pub fn key_group_of(&self, hash: u64) -> KeyGroup {
        key_group_for_hash(hash, self.max_parallelism)
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

    /// Starts loading the slot where the key with `hash` lives (or would), so that a
    /// lookup shortly after does not wait for memory.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        let group = &self.groups[self.group_index(hash)];
        if let Some(slot) = group.slots.get(hash as usize & group.mask()) {
            prefetch_read(slot);
        }
    }

    /// Starts loading the out-of-line bytes (of a `String` key, say) of the entry in the
    /// slot where the key with `hash` would be found first. Call it a few records after
    /// [`KeyedTable::prefetch`] for the same hash, once the slot itself is in cache: key
    /// comparisons then do not wait for memory either.
    #[inline]
    pub fn prefetch_key(&self, hash: u64)
    where
        K: 'static,
    {
        let group = &self.groups[self.group_index(hash)];
        if let Some(Some(slot)) = group.slots.get(hash as usize & group.mask()) {
            prefetch_key_data(&slot.key);
        }
    }

    /// The value of `key` (whose stable hash is `hash`).
    #[inline]
    pub fn get(&self, key: &K, hash: u64) -> Option<&V> {
        let group = &self.groups[self.group_index(hash)];
        let i = group.lookup(key, hash)?;
        group.slots[i].as_ref().map(|s| &s.value)
    }

    /// The value of `key`, mutable.
    #[inline]
    pub fn get_mut(&mut self, key: &K, hash: u64) -> Option<&mut V> {
        let g = self.group_index(hash);
        let group = &mut self.groups[g];
        let i = group.lookup(key, hash)?;
        group.slots[i].as_mut().map(|s| &mut s.value)
    }

    /// Sets the value of `key`, returning the previous one.
    #[inline]
    pub fn insert(&mut self, key: K, hash: u64, value: V) -> Option<V> {
        let g = self.group_index(hash);
        let group = &mut self.groups[g];
        group.reserve_one();
        match group.find(&key, hash) {
            Ok(i) => group.slots[i]
                .as_mut()
                .map(|s| std::mem::replace(&mut s.value, value)),
            Err(i) => {
                group.slots[i] = Some(Slot { hash, key, value });
                group.len += 1;
                self.len += 1;
                None
            }
        }
    }

    /// The value of `key`, inserting `make()` first if it has none. `key` is only cloned
    /// when it is inserted.
    #[inline]
    pub fn get_or_insert_with(&mut self, key: &K, hash: u64, make: impl FnOnce() -> V) -> &mut V
    where
        K: Clone,
    {
        self.entry(key, hash, || key.clone(), make)
    }

    /// Like [`KeyedTable::get_or_insert_with`] for an owned key, which is moved in when the
    /// key is new: no clone.
    #[inline]
    pub fn get_or_insert_owned(&mut self, key: K, hash: u64, make: impl FnOnce() -> V) -> &mut V {
        self.entry_owned(key, hash, make)
    }

    #[inline]
    fn entry_owned(&mut self, key: K, hash: u64, make: impl FnOnce() -> V) -> &mut V {
        let g = self.group_index(hash);
        let group = &mut self.groups[g];
        group.reserve_one();
        let i = match group.find(&key, hash) {
            Ok(i) => i,
            Err(i) => {
                group.slots[i] = Some(Slot {
                    hash,
                    key,
                    value: make(),
                });
                group.len += 1;
                self.len += 1;
                i
            }
        };
        Self::value_at(&mut self.groups[g], i)
    }

    #[inline]
    fn entry(
        &mut self,
        key: &K,
        hash: u64,
        owned_key: impl FnOnce() -> K,
        make: impl FnOnce() -> V,
    ) -> &mut V {
        let g = self.group_index(hash);
        let group = &mut self.groups[g];
        group.reserve_one();
        let i = match group.find(key, hash) {
            Ok(i) => i,
            Err(i) => {
                group.slots[i] = Some(Slot {
                    hash,
                    key: owned_key(),
                    value: make(),
                });
                group.len += 1;
                self.len += 1;
                i
            }
        };
        Self::value_at(&mut self.groups[g], i)
    }

    #[inline]
    fn value_at(group: &mut GroupTable<K, V>, i: usize) -> &mut V {
        match &mut group.slots[i] {
            Some(slot) => &mut slot.value,
            None => unreachable!("slot {i} was found or filled just before"),
        }
    }

    /// Removes the value of `key`, returning it.
    #[inline]
    pub fn remove(&mut self, key: &K, hash: u64) -> Option<V> {
        let g = self.group_index(hash);
        let group = &mut self.groups[g];
        let i = group.lookup(key, hash)?;
        let removed = group.remove_at(i)?;
        self.len -= 1;
        Some(removed.value)
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
            .flat_map(|t| t.slots.iter().flatten().map(|s| (&s.key, &s.value)))
    }

    /// Iterates over every `(key, value)`, key group by key group.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.groups
            .iter()
            .flat_map(|t| t.slots.iter().flatten().map(|s| (&s.key, &s.value)))
    }

    /// Removes and yields every `(key, value)`, key group by key group. The table is empty
    /// as soon as this returns, even if the iterator is dropped early.
    pub fn drain(&mut self) -> impl Iterator<Item = (K, V)> {
        self.len = 0;
        let tables: Vec<Vec<Option<Slot<K, V>>>> = self
            .groups
            .iter_mut()
            .map(|t| {
                t.len = 0;
                std::mem::take(&mut t.slots)
            })
            .collect();
        tables
            .into_iter()
            .flat_map(|slots| slots.into_iter().flatten().map(|s| (s.key, s.value)))
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
        // Failures are reported with their minimal input; no regression files in the tree.
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]
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

        #[test]
        fn long_probe_runs_survive_removals_and_growth(ops in proptest::collection::vec((0u64..3000, 0u8..3), 0..3000)) {
            // One key group: every key shares one table, so probe runs get long and
            // removal must shift entries back correctly.
            let mut t: KeyedTable<u64, u64> = KeyedTable::new(KeyGroupRange::for_subtask(1, 1, 0), 1);
            let mut model: HashMap<u64, u64> = HashMap::new();
            for (k, op) in ops {
                let h = stable_hash(&k);
                match op {
                    0 => { prop_assert_eq!(t.remove(&k, h), model.remove(&k)); }
                    _ => { *t.get_or_insert_with(&k, h, || 0) += 1; *model.entry(k).or_insert(0) += 1; }
                }
            }
            for (k, v) in &model {
                prop_assert_eq!(t.get(k, stable_hash(k)), Some(v));
            }
            prop_assert_eq!(t.iter().count(), model.len());
            prop_assert_eq!(t.len(), model.len());
        }
    }
}
