//! [`LocalExecutor`]: runs a job graph inside this process, one thread per task.
//!
//! This is the distributed runtime with an in-process transport, not a separate code path:
//! the same plan, tasks, chains and channels are deployed; only the channel writers are
//! local queues. Invariant: `execute` returns only after every task thread ended, and
//! returns the root cause when a task failed (never the cancellations that followed).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_core::{CheckpointId, KeyGroup, KeyGroupRange, OperatorId};

use crate::checkpoint::coordinator::{
    CheckpointCoordinator, CheckpointStats, CoordinatorReport, JobFacts,
};
use crate::checkpoint::remote::WorkerCheckpointing;
use crate::checkpoint::restart::FailureHistory;
use crate::checkpoint::storage::{self, CheckpointMetadata, CheckpointStorage};
use crate::checkpoint::{
    CheckpointSignals, OperatorSnapshot, RestoredState, SnapshotCollector, TaskCheckpointing,
};

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
use crate::placement::{ChannelId, InProcess, Placement};
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

/// One attempt to run the job.
struct Attempt {
    result: Result<()>,
    report: CoordinatorReport,
    tasks: usize,
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
    /// Ids of the checkpoints completed during the run.
    pub checkpoints: Vec<u64>,
    /// Figures of the checkpoints completed during the run (duration, size), in order.
    pub checkpoint_stats: Vec<CheckpointStats>,
    /// Number of checkpoints aborted (timed out, unwritable, or cut short).
    pub checkpoints_aborted: u64,
    /// How often the job restarted after a failure.
    pub restarts: u32,
    /// For each restart, the checkpoint it restored (0 when none had completed yet).
    pub restores: Vec<u64>,
    /// The checkpoint the run started from (an earlier run's, after a crash), if any.
    pub restored_from: Option<u64>,
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
    /// What each operator subtask restores from.
    restored: HashMap<(OperatorId, u32), Arc<RestoredState>>,
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

