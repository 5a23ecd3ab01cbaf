//! [`KeyedStateBackend`]: what the runtime needs from a keyed-state backend besides the
//! typed per-key access of user functions: its key groups, snapshots and restores one key
//! group at a time (so that state can be redistributed by key group when a job restarts
//! with another parallelism), expiry, and its size.
//!
//! [`crate::KeyedStateStore`] is the in-memory backend; an LSM backend for state larger
//! than memory implements the same trait. A key group's snapshot is self-describing: for
//! every state, its name, kind and entries (and TTL stamps), serialized with `postcard`
//! (a compact, documented serde format). States are restored when they are registered,
//! so a snapshot can be restored before the user function's `open` runs.

use serde::{Deserialize, Serialize};
use sluice_core::{KeyGroup, KeyGroupRange};

use crate::error::{Error, Result};

/// A keyed-state backend of one operator subtask.
pub trait KeyedStateBackend: Send {
    /// The key groups this backend holds.
    fn key_group_range(&self) -> KeyGroupRange;

    /// Every state's entries of key group `group`, serialized.
    ///
    /// # Errors
    /// [`Error::Snapshot`] when a value cannot be serialized.
    fn snapshot_group(&self, group: KeyGroup) -> Result<Vec<u8>>;

    /// Adds the entries of a key group written by [`KeyedStateBackend::snapshot_group`]
    /// (of this or another subtask: key groups move when parallelism changes).
    ///
    /// # Errors
    /// [`Error::Snapshot`] for unreadable bytes, [`Error::RestoreMismatch`] when a state
    /// name is registered as another kind.
    fn restore_group(&mut self, group: KeyGroup, bytes: &[u8]) -> Result<()>;

    /// Removes entries whose time-to-live ran out by `now_ms`; returns how many.
    fn expire(&mut self, now_ms: i64) -> usize;

    /// Number of entries (keys with a value) over all states.
    fn entries(&self) -> usize;
}

/// The snapshot of one state in one key group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StateBlob {
    pub(crate) name: String,
    pub(crate) kind: String,
    /// `postcard` of `Vec<(K, S)>`.
    pub(crate) entries: Vec<u8>,
    /// `postcard` of `Vec<(K, i64)>`: last-access times, for states with a TTL.
    pub(crate) ttl: Option<Vec<u8>>,
}

/// The snapshot of one key group: all its states.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct GroupBlob {
    pub(crate) states: Vec<StateBlob>,
}

/// Serializes `value` for the snapshot of state `name`.
pub(crate) fn encode<T: Serialize + ?Sized>(name: &str, value: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(|e| Error::Snapshot {
        name: name.to_string(),
        action: "written to",
        message: e.to_string(),
    })
}

