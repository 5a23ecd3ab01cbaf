//! Running one deployment on a worker: build, check, deploy, run, report.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_core::{CheckpointId, OperatorId};
use sluice_runtime::channel::remote::{RemoteInbox, RemoteLink};
use sluice_runtime::checkpoint::remote::{TaskReport, WorkerCheckpointing};
use sluice_runtime::checkpoint::storage::CheckpointStorage;
use sluice_runtime::executor::run_tasks;
use sluice_runtime::metrics::MetricRegistry;
use sluice_runtime::placement::{ChannelId, Placement};
use sluice_runtime::{JobControl, JobGraph, LocalExecutor, PhysicalPlan};

use super::WorkerContext;
use crate::error::{Error, Result};
use crate::job::{Deployment, PlanSummary};
use crate::rpc::messages::{AttemptReport, CheckpointAck, TaskFinishedRequest};
use crate::transport::frame::ChannelKey;
use crate::transport::DataPlane;

/// Where the tasks of a deployment run, as this worker sees it.
struct ClusterPlacement<'a> {
    plane: &'a DataPlane,
    deployment: &'a Deployment,
    me: &'a str,
    /// The downstream chain of each edge.
    down_chain: HashMap<u32, usize>,
    capacity: u32,
}

impl<'a> ClusterPlacement<'a> {
    fn new(
        plane: &'a DataPlane,
        deployment: &'a Deployment,
        me: &'a str,
        graph: &JobGraph,
        plan: &PhysicalPlan,
        capacity: usize,
    ) -> Self {
        let chain_of: HashMap<OperatorId, usize> = plan
            .chains
            .iter()
            .enumerate()
            .flat_map(|(c, chain)| chain.nodes.iter().map(move |&n| (n, c)))
            .collect();
        let down_chain = graph
            .edges
            .iter()
            .enumerate()
            .filter_map(|(e, edge)| chain_of.get(&edge.to).map(|&c| (e as u32, c)))
            .collect();
        ClusterPlacement {
            plane,
            deployment,
            me,
            down_chain,
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
        }
    }

    fn key(&self, channel: ChannelId) -> ChannelKey {
        ChannelKey {
            deployment: self.deployment.deployment,
            channel,
        }
    }

    fn worker_of(&self, chain: usize, subtask: u32) -> Option<&str> {
        self.deployment
            .placement
            .get(chain)
            .and_then(|c| c.get(subtask as usize))
            .map(String::as_str)
    }
}

fn runtime_error(e: Error) -> sluice_runtime::Error {
    match e {
        Error::Runtime(e) => e,
        other => sluice_runtime::Error::Internal(other.to_string()),
    }
}

impl Placement for ClusterPlacement<'_> {
    fn is_local(&self, chain: usize, subtask: u32) -> bool {
        self.worker_of(chain, subtask) == Some(self.me)
    }

    fn link_to(&self, channel: ChannelId) -> sluice_runtime::Result<Arc<dyn RemoteLink>> {
        let peer = self
            .down_chain
            .get(&channel.edge)
            .and_then(|&c| self.worker_of(c, channel.to))
            .ok_or_else(|| {
                sluice_runtime::Error::Internal(format!("channel {channel} has no receiver placed"))
            })?;
        self.plane
            .link_to(peer, self.key(channel))
            .map_err(runtime_error)
    }

    fn credit_return(
        &self,
        channel: ChannelId,
    ) -> sluice_runtime::Result<Arc<dyn Fn() + Send + Sync>> {
        Ok(self.plane.credit_return(self.key(channel), self.capacity))
    }

    fn accept(
        &self,
        channel: ChannelId,
        inbox: Box<dyn RemoteInbox>,
    ) -> sluice_runtime::Result<()> {
        self.plane
            .accept(self.key(channel), inbox)
            .map_err(runtime_error)
    }
}