    /// Runs `graph` to completion (or until `control` stops or cancels it). With
    /// checkpointing configured, a failed attempt restarts from the latest completed
    /// checkpoint as the restart strategy allows, and a job whose checkpoint directory
    /// already holds a completed checkpoint of the same job resumes from it.
    ///
    /// # Errors
    /// [`Error::InvalidJob`] before anything runs if the graph is invalid; otherwise the
    /// first root-cause failure of any task (the other tasks are cancelled) once no
    /// restart is allowed.
    pub fn execute(&self, graph: &JobGraph, control: Arc<JobControl>) -> Result<JobResult> {
        let plan = plan(graph, &self.config)?;
        tracing::info!(job = %graph.name, "deploying\n{}", plan.describe(graph));
        let clock = Arc::clone(&self.config.clock);
        let start = clock.monotonic_nanos();
        // Counters start afresh with each attempt (as Flink's do with new task instances),
        // so replayed records are not counted twice.
        let mut metrics: Arc<MetricRegistry>;
        let storage = match &self.config.checkpointing {
            Some(c) => Some(Arc::new(match &c.directory {
                Some(dir) => CheckpointStorage::local(dir, &graph.name)?,
                None => CheckpointStorage::in_memory(&graph.name)?,
            })),
            None => None,
        };
        let savepoint_storage = match self
            .config
            .checkpointing
            .as_ref()
            .and_then(|c| c.restore_from.as_ref())
        {
            Some(dir) => Some(Arc::new(CheckpointStorage::local(dir, &graph.name)?)),
            None => None,
        };
        if let (Some(storage), Some(config)) = (&storage, &self.config.checkpointing) {
            if !config.resume {
                // A fresh start: checkpoints of an earlier run must not be restored, not
                // even by a restart of this run before its first checkpoint.
                let old = storage.completed()?;
                if !old.is_empty() {
                    tracing::warn!(job = %graph.name, "starting afresh: deleting {} checkpoints of an earlier run in {}", old.len(), storage.location());
                }
                for id in old {
                    storage.delete(id)?;
                }
            }
        }
        let mut history = FailureHistory::default();
        let mut checkpoints = Vec::new();
        let mut checkpoint_stats = Vec::new();
        let mut checkpoints_aborted = 0;
        let mut restarts = 0u32;
        let mut restores = Vec::new();
        let mut restored_from = None;
        let mut first = true;
        // Checkpoints of this job whose state could not be read: the next attempt falls
        // back to an older retained one.
        let mut unreadable = std::collections::HashSet::new();
        let task_count = loop {
            let own = match &storage {
                Some(s) => s.latest_readable(&unreadable)?,
                None => None,
            };
            // A savepoint to start from counts until the job has a checkpoint of its own.
            let savepoint = match (&own, &savepoint_storage) {
                (None, Some(sp)) => Some(sp.latest()?.ok_or_else(|| Error::Checkpoint {
                    location: sp.location().to_string(),
                    message: format!(
                        "no complete savepoint of job `{}` there; pass the directory a savepoint was written to",
                        graph.name
                    ),
                })?),
                _ => None,
            };
            let (restore, restore_storage) = match (own, savepoint) {
                (Some(meta), _) => (Some(meta), storage.clone()),
                (None, Some(meta)) => (Some(meta), savepoint_storage.clone()),
                (None, None) => (None, None),
            };
            let from_savepoint = matches!(
                (&restore_storage, &savepoint_storage),
                (Some(a), Some(b)) if Arc::ptr_eq(a, b)
            );
            if let (Some(meta), true) = (&restore, from_savepoint) {
                tracing::info!(job = %graph.name, checkpoint = meta.id, "starting from savepoint {}", meta.id);
                if first {
                    restored_from = Some(meta.id);
                }
            } else if let Some(meta) = &restore {
                if first {
                    // Not a restart: an earlier run of this job left the checkpoint.
                    tracing::warn!(
                        job = %graph.name,
                        checkpoint = meta.id,
                        "resuming from checkpoint {} left by an earlier run in {}; set `resume` to false (`--fresh`) to start over",
                        meta.id,
                        storage.as_ref().map_or("", |s| s.location())
                    );
                    restored_from = Some(meta.id);
                } else {
                    tracing::info!(job = %graph.name, checkpoint = meta.id, "restoring from checkpoint {}", meta.id);
                }
            }
            let restored = match (&restore_storage, &restore) {
                (Some(s), Some(meta)) => self.restored_states(graph, s, meta),
                _ => Ok(HashMap::new()),
            };
            if let (Err(e @ Error::Checkpoint { .. }), Some(meta), false) =
                (&restored, &restore, from_savepoint)
            {
                // An unreadable checkpoint of the job's own: an older retained one (if
                // any) is better than failing; this does not count as a restart.
                tracing::warn!(job = %graph.name, checkpoint = meta.id, error = %e, "checkpoint {} cannot be restored; falling back to an older retained checkpoint (keep `retained` at 2 or more to have one)", meta.id);
                unreadable.insert(meta.id);
                continue;
            }
            if !first {
                restores.push(restore.as_ref().map_or(0, |m| m.id));
            }
            first = false;
            let attempt = JobControl::child(&control);
            metrics = MetricRegistry::new();
            // A failure while setting the attempt up goes through the restart strategy
            // like a task failure; an invalid job does not.
            let outcome = restored
                .and_then(|restored| {
                    self.run_attempt(graph, &plan, &attempt, &metrics, storage.as_ref(), restored)
                })
                .unwrap_or_else(|e| Attempt {
                    result: Err(e),
                    report: CoordinatorReport::default(),
                    tasks: 0,
                });
            let progressed = !outcome.report.completed.is_empty();
            checkpoints.extend(outcome.report.completed.iter().map(|id| id.0));
            checkpoint_stats.extend(outcome.report.stats.iter().cloned());
            checkpoints_aborted += outcome.report.aborted;
            let error = match outcome.result {
                Ok(()) => break outcome.tasks,
                Err(e) => e,
            };
            let Some(config) = &self.config.checkpointing else {
                return Err(error);
            };
            if !error.is_retryable() || control.is_cancelled() || control.is_stop_requested() {
                return Err(error);
            }
            history.since_progress = if progressed {
                1
            } else {
                history.since_progress + 1
            };
            let now_ms = clock.monotonic_nanos() / 1_000_000;
            history.recent_ms.push(now_ms);
            match config.restart.next_delay(&history, now_ms) {
                Some(delay) => {
                    restarts += 1;
                    tracing::warn!(job = %graph.name, error = %error, ?delay, restarts, "task failed; restarting from the latest checkpoint");
                    clock.sleep(delay);
                }
                None => return Err(error),
            }
        };
        // Savepoints asked for too late are answered, not left waiting.
        for (dir, answer) in control.take_savepoint_requests() {
            let _ = answer.send(Err(Error::Checkpoint {
                location: dir.display().to_string(),
                message: "the job ended before the savepoint could be taken".into(),
            }));
        }
        let status = if control.is_cancelled() {
            JobStatus::Cancelled
        } else if control.is_stop_requested() {
            JobStatus::Stopped
        } else {
            JobStatus::Finished
        };
        if let (JobStatus::Finished, Some(storage)) = (status, &storage) {
            // A finished job is not resumed: its checkpoints go (as Flink discards the
            // checkpoints of a finished job), so running it again starts afresh; so do
            // the remains of checkpoints an earlier run's crash interrupted.
            for id in storage.all()? {
                storage.delete(id)?;
            }
        }
        let duration = Duration::from_nanos(clock.monotonic_nanos().saturating_sub(start));
        tracing::info!(job = %graph.name, ?status, ?duration, "job ended");
        Ok(JobResult {
            status,
            duration,
            tasks: task_count,
            metrics: metrics.snapshot(),
            checkpoints,
            checkpoint_stats,
            checkpoints_aborted,
            restarts,
            restores,
            restored_from,
        })
    }

