//! The vocabulary every other Sluice crate speaks. No I/O lives here.
//!
//! - **[`time`]**: [`EventTime`], [`Watermark`] and the [`Clock`] abstraction
//!   ([`SystemClock`], [`ManualClock`]) through which all processing time is read.
//! - **[`event`]**: [`StreamEvent`], the one enum that travels on channels: data batches
//!   and in-band control events (watermarks, checkpoint barriers, end of stream).
//! - **[`batch`]**: the [`Batch`] trait and [`Records`], the batch container of the typed API.
//! - **[`key`]**: stable key hashing, [`KeyGroup`] and [`KeyGroupRange`], the unit by which
//!   keyed state is partitioned, snapshotted and redistributed.
//! - **[`ids`]**: newtype identifiers ([`OperatorId`], [`SubtaskIndex`], ...).
//! - **[`data`]**: the [`Data`] bound on every record type of the typed API.
//!
//! What it is *not*: a runtime. Nothing here spawns threads, opens files or sockets.
//!
//! ```
//! use sluice_core::{key_group_for, operator_index_for_key_group, Records, Batch};
//! let batch = Records::from(vec![1, 2, 3]);
//! assert_eq!(batch.len(), 3);
//! let group = key_group_for(&"user-42", 128);
//! assert!(operator_index_for_key_group(group, 128, 4) < 4);
//! ```

pub mod batch;
pub mod data;
pub mod event;
pub mod ids;
pub mod key;
pub mod time;

pub use batch::{Batch, Records, TwoInputBatch};
pub use data::Data;
pub use event::{BarrierAlignment, CheckpointBarrier, CheckpointId, StreamEvent, WatermarkStatus};
pub use ids::{JobId, OperatorId, SubtaskIndex};
pub use key::{
    key_group_for, key_group_for_hash, operator_index_for_key_group, stable_hash, KeyGroup,
    KeyGroupRange, StableHasher, DEFAULT_MAX_PARALLELISM,
};
pub use time::{Clock, EventTime, ManualClock, SystemClock, Watermark};
