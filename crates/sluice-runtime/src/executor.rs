//! [`LocalExecutor`]: runs a job graph inside this process, one thread per task.
//!
//! This is the distributed runtime with an in-process transport, not a separate code path:
//! the same plan, tasks, chains and channels are deployed; only the channel writers are
//! local queues. Invariant: `execute` returns only after every task thread ended, and
//! returns the root cause when a task failed (never the cancellations that followed).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sluice_core::{KeyGroupRange, OperatorId};

use crate::channel::GateSignal;
use crate::config::JobConfig;
use crate::control::JobControl;
use crate::error::{Error, Result, TaskLocation};
use crate::graph::{
    ChannelSettings, ErasedReceiver, ErasedSink, ErasedWriter, JobGraph, RouterSettings, TaskInputs,
};
use crate::metrics::{MetricRegistry, MetricValue};
use crate::operator::side_output::SideOutputs;
use crate::operator::OperatorContext;
use crate::plan::{plan, PhysicalPlan};
use crate::task::Task;

/// How a job run ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Every source was exhausted and every record processed.
    Finished,
    /// A graceful stop was requested; every record read was processed.
    Stopped,
    /// The job was cancelled; records in flight were dropped.
    Cancelled,
}

/// The outcome of a job run.
#[derive(Debug, Clone)]
pub struct JobResult {
    /// How the job ended.
    pub status: JobStatus,
    /// Wall time from deployment to the end of the last task.
    pub duration: Duration,
    /// Number of tasks (chain subtasks) that ran.
    pub tasks: usize,
    /// The operators' counters when the job ended.
    pub metrics: Vec<MetricValue>,
}

impl JobResult {
    /// The sum of counter `name` over every operator and subtask.
    pub fn counter_total(&self, name: &str) -> u64 {
        self.metrics
            .iter()
            .filter(|m| m.name == name)
            .map(|m| m.value)
            .sum()
    }
}

/// Runs jobs in this process.
#[derive(Debug, Clone, Default)]
pub struct LocalExecutor {
    config: JobConfig,
}

/// The channels of the job, indexed for deployment.
struct Channels {
    /// Writers per (network edge, upstream subtask), in downstream-subtask order.
    writers: HashMap<(usize, u32), Vec<ErasedWriter>>,
    /// Receivers per (downstream node, subtask), in edge then upstream-subtask order.
    receivers: HashMap<(OperatorId, u32), Vec<(usize, ErasedReceiver)>>,
    /// The wake-up signal of each (downstream node, subtask)'s input gate.
    signals: HashMap<(OperatorId, u32), Arc<GateSignal>>,
    /// The job run's counters.
    metrics: Arc<MetricRegistry>,
}

impl LocalExecutor {
    /// An executor with `config`.
    pub fn new(config: JobConfig) -> Self {
        LocalExecutor { config }
    }

    /// The configuration jobs run with.
    pub fn config(&self) -> &JobConfig {
        &self.config
    }

    /// Runs `graph` to completion (or until `control` stops or cancels it).
    ///
    /// # Errors
    /// [`Error::InvalidJob`] before anything runs if the graph is invalid; otherwise the
    /// first root-cause failure of any task (the other tasks are cancelled).
    pub fn execute(&self, graph: &JobGraph, control: Arc<JobControl>) -> Result<JobResult> {
        let plan = plan(graph, &self.config)?;
        tracing::info!(job = %graph.name, "deploying\n{}", plan.describe(graph));
        let start = self.config.clock.monotonic_nanos();
        // Spinning before parking pays when every task has a core; with more tasks than
        // cores it takes cycles from tasks that have work.
        let task_count: u32 = plan.chains.iter().map(|c| c.parallelism).sum();
        let spin = match self.config.spin_before_park {
            Some(spin) => spin,
            None => task_count as usize <= available_cores(),
        };
        let mut channels = self.create_channels(graph, &plan, &control, spin);
        let mut tasks = Vec::new();
        for chain in &plan.chains {
            for subtask in 0..chain.parallelism {
                tasks.push(self.build_task(graph, chain, subtask, &mut channels, &control)?);
            }
        }
        let metrics = Arc::clone(&channels.metrics);
        drop(channels);
        let task_count = tasks.len();
        run_tasks(tasks, &control)?;
        let status = if control.is_cancelled() {
            JobStatus::Cancelled
        } else if control.is_stop_requested() {
            JobStatus::Stopped
        } else {
            JobStatus::Finished
        };
        let duration =
            Duration::from_nanos(self.config.clock.monotonic_nanos().saturating_sub(start));
        tracing::info!(job = %graph.name, ?status, ?duration, "job ended");
        Ok(JobResult {
            status,
            duration,
            tasks: task_count,
            metrics: metrics.snapshot(),
        })
    }

