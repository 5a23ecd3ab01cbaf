//! The typed DataStream API of Sluice: what a Rust user imports to write a job.
//!
//! - **[`StreamExecutionEnvironment`]**: sources, configuration, `execute`.
//! - **[`DataStream`]**: `map`, `flat_map`, `filter`, `key_by`, `union`, partitioning
//!   and sinks.
//! - **[`WatermarkStrategy`]**: event timestamps and watermarks for a stream.
//! - **[`WindowedStream`]**: tumbling event-time windows aggregated per key.
//! - **[`KeyedStream`]**: running `reduce`/`sum`/`min`/`max` and keyed `process` with state.
//! - **[`JobHandle`]**: stop, cancel or wait for a job started with `execute_async`.
//!
//! A job runs embedded by default: one process, all cores, the same runtime that the
//! cluster deploys. What it is *not*: SQL (that is `sluice-sql`).
//!
//! ```
//! use sluice_api::prelude::*;
//! let env = StreamExecutionEnvironment::new();
//! env.set_parallelism(2).set_runtime_mode(RuntimeMode::Streaming);
//! let counts = env
//!     .from_collection(vec!["a b".to_string(), "b".to_string()])
//!     .flat_map(|line: String| line.split_whitespace().map(|w| (w.to_string(), 1u64)).collect::<Vec<_>>())
//!     .key_by(|(word, _)| word.clone())
//!     .sum(|(_, n)| n)
//!     .collect();
//! env.execute("word count").unwrap();
//! let mut final_counts: Vec<(String, u64)> = counts.take();
//! final_counts.sort();
//! assert_eq!(final_counts.last(), Some(&("b".to_string(), 2)));
//! ```

mod builder;
pub mod connected;
pub mod datastream;
pub mod environment;
pub mod handle;
pub mod join;
pub mod keyed;
pub mod time;
pub mod window;

pub use connected::{IntervalJoin, IntervalJoinBetween, KeyedConnectedStreams};
pub use datastream::{DataStream, DataStreamSink};
pub use environment::StreamExecutionEnvironment;
pub use handle::JobHandle;
pub use join::{CoGroupedStreams, TaggedUnion};
pub use keyed::KeyedStream;
pub use sluice_runtime::operators::window::TimeWindow;
pub use sluice_runtime::operators::window::{
    CountEvictor, CountTrigger, DeltaTrigger, EventTimeTrigger, Evictor, NoEvictor,
    ProcessWindowFunction, ProcessingTimeTrigger, PurgingTrigger, TimeEvictor, Trigger,
    TriggerContext, TriggerResult, WindowAssigner, WindowBuffer, WindowContext,
};
pub use time::WatermarkStrategy;
pub use window::{
    EventTimeSessionWindows, EventTimeWindows, GlobalWindows, SlidingEventTimeWindows,
    SlidingProcessingTimeWindows, TumblingEventTimeWindows, TumblingProcessingTimeWindows,
    WindowedStream,
};

pub use sluice_connectors as connectors;
pub use sluice_core::{Data, EventTime, Records};
pub use sluice_runtime as runtime;
pub use sluice_runtime::checkpoint::{
    CheckpointConfig, CheckpointStats, CheckpointingMode, RestartStrategy,
};
pub use sluice_runtime::operators::{
    KeyedCoProcessFunction, KeyedContext, KeyedProcessFunction, OpenContext, ProcessContext,
    ProcessFunction, ProcessOutput, TimeDomain, UserResult,
};
pub use sluice_runtime::{Error, JobConfig, JobResult, JobStatus, OutputTag, Result, RuntimeMode};
pub use sluice_state::{
    AggregateFunction, AggregatingState, AggregatingStateHandle, ListState, ListStateHandle,
    MapState, MapStateHandle, ReducingState, ReducingStateHandle, StateTtlConfig, TtlUpdate,
    ValueState, ValueStateHandle,
};

/// Everything a job usually needs, in one import.
pub mod prelude {
    pub use crate::{
        AggregateFunction, AggregatingStateHandle, DataStream, Error, EventTimeSessionWindows,
        JobResult, JobStatus, KeyedCoProcessFunction, KeyedContext, KeyedProcessFunction,
        KeyedStream, ListStateHandle, MapStateHandle, OpenContext, OutputTag, ProcessContext,
        ProcessFunction, ProcessOutput, ReducingStateHandle, RuntimeMode, SlidingEventTimeWindows,
        StreamExecutionEnvironment, TimeDomain, TimeWindow, TumblingEventTimeWindows, UserResult,
        ValueStateHandle, WatermarkStrategy, WindowedStream,
    };
    pub use crate::{
        CountEvictor, CountTrigger, DeltaTrigger, EventTimeTrigger, GlobalWindows,
        ProcessWindowFunction, ProcessingTimeTrigger, PurgingTrigger, SlidingProcessingTimeWindows,
        TimeEvictor, TumblingProcessingTimeWindows, WindowContext,
    };
}
