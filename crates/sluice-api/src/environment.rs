//! [`StreamExecutionEnvironment`]: where a job is defined, configured and executed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use sluice_core::Data;
use sluice_runtime::factories::SourceNode;
use sluice_runtime::graph::{JobGraph, NodeKind};
use sluice_runtime::plan::plan;
use sluice_runtime::source::Source;
use sluice_runtime::{JobConfig, JobControl, JobResult, LocalExecutor, Result, RuntimeMode};

use sluice_connectors::{CollectionSource, GeneratorSource, SocketTextSource, TextFileSource};

use crate::builder::GraphBuilder;
use crate::datastream::DataStream;
use crate::handle::JobHandle;
use crate::time::WatermarkStrategy;
use sluice_runtime::checkpoint::CheckpointConfig;

/// Defines and runs a streaming job.
///
/// ```
/// use sluice_api::StreamExecutionEnvironment;
/// let env = StreamExecutionEnvironment::new();
/// let out = env.from_collection(vec![1, 2, 3]).map(|x| x * 10).collect();
/// env.execute("times ten").unwrap();
/// let mut values = out.take();
/// values.sort();
/// assert_eq!(values, vec![10, 20, 30]);
/// ```
#[derive(Clone)]
pub struct StreamExecutionEnvironment {
    pub(crate) builder: Arc<Mutex<GraphBuilder>>,
    config: Arc<Mutex<JobConfig>>,
    handle_ctrl_c: Arc<Mutex<bool>>,
}

impl std::fmt::Debug for StreamExecutionEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamExecutionEnvironment")
            .field(
                "config",
                &*self.config.lock().unwrap_or_else(PoisonError::into_inner),
            )
            .finish()
    }
}

impl Default for StreamExecutionEnvironment {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamExecutionEnvironment {
    /// An environment running jobs embedded in this process, on all cores by default.
    pub fn new() -> Self {
        Self::with_config(JobConfig::default())
    }

    /// An environment with an explicit configuration.
    pub fn with_config(config: JobConfig) -> Self {
        StreamExecutionEnvironment {
            builder: Arc::new(Mutex::new(GraphBuilder::default())),
            config: Arc::new(Mutex::new(config)),
            handle_ctrl_c: Arc::new(Mutex::new(true)),
        }
    }