    /// Deploys and runs the job once.
    fn run_attempt(
        &self,
        graph: &JobGraph,
        plan: &PhysicalPlan,
        control: &Arc<JobControl>,
        metrics: &Arc<MetricRegistry>,
        storage: Option<&Arc<CheckpointStorage>>,
        restored: HashMap<(OperatorId, u32), Arc<RestoredState>>,
    ) -> Result<Attempt> {
        // Spinning before parking pays when every task has a core; with more tasks than
        // cores it takes cycles from tasks that have work.
        let task_count: u32 = plan.chains.iter().map(|c| c.parallelism).sum();
        let spin = match self.config.spin_before_park {
            Some(spin) => spin,
            None => task_count as usize <= available_cores(),
        };
        let restored_id = restored
            .values()
            .filter_map(|r| r.checkpoint)
            .map(|c| c.0)
            .max()
            .unwrap_or(0);
        let mut channels = self.create_channels(graph, plan, control, spin, &InProcess)?;
        channels.metrics = Arc::clone(metrics);
        channels.restored = restored;
        let existing = match storage {
            Some(s) => s.completed()?,
            None => Vec::new(),
        };
        let (coordinator, links) = match (&self.config.checkpointing, storage) {
            (Some(config), Some(storage)) => {
                let signals = Arc::new(CheckpointSignals::default());
                let (tx, rx) = std::sync::mpsc::channel();
                let facts = job_facts(graph, plan, &self.config);
                let last = existing.last().map_or(0, |id| id.0).max(restored_id);
                let link = TaskCheckpointing {
                    task: 0,
                    mode: config.mode,
                    signals: Arc::clone(&signals),
                    messages: tx,
                    collector: Arc::default(),
                    notified: last,
                };
                let coordinator = CheckpointCoordinator::new(
                    config.clone(),
                    facts,
                    Arc::clone(storage),
                    signals,
                    rx,
                    Arc::clone(&self.config.clock),
                    existing,
                    restored_id,
                    Arc::clone(control),
                );
                (Some(coordinator), Some(link))
            }
            _ => (None, None),
        };
        let mut tasks = Vec::new();
        for chain in &plan.chains {
            for subtask in 0..chain.parallelism {
                let checkpointing = links.as_ref().map(|l| TaskCheckpointing {
                    task: tasks.len(),
                    collector: Arc::default(),
                    ..l.clone()
                });
                tasks.push(self.build_task(
                    graph,
                    chain,
                    subtask,
                    &mut channels,
                    control,
                    checkpointing,
                )?);
            }
        }
        drop(links);
        drop(channels);
        let tasks_len = tasks.len();
        let stop = Arc::new(AtomicBool::new(false));
        let coordinator_thread = match coordinator {
            Some(c) => {
                let stop = Arc::clone(&stop);
                Some(
                    std::thread::Builder::new()
                        .name("checkpoint coordinator".into())
                        .spawn(move || c.run(&stop))
                        .map_err(|e| {
                            Error::Internal(format!("cannot start the checkpoint coordinator: {e}"))
                        })?,
                )
            }
            None => None,
        };
        let result = run_tasks(tasks, control);
        stop.store(true, Ordering::Release);
        let report = match coordinator_thread {
            Some(t) => t
                .join()
                .map_err(|_| Error::Internal("the checkpoint coordinator panicked".into()))?,
            None => CoordinatorReport::default(),
        };
        Ok(Attempt {
            result,
            report,
            tasks: tasks_len,
        })
    }

