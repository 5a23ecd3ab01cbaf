//! [`JobConfig`]: the knobs of one job run, with defaults that suit most jobs.

use std::sync::Arc;

use sluice_core::{Clock, SystemClock, DEFAULT_MAX_PARALLELISM};

use crate::checkpoint::CheckpointConfig;

/// How keyed aggregations report results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuntimeMode {
    /// Continuous results: a running aggregation emits an updated value for every record.
    #[default]
    Streaming,
    /// Results once, at the end of a bounded input: a running aggregation emits one final
    /// value per key (Flink's `RuntimeExecutionMode.BATCH`). Every source must be bounded.
    Batch,
}

/// Configuration of a job run.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Parallelism of operators that do not set their own; default: the number of cores.
    pub default_parallelism: u32,
    /// Number of key groups (maximum parallelism of keyed operators); default 128.
    pub max_parallelism: u32,
    /// Target number of records per batch on a channel; default 1024.
    pub batch_size: usize,
    /// Capacity of each channel in batches; default 4. With `batch_size` this bounds the
    /// memory held between two tasks.
    pub channel_capacity: usize,
    /// Streaming or batch results; default streaming.
    pub runtime_mode: RuntimeMode,
    /// The processing-time clock; default the system clock.
    pub clock: Arc<dyn Clock>,
    /// Whether tasks spin briefly before parking on an empty or full channel; default
    /// (`None`): when the job has no more tasks than the machine has cores.
    pub spin_before_park: Option<bool>,
    /// Checkpointing, restarts and recovery; `None` (the default): no checkpoints, and a
    /// failure fails the job.
    pub checkpointing: Option<CheckpointConfig>,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            default_parallelism: std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
            max_parallelism: DEFAULT_MAX_PARALLELISM,
            batch_size: 1024,
            channel_capacity: 4,
            runtime_mode: RuntimeMode::Streaming,
            clock: Arc::new(SystemClock),
            spin_before_park: None,
            checkpointing: None,
        }
    }
}