    fn create_channels(
        &self,
        graph: &JobGraph,
        plan: &PhysicalPlan,
        control: &Arc<JobControl>,
        spin: bool,
    ) -> Channels {
        let mut channels = Channels {
            writers: HashMap::new(),
            receivers: HashMap::new(),
            signals: HashMap::new(),
            metrics: MetricRegistry::new(),
        };
        for &e in &plan.network_edges {
            let edge = &graph.edges[e];
            let (Some(up), Some(down)) = (graph.node(edge.from), graph.node(edge.to)) else {
                continue;
            };
            let all_to_all = edge.factory.partitioning().is_all_to_all();
            for i in 0..up.parallelism {
                let targets: Vec<u32> = if all_to_all {
                    (0..down.parallelism).collect()
                } else {
                    vec![i]
                };
                for j in targets {
                    let signal = Arc::clone(
                        channels
                            .signals
                            .entry((edge.to, j))
                            .or_insert_with(|| GateSignal::with_spin(spin)),
                    );
                    let (w, r) = edge.factory.create_channel(
                        ChannelSettings {
                            capacity: self.config.channel_capacity,
                            batch_size: self.config.batch_size,
                        },
                        signal,
                        control,
                    );
                    channels.writers.entry((e, i)).or_default().push(w);
                    channels
                        .receivers
                        .entry((edge.to, j))
                        .or_default()
                        .push((edge.input, r));
                }
            }
        }
        channels
    }

    fn context(
        &self,
        graph: &JobGraph,
        id: OperatorId,
        subtask: u32,
        metrics: &Arc<MetricRegistry>,
    ) -> Result<OperatorContext> {
        let node = graph
            .node(id)
            .ok_or_else(|| Error::Internal(format!("unknown node {id}")))?;
        Ok(OperatorContext {
            location: TaskLocation {
                operator: node.name.clone(),
                subtask,
                parallelism: node.parallelism,
            },
            max_parallelism: self.config.max_parallelism,
            key_group_range: KeyGroupRange::for_subtask(
                self.config.max_parallelism,
                node.parallelism,
                subtask,
            ),
            runtime_mode: self.config.runtime_mode,
            batch_size: self.config.batch_size,
            clock: Arc::clone(&self.config.clock),
            metrics: Arc::clone(metrics),
        })
    }

    fn build_task(
        &self,
        graph: &JobGraph,
        chain: &crate::plan::ChainPlan,
        subtask: u32,
        channels: &mut Channels,
        control: &Arc<JobControl>,
    ) -> Result<Box<dyn Task>> {
        let missing = || Error::Internal("empty chain".into());
        let tail_id = *chain.nodes.last().ok_or_else(missing)?;
        let head_id = *chain.nodes.first().ok_or_else(missing)?;
        let node = |id| {
            graph
                .node(id)
                .ok_or_else(|| Error::Internal(format!("unknown node {id}")))
        };
        let settings = RouterSettings {
            batch_size: self.config.batch_size,
            max_parallelism: self.config.max_parallelism,
            first_channel: subtask as usize,
        };
        let mut routers: Vec<ErasedSink> = Vec::new();
        for (e, edge) in graph.edges.iter().enumerate() {
            if edge.from != tail_id || edge.side_output.is_some() {
                continue;
            }
            let writers = channels.writers.remove(&(e, subtask)).unwrap_or_default();
            routers.push(edge.factory.build_router(writers, settings)?);
        }
        let mut output = node(tail_id)?.factory.build_output(routers)?;
        for &id in chain.nodes.iter().skip(1).rev() {
            let ctx = self.context(graph, id, subtask, &channels.metrics)?;
            let side = self.side_outputs(graph, id, subtask, channels, settings)?;
            output = node(id)?.factory.build_link(&ctx, output, side)?;
        }
        let head_side = self.side_outputs(graph, head_id, subtask, channels, settings)?;
        let inputs = channels
            .receivers
            .remove(&(head_id, subtask))
            .unwrap_or_default();
        let signal = channels
            .signals
            .remove(&(head_id, subtask))
            .unwrap_or_default();
        let ctx = self.context(graph, head_id, subtask, &channels.metrics)?;
        node(head_id)?.factory.build_task(
            ctx,
            output,
            head_side,
            TaskInputs {
                receivers: inputs,
                signal,
            },
            Arc::clone(control),
        )
    }
}

