//! Built-in operators of the typed API, one file each.
//!
//! Stateless ones ([`MapOperator`], [`FilterOperator`], [`FlatMapOperator`],
//! [`IdentityOperator`]) transform a batch in one pass and keep timestamps; keyed ones
//! ([`KeyedReduceOperator`], [`KeyedProcessOperator`]) keep per-key state in tables
//! partitioned by key group, and expect their input hash-partitioned by the same key.

mod co_process;
mod flat_map;
mod identity;
mod interval_join;
mod key;
mod keyed_process;
mod keyed_reduce;
mod local_reduce;
mod map;
mod process;
mod reduce_table;
mod timers;
mod timestamps;
pub mod window;

pub use co_process::{KeyedCoProcessFunction, KeyedCoProcessOperator};
pub use flat_map::{FilterOperator, FlatMapOperator};
pub use identity::IdentityOperator;
pub use interval_join::{IntervalJoinFunction, JoinFn};
pub use key::KeySelector;
pub use keyed_process::{
    KeyedContext, KeyedProcessFunction, KeyedProcessOperator, OpenContext, ProcessOutput,
};
pub use keyed_reduce::KeyedReduceOperator;
pub use local_reduce::{LocalReduceOperator, LOCAL_REDUCE_KEYS_MAX};
pub use map::MapOperator;
pub use process::{ProcessContext, ProcessFunction, ProcessOperator};
pub use timers::TimeDomain;
pub use timestamps::{TimestampFn, TimestampsAndWatermarksOperator, WatermarkSpec};

/// The result type of user functions: any error, boxed.
pub type UserResult<T = ()> = std::result::Result<T, crate::BoxError>;