    /// Builds the tasks of `plan` that `placement` puts in this process, connected to the
    /// others through it, for one attempt of the job: what a cluster worker runs. The
    /// tasks are returned unstarted, for [`run_tasks`].
    ///
    /// # Errors
    /// As for [`LocalExecutor::execute`] while deploying, and what `placement` returns.
    #[allow(clippy::too_many_arguments)]
    pub fn deploy_part(
        &self,
        graph: &JobGraph,
        plan: &PhysicalPlan,
        placement: &dyn Placement,
        control: &Arc<JobControl>,
        metrics: &Arc<MetricRegistry>,
        restored: HashMap<(OperatorId, u32), Arc<RestoredState>>,
        checkpointing: Option<&WorkerCheckpointing>,
    ) -> Result<Vec<Box<dyn Task>>> {
        let local: u32 = plan
            .chains
            .iter()
            .enumerate()
            .map(|(c, chain)| {
                (0..chain.parallelism)
                    .filter(|&s| placement.is_local(c, s))
                    .count() as u32
            })
            .sum();
        let spin = match self.config.spin_before_park {
            Some(spin) => spin,
            None => local as usize <= available_cores(),
        };
        let mut channels = self.create_channels(graph, plan, control, spin, placement)?;
        channels.metrics = Arc::clone(metrics);
        channels.restored = restored;
        let mut tasks = Vec::new();
        let mut index = 0usize;
        for (c, chain) in plan.chains.iter().enumerate() {
            for subtask in 0..chain.parallelism {
                if placement.is_local(c, subtask) {
                    let link = checkpointing.map(|w| w.task_link(index));
                    tasks.push(self.build_task(
                        graph,
                        chain,
                        subtask,
                        &mut channels,
                        control,
                        link,
                    )?);
                }
                index += 1;
            }
        }
        Ok(tasks)
    }

