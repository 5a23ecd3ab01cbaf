//! [`WatermarkStrategy`]: how a stream gets event timestamps and watermarks.

use std::sync::Arc;
use std::time::Duration;

use sluice_runtime::operators::{TimestampFn, WatermarkSpec};
use sluice_runtime::watermark::WatermarkBound;

/// Where event time comes from and how far out of order records may arrive (Flink's
/// `WatermarkStrategy`).
///
/// ```
/// use std::time::Duration;
/// use sluice_api::{StreamExecutionEnvironment, WatermarkStrategy};
/// let env = StreamExecutionEnvironment::new();
/// let clicks = env
///     .from_collection(vec![(1_000i64, "home".to_string()), (900, "cart".to_string())])
///     .assign_timestamps_and_watermarks(
///         WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(500))
///             .with_timestamp_assigner(|(ts, _)| *ts),
///     );
/// # let _ = clicks;
/// ```
pub struct WatermarkStrategy<T> {
    pub(crate) bound: WatermarkBound,
    pub(crate) assigner: Option<TimestampFn<T>>,
    pub(crate) idle_timeout_ms: Option<i64>,
}

impl<T> Clone for WatermarkStrategy<T> {
    fn clone(&self) -> Self {
        WatermarkStrategy {
            bound: self.bound,
            assigner: self.assigner.clone(),
            idle_timeout_ms: self.idle_timeout_ms,
        }
    }
}

impl<T> std::fmt::Debug for WatermarkStrategy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatermarkStrategy")
            .field("bound", &self.bound)
            .field("assigner", &self.assigner.is_some())
            .finish()
    }
}

impl<T> WatermarkStrategy<T> {
    /// Records arrive at most `max_delay` after a newer one: the watermark trails the
    /// newest timestamp by `max_delay` (plus one millisecond).
    pub fn for_bounded_out_of_orderness(max_delay: Duration) -> Self {
        WatermarkStrategy {
            bound: WatermarkBound::OutOfOrderness(max_delay),
            assigner: None,
            idle_timeout_ms: None,
        }
    }

    /// Timestamps only increase within each parallel subtask.
    pub fn for_monotonous_timestamps() -> Self {
        WatermarkStrategy {
            bound: WatermarkBound::Monotonous,
            assigner: None,
            idle_timeout_ms: None,
        }
    }

    /// Takes each record's timestamp (milliseconds since the Unix epoch) from `f`.
    /// Without an assigner, records keep the timestamps they already carry.
    pub fn with_timestamp_assigner(
        mut self,
        f: impl Fn(&T) -> i64 + Send + Sync + 'static,
    ) -> Self {
        self.assigner = Some(Arc::new(f));
        self
    }

    /// Declares an input (a parallel subtask, or a source split) idle after `timeout` of
    /// processing time without records, so that it stops holding back the watermark;
    /// its next record makes it active again (Flink's `withIdleness`).
    pub fn with_idleness(mut self, timeout: Duration) -> Self {
        self.idle_timeout_ms = Some(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX));
        self
    }

    /// The strategy as the runtime uses it.
    pub(crate) fn spec(&self) -> WatermarkSpec<T> {
        WatermarkSpec {
            assigner: self.assigner.clone(),
            bound: self.bound,
            idle_timeout_ms: self.idle_timeout_ms,
        }
    }
}