impl LocalExecutor {
    /// The side outputs of node `id`'s subtask: one per side-output tag with consumers,
    /// writing to the routers of that tag's edges.
    fn side_outputs(
        &self,
        graph: &JobGraph,
        id: OperatorId,
        subtask: u32,
        channels: &mut Channels,
        settings: RouterSettings,
    ) -> Result<SideOutputs> {
        let mut by_tag: Vec<(u64, usize, Vec<ErasedSink>)> = Vec::new();
        for (e, edge) in graph.edges.iter().enumerate() {
            let (true, Some(tag)) = (edge.from == id, edge.side_output) else {
                continue;
            };
            let writers = channels.writers.remove(&(e, subtask)).unwrap_or_default();
            let router = edge.factory.build_router(writers, settings)?;
            match by_tag.iter_mut().find(|(t, _, _)| *t == tag) {
                Some((_, _, routers)) => routers.push(router),
                None => by_tag.push((tag, e, vec![router])),
            }
        }
        let outputs = by_tag
            .into_iter()
            .map(|(tag, e, routers)| graph.edges[e].factory.build_side_output(tag, routers))
            .collect::<Result<Vec<_>>>()?;
        Ok(SideOutputs::new(outputs))
    }
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs every task on its own thread; returns the root cause of the first failure.
fn run_tasks(tasks: Vec<Box<dyn Task>>, control: &Arc<JobControl>) -> Result<()> {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Result<()>>();
    let mut handles = Vec::with_capacity(tasks.len());
    let mut spawn_error = None;
    for task in tasks {
        let location = task.location().clone();
        let location_for_thread = location.clone();
        let name = format!(
            "{} ({}/{})",
            location.operator,
            location.subtask + 1,
            location.parallelism
        );
        let tx = done_tx.clone();
        let task_control = Arc::clone(control);
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            // Operator calls catch their own panics; one that escapes is a runtime bug.
            // Report it as a failure (so the job is cancelled now, not at join time).
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.run()))
                .unwrap_or_else(|payload| {
                    task_control.cancel();
                    Err(Error::Internal(format!(
                        "task {location_for_thread} panicked: {}",
                        crate::error::panic_message(payload.as_ref())
                    )))
                });
            let _ = tx.send(result);
        });
        match spawned {
            Ok(h) => handles.push(h),
            Err(source) => {
                spawn_error = Some(Error::Spawn { location, source });
                control.cancel();
                break;
            }
        }
    }
    drop(done_tx);
    let mut root: Option<Error> = spawn_error;
    let mut consequence: Option<Error> = None;
    for result in done_rx.iter() {
        if let Err(e) = result {
            if e.is_consequence() {
                consequence.get_or_insert(e);
            } else if root.is_none() {
                tracing::error!(error = %e, "task failed; cancelling the job");
                root = Some(e);
                control.cancel();
            }
        }
    }
    for h in handles {
        if h.join().is_err() {
            root.get_or_insert_with(|| {
                Error::Internal("a task thread panicked outside its task".into())
            });
        }
    }
    match (root, consequence) {
        (Some(e), _) => Err(e),
        // A cancelled job ends its tasks with `Cancelled`: that is the requested outcome.
        (None, Some(_)) if control.is_cancelled() => Ok(()),
        (None, Some(e)) => Err(Error::Internal(format!(
            "a task ended with `{e}` although nothing failed"
        ))),
        (None, None) => Ok(()),
    }
}