/// Deserializes a value of the snapshot of state `name`.
pub(crate) fn decode<'a, T: Deserialize<'a>>(name: &str, bytes: &'a [u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::Snapshot {
        name: name.to_string(),
        action: "read from",
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::Duration;

    use proptest::prelude::*;
    use sluice_core::{key_group_for, stable_hash, KeyGroupRange, ManualClock};

    use super::*;
    use crate::ttl::StateTtlConfig;
    use crate::KeyedStateStore;

    const MAX: u32 = 128;

    /// Registers the states of the test "job" in `store`.
    fn register(
        store: &mut KeyedStateStore<u64>,
    ) -> (
        crate::ValueStateHandle<String>,
        crate::ListStateHandle<u32>,
        crate::MapStateHandle<String, i64>,
    ) {
        let v = store.register_value::<String>("name").unwrap();
        let l = store.register_list::<u32>("seen").unwrap();
        let m = store.register_map::<String, i64>("totals").unwrap();
        (v, l, m)
    }

    fn snapshot_all(store: &KeyedStateStore<u64>) -> Vec<(KeyGroup, Vec<u8>)> {
        store
            .key_group_range()
            .iter()
            .map(|g| (g, store.snapshot_group(g).unwrap()))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

        /// Snapshot one store, restore its key groups into `p` stores (a rescale): every
        /// key's state is where its key group went, and equal to what was written.
        #[test]
        fn snapshots_restore_by_key_group_at_any_parallelism(
            ops in proptest::collection::vec((0u64..300, 0u32..1000), 0..400),
            p in 1u32..5,
            register_first in any::<bool>(),
        ) {
            let mut source = KeyedStateStore::<u64>::new(KeyGroupRange::for_subtask(MAX, 1, 0), MAX);
            let (v, l, m) = register(&mut source);
            let mut model: HashMap<u64, (String, Vec<u32>, i64)> = HashMap::new();
            for &(k, x) in &ops {
                let h = stable_hash(&k);
                source.value_state(&v, &k, h).update(format!("n{x}"));
                source.list_state(&l, &k, h).add(x);
                let total = source.map_state(&m, &k, h).get(&"t".to_string()).copied().unwrap_or(0) + i64::from(x);
                source.map_state(&m, &k, h).put("t".into(), total);
                let e = model.entry(k).or_default();
                e.0 = format!("n{x}");
                e.1.push(x);
                e.2 += i64::from(x);
            }
            let blobs = snapshot_all(&source);
            for subtask in 0..p {
                let range = KeyGroupRange::for_subtask(MAX, p, subtask);
                let mut target = KeyedStateStore::<u64>::new(range, MAX);
                // States may be registered before or after the restore.
                let handles = register_first.then(|| register(&mut target));
                for (g, bytes) in &blobs {
                    if range.contains(*g) {
                        target.restore_group(*g, bytes).unwrap();
                    }
                }
                let (v, l, m) = handles.unwrap_or_else(|| register(&mut target));
                for (k, (name, seen, total)) in &model {
                    if !range.contains(key_group_for(k, MAX)) {
                        continue;
                    }
                    let h = stable_hash(k);
                    let got_name = target.value_state(&v, k, h).value().cloned();
                    prop_assert_eq!(got_name.as_ref(), Some(name));
                    let got_seen = target.list_state(&l, k, h).get().to_vec();
                    prop_assert_eq!(&got_seen, seen);
                    let got_total = target.map_state(&m, k, h).get(&"t".to_string()).copied();
                    prop_assert_eq!(got_total, Some(*total));
                }
                let expected = model.keys().filter(|k| range.contains(key_group_for(*k, MAX))).count();
                prop_assert_eq!(target.entries(), expected * 3);
            }
        }
    }

    #[test]
    fn ttl_stamps_survive_a_restore_in_any_order() {
        for restore_first in [false, true] {
            let clock = ManualClock::new(0);
            let mut source =
                KeyedStateStore::<u64>::new(KeyGroupRange::for_subtask(MAX, 1, 0), MAX);
            source.set_clock(Arc::new(clock.clone()));
            let h = source.register_value::<u32>("v").unwrap();
            source.enable_ttl(&h, StateTtlConfig::new(Duration::from_millis(100)));
            source.value_state(&h, &7, stable_hash(&7u64)).update(1);
            let blobs = snapshot_all(&source);
            clock.advance(Duration::from_millis(50));

            let mut target =
                KeyedStateStore::<u64>::new(KeyGroupRange::for_subtask(MAX, 1, 0), MAX);
            target.set_clock(Arc::new(clock.clone()));
            if restore_first {
                for (g, bytes) in &blobs {
                    target.restore_group(*g, bytes).unwrap();
                }
            }
            let h = target.register_value::<u32>("v").unwrap();
            if !restore_first {
                for (g, bytes) in &blobs {
                    target.restore_group(*g, bytes).unwrap();
                }
            }
            target.enable_ttl(&h, StateTtlConfig::new(Duration::from_millis(100)));
            clock.advance(Duration::from_millis(49));
            assert_eq!(
                target.value_state(&h, &7, stable_hash(&7u64)).value(),
                Some(&1)
            );
            clock.advance(Duration::from_millis(1));
            assert_eq!(
                target.value_state(&h, &7, stable_hash(&7u64)).value(),
                None,
                "written at 0, expired at 100 (restore first: {restore_first})"
            );
        }
    }

    #[test]
    fn unregistered_restored_state_stays_in_its_key_group() {
        let mut source = KeyedStateStore::<u64>::new(KeyGroupRange::for_subtask(MAX, 1, 0), MAX);
        let h = source.register_value::<u32>("old").unwrap();
        for k in 0..50u64 {
            source.value_state(&h, &k, stable_hash(&k)).update(k as u32);
        }
        let blobs = snapshot_all(&source);
        // A job that no longer registers "old" carries it over, group by group.
        let mut middle = KeyedStateStore::<u64>::new(KeyGroupRange::for_subtask(MAX, 1, 0), MAX);
        for (g, bytes) in &blobs {
            middle.restore_group(*g, bytes).unwrap();
        }
        let again = snapshot_all(&middle);
        assert_eq!(again, blobs, "each group carries exactly its own entries");
        let mut target = KeyedStateStore::<u64>::new(KeyGroupRange::for_subtask(MAX, 2, 1), MAX);
        for (g, bytes) in &again {
            if target.key_group_range().contains(*g) {
                target.restore_group(*g, bytes).unwrap();
            }
        }
        target.register_value::<u32>("old").unwrap();
        let expected = (0..50u64)
            .filter(|k| target.key_group_range().contains(key_group_for(k, MAX)))
            .count();
        assert_eq!(target.entries(), expected);
    }

    #[test]
    fn ttl_stamps_survive_a_restore() {
        let clock = ManualClock::new(0);
        let mut source = KeyedStateStore::<u64>::new(KeyGroupRange::for_subtask(MAX, 1, 0), MAX);
        source.set_clock(Arc::new(clock.clone()));
        let h = source.register_value::<u32>("v").unwrap();
        source.enable_ttl(&h, StateTtlConfig::new(Duration::from_millis(100)));
        source.value_state(&h, &7, stable_hash(&7u64)).update(1);
        let blobs = snapshot_all(&source);

        let mut target = KeyedStateStore::<u64>::new(KeyGroupRange::for_subtask(MAX, 1, 0), MAX);
        target.set_clock(Arc::new(clock.clone()));
        let h = target.register_value::<u32>("v").unwrap();
        target.enable_ttl(&h, StateTtlConfig::new(Duration::from_millis(100)));
        for (g, bytes) in &blobs {
            target.restore_group(*g, bytes).unwrap();
        }
        clock.advance(Duration::from_millis(99));
        assert_eq!(
            target.value_state(&h, &7, stable_hash(&7u64)).value(),
            Some(&1)
        );
        clock.advance(Duration::from_millis(1));
        assert_eq!(target.value_state(&h, &7, stable_hash(&7u64)).value(), None);
    }

    #[test]
    fn restoring_a_state_as_another_kind_is_an_error() {
        let mut source = KeyedStateStore::<u64>::new(KeyGroupRange::for_subtask(MAX, 1, 0), MAX);
        let h = source.register_value::<u32>("s").unwrap();
        source.value_state(&h, &3, stable_hash(&3u64)).update(1);
        let group = key_group_for(&3u64, MAX);
        let bytes = source.snapshot_group(group).unwrap();

        let mut target = KeyedStateStore::<u64>::new(KeyGroupRange::for_subtask(MAX, 1, 0), MAX);
        target.register_list::<u32>("s").unwrap();
        let err = target.restore_group(group, &bytes).unwrap_err().to_string();
        assert!(err.contains("must keep each state's kind"), "{err}");
        let mut other = KeyedStateStore::<u64>::new(KeyGroupRange::for_subtask(MAX, 2, 1), MAX);
        let outside = (0..MAX)
            .map(KeyGroup)
            .find(|g| !other.key_group_range().contains(*g))
            .unwrap();
        assert!(other.restore_group(outside, &bytes).is_err());
        assert!(other
            .restore_group(KeyGroup(MAX - 1), b"\xff\xff garbage")
            .is_err());
    }
}