/// Builds, deploys and runs this worker's tasks of `d`, then reports how they ended.
pub(super) fn run(
    ctx: &WorkerContext,
    d: &Deployment,
    control: &Arc<JobControl>,
    checkpointing: Option<Arc<WorkerCheckpointing>>,
) {
    tracing::info!(
        job = d.job_id,
        deployment = d.deployment,
        attempt = d.attempt,
        "deploying"
    );
    let done = Arc::new(AtomicBool::new(false));
    let forwarder = checkpointing.as_ref().map(|c| {
        let c = Arc::clone(c);
        let ctx = ctx.clone();
        let done = Arc::clone(&done);
        let deployment = d.deployment;
        std::thread::Builder::new()
            .name(format!("checkpoint reports {deployment}"))
            .spawn(move || forward_reports(&ctx, deployment, &c, &done))
    });
    let result = deploy_and_run(ctx, d, control, checkpointing.as_deref());
    done.store(true, Ordering::Release);
    if let Some(Ok(thread)) = forwarder {
        let _ = thread.join();
    }
    let cancelled = control.is_cancelled();
    let report = match &result {
        Ok(()) => AttemptReport {
            worker_id: ctx.worker_id,
            deployment: d.deployment,
            ok: true,
            error: String::new(),
            retryable: true,
            cancelled,
        },
        Err(e) => {
            if cancelled {
                tracing::info!(deployment = d.deployment, "tasks cancelled");
            } else {
                tracing::error!(deployment = d.deployment, error = %e, "tasks failed");
            }
            AttemptReport {
                worker_id: ctx.worker_id,
                deployment: d.deployment,
                ok: false,
                error: e.to_string(),
                retryable: match e {
                    Error::Runtime(r) => r.is_retryable(),
                    Error::InvalidJob(_) => false,
                    _ => true,
                },
                cancelled,
            }
        }
    };
    ctx.remove(d.deployment);
    let mut client = ctx.client.clone();
    if let Err(e) = ctx.runtime.block_on(client.report_attempt(report)) {
        tracing::warn!(deployment = d.deployment, error = %e, "cannot report the end of the tasks to the coordinator");
    }
}

fn deploy_and_run(
    ctx: &WorkerContext,
    d: &Deployment,
    control: &Arc<JobControl>,
    checkpointing: Option<&WorkerCheckpointing>,
) -> Result<()> {
    let (graph, config) = ctx.builder.build(&d.spec)?;
    let plan = sluice_runtime::plan::plan(&graph, &config)?;
    d.plan
        .check_same(&PlanSummary::of(&graph, &plan, &config))?;
    let executor = LocalExecutor::new(config);
    let restored = match (&d.checkpoint, d.checkpoint.as_ref().and_then(|c| c.restore)) {
        (Some(c), Some(id)) => {
            let storage =
                CheckpointStorage::local(std::path::Path::new(&c.restore_directory), &graph.name)?;
            let meta = storage.metadata(CheckpointId(id))?;
            tracing::info!(
                deployment = d.deployment,
                checkpoint = id,
                "restoring from checkpoint {id}"
            );
            executor.restored_states(&graph, &storage, &meta)?
        }
        _ => HashMap::new(),
    };
    let placement = ClusterPlacement::new(
        &ctx.plane,
        d,
        &ctx.data_address,
        &graph,
        &plan,
        executor.config().channel_capacity,
    );
    let metrics = MetricRegistry::new();
    let tasks = executor.deploy_part(
        &graph,
        &plan,
        &placement,
        control,
        &metrics,
        restored,
        checkpointing,
    )?;
    tracing::info!(deployment = d.deployment, tasks = tasks.len(), "running");
    run_tasks(tasks, control)?;
    Ok(())
}

/// Carries the tasks' checkpoint reports to the coordinator until the tasks ended.
fn forward_reports(
    ctx: &WorkerContext,
    deployment: u64,
    checkpointing: &WorkerCheckpointing,
    done: &AtomicBool,
) {
    loop {
        let Some(report) = checkpointing.next_report(Duration::from_millis(20)) else {
            if done.load(Ordering::Acquire) {
                return;
            }
            continue;
        };
        match report {
            TaskReport::Ack {
                task,
                id,
                snapshots,
            } => {
                let snapshots = match postcard::to_allocvec(&snapshots) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot encode a checkpoint acknowledgement");
                        continue;
                    }
                };
                let mut client = ctx.client.clone();
                let ack = CheckpointAck {
                    deployment,
                    task: task as u64,
                    checkpoint: id.0,
                    snapshots,
                };
                if let Err(e) = ctx.runtime.block_on(client.acknowledge_checkpoint(ack)) {
                    tracing::warn!(checkpoint = id.0, error = %e, "cannot acknowledge a checkpoint");
                }
            }
            TaskReport::Finished {
                task,
                snapshots,
                reply,
            } => {
                let has_snapshots = snapshots.is_some();
                let bytes = snapshots
                    .map(|s| postcard::to_allocvec(&s))
                    .transpose()
                    .unwrap_or_else(|e| {
                        tracing::error!(error = %e, "cannot encode a task's final state");
                        None
                    })
                    .unwrap_or_default();
                let mut client = ctx.client.clone();
                let request = TaskFinishedRequest {
                    deployment,
                    task: task as u64,
                    has_snapshots,
                    snapshots: bytes,
                };
                // The answer may come only once other tasks finished: wait for it off
                // this thread, so their reports go on.
                ctx.runtime.spawn(async move {
                    match client.task_finished(request).await {
                        Ok(answer) => {
                            if let Some(reply) = reply {
                                reply.send(answer.into_inner().checkpoint);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(task, error = %e, "cannot report a finished task");
                        }
                    }
                });
            }
        }
    }
}
