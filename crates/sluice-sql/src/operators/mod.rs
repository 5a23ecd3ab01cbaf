//! The operators SQL jobs run, on [`crate::SqlBatch`]es.
//!
//! - **[`decode`]**: typed records of a connector (lines, Nexmark events) to Arrow rows.
//! - **[`calc`]**: filter and projection with vectorized DataFusion expressions (Flink's
//!   `Calc`).
//! - **[`watermark`]**: the watermark of a table's `WATERMARK FOR` declaration.
//! - **[`window_assigner`]**: the window columns of `TUMBLE`, `HOP` and `CUMULATE`.
//! - **[`window_aggregate`]**: aggregation per window and key, fired by watermarks,
//!   with its state in checkpoints by key group.
//! - **[`retracting`]**: `SUM`, `MIN` and `MAX` accumulators that retract.
//! - **[`session_aggregate`]**: aggregation per key and session window.
//! - **[`group_aggregate`]**: regular `GROUP BY` emitting a changelog.
//! - **[`join`]**: regular inner equi-joins of append-only inputs.
//! - **[`changelog_join`]**: outer, semi and anti joins, and joins of updating inputs,
//!   emitting a changelog.
//! - **[`lookup_join`]**: enrichment from a file table loaded into memory (lookup joins).
//! - **[`rank`]**: Top-N and deduplication (`ROW_NUMBER` with a rank filter), updating
//!   or per window.
//! - **[`sink`]**: rows formatted for a connector's sink.

pub mod calc;
pub mod changelog_join;
pub mod decode;
pub mod group_aggregate;
pub mod join;
pub mod keyed_state;
pub mod lookup_join;
pub mod rank;
pub mod retracting;
pub mod session_aggregate;
pub mod sink;
pub mod watermark;
pub mod window_aggregate;
pub mod window_assigner;

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};

use crate::error::{Error, Result};

/// `array` as milliseconds since the epoch (time attributes may have any precision);
/// `what` names it in the error when it is not a timestamp.
pub(crate) fn timestamps_ms(array: &ArrayRef, what: &str) -> Result<TimestampMillisecondArray> {
    let ms = match array.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, _) => Arc::clone(array),
        DataType::Timestamp(_, tz) => arrow::compute::cast(
            array,
            &DataType::Timestamp(TimeUnit::Millisecond, tz.clone()),
        )?,
        other => {
            return Err(Error::Execution(format!(
                "{what} has type {other}, not a timestamp"
            )))
        }
    };
    ms.as_primitive_opt::<TimestampMillisecondType>()
        .cloned()
        .ok_or_else(|| Error::Execution(format!("{what} is not a timestamp")))
}

/// The state of a row accumulator for a checkpoint, leaving it as it was: DataFusion's
/// `Accumulator::state` may consume the state, so a new accumulator from `make` takes it
/// back and replaces `acc`.
pub(crate) fn accumulator_state(
    acc: &mut Box<dyn datafusion_expr::Accumulator>,
    make: impl Fn() -> Result<Box<dyn datafusion_expr::Accumulator>>,
) -> Result<Vec<datafusion_common::ScalarValue>> {
    let state = acc.state()?;
    let arrays = state
        .iter()
        .map(|v| v.to_array())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut fresh = make()?;
    fresh.merge_batch(&arrays)?;
    *acc = fresh;
    Ok(state)
}

/// Expiry of idle keyed state (`table.exec.state.ttl`): an operator stamps each unit of
/// state (a group, a join key, a Top-N partition) with the processing time it was last
/// written or read, and sweeps out units idle for longer than the TTL every quarter TTL
/// (at least every 10 seconds). After a restore the stamps start again at the restore time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTtl {
    /// How long idle state lives, in milliseconds.
    pub ttl_ms: i64,
    next_sweep_ms: i64,
}

impl StateTtl {
    /// A TTL of `ttl_ms`.
    pub fn new(ttl_ms: i64) -> Self {
        StateTtl {
            ttl_ms: ttl_ms.max(1),
            next_sweep_ms: i64::MIN,
        }
    }

    /// At processing time `now_ms`: `Some(cutoff)` when a sweep is due, removing units
    /// last used before `cutoff`.
    pub fn sweep_due(&mut self, now_ms: i64) -> Option<i64> {
        if self.next_sweep_ms == i64::MIN {
            self.next_sweep_ms = now_ms + (self.ttl_ms / 4).clamp(1, 10_000);
            return None;
        }
        if now_ms < self.next_sweep_ms {
            return None;
        }
        self.next_sweep_ms = now_ms + (self.ttl_ms / 4).clamp(1, 10_000);
        Some(now_ms - self.ttl_ms)
    }
}