    /// What each operator subtask restores from checkpoint `meta`: the key groups of its
    /// range from whichever subtask wrote them, and its own subtask state.
    ///
    /// # Errors
    /// [`Error::InvalidJob`] when the checkpoint's key groups or an operator's subtask
    /// state do not fit the job; [`Error::Checkpoint`] when a state file is unreadable.
    pub fn restored_states(
        &self,
        graph: &JobGraph,
        storage: &CheckpointStorage,
        meta: &CheckpointMetadata,
    ) -> Result<HashMap<(OperatorId, u32), Arc<RestoredState>>> {
        if meta.max_parallelism != self.config.max_parallelism {
            return Err(Error::InvalidJob(format!(
                "checkpoint {} was taken with {} key groups (max parallelism) but the job now has {}; keep the max parallelism of a job to restore its state",
                meta.id, meta.max_parallelism, self.config.max_parallelism
            )));
        }
        let mut snapshots: HashMap<OperatorId, Vec<(u32, OperatorSnapshot)>> = HashMap::new();
        for file in &meta.files {
            let state = storage.read_state(file)?;
            snapshots
                .entry(storage::operator_of(file))
                .or_default()
                .push((file.subtask, state));
        }
        let mut restored = HashMap::new();
        for node in &graph.nodes {
            let old_parallelism = meta
                .parallelism
                .iter()
                .find(|(op, _)| *op == node.id.0)
                .map(|(_, p)| *p);
            let parts = snapshots.get(&node.id).map(Vec::as_slice).unwrap_or(&[]);
            let has_subtask_state = parts.iter().any(|(_, s)| s.has_subtask_state());
            if has_subtask_state && old_parallelism != Some(node.parallelism) {
                return Err(Error::InvalidJob(format!(
                    "operator `{}` ran with parallelism {} in checkpoint {} and has {} now; its subtask state (a source position, a sink transaction, or the in-flight data of an unaligned checkpoint) cannot be redistributed: keep its parallelism, or rescale from a savepoint (always aligned)",
                    node.name,
                    old_parallelism.unwrap_or(0),
                    meta.id,
                    node.parallelism
                )));
            }
            for subtask in 0..node.parallelism {
                let range = KeyGroupRange::for_subtask(
                    self.config.max_parallelism,
                    node.parallelism,
                    subtask,
                );
                let keyed = parts
                    .iter()
                    .flat_map(|(_, s)| s.keyed.iter())
                    .filter(|(g, _)| range.contains(KeyGroup(*g)))
                    .map(|(g, bytes)| (KeyGroup(*g), bytes.clone()))
                    .collect();
                let own = parts.iter().find(|(s, _)| *s == subtask).map(|(_, s)| s);
                restored.insert(
                    (node.id, subtask),
                    Arc::new(RestoredState {
                        checkpoint: Some(CheckpointId(meta.id)),
                        keyed,
                        operator: own.and_then(|s| s.operator.clone()),
                        channels: own.map(|s| s.channels.clone()).unwrap_or_default(),
                    }),
                );
            }
        }
        Ok(restored)
    }