    /// Runs `f` on the job under construction.
    pub(crate) fn with_builder<R>(&self, f: impl FnOnce(&mut GraphBuilder) -> R) -> R {
        f(&mut self.builder.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn with_config_mut(&self, f: impl FnOnce(&mut JobConfig)) -> &Self {
        f(&mut self.config.lock().unwrap_or_else(PoisonError::into_inner));
        self
    }

    /// The current configuration.
    pub fn config(&self) -> JobConfig {
        self.config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Parallelism of operators created from now on that do not set their own.
    pub fn set_parallelism(&self, parallelism: u32) -> &Self {
        self.with_config_mut(|c| c.default_parallelism = parallelism)
    }

    /// Number of key groups (the upper bound of keyed parallelism, fixed for the life of
    /// a job's state). Default 128.
    pub fn set_max_parallelism(&self, max_parallelism: u32) -> &Self {
        self.with_config_mut(|c| c.max_parallelism = max_parallelism)
    }

    /// Streaming (continuous updates) or batch (final results of bounded inputs). Set it
    /// before defining the job: keyed aggregations defined in batch mode pre-aggregate
    /// before their shuffle.
    pub fn set_runtime_mode(&self, mode: RuntimeMode) -> &Self {
        self.with_config_mut(|c| c.runtime_mode = mode)
    }

    /// Target records per batch on channels. Default 1024.
    pub fn set_batch_size(&self, records: usize) -> &Self {
        self.with_config_mut(|c| c.batch_size = records.max(1))
    }

    /// Capacity of each channel in batches. Default 4.
    pub fn set_channel_capacity(&self, batches: usize) -> &Self {
        self.with_config_mut(|c| c.channel_capacity = batches.max(1))
    }

    /// Takes a checkpoint every `interval` (exactly-once, in memory, restarting a failed
    /// job from the latest checkpoint up to 3 times in a row after 1 s): Flink's
    /// `enableCheckpointing`. See [`StreamExecutionEnvironment::set_checkpointing`] for
    /// every setting.
    pub fn enable_checkpointing(&self, interval: Duration) -> &Self {
        self.with_config_mut(|c| c.checkpointing = Some(CheckpointConfig::every(interval)))
    }

    /// Sets every checkpoint setting (mode, timeout, directory, restart strategy, ...).
    pub fn set_checkpointing(&self, config: CheckpointConfig) -> &Self {
        self.with_config_mut(|c| c.checkpointing = Some(config))
    }

    /// Whether `execute` stops the job on Ctrl-C (first press: graceful stop; second:
    /// cancel). Default true.
    pub fn set_handle_ctrl_c(&self, handle: bool) -> &Self {
        *self
            .handle_ctrl_c
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = handle;
        self
    }

    pub(crate) fn default_parallelism(&self) -> u32 {
        self.config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .default_parallelism
    }

    /// A stream read from any [`Source`].
    pub fn add_source<T: Data, S: Source<T>>(&self, name: &str, source: S) -> DataStream<T> {
        self.source_node(name, source, None)
    }

    /// A stream read from `source` with timestamps and watermarks generated inside the
    /// source, per split (file range, partition, generated stream), by `strategy`
    /// (Flink's `fromSource`): a split that runs ahead does not make a slower split's
    /// records late, and with [`WatermarkStrategy::with_idleness`] an idle split stops
    /// holding back the watermark.
    pub fn from_source<T: Data, S: Source<T>>(
        &self,
        name: &str,
        source: S,
        strategy: WatermarkStrategy<T>,
    ) -> DataStream<T> {
        self.source_node(name, source, Some(strategy))
    }

    fn source_node<T: Data, S: Source<T>>(
        &self,
        name: &str,
        source: S,
        strategy: Option<WatermarkStrategy<T>>,
    ) -> DataStream<T> {
        let kind = NodeKind::Source {
            boundedness: source.boundedness(),
            max_parallelism: source.max_parallelism(),
        };
        let parallelism = match source.max_parallelism() {
            Some(max) => self.default_parallelism().min(max),
            None => self.default_parallelism(),
        };
        let source: Arc<dyn Source<T>> = Arc::new(source);
        let factory = Arc::new(match strategy {
            Some(s) => SourceNode::with_watermarks(source, s.spec()),
            None => SourceNode::new(source),
        });
        let id = self
            .with_builder(|b| b.add_node(format!("Source: {name}"), parallelism, kind, factory));
        DataStream::new(self.clone(), id)
    }

    /// A stream of the elements of `items`, split over the source's subtasks.
    pub fn from_collection<T: Data + Sync>(&self, items: Vec<T>) -> DataStream<T> {
        self.add_source("Collection", CollectionSource::new(items))
    }

    /// The numbers `start..=end`.
    pub fn from_sequence(&self, start: u64, end: u64) -> DataStream<u64> {
        let count = end.saturating_sub(start).saturating_add(1);
        let count = if end < start { 0 } else { count };
        self.add_source(
            "Sequence",
            GeneratorSource::bounded(count, move |i| start + i),
        )
    }

    /// `f(0) .. f(count - 1)`.
    pub fn generate<T: Data>(
        &self,
        count: u64,
        f: impl Fn(u64) -> T + Send + Sync + 'static,
    ) -> DataStream<T> {
        self.add_source("Generator", GeneratorSource::bounded(count, f))
    }

    /// The lines of a text file, or of every file in a directory.
    pub fn read_text_file(&self, path: impl Into<PathBuf>) -> DataStream<String> {
        self.add_source("Text File", TextFileSource::new(path))
    }

    /// Lines read from a TCP server at `host:port` (non-parallel, unbounded).
    pub fn socket_text_stream(&self, host: &str, port: u16) -> DataStream<String> {
        self.add_source("Socket", SocketTextSource::new(host, port))
    }

    /// The job graph defined so far.
    pub fn job_graph(&self, name: &str) -> JobGraph {
        self.with_builder(|b| b.build(name))
    }

    /// The physical plan (chains, parallelism, partitioning) the job would run with.
    ///
    /// # Errors
    /// If the job is invalid, with what to change.
    pub fn explain(&self) -> Result<String> {
        let graph = self.job_graph("explain");
        Ok(plan(&graph, &self.config())?.describe(&graph))
    }

    /// Takes the job defined so far out of the environment (as Flink does on execute):
    /// a later job starts from an empty graph.
    fn take_job_graph(&self, name: &str) -> JobGraph {
        self.with_builder(|b| {
            let graph = b.build(name);
            *b = GraphBuilder::default();
            graph
        })
    }

    /// Runs the job defined so far in this process and waits for it to end. The job's
    /// operators are then removed from the environment, so it can define the next job.
    ///
    /// Bounded jobs end when their sources are exhausted; unbounded ones run until
    /// stopped (Ctrl-C, unless disabled with [`Self::set_handle_ctrl_c`]).
    ///
    /// # Errors
    /// The first failure: an invalid job, or an operator that failed or panicked, named
    /// with its subtask.
    pub fn execute(&self, name: &str) -> Result<JobResult> {
        let control = JobControl::new();
        if *self
            .handle_ctrl_c
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            ctrl_c::register(&control);
        }
        let graph = self.take_job_graph(name);
        LocalExecutor::new(self.config()).execute(&graph, control)
    }

    /// Starts the job on a background thread and returns a handle to stop, cancel or
    /// wait for it. Like [`Self::execute`], it removes the job's operators from the
    /// environment.
    pub fn execute_async(&self, name: &str) -> JobHandle {
        let control = JobControl::new();
        let graph = self.take_job_graph(name);
        let config = self.config();
        let checkpoint_timeout = config.checkpointing.as_ref().map(|c| c.timeout);
        let executor = LocalExecutor::new(config);
        let c = Arc::clone(&control);
        let thread = std::thread::Builder::new()
            .name(format!("job {name}"))
            .spawn(move || executor.execute(&graph, c));
        JobHandle::new(control, thread, checkpoint_timeout)
    }
}

/// Ctrl-C handling shared by all jobs of the process.
mod ctrl_c {
    use super::*;
    use std::sync::OnceLock;

    static RUNNING: OnceLock<Mutex<Vec<Weak<JobControl>>>> = OnceLock::new();

    pub(super) fn register(control: &Arc<JobControl>) {
        let running = RUNNING.get_or_init(|| {
            let installed = ctrlc::set_handler(|| {
                let Some(running) = RUNNING.get() else { return };
                let jobs = running.lock().unwrap_or_else(PoisonError::into_inner);
                for job in jobs.iter().filter_map(Weak::upgrade) {
                    if job.is_stop_requested() {
                        tracing::warn!("second Ctrl-C: cancelling the job");
                        job.cancel();
                    } else {
                        tracing::warn!("Ctrl-C: stopping sources and draining the job; press Ctrl-C again to cancel");
                        job.stop();
                    }
                }
            });
            if let Err(e) = installed {
                tracing::debug!(error = %e, "Ctrl-C handler not installed (another one exists)");
            }
            Mutex::new(Vec::new())
        });
        let mut jobs = running.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.retain(|j| j.strong_count() > 0);
        jobs.push(Arc::downgrade(control));
    }
}
