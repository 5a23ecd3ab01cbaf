//! Keyed state for Sluice operators, organised by key group.
//!
//! - **[`table`]**: [`KeyedTable`], a hash table per key group of the subtask's
//!   [`KeyGroupRange`](sluice_core::KeyGroupRange); the building block of every keyed state.
//! - **[`store`]**: [`KeyedStateStore`], the named states of one operator subtask,
//!   registered once and accessed by typed handle for the current key.
//! - **[`views`]**: what user functions see of the current key's state: [`ValueState`],
//!   [`ListState`], [`MapState`], [`ReducingState`], [`AggregatingState`].
//! - **[`aggregate`]**: [`AggregateFunction`], incremental aggregation with an accumulator.
//! - **[`error`]**: [`Error`], what can go wrong when registering or accessing state.
//!
//! Keys are hashed once with [`sluice_core::stable_hash`]; the same hash picks the key group
//! and the bucket, so a state access costs one hash of the key.
//!
//! What it is *not* (yet): a disk backend or snapshots; both build on the per-key-group
//! layout kept here (see `docs/design/state.md`).
//!
//! ```
//! use sluice_core::{KeyGroupRange, stable_hash};
//! use sluice_state::KeyedStateStore;
//! let mut store = KeyedStateStore::<String>::new(KeyGroupRange::for_subtask(128, 1, 0), 128);
//! let count = store.register_value::<u64>("count").unwrap();
//! let key = "alice".to_string();
//! let hash = stable_hash(&key);
//! let mut state = store.value_state(&count, &key, hash);
//! state.update(state.value().copied().unwrap_or(0) + 1);
//! assert_eq!(store.value_state(&count, &key, hash).value(), Some(&1));
//! ```

pub mod aggregate;
pub mod backend;
pub mod error;
mod prefetch;
pub mod store;
pub mod table;
pub mod ttl;
pub mod views;

pub use aggregate::AggregateFunction;
pub use backend::KeyedStateBackend;
pub use error::{Error, Result};
pub use store::{
    AggregatingStateHandle, KeyedStateStore, ListStateHandle, MapStateHandle, ReducingStateHandle,
    StateData, StateHandle, StateKey, ValueStateHandle,
};
pub use table::KeyedTable;
pub use ttl::{StateTtlConfig, TtlUpdate};
pub use views::{AggregatingState, ListState, MapState, ReducingState, ValueState};
