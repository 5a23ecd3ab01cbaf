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

use serde::de::DeserializeOwned;
use serde::Serialize;
use sluice_core::{stable_hash, Clock, KeyGroup, KeyGroupRange, SystemClock};

use crate::backend::{decode, encode, GroupBlob, KeyedStateBackend, StateBlob};

use crate::aggregate::AggregateFunction;
use crate::error::{Error, Result};
use crate::table::KeyedTable;
use crate::ttl::{StateTtlConfig, Ttl, TtlTouch, TtlUpdate};
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

        impl<$($p),+> StateHandle for $name<$($p),+> {
            fn index(&self) -> usize {
                self.index
            }
        }
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

impl<V> StateHandle for ReducingStateHandle<V> {
    fn index(&self) -> usize {
        self.index
    }
}

impl<IN, ACC, OUT> StateHandle for AggregatingStateHandle<IN, ACC, OUT> {
    fn index(&self) -> usize {
        self.index
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

/// What a state may hold: values that are sent between threads and written to snapshots.
pub trait StateData: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> StateData for T {}

/// What a state may be keyed by.
pub trait StateKey: Hash + Eq + Clone + Serialize + DeserializeOwned + Send + 'static {}

impl<T: Hash + Eq + Clone + Serialize + DeserializeOwned + Send + 'static> StateKey for T {}

/// Writes the entries of `group` of a `KeyedTable<K, S>` (type-erased).
type SnapshotFn = fn(&(dyn Any + Send), KeyGroup, &str) -> Result<Vec<u8>>;
/// Adds entries written by a [`SnapshotFn`] to a `KeyedTable<K, S>` (type-erased).
type RestoreFn = fn(&mut (dyn Any + Send), &[u8], &str) -> Result<()>;

fn snapshot_entries<K: StateKey, S: StateData>(
    table: &(dyn Any + Send),
    group: KeyGroup,
    name: &str,
) -> Result<Vec<u8>> {
    let entries: Vec<(&K, &S)> = table
        .downcast_ref::<KeyedTable<K, S>>()
        .map(|t| t.iter_group(group).collect())
        .unwrap_or_default();
    encode(name, &entries)
}

fn table_len<K: StateKey, S: StateData>(table: &(dyn Any + Send)) -> usize {
    table
        .downcast_ref::<KeyedTable<K, S>>()
        .map_or(0, KeyedTable::len)
}

fn restore_entries<K: StateKey, S: StateData>(
    table: &mut (dyn Any + Send),
    bytes: &[u8],
    name: &str,
) -> Result<()> {
    let entries: Vec<(K, S)> = decode(name, bytes)?;
    if let Some(t) = table.downcast_mut::<KeyedTable<K, S>>() {
        for (key, value) in entries {
            let hash = stable_hash(&key);
            if !t.key_group_range().contains(t.key_group_of(hash)) {
                return Err(Error::Snapshot {
                    name: name.to_string(),
                    action: "read from",
                    message: "a restored key belongs to another key group: the key type changed since the snapshot".into(),
                });
            }
            t.insert(key, hash, value);
        }
    }
    Ok(())
}

struct RegisteredState<K> {
    name: String,
    /// Kind and stored type, e.g. "list state of alloc::string::String".
    description: String,
    /// Kind alone ("value state", ...), as recorded in snapshots.
    kind: &'static str,
    table: Box<dyn Any + Send>,
    snapshot: SnapshotFn,
    restore: RestoreFn,
    /// Number of keys with a value (type-erased `KeyedTable::len`).
    len: fn(&(dyn Any + Send)) -> usize,
    /// Removes this state's entries of one key (type-erased `KeyedTable::remove`).
    remove: fn(&mut (dyn Any + Send), &K, u64),
    ttl: Option<Ttl<K>>,
    /// Restored TTL stamps of a state whose TTL is not enabled yet.
    pending_stamps: Vec<(K, i64)>,
}

fn remove_entry<K: Eq + Clone + 'static, S: 'static>(
    table: &mut (dyn Any + Send),
    key: &K,
    hash: u64,
) {
    if let Some(t) = table.downcast_mut::<KeyedTable<K, S>>() {
        t.remove(key, hash);
    }
}

/// Anything that names a registered state (for [`KeyedStateStore::enable_ttl`]).
pub trait StateHandle {
    /// The state's index in its store.
    fn index(&self) -> usize;
}

/// The keyed states of one operator subtask, all over the same key groups.
pub struct KeyedStateStore<K> {
    range: KeyGroupRange,
    max_parallelism: u32,
    states: Vec<RegisteredState<K>>,
    by_name: HashMap<String, usize>,
    clock: Arc<dyn Clock>,
    /// Restored entries of states not registered yet (by key group), applied when they
    /// are; snapshots carry them over unchanged until then.
    pending: Vec<(KeyGroup, StateBlob)>,
}

impl<K> std::fmt::Debug for KeyedStateStore<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedStateStore")
            .field("range", &self.range)
            .field("states", &self.by_name.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<K: StateKey> KeyedStateStore<K> {
    /// An empty store for the key groups in `range` out of `max_parallelism`.
    pub fn new(range: KeyGroupRange, max_parallelism: u32) -> Self {
        KeyedStateStore {
            range,
            max_parallelism,
            states: Vec::new(),
            by_name: HashMap::new(),
            clock: Arc::new(SystemClock),
            pending: Vec::new(),
        }
    }

    /// Measures state time-to-live with `clock` (the job's processing-time clock).
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    /// Gives the state of `handle` a time-to-live: its entries expire `config` after
    /// their last write (or read) and are never returned after that.
    pub fn enable_ttl(&mut self, handle: &impl StateHandle, config: StateTtlConfig) {
        let (range, max) = (self.range, self.max_parallelism);
        if let Some(state) = self.states.get_mut(handle.index()) {
            let ttl = state.ttl.get_or_insert_with(|| Ttl {
                config,
                stamps: KeyedTable::new(range, max),
            });
            ttl.config = config;
            // Stamps restored before the TTL was enabled.
            for (key, stamp) in state.pending_stamps.drain(..) {
                let hash = stable_hash(&key);
                ttl.stamps.insert(key, hash, stamp);
            }
        }
    }

    /// Removes every entry whose time-to-live ran out by `now_ms`; returns how many.
    pub fn expire(&mut self, now_ms: i64) -> usize {
        let mut removed = 0;
        for state in &mut self.states {
            let Some(ttl) = state.ttl.as_mut() else {
                continue;
            };
            let expired: Vec<K> = ttl
                .stamps
                .iter()
                .filter(|(_, &t)| now_ms.saturating_sub(t) >= ttl.config.ttl_ms())
                .map(|(k, _)| k.clone())
                .collect();
            for key in expired {
                let hash = stable_hash(&key);
                ttl.stamps.remove(&key, hash);
                (state.remove)(state.table.as_mut(), &key, hash);
                removed += 1;
            }
        }
        removed
    }

    /// The key groups this store holds.
    pub fn key_group_range(&self) -> KeyGroupRange {
        self.range
    }

    /// Registers (or finds again) state `name` of `kind` storing an `S` per key.
    fn register<S: StateData>(&mut self, name: &str, kind: &'static str) -> Result<usize> {
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
            kind,
            table: Box::new(KeyedTable::<K, S>::new(self.range, self.max_parallelism)),
            snapshot: snapshot_entries::<K, S>,
            restore: restore_entries::<K, S>,
            len: table_len::<K, S>,
            remove: remove_entry::<K, S>,
            ttl: None,
            pending_stamps: Vec::new(),
        });
        self.by_name.insert(name.to_string(), index);
        let pending: Vec<(KeyGroup, StateBlob)> = {
            let (mine, others) = std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|(_, b)| b.name == name);
            self.pending = others;
            mine
        };
        for (_, blob) in pending {
            self.restore_blob(index, blob)?;
        }
        Ok(index)
    }

