//! The operators SQL jobs run, on [`crate::SqlBatch`]es.
//!
//! - **[`decode`]**: typed records of a connector (lines, Nexmark events) to Arrow rows.
//! - **[`calc`]**: filter and projection with vectorized DataFusion expressions (Flink's
//!   `Calc`).
//! - **[`watermark`]**: the watermark of a table's `WATERMARK FOR` declaration.
//! - **[`window_assigner`]**: the window columns of `TUMBLE`, `HOP` and `CUMULATE`.
//! - **[`window_aggregate`]**: aggregation per window and key, fired by watermarks,
//!   with its state in checkpoints by key group.
//! - **[`group_aggregate`]**: regular `GROUP BY` emitting a changelog.
//! - **[`join`]**: regular inner equi-joins of append-only inputs.
//! - **[`sink`]**: rows formatted for a connector's sink.

pub mod calc;
pub mod decode;
pub mod group_aggregate;
pub mod join;
pub mod keyed_state;
pub mod sink;
pub mod watermark;
pub mod window_aggregate;
pub mod window_assigner;
