//! What travels about a job: how to build it ([`JobSpec`]), what the coordinator needs to
//! schedule and checkpoint it ([`PlanSummary`]), and one attempt's [`Deployment`].
//!
//! Closures cannot be shipped, so a job is never sent as a graph: every process builds
//! the same [`JobGraph`] from the same [`JobSpec`] with a [`JobBuilder`] (the `sluice`
//! binary builds SQL scripts; a Rust job's own binary, started as a worker, builds its
//! registered jobs). Invariant: a worker refuses a deployment whose plan, built locally,
//! differs from the submitted [`PlanSummary`], so both sides number tasks and channels
//! alike.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_runtime::checkpoint::{CheckpointConfig, CheckpointingMode, RestartStrategy};
use sluice_runtime::{JobConfig, JobGraph, PhysicalPlan};

use crate::error::{Error, Result};

/// How to build a job: which builder (`kind`), and its input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// `sql` for a SQL script, or the name a job binary registered its job under.
    pub kind: String,
    /// The SQL script text (or a registered job's argument).
    pub script: String,
    /// Parameters (`-D NAME=VALUE` of a SQL script).
    pub params: BTreeMap<String, String>,
}

/// Builds jobs from their specs; the same spec builds the same graph in every process.
pub trait JobBuilder: Send + Sync {
    /// The graph and configuration of `spec`.
    ///
    /// # Errors
    /// [`Error::InvalidJob`] when the spec does not build (unknown kind, SQL error).
    fn build(&self, spec: &JobSpec) -> Result<(JobGraph, JobConfig)>;
}

/// One chain of the plan, as the coordinator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSummary {
    /// Its display name.
    pub name: String,
    /// Its parallelism.
    pub parallelism: u32,
    /// Whether it starts with a source.
    pub source: bool,
}

/// Checkpoint settings of a job (Flink's `execution.checkpointing.*`), serializable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointSettings {
    /// Between two triggers.
    pub interval_ms: u64,
    /// Exactly-once (aligned barriers) or at-least-once.
    pub exactly_once: bool,
    /// A checkpoint not complete after this long is aborted.
    pub timeout_ms: u64,
    /// Checkpoints in progress at once.
    pub max_concurrent: usize,
    /// Least time between the end of one checkpoint and the next trigger.
    pub min_pause_ms: u64,
    /// Completed checkpoints kept.
    pub retained: usize,
    /// Where checkpoints go; `None` uses the coordinator's state directory.
    pub directory: Option<String>,
    /// Unaligned checkpoints.
    pub unaligned: bool,
    /// A savepoint (or retained checkpoint) directory to start from while the job has
    /// no checkpoint of its own (`execution.savepoint.path`).
    pub restore_from: Option<String>,
    /// Restarts allowed without a completed checkpoint in between (fixed delay).
    pub restart_attempts: u32,
    /// Wait before a restart.
    pub restart_delay_ms: u64,
}

impl CheckpointSettings {
    /// The settings of `config`. Restart strategies other than a fixed delay are
    /// approximated by one (their delay, at most 3 attempts in a row).
    pub fn of(config: &CheckpointConfig) -> Self {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let (restart_attempts, restart_delay_ms) = match &config.restart {
            RestartStrategy::None => (0, 0),
            RestartStrategy::FixedDelay { attempts, delay } => (*attempts, ms(*delay)),
            RestartStrategy::ExponentialBackoff { initial, .. } => (3, ms(*initial)),
            RestartStrategy::FailureRate { delay, .. } => (3, ms(*delay)),
        };
        CheckpointSettings {
            interval_ms: ms(config.interval),
            exactly_once: config.mode == CheckpointingMode::ExactlyOnce,
            timeout_ms: ms(config.timeout),
            max_concurrent: config.max_concurrent,
            min_pause_ms: ms(config.min_pause),
            retained: config.retained,
            directory: config.directory.as_ref().map(|d| d.display().to_string()),
            unaligned: config.unaligned,
            restore_from: config
                .restore_from
                .as_ref()
                .map(|d| d.display().to_string()),
            restart_attempts,
            restart_delay_ms,
        }
    }

    /// The runtime's configuration, writing under `directory`.
    pub fn to_config(&self, directory: PathBuf) -> CheckpointConfig {
        let mut config = CheckpointConfig::every(Duration::from_millis(self.interval_ms));
        config.mode = if self.exactly_once {
            CheckpointingMode::ExactlyOnce
        } else {
            CheckpointingMode::AtLeastOnce
        };
        config.timeout = Duration::from_millis(self.timeout_ms);
        config.max_concurrent = self.max_concurrent;
        config.min_pause = Duration::from_millis(self.min_pause_ms);
        config.retained = self.retained;
        config.directory = Some(directory);
        config.unaligned = self.unaligned;
        config.restart = RestartStrategy::FixedDelay {
            attempts: self.restart_attempts,
            delay: Duration::from_millis(self.restart_delay_ms),
        };
        config
    }
}