    /// Registers (or finds again) the value state `name` holding a `V` per key.
    ///
    /// # Errors
    /// [`Error::TypeMismatch`] if `name` was registered as another kind or type.
    pub fn register_value<V: StateData>(&mut self, name: &str) -> Result<ValueStateHandle<V>> {
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
    pub fn register_list<V: StateData>(&mut self, name: &str) -> Result<ListStateHandle<V>> {
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
        UK: StateKey,
        UV: StateData,
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
    pub fn register_reducing<V: StateData>(
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
        ACC: StateData,
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

    /// The table of state `index` for `key`, with an expired entry removed first, and the
    /// TTL bookkeeping the view needs.
    fn entry<'a, S: Send + 'static>(
        &'a mut self,
        index: usize,
        key: &K,
        hash: u64,
    ) -> (&'a mut KeyedTable<K, S>, Option<TtlTouch<'a, K>>)
    where
        K: Hash,
    {
        let now_ms = if self.states[index].ttl.is_some() {
            self.clock.now_ms()
        } else {
            0
        };
        let state = &mut self.states[index];
        let name = &state.name;
        let Some(table) = state.table.downcast_mut::<KeyedTable<K, S>>() else {
            panic!("state handle for `{name}` used with a store that did not issue it");
        };
        let Some(ttl) = state.ttl.as_mut() else {
            return (table, None);
        };
        if let Some(&stamp) = ttl.stamps.get(key, hash) {
            if now_ms.saturating_sub(stamp) >= ttl.config.ttl_ms() {
                table.remove(key, hash);
                ttl.stamps.remove(key, hash);
            } else if ttl.config.update() == TtlUpdate::OnReadAndWrite {
                if let Some(s) = ttl.stamps.get_mut(key, hash) {
                    *s = now_ms;
                }
            }
        }
        (
            table,
            Some(TtlTouch {
                stamps: &mut ttl.stamps,
                now_ms,
            }),
        )
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
        let (table, ttl) = self.entry(handle.index, key, hash);
        ValueState {
            table,
            key,
            hash,
            ttl,
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
        let (table, ttl) = self.entry(handle.index, key, hash);
        ListState {
            table,
            key,
            hash,
            ttl,
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
        let (table, ttl) = self.entry(handle.index, key, hash);
        MapState {
            table,
            key,
            hash,
            ttl,
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
        let (table, ttl) = self.entry(handle.index, key, hash);
        ReducingState {
            table,
            reduce: &handle.reduce,
            key,
            hash,
            ttl,
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
        let (table, ttl) = self.entry(handle.index, key, hash);
        AggregatingState {
            table,
            function: &handle.function,
            key,
            hash,
            ttl,
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

impl<K: StateKey> KeyedStateStore<K> {
    /// Adds the restored entries of `blob` to state `index`.
    fn restore_blob(&mut self, index: usize, blob: StateBlob) -> Result<()> {
        let state = &mut self.states[index];
        if state.kind != blob.kind {
            return Err(Error::RestoreMismatch {
                name: blob.name,
                in_snapshot: blob.kind,
                registered: state.kind.to_string(),
            });
        }
        (state.restore)(state.table.as_mut(), &blob.entries, &blob.name)?;
        if let Some(bytes) = blob.ttl.as_ref() {
            let stamps: Vec<(K, i64)> = decode(&blob.name, bytes)?;
            match state.ttl.as_mut() {
                Some(ttl) => {
                    for (key, stamp) in stamps {
                        let hash = stable_hash(&key);
                        ttl.stamps.insert(key, hash, stamp);
                    }
                }
                // The TTL is enabled after registration: keep the stamps until then.
                None => state.pending_stamps.extend(stamps),
            }
        }
        Ok(())
    }
}

impl<K: StateKey> KeyedStateBackend for KeyedStateStore<K> {
    fn key_group_range(&self) -> KeyGroupRange {
        self.range
    }

    fn snapshot_group(&self, group: KeyGroup) -> Result<Vec<u8>> {
        let mut blob = GroupBlob::default();
        for state in &self.states {
            let ttl = match &state.ttl {
                Some(ttl) => {
                    let stamps: Vec<(&K, &i64)> = ttl.stamps.iter_group(group).collect();
                    Some(encode(&state.name, &stamps)?)
                }
                None => None,
            };
            blob.states.push(StateBlob {
                name: state.name.clone(),
                kind: state.kind.to_string(),
                entries: (state.snapshot)(state.table.as_ref(), group, &state.name)?,
                ttl,
            });
        }
        // States restored but not registered again are carried over unchanged.
        blob.states.extend(
            self.pending
                .iter()
                .filter(|(g, _)| *g == group)
                .map(|(_, b)| b.clone()),
        );
        encode("key group", &blob)
    }

    fn restore_group(&mut self, group: KeyGroup, bytes: &[u8]) -> Result<()> {
        if !self.range.contains(group) {
            return Err(Error::Snapshot {
                name: format!("key group {}", group.0),
                action: "read from",
                message: format!(
                    "the key group is not in this subtask's range {:?}",
                    self.range
                ),
            });
        }
        let blob: GroupBlob = decode("key group", bytes)?;
        for state in blob.states {
            match self.by_name.get(&state.name).copied() {
                Some(index) => self.restore_blob(index, state)?,
                None => self.pending.push((group, state)),
            }
        }
        Ok(())
    }

    fn expire(&mut self, now_ms: i64) -> usize {
        KeyedStateStore::expire(self, now_ms)
    }

    fn entries(&self) -> usize {
        self.states.iter().map(|s| (s.len)(s.table.as_ref())).sum()
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

#[cfg(test)]
mod ttl_tests {
    use super::*;
    use sluice_core::{stable_hash, ManualClock};
    use std::time::Duration;

    fn store(clock: &ManualClock) -> KeyedStateStore<u64> {
        let mut s = KeyedStateStore::new(KeyGroupRange::for_subtask(128, 1, 0), 128);
        s.set_clock(Arc::new(clock.clone()));
        s
    }

    #[test]
    fn entries_expire_after_their_last_write() {
        let clock = ManualClock::new(1_000);
        let mut s = store(&clock);
        let h = s.register_value::<u32>("v").unwrap();
        s.enable_ttl(&h, StateTtlConfig::new(Duration::from_millis(100)));
        let (k, hash) = (7u64, stable_hash(&7u64));
        s.value_state(&h, &k, hash).update(1);
        clock.advance(Duration::from_millis(60));
        assert_eq!(
            s.value_state(&h, &k, hash).value(),
            Some(&1),
            "reads do not extend"
        );
        clock.advance(Duration::from_millis(40));
        assert_eq!(
            s.value_state(&h, &k, hash).value(),
            None,
            "expired at 100 ms"
        );
        // A write starts a new life.
        s.value_state(&h, &k, hash).update(2);
        clock.advance(Duration::from_millis(99));
        assert_eq!(s.value_state(&h, &k, hash).value(), Some(&2));
    }

    #[test]
    fn reads_extend_the_life_when_configured() {
        let clock = ManualClock::new(0);
        let mut s = store(&clock);
        let h = s.register_list::<u32>("l").unwrap();
        s.enable_ttl(
            &h,
            StateTtlConfig::new(Duration::from_millis(100)).update_on_read_and_write(),
        );
        let (k, hash) = (1u64, stable_hash(&1u64));
        s.list_state(&h, &k, hash).add(5);
        for _ in 0..5 {
            clock.advance(Duration::from_millis(80));
            assert_eq!(s.list_state(&h, &k, hash).get(), &[5]);
        }
        clock.advance(Duration::from_millis(100));
        assert!(s.list_state(&h, &k, hash).get().is_empty());
    }

    #[test]
    fn expire_removes_entries_nobody_reads_again() {
        let clock = ManualClock::new(0);
        let mut s = store(&clock);
        let ttl = s.register_map::<u32, u32>("m").unwrap();
        let keep = s.register_value::<u32>("no-ttl").unwrap();
        s.enable_ttl(&ttl, StateTtlConfig::new(Duration::from_millis(10)));
        for k in 0..50u64 {
            let hash = stable_hash(&k);
            s.map_state(&ttl, &k, hash).put(1, 2);
            s.value_state(&keep, &k, hash).update(3);
        }
        assert_eq!(s.expire(5), 0);
        clock.advance(Duration::from_millis(10));
        assert_eq!(s.expire(10), 50);
        assert_eq!(s.table_mut(&keep).len(), 50, "states without a TTL stay");
        let k = 3u64;
        assert!(s.map_state(&ttl, &k, stable_hash(&k)).is_empty());
    }
}