    fn create_channels(
        &self,
        graph: &JobGraph,
        plan: &PhysicalPlan,
        control: &Arc<JobControl>,
        spin: bool,
        placement: &dyn Placement,
    ) -> Result<Channels> {
        let mut channels = Channels {
            writers: HashMap::new(),
            receivers: HashMap::new(),
            signals: HashMap::new(),
            metrics: MetricRegistry::new(),
            restored: HashMap::new(),
        };
        let chain_of: HashMap<OperatorId, usize> = plan
            .chains
            .iter()
            .enumerate()
            .flat_map(|(c, chain)| chain.nodes.iter().map(move |&n| (n, c)))
            .collect();
        let settings = ChannelSettings {
            capacity: self.config.channel_capacity,
            batch_size: self.config.batch_size,
        };
        for &e in &plan.network_edges {
            let edge = &graph.edges[e];
            let (Some(up), Some(down)) = (graph.node(edge.from), graph.node(edge.to)) else {
                continue;
            };
            let (Some(&up_chain), Some(&down_chain)) =
                (chain_of.get(&edge.from), chain_of.get(&edge.to))
            else {
                continue;
            };
            let all_to_all = edge.factory.partitioning().is_all_to_all();
            for i in 0..up.parallelism {
                let targets: Vec<u32> = if all_to_all {
                    (0..down.parallelism).collect()
                } else {
                    vec![i]
                };
                let up_local = placement.is_local(up_chain, i);
                for j in targets {
                    let down_local = placement.is_local(down_chain, j);
                    let id = ChannelId {
                        edge: e as u32,
                        from: i,
                        to: j,
                    };
                    if !down_local {
                        if up_local {
                            let link = placement.link_to(id)?;
                            let w = edge.factory.create_remote_writer(link, control)?;
                            channels.writers.entry((e, i)).or_default().push(w);
                        }
                        continue;
                    }
                    let signal = Arc::clone(
                        channels
                            .signals
                            .entry((edge.to, j))
                            .or_insert_with(|| GateSignal::with_spin(spin)),
                    );
                    let r = if up_local {
                        let (w, r) = edge.factory.create_channel(settings, signal, control);
                        channels.writers.entry((e, i)).or_default().push(w);
                        r
                    } else {
                        let (inbox, r) = edge.factory.create_remote_receiver(
                            settings,
                            signal,
                            control,
                            placement.credit_return(id)?,
                        )?;
                        placement.accept(id, inbox)?;
                        r
                    };
                    channels
                        .receivers
                        .entry((edge.to, j))
                        .or_default()
                        .push((edge.input, r));
                }
            }
        }
        Ok(channels)
    }

    fn context(
        &self,
        graph: &JobGraph,
        id: OperatorId,
        subtask: u32,
        channels: &Channels,
        snapshots: Option<&SnapshotCollector>,
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
            metrics: Arc::clone(&channels.metrics),
            operator_id: id,
            restored: channels.restored.get(&(id, subtask)).cloned(),
            snapshots: snapshots.cloned(),
        })
    }

    fn build_task(
        &self,
        graph: &JobGraph,
        chain: &crate::plan::ChainPlan,
        subtask: u32,
        channels: &mut Channels,
        control: &Arc<JobControl>,
        checkpointing: Option<TaskCheckpointing>,
    ) -> Result<Box<dyn Task>> {
        let collector = checkpointing.as_ref().map(|c| Arc::clone(&c.collector));
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
            let ctx = self.context(graph, id, subtask, channels, collector.as_ref())?;
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
        let ctx = self.context(graph, head_id, subtask, channels, collector.as_ref())?;
        node(head_id)?.factory.build_task(
            ctx,
            output,
            head_side,
            TaskInputs {
                receivers: inputs,
                signal,
                checkpointing,
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

/// The facts a checkpoint coordinator needs about the job: tasks are numbered chain by
/// chain, subtask by subtask, in plan order (as every deployment builds them).
pub fn job_facts(graph: &JobGraph, plan: &PhysicalPlan, config: &JobConfig) -> JobFacts {
    let mut sources = std::collections::HashSet::new();
    let mut index = 0usize;
    for chain in &plan.chains {
        let is_source = chain
            .nodes
            .first()
            .is_some_and(|&head| graph.inputs(head).next().is_none());
        for _ in 0..chain.parallelism {
            if is_source {
                sources.insert(index);
            }
            index += 1;
        }
    }
    JobFacts {
        sources,
        job: graph.name.clone(),
        tasks: index,
        max_parallelism: config.max_parallelism,
        parallelism: graph
            .nodes
            .iter()
            .map(|n| (n.id.0, n.parallelism))
            .collect(),
    }
}

/// Runs every task on its own thread until all ended; returns the root cause of the
/// first failure (the other tasks are cancelled through `control`).
///
/// # Errors
/// The root cause of the first task failure.
pub fn run_tasks(tasks: Vec<Box<dyn Task>>, control: &Arc<JobControl>) -> Result<()> {
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