/// What the coordinator knows of a job's plan: enough to schedule its tasks and run its
/// checkpoint coordinator, without building the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSummary {
    /// The job's name (checkpoints are stored under it).
    pub name: String,
    /// Chains in plan order.
    pub chains: Vec<ChainSummary>,
    /// Parallelism per operator id.
    pub operators: Vec<(u32, u32)>,
    /// Number of key groups.
    pub max_parallelism: u32,
    /// Checkpointing, when configured.
    pub checkpoint: Option<CheckpointSettings>,
    /// Whether every source is bounded (the job finishes by itself).
    pub bounded: bool,
}

impl PlanSummary {
    /// The summary of `plan`, built from `graph` with `config`.
    pub fn of(graph: &JobGraph, plan: &PhysicalPlan, config: &JobConfig) -> Self {
        let chains = plan
            .chains
            .iter()
            .map(|c| ChainSummary {
                name: c.name.clone(),
                parallelism: c.parallelism,
                source: c
                    .nodes
                    .first()
                    .is_some_and(|&head| graph.inputs(head).next().is_none()),
            })
            .collect();
        let bounded = graph.nodes.iter().all(|n| match n.kind {
            sluice_runtime::graph::NodeKind::Source { boundedness, .. } => {
                boundedness == sluice_runtime::source::Boundedness::Bounded
            }
            _ => true,
        });
        PlanSummary {
            name: graph.name.clone(),
            chains,
            operators: graph
                .nodes
                .iter()
                .map(|n| (n.id.0, n.parallelism))
                .collect(),
            max_parallelism: config.max_parallelism,
            checkpoint: config.checkpointing.as_ref().map(CheckpointSettings::of),
            bounded,
        }
    }

    /// Slots the job needs: one per subtask index of its widest chain (a slot runs one
    /// subtask of every chain, as Flink's slot sharing does).
    pub fn slots_needed(&self) -> u32 {
        self.chains.iter().map(|c| c.parallelism).max().unwrap_or(0)
    }

    /// Number of tasks (subtasks of all chains).
    pub fn tasks(&self) -> usize {
        self.chains.iter().map(|c| c.parallelism as usize).sum()
    }

    /// Checks that `other` (built by a worker) is the same plan.
    ///
    /// # Errors
    /// [`Error::InvalidJob`] naming the first difference.
    pub fn check_same(&self, other: &PlanSummary) -> Result<()> {
        if self.chains != other.chains || self.operators != other.operators {
            return Err(Error::InvalidJob(format!(
                "job `{}` builds another plan on this worker than where it was submitted ({} chains here, {} submitted): run the same Sluice version and job code everywhere, and keep files a SQL script reads the same on every host",
                self.name,
                other.chains.len(),
                self.chains.len()
            )));
        }
        if self.max_parallelism != other.max_parallelism {
            return Err(Error::InvalidJob(format!(
                "job `{}` has {} key groups on this worker, {} where it was submitted",
                self.name, other.max_parallelism, self.max_parallelism
            )));
        }
        Ok(())
    }
}

/// A job as submitted to the coordinator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSubmission {
    /// How workers build it.
    pub spec: JobSpec,
    /// Its plan, as the submitter built it.
    pub plan: PlanSummary,
}

/// Checkpoint facts of one deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployCheckpoint {
    /// The checkpoint storage directory (the job's checkpoints are under its name).
    pub directory: String,
    /// The checkpoint to restore, if any.
    pub restore: Option<u64>,
    /// The storage directory holding it (the job's own, or a savepoint's).
    pub restore_directory: String,
    /// The latest checkpoint completed before this attempt (checkpoint ids go on after
    /// it; tasks have been told of it).
    pub last_completed: u64,
    /// Whether checkpoints are exactly-once.
    pub exactly_once: bool,
}

/// One attempt of a job, as a worker receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// The job's id in the cluster.
    pub job_id: u64,
    /// Unique per attempt across the cluster: channels are keyed by it.
    pub deployment: u64,
    /// The attempt's number within the job (1 for the first).
    pub attempt: u32,
    /// How to build the job.
    pub spec: JobSpec,
    /// The plan it must build to.
    pub plan: PlanSummary,
    /// For each chain, for each subtask: the data address of the worker running it.
    pub placement: Vec<Vec<String>>,
    /// Checkpointing, when the job checkpoints.
    pub checkpoint: Option<DeployCheckpoint>,
}

/// A job's status, as `sluice list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Waiting for enough free slots.
    WaitingForSlots,
    /// Being deployed.
    Deploying,
    /// Running.
    Running,
    /// Restarting after a failure.
    Restarting,
    /// Ended: every source finished.
    Finished,
    /// Ended: cancelled by a user.
    Cancelled,
    /// Ended: failed, no restart allowed.
    Failed,
}

impl JobState {
    /// Whether the job ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Finished | JobState::Cancelled | JobState::Failed
        )
    }
}

/// A job as the coordinator reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInfo {
    /// The job's id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its status.
    pub state: JobState,
    /// The current or last attempt (1 for the first).
    pub attempt: u32,
    /// Restarts after failures.
    pub restarts: u32,
    /// The latest completed checkpoint (0: none).
    pub last_checkpoint: u64,
    /// Slots it needs.
    pub slots: u32,
    /// Why it is waiting, failed or restarted, when it is.
    pub message: Option<String>,
}
