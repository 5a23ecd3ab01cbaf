//! State time-to-live (Flink's `StateTtlConfig`): a key's entry of a state with a TTL
//! expires when it was not written (or, optionally, read) for the TTL, measured in
//! processing time by the job's clock.
//!
//! Each state with a TTL keeps a last-access timestamp per key beside its values.
//! Expired entries are never returned: the store removes an expired entry when a view of
//! it is created, and [`crate::KeyedStateStore::expire`] removes every expired entry
//! (operators call it as processing time advances, so keys that are never accessed again
//! do not stay forever).

use std::time::Duration;

use crate::table::KeyedTable;

/// When an entry's time-to-live starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlUpdate {
    /// On creation and on every write (Flink's `OnCreateAndWrite`, the default).
    OnCreateAndWrite,
    /// Also on every read (Flink's `OnReadAndWrite`).
    OnReadAndWrite,
}

/// The time-to-live of a keyed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTtlConfig {
    ttl_ms: i64,
    update: TtlUpdate,
}

impl StateTtlConfig {
    /// Entries expire `ttl` after their last write.
    pub fn new(ttl: Duration) -> Self {
        StateTtlConfig {
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1),
            update: TtlUpdate::OnCreateAndWrite,
        }
    }

    /// Reads restart the time-to-live too.
    pub fn update_on_read_and_write(mut self) -> Self {
        self.update = TtlUpdate::OnReadAndWrite;
        self
    }

    /// The time-to-live in ms.
    pub fn ttl_ms(&self) -> i64 {
        self.ttl_ms
    }

    /// When the time-to-live restarts.
    pub fn update(&self) -> TtlUpdate {
        self.update
    }
}

/// The TTL bookkeeping of one state: its configuration and last-access times.
pub(crate) struct Ttl<K> {
    pub(crate) config: StateTtlConfig,
    pub(crate) stamps: KeyedTable<K, i64>,
}

/// What a view needs to restart a key's time-to-live when it writes.
pub(crate) struct TtlTouch<'a, K> {
    pub(crate) stamps: &'a mut KeyedTable<K, i64>,
    pub(crate) now_ms: i64,
}

impl<K: Eq + Clone> TtlTouch<'_, K> {
    /// The key was written: its time-to-live starts again.
    pub(crate) fn touch(&mut self, key: &K, hash: u64) {
        *self.stamps.get_or_insert_with(key, hash, || 0) = self.now_ms;
    }

    /// The key's entry was removed.
    pub(crate) fn forget(&mut self, key: &K, hash: u64) {
        self.stamps.remove(key, hash);
    }
}

/// Restarts the key's TTL after a write, if the state has one.
pub(crate) fn touch<K: Eq + Clone>(ttl: &mut Option<TtlTouch<'_, K>>, key: &K, hash: u64) {
    if let Some(t) = ttl {
        t.touch(key, hash);
    }
}

/// Drops the key's TTL stamp after its entry was removed, if the state has one.
pub(crate) fn forget<K: Eq + Clone>(ttl: &mut Option<TtlTouch<'_, K>>, key: &K, hash: u64) {
    if let Some(t) = ttl {
        t.forget(key, hash);
    }
}
